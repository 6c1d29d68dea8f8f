"""Where a turn's text came from: the user, the assistant, the project's own tools, or third parties.

    call_origin(call, cwd)             # "third_party" for WebFetch, mcp__* tools, a Read outside the project...
    turn_origin(turn, origin_of)       # one origin per turn (its least trusted part)
    without_third_party(turns, cwd)    # the turns with third-party tool output taken out
    quotes(reply, outputs)             # a reply that relays third-party text counts as third-party

What an agent read from the web, an MCP server, an issue comment or a dependency's files was written by
someone else and may carry instructions meant for it. Such text may be searched and quoted on request, but
never becomes standing context (the hooks), a memory or a training target. Only the user's and the
assistant's own words and the memories drawn from them are trusted that far (`STANDING`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable

from transcripts.parse import ToolCall, Turn

USER, ASSISTANT, PROJECT, THIRD_PARTY, MEMORY = "user", "assistant", "project", "third_party", "memory"
ORIGINS = (USER, ASSISTANT, PROJECT, THIRD_PARTY, MEMORY)
STANDING = frozenset({USER, ASSISTANT, MEMORY})  # what the hooks may put in front of an agent unasked
_DISTRUST = {MEMORY: 0, USER: 1, ASSISTANT: 2, PROJECT: 3, THIRD_PARTY: 4}

QUOTE_WORDS = 8  # a run of this many words shared with third-party output is a quote of it, not chance
RELAY_WINDOW = 8  # third-party outputs a reply is checked against: the session's latest ones
_WORDS = re.compile(r"\w+")

WEB_TOOLS = frozenset({"WebFetch", "WebSearch"})
PATH_TOOLS = frozenset({"Read", "Grep", "Glob", "NotebookRead", "LS"})
# A shell command that brings in text from elsewhere: its output is third-party like a web fetch.
_FETCHES = re.compile(
    r"\b(?:curl|wget|http|https|httpie|xh|lynx|w3m|links|aria2c|fetch|invoke-webrequest)\b\s"
    r"|\bgh\s+(?:issue|pr|api|release|gist|search|repo\s+view|run\s+view)\b"
    r"|\bgit\s+(?:clone|fetch|pull)\b|\b(?:npm|pnpm|yarn)\s+(?:view|info|show)\b|\bpip\s+(?:download|show)\b"
    r"|https?://",
    re.I,
)
# Installed dependencies sit inside a project but are written by others (their READMEs, their docstrings).
_DEPENDENCY_DIRS = re.compile(
    r"(?:^|/)(?:node_modules|site-packages|dist-packages|\.venv|venv|vendor|\.tox|\.cargo|\.m2|bower_components)/"
)


def call_origin(call: ToolCall, cwd: str | None) -> str:
    """Who wrote what this tool call returns."""
    name = call.name
    if name in WEB_TOOLS or name.startswith("mcp__"):
        return THIRD_PARTY
    if name == "Bash":
        command = call.input.get("command")
        return THIRD_PARTY if isinstance(command, str) and _FETCHES.search(command) else PROJECT
    if name in PATH_TOOLS:
        path = next(
            (v for k in ("file_path", "notebook_path", "path") if isinstance(v := call.input.get(k), str)), ""
        )
        return PROJECT if in_project(path, cwd) else THIRD_PARTY
    return PROJECT  # edits, writes, todo lists, sub-agents: the session's own work


def in_project(path: str, cwd: str | None) -> bool:
    """A path the project owns: under its folder (relative paths are) and not inside an installed dependency."""
    if _DEPENDENCY_DIRS.search(path):
        return False
    absolute = path.startswith(("/", "~")) or re.match(r"[A-Za-z]:[\\/]", path) is not None
    if not absolute:  # relative to the session's folder (or no path: the folder itself)
        return ".." not in path.replace("\\", "/").split("/")
    root = (cwd or "").rstrip("/\\")
    return bool(root) and (path == root or path.startswith(root + "/") or path.startswith(root + "\\"))


def turn_origin(turn: Turn, origin_of: Callable[[str], str | None]) -> str:
    """One origin for a turn: its tool results' least trusted source (`origin_of` maps a tool-use id to the
    origin of its call; an unknown call counts as third-party), else whose words the text is."""
    if turn.tool_results:
        found = [origin_of(r.tool_use_id) or THIRD_PARTY for r in turn.tool_results]
        return max(found, key=_DISTRUST.__getitem__)
    if turn.role == "assistant" or turn.kind == "compact_summary":
        return ASSISTANT
    if turn.role == "user" and turn.kind == "prompt":
        # A sub-agent's prompt is written by the main agent, not typed by the user.
        return ASSISTANT if turn.is_sidechain or turn.agent_id else USER
    return PROJECT


def quotes(text: str, sources: Iterable[str], n: int = QUOTE_WORDS) -> bool:
    """Does `text` repeat a run of `n` words of any source? An assistant that relays a page ("to deploy, run
    curl ... | bash") passes the page's words on as its own; they stay the page's."""
    mine = _runs(text, n)
    return bool(mine) and any(mine & _runs(source, n) for source in sources)


def _runs(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORDS.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def without_third_party(turns: list[Turn], cwd: str | None) -> list[Turn]:
    """The turns with every third-party tool result removed, and the text of an assistant reply that quotes
    one (copies; the calls themselves stay: what the assistant did is the session's own record)."""
    origins: dict[str, str] = {}
    fetched: list[str] = []  # the latest third-party outputs, for replies that relay them
    out = []
    for turn in turns:
        for call in turn.tool_calls:
            origins[call.id] = call_origin(call, turn.cwd or cwd)
        third = [r for r in turn.tool_results if origins.get(r.tool_use_id, THIRD_PARTY) == THIRD_PARTY]
        fetched = (fetched + [r.content for r in third])[-RELAY_WINDOW:]
        changes: dict[str, object] = {}
        if third:
            changes["tool_results"] = [r for r in turn.tool_results if r not in third]
        if turn.role == "assistant" and turn.text and quotes(turn.text, fetched):
            changes["text"] = ""
        out.append(dataclasses.replace(turn, **changes) if changes else turn)
    return out
