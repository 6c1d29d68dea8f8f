"""Memory extraction: typed memories out of parsed sessions, locally, by rules and parsers (no model, no API).

    sessions = iter_sessions(Path("~/.claude/projects").expanduser())   # main-thread turns per transcript
    memories = extract(sessions)                                           # per session, then merge_memories

Six categories (`CATEGORIES`), from two sources:
- what was said (`transcripts.conversation`): the user's preferences ("always…", "never…", "don't…",
  "prefer…", "we use X not Y"), decisions ("let's go with X for the Y", "switch from X to Y", the assistant's
  "I'll use X instead of Y" once the user agreed) and corrections (the user overruling the assistant right after
  it acted: "no, …", "I said …", "that didn't work");
- what the tools show (`transcripts.tool_use`, parsing in `transcripts.source_code`): error → fix episodes, project facts
  (package files read or written, commands that passed, the layout) and code knowledge (files written or edited
  and the functions and classes they define).

Only what the user typed feeds preferences and corrections: sub-agent prompts (written by the assistant), meta
records, compaction summaries and `<system-reminder>` text never do. Third-party tool output (web pages, MCP
tools, files outside the project: `transcripts.provenance`) feeds nothing, and a memory whose words read as an
instruction to an agent (`transcripts.injection`, as when a reply quotes a poisoned page) is not kept.

Merging (`merge_memories`) folds memories with one key (category + project + normalized subject) and
near-duplicate wordings; the newest wording wins and salience rises with each extra session. A later decision on
the same subject supersedes the earlier one: both are kept, the older marked `superseded_by` the newer key with
its salience halved, so recall can answer "what do we use now" and still "what did we use before, and when did
it change" — dropping it would lose that history and the evidence for the change.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from transcripts.conversation import (
    Draft,
    clean_prompt,
    content_words,
    keywords_of,
    prompt_drafts,
    relayed_dialogue,
    reply_drafts,
    speaker_of,
)
from transcripts.injection import is_instruction_like, neutralise
from transcripts.notes import note_drafts, said_note
from transcripts.parse import Link, Turn, discover, main_thread, parse_file
from transcripts.profile import project_profiles
from transcripts.provenance import without_third_party
from transcripts.redact import Redactor
from transcripts.stack import stack_drafts, stack_text
from transcripts.summary import session_draft
from transcripts.tool_use import code_text, describe_action, layout_text, project_name, slug, tool_drafts
from transcripts.when import anchored
from transcripts.wording import jaccard

CATEGORIES = (
    "preference",
    "decision",
    "project_fact",
    "error_fix",
    "code_knowledge",
    "correction",
    "session",  # one summary per session (transcripts.summary)
    "profile",  # one per project, over all its sessions (project_profiles)
)
# Per-session caps keep a 3 MB session to tens of memories; the most salient are kept.
CAPS = {
    "preference": 15,
    "decision": 10,
    "correction": 10,
    "error_fix": 10,
    "project_fact": 40,  # stack facts, commands, package files, notes
    "code_knowledge": 25,
    "session": 1,
}
# Raise by one whenever a change to the rules (here or in the modules they call) changes what a session
# gives: a store re-reads every session extracted by older rules (lmm_mcp.memories). 1: session 15's rules on
# stack words and relayed conversation; a relayed conversation's summary, and its speaker on every note.
# 2: Ruby, Travis and Phoenix as people's names ("hiking with Ruby") are no stack fact; a chat line's notes
# in any verb, its reactions left out. 3: relative time ("yesterday") anchored to the day it was said.
# 4: a user's own sentences about themselves read as chat lines are; a list's introduction is no note.
# 5: a session summary's outcome skips a closing acknowledgement ("You're welcome, enjoy the trip!").
# 6: a stack fact's purpose ends where another "for"/"as" begins; "use X rather than Y" is decided "instead of
# Y", not "replacing" it.
EXTRACTION_RULES = 6
NEAR_DUP = 0.6  # Jaccard of content words at which two wordings (one category, one project) are one memory


@dataclass
class Source:
    session_id: str
    uuid: str  # the record the memory was read from
    timestamp: str | None
    project: str | None  # the session's cwd


@dataclass
class Memory:
    category: str  # one of CATEGORIES
    text: str  # one or two self-contained sentences that name files, functions, commands
    keywords: list[str]  # identifiers and salient words, most specific first
    salience: float  # 0..1: explicitness, repetition across sessions, recency
    sources: list[Source]
    project: str | None  # cwd; None for a cross-project preference
    key: str  # category:project:subject; one key is one memory
    superseded_by: str | None = None  # key of the newer decision that replaced this one
    attrs: dict[str, str] = field(
        default_factory=dict
    )  # structured parts: decision choice/topic, file path...

    @property
    def time(self) -> str:
        """When it was last seen (ISO timestamps compare as strings)."""
        return max((s.timestamp or "" for s in self.sources), default="")

    def cited(self) -> Source | None:
        """The one source a search hit of this memory names: where a fact, preference or decision was first
        said (where a stack change was said, for a change), and a profile where the project was first described;
        the newest for what accumulates (an episode, a file's code)."""
        if not self.sources:
            return None
        if self.category in ("project_fact", "preference", "decision", "correction", "profile"):
            changed = self.attrs.get("changed_at")
            at_change = [s for s in self.sources if changed and s.timestamp == changed]
            return at_change[0] if at_change else min(self.sources, key=lambda s: s.timestamp or "")
        return max(self.sources, key=lambda s: s.timestamp or "")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Memory:
        return cls(**{**d, "sources": [Source(**s) for s in d.get("sources", [])]})


# ---------------------------------------------------------------------------------------------- sessions


def session_turns(path: Path) -> list[list[Turn]]:
    """A transcript's sessions: its main thread (rewound branches dropped), then its inline sub-agent turns.

    Claude Code 1.0 kept sub-agent records inline (`isSidechain`); the main thread leaves them out, so they
    come second.
    """
    turns: list[Turn] = []
    links: list[Link] = []
    for item in parse_file(path):
        if isinstance(item, Turn):
            turns.append(item)
        elif isinstance(item, Link):
            links.append(item)
    main = main_thread(turns, links)
    side = [t for t in turns if t.is_sidechain] if main and not main[-1].is_sidechain else []
    return [s for s in (main, side) if s]


def iter_sessions(root: Path) -> Iterator[list[Turn]]:
    """Every transcript under a Claude projects folder; a sub-agent's transcript is a session of its own."""
    for tf in discover(root):
        yield from session_turns(tf.path)


# ---------------------------------------------------------------------------------------------- extraction


def extract(sessions: Iterable[list[Turn]]) -> list[Memory]:
    """All sessions' memories, merged, with salience scaled by recency (the newest history keeps 100%)."""
    return combine(extract_session(turns) for turns in sessions)


def combine(per_session: Iterable[list[Memory]]) -> list[Memory]:
    """Merge per-session extractions (`extract_session`) into one list, salience scaled by recency.

    The store keeps each session's extraction and calls this over all of them, so a growing session is
    re-extracted alone.
    """
    memories = merge_memories([m for ms in per_session for m in ms])
    memories += project_profiles(memories)
    newest = max((_epoch(m.time) for m in memories), default=0.0)
    for m in memories:  # recent knowledge is likelier to be current; old knowledge fades to 80%, never away
        age_days = max(0.0, newest - _epoch(m.time)) / 86400
        m.salience = round(m.salience * (0.8 + 0.2 * math.exp(-age_days / 60)), 3)
    return sorted(memories, key=lambda m: (-m.salience, m.key))


def extract_session(turns: list[Turn]) -> list[Memory]:
    """One session's memories, merged within it and capped per category."""
    if _forks(turns):
        turns = main_thread(turns)
    cwd = next((t.cwd for t in turns if t.cwd), None)
    turns = without_third_party(turns, cwd)
    name = project_name(cwd)
    found: list[tuple[Draft, Turn]] = []
    after_assistant = False  # a correction answers something the assistant just did or said
    actions: list[str] = []  # what the assistant did since the last prompt
    last_reply = last_prompt = ""
    # A relayed conversation between people: its rules and choices are theirs, kept as notes of what was said.
    dialogue = relayed_dialogue([t.text for t in turns if t.role == "user" and t.kind == "prompt"])
    for turn in turns:
        if turn.role == "assistant" and turn.kind == "reply":
            actions += filter(None, (describe_action(c, cwd) for c in turn.tool_calls))
            if turn.text and not turn.is_sidechain:
                last_reply = turn.text
                found += ((f, turn) for f in reply_drafts(turn.text, name=name, prev_prompt=last_prompt))
                said = clean_prompt(turn.text)
                found += ((f, turn) for f in stack_drafts(said, name=name, by_user=False))
                found += ((f, turn) for f in note_drafts(said, name=name))
            after_assistant = True
        elif turn.role == "user" and turn.kind == "prompt" and not turn.is_sidechain:
            # Sub-agent prompts are the assistant's words, not the user's: never preferences.
            facts = prompt_drafts(
                turn.text, name=name, after_assistant=after_assistant, prev_reply=last_reply, actions=actions
            )
            said = clean_prompt(turn.text)
            speaker = speaker_of(said) if dialogue else None
            if dialogue:
                facts = [
                    said_note(f, name, speaker) for f in facts if f.category in ("preference", "decision")
                ]
            found += ((f, turn) for f in facts)
            found += ((f, turn) for f in stack_drafts(said, name=name))
            found += ((f, turn) for f in note_drafts(said, name=name, by_user=True, speaker=speaker))
            actions, last_prompt, after_assistant = [], turn.text, False
    found += ((f, f.turns[0]) for f in tool_drafts(turns, cwd) if f.turns)
    summary = session_draft(turns, cwd)
    if summary is not None and summary.turns:
        found.append((summary, summary.turns[0]))
    redactor = Redactor()
    memories = [_memory(f, turn, cwd, redactor) for f, turn in _without_instructions(found)]
    return _cap(merge_memories(memories))


def extract_windows(windows: Iterable[list[Turn]]) -> list[Memory]:
    """One session's memories from its turns in consecutive windows (a session too large to hold at once):
    each window is extracted on its own, then all are merged and capped as one session's."""
    return _cap(merge_memories([m for window in windows for m in extract_session(window)]))


def _without_instructions(found: list[tuple[Draft, Turn]]) -> list[tuple[Draft, Turn]]:
    """Drafts that read as an injection's instruction to an agent are dropped; a session summary, which
    says much else, keeps its other words with the instruction neutralised."""
    kept = []
    for fact, turn in found:
        if not is_instruction_like(" ".join([fact.text, *fact.attrs.values()])):
            kept.append((fact, turn))
        elif fact.category == "session":
            attrs = {k: _neutralise_quotes(v) for k, v in fact.attrs.items()}
            kept.append((dataclasses.replace(fact, text=_neutralise_quotes(fact.text), attrs=attrs), turn))
    return kept


_QUOTED = re.compile(r"“([^”]*)”")


def _neutralise_quotes(text: str) -> str:
    """A summary's own frame ("Session of … asked “…”") with what it quotes neutralised on its own, so that an
    instruction in a quoted prompt takes the quote, not the whole summary."""
    return neutralise(_QUOTED.sub(lambda m: f"“{neutralise(m.group(1))}”", text))


def _memory(fact: Draft, turn: Turn, cwd: str | None, redactor: Redactor) -> Memory:
    project = None if fact.general else cwd
    sources = [Source(t.session_id, t.uuid, t.timestamp, t.cwd or cwd) for t in fact.turns or [turn]]
    # Turns from the store are redacted already; raw transcripts are not, and a command line can carry a token.
    # "Yesterday" is read weeks later: it keeps the day it meant when it was said.
    text = anchored(redactor.redact_text(fact.text)[0], sources[0].timestamp)
    return Memory(
        fact.category,
        text,
        keywords_of(text, fact.keywords),
        round(min(1.0, fact.salience), 3),
        sources,
        project,
        f"{fact.category}:{slug(project or 'global')}:{fact.subject}",
        attrs={k: redactor.redact_text(v)[0] for k, v in fact.attrs.items()} | _change_time(fact, turn),
    )


def _change_time(fact: Draft, turn: Turn) -> dict[str, str]:
    """A stack change remembers when it was said: later mentions of the old value do not undo it."""
    said = fact.attrs.get("replaces") or fact.attrs.get("changed")
    return (
        {"changed_at": turn.timestamp} if said and fact.category == "project_fact" and turn.timestamp else {}
    )


def _forks(turns: list[Turn]) -> bool:
    """True when a rewind left two branches; a straight list is used as given (hand-built turns included)."""
    seen: set[str] = set()
    for t in turns:
        if t.parent_uuid and not t.is_sidechain:
            if t.parent_uuid in seen:
                return True
            seen.add(t.parent_uuid)
    return False


def _cap(memories: list[Memory]) -> list[Memory]:
    by_category: dict[str, list[Memory]] = {}
    for m in sorted(memories, key=lambda m: -m.salience):
        by_category.setdefault(m.category, []).append(m)
    return [m for cat, ms in by_category.items() for m in ms[: CAPS.get(cat, 10)]]


# ---------------------------------------------------------------------------------------------- merging


def merge_memories(memories: list[Memory]) -> list[Memory]:
    """Fold duplicates (one key, or near-identical wording in one category and project), then supersede.

    Folding unions the sources, keeps the newest text (a file's definitions and a project's folders are
    unioned instead: older ones still exist), and raises salience by 0.1 per extra session (at most +0.3).
    A decision is superseded by a newer one on the same topic, or by one that names its choice as replaced
    ("switch from X to Y"); it is kept, marked and halved in salience. Merging a merged list changes nothing.
    """
    by_key: dict[str, Memory] = {}
    for m in sorted(memories, key=lambda m: m.time):
        if m.key in by_key:
            _fold(by_key[m.key], m)
        else:
            by_key[m.key] = m
    merged = _fold_near(list(by_key.values()))
    _supersede([m for m in merged if m.category == "decision"])
    _supersede([m for m in merged if m.category == "project_fact" and m.attrs.get("choice")])
    return merged


def _bonus(m: Memory) -> float:
    return min(0.3, 0.1 * (len({s.session_id for s in m.sources}) - 1))


def _base(m: Memory) -> float:
    """Salience before repetition and supersession, so that folding twice counts nothing twice."""
    return min(1.0, m.salience * (2 if m.superseded_by else 1)) - _bonus(m)


def _fold(into: Memory, other: Memory) -> None:
    """Fold `other` into `into` (one subject); the newer one's text and attributes win."""
    base = max(_base(into), _base(other))
    newer, older = (other, into) if other.time >= into.time else (into, other)
    # `into` is usually the older one: read both attribute sets before overwriting its own.
    old_attrs, new_attrs = dict(older.attrs), dict(newer.attrs)
    seen = {(s.session_id, s.uuid) for s in into.sources}
    into.sources = sorted(
        into.sources + [s for s in other.sources if (s.session_id, s.uuid) not in seen],
        key=lambda s: s.timestamp or "",
    )
    into.attrs = {**old_attrs, **new_attrs}
    into.text = newer.text
    name = project_name(into.project)
    if into.category == "code_knowledge":
        defs = _union(new_attrs.get("defs", ""), old_attrs.get("defs", ""))
        verb = (
            "was written"
            if "written" in old_attrs.get("verb", "") + new_attrs.get("verb", "")
            else "was edited"
        )
        into.attrs.update(defs="\n".join(defs), verb=verb)
        into.text = code_text(
            name, into.attrs.get("path", ""), verb, defs, "" if defs else into.attrs.get("change", "")
        )
    elif into.attrs.get("kind") == "stack":
        into.text = stack_text(name, into.attrs)
    elif into.attrs.get("kind") == "layout":
        dirs = sorted(_union(new_attrs.get("dirs", ""), old_attrs.get("dirs", "")))
        into.attrs["dirs"] = "\n".join(dirs)
        into.text = layout_text(name, dirs)
    into.keywords = keywords_of(into.text, newer.keywords + older.keywords)
    into.salience = round(min(1.0, base + _bonus(into)), 3)
    into.superseded_by = None  # supersession is decided afresh over the merged list


def _union(*lists: str) -> list[str]:
    return [x for x in dict.fromkeys(line for lines in lists for line in lines.splitlines()) if x]


def _fold_near(memories: list[Memory]) -> list[Memory]:
    """Near-duplicate wordings of a preference or correction; one decision stated with and without its topic."""
    kept: list[Memory] = []
    buckets: dict[tuple[str, str | None], list[tuple[frozenset[str], Memory]]] = {}
    for m in sorted(memories, key=lambda m: m.time):
        if m.category not in ("preference", "correction", "decision"):
            kept.append(m)
            continue
        words = content_words(f"{m.attrs.get('said', m.text)} {m.attrs.get('corrected', '')}")
        bucket = buckets.setdefault((m.category, m.project), [])
        twin = None
        for other_words, other in reversed(bucket[-300:]):  # bounded scan: near-duplicates are usually recent
            if m.category == "decision":
                same = bool(m.attrs.get("choice")) and m.attrs.get("choice") == other.attrs.get("choice")
            else:
                same = jaccard(words, other_words) >= NEAR_DUP and _names(words) == _names(other_words)
            if same:
                twin = other
                break
        if twin is None:
            bucket.append((words, m))
            kept.append(m)
            continue
        fuller = bool(m.attrs.get("topic")) and not twin.attrs.get("topic")
        _fold(twin, m)
        if fuller:  # "X for the ORM" names the memory better than a bare "X"
            twin.key = m.key
    return kept


def _names(words: frozenset[str]) -> frozenset[str]:
    """The code-shaped words: two wordings naming different files or functions are different memories."""
    return frozenset(w for w in words if any(c in w for c in "_./"))


def _supersede(memories: list[Memory]) -> None:
    """Mark each memory that a later one replaced (decisions on a topic; stack facts said as a change).

    A fact is replaced when the change was said after the fact was first stated, even if the old value is
    mentioned again later ("retire the Heroku apps" does not bring Heroku back); a change back ("we moved
    back to X") said later still wins.
    """
    by_project: dict[str | None, list[Memory]] = {}
    for d in memories:
        by_project.setdefault(d.project, []).append(d)
    for d in memories:  # decided afresh: a reaffirmed choice may no longer be superseded
        if d.superseded_by:
            d.salience, d.superseded_by = round(min(1.0, d.salience * 2), 3), None
    for group in by_project.values():
        group.sort(key=_changed_at)
        for old in group:
            for new in group:  # in order of change: the newest replacement wins, overwriting the mark
                if new is old or not _replaces(new, old) or _changed_at(new) <= _first_said(old):
                    continue
                if _replaces(old, new) and _changed_at(old) > _changed_at(new):
                    continue  # it came back later
                if old.superseded_by is None:
                    old.salience = round(old.salience / 2, 3)
                old.superseded_by = new.key


def _changed_at(m: Memory) -> str:
    """When the change a memory records was said (a decision or a stack change), else when it was last seen."""
    return m.attrs.get("changed_at") or m.time


def _first_said(m: Memory) -> str:
    if m.category == "decision":
        return m.time  # a decision is replaced by a later decision, as it was before
    return min((s.timestamp or "" for s in m.sources), default="")


def _replaces(new: Memory, old: Memory) -> bool:
    choice = new.attrs.get("choice")
    if not choice or choice == old.attrs.get("choice"):
        return False
    if new.attrs.get("replaces") and new.attrs["replaces"] == old.attrs.get("choice"):
        return True
    topic = new.attrs.get("topic")
    if not topic or topic != old.attrs.get("topic"):
        return False
    # A decision on a topic replaces the last one; a stack fact only when said as a change ("we moved to X"):
    # "SQLite in the tests" beside "PostgreSQL in production" is two facts, not a replacement.
    return new.category == "decision" or bool(new.attrs.get("changed"))


def _epoch(ts: str) -> float:
    try:
        return datetime.fromisoformat(ts).timestamp() if ts else 0.0
    except ValueError:
        return 0.0
