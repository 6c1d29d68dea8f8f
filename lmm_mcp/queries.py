"""Read queries over the store, for the parts that only read: hooks, server, demo, CLI, the trainer's view.

    has_vectors(conn)                            # is any chunk embedded? (else retrieval is BM25 only)
    current_memories(conn, ("preference",))      # memories in force, most salient first
    last_session(conn, "/home/me/shop")          # where the last session in a project stopped

The writers own their SQL (`ingest`, `memories`, `embed`, `turns`) and retrieval its ranking queries; every
other module asks here, so a schema change touches the store side only.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class StoredMemory:
    category: str
    text: str
    project: str | None  # None: a cross-project memory
    last_seen: str | None


@dataclass(frozen=True)
class LastSession:
    key: str
    title: str | None
    ended_at: str | None
    last_prompts: list[str]  # the user's last prompts, newest first
    last_tool_results: list[dict[str, Any]]  # the results in the session's last tool-result turn


def has_vectors(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM vectors LIMIT 1").fetchone() is not None


def last_ingest(conn: sqlite3.Connection) -> str | None:
    """When a transcript was last read (local time, ISO)."""
    return conn.execute("SELECT max(updated_at) FROM files").fetchone()[0]


def memory_counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Per category: memories, and how many of them a later one superseded."""
    rows = conn.execute(
        "SELECT category, count(*), sum(superseded_by IS NOT NULL) FROM memories GROUP BY category ORDER BY category"
    )
    return {cat: {"memories": n, "superseded": sup} for cat, n, sup in rows}


def current_memories(conn: sqlite3.Connection, categories: tuple[str, ...]) -> list[StoredMemory]:
    """Memories in force (not superseded) of these categories, most salient first, then newest."""
    rows = conn.execute(
        "SELECT category, text, project, last_seen FROM memories"
        f" WHERE superseded_by IS NULL AND category IN ({','.join('?' * len(categories))})"
        " ORDER BY salience DESC, last_seen DESC, key",
        categories,
    )
    return [StoredMemory(*r) for r in rows]


def memory_attrs(conn: sqlite3.Connection, keys: list[str]) -> dict[str, dict[str, str]]:
    """The attributes of these memories, by key."""
    rows = conn.execute(
        f"SELECT key, attrs FROM memories WHERE key IN ({','.join('?' * len(keys))})", keys
    ).fetchall()
    return {key: orjson.loads(attrs or "{}") for key, attrs in rows}


def list_memories(
    conn: sqlite3.Connection,
    *,
    projects: list[str] | None = None,
    category: str | None = None,
    include_superseded: bool = False,
) -> list[dict[str, Any]]:
    """Stored memories, most salient first: key, category, text, project, sources, when last seen, and the
    memory that superseded each one (key and text), if any. `projects`: only memories of these project paths."""
    where, args = [], []
    if not include_superseded:
        where.append("m.superseded_by IS NULL")
    if category:
        where.append("m.category = ?")
        args.append(category)
    if projects is not None:
        where.append(f"m.project IN ({','.join('?' * len(projects))})" if projects else "0")
        args.extend(projects)
    rows = conn.execute(
        "SELECT m.key, m.category, m.text, m.project, m.salience, m.last_seen, m.sources, m.superseded_by, n.text"
        " FROM memories m LEFT JOIN memories n ON n.key = m.superseded_by"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY m.salience DESC, m.last_seen DESC, m.key",
        args,
    )
    keys = ("key", "category", "text", "project", "salience", "last_seen", "sources", "superseded_by")
    out = []
    for r in rows:
        d = dict(zip(keys, r[:8], strict=True))
        d["sources"] = orjson.loads(d["sources"])
        d["superseded_by"] = {"key": r[7], "text": r[8]} if r[7] else None
        out.append(d)
    return out


def any_chunk_matches(conn: sqlite3.Connection, match: str, project_ids: Sequence[int] | None = None) -> bool:
    """Whether some chunk (of `project_ids`, when given) matches the FTS5 expression `match`; raises
    sqlite3.OperationalError for an expression FTS5 cannot parse."""
    sql = "SELECT 1 FROM chunks_fts f JOIN chunks c ON c.id = f.rowid WHERE chunks_fts MATCH ?"
    args: list[Any] = [match]
    if project_ids:
        sql += f" AND c.project_id IN ({','.join('?' * len(project_ids))})"
        args += list(project_ids)
    return conn.execute(sql + " LIMIT 1", args).fetchone() is not None


def speaks(
    conn: sqlite3.Connection, label: str, project_ids: Sequence[int] | None = None, times: int = 2
) -> bool:
    """Whether at least `times` chunks (of `project_ids`, when given) open with `label` as a speaker's, as
    relayed conversation writes a line ("Caroline: I went…"). The full-text index finds the chunks holding the
    word; the opening is then checked on their text."""
    words = [w for w in label.replace('"', " ").split() if w]
    if not words:
        return False
    sql = (
        "SELECT 1 FROM chunks_fts f JOIN chunks c ON c.id = f.rowid WHERE chunks_fts MATCH ?"
        " AND substr(c.text, 1, ?) = ?"
    )
    args: list[Any] = [" + ".join(f'"{w}"' for w in words), len(label) + 2, f"{label}: "]
    if project_ids:
        sql += f" AND c.project_id IN ({','.join('?' * len(project_ids))})"
        args += list(project_ids)
    try:
        return len(conn.execute(sql + " LIMIT ?", [*args, times]).fetchall()) >= times
    except sqlite3.OperationalError:  # a word FTS5 cannot parse names no speaker
        return False


def any_chunk_between(
    conn: sqlite3.Connection, since: float, until: float, project_ids: Sequence[int] | None = None
) -> bool:
    """Whether some chunk (of `project_ids`, when given) was written in [since, until) (unix seconds)."""
    sql = "SELECT 1 FROM chunks WHERE ts >= ? AND ts < ?"
    args: list[Any] = [since, until]
    if project_ids:
        sql += f" AND project_id IN ({','.join('?' * len(project_ids))})"
        args += list(project_ids)
    return conn.execute(sql + " LIMIT 1", args).fetchone() is not None


def newest_activity(conn: sqlite3.Connection) -> str | None:
    """When the newest session in the store ended (ISO)."""
    return conn.execute("SELECT max(ended_at) FROM sessions").fetchone()[0]


def projects(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(path, folder name) of every project in the store."""
    return conn.execute("SELECT path, name FROM projects ORDER BY id").fetchall()


def project_paths(project: str) -> list[str]:
    """A working directory as given and with its symlinks resolved."""
    variants = [project.rstrip("/") or "/"]
    real = os.path.realpath(project)
    if real not in variants:
        variants.append(real)
    return variants


def within(path: str | None, paths: list[str]) -> bool:
    """`path` (a memory's or a project's) is one of `paths` or a folder above one of them."""
    return path is not None and any(p == path or p.startswith(path.rstrip("/") + "/") for p in paths)


def last_session(conn: sqlite3.Connection, project: str, *, exclude: str | None = None) -> LastSession | None:
    """The newest main session in `project` (or a project above it), other than session `exclude`."""
    paths = project_paths(project)
    ids = [pid for pid, path in conn.execute("SELECT id, path FROM projects") if within(path, paths)]
    if not ids:
        return None
    row = conn.execute(
        f"SELECT key, title, ended_at FROM sessions WHERE agent_id IS NULL AND project_id IN ({','.join('?' * len(ids))})"
        " AND session_id != ? ORDER BY ended_at DESC LIMIT 1",
        [*ids, exclude or ""],
    ).fetchone()
    if row is None:
        return None
    key = row[0]
    prompts = [
        text
        for (text,) in conn.execute(
            "SELECT text FROM turns WHERE session_key = ? AND role = 'user' AND kind = 'prompt'"
            " ORDER BY id DESC LIMIT 5",
            (key,),
        )
    ]
    last = conn.execute(
        "SELECT tool_results FROM turns WHERE session_key = ? AND kind = 'tool_result' ORDER BY id DESC LIMIT 1",
        (key,),
    ).fetchone()
    return LastSession(key, row[1], row[2], prompts, orjson.loads(last[0]) if last else [])


def tool_origin(conn: sqlite3.Connection, tool_use_id: str) -> str | None:
    """Who wrote a tool call's output (transcripts.provenance), as ingest recorded it; None if unknown."""
    row = conn.execute("SELECT origin FROM tool_origins WHERE tool_use_id = ?", (tool_use_id,)).fetchone()
    return row[0] if row else None


def third_party_outputs(conn: sqlite3.Connection, session_key: str, limit: int) -> list[str]:
    """The session's latest tool outputs that third parties wrote (web pages, MCP results...), newest first."""
    rows = conn.execute(
        "SELECT t.tool_results FROM turns t WHERE t.id IN (SELECT c.turn_id FROM chunks c"
        " WHERE c.session_key = ? AND c.origin = 'third_party' ORDER BY c.id DESC LIMIT ?) ORDER BY t.id DESC",
        (session_key, limit * 4),
    ).fetchall()
    return [r["content"] for (raw,) in rows for r in orjson.loads(raw) if isinstance(r, dict)][:limit]


def sessions_with_turns(conn: sqlite3.Connection) -> list[tuple[str, str, str | None, str | None]]:
    """(key, session_id, project path, started_at) of every transcript that holds turns, oldest first."""
    return conn.execute(
        "SELECT s.key, s.session_id, p.path, s.started_at FROM sessions s"
        " LEFT JOIN projects p ON p.id = s.project_id"
        " WHERE EXISTS (SELECT 1 FROM turns t WHERE t.session_key = s.key) ORDER BY s.started_at, s.key"
    ).fetchall()


def session_chunks(
    conn: sqlite3.Connection, kinds: tuple[str, ...]
) -> list[tuple[str, str, str, str | None, str | None, str]]:
    """(text, session_id, uuid, timestamp, project path, kind) of the transcripts' chunks of these kinds, by
    time (memories are chunks too, and are left out)."""
    return conn.execute(
        "SELECT c.text, c.session_id, c.uuid, c.timestamp, p.path, c.kind FROM chunks c"
        " LEFT JOIN projects p ON p.id = c.project_id"
        f" WHERE c.turn_id IS NOT NULL AND c.kind IN ({','.join('?' * len(kinds))}) ORDER BY c.ts, c.id",
        kinds,
    ).fetchall()


def user_prompts(
    conn: sqlite3.Connection, *, min_chars: int = 12
) -> list[tuple[str, str, str | None, str | None, str]]:
    """(session_id, uuid, timestamp, project path, text) of the user's own prompts in main threads, by time."""
    return conn.execute(
        "SELECT s.session_id, t.uuid, t.timestamp, p.path, t.text FROM turns t"
        " JOIN sessions s ON s.key = t.session_key LEFT JOIN projects p ON p.id = s.project_id"
        " WHERE t.role = 'user' AND t.kind = 'prompt' AND t.is_sidechain = 0 AND length(t.text) >= ?"
        " ORDER BY t.timestamp",
        (min_chars,),
    ).fetchall()
