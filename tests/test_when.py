"""Relative time anchored to the day it was said (transcripts.when)."""

from __future__ import annotations

import pytest

from transcripts.when import anchored, said_on, spelled

SAID = "2026-03-11T09:30:00.000Z"  # a Wednesday


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We shipped the hotfix yesterday.", "We shipped the hotfix yesterday (10 March 2026)."),
        ("The demo is tomorrow", "The demo is tomorrow (12 March 2026)"),
        ("I broke staging last night.", "I broke staging last night (10 March 2026)."),
        ("Today we pin numpy.", "Today (11 March 2026) we pin numpy."),
        ("Merged it this morning", "Merged it this morning (11 March 2026)"),
        ("the day before yesterday it failed", "the day before yesterday (9 March 2026) it failed"),
        ("Released last Friday.", "Released last Friday (6 March 2026)."),
        ("Released last Wednesday.", "Released last Wednesday (4 March 2026)."),
        ("Review next Monday.", "Review next Monday (16 March 2026)."),
        ("We moved to Postgres last month.", "We moved to Postgres last month (February 2026)."),
        ("We moved to Postgres last year.", "We moved to Postgres last year (2025)."),
        ("The audit is next month", "The audit is next month (April 2026)"),
        ("Started it this year", "Started it this year (2026)"),
        ("I ran a marathon last week", "I ran a marathon last week (the week before 11 March 2026)"),
        ("Camping next weekend!", "Camping next weekend (the weekend after 11 March 2026)!"),
        ("I quit 3 days ago.", "I quit 3 days ago (8 March 2026)."),
        ("I moved here two years ago.", "I moved here two years ago (2024)."),
        ("It broke a month ago", "It broke a month ago (February 2026)"),
        ("She left 2 weeks ago", "She left 2 weeks ago (the week of 25 February 2026)"),
        ("We went over yesterday's outage.", "We went over yesterday's (10 March 2026) outage."),
        ("today’s plan", "today’s (11 March 2026) plan"),
    ],
)
def test_relative_time_is_followed_by_what_it_meant(text: str, expected: str) -> None:
    assert anchored(text, SAID) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Call `datetime.today()` for the date.",  # code, not time
        "We fixed it recently.",  # no one reading
        "See you on Friday.",  # past or future: left alone
        "It broke yesterday (10 March 2026).",  # anchored already
        "The yesterday_count column",  # part of an identifier
    ],
)
def test_what_has_no_single_reading_is_left_alone(text: str) -> None:
    assert anchored(text, SAID) == text


def test_months_and_years_roll_over() -> None:
    assert anchored("last month", "2026-01-05T00:00:00Z") == "last month (December 2025)"
    assert anchored("next month", "2025-12-20T00:00:00Z") == "next month (January 2026)"
    assert anchored("14 months ago", "2026-01-05T00:00:00Z") == "14 months ago (November 2024)"


def test_without_a_timestamp_nothing_changes() -> None:
    assert anchored("done yesterday", None) == "done yesterday"
    assert anchored("done yesterday", "not a time") == "done yesterday"
    assert said_on("2023-05-08T13:56:00Z") is not None
    assert spelled(said_on("2023-05-08T13:56:00Z")) == "8 May 2023"


def test_anchoring_twice_changes_nothing_more() -> None:
    once = anchored("Shipped yesterday and again last Friday, after last week's outage.", SAID)
    assert anchored(once, SAID) == once
