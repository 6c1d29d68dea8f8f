"""A cited record with its neighbours: what `get_source` shows when the agent expands a citation.

    ctx = source_context(conn, session_id, uuid, around=2)   # the record [n] cites, two records each side

Recall answers in a few hundred tokens and cites its sources by (session_id, uuid). When a memory is not
enough, expanding one citation costs far less than a second, wider recall: the agent reads the record itself
and what was said just before and after it. Any uuid a transcript record had resolves here, merged stream
blocks and progress records included (`record_uuids`), in the parent session or one of its sub-agents.

What it shows is what recall may show: the stored text (already redacted, `<private>` spans already cut),
each record labelled with its origin (`transcripts.provenance`), third-party records marked as quoted
material and their instruction-like spans replaced (`transcripts.injection.neutralise`). Long records are
clipped to RECORD_CHARS, tool results to RESULT_CHARS each, so one expansion stays a bounded cost.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from lmm_mcp import queries
from lmm_mcp.recall import THIRD_PARTY_LABEL
from lmm_mcp.turns import load_turn
from transcripts.injection import neutralise
from transcripts.provenance import THIRD_PARTY, turn_origin

MAX_AROUND = 10
RECORD_CHARS = 4000  # a record's text shown at most
RESULT_CHARS = 800  # one tool result shown at most
INPUT_CHARS = 300  # one tool call's input shown at most


class SourceError(LookupError):
    """No such record, or a request that cannot be served; the message says what to change."""


@dataclass
class SourceRecord:
    uuid: str
    role: str
    kind: str
    timestamp: str | None
    origin: str
    text: str
    tool_calls: list[str] = field(default_factory=list)  # "Name: input", clipped
    tool_results: list[str] = field(default_factory=list)  # clipped, labelled when third-party
    cited: bool = False  # the record the citation names


@dataclass
class SourceContext:
    session_id: str
    session_key: str  # the parent's id, or '<parent>/agent-<id>' for a sub-agent transcript
    project: str | None
    title: str | None
    records: list[SourceRecord]
    before: int  # records earlier in the session not shown
    after: int  # records later in the session not shown
    record_chars: int = 0  # characters of the shown records whole (before clipping): what they stand for

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_context(conn: sqlite3.Connection, session_id: str, uuid: str, around: int = 2) -> SourceContext:
    """The record `uuid` of session `session_id` with up to `around` records each side, in session order."""
    if not 0 <= around <= MAX_AROUND:
        raise SourceError(f"around must be between 0 and {MAX_AROUND}")
    session_id, uuid = session_id.strip(), uuid.strip()
    if not session_id or not uuid:
        raise SourceError("give the session_id and uuid of a cited source")
    found = _find(conn, session_id, uuid)
    if found is None:
        raise SourceError(
            f"no record {uuid} in session {session_id}: it may have been forgotten, or the citation is from "
            "another store; recall again"
        )
    turn_id, key = found
    earlier = [r[0] for r in conn.execute(_NEAR.format(op="<", order="DESC"), (key, turn_id, around))]
    later = [r[0] for r in conn.execute(_NEAR.format(op=">", order="ASC"), (key, turn_id, around))]
    ids = [*reversed(earlier), turn_id, *later]
    records = [_record(conn, i, cited=i == turn_id) for i in ids]
    before = conn.execute(
        "SELECT count(*) FROM turns WHERE session_key = ? AND id < ?", (key, ids[0])
    ).fetchone()[0]
    after = conn.execute(
        "SELECT count(*) FROM turns WHERE session_key = ? AND id > ?", (key, ids[-1])
    ).fetchone()[0]
    row = conn.execute(
        "SELECT s.title, p.path FROM sessions s LEFT JOIN projects p ON p.id = s.project_id WHERE s.key = ?",
        (key,),
    ).fetchone()
    return SourceContext(
        session_id=session_id,
        session_key=key,
        project=row[1] if row else None,
        title=row[0] if row else None,
        records=[r for r in records if r is not None],
        before=before,
        after=after,
        record_chars=_turn_chars(conn, set(ids)),
    )


def record_chars(conn: sqlite3.Connection, cited: list[tuple[str, str, str]]) -> int:
    """Characters of the records that `cited` (session_id, uuid, kind) sources stand for, each record once:
    the record itself, or for a memory every record it was read from."""
    pairs: set[tuple[str, str]] = set()
    for session_id, uuid, kind in cited:
        pairs.add((session_id, uuid))
        if kind == "memory":
            pairs |= _memory_records(conn, session_id, uuid)
    return _turn_chars(
        conn, {f[0] for sid, uuid in pairs if sid and uuid if (f := _find(conn, sid, uuid)) is not None}
    )


def _turn_chars(conn: sqlite3.Connection, turn_ids: set[int]) -> int:
    if not turn_ids:
        return 0
    marks = ",".join("?" * len(turn_ids))
    row = conn.execute(
        f"SELECT sum(length(text) + length(tool_results)) FROM turns WHERE id IN ({marks})", tuple(turn_ids)
    ).fetchone()
    return int(row[0] or 0)


def _memory_records(conn: sqlite3.Connection, session_id: str, uuid: str) -> set[tuple[str, str]]:
    """(session_id, uuid) of every record the memories citing (session_id, uuid) were read from."""
    out: set[tuple[str, str]] = set()
    for (sources,) in conn.execute(
        "SELECT m.sources FROM chunks c JOIN memories m ON m.chunk_id = c.id"
        " WHERE c.kind = 'memory' AND c.session_id = ? AND c.uuid = ?",
        (session_id, uuid),
    ):
        for src in orjson.loads(sources):
            if isinstance(src, dict) and src.get("session_id") and src.get("uuid"):
                out.add((src["session_id"], src["uuid"]))
    return out


_NEAR = "SELECT id FROM turns WHERE session_key = ? AND id {op} ? ORDER BY id {order} LIMIT ?"


def _find(conn: sqlite3.Connection, session_id: str, uuid: str) -> tuple[int, str] | None:
    """(turn id, session key) of the record `uuid` in session `session_id` or one of its sub-agents."""
    row = conn.execute(
        "SELECT r.turn_id, r.session_key FROM record_uuids r JOIN sessions s ON s.key = r.session_key"
        " WHERE s.session_id = ? AND r.uuid = ? ORDER BY s.agent_id IS NOT NULL LIMIT 1",
        (session_id, uuid),
    ).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT t.id, t.session_key FROM turns t JOIN sessions s ON s.key = t.session_key"
            " WHERE s.session_id = ? AND t.uuid = ? ORDER BY s.agent_id IS NOT NULL LIMIT 1",
            (session_id, uuid),
        ).fetchone()
    return (row[0], row[1]) if row else None


def _record(conn: sqlite3.Connection, turn_id: int, *, cited: bool) -> SourceRecord | None:
    turn = load_turn(conn, turn_id)
    if turn is None:
        return None
    origins = {r.tool_use_id: queries.tool_origin(conn, r.tool_use_id) for r in turn.tool_results}
    origin = turn_origin(turn, origins.get)
    calls = [_clip(f"{c.name}: {_input(c.input)}", INPUT_CHARS) for c in turn.tool_calls]
    results = [
        _shown(_clip(r.content, RESULT_CHARS), origins[r.tool_use_id] or THIRD_PARTY)
        for r in turn.tool_results
    ]
    return SourceRecord(
        uuid=turn.uuid,
        role=turn.role,
        kind=turn.kind,
        timestamp=turn.timestamp,
        origin=origin,
        text=_shown(_clip(turn.text, RECORD_CHARS), origin) if turn.text else "",
        tool_calls=calls,
        tool_results=results,
        cited=cited,
    )


def _shown(text: str, origin: str) -> str:
    body = neutralise(text)
    return f"{THIRD_PARTY_LABEL} {body}" if origin == THIRD_PARTY else body


def _input(value: Any) -> str:
    if isinstance(value, dict):
        for name in ("command", "file_path", "pattern", "url", "query", "description", "prompt"):
            if isinstance(value.get(name), str):
                return value[name]
    return str(value)


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
