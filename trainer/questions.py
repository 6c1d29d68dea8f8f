"""The questions a developer would later ask about a memory, for its SFT pairs and CPT wordings.

    asked = askings(memories)                       # per memory key: what its questions may name
    question_for(memory, rng, asked[memory.key])    # "What was said about Chicken Pot Pie in conv-44?"

A question names what tells its memory apart from the project's other memories (`FOCUS_SHARED`), and a thing
rather than a verb (`transcripts.nouns`): a question that fits many memories trains one input on many
targets, and one about "found" asks for nothing.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from transcripts.extraction import Memory
from transcripts.nouns import ACTION, NAME, NUMBER, WordRoles, name_phrase
from transcripts.wording import identifiers, project_name

FOCUS_SHARED = 3  # a keyword this few memories of a project share still tells a question's memory apart


@dataclass(frozen=True)
class Asking:
    """What a memory's questions may name: `focus`, the keyword that tells it apart from its project's other
    memories; `latest`, whether it is the project's newest session (only that one answers "where did we leave
    off")."""

    focus: str | None = None
    latest: bool = True
    rank: int = NAME  # what the focus is (`transcripts.nouns.WordRoles.rank`)

    def names_nothing(self, m: Memory) -> bool:
        """Whether the memory's own question would ask about a verb or a filler: a said fact, preference or
        correction whose questions name their focus, where nothing else tells it apart ("What do we know
        about yeah?" for "Yeah, keep it up!"). Its templated question asks for nothing; the memory still
        trains through CPT and the later prompts that call for it. A stack fact or a command is asked by
        its role or command, never by its focus alone, so it always keeps its question."""
        asked_by_focus = m.category in ("project_fact", "preference", "correction")
        if not asked_by_focus or "role" in m.attrs or "command_kind" in m.attrs:
            return False
        return self.focus is not None and self.rank == ACTION


def askings(
    memories: list[Memory], shared: Counter[tuple[str | None, str]] | None = None
) -> dict[str, Asking]:
    """Per memory key, its `Asking`. The focus is a keyword (never the project's name) that at most
    FOCUS_SHARED memories of its project have, else one the fewest have: a month of conversation holds
    hundreds of memories whose first keyword is the same speaker, and one question per speaker would ask for
    all of them at once. Among those, the first (the extractor puts the most specific first), but a verb or a
    number only where nothing else tells it apart (`WordRoles`, read from the memories' own text): keywords
    come in text order, and a question about "found" or "heard" asks for nothing. A name is asked with the
    capitalised words around it ("Chicken Pot Pie"). `shared`: their `keyword_shares`."""
    shared = shared if shared is not None else keyword_shares(memories)
    roles = WordRoles.read(m.text for m in memories)
    newest: dict[str | None, tuple[str, str]] = {}
    for m in memories:
        if m.category == "session" and (m.time, m.key) > newest.get(m.project, ("", "")):
            newest[m.project] = (m.time, m.key)
    out = {}
    for m in memories:
        name = project_name(m.project, "").lower()
        words = [k for k in m.keywords if k.lower() != name]
        latest = m.category != "session" or newest.get(m.project, ("", ""))[1] == m.key
        if not words:
            out[m.key] = Asking(None, latest)
            continue
        telling = [max(shared[(m.project, k.lower())], FOCUS_SHARED) for k in words]
        code = identifiers(m.text)
        ranks = [NAME if any(k == c or k in c.split() for c in code) else roles.rank(k) for k in words]
        # the extractor's order, but never a verb or a number where another keyword tells the memory apart
        i = min(range(len(words)), key=lambda i: (telling[i], ranks[i] >= ACTION, ranks[i] == NUMBER, i))
        focus = name_phrase(words[i], m.text) if ranks[i] == NAME and words[i].isalpha() else words[i]
        out[m.key] = Asking(focus, latest, ranks[i])
    return out


def keyword_shares(memories: list[Memory]) -> Counter[tuple[str | None, str]]:
    """(project, lowercased keyword) -> how many of the project's memories have that keyword."""
    shared: Counter[tuple[str | None, str]] = Counter()
    for m in memories:
        shared.update({(m.project, k.lower()) for k in m.keywords})
    return shared


def question_for(m: Memory, rng: random.Random, asking: Asking = Asking()) -> str:
    """A question an agent might ask that this memory answers, from the memory's own parts (`askings`)."""
    a = m.attrs
    project = project_name(m.project, "my projects")
    kw = asking.focus or next((k for k in m.keywords if k.lower() != project.lower()), project)
    options = {
        "preference": [
            f"What does the user prefer about {kw}?",
            f"Any instructions from the user about {kw}?",
            f"How does the user want {kw} handled in {project}?",
        ],
        "decision": [
            f"What did we decide about {a.get('topic', kw).replace('-', ' ')}?",
            f"Which {a.get('topic', 'approach').replace('-', ' ')} do we use in {project}?",
        ],
        "project_fact": [
            f"How do we {a.get('command_kind', 'work with')} {project}?"
            if a.get("command_kind")
            else f"What do we know about {kw} in {project}?",
            # "the X setup" asks about a tool or a named thing; of any other word, what was said
            f"What is the {kw} setup in {project}?"
            if asking.rank == NAME
            else f"What was said about {kw} in {project}?",
        ],
        "error_fix": [
            f"How did we fix {a.get('error', kw)[:80]}?",
            f"`{a.get('command', kw)}` fails with {a.get('error', 'an error')[:60]}: what fixed it last time?",
        ],
        "code_knowledge": [
            f"What is in {a.get('path', kw)}?",
            f"Where is {kw} defined in {project}?",
        ],
        "correction": [
            f"What did the user correct about {kw}?",
            f"What should I avoid doing with {kw} in {project}?",
        ],
        "session": [
            f"What did we do in {project} on {a.get('day', 'that day')}?",
            f"What was the session of {a.get('day', 'that day')} in {project} about?",
            *([f"Where did we leave off in {project}?"] if asking.latest else []),
        ],
        "profile": [
            f"What is {project} built with?",
            f"What is the stack of {project}, and how do we run its tests?",
        ],
    }.get(m.category, [f"What do we know about {kw}?"])
    if kw == project:  # nothing but the project's name to ask about: never "about shop in shop"
        options = [o for o in options if f"{kw} in {project}" not in o] or [
            f"What do we know about {project}?"
        ]
    return rng.choice(options)
