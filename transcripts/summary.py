"""A short, extractive summary of one session: what was asked, what was done, the outcome, what was left open.

    draft = session_draft(turns, cwd="/home/me/shop")
    draft.text  # "Session of 2026-01-25 in shop: asked to add rate limiting to login. Edited app/auth.py;
                #  ran `uv run pytest -q` (passed). Outcome: rate limiting is in. Left open: per-user limits."

Answers "where did we stop", "what did we do on January 25" and "what's still open": the memory's time is the
session's, so a date in a query finds it. Extractive only: every part is a sentence or a path from the
session itself, trimmed. A session with nothing said (only tool output, or empty) has no summary. A session
relaying a conversation between people ("Caroline: …", "Melanie: …") says who talked and the names said most
instead: its first prompt is only a greeting.
"""

from __future__ import annotations

import re
from collections import Counter

from transcripts.conversation import (
    Draft,
    clean_prompt,
    content_words,
    relayed_dialogue,
    sentences,
    speaker_of,
)
from transcripts.notes import names
from transcripts.parse import Turn
from transcripts.tool_use import project_name, relative, short

ASK_CHARS = 220  # the opening request
OUTCOME_CHARS = 220
# The outcome is the last reply that is more than an acknowledgement: "Got it.", "You're welcome, enjoy the
# trip!" (under this many content words) close many sessions after the reply that said how it ended.
OUTCOME_MIN_WORDS = 6
PENDING_CHARS = 260
MAX_TOPICS = 6  # what a relayed conversation was about
MAX_FILES = 6
MAX_COMMANDS = 3

_PENDING = re.compile(
    r"\b(?:next (?:step|time|up|session)|todo|to-do|to do next|still (?:need|needs|have|has|to|missing|open|"
    r"broken|failing|left)|left to|remaining|remains|tomorrow|later|follow[- ]up|not yet|pending|open question|"
    r"haven't|hasn't|didn't get to|punt|park(?:ed)? (?:it|this|that)|come back to|pick (?:it|this) up|"
    r"for now|out of scope|another (?:session|day|time)|next week|needs? to be done)\b",
    re.I,
)
_TEST_COMMAND = re.compile(
    r"\b(?:test|tests|pytest|jest|vitest|rspec|check|lint|build|cargo|go test|mypy|tsc)\b"
)


def session_draft(turns: list[Turn], cwd: str | None) -> Draft | None:
    """The session's summary as a Draft of category 'session', or None when nothing was said in it."""
    prompts = [t for t in turns if t.role == "user" and t.kind == "prompt" and not t.is_sidechain]
    replies = [
        t for t in turns if t.role == "assistant" and t.kind == "reply" and t.text and not t.is_sidechain
    ]
    name = project_name(cwd)
    start = next((t.timestamp for t in turns if t.timestamp), None)
    day = (start or "")[:10] or "an unknown date"
    if relayed_dialogue([t.text for t in prompts]):
        return _talk_draft(prompts, name, day, turns[0].session_id)
    asked = next(((t, s) for t in prompts if (s := _first_sentences(clean_prompt(t.text), ASK_CHARS))), None)
    if not replies and (asked is None or len(asked[1].split()) < 4):
        return None  # nothing answered, and too little asked to say what the session was for
    parts = [f"Session of {day} in {name}"]
    parts[0] += f": asked {_quote(asked[1])}." if asked else "."
    done = _done(turns, cwd)
    if done:
        parts.append(done)
    last = _outcome(replies)
    if last is not None:
        outcome = _first_sentences(clean_prompt(last.text), OUTCOME_CHARS)
        if outcome:
            parts.append(f"Outcome: {outcome}")
    pending = _pending(prompts[-2:] + replies[-2:])
    if pending:
        parts.append(f"Left open: {pending}")
    sources = [t for t in (asked[0] if asked else None, last) if t is not None]
    keywords = [name, day, *(_files(turns, cwd)[:MAX_FILES])]
    return Draft(
        "session",
        " ".join(parts),
        f"session-{(turns[0].session_id or day)}",
        0.5,
        keywords=keywords,
        attrs={"kind": "session", "day": day},
        turns=sources,
    )


def _outcome(replies: list[Turn]) -> Turn | None:
    """The reply the session closed on: the last that is more than an acknowledgement (OUTCOME_MIN_WORDS)."""
    said = (t for t in reversed(replies) if len(content_words(clean_prompt(t.text))) >= OUTCOME_MIN_WORDS)
    return next(said, replies[-1] if replies else None)


def _talk_draft(prompts: list[Turn], name: str, day: str, session_id: str | None) -> Draft | None:
    """A relayed conversation's summary: who talked, and about what: the names said in it most often (a
    place, a group, a book), never the people talking. Short on purpose: the lines themselves are notes, and a
    summary quoting them crowded those notes out of a small recall (docs/benchmarks.md)."""
    cleaned = [(turn, clean_prompt(turn.text)) for turn in prompts]
    lines = [(turn, speaker, text) for turn, text in cleaned if (speaker := speaker_of(text))]
    if not lines:
        return None
    people = list(dict.fromkeys(speaker for _, speaker, _ in lines))
    # Their names in each other's lines ("Wow, Caroline!") are no topic; a shortened one ("Mel") neither.
    short = "|".join(re.escape(p.split()[0][:3]) for p in people)
    addressed = re.compile(rf"^(?:{short})")
    topics: Counter[str] = Counter()
    for _, speaker, text in lines:
        for s in sentences(text[len(speaker) + 1 :], limit=20):
            topics.update(n.rstrip("'’") for n in names(s) if not addressed.match(n))
    about = [t for t, _ in topics.most_common(MAX_TOPICS)]
    who = ", ".join(people[:-1]) + f" and {people[-1]}" if len(people) > 1 else people[0]
    text = f"Session of {day} in {name}: {who} talked" + (f" about {', '.join(about)}." if about else ".")
    return Draft(
        "session",
        text,
        f"session-{session_id or day}",
        0.5,
        keywords=[name, day, *people, *about],
        attrs={"kind": "session", "day": day},
        turns=[lines[0][0], lines[-1][0]],
    )


def _first_sentences(text: str, limit: int) -> str:
    out = ""
    for s in sentences(text, limit=6):
        if out and len(out) + len(s) + 1 > limit:
            break
        out = f"{out} {s}".strip()
    return out if len(out) <= limit else out[: limit - 1].rstrip() + "…"


def _quote(text: str) -> str:
    return f"“{text.rstrip('.')}”"


def _files(turns: list[Turn], cwd: str | None) -> list[str]:
    seen: dict[str, None] = {}
    for t in turns:
        for c in t.tool_calls:
            path = c.input.get("file_path") or c.input.get("path")
            if c.name in ("Edit", "MultiEdit", "Write", "NotebookEdit") and isinstance(path, str):
                seen.setdefault(relative(path, cwd))
    return list(seen)


def _done(turns: list[Turn], cwd: str | None) -> str:
    """Files changed and the checks run, with whether the last run of each passed."""
    files = _files(turns, cwd)
    results = {r.tool_use_id: r for t in turns for r in t.tool_results}
    runs: dict[str, bool | None] = {}
    for t in turns:
        for c in t.tool_calls:
            command = c.input.get("command")
            if c.name == "Bash" and isinstance(command, str) and _TEST_COMMAND.search(command):
                result = results.get(c.id)
                runs[short(command, 60)] = None if result is None else not result.is_error
    bits = []
    if files:
        more = f" and {len(files) - MAX_FILES} more" if len(files) > MAX_FILES else ""
        bits.append("Changed " + ", ".join(files[:MAX_FILES]) + more)
    if runs:
        shown = list(runs.items())[-MAX_COMMANDS:]
        said = {True: " (passed)", False: " (failed)", None: ""}
        bits.append("ran " + ", ".join(f"`{cmd}`{said[ok]}" for cmd, ok in shown))
    return ("; ".join(bits) + ".") if bits else ""


def _pending(turns: list[Turn]) -> str:
    found: list[str] = []
    for t in turns:
        for s in sentences(clean_prompt(t.text), limit=30):
            if _PENDING.search(s) and not s.endswith("?") and s not in found:
                found.append(s)
    text = " ".join(found)
    return text if len(text) <= PENDING_CHARS else text[: PENDING_CHARS - 1].rstrip() + "…"
