"""One mapping between a parsed `Turn` and a row of the `turns` table, both ways.

    conn.execute(INSERT_TURN, turn_row(key, turn))      # ingest writes a turn
    turn = load_turn(conn, turn_id)                      # a stored turn, shaped as the parser made it
    turns = load_session_turns(conn, key)                # a session's turns in arrival order
    for window in session_windows(conn, key, 32_000_000):  # the same, a bounded window at a time

Ingest (which merges streamed messages into stored turns) and the memory refresh (which re-extracts a grown
session) both read turns back through here, so a stored turn always comes back with the same fields.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import orjson

from transcripts.parse import ToolCall, ToolResult, Turn

# The stored fields of a turn, in row order (the table adds `id` and `session_key`).
COLUMNS = (
    "uuid",
    "parent_uuid",
    "logical_parent_uuid",
    "message_id",
    "role",
    "kind",
    "text",
    "thinking",
    "tool_calls",
    "tool_results",
    "timestamp",
    "cwd",
    "git_branch",
    "version",
    "agent_id",
    "is_sidechain",
    "subtype",
    "line_no",
)
INSERT_TURN = (
    f"INSERT OR IGNORE INTO turns(session_key, {', '.join(COLUMNS)})"
    f" VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"
)
_SELECT = f"SELECT t.id, s.session_id, {', '.join('t.' + c for c in COLUMNS)} FROM turns t JOIN sessions s ON s.key = t.session_key"


def turn_row(key: str, turn: Turn) -> tuple:
    """The values INSERT_TURN takes for `turn` of session `key`."""
    return (
        key,
        turn.uuid,
        turn.parent_uuid,
        turn.logical_parent_uuid,
        turn.message_id,
        turn.role,
        turn.kind,
        turn.text,
        turn.thinking,
        orjson.dumps(turn.tool_calls).decode(),
        orjson.dumps(turn.tool_results).decode(),
        turn.timestamp,
        turn.cwd,
        turn.git_branch,
        turn.version,
        turn.agent_id,
        int(turn.is_sidechain),
        turn.subtype,
        turn.line_no,
    )


def load_turn(conn: sqlite3.Connection, turn_id: int) -> Turn | None:
    row = conn.execute(f"{_SELECT} WHERE t.id = ?", (turn_id,)).fetchone()
    return None if row is None else _turn(row, _aliases(conn, "r.turn_id = ?", turn_id))


def load_session_turns(conn: sqlite3.Connection, key: str) -> list[Turn]:
    """A stored session's turns in arrival order, each with every record uuid that stands for it."""
    aliases = _aliases(conn, "r.session_key = ?", key)
    return [
        _turn(r, aliases) for r in conn.execute(f"{_SELECT} WHERE t.session_key = ? ORDER BY t.id", (key,))
    ]


def session_windows(conn: sqlite3.Connection, key: str, max_chars: int) -> Iterator[list[Turn]]:
    """A stored session's turns in arrival order, in consecutive windows of about `max_chars` characters
    each (at least one turn), read as they are used: a session of any size costs one window's memory."""
    rows: list[tuple] = []
    size = 0
    for row in conn.execute(f"{_SELECT} WHERE t.session_key = ? ORDER BY t.id", (key,)):
        rows.append(row)
        size += sum(len(v) for v in row if isinstance(v, str))
        if size >= max_chars:
            yield _window(conn, key, rows)
            rows, size = [], 0
    if rows:
        yield _window(conn, key, rows)


def _window(conn: sqlite3.Connection, key: str, rows: list[tuple]) -> list[Turn]:
    where = "r.session_key = ? AND r.turn_id BETWEEN ? AND ?"
    aliases = _aliases(conn, where, key, rows[0][0], rows[-1][0])
    return [_turn(r, aliases) for r in rows]


def _aliases(conn: sqlite3.Connection, where: str, *values: object) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for turn_id, uuid in conn.execute(f"SELECT r.turn_id, r.uuid FROM record_uuids r WHERE {where}", values):
        out.setdefault(turn_id, []).append(uuid)
    return out


def _turn(row: tuple, aliases: dict[int, list[str]]) -> Turn:
    turn_id, session_id = row[0], row[1]
    f = dict(zip(COLUMNS, row[2:], strict=True))
    uuid = f["uuid"]
    return Turn(
        **{k: v for k, v in f.items() if k not in ("tool_calls", "tool_results", "is_sidechain", "line_no")},
        session_id=session_id,
        tool_calls=[ToolCall(**c) for c in orjson.loads(f["tool_calls"])],
        tool_results=[ToolResult(**x) for x in orjson.loads(f["tool_results"])],
        is_sidechain=bool(f["is_sidechain"]),
        line_no=f["line_no"] or 0,
        record_uuids=[uuid, *(u for u in aliases.get(turn_id, []) if u != uuid)],
    )
