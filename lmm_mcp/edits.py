"""The user's corrections to memories: a wrong memory corrected or forgotten, for good.

    correct_memory(conn, "decision:/src/app:database", "We use Postgres 16, not MySQL.", cfg=cfg)
    forget_memory(conn, "preference::tabs", cfg=cfg)
    edits(conn)                                  # what the user changed, newest first
    undo_edit(conn, key)                         # the memory as extraction has it again

An edit is a row of `memory_edits`, keyed like the memory. `lmm_mcp.memories` applies the edits after every
merge of the sessions' extractions, so a re-extraction (a session that grew, a forced refresh, a rebuild of
the memories) gives the edited memory again, and training, which reads the merged memories, learns the
corrected text and never the forgotten one. A corrected text is redacted like a transcript (and its
`<private>` spans cut) before it is stored. With `cfg`, an adapter that may have learned the old memory is
marked stale, as forgetting a session does (`lmm_mcp.privacy`), and an unfinished training run is removed: it
would resume with the data it was prepared with, the old memory in it (unless a retrain is running now).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from lmm_mcp.config import Config
from lmm_mcp.memories import refresh_memories
from lmm_mcp.privacy import emit, without_private
from lmm_mcp.store import write_transaction
from trainer.atomic import read_json
from transcripts.redact import Redactor

if TYPE_CHECKING:
    from lmm_mcp.app import App

MAX_TEXT_CHARS = 4_000  # a memory is one or two sentences; a page pasted by mistake is refused
ACTIONS = ("correct", "forget")


class EditError(ValueError):
    """An edit that names no memory or carries no text; the message says what to pass."""


@dataclass(frozen=True)
class Edit:
    key: str
    action: str  # correct | forget
    text: str | None  # the corrected text; None for forget
    at: str  # when, ISO UTC


@dataclass
class EditReport:
    key: str
    action: str  # correct | forget | undo
    text: str | None = None  # the text stored (after redaction), for a correction
    secrets_redacted: int = 0
    stale_adapters: list[str] = field(default_factory=list)
    runs_removed: list[str] = field(default_factory=list)  # unfinished training runs holding the old memory
    embed_error: str | None = None  # the new text's vector could not be made now (BM25 still finds it)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def correct_memory(conn: sqlite3.Connection, key: str, text: str, *, cfg: Config | None = None) -> EditReport:
    """Replace a memory's text with `text` (redacted) from now on, through every re-extraction."""
    sources = _sources(conn, key)
    clean, counts = Redactor().redact_text(without_private(text).strip())
    if not clean.strip():
        raise EditError("the corrected text is empty: write what the memory should say, or forget it")
    if len(clean) > MAX_TEXT_CHARS:
        raise EditError(
            f"the corrected text has {len(clean)} characters; a memory holds at most {MAX_TEXT_CHARS}"
        )
    _record(conn, key, "correct", clean)
    report = EditReport(key, "correct", clean, sum(counts.values()))
    _after_edit(cfg, sources, f"memory {key} was corrected", report)
    return report


def forget_memory(conn: sqlite3.Connection, key: str, *, cfg: Config | None = None) -> EditReport:
    """Drop a memory from the memories, the index and the training data, through every re-extraction."""
    sources = _sources(conn, key)
    _record(conn, key, "forget", None)
    report = EditReport(key, "forget")
    _after_edit(cfg, sources, f"memory {key} was forgotten", report)
    return report


def undo_edit(conn: sqlite3.Connection, key: str) -> EditReport:
    """Take an edit back: the memory is what the sessions' extraction makes of it again."""
    with write_transaction(conn):
        gone = conn.execute("DELETE FROM memory_edits WHERE key = ?", (key,)).rowcount
    if not gone:
        raise EditError(f"memory {key!r} has no edit to undo")
    refresh_memories(conn, remerge=True)
    return EditReport(key, "undo")


def embed_edited(app: App) -> str | None:
    """Give the chunk an edit wrote its vector now, where the store holds vectors (a store without them is
    searched with BM25 alone); else the next ingest would. Returns why embedding failed, or None."""
    from lmm_mcp.embed import embed_pending
    from lmm_mcp.queries import has_vectors

    if not has_vectors(app.conn):
        return None
    try:
        embed_pending(app.conn, app.embedder(), lock=app.cfg.home / "embed.lock")
    except Exception as e:  # BM25 finds the edited memory meanwhile, and the next ingest embeds it
        return f"{type(e).__name__}: {e}"
    return None


def edits(conn: sqlite3.Connection) -> list[Edit]:
    """Every edit the user made, newest first."""
    rows = conn.execute("SELECT key, action, text, at FROM memory_edits ORDER BY at DESC, key").fetchall()
    return [Edit(*r) for r in rows]


def edit_of(conn: sqlite3.Connection, key: str) -> Edit | None:
    row = conn.execute("SELECT key, action, text, at FROM memory_edits WHERE key = ?", (key,)).fetchone()
    return Edit(*row) if row else None


def _sources(conn: sqlite3.Connection, key: str) -> list[dict[str, Any]]:
    """The memory's sources; EditError when the store holds no such memory."""
    row = conn.execute("SELECT sources FROM memories WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise EditError(f"no memory {key!r}: `lmm-mcp memories --all --json` lists the keys")
    return orjson.loads(row[0])


def _record(conn: sqlite3.Connection, key: str, action: str, text: str | None) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    with write_transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO memory_edits(key, action, text, at) VALUES (?, ?, ?, ?)",
            (key, action, text, now),
        )
    refresh_memories(conn, remerge=True)  # the merge applies the edits: the one path every refresh takes


def _after_edit(cfg: Config | None, sources: list[dict[str, Any]], reason: str, report: EditReport) -> None:
    """Versions made since the memory was first said may have learned it: stale. Unfinished runs go."""
    if cfg is None:
        return
    from trainer.versions import mark_stale

    report.stale_adapters = mark_stale(cfg.models_dir, _earliest(sources), reason)
    report.runs_removed = _drop_unfinished_runs(cfg.home)


def _drop_unfinished_runs(home: Path) -> list[str]:
    """Remove the training runs a retrain would resume (a finished one never is): their prepared data holds
    the memory as it was. None while a retrain runs: it read its data already, and its folder is in use."""
    from trainer.locks import holder

    runs = home / "runs"
    if not runs.is_dir() or holder(home / "jobs" / "retrain.lock") is not None:
        return []
    removed = []
    for run in sorted(runs.glob("r-*")):
        if not run.is_dir() or read_json(run / "run.json").get("status") == "done":
            continue
        doomed = runs / f".edit-{run.name}-{os.getpid()}"
        try:
            os.rename(run, doomed)  # gone from view at once; the files after
        except OSError:
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(run.name)
    return removed


def _earliest(sources: list[dict[str, Any]]) -> datetime | None:
    """When the first source was said (naive UTC), or None (unknown: every version) when any lacks a time."""
    times = []
    for s in sources:
        try:
            when = datetime.fromisoformat(str(s.get("timestamp") or "").replace("Z", "+00:00"))
        except ValueError:
            return None
        times.append((when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC).replace(tzinfo=None))
    return min(times) if times else None


# ----------------------------------------------------------------------------------------- CLI


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser(
        "memory",
        parents=[common],
        help="correct or forget a wrong memory (it stays so through re-extraction and training)",
        description="Correct or forget one memory by its key (`lmm-mcp memories --all --json` lists them), "
        "list your edits, or undo one.",
    )
    what = p.add_subparsers(dest="action", required=True)
    q = what.add_parser("correct", parents=[common], help="give a memory new text")
    q.add_argument("key")
    q.add_argument("text")
    q = what.add_parser("forget", parents=[common], help="drop a memory")
    q.add_argument("key")
    q = what.add_parser("undo", parents=[common], help="take an edit back")
    q.add_argument("key")
    what.add_parser("list", parents=[common], help="the edits made so far")
    p.set_defaults(run=cmd_memory)


def cmd_memory(cfg: Any, args: Any) -> int:
    from lmm_mcp.app import App

    with App.open(cfg) as app:
        if args.action == "list":
            found = edits(app.conn)
            lines = [f"{e.at}  {e.action:7}  {e.key}" + (f"\n    {e.text}" if e.text else "") for e in found]
            emit(args.json, {"edits": [asdict(e) for e in found]}, "\n".join(lines) or "no edits")
            return 0
        if args.action == "correct":
            report = correct_memory(app.conn, args.key, args.text, cfg=cfg)
        elif args.action == "forget":
            report = forget_memory(app.conn, args.key, cfg=cfg)
        else:
            report = undo_edit(app.conn, args.key)
        report.embed_error = embed_edited(app)
    text = {"correct": "corrected", "forget": "forgot", "undo": "undid the edit of"}[report.action]
    text = f"{text} {report.key}"
    if report.stale_adapters:
        text += f"\nstale adapters (retrain to drop what they learned): {', '.join(report.stale_adapters)}"
    emit(args.json, report.as_dict(), text)
    return 0
