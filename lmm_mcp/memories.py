"""Memories in the store: memories extracted from the ingested sessions, merged, and indexed like chunks.

    report = refresh_memories(conn)      # after an ingest: re-extract grown sessions, re-merge, re-index
    memories = load_memories(conn)       # transcripts.extraction.Memory objects, most salient first

Extraction (`transcripts.extraction.extract_session`) runs per session on the turns the store holds, and its result
is kept per session (`session_memories`), so a session that grew is the only one read again, and a session read
by older rules (`EXTRACTION_RULES`) is read again once. The merge over all
sessions (`transcripts.extraction.combine`) is cheap next to extraction and runs whenever any session changed.
Every merged memory is a row of `memories` and also a chunk of kind 'memory' (session_key 'memory:<key>'),
so BM25 and the vector index retrieve memories and transcript text alike; a memory whose text changed gets a
new chunk (and so a new vector), one whose salience or sources changed keeps its chunk. The user's own edits
(`lmm_mcp.edits`: a memory corrected or forgotten) are applied to every merge, so re-extraction never undoes them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime

import orjson

from lmm_mcp.store import project_id, write_transaction
from lmm_mcp.turns import session_windows
from transcripts.extraction import EXTRACTION_RULES, Memory, combine, extract_session, extract_windows
from transcripts.parse import Turn

WRITE_BATCH = 50  # sessions whose extraction is written per transaction
EXTRACT_WINDOW_CHARS = (
    32_000_000  # stored text a session's extraction holds at once; larger ones go in windows
)


@dataclass
class MemoryReport:
    sessions_extracted: int = 0
    memories: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


def refresh_memories(
    conn: sqlite3.Connection,
    *,
    progress: Callable[[int], None] | None = None,
    force: bool = False,
    remerge: bool = False,
) -> MemoryReport:
    """Extract memories from sessions that are new or grew since their last extraction, then re-merge
    (`remerge`: even when none did, as after sessions were forgotten)."""
    started = time.perf_counter()
    report = MemoryReport()
    stale = _stale_sessions(conn, force)
    pending: list[tuple[str, int, bytes]] = []
    for key, turns in stale:
        found = _extract(conn, key)
        # orjson writes dataclasses as `asdict` would, ~10x faster (Memory.from_dict reads them back)
        pending.append((key, turns, orjson.dumps(found)))
        if len(pending) >= WRITE_BATCH:
            _write_extractions(conn, pending)
            pending = []
        report.sessions_extracted += 1
        if progress:
            progress(1)
    _write_extractions(conn, pending)
    has_memories = conn.execute("SELECT 1 FROM memories LIMIT 1").fetchone() is not None
    has_extractions = conn.execute("SELECT 1 FROM session_memories LIMIT 1").fetchone() is not None
    if stale or force or remerge or (has_extractions and not has_memories):
        rows = conn.execute("SELECT memories FROM session_memories").fetchall()
        merged = combine([Memory.from_dict(d) for d in orjson.loads(r[0])] for r in rows)
        _write_memories(conn, with_edits(merged, _edits(conn)), report)
    report.memories = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
    report.seconds = time.perf_counter() - started
    return report


def _extract(conn: sqlite3.Connection, key: str) -> list[Memory]:
    """A session's memories, from all its turns at once, or window by window when it is too large to hold
    (a multi-GB transcript): memory stays bounded by the window, whatever the session's size."""
    windows = session_windows(conn, key, EXTRACT_WINDOW_CHARS)
    held = [next(windows, [])]
    later = next(windows, None)
    if later is None:
        return extract_session(held.pop())
    held.append(later)
    del later
    return extract_windows(_handed_over(held, windows))


def _handed_over(held: list[list[Turn]], rest: Iterator[list[Turn]]) -> Iterator[list[Turn]]:
    """`held` then `rest`, each window let go once handed over."""
    while held:
        yield held.pop(0)
    yield from rest


KEPT_ATTRS = ("kind", "changed_at", "day")  # what a corrected memory keeps whatever its new text says


def with_edits(merged: list[Memory], edits: dict[str, tuple[str, str | None]]) -> list[Memory]:
    """`merged` with the user's edits applied (key -> (action, text)): a corrected memory gets its new text,
    a forgotten one is dropped, and one that a forgotten memory superseded points past it (to what replaced
    that one in turn), or stands again when nothing did: the user said the newer statement was wrong."""
    if not edits:
        return merged
    successor = {m.key: m.superseded_by for m in merged}
    forgotten = {key for key, (action, _text) in edits.items() if action == "forget"}

    def standing(key: str | None) -> str | None:
        seen: set[str] = set()
        while key in forgotten and key not in seen:
            seen.add(key)
            key = successor.get(key)
        return None if key in forgotten else key

    out = []
    for m in merged:
        if m.key in forgotten:
            continue
        action, text = edits.get(m.key, ("", None))
        if action == "correct" and text:
            m = corrected(m, text)
        out.append(replace(m, superseded_by=standing(m.superseded_by)))
    return out


def corrected(m: Memory, text: str) -> Memory:
    """`m` saying `text`, with only the keywords and attributes that the new text still says: the old ones (a
    decision's choice, the user's quoted words) would teach the old memory again, as training words questions
    and documents from them (trainer.pairs), and would still match it in search."""
    said = text.lower()
    keywords = [k for k in m.keywords if k.lower() in said]
    attrs = {
        k: v for k, v in m.attrs.items() if k in KEPT_ATTRS or (isinstance(v, str) and v.lower() in said)
    }
    return replace(m, text=text, keywords=keywords, attrs=attrs)


def _edits(conn: sqlite3.Connection) -> dict[str, tuple[str, str | None]]:
    return {
        key: (action, text)
        for key, action, text in conn.execute("SELECT key, action, text FROM memory_edits")
    }


def load_memories(conn: sqlite3.Connection, *, include_superseded: bool = True) -> list[Memory]:
    where = "" if include_superseded else " WHERE superseded_by IS NULL"
    rows = conn.execute(
        "SELECT key, category, text, keywords, salience, project, superseded_by, attrs, sources FROM memories"
        f"{where} ORDER BY salience DESC, key"
    ).fetchall()
    return [
        Memory.from_dict(
            {
                "key": r[0],
                "category": r[1],
                "text": r[2],
                "keywords": orjson.loads(r[3]),
                "salience": r[4],
                "project": r[5],
                "superseded_by": r[6],
                "attrs": orjson.loads(r[7]),
                "sources": orjson.loads(r[8]),
            }
        )
        for r in rows
    ]


def _stale_sessions(conn: sqlite3.Connection, force: bool) -> list[tuple[str, int]]:
    """Sessions never extracted, grown since, or extracted by older rules; with `force` every session."""
    rows = conn.execute(
        "SELECT t.session_key, count(*), m.turns, m.rules FROM turns t"
        " LEFT JOIN session_memories m ON m.session_key = t.session_key GROUP BY t.session_key"
    ).fetchall()
    return [(key, n) for key, n, done, rules in rows if force or done != n or rules != EXTRACTION_RULES]


def _write_extractions(conn: sqlite3.Connection, rows: list[tuple[str, int, bytes]]) -> None:
    if not rows:
        return
    with write_transaction(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO session_memories(session_key, turns, memories, rules) VALUES (?, ?, ?, ?)",
            [(k, n, m.decode(), EXTRACTION_RULES) for k, n, m in rows],
        )


def _write_memories(conn: sqlite3.Connection, merged: list[Memory], report: MemoryReport) -> None:
    """Make `memories` and the memory chunks equal `merged`, touching only what changed."""
    with write_transaction(conn):
        old = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT key, text, keywords, project, superseded_by, chunk_id FROM memories"
            )
        }
        new_keys = {m.key for m in merged}
        for key, (_text, _kw, _project, _sup, chunk_id) in old.items():
            if key not in new_keys:
                conn.execute("DELETE FROM chunks WHERE id = ?", (chunk_id,))
                conn.execute("DELETE FROM memories WHERE key = ?", (key,))
                report.removed += 1
        for m in merged:
            keywords = orjson.dumps(m.keywords).decode()
            prev = old.get(m.key)
            chunk_id = prev[4] if prev else None
            if prev is None or prev[:4] != (m.text, keywords, m.project, m.superseded_by):
                if chunk_id is not None:
                    conn.execute("DELETE FROM chunks WHERE id = ?", (chunk_id,))
                chunk_id = _insert_chunk(conn, m)
                report.added += prev is None
                report.changed += prev is not None
            conn.execute(
                "INSERT OR REPLACE INTO memories(key, category, text, keywords, salience, project, superseded_by,"
                " attrs, sources, last_seen, chunk_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    m.key,
                    m.category,
                    m.text,
                    keywords,
                    m.salience,
                    m.project,
                    m.superseded_by,
                    orjson.dumps(m.attrs).decode(),
                    orjson.dumps([s.__dict__ for s in m.sources]).decode(),
                    m.time or None,
                    chunk_id,
                ),
            )


def _insert_chunk(conn: sqlite3.Connection, m: Memory) -> int:
    cited = m.cited()
    text = m.text if not m.superseded_by else f"{m.text} (superseded by a later one)"
    return conn.execute(
        "INSERT INTO chunks(turn_id, session_key, session_id, uuid, project_id, timestamp, ts, kind, text, ctx)"
        " VALUES (NULL, ?, ?, ?, ?, ?, ?, 'memory', ?, ?)",
        (
            f"memory:{m.key}",
            cited.session_id if cited else "",
            cited.uuid if cited else "",
            project_id(conn, m.project) if m.project else None,
            m.time or None,
            _epoch(m.time),
            text,
            " ".join([*m.keywords, m.attrs.get("terms", "")]).strip(),  # asked-with words, beside the text
        ),
    ).lastrowid


def _epoch(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
