"""What the user keeps out of memory: `<private>` spans, excluded projects, and forgotten sessions.

    line, spans = drop_private(raw_line)          # ingest, before redaction, archive, store and embedder
    excluded(cwd, cfg.exclude_projects)            # a project (or a folder under it) that is never stored
    report = forget(app, session="…")              # or project="/path", before="2026-10-01"

`<private>…</private>` is the tag other Claude Code memory tools use for the same purpose; a span left open
runs to the end of its text. Forgetting deletes a session from the store (turns, chunks, their FTS rows and
vectors, its memories), from the archive, and from the training runs built on it; it leaves a tombstone so
the transcript, while Claude Code still keeps it, does not come back on the next ingest; and it marks the
adapter versions that may have trained on it as stale.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from lmm_mcp import archive
from lmm_mcp.store import write_transaction

if TYPE_CHECKING:
    from lmm_mcp.app import App

_PRIVATE = re.compile(r"<private>.*?(?:</private>|\Z)", re.IGNORECASE | re.DOTALL)
_MAYBE_PRIVATE = re.compile(rb"(?i)private|\\u")  # the tag's word, or an escape that could spell it


class ForgetError(ValueError):
    """A forget request that names nothing or cannot be read; the message says what to pass."""


# ----------------------------------------------------------------------------------------- ingest side


def without_private(text: str) -> str:
    """`text` with its `<private>` spans cut out (a prompt the hook searches with)."""
    return _PRIVATE.sub("", text)


def drop_private(raw: bytes) -> tuple[bytes, int]:
    """A JSON line with every `<private>` span cut out of its strings, and the number of spans cut."""
    if not _MAYBE_PRIVATE.search(raw):
        return raw, 0
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw, 0  # not JSON: ingest skips it and never archives it
    obj, spans = _strip(obj)
    return (orjson.dumps(obj) + b"\n", spans) if spans else (raw, 0)


def _strip(value: Any) -> tuple[Any, int]:
    if isinstance(value, str):
        return _PRIVATE.subn("", value)
    if isinstance(value, list):
        parts = [_strip(v) for v in value]
        return [p[0] for p in parts], sum(p[1] for p in parts)
    if isinstance(value, dict):
        parts = {k: _strip(v) for k, v in value.items()}
        return {k: p[0] for k, p in parts.items()}, sum(p[1] for p in parts.values())
    return value, 0


def excluded(cwd: object, projects: tuple[str, ...]) -> bool:
    """Is `cwd` one of the excluded project paths, or a folder under one?"""
    if not projects or not isinstance(cwd, str) or not cwd:
        return False
    path = cwd.rstrip("/") or "/"
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in projects)


def excluded_folder(folder: str, projects: tuple[str, ...]) -> bool:
    """Is a Claude projects folder name (the working directory with every character outside [a-zA-Z0-9]
    replaced by '-') that of an excluded project or a folder under one? Used for records without a `cwd`;
    the encoding is lossy, so a sibling like `app-old` of an excluded `app` matches too: the safe side."""
    names = [re.sub(r"[^a-zA-Z0-9]", "-", p.rstrip("/")) for p in projects]
    return any(folder == n or folder.startswith(n + "-") for n in names)


def is_forgotten(conn: sqlite3.Connection, session_key: str) -> bool:
    session_id = session_key.split("/agent-")[0]
    return conn.execute("SELECT 1 FROM forgotten WHERE session_id = ?", (session_id,)).fetchone() is not None


# ----------------------------------------------------------------------------------------- forget


@dataclass
class ForgetReport:
    sessions: list[str] = field(default_factory=list)  # Claude Code session ids now forgotten
    transcripts: int = 0  # session rows deleted (a session and each of its sub-agents)
    turns: int = 0
    chunks: int = 0
    archive_files: int = 0
    memories_removed: int = 0
    stale_adapters: list[str] = field(default_factory=list)
    runs_removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def forget(
    app: App, *, session: str | None = None, project: str | None = None, before: str | None = None
) -> ForgetReport:
    """Forget one session, every session of a project (and folders under it), or every session that ended
    before a date."""
    from lmm_mcp.memories import refresh_memories
    from trainer.versions import mark_stale

    cfg, conn = app.cfg, app.conn
    ids, since = _chosen(conn, session, project, before)
    report = ForgetReport(sessions=sorted(ids))
    if not ids:
        return report
    with write_transaction(conn):  # tombstones first: from here on no ingest brings these sessions back
        now = datetime.now(UTC).isoformat(timespec="seconds")
        conn.executemany(
            "INSERT OR IGNORE INTO forgotten(session_id, at) VALUES (?, ?)", [(i, now) for i in ids]
        )
    keys = [r[0] for r in _in(conn, "SELECT key FROM sessions WHERE session_id IN ({})", ids)]
    report.archive_files = _delete_archive(cfg.archive_dir, _archive_files(conn, cfg.archive_dir, ids, keys))
    conn.execute("PRAGMA secure_delete = ON")  # freed pages are zeroed: the text is gone from the file too
    _delete_rows(conn, keys, report)
    report.memories_removed = refresh_memories(conn, remerge=True).removed
    with write_transaction(conn):
        conn.execute(
            "DELETE FROM projects WHERE id NOT IN (SELECT project_id FROM sessions WHERE project_id IS NOT NULL)"
            " AND id NOT IN (SELECT project_id FROM chunks WHERE project_id IS NOT NULL)"
        )
        conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")  # drop the old index segments
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if not keys:  # never ingested here: nothing trained on it
        return report
    report.stale_adapters = mark_stale(
        cfg.models_dir, since, f"trained before {len(ids)} session(s) were forgotten"
    )
    report.runs_removed = _remove_runs(cfg.home / "runs", since)
    return report


def _chosen(
    conn: sqlite3.Connection, session: str | None, project: str | None, before: str | None
) -> tuple[set[str], datetime | None]:
    """The session ids a request names, and when the earliest of them began (None: unknown)."""
    if sum(x is not None for x in (session, project, before)) != 1:
        raise ForgetError("give exactly one of --session ID, --project PATH or --before DATE")
    if session is not None:
        if not session.strip() or "/" in session:
            raise ForgetError(f"{session!r} is not a session id")
        sql, params = "SELECT session_id, started_at FROM sessions WHERE session_id = ?", [session]
    elif project is not None:
        path = os.path.abspath(os.path.expanduser(project)).rstrip("/") or "/"
        like = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
        sql = (
            "SELECT s.session_id, s.started_at FROM sessions s JOIN projects p ON p.id = s.project_id"
            " WHERE p.path = ? OR p.path LIKE ? ESCAPE '\\'"
        )
        params = [path, like]
    else:
        assert before is not None
        cutoff = _date(before)
        sql = "SELECT session_id, started_at FROM sessions WHERE coalesce(ended_at, started_at) < ?"
        params = [cutoff.strftime("%Y-%m-%dT%H:%M:%S")]
    rows = conn.execute(sql, params).fetchall()
    ids = {r[0] for r in rows} | ({session} if session else set())
    starts = [_parse_time(r[1]) for r in rows]
    known = [s for s in starts if s is not None]
    return ids, (min(known) if known and len(known) == len(rows) else None)  # unknown: assume the oldest


def _parse_time(text: str | None) -> datetime | None:
    try:
        return _date(text) if text else None
    except ForgetError:
        return None


def _date(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise ForgetError(f"{text!r} is not a date: use YYYY-MM-DD or an ISO time") from e
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC).replace(tzinfo=None)


def _in(conn: sqlite3.Connection, sql: str, values: Any) -> list[tuple]:
    values = list(values)
    rows: list[tuple] = []
    for i in range(0, len(values), 500):  # SQLite caps bound parameters
        batch = values[i : i + 500]
        rows += conn.execute(sql.format(",".join("?" * len(batch))), batch).fetchall()
    return rows


def _archive_files(conn: sqlite3.Connection, archive_dir: Path, ids: set[str], keys: list[str]) -> set[Path]:
    """Every archive file of these sessions: those the store knows of, and those named after the sessions
    (copies this store never read, e.g. from before a rebuild)."""
    found: set[Path] = set()
    for path, archived in _in(conn, "SELECT path, archive_path FROM files WHERE session_key IN ({})", keys):
        for p in (path, archived):
            inside = _inside(archive_dir, Path(p)) if p else None
            if inside is not None:
                found.update(archive.generations(inside))
    for p in archive_dir.rglob("*") if archive_dir.is_dir() else ():
        named = archive.transcript_name(p)
        if named is None and not p.name.endswith(".meta.json"):  # a sub-agent's type and task
            continue
        stem = named[0].removesuffix(".jsonl") if named else ""
        folders = p.relative_to(archive_dir).parts[:-1]
        outside = folders[:1] == ("_other",) and any(stem.endswith(f"-{i}") for i in ids)
        if stem in ids or any(f in ids for f in folders) or outside:  # a session, or its sub-agents' folder
            found.add(p)
    return found


def _inside(archive_dir: Path, path: Path) -> Path | None:
    """`path` as a path under `archive_dir` (the store keeps copies it read by their resolved path), or None."""
    for root in (archive_dir, archive_dir.resolve()):
        if path.is_relative_to(root):
            return archive_dir / path.relative_to(root)
    return None


def _delete_archive(archive_dir: Path, files: set[Path]) -> int:
    for path in files:
        path.unlink(missing_ok=True)
        for folder in path.parents:  # a session's sub-agent folders, once empty
            if folder == archive_dir or not folder.is_relative_to(archive_dir):
                break
            try:
                folder.rmdir()
            except OSError:
                break
    return len(files)


def _delete_rows(conn: sqlite3.Connection, keys: list[str], report: ForgetReport) -> None:
    """Delete the sessions' rows; the chunk triggers take their FTS rows and vectors with them."""
    with write_transaction(conn):
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS doomed(key TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM doomed")
        conn.executemany("INSERT OR IGNORE INTO doomed(key) VALUES (?)", [(k,) for k in keys])
        within = "session_key IN (SELECT key FROM doomed)"
        report.chunks = conn.execute(f"DELETE FROM chunks WHERE {within}").rowcount
        conn.execute(f"DELETE FROM record_uuids WHERE {within}")
        report.turns = conn.execute(f"DELETE FROM turns WHERE {within}").rowcount
        conn.execute(f"DELETE FROM session_memories WHERE {within}")
        conn.execute(f"DELETE FROM skipped_lines WHERE path IN (SELECT path FROM files WHERE {within})")
        conn.execute(f"DELETE FROM files WHERE {within}")
        report.transcripts = conn.execute(
            "DELETE FROM sessions WHERE key IN (SELECT key FROM doomed)"
        ).rowcount
        conn.execute("DELETE FROM doomed")


def _remove_runs(runs: Path, since: datetime | None) -> list[str]:
    """Training runs that may hold the forgotten text (data, checkpoints, examples): a resumed run would
    train on it again. Runs made before the earliest forgotten session began are kept."""
    removed: list[str] = []
    if not runs.is_dir():
        return removed
    for run in sorted(runs.iterdir()):
        made = _run_time(run.name)
        if not run.is_dir() or run.name.startswith(".") or (since and made and made < since):
            continue
        doomed = runs / f".forget-{run.name}-{os.getpid()}"
        try:
            os.rename(run, doomed)
        except OSError:
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(run.name)
    return removed


def _run_time(name: str) -> datetime | None:
    found = re.fullmatch(r"r-(\d{8}-\d{6})(?:-\d+)?", name)
    return datetime.strptime(found[1], "%Y%m%d-%H%M%S") if found else None


# ----------------------------------------------------------------------------------------- CLI


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser(
        "forget",
        parents=[common],
        help="delete sessions from the store, the archive and the indexes, for good",
        description="Forget sessions: they are deleted everywhere lmm-mcp keeps them and never ingested again; "
        "adapters trained on them are marked stale.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", help="a Claude Code session id (its sub-agents go too)")
    which.add_argument("--project", help="a project path: every session in it and in folders under it")
    which.add_argument("--before", help="every session that ended before this date (YYYY-MM-DD, UTC)")
    p.set_defaults(run=cmd_forget)


def cmd_forget(cfg: Any, args: Any) -> int:
    from lmm_mcp.app import App

    with App.open(cfg) as app:
        report = forget(app, session=args.session, project=args.project, before=args.before)
    text = (
        f"forgot {len(report.sessions)} session(s): {report.turns} turns, {report.chunks} chunks, "
        f"{report.archive_files} archive file(s), {report.memories_removed} memories"
    )
    if report.stale_adapters:
        text += f"\nstale adapters (retrain to drop what they learned): {', '.join(report.stale_adapters)}"
    emit(args.json, report.as_dict(), text)
    return 0


def emit(as_json: bool, doc: dict[str, Any], text: str) -> None:
    """One JSON document, or the text for a person, on stdout."""
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
    else:
        print(text)
    sys.stdout.flush()
