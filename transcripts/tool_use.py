"""What a session's tool calls show: error → fix episodes, commands that worked, files and what they define,
package files, and the project's layout.

One pass over a session's turns pairs each tool call with its result (a call is only trusted once its result
says it worked), and returns `Draft`s with the turns they came from; `transcripts.extraction` makes them memories.
The parsing itself (definitions, manifests, command kinds, error lines) lives in `transcripts.source_code`.

    facts = tool_drafts(turns, cwd="/home/dev/shop")
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field

from transcripts.conversation import Draft
from transcripts.parse import ToolCall, ToolResult, Turn
from transcripts.source_code import (
    Definition,
    command_kind,
    definitions,
    failure_line,
    is_manifest,
    looks_failed,
    manifest_facts,
    strip_line_numbers,
)

_KIND_VERB = {
    "test": "tests run with",
    "lint": "checks run with",
    "build": "the build runs with",
    "run": "the app runs with",
    "migrate": "migrations run with",
    "install": "dependencies install with",
    "benchmark": "benchmarks run with",
}


_TARGETED = re.compile(r"\S+(?:/\S*|::\S+|\.(?:py|ts|tsx|js|rs|go)\b)")  # a path or test id argument


def tool_drafts(turns: list[Turn], cwd: str | None) -> list[Draft]:
    walk = _Walk(cwd)
    for turn in turns:
        walk.turn(turn)
    return walk.finish()


def project_name(cwd: str | None) -> str:
    return (cwd.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or cwd) if cwd else "this project"


def relative(path: str, cwd: str | None) -> str:
    root = (cwd or "").rstrip("/")
    return path[len(root) + 1 :] if root and path.startswith(root + "/") else path


def describe_action(call: ToolCall, cwd: str | None) -> str | None:
    """What a tool call did, in a few words, for the text of a correction that follows it."""
    path = call.input.get("file_path")
    if call.name in ("Edit", "MultiEdit", "Write") and isinstance(path, str):
        return f"{'wrote' if call.name == 'Write' else 'edited'} {relative(path, cwd)}"
    if call.name == "Bash" and isinstance(call.input.get("command"), str):
        return f"ran `{short(call.input['command'], 80)}`"
    return None


def code_text(name: str, rel: str, verb: str, defs: list[str], change: str = "") -> str:
    text = f"In {name}, {rel} {verb}" + (f" ({change})" if change else "")
    if defs:
        more = f" and {len(defs) - 8} more" if len(defs) > 8 else ""
        text += "; it defines " + ", ".join(defs[:8]) + more
    return text + "."


def layout_text(name: str, dirs: list[str]) -> str:
    tops: dict[str, list[str]] = {}
    for d in sorted(dirs):
        top, _, sub = d.partition("/")
        tops.setdefault(top, [])
        if sub and sub not in tops[top]:
            tops[top].append(sub)
    parts = [
        f"{top}/" + (f" ({', '.join(subs[:6])})" if subs else "") for top, subs in list(tops.items())[:10]
    ]
    return f"{name} layout: " + ", ".join(parts) + "."


def short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ---------------------------------------------------------------------------------------------- the walk


@dataclass
class _Episode:
    command: str
    error: str
    failed: Turn
    fixes: list[tuple[str, str]] = field(default_factory=list)  # (relative path, change)
    fix_turn: Turn | None = None
    commands: list[str] = field(default_factory=list)  # commands that changed something before the rerun
    why: str = ""  # the assistant's own account of the cause or the fix, when it gave one


@dataclass
class _File:
    turn: Turn
    wrote: bool = False
    defs: dict[str, Definition] = field(default_factory=dict)
    change: str = ""  # the first quotable change, when the edit defines nothing


class _Walk:
    def __init__(self, cwd: str | None) -> None:
        self.cwd = cwd
        self.name = project_name(cwd)
        self.out: list[Draft] = []
        self.calls: dict[str, tuple[ToolCall, Turn]] = {}  # tool_use_id -> call and the turn that made it
        self.episodes: dict[str, _Episode] = {}  # command family -> its open failure
        self.commands: dict[tuple[str, str], list[tuple[str, Turn]]] = {}  # (kind, tool) -> runs that passed
        self.files: dict[str, _File] = {}
        self.dirs: Counter[str] = Counter()
        self.last: Turn | None = None

    def turn(self, turn: Turn) -> None:
        if self.episodes and turn.role == "assistant" and turn.text:
            why = _explanation(turn.text)
            for ep in self.episodes.values():
                ep.why = ep.why or why
        for call in turn.tool_calls:
            self.calls[call.id] = (call, turn)
        for result in turn.tool_results:
            found = self.calls.get(result.tool_use_id)
            if found:
                self._result(*found, result, turn)
                self.last = turn

    def finish(self) -> list[Draft]:
        for ep in self.episodes.values():
            if ep.fixes:  # fixed as far as the session shows, but never rerun: a weaker memory
                self._episode(ep, None)
        for (kind, tool), runs in self.commands.items():
            counts = Counter(cmd for cmd, _ in runs)
            # The general form (`pytest -q`) over one aimed at a single file or test, then the usual one.
            best = min(counts, key=lambda c: (len(_TARGETED.findall(c)), -counts[c], len(c)))
            others = [f"`{c}`" for c in counts if c != best][:2]
            text = f"In {self.name}, {_KIND_VERB[kind]} `{best}`" + (
                f" (also: {', '.join(others)})." if others else "."
            )
            attrs = {"kind": "command", "command_kind": kind, "tool": tool, "command": best}
            self._add("project_fact", text, f"cmd:{kind}:{slug(tool)}", min(0.6, 0.35 + 0.05 * len(runs)),
                      [best, tool], attrs, [runs[-1][1]])  # fmt: skip
        for rel, f in self.files.items():
            defs = [render_def(d) for d in f.defs.values()]
            verb = "was written" if f.wrote else "was edited"
            salience = min(0.6, 0.25 + 0.03 * len(defs) + (0.1 if f.wrote else 0))
            change = "" if defs else f.change
            self._add("code_knowledge", code_text(self.name, rel, verb, defs, change), slug(rel), salience,
                      [rel, *f.defs], {"path": rel, "verb": verb, "defs": "\n".join(defs), "change": change},
                      [f.turn])  # fmt: skip
        dirs = [d for d, _ in self.dirs.most_common(40)]  # a monorepo's hundred folders are not one memory
        if len(dirs) >= 2 and self.last is not None:
            self._add("project_fact", layout_text(self.name, dirs), "layout", 0.35, dirs[:8],
                      {"kind": "layout", "dirs": "\n".join(sorted(dirs))}, [self.last])  # fmt: skip
        return self.out

    def _add(self, category: str, text: str, subject: str, salience: float, keywords: list[str],
             attrs: dict[str, str], turns: list[Turn]) -> None:  # fmt: skip
        self.out.append(Draft(category, text, subject, salience, keywords, attrs, turns=turns))

    def _result(self, call: ToolCall, call_turn: Turn, result: ToolResult, result_turn: Turn) -> None:
        name, inp = call.name, call.input
        path = inp.get("file_path") if isinstance(inp.get("file_path"), str) else None
        if name == "Bash" and isinstance(inp.get("command"), str):
            self._bash(inp["command"], result, call_turn, result_turn)
            return
        if result.is_error or not path:
            return  # a refused Edit or a missing file teaches nothing about the project
        rel = relative(path, self.cwd)
        if rel != path and "/" in rel:  # a file inside the project: its folder is part of the layout
            self.dirs["/".join(rel.split("/")[:-1][:2])] += 1
        if name == "Read" and is_manifest(path):
            self._manifest(path, strip_line_numbers(result.content), result_turn)
        elif name in ("Write", "Edit", "MultiEdit"):
            if name == "Write":
                edits = [{"new_string": str(inp.get("content", ""))}]
                self._manifest(path, edits[0]["new_string"], call_turn)
            else:
                raw = inp.get("edits") if name == "MultiEdit" else [inp]
                edits = [e for e in raw or [] if isinstance(e, dict)]
            f = self.files.setdefault(rel, _File(call_turn))
            f.wrote, f.turn = f.wrote or name == "Write", call_turn
            for d in definitions(path, "\n".join(str(e.get("new_string", "")) for e in edits)):
                f.defs.setdefault(d.name, d)
            change = "" if name == "Write" else edit_change(edits)
            f.change = f.change or change
            for ep in self.episodes.values():  # every open failure may be what this edit fixes
                ep.fixes.append((rel, change))
                ep.fix_turn = ep.fix_turn or call_turn

    def _bash(self, command: str, result: ToolResult, call_turn: Turn, result_turn: Turn) -> None:
        kind = command_kind(command)
        family = "/".join(kind) if kind else " ".join(command.split()[:2])
        if result.is_error or (kind and looks_failed(result.content)):
            error = failure_line(result.content)
            if error is None and kind is None:
                return  # `grep` finding nothing exits 1 too; only a named error or a known runner is an episode
            if family not in self.episodes:
                self.episodes[family] = _Episode(short(command, 120), error or "a non-zero exit", result_turn)
            return
        if kind:
            cmd = short(re.sub(r"^\s*cd\s+\S+\s*&&\s*", "", command), 120)
            self.commands.setdefault(kind, []).append((cmd, call_turn))
        ep = self.episodes.pop(family, None)
        if ep and (ep.fixes or ep.commands):
            self._episode(ep, (command, call_turn))
        elif not _looks_only(command):  # `fly postgres attach`, `pnpm install`: may be what fixes it
            for open_ep in self.episodes.values():
                open_ep.commands.append(short(command, 80))
                open_ep.fix_turn = open_ep.fix_turn or call_turn

    def _episode(self, ep: _Episode, verified: tuple[str, Turn] | None) -> None:
        files = list(dict.fromkeys(p for p, _ in ep.fixes))
        change = next((c for _, c in ep.fixes if c), "")
        how = []
        if ep.commands:
            how.append("running " + ", ".join(f"`{c}`" for c in list(dict.fromkeys(ep.commands))[-2:]))
        if files:
            how.append(f"editing {', '.join(files[:4])}" + (f" ({change})" if change else ""))
        text = f"In {self.name}, `{ep.command}` failed with {ep.error}; fixed by {' and '.join(how)}."
        if ep.why:
            text += f" Why: {ep.why}"
        if verified:
            text += f" `{short(verified[0], 80)}` passed afterwards."
        turns = [ep.failed, *([ep.fix_turn] if ep.fix_turn else []), *([verified[1]] if verified else [])]
        error_name = re.match(r"[\w.]*?(\w+(?:Error|Exception))\b|error\[(E\d+)\]", ep.error)
        keywords = [
            ep.command.split()[0],
            *files[:3],
            (error_name.group(1) or error_name.group(2)) if error_name else "",
        ]
        subject = (
            f"{slug(re.sub(r'[0-9]+', '', ep.error))[:60]}:{slug(files[0] if files else ep.commands[-1])}"
        )
        attrs = {
            "command": ep.command,
            "error": ep.error,
            "files": ", ".join(files),
            "verified": str(bool(verified)),
        }
        self._add("error_fix", text, subject, 0.6 if verified else 0.45, keywords, attrs, turns)

    def _manifest(self, path: str, content: str, turn: Turn) -> None:
        facts = manifest_facts(path, content)
        if facts is None:
            return
        rel = relative(path, self.cwd)
        keywords = [rel, facts.name, *facts.dependencies[:6], *list(facts.commands)[:4]]
        attrs = {"kind": "manifest", "path": rel, "language": facts.language}
        self._add("project_fact", f"{self.name} ({rel}): {facts.summary()}.", f"manifest:{slug(rel)}", 0.55,
                  keywords, attrs, [turn])  # fmt: skip


# Commands that only look: they fix nothing.
_READ_ONLY = re.compile(
    r"^\s*(?:cd\s+\S+\s*&&\s*)?(?:ls|cat|grep|rg|find|head|tail|echo|pwd|which|env|printenv|wc|less|more|tree|"
    r"stat|file|du|df|ps|top|whoami|date|sed\s+-n|awk|jq|curl\s+-s|git\s+(?:status|log|diff|show|branch|blame|"
    r"remote)|docker\s+(?:ps|logs|images)|kubectl\s+(?:get|describe|logs))\b"
)
_READ_VERBS = frozenset(
    [
        "logs",
        "log",
        "status",
        "show",
        "list",
        "ls",
        "get",
        "describe",
        "info",
        "inspect",
        "version",
        "help",
        "--help",
        "--version",
        "-h",
        "diff",
        "top",
        "ps",
        "whoami",
        "config",
        "view",
        "check-config",
        "doctor",
    ]
)


def _looks_only(command: str) -> bool:
    """A command that reads or reports (`ls`, `git status`, `fly logs`, `kubectl get`): it changes nothing."""
    if _READ_ONLY.match(command):
        return True
    tokens = re.sub(r"^\s*cd\s+\S+\s*&&\s*", "", command).split()
    return any(t in _READ_VERBS for t in tokens[1:3])


_CAUSE = re.compile(
    r"\b(?:because|caused by|the (?:problem|issue|cause|culprit|bug|error) (?:was|is)|root cause|turn(?:s|ed) out|"
    r"the fix (?:was|is)|fixed (?:it )?by|was missing|wasn't set|isn't set|needs? to be|had to|is why|that's why)\b",
    re.I,
)


def _explanation(text: str) -> str:
    """The first sentence of a reply that says what caused a failure or what fixed it, trimmed."""
    for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
        if _CAUSE.search(sentence) and not sentence.endswith("?") and len(sentence) >= 20:
            return short(sentence, 200)
    return ""


def render_def(d: Definition) -> str:
    return f"{d.kind} {d.name}({d.detail})" if d.kind in ("function", "method") else f"{d.kind} {d.name}"


def edit_change(edits: list[dict]) -> str:
    """The first changed line of an edit, as `old -> new` (or `added new`), when it is short enough to quote."""
    for e in edits:
        old = str(e.get("old_string", "")).splitlines()
        new = str(e.get("new_string", "")).splitlines()
        for op, i1, _, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
            if op == "replace" and len(old[i1].strip()) <= 80 and len(new[j1].strip()) <= 80:
                return f"{old[i1].strip()} -> {new[j1].strip()}"
            if op == "insert":
                added = next((x.strip() for x in new[j1:j2] if x.strip()), "")
                if added and len(added) <= 80:
                    return f"added {added}"
    return ""
