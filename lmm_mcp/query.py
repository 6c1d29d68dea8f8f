"""What a query says besides its words: a date or period, "now", a project by name; and search that uses it.

    scope = read_query(conn, "what did we do on January 25 in tasklane?")
    scope.since, scope.until, scope.project, scope.text   # that day, the project, "what did we do"
    hits = find(retriever, conn, "which database do we use now?", k=8, project="/home/me/shop")

- **A date or period** ("on January 25", "2026-01-25", "yesterday", "last week", "in March", "early
  February", "3 days ago", "the last week of January", "between mid-January and early February") becomes
  a time window, in days of the user's own clock (this machine's zone: transcripts are stamped in UTC, but
  "January 25" is the user's). Relative words count back from the newest session in the
  store (the memory's own "now": a history imported later still reads right). `find` puts the hits inside the
  window first and fills up with the rest, so a misread date never empties an answer; a window asked about
  with no subject ("what did I do on January 16?") opens with its sessions' summaries.
- **"now", "current", "these days", "when did we switch"** rank by relevance and recency together and put
  memories a later one superseded after the ones in force (the change is the newest memory of it);
  **"before", "originally", "used to"** put them first. Either way both stay, with their dates. "...and did it
  change?" names no subject: its words leave the search text, as a window's do.
- **A project named in the query** ("in tasklane-api", "the billing service's ...") scopes the search to it,
  and its name leaves the query: a project's name is in every path of it and would only blur BM25.

`lmm-mcp search` and `recall_memory` both search through `find`.
"""

from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lmm_mcp import queries
from lmm_mcp.retrieval import Hit, Retriever, dedupe_hits, parse_since
from transcripts.conversation import content_words
from transcripts.when import NUMBERS, WEEKDAYS, weekday_before

LATEST_SESSIONS = 2  # summaries put first for "where did we stop"

MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(?P<year>20\d\d))?"
_PART = r"(?P<part>early|mid|late|the\s+(?:start|beginning|middle|end)\s+of)"
_MONTH_PART = rf"(?:{_PART}[\s-]+)?{_MONTH}{_YEAR}"  # "mid-January", "the end of March 2026"
# The dates a range ("between mid-January and early February", "from Jan 20 to Feb 2") joins.
_POINTS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"(?P<year>20\d\d)-(?P<month>[01]\d)-(?P<day>[0-3]\d)")),
    ("month_day", re.compile(rf"{_MONTH}\s+{_DAY}{_YEAR}", re.I)),
    ("day_month", re.compile(rf"(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}{_YEAR}", re.I)),
    ("month", re.compile(_MONTH_PART, re.I)),
]
_BARE_POINT = "|".join(re.sub(r"\(\?P<\w+>", "(?:", p.pattern) for _, p in _POINTS)
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("range", re.compile(rf"\b(?:between|from)\s+(?P<a>{_BARE_POINT})\s+(?:and|to|until|till|through)\s+(?P<b>{_BARE_POINT})\b", re.I)),
    ("iso", re.compile(r"\b(?:on\s+)?(?P<year>20\d\d)-(?P<month>[01]\d)-(?P<day>[0-3]\d)\b")),
    ("week_of", re.compile(rf"\b(?:in\s+|during\s+)?the\s+week\s+of\s+(?:the\s+)?{_MONTH}\s+{_DAY}\b{_YEAR}", re.I)),
    ("nth_of", re.compile(rf"\b(?:in\s+|during\s+|over\s+)?the\s+(?P<nth>first|second|third|fourth|last|final)\s+(?P<unit>week|half)\s+of\s+{_MONTH}{_YEAR}\b", re.I)),
    ("month_day", re.compile(rf"\b(?:on\s+)?(?:the\s+)?{_MONTH}\s+{_DAY}\b{_YEAR}", re.I)),
    ("day_month", re.compile(rf"\b(?:on\s+)?(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}{_YEAR}\b", re.I)),
    ("relative_day", re.compile(r"\b(?P<word>today|yesterday|the day before yesterday)\b", re.I)),
    ("ago", re.compile(r"\b(?P<n>\d+|a|one|two|three|four|five|six|seven)\s+(?P<unit>days?|weeks?|months?)\s+ago\b", re.I)),
    ("week", re.compile(r"\b(?P<which>this|last|past|previous)\s+week\b", re.I)),
    ("month_rel", re.compile(r"\b(?P<which>this|last|past|previous)\s+month\b", re.I)),
    ("weekday", re.compile(r"\b(?:on\s+|last\s+)?(?P<weekday>" + "|".join(WEEKDAYS) + r")\b", re.I)),
    # a bare month name needs a preposition or a part: "may" and "mar" are words too
    ("month", re.compile(rf"\b(?:(?:in|during|over|since|from|throughout|around|by|until|at)\s+)?{_PART}[\s-]+{_MONTH}{_YEAR}\b", re.I)),
    ("month", re.compile(rf"\b(?:in|during|over|since|from|throughout)\s+{_MONTH}{_YEAR}\b", re.I)),
]  # fmt: skip
_NTH = {"first": 0, "second": 1, "third": 2, "fourth": 3}
# Asks where work stands, not about a subject: answered from the newest sessions' summaries.
_LATEST = re.compile(
    r"\b(?:where (?:did|do|were) (?:we|i) (?:stop|leave off|get to|end up)|where we (?:left off|stopped)|"
    r"(?:last|previous|latest|most recent) (?:session|time)|"
    r"pick (?:it |this |things )(?:back )?up|pick (?:back up|up where|up again)|"  # "pick up a hobby" is no resuming
    r"what (?:were|was) (?:we|i) (?:doing|working on)|what(?:'s| is| was) (?:still )?(?:open|pending|left)|"
    r"open (?:tasks|items|threads)|next steps?|left to do|(?:still|remains?) to be done|todo list|"
    r"what(?:'s| is| comes) next|what now|where (?:do|does) (?:it|this|that|things) stand|where are we)\b",
    re.I,
)
# Asks what held before a change: what a later memory superseded comes first.
_PAST = re.compile(
    r"\b(?:before|previously|used to|originally|at first|initially|in the beginning|formerly|prior to|"
    r"(?:old|previous|original|earlier) (?:one|version|choice|setup|value)|switch(?:ed)? from|moved? from)\b",
    re.I,
)
# "...and did it change?": asks about a change of what the rest names. The words are the question's frame, not
# its subject, and leave the search text as a window's words do ("change" would find any memory indexed with
# "schema changes" before the one that records the change).
_CHANGE_FRAME = re.compile(
    r"[,;]?\s*\b(?:and |or )?(?:did|has|have) (?:it|that|this|anything|something)(?: ever)? "
    r"(?:change|switch|move|upgrade)(?:d|ed)?(?: since| over time| at all)?\b",
    re.I,
)
_CURRENT = re.compile(
    r"\b(?:now|nowadays|currently|current|these days|at the moment|at present|today|latest|anymore|any more|"
    r"(?<!\bwas )(?<!\bwere )(?<!\bhad )still|"  # "was still missing" is about then
    r"(?:when|why) did (?:we|you|i|it|that|they) (?:change|switch|move|migrate|replace|drop|upgrade|bump))\b",
    re.I,
)


@dataclass(frozen=True)
class Scope:
    text: str  # the query without the words that set the window and the project
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None
    period: str | None = None  # the window as read, for a person: "2026-01-25", "2026-03"
    project: str | None = None  # a stored project's path that the query names
    current: bool = False  # asks what holds now
    latest: bool = False  # asks where work stands: the newest sessions first
    past: bool = False  # asks what held before a change


def read_query(
    conn: sqlite3.Connection, query: str, *, now: datetime | None = None, zone: tzinfo | None = None
) -> Scope:
    """The time window, project and "now" a query asks about (see the module docstring); days are `zone`'s
    (default: `local_zone()`)."""
    ref = now
    text, since, until, period = query, None, None, None
    for kind, pattern in _PATTERNS:
        m = pattern.search(text)
        if m is None:
            continue
        ref = ref or _newest(conn) or datetime.now(UTC)  # read only when the query names a time
        zone = zone or local_zone()
        window = _window(kind, m, ref, zone)
        if window is None:
            continue
        start, end, period = window
        since, until = start.timestamp(), end.timestamp()
        text = (text[: m.start()] + " " + text[m.end() :]).strip()
        break
    framed = _CHANGE_FRAME.sub("", text)
    text = framed if re.search(r"\w", framed) else text  # nothing but the frame: its words are the search
    project, text = _named_project(conn, text)
    text = " ".join(text.split()) or query
    return Scope(
        text,
        since,
        until,
        period,
        project,
        current=bool(_CURRENT.search(query)),
        latest=bool(_LATEST.search(query)),
        past=bool(_PAST.search(query)),
    )


def find(
    retriever: Retriever,
    conn: sqlite3.Connection,
    query: str,
    *,
    k: int,
    project: str | None = None,
    since: str | float | None = None,
    scope: Scope | None = None,
) -> list[Hit]:
    """Search that reads the query first: its window's hits first, its project, what holds now before what
    was superseded. `project` is the caller's scope; a project the query names takes its place."""
    scope = scope or read_query(conn, query)
    where = scope.project or project
    floor = parse_since(since)
    hits: list[Hit] = []
    if scope.since is not None:
        lo = max(scope.since, floor) if floor is not None else scope.since
        if recap(scope):  # "what did we do on January 16?": that day's summaries first
            hits += retriever.recent(k, project=where, since=lo, until=scope.until)
        hits += retriever.retrieve(scope.text, k=k, project=where, since=lo, until=scope.until)
        if len(hits) < k:  # the words found little in the window ("what did we do"): the window itself
            hits += retriever.recent(k - len(hits), project=where, since=lo, until=scope.until)
    elif scope.latest and not _has_subject(scope.text):  # "where did we stop?": the newest sessions
        hits += retriever.recent(min(k, LATEST_SESSIONS), project=where, since=floor)
    newest_first = scope.current or scope.latest  # "now", or "where did we leave <subject>"
    # Reordering looks a little deeper, so what it moves up can be among what it sees.
    depth = 2 * k if scope.past or newest_first else k
    found = dedupe_hits(retriever.retrieve(scope.text, k=depth, project=where, since=floor))
    if newest_first and not scope.past:
        found = _by_recency(found)
    hits = dedupe_hits(hits + found)
    if scope.past:  # what a change replaced first, with what replaced it right after
        hits = [h for h in hits if h.superseded] + [h for h in hits if not h.superseded]
    elif scope.current:  # what holds now first; a superseded memory still answers "what did we use before"
        hits = [h for h in hits if not h.superseded] + [h for h in hits if h.superseded]
    return _cite_items(conn, hits[:k], scope.text)


def _cite_items(conn: sqlite3.Connection, hits: list[Hit], text: str) -> list[Hit]:
    """A profile hit names the session of the item the query asks about ("where does it deploy?": where the
    deploy target was said), not where the project was first described (`transcripts.profile`)."""
    keys = [h.memory_key for h in hits if h.memory_key and h.memory_key.startswith("profile:")]
    if not keys:
        return hits
    attrs, asked = queries.memory_attrs(conn, keys), content_words(text)
    out = []
    for h in hits:
        lines = attrs.get(h.memory_key or "", {}).get("item_sources", "")
        items = [line.split("\t", 3) for line in lines.splitlines() if line.count("\t") >= 3]
        best = max(items, key=lambda item: len(asked & content_words(item[3])), default=None)
        if best and asked & content_words(best[3]):
            h = replace(h, session_id=best[0], uuid=best[1], timestamp=best[2] or h.timestamp)
        out.append(h)
    return out


def _by_recency(hits: list[Hit]) -> list[Hit]:
    """Relevance, then recency, as equal halves: both scaled to [0, 1] over these hits."""
    if len(hits) < 2:
        return hits
    scores = [h.score for h in hits]
    times = [_epoch(h.timestamp) for h in hits]
    lo, hi, first, last = min(scores), max(scores), min(times), max(times)
    spread, span = (hi - lo) or 1.0, (last - first) or 1.0
    rank = {id(h): (h.score - lo) / spread + (t - first) / span for h, t in zip(hits, times, strict=True)}
    return sorted(hits, key=lambda h: -rank[id(h)])


def recap(scope: Scope) -> bool:
    """Whether the query asks what happened in a period, or where work stands, naming no subject ("what did
    we do on January 16?", "where did we stop?"): its sessions' summaries answer it as they are."""
    return (scope.since is not None or scope.latest) and not _has_subject(scope.text)


def _has_subject(text: str) -> bool:
    """Words left beyond the question's frame: "where did we leave the flaky e2e test" has a subject."""
    left = _LATEST.sub(" ", text)
    words = [w for w in re.findall(r"[a-z0-9][\w.-]+", left.lower()) if w not in _FRAME_WORDS]
    return len(words) >= 2


_FRAME_WORDS = frozenset(
    [
        "what",
        "whats",
        "where",
        "when",
        "which",
        "who",
        "how",
        "did",
        "do",
        "does",
        "we",
        "i",
        "you",
        "us",
        "our",
        "my",
        "the",
        "a",
        "an",
        "on",
        "in",
        "of",
        "this",
        "that",
        "it",
        "is",
        "are",
        "was",
        "were",
        "to",
        "for",
        "with",
        "about",
        "so",
        "far",
        "now",
        "here",
        "there",
        "project",
        "repo",
        "session",
        "sessions",
        "work",
        "working",
        "things",
        "thing",
        "stuff",
        "left",
        "leave",
        "stop",
        "stopped",
        "status",
        "state",
        "up",
    ]
)


def _epoch(timestamp: str | None) -> float:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() if timestamp else 0.0
    except ValueError:
        return 0.0


def _newest(conn: sqlite3.Connection) -> datetime | None:
    newest = queries.newest_activity(conn)
    try:
        return datetime.fromisoformat(newest.replace("Z", "+00:00")) if newest else None
    except ValueError:
        return None


def local_zone() -> tzinfo:
    """The zone a person means by "January 25" or "yesterday": this machine's, as the server runs beside its
    user. By name where the system names it (TZ, /etc/localtime), so that a day across a daylight-saving
    change stays whole; else the offset it has now."""
    name = os.environ.get("TZ", "").removeprefix(":")
    if not name:
        link = os.path.realpath("/etc/localtime")
        name = link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else ""
    if name:
        try:
            return ZoneInfo(name)
        except (ValueError, ZoneInfoNotFoundError):  # a POSIX rule ("JST-9"), a path, no tz database
            pass
    return datetime.now().astimezone().tzinfo or UTC


def _window(
    kind: str, m: re.Match[str], ref: datetime, zone: tzinfo
) -> tuple[datetime, datetime, str] | None:
    """[start, end) of what the match names, as `zone`'s days, and a label."""
    g = m.groupdict()
    today = ref.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "range":
        first, last = _point(g["a"], ref, zone), _point(g["b"], ref, zone)
        if first is None or last is None:
            return None
        start, end = first[0], last[1]
        if start >= end:  # "from December 20 to January 5" read in January: the start is last year's
            start = start.replace(year=start.year - 1)
        return start, end, f"{start.date().isoformat()} to {(end - timedelta(days=1)).date().isoformat()}"
    if kind == "nth_of":
        month = MONTHS[g["month"].lower().rstrip(".")]
        first = datetime(
            int(g["year"]) if g.get("year") else _year_of(month, 1, today), month, 1, tzinfo=zone
        )
        end = _next_month(first)
        size = 7 if g["unit"].lower() == "week" else (end - first).days // 2
        nth = g["nth"].lower()
        start = (
            end - timedelta(days=size)
            if nth in ("last", "final")
            else first + timedelta(days=size * _NTH[nth])
        )
        if start >= end:  # "the third half of"
            return None
        end = min(end, start + timedelta(days=size)) if nth in _NTH else end
        return start, end, f"{start.date().isoformat()} ({nth} {g['unit'].lower()})"
    try:
        if kind == "week_of":
            month, day = MONTHS[g["month"].lower().rstrip(".")], int(g["day"])
            year = int(g["year"]) if g.get("year") else _year_of(month, day, today)
            start = datetime(year, month, day, tzinfo=zone)
            start -= timedelta(days=start.weekday())
            return start, start + timedelta(days=7), f"week of {start.date().isoformat()}"
        if kind in ("iso", "month_day", "day_month"):
            month = int(g["month"]) if kind == "iso" else MONTHS[g["month"].lower().rstrip(".")]
            day = int(g["day"])
            year = int(g["year"]) if g.get("year") else _year_of(month, day, today)
            start = datetime(year, month, day, tzinfo=zone)
            return start, start + timedelta(days=1), start.date().isoformat()
    except ValueError:
        return None  # "February 30": not a date
    if kind == "relative_day":
        back = {"today": 0, "yesterday": 1, "the day before yesterday": 2}[g["word"].lower()]
        start = today - timedelta(days=back)
        return start, start + timedelta(days=1), start.date().isoformat()
    if kind == "ago":
        n = NUMBERS.get(g["n"].lower()) or int(g["n"])
        unit = g["unit"].lower().rstrip("s")
        days = n * {"day": 1, "week": 7, "month": 30}[unit]
        spread = {"day": 1, "week": 3, "month": 10}[unit]  # "2 weeks ago" is roughly, not exactly
        center = today - timedelta(days=days)
        return center - timedelta(days=spread), center + timedelta(days=spread + 1), center.date().isoformat()
    if kind == "week":
        monday = today - timedelta(days=today.weekday())
        start = monday if g["which"].lower() == "this" else monday - timedelta(days=7)
        return start, start + timedelta(days=7), f"week of {start.date().isoformat()}"
    if kind == "month_rel":
        first = today.replace(day=1)
        if g["which"].lower() != "this":
            first = (first - timedelta(days=1)).replace(day=1)
        return first, _next_month(first), first.strftime("%Y-%m")
    if kind == "weekday":
        start = weekday_before(today, g["weekday"])
        return start, start + timedelta(days=1), start.date().isoformat()
    if kind == "month":
        month = MONTHS[g["month"].lower().rstrip(".")]
        year = int(g["year"]) if g.get("year") else _year_of(month, 1, today)
        first = datetime(year, month, 1, tzinfo=zone)
        end = _next_month(first)
        part = (g.get("part") or "").lower()
        if part.startswith(("early", "the start", "the beginning")):
            end = first + timedelta(days=11)
        elif part.startswith(("mid", "the middle")):
            first, end = first + timedelta(days=9), first + timedelta(days=21)
        elif part.startswith(("late", "the end")):
            first = first + timedelta(days=19)
        return first, end, first.strftime("%Y-%m") + (f" ({part})" if part else "")
    return None


def _point(text: str, ref: datetime, zone: tzinfo) -> tuple[datetime, datetime] | None:
    """The window of one end of a range: a day, or a month or part of one."""
    for kind, pattern in _POINTS:
        m = pattern.fullmatch(text.strip())
        if m:
            window = _window(kind, m, ref, zone)
            return (window[0], window[1]) if window else None
    return None


def _year_of(month: int, day: int, today: datetime) -> int:
    """The year of the latest such date that is not after the reference day."""
    year = today.year
    try:
        candidate = datetime(year, month, min(day, 28), tzinfo=today.tzinfo)
    except ValueError:
        return year
    return year if candidate <= today else year - 1


def _next_month(first: datetime) -> datetime:
    return (first + timedelta(days=32)).replace(day=1)


def _named_project(conn: sqlite3.Connection, text: str) -> tuple[str | None, str]:
    """A stored project the text names (its folder name, or a distinctive part of it), and the text without it."""
    rows = queries.projects(conn)
    best: tuple[int, str, re.Match[str]] | None = None
    for path, name in rows:
        for form in _name_forms(name, [n for _, n in rows]):
            m = re.search(rf"(?<![\w-]){form}(?![\w-])(?:'s)?", text, re.I)
            if m and (best is None or len(m.group(0)) > best[0]):
                best = (len(m.group(0)), path, m)
    if best is None:
        return None, text
    _, path, m = best
    before = re.sub(r"\b(?:in|for|on|of|about|the|our|my)\s*$", "", text[: m.start()], flags=re.I)
    return path, f"{before} {text[m.end() :]}"


def _name_forms(name: str, all_names: list[str]) -> list[str]:
    """Ways a query writes a project's name: "tasklane-api", "tasklane api", and "tasklane" when no other
    project starts with it. Short or common-word names are too easy to hit by accident and are left out."""
    low = name.lower()
    parts = [p for p in re.split(r"[-_. ]+", low) if p]
    forms = []
    if len(low) >= 4:
        forms.append(re.escape(low))
    if len(parts) > 1:
        forms.append(r"[-_ ]".join(re.escape(p) for p in parts))
        head = parts[0]
        others = [n.lower() for n in all_names if n.lower() != low]
        if len(head) >= 5 and not any(re.split(r"[-_. ]+", o)[0] == head for o in others):
            forms.append(re.escape(head))
    return forms
