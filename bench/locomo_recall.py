"""LoCoMo retrieval recall: how often `retrieve` finds a question's evidence turns.

    python bench/locomo_recall.py [--json] [--data ../shared/bench/locomo/locomo10.json] [--fusions]

Each LoCoMo conversation becomes its own project and each of its sessions a Claude Code transcript (one user
record per dialog turn, uuid = the turn's dia_id, its image caption appended), ingested and embedded
through the real pipeline into a temporary store. Every question then runs through `retrieve` scoped to its
conversation. recall@k is the share of a question's evidence turns found in the top k, averaged over
questions (the paper's measure, Table 3, all categories). A BM25-only run over the same store is reported
beside it, and the paper's DRAGON retriever figures for reference.

Then what recall hands the agent: for every question with an answer, the share of the answer's content words
(lower-cased, stop words dropped) found as whole words in the text of `recall(question, k=8, max_tokens=300,
mode="retrieve")` scoped to its conversation (`recall_coverage_300` in --json). The store holds the turns
only (no memory extraction runs here), so this is the coverage of the retrieved snippets within the budget.
LoCoMo is CC BY-NC 4.0: evaluation only, never shipped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Its questions name UTC days, as its sessions are stamped: read them so on any machine (recall reads
# days in the local zone).
os.environ["TZ"] = "UTC"
if hasattr(time, "tzset"):
    time.tzset()

from lmm_mcp.app import App  # noqa: E402
from lmm_mcp.config import Config  # noqa: E402
from lmm_mcp.embed import embed_pending  # noqa: E402
from lmm_mcp.ingest import Ingester  # noqa: E402
from lmm_mcp.recall import Recaller  # noqa: E402
from lmm_mcp.retrieval import Retriever  # noqa: E402
from lmm_mcp.store import connect  # noqa: E402

KS = (5, 10, 25, 50)
DRAGON = {"5": 0.567, "10": 0.662, "25": 0.767, "50": 0.827}
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
DEFAULT_DATA = ROOT.parent / "shared" / "bench" / "locomo" / "locomo10.json"
RECALL_TOKENS = 300
# Function words an answer's coverage ignores. Not "may": LoCoMo's dates say "7 May 2023".
FUNCTION_WORDS = (
    "a an the and or but of to in on at for by with from as into about than then so is are was were be been"
    " being am do does did has have had it its this that these those there he she they his her hers him their"
    " them i me my you your we our us not no yes"
)
STOPWORDS = frozenset(FUNCTION_WORDS.split())


def write_transcripts(samples: list[dict], root: Path) -> None:
    """LoCoMo conversations as Claude Code transcript folders, one project per conversation."""
    for ci, sample in enumerate(samples):
        conv = sample["conversation"]
        cwd = f"/locomo/{sample.get('sample_id', ci)}"
        folder = root / cwd.replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        for key, turns in conv.items():
            if not key.startswith("session_") or not isinstance(turns, list):
                continue
            when = _date(conv.get(f"{key}_date_time", ""))
            session_id = f"{sample.get('sample_id', ci)}-{key}"
            lines, parent = [], None
            for n, turn in enumerate(turns):
                text = f"{turn['speaker']}: {turn['text']}"
                if turn.get("blip_caption"):
                    text += f" [image: {turn['blip_caption']}]"
                record = {
                    "type": "user",
                    "uuid": turn["dia_id"],
                    "parentUuid": parent,
                    "sessionId": session_id,
                    "cwd": cwd,
                    "timestamp": f"{when}T{n // 60:02d}:{n % 60:02d}:00.000Z",
                    "message": {"role": "user", "content": text},
                }
                lines.append(orjson.dumps(record))
                parent = turn["dia_id"]
            (folder / f"{session_id}.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def _date(text: str) -> str:
    try:
        return datetime.strptime(text.split(" on ")[-1], "%d %B, %Y").date().isoformat()
    except ValueError:
        return "2023-01-01"


def evaluate(samples: list[dict], retriever: Retriever) -> dict:
    """recall@k overall and per category for one retriever."""
    totals = {k: 0.0 for k in KS}
    by_cat: dict[int, dict] = {}
    n = 0
    for ci, sample in enumerate(samples):
        project = f"/locomo/{sample.get('sample_id', ci)}"
        turns = {
            t["dia_id"]
            for key, value in sample["conversation"].items()
            if key.startswith("session_") and isinstance(value, list)
            for t in value
        }
        for qa in sample["qa"]:
            evidence = {e for e in qa.get("evidence", []) if e in turns}
            if not evidence:
                continue
            hits = retriever.retrieve(qa["question"], k=max(KS), project=project)
            ranked = [h.uuid for h in hits]
            cat = by_cat.setdefault(qa["category"], {"n": 0, **{k: 0.0 for k in KS}})
            for k in KS:
                r = len(evidence & set(ranked[:k])) / len(evidence)
                totals[k] += r
                cat[k] += r
            cat["n"] += 1
            n += 1
    return {
        "questions": n,
        "recall": {str(k): round(totals[k] / n, 4) for k in KS},
        "by_category": {
            CATEGORIES.get(c, str(c)): {"questions": v["n"], **{str(k): round(v[k] / v["n"], 4) for k in KS}}
            for c, v in sorted(by_cat.items())
        },
    }


def content_words(answer: object) -> list[str]:
    """An answer's words, lower-cased, stop words dropped, each once."""
    words = re.findall(r"\w+", str(answer).lower())
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS))


def recall_coverage(samples: list[dict], recaller: Recaller) -> dict:
    """Mean share of each answer's content words in the recall text at RECALL_TOKENS, overall and per category."""
    total, n = 0.0, 0
    by_cat: dict[int, list[float]] = {}
    for ci, sample in enumerate(samples):
        project = f"/locomo/{sample.get('sample_id', ci)}"
        for qa in sample["qa"]:
            words = content_words(qa["answer"]) if "answer" in qa else []
            if not words:
                continue
            text = recaller.recall(
                qa["question"], project=project, k=8, max_tokens=RECALL_TOKENS, mode="retrieve"
            ).memory
            found = set(re.findall(r"\w+", text.lower()))
            share = sum(w in found for w in words) / len(words)
            by_cat.setdefault(qa["category"], []).append(share)
            total += share
            n += 1
    return {
        "questions": n,
        "coverage": round(total / n, 4) if n else 0.0,
        "by_category": {
            CATEGORIES.get(c, str(c)): {"questions": len(v), "coverage": round(sum(v) / len(v), 4)}
            for c, v in sorted(by_cat.items())
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--fusions", action="store_true", help="also report RRF fusion and vector-only recall")
    args = ap.parse_args()
    if not args.data.exists():
        print(f"LoCoMo data not found at {args.data}", file=sys.stderr)
        return 2
    samples = json.loads(args.data.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        claude = Path(tmp) / "projects"
        write_transcripts(samples, claude)
        cfg = Config.load(home=Path(tmp) / "home", claude_dir=claude)
        conn = connect(cfg.db_path)
        t0 = time.perf_counter()
        report = Ingester(cfg, conn).ingest()
        t1 = time.perf_counter()
        app = App(cfg, conn)
        embedder = app.embedder()  # as configured, the way every command builds it
        embedded = embed_pending(conn, embedder)
        t2 = time.perf_counter()
        hybrid = evaluate(samples, Retriever(conn, embedder))  # the default fusion, as recall uses it
        t3 = time.perf_counter()
        bm25 = evaluate(samples, Retriever(conn, None, fusion="bm25"))
        others = {}
        if args.fusions:  # the alternatives the default was chosen against
            others["rrf_recall"] = evaluate(samples, Retriever(conn, embedder, fusion="rrf"))["recall"]
            others["vector_recall"] = evaluate(samples, Retriever(conn, embedder, fusion="vector"))["recall"]
        t4 = time.perf_counter()
        coverage = recall_coverage(samples, app.recaller())  # what recall_memory returns, within its budget
        coverage["seconds"] = round(time.perf_counter() - t4, 2)
    doc = {
        "recall": hybrid["recall"],
        "by_category": hybrid["by_category"],
        "bm25_recall": bm25["recall"],
        "bm25_by_category": bm25["by_category"],
        "dragon_recall_paper": DRAGON,
        "questions": hybrid["questions"],
        "chunks": report.chunks,
        "seconds": {
            "ingest": round(t1 - t0, 2),
            "embed": round(t2 - t1, 2),
            "retrieve_all_questions": round(t3 - t2, 2),
        },
    }
    doc.update(others)
    doc[f"recall_coverage_{RECALL_TOKENS}"] = coverage
    assert embedded == report.chunks
    if args.json:
        print(json.dumps(doc))
        return 0
    print(f"LoCoMo retrieval recall over {doc['questions']} questions, {doc['chunks']} turns")
    print(f"{'k':>4} {'hybrid':>8} {'bm25':>8} {'DRAGON':>8}" + "".join(f" {n[:-7]:>8}" for n in others))
    for k in map(str, KS):
        row = f"{k:>4} {doc['recall'][k]:>8.3f} {doc['bm25_recall'][k]:>8.3f} {DRAGON[k]:>8.3f}"
        print(row + "".join(f" {r[k]:>8.3f}" for r in others.values()))
    print("by category (hybrid):")
    for cat, v in doc["by_category"].items():
        print(f"  {cat:<12} n={v['questions']:<4} " + " ".join(f"@{k}={v[k]:.3f}" for k in map(str, KS)))
    print(
        f"answer coverage of recall text at {RECALL_TOKENS} tokens (k=8, retrieve), {coverage['questions']}"
        f" questions with an answer: {coverage['coverage']:.3f}  ({coverage['seconds']} s)"
    )
    for cat, v in coverage["by_category"].items():
        print(f"  {cat:<12} n={v['questions']:<4} coverage={v['coverage']:.3f}")
    print("seconds:", doc["seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
