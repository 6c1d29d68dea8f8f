"""Who said it: a question about one person, whose topic memory holds only in another person's words.

    said = misattributed(conn, "What country is Melanie's grandma from?", hits, project_ids=[4])
    # -> Attribution(asked="Melanie", speaker="Caroline") when the grandma was only ever Caroline's

A relayed conversation ("Caroline: …", "Melanie: …") keeps who said each line, and a question names whom
it asks about. Search matches the topic, not the person: when Melanie never spoke of a grandma, the nearest
excerpts are Caroline's, and offering them as the answer would put Caroline's life in Melanie's mouth. So
recall says that nothing is remembered of Melanie on this and shows whose words these are.

The rule, on the question and the best hits only, no model:
- the question names exactly one of the conversation's speakers (a label that opens at least two stored
  lines of the project, `lmm_mcp.queries.speaks`), and not the other by a short form ("Deb" of Deborah);
- among the sentences of the top `TOP_HITS` hits, those sharing the most of the question's other content
  words (at least `MIN_SHARED`, in any tense: "winning" is "win") are all the other person's: their own
  statements, or what the person asked about said to them ("Congrats on your new shop!", "What got you
  into pottery?");
- none of the other's is about the person asked about: a question to them ("What motivated you?") says
  they are the one who knows, a sentence speaking to them ("your painting") is about them, and so is a line
  naming them other than to address them ("Thanks, Melanie!" only addresses).
On LoCoMo's questions (all 1,986, retrieval only) it flags 240 of the 471 that the conversation cannot
answer and 71 of the 1,515 it can; without the second kind of the other's sentence, 179 and 43
(docs/benchmarks.md). A flagged recall still shows the excerpts, so a false flag costs the agent a
misleading first line, not the answer.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from lmm_mcp.queries import speaks
from lmm_mcp.retrieval import Hit
from transcripts.conversation import capitalised_words, content_words, sentences, speaker_and_words

TOP_HITS = 3  # the hits read: further down, a line is as likely another topic as the asked one
MIN_SHARED = 1  # content words a sentence must share with the question to stand for its topic
MAX_CANDIDATES = 6  # capitalised words of a question checked as speakers
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|yourself|you're|you've|you'd|you'll|ya)\b", re.I)
# An address: the name set off as the one spoken to, at a sentence's start or after a greeting or thanks.
_ADDRESS = r"(?:^|[,;:!?.]\s*|\b(?:hey|hi|hello|thanks|thank you|wow|whoa|woah|congrats|yeah|yes|oh|sorry|so|ok|okay|aw+|dear)[,!]?\s+){name}\s*(?:[!,.?]|$)"


@dataclass(frozen=True)
class Attribution:
    asked: str  # the speaker the question asks about
    speaker: str  # the one whose words hold its topic


def misattributed(
    conn: sqlite3.Connection, question: str, hits: Sequence[Hit], *, project_ids: Sequence[int] | None = None
) -> Attribution | None:
    """Who the question asks about and who said what answers its topic, when the two differ (see the module
    docstring); None when they do not, or when the question is not about one speaker of a conversation."""
    top = list(hits[:TOP_HITS])
    if not top:
        return None
    cache: dict[str, bool] = {}

    def is_speaker(name: str) -> bool:
        if name not in cache:
            cache[name] = speaks(conn, name, project_ids)
        return cache[name]

    candidates = capitalised_words(question)[:MAX_CANDIDATES]
    asked = [n for n in candidates if is_speaker(n)]
    if len(asked) != 1:
        return None
    [person] = asked
    topic = _stems(content_words(question) - content_words(person))
    best, shared = [], MIN_SHARED
    for hit in top:
        speaker, body = speaker_and_words(hit.text)
        for sentence in sentences(body, limit=60):
            n = len(topic & _stems(content_words(sentence)))
            if n > shared:
                best, shared = [], n
            if n == shared:
                best.append((speaker, sentence, body))
    if not best:
        return None
    owners: set[str | None] = set()  # whose each best sentence is; None: the listener of the person asked
    for speaker, sentence, line in best:
        if speaker is None:
            return None
        if speaker == person:
            if not _to_listener(sentence):
                return None  # their own words on it
            owners.add(None)
        elif _about(sentence, line, person):
            return None
        else:
            owners.add(speaker)
    named = owners - {None}
    if len(named) > 1:
        return None
    other = named.pop() if named else _listener(top, person)
    if other is None or not is_speaker(other):
        return None
    if any(_short_for(word, other) for word in candidates):  # "Deb" of Deborah: the question names them too
        return None
    return Attribution(asked=person, speaker=other)


def misattributed_memory(said: Attribution) -> str:
    """The abstention's opening line: nothing of the person asked about, and whose words follow."""
    return f"No relevant memory of {said.asked} on this: what past sessions hold on it is {said.speaker}'s."


def _stems(words: frozenset[str]) -> set[str]:
    """Words with an -ing or -ed ending dropped, a doubled last consonant undone ("winning" and "win"), so
    that one topic matches in any tense."""
    out = set()
    for w in words:
        stem = re.sub(r"(?:ing|ed)$", "", w) if len(w) > 5 else w
        if len(stem) > 3 and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
            stem = stem[:-1]
        out.add(stem)
    return out


def _short_for(word: str, name: str) -> bool:
    """Whether `word` is `name` or its short form ("Deb" of "Deborah", "Mel" of "Melanie")."""
    return len(word) >= 3 and name.startswith(word)


def _to_listener(sentence: str) -> bool:
    """Whether a sentence asks or speaks to the one listening ("What motivated you?", "Congrats on your shop")."""
    return sentence.rstrip().endswith("?") or _SECOND_PERSON.search(sentence) is not None


def _listener(hits: Sequence[Hit], person: str) -> str | None:
    """The other speaker of the best hits: the one `person` speaks to."""
    for hit in hits:
        speaker, _ = speaker_and_words(hit.text)
        if speaker is not None and speaker != person:
            return speaker
    return None


def _about(sentence: str, line: str, person: str) -> bool:
    """Whether a sentence of a `line` is about `person` (or asks them): it speaks to them or is a question,
    or its line names them other than to address them ("Paris?! That's great, Jon's trip…")."""
    if _to_listener(sentence):
        return True
    name = rf"(?:{re.escape(person)}|{re.escape(person[:3])}[a-z]*)" if len(person) > 3 else re.escape(person)
    named = len(re.findall(rf"\b{name}\b", line))
    addressed = len(re.findall(_ADDRESS.format(name=name), line, flags=re.I))
    return named > addressed
