"""Claude Code transcript parser: JSONL records in, typed turns out.

Reads every on-disk layout Claude Code has used (1.0 inline sidechains, 2.0 `agent-*.jsonl` beside the
sessions, 2.1 `<session>/subagents/` with `meta.json`), one complete line at a time, so memory stays bounded
by the longest line we accept, never by the file. A bad line is reported as `Skipped` with its line number
and reason; nothing a transcript contains can stop the file.

    for item in parse_file(path):
        ...  # Turn | Title | Link | Skipped

Records of one streamed assistant message (shared `message.id`) come out merged when they are adjacent;
`Turn.merge` is the same operation for the store to apply across ingest batches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

MAX_LINE_BYTES = 64 * 1024 * 1024  # a longer line is skipped unread (a 20 MB tool output still parses)
MAX_TEXT_CHARS = 40_000  # user/assistant text beyond this is pasted bulk, not conversation
MAX_THINKING_CHARS = 8_000
MAX_RESULT_CHARS = 6_000  # tool outputs: keep head and tail, the middle of a 2 MB log is not memory

# Record types that carry no conversation; skipped without counting as malformed.
SILENT_TYPES = frozenset(
    {
        "file-history-snapshot",
        "queue-operation",
        "progress",
        "attachment",
        "agent-name",
        "last-prompt",
        "permission-mode",
        "mode",
        "worktree-state",
        "pr-link",
    }
)
TITLE_TYPES = {"summary": "summary", "custom-title": "customTitle", "ai-title": "aiTitle"}


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(slots=True)
class ToolResult:
    tool_use_id: str
    content: str
    is_error: bool = False
    file_paths: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Turn:
    """One message of the conversation (streamed records already merged)."""

    uuid: str
    parent_uuid: str | None
    session_id: str  # the record's sessionId: sub-agent records carry their parent session's id
    role: str  # user | assistant | system
    kind: str  # prompt | reply | tool_result | compact_summary | compact_boundary | meta | api_error | system
    text: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    timestamp: str | None = None
    cwd: str | None = None
    git_branch: str | None = None
    version: str | None = None
    agent_id: str | None = None
    is_sidechain: bool = False
    logical_parent_uuid: str | None = None  # across a compaction boundary
    subtype: str | None = None
    message_id: str | None = None
    line_no: int = 0
    record_uuids: list[str] = field(default_factory=list)  # every record merged into this turn

    def merge(self, other: Turn) -> None:
        """Fold a later record of the same streamed message into this turn."""
        self.text = _join(self.text, other.text)
        self.thinking = _join(self.thinking, other.thinking)
        self.tool_calls.extend(other.tool_calls)
        self.tool_results.extend(other.tool_results)
        self.record_uuids.extend(u for u in other.record_uuids if u not in self.record_uuids)
        if other.kind == "api_error":
            self.kind = "api_error"


@dataclass(slots=True)
class Title:
    """A session title: legacy `summary` records (which may name a leaf in another session) and titles."""

    text: str
    leaf_uuid: str | None
    session_id: str | None
    line_no: int


@dataclass(slots=True)
class Link:
    """A record we do not keep as a turn but which sits in the uuid tree (progress, attachment...)."""

    uuid: str
    parent_uuid: str | None
    line_no: int


@dataclass(slots=True)
class Skipped:
    line_no: int
    offset: int
    reason: str


@dataclass(slots=True)
class Line:
    """One complete line: its 1-based number, the byte offsets around it, and its bytes (None: too long)."""

    line_no: int
    start: int
    end: int
    data: bytes | None


class BadRecord(ValueError):
    """A line that is JSON but not a usable record; the message is the reason we report."""


# --------------------------------------------------------------------------------------------- files


@dataclass(slots=True, frozen=True)
class TranscriptFile:
    """A transcript on disk and where it sits in the session/sub-agent layout."""

    path: Path
    session_id: str | None  # None for a 2.0 agent file: its parent is only known from its records
    agent_id: str | None = None
    agent_type: str | None = None
    description: str | None = None
    tool_use_id: str | None = None

    @property
    def is_subagent(self) -> bool:
        return self.agent_id is not None


def classify(path: Path) -> TranscriptFile | None:
    """Place a .jsonl file in Claude Code's layout; None for files that are not user knowledge."""
    name = path.name
    if not name.endswith(".jsonl"):
        return None
    stem = name[: -len(".jsonl")]
    if stem.startswith("agent-acompact"):
        return None  # Claude Code's own compaction agent
    if stem.startswith("agent-"):
        agent_id = stem[len("agent-") :]
        if path.parent.name == "subagents":  # 2.1: <session>/subagents/agent-<id>.jsonl
            meta = _read_meta(path.with_name(f"{stem}.meta.json"))
            return TranscriptFile(
                path,
                path.parent.parent.name,
                agent_id,
                _str(meta.get("agentType")),
                _str(meta.get("description")),
                _str(meta.get("toolUseId")),
            )
        return TranscriptFile(path, None, agent_id)  # 2.0: beside the session files
    return TranscriptFile(path, stem)


def discover(root: Path) -> list[TranscriptFile]:
    """Every transcript under a Claude projects folder (or a single file), in a stable order."""
    if root.is_file():
        found = [classify(root)]
    else:
        found = [classify(p) for p in regular_files(root, "*.jsonl") if "tool-results" not in p.parts]
    return [f for f in found if f is not None]


def regular_files(root: Path, pattern: str) -> list[Path]:
    """Regular files under folder `root` matching `pattern`, sorted. A FIFO would hang the reader, and a
    symlink that leads out of `root` would let whoever planted it feed any file into the store."""
    inside = root.resolve()
    return [p for p in sorted(root.rglob(pattern)) if p.is_file() and p.resolve().is_relative_to(inside)]


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


# --------------------------------------------------------------------------------------------- lines


def read_lines(
    fh: BinaryIO,
    start: int = 0,
    *,
    line_no: int = 0,
    limit: int | None = None,
    max_line: int = MAX_LINE_BYTES,
) -> Iterator[Line]:
    """Complete lines from byte `start`; a last line without its newline is still being written: not yielded.

    `limit` stops after the line that crosses that many bytes, so callers can work in bounded segments.
    """
    fh.seek(start)
    pos = start
    while limit is None or pos - start < limit:
        data = fh.readline(max_line + 1)
        if not data:
            return
        if data.endswith(b"\n"):
            line_no += 1
            yield Line(line_no, pos, pos + len(data), data)
            pos += len(data)
            continue
        if len(data) <= max_line:
            # A last line without its newline is usually still being written: wait for it. But a whole
            # JSON object is complete (no prefix of an object is itself an object), as in files whose
            # writer never added the final newline; if the newline comes later it reads as a blank line.
            if _is_json(data):
                yield Line(line_no + 1, pos, pos + len(data), data)
            return
        # Too long to hold: skip to its end without keeping it, if it has an end yet.
        skipped = len(data)
        while True:
            more = fh.readline(1 << 20)
            skipped += len(more)
            if not more:
                return
            if more.endswith(b"\n"):
                break
        line_no += 1
        yield Line(line_no, pos, pos + skipped, None)
        pos += skipped


def parse_file(path: Path, start: int = 0, *, line_no: int = 0) -> Iterator[Turn | Title | Link | Skipped]:
    """Parse a transcript from a byte offset; adjacent records of one streamed message come out merged."""
    with open(path, "rb") as fh:
        yield from merge_streamed(parse_lines(read_lines(fh, start, line_no=line_no)))


def parse_lines(lines: Iterator[Line]) -> Iterator[Turn | Title | Link | Skipped]:
    for line in lines:
        if line.data is None:
            yield Skipped(line.line_no, line.start, f"line longer than {MAX_LINE_BYTES} bytes")
            continue
        yield parse_line(line.data, line.line_no, line.start)


def load_json(data: bytes) -> Any:
    """One JSON line. Claude Code writes half a surrogate pair as a `\\ud800` escape (an emoji cut in two),
    which orjson refuses: such a line is read by the standard library and the half becomes "?", so the rest
    of the record survives. Raises orjson.JSONDecodeError for a line that is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        if not _SURROGATE_ESCAPE.search(data):
            raise
        try:
            return _without_surrogates(json.loads(data))
        except (ValueError, RecursionError):
            raise orjson.JSONDecodeError("invalid JSON", data.decode("utf-8", "replace"), 0) from None


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def parse_line(data: bytes, line_no: int, offset: int = 0) -> Turn | Title | Link | Skipped | None:
    if not data.strip():
        return None  # blank lines are not records and not errors
    try:
        obj = load_json(data)
    except orjson.JSONDecodeError as e:
        return Skipped(line_no, offset, f"invalid JSON: {str(e).splitlines()[0][:120]}")
    try:
        return parse_record(obj, line_no)
    except BadRecord as e:
        return Skipped(line_no, offset, str(e))


def merge_streamed(items: Iterator[Any]) -> Iterator[Any]:
    """Merge adjacent assistant records sharing `message.id` (one API response, one record per block)."""
    pending: Turn | None = None
    for item in items:
        if item is None:
            continue
        if isinstance(item, Turn) and item.message_id and item.role == "assistant":
            if pending is not None and pending.message_id == item.message_id:
                pending.merge(item)
                continue
            if pending is not None:
                yield pending
            pending = item
            continue
        if isinstance(item, Link) and pending is not None:
            yield item  # progress records can sit between blocks; they do not end the message
            continue
        if pending is not None:
            yield pending
            pending = None
        yield item
    if pending is not None:
        yield pending


# --------------------------------------------------------------------------------------------- records


def parse_record(obj: Any, line_no: int = 0) -> Turn | Title | Link | None:
    """One decoded JSON line to a Turn, Title or Link; None for record types with no conversation."""
    if not isinstance(obj, dict):
        raise BadRecord(f"not a record: a JSON {type(obj).__name__}")
    rtype = obj.get("type")
    message = obj.get("message")
    if rtype is None and isinstance(message, dict) and message.get("role") in ("user", "assistant"):
        rtype = message["role"]  # some 2.0 sub-agent files omit `type`
    if not isinstance(rtype, str):
        raise BadRecord("record has no type")
    if rtype in TITLE_TYPES:
        text = obj.get(TITLE_TYPES[rtype], obj.get("title"))
        if not isinstance(text, str):
            raise BadRecord(f"{rtype} record without text")
        return Title(text, _str(obj.get("leafUuid")), _str(obj.get("sessionId")), line_no)
    if rtype not in ("user", "assistant", "system"):
        uuid = obj.get("uuid")
        if isinstance(uuid, str) and rtype in SILENT_TYPES:
            return Link(uuid, _opt_str(obj, "parentUuid"), line_no)
        return None  # unknown or contentless types: new ones keep arriving, never fail on them
    turn = _envelope(obj, rtype, line_no)
    if rtype == "user":
        _fill_user(turn, obj, message)
    elif rtype == "assistant":
        _fill_assistant(turn, obj, message)
    else:
        _fill_system(turn, obj)
    return turn


def _envelope(obj: dict[str, Any], role: str, line_no: int) -> Turn:
    uuid = obj.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise BadRecord(f"{role} record without uuid")
    session_id = obj.get("sessionId")
    if session_id is not None and not isinstance(session_id, str):
        raise BadRecord("sessionId is not a string")
    is_sidechain = obj.get("isSidechain", False)
    return Turn(
        uuid=uuid,
        parent_uuid=_opt_str(obj, "parentUuid"),
        session_id=session_id or "",
        role=role,
        kind="system",
        timestamp=_opt_str(obj, "timestamp"),
        cwd=_opt_str(obj, "cwd"),
        git_branch=_opt_str(obj, "gitBranch") or None,
        version=_opt_str(obj, "version"),
        agent_id=_opt_str(obj, "agentId"),
        is_sidechain=is_sidechain is True,
        logical_parent_uuid=_opt_str(obj, "logicalParentUuid"),
        line_no=line_no,
        record_uuids=[uuid],
    )


def _fill_user(turn: Turn, obj: dict[str, Any], message: Any) -> None:
    if not isinstance(message, dict):
        raise BadRecord("user message is not an object")
    content = message.get("content")
    texts: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        usable = False
        for block in content:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
                usable = True
            elif btype == "tool_result":
                turn.tool_results.append(_tool_result(block, obj.get("toolUseResult")))
                usable = True
            elif btype in ("image", "document"):
                texts.append(f"[{btype}]")
                usable = True
        if content and not usable:
            raise BadRecord("user content has no usable block")
    else:
        raise BadRecord("user message has no content")
    turn.text = _cap(clean_markup("\n".join(texts)), MAX_TEXT_CHARS)
    if obj.get("isCompactSummary"):
        turn.kind = "compact_summary"
    elif obj.get("isMeta"):
        turn.kind = "meta"
    elif turn.tool_results and not turn.text:
        turn.kind = "tool_result"
    else:
        turn.kind = "prompt"


def _fill_assistant(turn: Turn, obj: dict[str, Any], message: Any) -> None:
    if not isinstance(message, dict):
        raise BadRecord("assistant message is not an object")
    content = message.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise BadRecord("assistant message has no content list")
    texts, thoughts = [], []
    for block in content:
        if not isinstance(block, dict):
            continue
        btype = block.get("type")
        if btype == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif btype == "thinking" and isinstance(block.get("thinking"), str):
            thoughts.append(block["thinking"])
        elif btype == "tool_use":
            raw_input = block.get("input")
            turn.tool_calls.append(
                ToolCall(
                    _str(block.get("id")) or "",
                    _str(block.get("name")) or "?",
                    raw_input if isinstance(raw_input, dict) else {"value": raw_input},
                )
            )
    turn.text = _cap(clean_markup("\n".join(texts)), MAX_TEXT_CHARS)
    turn.thinking = _cap("\n".join(thoughts), MAX_THINKING_CHARS)
    turn.message_id = _str(message.get("id"))
    turn.kind = "api_error" if obj.get("isApiErrorMessage") else "reply"


def _fill_system(turn: Turn, obj: dict[str, Any]) -> None:
    turn.subtype = _str(obj.get("subtype"))
    content = obj.get("content")
    turn.text = _cap(clean_markup(content), MAX_TEXT_CHARS) if isinstance(content, str) else ""
    turn.kind = "compact_boundary" if turn.subtype == "compact_boundary" else "system"


def _tool_result(block: dict[str, Any], extra: Any) -> ToolResult:
    content = block.get("content")
    if isinstance(content, list):
        parts = []
        for b in content:
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str):
                parts.append(b["text"])
            elif isinstance(b, dict) and b.get("type") in ("image", "document"):
                parts.append(f"[{b['type']}]")
        content = "\n".join(parts)
    elif not isinstance(content, str):
        content = "" if content is None else str(content)
    return ToolResult(
        _str(block.get("tool_use_id")) or "",
        trim_output(clean_markup(content)),
        block.get("is_error") is True,
        _file_paths(extra),
    )


def _file_paths(extra: Any) -> list[str]:
    """File paths a tool touched, from the tool-specific `toolUseResult` object."""
    if not isinstance(extra, dict):
        return []
    paths = []
    for value in (
        extra.get("filePath"),
        (extra.get("file") or {}).get("filePath") if isinstance(extra.get("file"), dict) else None,
    ):
        if isinstance(value, str):
            paths.append(value)
    names = extra.get("filenames")
    if isinstance(names, list):
        paths.extend(n for n in names[:50] if isinstance(n, str))
    return paths


# --------------------------------------------------------------------------------------------- text

_DROP_TAGS = re.compile(r"<(system-reminder|task-notification|command-message)>.*?</\1>\s*", re.DOTALL)
_KEEP_TAGS = re.compile(
    r"</?(command-name|command-args|command-contents|local-command-stdout|local-command-stderr)>"
)
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]{64,}")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{400,}={0,2}")
_BLANKS = re.compile(r"\n{3,}")


def clean_markup(text: str) -> str:
    """Strip Claude Code's markup (reminders, notifications) and inline binary; keep what the user said."""
    if "<" in text:
        text = _DROP_TAGS.sub("", text)
        text = _KEEP_TAGS.sub(" ", text)
    if len(text) >= 400:
        if "base64," in text:
            text = _DATA_URI.sub("[image]", text)
        text = _BASE64_RUN.sub(lambda m: f"[base64 {len(m.group())} chars]", text)
    return _BLANKS.sub("\n\n", text).strip()


def trim_output(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    """Head and tail of a long tool output: the command's start and its verdict are what matter."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head]}\n[… {len(text) - head - tail} chars trimmed …]\n{text[-tail:]}"


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[… {len(text) - limit} chars trimmed …]"


def _join(a: str, b: str) -> str:
    return f"{a}\n{b}" if a and b else a or b


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise BadRecord(f"{key} is not a string")


# --------------------------------------------------------------------------------------------- tree


def main_thread(turns: list[Turn], links: Iterable[Link] = ()) -> list[Turn]:
    """The conversation as the user last saw it: from the newest leaf back to the root.

    Rewinds leave abandoned branches (two children of one parent); a compaction boundary has no parent but
    names its real predecessor in `logicalParentUuid`, so the walk crosses it. Progress and attachment
    records (`links`) can sit in the parent chain; the walk passes through them.
    """
    through = {link.uuid: link.parent_uuid for link in links}
    by_uuid: dict[str, Turn] = {}
    for t in turns:
        for u in t.record_uuids or [t.uuid]:
            by_uuid[u] = t
    if not turns:
        return []
    main = [t for t in turns if not t.is_sidechain] or turns
    path, seen = [], set()
    node: Turn | None = max(main, key=lambda t: (t.timestamp or "", t.line_no))
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        path.append(node)
        parent = node.parent_uuid or node.logical_parent_uuid
        for _ in range(len(through)):  # bounded: a cycle of links must not hang the walk
            if parent not in through or parent in by_uuid:
                break
            parent = through[parent]
        node = by_uuid.get(parent) if parent else None
    path.reverse()
    return path


def _is_json(data: bytes) -> bool:
    try:
        return isinstance(orjson.loads(data), dict)
    except orjson.JSONDecodeError:
        return False
