"""Relative time in what was said, anchored to the day it was said.

    anchored("I went to the support group yesterday.", "2023-05-08T13:56:00Z")
    # "I went to the support group yesterday (7 May 2023)."

"Yesterday" in a line of 8 May means 7 May, but a memory is read weeks later, when "yesterday" means another
day or nothing: each relative expression a memory keeps is followed by the day, week, month or year it meant
when it was said, in words ("7 May 2023", as a sentence would write it; labels keep ISO days). Expressions
without one reading ("recently", "the other day", a bare "on Friday") are left as they are.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import TypeVar

D = TypeVar("D", bound=date)  # a datetime is a date too

# English names whatever the locale (calendar's follow it): transcripts here are read as English.
WEEKDAYS = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)  # date.weekday()'s order
_MONTHS = """January February March April May June July August September October November December""".split()  # noqa: SIM905
NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
_COUNT = r"\d{1,2}|" + "|".join(NUMBERS)
_DAY = "|".join(WEEKDAYS)
_RELATIVE = re.compile(
    rf"(?<![\w.\-/])(?:"
    rf"(?P<before>the day before yesterday)|(?P<after>the day after tomorrow)"
    rf"|(?P<yesterday>yesterday|last night)|(?P<today>today|tonight|this (?:morning|afternoon|evening))"
    rf"|(?P<tomorrow>tomorrow)"
    rf"|(?:last|this past) (?P<last_day>{_DAY})|next (?P<next_day>{_DAY})"
    rf"|(?P<unit_rel>last|this past|next) (?P<unit>week(?:end)?|month|year)"
    rf"|this (?P<this>week|month|year)"
    rf"|(?P<count>{_COUNT}) (?P<span>day|week|month|year)s? ago"
    rf")(?:['’]s(?!\w)|(?!['’]s\b))(?![\w\-/])(?! ?\()",  # "yesterday's outage": after the possessive
    re.IGNORECASE,
)


def spelled(day: date) -> str:
    """A day as a sentence writes it: "7 May 2023"."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def weekday_before(day: D, weekday: str) -> D:
    """The latest `weekday` ("friday") strictly before `day` (a date or a datetime): "last Friday"."""
    return day - timedelta(days=(day.weekday() - WEEKDAYS.index(weekday.lower())) % 7 or 7)


def said_on(timestamp: str | None) -> date | None:
    """The day of an ISO timestamp ("2023-05-08T13:56:00.000Z"); None without a readable one."""
    try:
        return datetime.fromisoformat((timestamp or "").replace("Z", "+00:00")).date()
    except ValueError:
        return None


def anchored(text: str, timestamp: str | None) -> str:
    """`text` with each relative time expression followed by what it meant on the day of `timestamp`, in
    parentheses; the text unchanged without a timestamp, or where the expression is anchored already."""
    day = said_on(timestamp)
    if day is None:
        return text
    return _RELATIVE.sub(lambda m: f"{m.group(0)} ({_meant(m, day)})", text)


def _meant(m: re.Match[str], day: date) -> str:
    g = {k: v.lower() for k, v in m.groupdict().items() if v}
    if "before" in g:
        return spelled(day - timedelta(days=2))
    if "after" in g:
        return spelled(day + timedelta(days=2))
    if "yesterday" in g:
        return spelled(day - timedelta(days=1))
    if "today" in g:
        return spelled(day)
    if "tomorrow" in g:
        return spelled(day + timedelta(days=1))
    if "last_day" in g:
        return spelled(weekday_before(day, g["last_day"]))
    if "next_day" in g:
        ahead = (WEEKDAYS.index(g["next_day"]) - day.weekday()) % 7 or 7
        return spelled(day + timedelta(days=ahead))
    if "unit" in g:
        step = 1 if g["unit_rel"] == "next" else -1
        if g["unit"] == "month":
            return _month(day, step)
        if g["unit"] == "year":
            return str(day.year + step)
        return f"the {g['unit']} {'after' if step > 0 else 'before'} {spelled(day)}"
    if "this" in g:
        if g["this"] == "week":
            return f"the week of {spelled(day)}"
        return _month(day, 0) if g["this"] == "month" else str(day.year)
    count = int(g["count"]) if g["count"].isdigit() else NUMBERS[g["count"]]
    span = g["span"]
    if span == "day":
        return spelled(day - timedelta(days=count))
    if span == "week":
        return f"the week of {spelled(day - timedelta(weeks=count))}"
    if span == "month":
        return _month(day, -count)
    return str(day.year - count)


def _month(day: date, step: int) -> str:
    index = day.year * 12 + day.month - 1 + step
    return f"{_MONTHS[index % 12]} {index // 12}"
