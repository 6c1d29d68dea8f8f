"""Reading a query (lmm_mcp.query): dates and periods, "now", "where did we stop", a project by name; and
search and recall that use it, on the bundled sample sessions (three projects, February 2026).
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from lmm_mcp.app import App
from lmm_mcp.config import Config
from lmm_mcp.query import find, local_zone, read_query
from lmm_mcp.samples import samples_path

API, CLI = "/home/dev/code/tasklane-api", "/home/dev/code/logsift"
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("query")
    shutil.copytree(samples_path(), root / "projects")
    with App.open(Config.load(root / "home", root / "projects")) as app:
        app.ingest(embed=False)
        yield app


def day(scope) -> tuple[str, str]:
    as_day = lambda ts: datetime.fromtimestamp(ts, UTC).date().isoformat()  # noqa: E731
    return as_day(scope.since), as_day(scope.until - 1)


@pytest.mark.parametrize(
    ("query", "first", "last", "left"),
    [
        ("what did we do on January 25?", "2026-01-25", "2026-01-25", "what did we do ?"),
        ("what happened on the 3rd of February", "2026-02-03", "2026-02-03", "what happened"),
        ("changes on 2025-12-30", "2025-12-30", "2025-12-30", "changes"),
        ("what did we fix yesterday", "2026-03-03", "2026-03-03", "what did we fix"),
        ("what did we ship last week", "2026-02-23", "2026-03-01", "what did we ship"),
        ("anything from this week", "2026-03-02", "2026-03-08", "anything from"),
        ("decisions last month", "2026-02-01", "2026-02-28", "decisions"),
        ("what did we try in late February", "2026-02-20", "2026-02-28", "what did we try"),
        ("what broke in early December", "2025-12-01", "2025-12-11", "what broke"),
        ("notes from last Monday", "2026-03-02", "2026-03-02", "notes from"),
        ("the bug from two weeks ago", "2026-02-15", "2026-02-21", "the bug from"),
        (
            "what did we work on in the last week of January?",
            "2026-01-25",
            "2026-01-31",
            "what did we work on ?",
        ),
        ("notes from the first week of February", "2026-02-01", "2026-02-07", "notes from"),
        ("upgrades between mid-January and early February", "2026-01-10", "2026-02-11", "upgrades"),
        ("fixes from Jan 20 to Feb 2, 2026", "2026-01-20", "2026-02-02", "fixes"),
        ("what changed over the second half of February", "2026-02-15", "2026-02-28", "what changed"),
        ("anything around mid-February", "2026-02-10", "2026-02-21", "anything"),
    ],
)
def test_dates_and_periods_become_a_window(app, query, first, last, left):
    scope = read_query(app.conn, query, now=NOW)
    assert day(scope) == (first, last) and scope.text == left


def test_no_date_no_window_and_impossible_dates_are_words(app):
    assert read_query(app.conn, "how do we run the tests", now=NOW).since is None
    assert read_query(app.conn, "what did we do on February 30", now=NOW).since is None
    # relative words count back from the newest session in the store when no `now` is given
    assert day(read_query(app.conn, "what did we do yesterday")) == ("2026-02-27", "2026-02-27")


def test_a_day_is_the_users_own_in_their_zone(app, monkeypatch):
    # transcripts are stamped in UTC; "January 25" and "yesterday" are days of the user's clock
    at = lambda *a: datetime(*a, tzinfo=UTC).timestamp()  # noqa: E731
    new_york_winter = timezone(timedelta(hours=-5))
    scope = read_query(app.conn, "what did we do on January 25?", now=NOW, zone=new_york_winter)
    assert (scope.since, scope.until, scope.period) == (at(2026, 1, 25, 5), at(2026, 1, 26, 5), "2026-01-25")
    # with no zone given, this machine's: a POSIX rule in TZ (no tz database needed) for Tokyo, UTC+9
    monkeypatch.setenv("TZ", "JST-9")
    time.tzset()
    try:
        assert local_zone().utcoffset(NOW) == timedelta(hours=9)
        # NOW is 00:00 on March 5 in Tokyo, so "yesterday" is Tokyo's March 4, from 15:00 UTC on March 3
        scope = read_query(app.conn, "what did we fix yesterday", now=NOW)
        assert (scope.since, scope.until, scope.period) == (
            at(2026, 3, 3, 15),
            at(2026, 3, 4, 15),
            "2026-03-04",
        )
    finally:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()


def test_a_named_zone_keeps_days_whole_across_daylight_saving(app, monkeypatch):
    try:
        ZoneInfo("America/New_York")
    except ZoneInfoNotFoundError:
        pytest.skip("no tz database on this machine")
    monkeypatch.setenv("TZ", "America/New_York")
    at = lambda *a: datetime(*a, tzinfo=UTC).timestamp()  # noqa: E731
    summer = read_query(app.conn, "changes on 2025-07-04", now=NOW)
    assert (summer.since, summer.until) == (at(2025, 7, 4, 4), at(2025, 7, 5, 4))  # EDT, UTC-4
    winter = read_query(app.conn, "changes on 2026-01-25", now=NOW)
    assert (winter.since, winter.until) == (at(2026, 1, 25, 5), at(2026, 1, 26, 5))  # EST, UTC-5
    # the night the clocks go forward is a day of 23 hours
    spring = read_query(app.conn, "changes on 2026-03-08", now=NOW)
    assert spring.until - spring.since == 23 * 3600


def test_a_named_project_scopes_and_leaves_the_query(app):
    scope = read_query(app.conn, "which database does tasklane-api use now?")
    assert scope.project == API and scope.current and "tasklane" not in scope.text
    assert read_query(app.conn, "in the tasklane api, how do tests run").project == API
    assert read_query(app.conn, "tasklane: how do tests run").project == API  # a distinctive first part
    assert read_query(app.conn, "how do logs get filtered").project is None  # no name, no guess
    assert read_query(app.conn, "where did we stop?").latest


def test_window_hits_come_first_even_when_the_words_say_nothing(app):
    hits = find(app.retriever(), app.conn, "what did we do on February 24?", k=5)
    assert hits and all(h.timestamp.startswith("2026-02-24") for h in hits[:3])
    assert hits[0].text.startswith("Session of 2026-02-24 in tasklane-api")


def test_a_day_asked_without_a_subject_opens_with_that_days_sessions(app):
    """ "What did I do on February 21?" names no subject: the day's session summaries answer it, not what its
    few words ("do") happen to match that day; a subject still goes by its words."""
    hits = find(app.retriever(), app.conn, "what did I do on February 21?", k=5)
    assert hits[0].text.startswith("Session of 2026-02-21 in logsift")
    assert all(h.timestamp.startswith("2026-02-21") for h in hits[:3])
    subject = find(
        app.retriever(), app.conn, "how do we check formatting with cargo fmt on February 21?", k=5
    )
    assert "cargo fmt" in subject[0].text


def test_now_puts_what_holds_first_and_before_still_answers(app):
    now = find(app.retriever(), app.conn, "which database do we use now", k=6, project=API)
    current = [h for h in now if not h.superseded]
    assert current and now[: len(current)] == current  # everything in force before anything superseded
    assert any("PostgreSQL" in h.text for h in current[:2])
    before = find(app.retriever(), app.conn, "which database did we use before PostgreSQL", k=8, project=API)
    assert any(h.superseded and "SQLite" in h.text for h in before)


def test_where_did_we_stop_recalls_the_last_session(app):
    result = app.recaller().recall("where did we stop?", project=CLI, mode="retrieve", max_tokens=300)
    assert "Session of 2026-02-28: asked" in result.memory.splitlines()[1]
    dated = app.recaller().recall(
        "what did we do on February 21?", project=CLI, mode="retrieve", max_tokens=300
    )
    assert "Session of 2026-02-21: asked" in dated.memory


def test_search_from_the_shell_reads_the_date(app, tmp_path):
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmm_mcp",
            "search",
            "what did we do on February 24",
            "--home",
            str(app.cfg.home),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    import orjson

    hits = orjson.loads(out.stdout)["hits"]
    assert hits[0]["timestamp"].startswith("2026-02-24") and "superseded" in hits[0]


def test_week_of_a_date_and_whats_next(app):
    scope = read_query(app.conn, "which test did we postpone in the week of February 19?", now=NOW)
    assert day(scope) == ("2026-02-16", "2026-02-22") and scope.text == "which test did we postpone ?"
    assert read_query(app.conn, "what's next on this project?").latest


def test_now_prefers_the_newer_of_two_relevant_hits(app):
    """'these days' ranks by relevance and recency together: the change session's memory beats the
    older session where the old setup was described."""
    hits = find(app.retriever(), app.conn, "which database do we use these days", k=3, project=API)
    assert hits[0].timestamp >= "2026-02-24" and "PostgreSQL" in hits[0].text


def test_a_stack_fact_is_found_by_the_words_people_ask_with(app):
    """'hosting', 'caching', 'schema changes': the role's words are indexed beside the memory."""
    with_terms = app.conn.execute(
        "SELECT ctx FROM chunks WHERE kind = 'memory' AND text LIKE '%as its database%'"
    ).fetchall()
    assert with_terms and all("datastore" in ctx for (ctx,) in with_terms)
    hits = find(app.retriever(), app.conn, "what datastore backs the API", k=3, project=API)
    assert any("as its database" in h.text for h in hits)


def test_when_did_we_switch_finds_the_change_not_the_old_value(app):
    scope = read_query(app.conn, "when did we switch the database?")
    assert scope.current and not scope.past
    hits = find(app.retriever(), app.conn, "when did we switch the database?", k=3, project=API)
    assert not hits[0].superseded and hits[0].timestamp.startswith("2026-02-24")


def test_did_it_change_searches_its_subject_not_the_word_change(app):
    """ "Which database did we choose, and did it change?": "did it change" is the question's frame, and leaves
    the search words as a window's words do. The demo led with "runs database migrations with Alembic", whose
    indexed role words hold "changes"; now the decision that records the change leads, and what it replaced stays
    in the answer (the question asks about both)."""
    for asked, subject in [
        ("Which database did we choose, and did it change?", "Which database did we choose?"),
        ("Where is it hosted, and has that changed since?", "Where is it hosted?"),
        ("did anything change?", "did anything change?"),  # nothing else to search: the words stay
    ]:
        assert read_query(app.conn, asked).text == subject, asked
    assert read_query(app.conn, "what did the change do?").text == "what did the change do?"
    hits = find(
        app.retriever(), app.conn, "Which database did we choose, and did it change?", k=8, project=API
    )
    assert "PostgreSQL" in hits[0].text and "Alembic" not in hits[0].text
    assert any(h.superseded and "SQLite" in h.text for h in hits)


def test_still_in_the_past_tense_is_no_question_about_now(app):
    """ "Do we still use X?" asks what holds now; "what was still missing after that session?" asks about then,
    and ranking it newest first put a later session's mention first."""
    for now in ("do we still use SQLite?", "is the flag still there?", "Which database do we still run?"):
        assert read_query(app.conn, now).current, now
    for then in ("After the first session, what was still missing?", "which tests were still failing after it?",
                 "what had still to be done by then?"):  # fmt: skip
        assert not read_query(app.conn, then).current, then


def test_picking_work_back_up_is_where_work_stands_but_picking_up_a_hobby_is_not(app):
    for resume in (
        "Let's pick it back up",
        "pick up where we left off",
        "pick this up again",
        "pick things up",
    ):
        assert read_query(app.conn, resume).latest, resume
    for thing in (
        "Which hobby did Dave pick up in October?",
        "What would be a good hobby for Tim to pick up?",
    ):
        assert not read_query(app.conn, thing).latest, thing


def test_a_profile_hit_names_the_session_of_the_item_asked_about(app):
    """The tasklane-api profile was first described on Feb 2; its linter was set up on Feb 9. A search
    about the linter that finds the profile names the Feb 9 session, and the item's turn."""
    hits = find(app.retriever(), app.conn, "tasklane-api profile linter", k=10)
    (profile,) = [h for h in hits if (h.memory_key or "").startswith("profile:")]
    (first_described,) = app.conn.execute(
        "SELECT session_id FROM chunks WHERE session_key = ?", (f"memory:{profile.memory_key}",)
    ).fetchone()
    assert "linter Ruff" in profile.text
    assert profile.timestamp.startswith("2026-02-09") and profile.session_id != first_described
    said = app.conn.execute("SELECT text FROM chunks WHERE uuid = ? AND kind != 'memory'", (profile.uuid,))
    assert any("ruff" in text.lower() for (text,) in said)


def test_a_memory_ranks_above_raw_text_that_matches_as_well(app, monkeypatch):
    """The fused score of a stored memory carries MEMORY_PRIOR; other chunks' scores do not change."""
    from lmm_mcp import retrieval

    prior = retrieval.MEMORY_PRIOR
    with_prior = app.retriever().retrieve("ruff linter", k=10, project=API)
    monkeypatch.setattr(retrieval, "MEMORY_PRIOR", 0.0)
    monkeypatch.setattr(retrieval, "SUPERSEDED_PRIOR", 0.0)
    without = {h.chunk_id: h.score for h in app.retriever().retrieve("ruff linter", k=10, project=API)}
    assert with_prior[0].kind == "memory"
    for h in with_prior:
        if h.chunk_id in without:
            lift = h.score - without[h.chunk_id]
            expected = prior if h.kind == "memory" and not h.superseded else 0.0
            assert lift == pytest.approx(expected, abs=1e-6)
    assert prior > 0 and any(h.kind != "memory" for h in with_prior)


def test_a_superseded_memory_ranks_as_raw_text_below_what_replaced_it(app, monkeypatch):
    """The samples moved tasklane-api from SQLite to PostgreSQL: the old statement, still stored and marked
    superseded, carries SUPERSEDED_PRIOR instead of MEMORY_PRIOR, so the current one comes first."""
    from lmm_mcp import retrieval

    query = "which database does the API use"
    hits = app.retriever().retrieve(query, k=12, project=API)
    old = next(h for h in hits if h.superseded and "uses SQLite as its database" in h.text)
    new = next(h for h in hits if not h.superseded and "uses PostgreSQL as its database" in h.text)
    assert hits.index(new) < hits.index(old)
    lost = retrieval.MEMORY_PRIOR - retrieval.SUPERSEDED_PRIOR
    monkeypatch.setattr(retrieval, "SUPERSEDED_PRIOR", retrieval.MEMORY_PRIOR)
    alike = {h.chunk_id: h.score for h in app.retriever().retrieve(query, k=12, project=API)}
    assert lost > 0 and alike[old.chunk_id] - old.score == pytest.approx(lost, abs=1e-6)
    assert alike[new.chunk_id] == pytest.approx(new.score, abs=1e-6)
