"""Names a question asks about that the history never mentions: the surest sign that memory cannot answer.

    names = unknown_names(conn, "Which GraphQL library do we use?", project_ids=[3])   # ["GraphQL"]
    day = empty_day(conn, read_query(conn, "what did we do on March 3?"), project_ids=[3])   # "2026-03-03"

A question that names a tool, service or identifier ("Sentry", "GraphQL", "p99", "i18n") which no stored
session of the project ever wrote has no answer in memory, however close the retrieved excerpts look: search
always finds something, and no score of ours told the difference (docs/benchmarks.md, issue 10). So recall
says so instead of offering the nearest text as if it answered.

A name is a word of the question, not a sentence's first word, with a capital letter after its first
character or at its start, or letters mixed with digits; calendar words (months, weekdays, ordinals) are the
time filter's business, not names. It is mentioned when the full-text index holds a word that starts with it
("Postgres" finds "PostgreSQL"), or a word of at least `MIN_STEM` characters and `MIN_SHARE` of its length
that it starts with ("PostgreSQL" finds "postgres"); a name of several tokens ("Fly.io") is a phrase.

The same holds for a day: a question about a day on which no session of the project was active has no
answer in memory either (`empty_day`).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Sequence

from lmm_mcp.queries import any_chunk_between, any_chunk_matches
from lmm_mcp.query import MONTHS, Scope
from transcripts.when import WEEKDAYS

MIN_STEM = 5  # the shortest stored word that may stand for a longer name ("postgres" for "PostgreSQL")
MIN_SHARE = 0.75  # ...and the share of the name's length it must cover ("graph" is not "GraphQL")
MAX_NAMES = 4
DAY_SLACK_S = 14 * 3600  # the day is read in this machine's zone, which may not be the user's (a container)
_CALENDAR = {*MONTHS, *WEEKDAYS, "today", "yesterday", "tomorrow"}
_ORDINAL = re.compile(r"^\d+(st|nd|rd|th)$", re.I)
_SENTENCE_END = re.compile(r"[.!?:;]$")
_POSSESSIVE = re.compile(r"['’]s?$")
_WORDS = re.compile(r"[\s()\[\]{}<>\"`]+")  # brackets and quotes part words: "NEAR(deploy" is two
_NOT_NAMES = {"I", "AND", "OR", "NOT", "NEAR"}  # the pronoun, and search operators people type
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_DAY = re.compile(r"\d{4}-\d\d-\d\d$")  # a period read_query labels as one day
_EDGE = "\"'`()[]{}<>,.;:!?*"


def question_names(question: str) -> list[str]:
    """The words of `question` shaped like names (see the module docstring), each once, in order."""
    names: dict[str, str] = {}
    first = True
    for raw in filter(None, _WORDS.split(question)):
        word = _POSSESSIVE.sub("", raw.strip(_EDGE)).strip(_EDGE)  # "Samantha's" names Samantha
        starts_sentence, first = first, bool(_SENTENCE_END.search(raw))
        if not word or starts_sentence or not _TOKEN.search(word):
            continue
        capital = any(c.isupper() for c in word)
        mixed = any(c.isalpha() for c in word) and any(c.isdigit() for c in word)
        lower = word.lower()
        if not (capital or mixed) or word in _NOT_NAMES or {lower, re.sub(r"('s|s)$", "", lower)} & _CALENDAR:
            continue
        if _ORDINAL.match(word) or ("-" in word and word.rsplit("-", 1)[-1].lower() in _CALENDAR):
            continue
        names.setdefault(lower, word)
    return list(names.values())


def unknown_names(
    conn: sqlite3.Connection, question: str, *, project_ids: Sequence[int] | None = None
) -> list[str]:
    """The names in `question` that no stored chunk (of `project_ids`, when given) mentions, at most
    MAX_NAMES of them. Empty when the question names nothing, or everything it names is there."""
    missing = []
    for name in question_names(question):
        if not _mentioned(conn, name, project_ids):
            missing.append(name)
            if len(missing) == MAX_NAMES:
                break
    return missing


def empty_day(
    conn: sqlite3.Connection, scope: Scope, *, project_ids: Sequence[int] | None = None
) -> str | None:
    """The day a query asks about (`scope`, as `lmm_mcp.query.read_query` read it) when no session (of
    `project_ids`) was active within `DAY_SLACK_S` of it, else None. Only a single day counts: a week or a
    month read from "since February" may not be the window meant, a named day is; the slack covers a
    server whose zone is not its user's (one kept on UTC is within 14 hours of any user)."""
    if scope.since is None or scope.until is None or not _DAY.match(scope.period or ""):
        return None
    if any_chunk_between(conn, scope.since - DAY_SLACK_S, scope.until + DAY_SLACK_S, project_ids):
        return None
    return scope.period


def _mentioned(conn: sqlite3.Connection, name: str, project_ids: Sequence[int] | None) -> bool:
    tokens = [t.lower() for t in _TOKEN.findall(name)]
    if not tokens:
        return True
    *head, last = tokens
    shortest = max(MIN_STEM, math.ceil(MIN_SHARE * len(last)))
    # The last token as a prefix of a stored word, then the stored word as a prefix of it, longest first.
    lasts = [f'"{last}"*'] + [f'"{last[:n]}"' for n in range(len(last) - 1, shortest - 1, -1)]
    for end in lasts:
        match = " + ".join([*(f'"{t}"' for t in head), end])  # FTS5: `+` joins a phrase
        if _any_chunk(conn, match, project_ids):
            return True
    return False


def _any_chunk(conn: sqlite3.Connection, match: str, project_ids: Sequence[int] | None) -> bool:
    try:
        return any_chunk_matches(conn, match, project_ids)
    except sqlite3.OperationalError:  # a token FTS5 cannot parse: treat the name as mentioned (never abstain)
        return True
