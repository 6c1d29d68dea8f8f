"""What the memory browser's pages read from the store: projects, sessions by day, a session's turns, one memory.

Read-only queries, each shaped for one page; the memory lists come from `lmm_mcp.queries`, the edits from
`lmm_mcp.edits`, ranking from `lmm_mcp.retrieval`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import orjson

PAGE_TURNS = 200  # turns on one page of a session
TIMELINE_DAYS = 60  # days shown per project on the front page, newest first


@dataclass
class ProjectRow:
    path: str
    name: str
    sessions: int
    memories: int
    first: str | None
    last: str | None
    days: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)  # (YYYY-MM-DD, sessions)


@dataclass(frozen=True)
class TurnRow:
    n: int  # position in the session, from 1
    uuid: str
    role: str
    kind: str
    timestamp: str | None
    text: str
    thinking: str
    tool_calls: list[dict[str, Any]]
    tool_results: list[dict[str, Any]]
    third_party: bool  # some of its text came from the web, an MCP tool or files outside the project
    is_sidechain: bool


def projects(conn: sqlite3.Connection) -> list[ProjectRow]:
    """Every project with its session and memory counts, and its main sessions grouped by day."""
    rows = conn.execute(
        "SELECT p.id, p.path, p.name, count(s.key), min(s.started_at), max(coalesce(s.ended_at, s.started_at)),"
        " (SELECT count(*) FROM memories m WHERE m.project = p.path AND m.superseded_by IS NULL)"
        " FROM projects p LEFT JOIN sessions s ON s.project_id = p.id AND s.agent_id IS NULL"
        " GROUP BY p.id ORDER BY max(coalesce(s.ended_at, s.started_at)) DESC, p.path"
    ).fetchall()
    out = []
    for pid, path, name, n, first, last, memories in rows:
        row = ProjectRow(path, name, n, memories, first, last)
        by_day: dict[str, list[dict[str, Any]]] = {}
        for key, title, started, ended, turns, prompt in conn.execute(
            "SELECT s.key, s.title, s.started_at, s.ended_at,"
            " (SELECT count(*) FROM turns t WHERE t.session_key = s.key),"
            " (SELECT substr(t.text, 1, 200) FROM turns t WHERE t.session_key = s.key AND t.kind = 'prompt'"
            "  AND t.role = 'user' ORDER BY t.id LIMIT 1)"
            " FROM sessions s WHERE s.project_id = ? AND s.agent_id IS NULL ORDER BY s.started_at DESC",
            (pid,),
        ):
            day = (started or "")[:10] or "undated"
            if day not in by_day and len(by_day) >= TIMELINE_DAYS:
                break
            label = title or _line(prompt) or key[:8]  # a session without a title: its first prompt
            by_day.setdefault(day, []).append(
                {"key": key, "title": label, "started": started, "ended": ended, "turns": turns}
            )
        row.days = list(by_day.items())
        out.append(row)
    return out


def session(conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
    """A transcript's header: title, project, branch, times, turn count, its sub-agents."""
    row = conn.execute(
        "SELECT s.key, s.session_id, s.title, p.path, s.git_branch, s.started_at, s.ended_at, s.agent_type,"
        " s.description, (SELECT count(*) FROM turns t WHERE t.session_key = s.key),"
        " (SELECT substr(t.text, 1, 200) FROM turns t WHERE t.session_key = s.key AND t.kind = 'prompt'"
        "  ORDER BY t.id LIMIT 1)"
        " FROM sessions s LEFT JOIN projects p ON p.id = s.project_id WHERE s.key = ?",
        (key,),
    ).fetchone()
    if row is None:
        return None
    names = ("key", "session_id", "title", "project", "branch", "started", "ended", "agent_type")
    doc = dict(zip(names, row[:8], strict=True))
    doc["description"], doc["turns"] = row[8], row[9]
    doc["label"] = row[2] or _line(row[10]) or key  # an untitled session: its first prompt
    doc["agents"] = [
        {"key": k, "agent_type": t, "description": d}
        for k, t, d in conn.execute(
            "SELECT key, agent_type, description FROM sessions WHERE session_id = ? AND key != ? ORDER BY started_at",
            (row[1], key),
        )
    ]
    return doc


def turn_index(conn: sqlite3.Connection, key: str, uuid: str) -> int | None:
    """The position (from 0) in its session of the turn that stands for record `uuid`, or None."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM turns t2 WHERE t2.session_key = ? AND t2.id < r.turn_id)"
        " FROM record_uuids r WHERE r.session_key = ? AND r.uuid = ?",
        (key, key, uuid),
    ).fetchone()
    return row[0] if row else None


def turns(conn: sqlite3.Connection, key: str, offset: int, limit: int = PAGE_TURNS) -> list[TurnRow]:
    """A page of a session's turns in arrival order, each marked when third parties wrote part of it."""
    rows = conn.execute(
        "SELECT t.uuid, t.role, t.kind, t.timestamp, t.text, t.thinking, t.tool_calls, t.tool_results,"
        " t.is_sidechain, EXISTS (SELECT 1 FROM chunks c WHERE c.turn_id = t.id AND c.origin = 'third_party')"
        " FROM turns t WHERE t.session_key = ? ORDER BY t.id LIMIT ? OFFSET ?",
        (key, limit, offset),
    ).fetchall()
    return [
        TurnRow(
            offset + i + 1,
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            _json_list(r[6]),
            _json_list(r[7]),
            bool(r[9]),
            bool(r[8]),
        )
        for i, r in enumerate(rows)
    ]


def memory(conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
    """One stored memory with its sources, what superseded it (the chain, newest last) and what it superseded."""
    row = conn.execute(
        "SELECT key, category, text, project, salience, last_seen, sources, superseded_by, keywords, attrs"
        " FROM memories WHERE key = ?",
        (key,),
    ).fetchone()
    if row is None:
        return None
    names = ("key", "category", "text", "project", "salience", "last_seen")
    doc = dict(zip(names, row[:6], strict=True))
    doc["sources"] = orjson.loads(row[6])
    doc["keywords"], doc["attrs"] = orjson.loads(row[8]), orjson.loads(row[9])
    chain, seen, nxt = [], {key}, row[7]
    while nxt and nxt not in seen:
        seen.add(nxt)
        found = conn.execute("SELECT key, text, superseded_by FROM memories WHERE key = ?", (nxt,)).fetchone()
        if found is None:
            break
        chain.append({"key": found[0], "text": found[1]})
        nxt = found[2]
    doc["superseded_by"] = chain
    doc["supersedes"] = [
        {"key": k, "text": t}
        for k, t in conn.execute(
            "SELECT key, text FROM memories WHERE superseded_by = ? ORDER BY key", (key,)
        )
    ]
    return doc


def session_keys(conn: sqlite3.Connection, session_ids: list[str]) -> set[str]:
    """Which of these session ids the store holds a transcript for (a source may be gone: forgotten)."""
    if not session_ids:
        return set()
    marks = ",".join("?" * len(session_ids))
    return {r[0] for r in conn.execute(f"SELECT key FROM sessions WHERE key IN ({marks})", session_ids)}


def categories(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT category FROM memories ORDER BY category")]


def _line(text: str | None, width: int = 90) -> str:
    first = " ".join((text or "").split())
    return first if len(first) <= width else first[: width - 1] + "…"


def _json_list(raw: str | None) -> list[dict[str, Any]]:
    try:
        value = orjson.loads(raw or "[]")
    except orjson.JSONDecodeError:
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
