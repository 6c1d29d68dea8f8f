"""Coding-memory benchmark: how much of a realistic coding history search, recall and the stored memories hold.

    python bench/coding_memory.py [--no-embed] [--json]

28 authored sessions of one developer over four projects (January 5 to February 10, 2026; see
`bench/coding_memory/scenario.py`) are written as Claude Code transcripts into a temporary folder and ingested
through `App.ingest` (with embeddings unless `--no-embed`). Then 176 questions an agent would ask mid-session
(`bench/coding_memory/questions.jsonl`: stack, architecture, preferences, error fixes, facts that changed,
where work stopped, questions that need several sessions, and questions the history cannot answer) are run:

- search: session hit@1 and hit@5 of `lmm_mcp.query.find(question, k=5, project=...)` (as `lmm-mcp search`); a hit counts when its session
  (a memory's newest source, for a memory) is one of the question's evidence sessions;
- recall: answer-term coverage of `recall(..., k=8, mode="retrieve")` text at 300 and 1,500 tokens, i.e. the
  share of the question's answer terms found in it (case-insensitive, whole words);
- memories alone: the coverage of the best single stored memory, and of all the memories that cite an
  evidence session, taken together (what extraction kept, whatever retrieval does with it);
- baseline: BM25 over the raw turns (SQLite FTS5 in memory, one document per stored turn, the same query
  words as search), its hit@1/hit@5, and the coverage of its top turns concatenated up to 300 and 1,500
  "tokens" of 4 characters, each turn headed by its date and project as recall heads its excerpts;
- unanswerable questions: how many recalls (and baseline lookups) returned anything at all (no target);
- leaks: recalls that contain the fake API key pasted in one session (must be 0), or the prompt injection a
  fetched page carried (informative).

The questions are checked before anything runs: every answer term must occur in one of its evidence
sessions and must not occur in the question. Runs in under half a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Its questions name UTC days, as its sessions are stamped: read them so on any machine (recall reads
# days in the local zone).
os.environ["TZ"] = "UTC"
if hasattr(time, "tzset"):
    time.tzset()

from bench.coding_memory.questions import (  # noqa: E402
    CATEGORIES,
    QUESTIONS,
    Question,
    coverage,
    load_questions,
    term_pattern,
)
from bench.coding_memory.scenario import INJECTION, SECRET, session_texts, write_sessions  # noqa: E402
from lmm_mcp import queries  # noqa: E402
from lmm_mcp.app import App  # noqa: E402
from lmm_mcp.chunking import turn_text  # noqa: E402
from lmm_mcp.config import Config  # noqa: E402
from lmm_mcp.query import find  # noqa: E402
from lmm_mcp.retrieval import fts_query  # noqa: E402
from lmm_mcp.store import stats  # noqa: E402
from lmm_mcp.turns import load_session_turns  # noqa: E402

BUDGETS = (300, 1500)  # recall max_tokens
CHARS_PER_TOKEN = 4  # as recall budgets its text
MIN_PER_CATEGORY = 15


@dataclass
class Scores:
    """One question's figures; None where a figure does not apply (search on an unanswerable question)."""

    hit1: float | None = None
    hit5: float | None = None
    coverage: dict[int, float] = field(default_factory=dict)
    memory_best: float | None = None
    memory_evidence: float | None = None
    base_hit1: float | None = None
    base_hit5: float | None = None
    base_coverage: dict[int, float] = field(default_factory=dict)
    recalled_anything: bool = False
    base_found_anything: bool = False


def check_questions(questions: list[Question], texts: dict[str, str]) -> list[str]:
    """What is wrong with the question set: unknown evidence, terms not in it or given away by the question."""
    problems = []
    if len({q.id for q in questions}) != len(questions):
        problems.append("question ids are not unique")
    for q in questions:
        if q.category not in CATEGORIES:
            problems.append(f"{q.id}: unknown category {q.category}")
        if (q.category == "unanswerable") != (not q.answer_terms and not q.evidence):
            problems.append(f"{q.id}: unanswerable questions, and only they, have no terms and no evidence")
        problems += [f"{q.id}: unknown evidence session {e}" for e in q.evidence if e not in texts]
        for term in q.answer_terms:
            if not any(term_pattern(term).search(texts.get(e, "")) for e in q.evidence):
                problems.append(f"{q.id}: {term!r} occurs in none of its evidence sessions")
            if term_pattern(term).search(q.question):
                problems.append(f"{q.id}: the question gives away {term!r}")
    for cat in CATEGORIES:
        n = sum(q.category == cat for q in questions)
        if n < MIN_PER_CATEGORY:
            problems.append(f"{cat}: {n} questions, fewer than {MIN_PER_CATEGORY}")
    return problems


class TurnBaseline:
    """Plain BM25 over raw turns: one FTS5 document per stored turn, in a separate in-memory database."""

    def __init__(self, conn: sqlite3.Connection):
        self.db = sqlite3.connect(":memory:")
        self.db.execute(
            "CREATE VIRTUAL TABLE turns USING fts5(text, session_id UNINDEXED, project UNINDEXED,"
            " day UNINDEXED, tokenize='porter unicode61 remove_diacritics 2')"
        )
        rows = []
        for key, session_id, project, _started in queries.sessions_with_turns(conn):
            for turn in load_session_turns(conn, key):
                text = turn_text(turn)
                if text:
                    rows.append((text, session_id, project or "", (turn.timestamp or "")[:10]))
        self.db.executemany("INSERT INTO turns(text, session_id, project, day) VALUES (?, ?, ?, ?)", rows)
        self.size = len(rows)

    def search(self, question: str, project: str | None, k: int) -> list[tuple[str, str, str, str]]:
        """(text, session id, project, day) of the k best turns, within `project` (and folders under it)."""
        match = fts_query(question)
        if match is None:
            return []
        sql = "SELECT text, session_id, project, day FROM turns WHERE turns MATCH ?"
        args: list[object] = [match]
        if project:
            sql += " AND (project = ? OR project LIKE ?)"
            args += [project.rstrip("/"), project.rstrip("/") + "/%"]
        return self.db.execute(sql + " ORDER BY rank LIMIT ?", [*args, k]).fetchall()

    def context(self, question: str, project: str | None, max_tokens: int) -> str:
        """The best turns' text, each headed by its day and project, up to the budget."""
        budget, parts = max_tokens * CHARS_PER_TOKEN, []
        for text, _sid, proj, day in self.search(question, project, 50):
            piece = f"({day}, {proj.rsplit('/', 1)[-1]}) {' '.join(text.split())}"
            if len(piece) > budget:
                if not parts:
                    parts.append(piece[:budget])
                break
            parts.append(piece)
            budget -= len(piece) + 1
        return "\n".join(parts)


def memory_rows(conn: sqlite3.Connection) -> list[tuple[str, set[str]]]:
    """Every stored memory (superseded ones too): its text and the sessions it cites."""
    rows = conn.execute("SELECT text, sources FROM memories").fetchall()
    return [(text, {s.get("session_id") for s in orjson.loads(sources)}) for text, sources in rows]


def score(
    q: Question, app: App, baseline: TurnBaseline, memories: list[tuple[str, set[str]]], ids: dict[str, str]
) -> tuple[Scores, list[str]]:
    """The figures of one question, and every recall text it produced (for the leak checks)."""
    s, texts = Scores(), []
    evidence = {ids[label] for label in q.evidence}
    recaller = app.recaller()
    for budget in BUDGETS:
        result = recaller.recall(q.question, project=q.project, k=8, max_tokens=budget, mode="retrieve")
        texts.append(result.memory)
        s.coverage[budget] = coverage(q.answer_terms, result.memory)
        s.recalled_anything |= bool(result.sources)
        context = baseline.context(q.question, q.project, budget)
        s.base_coverage[budget] = coverage(q.answer_terms, context)
        s.base_found_anything |= bool(context)
    if q.category == "unanswerable":
        return s, texts
    # what `lmm-mcp search` does: the query read first (its dates, project, now / before), then retrieval
    sessions = [h.session_id for h in find(app.retriever(), app.conn, q.question, k=5, project=q.project)]
    s.hit1 = float(bool(sessions[:1]) and sessions[0] in evidence)
    s.hit5 = float(any(sid in evidence for sid in sessions))
    base = [row[1] for row in baseline.search(q.question, q.project, 5)]
    s.base_hit1 = float(bool(base[:1]) and base[0] in evidence)
    s.base_hit5 = float(any(sid in evidence for sid in base))
    s.memory_best = max((coverage(q.answer_terms, text) for text, _ in memories), default=0.0)
    cited = "\n".join(text for text, sources in memories if sources & evidence)
    s.memory_evidence = coverage(q.answer_terms, cited)
    return s, texts


def summarise(rows: list[Scores]) -> dict[str, float | int]:
    """Means over the answerable questions of one group."""
    mean = lambda values: round(sum(values) / len(values), 3) if values else 0.0  # noqa: E731
    out: dict[str, float | int] = {"questions": len(rows)}
    out["hit@1"] = mean([r.hit1 for r in rows])
    out["hit@5"] = mean([r.hit5 for r in rows])
    for b in BUDGETS:
        out[f"recall@{b}"] = mean([r.coverage[b] for r in rows])
    out["memory_best"] = mean([r.memory_best for r in rows])
    out["memory_evidence"] = mean([r.memory_evidence for r in rows])
    out["bm25_hit@1"] = mean([r.base_hit1 for r in rows])
    out["bm25_hit@5"] = mean([r.base_hit5 for r in rows])
    for b in BUDGETS:
        out[f"bm25@{b}"] = mean([r.base_coverage[b] for r in rows])
    return out


def run(embed: bool) -> dict:
    questions = load_questions(QUESTIONS)
    problems = check_questions(questions, session_texts())
    if problems:
        raise SystemExit("question set is inconsistent:\n  " + "\n  ".join(problems))
    with tempfile.TemporaryDirectory() as tmp:
        claude = Path(tmp) / "projects"
        ids = write_sessions(claude)
        cfg = Config.load(home=Path(tmp) / "home", claude_dir=claude)
        with App.open(cfg) as app:
            t0 = time.perf_counter()
            report = app.ingest(embed=embed)
            t1 = time.perf_counter()
            if report.errors:
                print("ingest errors:", *report.errors, sep="\n  ", file=sys.stderr)
            baseline = TurnBaseline(app.conn)
            memories = memory_rows(app.conn)
            scored, recalls = [], []
            for q in questions:
                s, texts = score(q, app, baseline, memories, ids)
                scored.append((q, s))
                recalls += texts
            t2 = time.perf_counter()
            store = stats(app.conn, cfg.db_path)
            per_category = {c: v["memories"] for c, v in queries.memory_counts(app.conn).items()}
    answerable = [(q, s) for q, s in scored if q.category != "unanswerable"]
    none = [s for q, s in scored if q.category == "unanswerable"]
    return {
        "embed": embed,
        "questions": len(questions),
        "by_category": {c: summarise([s for q, s in answerable if q.category == c]) for c in CATEGORIES[:-1]},
        "overall": summarise([s for _, s in answerable]),
        "unanswerable": {
            "questions": len(none),
            "recall_returned_something": sum(s.recalled_anything for s in none),
            "bm25_returned_something": sum(s.base_found_anything for s in none),
        },
        "leaks": {
            "secret_in_recall": sum(SECRET in t or "sk-ant-api03" in t for t in recalls),
            "injection_in_recall": sum(INJECTION.lower() in t.lower() for t in recalls),
            "recalls": len(recalls),
        },
        "store": {
            "sessions": store.sessions,
            "turns": store.turns,
            "chunks": store.chunks,
            "embedded_chunks": store.embedded_chunks,
            "memories": store.memories,
            "memories_by_category": per_category,
            "secrets_redacted": store.secrets_redacted,
            "baseline_turns": baseline.size,
        },
        "seconds": {"ingest": round(t1 - t0, 2), "questions": round(t2 - t1, 2)},
    }


COLUMNS = [
    ("n", "questions", "{:>4}"),
    ("hit@1", "hit@1", "{:>6.2f}"),
    ("hit@5", "hit@5", "{:>6.2f}"),
    ("rec300", "recall@300", "{:>7.2f}"),
    ("rec1500", "recall@1500", "{:>8.2f}"),
    ("mem1", "memory_best", "{:>6.2f}"),
    ("memEv", "memory_evidence", "{:>6.2f}"),
    ("|bm@1", "bm25_hit@1", "{:>6.2f}"),
    ("bm@5", "bm25_hit@5", "{:>6.2f}"),
    ("bm300", "bm25@300", "{:>6.2f}"),
    ("bm1500", "bm25@1500", "{:>7.2f}"),
]


def print_table(doc: dict) -> None:
    st = doc["store"]
    mode = "hybrid (BM25 + vectors)" if doc["embed"] else "BM25 only (--no-embed)"
    print(f"coding-memory benchmark: {doc['questions']} questions, search {mode}")
    print(
        f"store: {st['sessions']} sessions, {st['turns']} turns, {st['chunks']} chunks "
        f"({st['embedded_chunks']} embedded), {st['memories']} memories, {st['secrets_redacted']} secrets redacted"
    )
    print("memories by category: " + ", ".join(f"{c} {n}" for c, n in st["memories_by_category"].items()))
    print(
        "columns: session hit@1/@5 of search; answer-term coverage of recall text at 300/1500 tokens; of the best "
        "single memory; of the evidence sessions' memories together; | the same for BM25 over raw turns"
    )
    widths = [max(len(h), len(f.format(0))) for h, _, f in COLUMNS]
    print(f"{'category':<17}" + " ".join(f"{h:>{w}}" for (h, _, _), w in zip(COLUMNS, widths, strict=True)))
    rows = [*doc["by_category"].items(), ("overall", doc["overall"])]
    for name, v in rows:
        cells = [f.format(v[key]).rjust(w) for (_, key, f), w in zip(COLUMNS, widths, strict=True)]
        print(f"{name:<17}" + " ".join(cells))
    u, leaks = doc["unanswerable"], doc["leaks"]
    print(
        f"unanswerable: {u['questions']} questions; recall returned something for {u['recall_returned_something']}, "
        f"BM25 over turns for {u['bm25_returned_something']}"
    )
    print(
        f"leaks in {leaks['recalls']} recall texts: fake API key {leaks['secret_in_recall']}, "
        f"prompt-injection line {leaks['injection_in_recall']}"
    )
    print("seconds:", doc["seconds"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-embed", action="store_true", help="ingest without embeddings: search is BM25 only")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()
    doc = run(embed=not args.no_embed)
    if args.json:
        print(json.dumps(doc))
    else:
        print_table(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
