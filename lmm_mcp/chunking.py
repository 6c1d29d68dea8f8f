"""Turns into retrieval chunks: the units that search ranks, cites and embeds.

A chunk is at most ~1,000 characters (all-MiniLM-L6-v2 reads 256 word pieces) and never mixes turns, so a
hit always cites one record. What a chunk says depends on the turn: a prompt is the user's words; a reply
is the assistant's words plus one line per tool call (the command run, the file edited); a tool result keeps
its error or the start of its output. Thinking and Claude Code's own meta messages are not indexed.
"""

from __future__ import annotations

import orjson

from transcripts.parse import ToolCall, Turn

CHUNK_CHARS = 1_000
OVERLAP_CHARS = 150
MAX_CHUNKS_PER_TURN = 24  # a 100 KB paste becomes a few chunks of its start, not a hundred
RESULT_CHARS = 1_200
INDEXED_KINDS = frozenset({"prompt", "reply", "tool_result", "compact_summary", "api_error"})


def turn_text(turn: Turn) -> str:
    """The searchable text of one turn."""
    if turn.kind not in INDEXED_KINDS:
        return ""
    parts = [turn.text] if turn.text else []
    parts.extend(describe_call(c) for c in turn.tool_calls)
    for r in turn.tool_results:
        if not r.content:
            continue
        label = "error" if r.is_error else "result"
        where = f" {r.file_paths[0]}" if r.file_paths else ""
        parts.append(f"[{label}{where}] {r.content[:RESULT_CHARS]}")
    return "\n".join(parts).strip()


def describe_call(call: ToolCall) -> str:
    """One line per tool call: what was run or touched, which is what a later question asks about."""
    inp = call.input
    for key in ("command", "file_path", "path", "pattern", "url", "query", "description", "prompt"):
        value = inp.get(key)
        if isinstance(value, str) and value:
            head = value if len(value) <= 300 else value[:300] + "…"
            extra = ""
            if call.name == "Edit" and isinstance(inp.get("new_string"), str):
                extra = " → " + inp["new_string"][:200]
            return f"[{call.name}] {head}{extra}"
    return f"[{call.name}] {orjson.dumps(inp).decode()[:200]}"


def split_text(text: str, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> list[str]:
    """Windows of at most `size` characters, cut at a paragraph, line or word boundary where one is near."""
    if len(text) <= size:
        return [text] if text else []
    pieces: list[str] = []
    start = 0
    while start < len(text) and len(pieces) < MAX_CHUNKS_PER_TURN:
        end = min(start + size, len(text))
        if end < len(text):
            window = text[start:end]
            cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(". "), window.rfind(" "))
            if cut > size // 2:
                end = start + cut + 1
        pieces.append(text[start:end].strip())
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return [p for p in pieces if p]


def chunk_turn(turn: Turn) -> list[str]:
    return split_text(turn_text(turn))


def chunk_kind(turn: Turn) -> str:
    """The turn's kind, with failed tool results told apart: errors are memory, plain output mostly is not."""
    if turn.kind == "tool_result" and any(r.is_error for r in turn.tool_results):
        return "tool_error"
    return turn.kind
