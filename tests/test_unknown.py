"""Recall abstains when a question names something no past session of its project mentions."""

from __future__ import annotations

import pytest

from lmm_mcp.app import App
from lmm_mcp.unknown import question_names, unknown_names


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("Which Sentry project do the errors go to?", ["Sentry"]),
        ("How do we do translations and i18n?", ["i18n"]),
        ("What's the p99 latency target for uploads?", ["p99"]),
        ("Is the S3 bucket on Fly.io or on GCP?", ["S3", "Fly.io", "GCP"]),
        ("Which PostgreSQL version, and which postgresql driver?", ["PostgreSQL"]),  # once, case aside
        # a sentence's first word is capitalised anyway
        ("The routes page broke. What fixed it? Maybe the cache", []),
        # calendar words are the time filter's business, not names
        ("What did we do on Sunday, January 25? And in mid-January, on the 9th? Mondays?", []),
        ("Which editor do I use?", []),
        ('Is it "deploy" AND (pipeline OR NEAR(deploy)) NOT redis?', []),  # search syntax, not names
        ("Did (Terraform) or [Pulumi] run?", ["Terraform", "Pulumi"]),
        ('"Deploy" fails. "Why" then?', []),  # a quoted first word still starts its sentence
        ("What did we do after Samantha's call and the Joneses' visit?", ["Samantha", "Joneses"]),
        ("how do we run the tests", []),
    ],
)
def test_question_names(question, names):
    assert question_names(question) == names


@pytest.fixture
def store(own_store):
    return own_store


def test_a_name_no_session_mentions_is_an_abstention_that_says_which(store):
    cfg, conn = store
    recaller = App(cfg, conn).recaller()
    r = recaller.recall("Which GraphQL library handles the coupon KeyError?", project="/home/dev/shop")
    assert r.memory == "No relevant memory: nothing in past sessions mentions GraphQL."
    assert r.sources == [] and r.mode_used == "retrieve"
    two = recaller.recall("Do we deploy with Terraform or Pulumi?", project="/home/dev/shop", mode="retrieve")
    assert two.memory.endswith("mentions Terraform or Pulumi.") and not two.sources
    # the same question without the unknown name is answered from the sessions
    known = recaller.recall("Which library handles the coupon KeyError?", project="/home/dev/shop")
    assert known.sources and known.memory.startswith("Recalled from past sessions")


def test_names_are_looked_up_in_the_projects_own_sessions(store):
    cfg, conn = store
    recaller = App(cfg, conn).recaller()
    # SQLAlchemy is in /srv/api's sessions only
    assert recaller.unknown("How are SQLAlchemy sessions scoped?", "/home/dev/shop") == ["SQLAlchemy"]
    assert recaller.unknown("How are SQLAlchemy sessions scoped?", "/srv/api") == []
    # a project memory has never seen (or none) searches every session
    assert recaller.unknown("How are SQLAlchemy sessions scoped?", "/brand/new") == []
    assert recaller.unknown("How are SQLAlchemy sessions scoped?") == []
    scoped = recaller.recall("How are SQLAlchemy sessions scoped?", project="/srv/api", mode="retrieve")
    assert scoped.sources and all(s.project in ("/srv/api", None) for s in scoped.sources)


def test_a_name_matches_longer_and_shorter_forms_of_a_stored_word(store):
    _, conn = store
    shop = [pid for (pid,) in conn.execute("SELECT id FROM projects WHERE path = '/home/dev/shop'")]
    # the stored word starts with the name, or the name with a stored word of most of its length
    assert unknown_names(conn, "Was it a KeyErr?", project_ids=shop) == []
    assert unknown_names(conn, "Two KeyErrors?", project_ids=shop) == []
    assert unknown_names(conn, "Any KeyErroring?", project_ids=shop) == []  # the index stems both sides
    assert unknown_names(conn, "A KeyErrorHandler?", project_ids=shop) == [
        "KeyErrorHandler"
    ]  # 8 of 15: too short
    assert unknown_names(conn, "Is Key-Error fine?", project_ids=shop) == ["Key-Error"]  # a phrase, not there


def test_abstaining_on_unknown_names_can_be_turned_off(store):
    cfg, conn = store
    r = (
        App(cfg, conn)
        .recaller()
        .recall(
            "Which GraphQL library handles the coupon KeyError?",
            project="/home/dev/shop",
            abstain_unknown=False,
        )
    )
    assert r.sources and any("coupon" in line.lower() for line in r.memory.splitlines()[1:])


def test_a_day_no_session_was_active_on_is_an_abstention(store):
    """The fixtures: /home/dev/shop worked on 2026-10-01 09:00 UTC, /srv/api on 2026-09-12 14:00 UTC."""
    cfg, conn = store
    recaller = App(cfg, conn).recaller()
    r = recaller.recall("What did we do on September 20, 2026?", project="/home/dev/shop", mode="retrieve")
    assert r.memory == "No relevant memory: no past session was active on 2026-09-20." and not r.sources
    worked = recaller.recall("What did we do on October 1, 2026?", project="/home/dev/shop", mode="retrieve")
    assert worked.sources and "coupon" in worked.memory.lower()
    # the project's own days: /srv/api's day is empty for the shop, not for the api
    assert recaller.nothing_on("what happened on September 12, 2026?", "/home/dev/shop")
    assert recaller.nothing_on("what happened on September 12, 2026?", "/srv/api") is None
    # within 14 hours of a session the day may be the user's own (their clock is not UTC)
    assert recaller.nothing_on("what happened on September 30, 2026?", "/home/dev/shop") is None
    assert recaller.nothing_on("what happened on September 29, 2026?", "/home/dev/shop")
    # only a single named day: a month or a week may be read wider than meant
    assert recaller.nothing_on("what did we do in August 2026?", "/home/dev/shop") is None
