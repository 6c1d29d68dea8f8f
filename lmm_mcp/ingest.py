"""Incremental, idempotent ingest of Claude Code transcripts into the store.

Per file the store remembers identity (device, inode, a hash of the first bytes), size and the byte offset
after the last complete line. An unchanged file costs one `stat`; a grown file is read from its offset; a
replaced or truncated file is read again from the start (turn uuids make that idempotent).

Each segment of new lines is parsed and redacted outside any transaction, then written in one short
transaction together with the new offset and the archive size, after checking that no other process moved
the offset meanwhile (if one did, we start over from its offset). So a kill at any point leaves either all
of a segment or none of it, and two processes ingesting one folder never store a line twice.

The archive's `.jsonl.gz` copies read like transcripts (`lmm-mcp ingest <home>/archive`, `lmm-mcp rebuild`):
decompressed as they are read, resumed from their decompressed offset when they grow, never archived again.
Before a line goes anywhere its `<private>` spans are cut out, and lines of an excluded project or of a
forgotten session are dropped (lmm_mcp.privacy).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sqlite3
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from lmm_mcp import archive, privacy
from lmm_mcp.chunking import chunk_kind, chunk_turn
from lmm_mcp.config import Config
from lmm_mcp.memories import MemoryReport
from lmm_mcp.queries import third_party_outputs, tool_origin
from lmm_mcp.store import project_id, write_transaction
from lmm_mcp.turns import INSERT_TURN, load_turn, turn_row
from transcripts.parse import (
    Line,
    Link,
    Skipped,
    Title,
    TranscriptFile,
    Turn,
    classify,
    discover,
    load_json,
    merge_streamed,
    parse_record,
    read_lines,
    regular_files,
)
from transcripts.provenance import ASSISTANT, RELAY_WINDOW, THIRD_PARTY, call_origin, quotes, turn_origin
from transcripts.redact import Redactor

SEGMENT_BYTES = 16 * 1024 * 1024  # parsed in memory before one transaction; bounds memory per file
HEAD_BYTES = 4096
MAX_SKIPPED_ROWS = 1000  # reasons kept per file; beyond that only the count grows
# Each chunk is also indexed with the starts of its neighbours (what was asked before an answer, which
# command produced an output): +0.1 LoCoMo recall@10 over the chunk alone (docs/benchmarks.md).
CONTEXT_CHARS = 300


@dataclass
class IngestReport:
    files: int = 0
    files_changed: int = 0
    sessions: int = 0  # sessions that gained turns
    turns: int = 0
    chunks: int = 0
    lines: int = 0
    lines_skipped: int = 0
    secrets_redacted: int = 0
    private_spans: int = 0  # <private>…</private> spans cut out
    lines_excluded: int = 0  # lines of an excluded project, dropped
    chunks_embedded: int = 0
    embed_seconds: float = 0.0
    embed_error: str | None = None  # why embedding failed (the ingest itself stands); see lmm_mcp.app
    memories: MemoryReport | None = None  # the memory refresh that followed (App.ingest)
    errors: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # first few reasons, for the user
    secrets_by_kind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Segment:
    start: int
    end: int
    line_no: int
    raw: list[bytes] = field(default_factory=list)  # redacted lines, for the archive
    items: list[Any] = field(default_factory=list)
    secrets: Counter[str] = field(default_factory=Counter)
    env_tool_ids: set[str] = field(default_factory=set)  # tool calls that read a .env file
    lines: int = 0
    exhausted: bool = True
    compressed: bool = False  # an archive copy: offsets count decompressed bytes
    folder_excluded: bool = False  # the file sits in an excluded project's folder (for lines without a cwd)
    private_spans: int = 0
    lines_excluded: int = 0

    def drop(self) -> None:
        """Keep nothing of this segment but its offsets: it belongs to a forgotten session."""
        self.raw, self.items, self.secrets = [], [], Counter()


class _Moved(Exception):
    """Another process ingested this file while we parsed it: start again from its offset."""


class Ingester:
    """Ingest transcripts with one store connection; create once per process."""

    def __init__(self, cfg: Config, conn: sqlite3.Connection, redactor: Redactor | None = None):
        self.cfg = cfg
        self.conn = conn
        self.redactor = redactor or Redactor()

    def ingest(
        self, paths: Iterable[Path] | None = None, progress: Callable[[TranscriptFile], None] | None = None
    ) -> IngestReport:
        """Ingest files or folders (default: the whole Claude projects folder)."""
        t0 = time.perf_counter()
        report = IngestReport()
        roots = list(paths) if paths else [self.cfg.claude_dir]
        files: list[TranscriptFile] = []
        for root in roots:
            if not root.exists():
                report.errors.append(f"{root}: no such file or folder")
                continue
            files.extend(_discover(root))
        sessions: set[str] = set()
        for tf in files:
            report.files += 1
            try:
                self.ingest_file(tf, report, sessions)
            except OSError as e:  # vanished or unreadable: the others still go in
                report.errors.append(f"{tf.path}: {e.strerror or e}")
            if progress:
                progress(tf)
        report.sessions = len(sessions)
        report.seconds = time.perf_counter() - t0
        return report

    def ingest_file(self, tf: TranscriptFile, report: IngestReport, sessions: set[str]) -> None:
        path = str(tf.path.resolve())
        from_archive = self._in_archive(path)
        changed = False
        while True:
            st = os.stat(path)
            state = self._state(path)
            plan = self._plan(path, st, state)
            if plan is None:
                break
            start, line_no, generation, archive_file, archive_size = plan
            segment = self._read_segment(tf, start, line_no)
            if segment.end == start and generation == (state or {}).get("generation"):
                break  # only a partial last line so far
            try:
                with write_transaction(self.conn):
                    if self._state(path) != state:
                        raise _Moved
                    key = (state or {}).get("session_key") or self._session_key(tf, segment)
                    forgotten = key is not None and privacy.is_forgotten(self.conn, key)
                    if forgotten:
                        segment.drop()
                    new_size = archive_size
                    if not (from_archive or forgotten):
                        new_size = archive.append(archive_file, archive_size, segment.raw)
                        self._archive_meta(tf, archive_file)
                    added = self._apply(tf, segment, path, generation, sessions, state)
                    self._save_state(path, st, state, segment, generation, archive_file, new_size, added)
            except _Moved:
                continue
            changed = True
            report.turns += added["turns"]
            report.chunks += added["chunks"]
            report.lines += segment.lines
            report.private_spans += segment.private_spans
            report.lines_excluded += segment.lines_excluded
            report.lines_skipped += added["skipped"]
            report.secrets_redacted += sum(segment.secrets.values())
            for kind, n in segment.secrets.items():
                report.secrets_by_kind[kind] = report.secrets_by_kind.get(kind, 0) + n
            for item in segment.items:
                if isinstance(item, Skipped) and len(report.skipped) < 20:
                    report.skipped.append({"path": path, "line": item.line_no, "reason": item.reason})
            if segment.exhausted:
                break
        report.files_changed += changed

    # ----------------------------------------------------------------------------------------- state

    def _state(self, path: str) -> dict[str, Any] | None:
        cur = self.conn.execute("SELECT * FROM files WHERE path = ?", (path,))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None

    def _in_archive(self, path: str) -> bool:
        return Path(path).is_relative_to(self.cfg.archive_dir.resolve())

    def _plan(self, path: str, st: os.stat_result, state: dict[str, Any] | None) -> tuple | None:
        """Where to read from: (start, line_no, generation, archive file, archive size), or None if unchanged."""
        if state is not None:
            # An archive copy's offset counts decompressed bytes: its compressed size tells growth.
            compressed = archive.transcript_name(Path(path)) is not None
            read_up_to = state["size"] if compressed else state["offset"]
            head = int(state["head_hash"].split(":")[0]) if compressed else min(state["offset"], HEAD_BYTES)
            same_file = (
                state["dev"] == st.st_dev
                and state["ino"] == st.st_ino
                and st.st_size >= read_up_to
                and state["head_hash"] == _head_hash(path, head)
            )
            if same_file:
                if st.st_size == read_up_to:
                    return None
                return (
                    state["offset"],
                    state["line_no"],
                    state["generation"],
                    Path(state["archive_path"]),
                    state["archive_size"],
                )
        generation = (state["generation"] + 1) if state else 1
        if self._in_archive(path):
            return 0, 0, generation, Path(path), 0  # read back, never archived again
        dest = archive.archive_path(self.cfg.archive_dir, Path(path), self.cfg.claude_dir, generation)
        while self._claimed(dest):  # e.g. a copy a rebuild read: never cut back to 0 by a new file
            generation += 1
            dest = archive.archive_path(self.cfg.archive_dir, Path(path), self.cfg.claude_dir, generation)
        return 0, 0, generation, dest, 0

    def _archive_meta(self, tf: TranscriptFile, archive_file: Path) -> None:
        """Keep a sub-agent's type and task beside its archive copy, redacted, so a rebuild has them."""
        meta = archive_file.with_name(f"agent-{tf.agent_id}.meta.json")
        if not tf.is_subagent or tf.session_id is None or meta.exists():
            return
        doc = orjson.dumps(
            {"agentType": tf.agent_type, "description": tf.description, "toolUseId": tf.tool_use_id}
        )
        doc, _ = self.redactor.redact_bytes(privacy.drop_private(doc)[0])
        meta.write_bytes(doc)

    def _claimed(self, dest: Path) -> bool:
        """Does the store already account for this archive file (as a copy it wrote or a file it read)?"""
        row = self.conn.execute(
            "SELECT 1 FROM files WHERE archive_path = ? OR path = ? LIMIT 1", (str(dest), str(dest))
        ).fetchone()
        return row is not None

    def _save_state(
        self, path, st, old, seg: _Segment, generation, archive_file, archive_size, added
    ) -> None:
        carried = old if old and old["generation"] == generation else None
        self.conn.execute(
            "INSERT OR REPLACE INTO files(path, session_key, dev, ino, size, offset, line_no, head_hash,"
            " generation, archive_path, archive_size, lines_skipped, secrets_redacted, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                path,
                added["session_key"] or (old or {}).get("session_key"),
                st.st_dev,
                st.st_ino,
                st.st_size if seg.exhausted or not seg.compressed else -1,  # -1: read on
                seg.end,
                seg.line_no,
                _head_hash(path, min(st.st_size if seg.compressed else seg.end, HEAD_BYTES)),
                generation,
                str(archive_file),
                archive_size,
                (carried["lines_skipped"] if carried else 0) + added["skipped"],
                (carried["secrets_redacted"] if carried else 0) + sum(seg.secrets.values()),
                datetime.now().astimezone().isoformat(timespec="seconds"),
            ),
        )

    # ----------------------------------------------------------------------------------------- parse

    def _read_segment(self, tf: TranscriptFile, start: int, line_no: int) -> _Segment:
        seg = _Segment(start, start, line_no, compressed=archive.transcript_name(tf.path) is not None)
        seg.folder_excluded = bool(self.cfg.exclude_projects) and privacy.excluded_folder(
            self._folder(tf.path), self.cfg.exclude_projects
        )
        parsed: list[Any] = []
        with archive.open_lines(tf.path) as fh:
            try:
                for line in read_lines(fh, start, line_no=line_no, limit=SEGMENT_BYTES):
                    seg.lines += 1
                    seg.end, seg.line_no = line.end, line.line_no
                    item = self._parse_line(line, seg)
                    if item is not None:
                        parsed.append(item)
            except EOFError:
                pass  # an archive copy's last gzip member is still being written: read it next time
            except (zlib.error, gzip.BadGzipFile) as e:  # later bytes are not readable
                parsed.append(Skipped(seg.line_no + 1, seg.end, f"archive copy damaged from here: {e}"))
            at_end = _drained(fh) if seg.compressed else fh.tell() >= os.fstat(fh.fileno()).st_size
            seg.exhausted = at_end or seg.end - start < SEGMENT_BYTES
        seg.items = list(merge_streamed(iter(parsed)))
        return seg

    def _folder(self, path: Path) -> str:
        """The Claude projects folder a transcript (or its archive copy) sits in."""
        for root in (self.cfg.claude_dir, self.cfg.archive_dir):
            try:
                return path.resolve().relative_to(root.resolve()).parts[0]
            except (ValueError, IndexError):
                continue
        return path.parents[2].name if path.parent.name == "subagents" else path.parent.name

    def _parse_line(self, line: Line, seg: _Segment) -> Any:
        if line.data is None:
            return Skipped(line.line_no, line.start, "line too long to hold in memory")
        if not line.data.strip():
            return None
        data, spans = privacy.drop_private(line.data)
        seg.private_spans += spans
        raw, found = self.redactor.redact_bytes(data)
        try:
            obj = load_json(raw)
        except orjson.JSONDecodeError as e:
            # Not JSON: not archived either (garbage, or bytes from a torn write).
            seg.secrets.update(found)
            return Skipped(line.line_no, line.start, f"invalid JSON: {str(e).splitlines()[0][:120]}")
        if self._excluded(obj, seg):
            seg.lines_excluded += 1
            return None
        seg.secrets.update(found)
        maybe_env = b".env" in raw or b'"tool_result"' in raw
        if (
            maybe_env
            and isinstance(obj, dict)
            and self.redactor.redact_env_reads(obj, seg.env_tool_ids, seg.secrets, self._read_env_before)
        ):
            raw = orjson.dumps(obj) + b"\n"
        seg.raw.append(raw if raw.endswith(b"\n") else raw + b"\n")
        try:
            return parse_record(obj, line.line_no)
        except ValueError as e:
            return Skipped(line.line_no, line.start, str(e))

    def _excluded(self, obj: Any, seg: _Segment) -> bool:
        cwd = obj.get("cwd") if isinstance(obj, dict) else None
        if isinstance(cwd, str) and cwd:
            return privacy.excluded(cwd, self.cfg.exclude_projects)
        return seg.folder_excluded

    def _read_env_before(self, tool_use_id: Any) -> bool:
        """Did an earlier ingest see this tool call read a .env file? (The result may come a batch later.)"""
        return (
            isinstance(tool_use_id, str)
            and self.conn.execute(
                "SELECT 1 FROM env_tool_uses WHERE tool_use_id = ?", (tool_use_id,)
            ).fetchone()
            is not None
        )

    # ----------------------------------------------------------------------------------------- write

    def _apply(
        self,
        tf: TranscriptFile,
        seg: _Segment,
        path: str,
        generation: int,
        sessions: set[str],
        state: dict[str, Any] | None,
    ) -> dict:
        added = {"turns": 0, "chunks": 0, "skipped": 0, "session_key": None}
        conn = self.conn
        key = (state or {}).get("session_key") or self._session_key(tf, seg)
        added["session_key"] = key
        project: int | None = None
        conn.executemany(
            "INSERT OR IGNORE INTO env_tool_uses(tool_use_id) VALUES (?)", [(t,) for t in seg.env_tool_ids]
        )
        last_chunk = conn.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()[0]
        for item in seg.items:
            if isinstance(item, Skipped):
                added["skipped"] += 1
                conn.execute(
                    "INSERT OR IGNORE INTO skipped_lines(path, generation, line_no, reason) SELECT ?,?,?,?"
                    " WHERE (SELECT count(*) FROM skipped_lines WHERE path = ? AND generation = ?) < ?",
                    (path, generation, item.line_no, item.reason, path, generation, MAX_SKIPPED_ROWS),
                )
            elif key is None:
                continue
            elif isinstance(item, Turn):
                if project is None:
                    project = self._session(key, tf, item, path)
                turns, chunks = self._write_turn(key, item, project)
                added["turns"] += turns
                added["chunks"] += chunks
                if turns or chunks:
                    sessions.add(key)
            elif isinstance(item, Link):
                conn.execute(
                    "INSERT OR IGNORE INTO record_uuids(session_key, uuid, turn_id)"
                    " SELECT ?, ?, turn_id FROM record_uuids WHERE session_key = ? AND uuid = ?",
                    (key, item.uuid, key, item.parent_uuid),
                )
            elif isinstance(item, Title):
                self._title(key, item)
        if key is not None and added["chunks"]:
            self._refresh_context(key, last_chunk)
        return added

    def _refresh_context(self, key: str, after_id: int) -> None:
        """Give new chunks, and the two before them, the starts of their ±2 neighbours as context."""
        conn = self.conn
        before = conn.execute(
            "SELECT id, text, ctx FROM chunks WHERE session_key = ? AND id <= ? ORDER BY id DESC LIMIT 4",
            (key, after_id),
        ).fetchall()[::-1]
        new = conn.execute(
            "SELECT id, text, ctx FROM chunks WHERE session_key = ? AND id > ? ORDER BY id", (key, after_id)
        ).fetchall()
        window = before + new
        heads = [row[1][:CONTEXT_CHARS] for row in window]
        updates = []
        for i in range(max(0, len(before) - 2), len(window)):
            ctx = "\n".join(heads[j] for j in (i - 2, i - 1, i + 1, i + 2) if 0 <= j < len(window))
            if ctx != window[i][2]:
                updates.append((ctx, window[i][0]))
        conn.executemany("UPDATE chunks SET ctx = ? WHERE id = ?", updates)

    def _session_key(self, tf: TranscriptFile, seg: _Segment) -> str | None:
        """The session a file's turns belong to, the first time the file is read."""
        parent = tf.session_id
        if parent is None:  # a 2.0 agent file names its parent only inside its records
            parent = next((i.session_id for i in seg.items if isinstance(i, Turn) and i.session_id), None)
            if parent is None:
                return None
        return f"{parent}/agent-{tf.agent_id}" if tf.is_subagent else parent

    def _session(self, key: str, tf: TranscriptFile, first: Turn, path: str) -> int | None:
        """Create or refresh the session row; returns its project id."""
        row = self.conn.execute("SELECT project_id FROM sessions WHERE key = ?", (key,)).fetchone()
        if row:
            return row[0]
        project = project_id(self.conn, first.cwd) if first.cwd else None
        session_id = key.split("/agent-")[0] if tf.is_subagent else (first.session_id or key)
        self.conn.execute(
            "INSERT INTO sessions(key, session_id, agent_id, agent_type, description, parent_tool_use_id,"
            " project_id, git_branch, version, started_at, ended_at, file_path) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                key,
                session_id,
                tf.agent_id,
                tf.agent_type,
                tf.description,
                tf.tool_use_id,
                project,
                first.git_branch,
                first.version,
                first.timestamp,
                first.timestamp,
                path,
            ),
        )
        return project

    def _write_turn(self, key: str, turn: Turn, project: int | None) -> tuple[int, int]:
        conn = self.conn
        if turn.message_id and turn.role == "assistant":
            row = conn.execute(
                "SELECT id FROM turns WHERE session_key = ? AND message_id = ?", (key, turn.message_id)
            ).fetchone()
            if row:
                return 0, self._merge_into(key, row[0], turn, project)
        cur = conn.execute(INSERT_TURN, turn_row(key, turn))
        if cur.rowcount == 0:
            return 0, 0  # seen before: re-ingest adds nothing
        turn_id = cur.lastrowid
        conn.executemany(
            "INSERT OR IGNORE INTO record_uuids(session_key, uuid, turn_id) VALUES (?,?,?)",
            [(key, u, turn_id) for u in turn.record_uuids],
        )
        if turn.timestamp:
            conn.execute(
                "UPDATE sessions SET ended_at = max(coalesce(ended_at, ''), ?),"
                " started_at = min(coalesce(started_at, ?), ?) WHERE key = ?",
                (turn.timestamp, turn.timestamp, turn.timestamp, key),
            )
        return 1, self._write_chunks(key, turn_id, turn, project)

    def _merge_into(self, key: str, turn_id: int, later: Turn, project: int | None) -> int:
        """A streamed message continued in a later ingest: fold the new blocks in and re-chunk the turn."""
        conn = self.conn
        new_uuids = [
            u
            for u in later.record_uuids
            if not conn.execute(
                "SELECT 1 FROM record_uuids WHERE session_key = ? AND uuid = ?", (key, u)
            ).fetchone()
        ]
        if not new_uuids:
            return 0  # already merged (re-ingest of a replaced file)
        turn = load_turn(conn, turn_id)
        assert turn is not None  # found by its message id in this transaction
        turn.merge(later)
        conn.execute(
            "UPDATE turns SET text = ?, thinking = ?, tool_calls = ?, tool_results = ?, kind = ? WHERE id = ?",
            (
                turn.text,
                turn.thinking,
                orjson.dumps(turn.tool_calls).decode(),
                orjson.dumps(turn.tool_results).decode(),
                turn.kind,
                turn_id,
            ),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO record_uuids(session_key, uuid, turn_id) VALUES (?,?,?)",
            [(key, u, turn_id) for u in new_uuids],
        )
        conn.execute("DELETE FROM chunks WHERE turn_id = ?", (turn_id,))
        return self._write_chunks(key, turn_id, turn, project)

    def _write_chunks(self, key: str, turn_id: int, turn: Turn, project: int | None) -> int:
        """The turn's chunks, each with its origin; a turn's tool calls leave theirs for the results to come."""
        conn = self.conn
        conn.executemany(
            "INSERT OR REPLACE INTO tool_origins(tool_use_id, origin) VALUES (?, ?)",
            [(c.id, call_origin(c, turn.cwd)) for c in turn.tool_calls if c.id],
        )
        texts = chunk_turn(turn)
        if texts:
            ts, kind = _epoch(turn.timestamp), chunk_kind(turn)
            origin = _origin(conn, key, turn)
            conn.executemany(
                "INSERT INTO chunks(turn_id, session_key, session_id, uuid, project_id, timestamp, ts, kind,"
                " text, origin) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (turn_id, key, turn.session_id, turn.uuid, project, turn.timestamp, ts, kind, t, origin)
                    for t in texts
                ],
            )
        return len(texts)

    def _title(self, key: str, title: Title) -> None:
        target = key
        if title.leaf_uuid:
            row = self.conn.execute(
                "SELECT session_key FROM record_uuids WHERE uuid = ? LIMIT 1", (title.leaf_uuid,)
            ).fetchone()
            if row:
                target = row[0]
        self.conn.execute("UPDATE sessions SET title = ? WHERE key = ?", (title.text, target))


def _discover(root: Path) -> list[TranscriptFile]:
    """Transcripts under `root` (or `root` itself), then archive copies in the order they were made."""
    copies: list[tuple[str, int, TranscriptFile]] = []
    candidates = [root] if root.is_file() else regular_files(root, "*.gz")
    for path in candidates:
        named = archive.transcript_name(path)
        original = classify(path.with_name(named[0])) if named else None
        if named and original is not None and "tool-results" not in path.parts:
            copies.append((str(original.path), named[1], replace(original, path=path)))
    return discover(root) + [tf for *_, tf in sorted(copies, key=lambda c: (c[0], c[1]))]


def _drained(fh: Any) -> bool:
    """Has an archive copy nothing left to decompress?"""
    try:
        return not fh.peek(1)
    except (EOFError, zlib.error, OSError):
        return True


def _origin(conn: sqlite3.Connection, key: str, turn: Turn) -> str:
    """Who wrote a turn's text (transcripts.provenance); an assistant reply that repeats a page it fetched
    relays the page's words, not its own, and counts as third-party."""
    origin = turn_origin(turn, lambda tool_use_id: tool_origin(conn, tool_use_id))
    if origin == ASSISTANT and turn.text and quotes(turn.text, third_party_outputs(conn, key, RELAY_WINDOW)):
        return THIRD_PARTY
    return origin


def _head_hash(path: str, length: int) -> str:
    with open(path, "rb") as fh:
        data = fh.read(length)
    return f"{len(data)}:{hashlib.blake2b(data, digest_size=16).hexdigest()}"


def _epoch(timestamp: str | None) -> float | None:
    if not timestamp:
        return None
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
