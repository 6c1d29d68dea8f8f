"""Memory extraction: each category from hand-built turns, merging and supersession, the code and command
parsers, our own and the shared transcript fixtures, and a synthetic history end to end.

Run:  pytest tests/test_extraction.py -q
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from conftest import OWN_FIXTURES, SHARED_FIXTURES, needs_shared

from transcripts.conversation import keywords_of, prompt_drafts
from transcripts.extraction import (
    CAPS,
    CATEGORIES,
    Memory,
    extract,
    extract_session,
    iter_sessions,
    merge_memories,
    session_turns,
)
from transcripts.parse import ToolCall, ToolResult, Turn
from transcripts.source_code import command_kind, definitions, failure_line, manifest_facts

EXTRACTION_FIXTURES = Path(__file__).parent / "fixtures" / "extraction"
CWD = "/home/dev/shop"


class Conv:
    """Builds one session's turns: a parent chain, increasing timestamps, tool ids paired with results."""

    def __init__(self, session: str = "s1", cwd: str = CWD, day: int = 1) -> None:
        self.session, self.cwd, self.day = session, cwd, day
        self.turns: list[Turn] = []
        self.n = count(1)

    def _turn(self, role: str, kind: str, text: str = "", **kw: Any) -> Turn:
        i = next(self.n)
        turn = Turn(
            uuid=f"{self.session}-{i}",
            parent_uuid=self.turns[-1].uuid if self.turns else None,
            session_id=self.session,
            role=role,
            kind=kind,
            text=text,
            timestamp=f"2026-10-{self.day:02d}T10:{i // 60:02d}:{i % 60:02d}.000Z",
            cwd=self.cwd,
            **kw,
        )
        self.turns.append(turn)
        return turn

    def user(self, text: str, kind: str = "prompt", **kw: Any) -> Turn:
        return self._turn("user", kind, text, **kw)

    def say(self, text: str) -> Turn:
        return self._turn("assistant", "reply", text)

    def tool(
        self, name: str, inp: dict[str, Any], out: str = "", *, error: bool = False, text: str = ""
    ) -> Turn:
        """An assistant tool call and the user record carrying its result; returns the call's turn."""
        call_id = f"toolu_{self.session}_{len(self.turns)}"
        call = self._turn("assistant", "reply", text, tool_calls=[ToolCall(call_id, name, inp)])
        self._turn("user", "tool_result", tool_results=[ToolResult(call_id, out, error)])
        return call

    def bash(self, command: str, out: str, *, error: bool = False) -> Turn:
        return self.tool("Bash", {"command": command}, out, error=error)

    def edit(self, path: str, old: str, new: str) -> Turn:
        return self.tool("Edit", {"file_path": path, "old_string": old, "new_string": new}, "updated")

    def write(self, path: str, content: str) -> Turn:
        return self.tool(
            "Write", {"file_path": path, "content": content}, f"File created successfully at: {path}"
        )


def of(memories: list[Memory], category: str) -> list[Memory]:
    return [m for m in memories if m.category == category]


# ---------------------------------------------------------------------------------------------- preferences


def test_preferences_are_instructions_not_descriptions_or_questions():
    c = Conv()
    c.user(
        "We use pytest and always run it with -x. It always fails on CI though. Should we always pin versions?\n"
        "I don't know why. Please use uv, not pip. Never commit .env files in any project."
    )
    prefs = of(extract_session(c.turns), "preference")
    said = {m.attrs["said"]: m for m in prefs}
    assert set(said) == {
        "We use pytest and always run it with -x.",
        "Please use uv, not pip.",
        "Never commit .env files in any project.",
    }
    scoped = said["We use pytest and always run it with -x."]
    assert (
        scoped.project == CWD
        and scoped.text == "User preference (shop): We use pytest and always run it with -x."
    )
    assert "pytest" in scoped.keywords and scoped.salience >= 0.7  # "always" is explicit
    general = said["Never commit .env files in any project."]
    assert general.project is None and general.key.startswith("preference:global:")
    assert general.sources[0].project == CWD  # where it was said, even for a global preference


def test_a_relayed_conversation_gives_notes_of_what_was_said_not_preferences_or_decisions():
    """Prompts that relay a conversation between people ("Caroline: …") say "don't give up!" to each other: no
    standing rule for the agent. What was said stays, as a note."""
    c = Conv()
    for line in (
        "Caroline: Hey Mel! I went to a support group yesterday and it was so powerful.",
        "Melanie: That's great, Caroline! Keep going and don't give up!",
        "Caroline: Thanks! I chose the blue paint for the mural at Riverside Park because it calms me.",
        "Melanie: I always bring snacks to the park with the kids.",
        "Caroline: Yeah, I painted that lake sunrise last year!",
    ):
        c.user(line)
    memories = extract_session(c.turns)
    assert not of(memories, "preference") and not of(memories, "decision")
    notes = {m.text for m in of(memories, "project_fact")}
    assert "In shop: Melanie: Keep going and don't give up!" in notes
    assert "In shop: Melanie: I always bring snacks to the park with the kids." in notes
    # who said it opens every note of a line, not only one from its first sentence
    assert (
        "In shop: Caroline: I went to a support group yesterday (30 September 2026) and it was so powerful."
        in notes
    )
    assert (
        "In shop: Caroline: I painted that lake sunrise last year (2025)!" in notes
    )  # chat's "Yeah," is no part of it
    # its summary says who talked and about what, not the opening greeting; the people are no topic
    (summary,) = of(memories, "session")
    assert summary.text == "Session of 2026-10-01 in shop: Caroline and Melanie talked about Riverside Park."
    assert {"Caroline", "Melanie", "Riverside Park"} <= set(summary.keywords)
    # one labelled prompt among the user's own is not a conversation: the rule is a preference
    c = Conv()
    c.user("Note: always run the tests with -x in this repo.")
    c.user("Then fix the failing import in app.py.")
    assert [m.attrs["said"] for m in of(extract_session(c.turns), "preference")] == [
        "Note: always run the tests with -x in this repo."
    ]


def test_a_relayed_conversation_keeps_what_people_said_of_their_lives_in_any_verb_not_their_reactions():
    """Chat states its facts in every verb ("I'm working on", "helps me unwind", "got the chance"), not only
    the ones a project's notes are read by; reactions, greetings and wishes are no note."""
    c = Conv()
    for line in (
        "John: I'm actually working on a website for a local small business. It's my first paid project outside of class.",
        "Maria: Wow John, that looks amazing! Thanks for sharing.",
        "John: Playing video games or watching movies helps me unwind after work.",
        "Maria: Hey John, hope you're doing ok! Sorry to hear about the car.",
        "John: I got the chance to volunteer at the shelter downtown last Sunday.",
        "Maria: That's so cool! Sounds like a blast.",
    ):
        c.user(line)
    notes = {m.text for m in of(extract_session(c.turns), "project_fact")}
    assert notes == {
        "In shop: John: I'm actually working on a website for a local small business.",
        "In shop: John: It's my first paid project outside of class.",
        "In shop: John: Playing video games or watching movies helps me unwind after work.",
        "In shop: John: I got the chance to volunteer at the shelter downtown last Sunday (27 September 2026).",
    }


def test_relative_time_in_a_memory_keeps_the_day_it_meant():
    """A memory read weeks later says which day "yesterday" was: the day before the line was said."""
    c = Conv(day=14)
    c.user("Maria: The nightly export to S3 started failing yesterday after the boto3 upgrade.")
    c.user("Joe: The invoice renderer moved to WeasyPrint last month because wkhtmltopdf was dropped.")
    texts = [m.text for m in extract_session(c.turns)]
    assert sum("failing yesterday (13 October 2026) after" in t for t in texts) == 1, texts
    joe = "In shop: Joe: The invoice renderer moved to WeasyPrint last month (September 2026) because "
    assert any(t.startswith(joe) for t in texts), texts


def test_a_relayed_conversation_opening_with_a_bare_greeting_still_has_a_summary():
    c = Conv(day=3)
    for line in ("Jon: Hi!", "Gina: Hey Jon!", "Jon: I opened the studio in Lisbon.", "Gina: I love Lisbon."):
        c.user(line)
    (summary,) = of(extract_session(c.turns), "session")
    assert summary.text == "Session of 2026-10-03 in shop: Jon and Gina talked about Lisbon."
    assert [s.uuid for s in summary.sources] == ["s1-1", "s1-4"]


def test_no_memory_from_meta_reminders_summaries_or_subagent_prompts():
    c = Conv()
    c.user("Always use tabs. Never use spaces.", kind="meta")
    c.user(
        "<system-reminder>\nNever mention this reminder. Always use the todo list.\n</system-reminder>\nfix it"
    )
    c.user("This session is being continued. Summary: the user said always use tabs.", kind="compact_summary")
    c.user("Do not edit files. Always report file paths.", is_sidechain=True)  # written by the assistant
    c.user("Caveat: DO NOT respond to these messages or otherwise consider them.")
    assert extract_session(c.turns) == []


# ---------------------------------------------------------------------------------------------- decisions


def test_decision_takes_the_assistants_recommendation_for_that_and_a_topic():
    c = Conv()
    c.user("Which ORM should we use: SQLAlchemy or Tortoise?")  # a question decides nothing
    c.say("## Recommendation: SQLAlchemy\n\nIts migration story is simpler.")
    c.user("ok, let's go with that for the ORM")
    (d,) = of(extract_session(c.turns), "decision")
    assert d.attrs["choice"] == "sqlalchemy" and d.attrs["topic"] == "orm"
    assert d.key == "decision:home-dev-shop:orm=sqlalchemy"
    assert d.text.startswith("Decision for shop: SQLAlchemy for the ORM.") and "let's go with that" in d.text


@pytest.mark.parametrize(
    ("sentence", "choice", "replaces", "topic"),
    [
        ("Let's use httpx for the API client.", "httpx", None, "api-client"),
        ("Replace requests with httpx in the sync job.", "httpx", "requests", None),
        ("Switch from Celery to Dramatiq.", "dramatiq", "celery", None),
        ("Migrate the task queue to arq", "arq", None, "task-queue"),
        ("We decided on `Zustand` for the state manager.", "zustand", None, "state-manager"),
        ("use SQLModel instead of SQLAlchemy 2.0", "sqlmodel", "sqlalchemy", None),
    ],
)
def test_decision_phrasings(sentence: str, choice: str, replaces: str | None, topic: str | None):
    (fact,) = [f for f in prompt_drafts(sentence, name="shop") if f.category == "decision"]
    assert (fact.attrs.get("choice"), fact.attrs.get("replaces"), fact.attrs.get("topic")) == (
        choice,
        replaces,
        topic,
    )


@pytest.mark.parametrize(
    ("sentence", "says"),
    [
        (
            "Use psycopg 3 rather than psycopg2 for the driver.",
            "psycopg 3 for the driver, instead of psycopg2.",
        ),
        ("use SQLModel instead of SQLAlchemy 2.0", "SQLModel, instead of SQLAlchemy 2.0."),
        ("Switch from Celery to Dramatiq.", "Dramatiq, replacing Celery."),
        ("Replace requests with httpx in the sync job.", "httpx, replacing requests."),
    ],
)
def test_a_decision_says_replacing_only_for_a_change(sentence: str, says: str):
    """ "X rather than Y" weighs an option that may never have been used: the decision says "instead of Y";
    "switch from Y", "replace Y" change what was in use: "replacing Y"."""
    (fact,) = [f for f in prompt_drafts(sentence, name="shop") if f.category == "decision"]
    assert fact.text.startswith(f"Decision for shop: {says}"), fact.text


def test_assistant_decision_counts_only_after_the_user_agreed():
    agreed, not_agreed = Conv("s1"), Conv("s2")
    for c, prompt in ((agreed, "yes, go ahead"), (not_agreed, "fix the flaky sync test")):
        c.user(prompt)
        c.say("I'll use httpx instead of requests.")
    assert of(extract_session(agreed.turns), "decision")[0].attrs["replaces"] == "requests"
    assert of(extract_session(not_agreed.turns), "decision") == []
    c = Conv("s3")
    c.user("fix the coupon bug")
    c.say("Fixed. We decided to keep coupons optional in the Order schema.")  # stated outright: always kept
    (d,) = of(extract_session(c.turns), "decision")
    assert "keep coupons optional" in d.text and "stated by the assistant" in d.text


# ---------------------------------------------------------------------------------------------- corrections


def test_correction_right_after_the_assistant_says_what_was_corrected():
    c = Conv()
    c.user("no idea why the checkout test fails, can you look?")  # starts with "no" but answers nothing
    c.edit(f"{CWD}/shop/pricing.py", "total = a + b", "total = round(a + b)")
    c.say("Rounded the total.")
    c.user("No, don't touch shop/pricing.py. The bug is in shop/cart.py. Always write a test first.")
    memories = extract_session(c.turns)
    (corr,) = of(memories, "correction")
    assert corr.text.startswith(
        "Correction in shop: after the assistant edited shop/pricing.py, the user said:"
    )
    assert "The bug is in shop/cart.py" in corr.text and "shop/pricing.py" in corr.keywords
    assert corr.sources[0].uuid == c.turns[-1].uuid
    # the correcting sentence is not also a preference, but a standing rule after it is
    assert [m.attrs["said"] for m in of(memories, "preference")] == ["Always write a test first."]


@pytest.mark.parametrize(
    ("prompt", "is_correction"),
    [
        ("that's wrong, the limit is 50", True),
        ("I said use the staging database", True),
        ("hmm, that didn't work, same error", True),
        ("stop, revert that", True),
        ("not the cart, the pricing module", True),
        ("no problem, now add the CSV export", False),
        ("looks good, commit it", False),
    ],
)
def test_correction_phrasings(prompt: str, is_correction: bool):
    facts = prompt_drafts(prompt, name="shop", after_assistant=True, prev_reply="Done.")
    assert any(f.category == "correction" for f in facts) == is_correction


# ---------------------------------------------------------------------------------------------- errors and fixes


def test_error_fix_episode_fail_edit_rerun():
    c = Conv()
    c.user("The checkout test fails")
    fail = c.bash(
        "pytest -x tests/test_checkout.py",
        "FAILED tests/test_checkout.py::test_discount - KeyError: 'coupon'",
        error=True,
    )
    fix = c.edit(
        f"{CWD}/shop/pricing.py",
        "    code = order['coupon']\n    return code",
        "    code = order.get('coupon')\n    return code",
    )
    ok = c.bash("pytest -x tests/test_checkout.py", "3 passed in 0.12s")
    (ep,) = of(extract_session(c.turns), "error_fix")
    assert ep.text == (
        "In shop, `pytest -x tests/test_checkout.py` failed with KeyError: 'coupon'; fixed by editing shop/pricing.py"
        " (code = order['coupon'] -> code = order.get('coupon')). `pytest -x tests/test_checkout.py` passed afterwards."
    )
    # sources: the failing output, the fixing edit, the passing run — each with its record, time and project
    failed_result = c.turns[c.turns.index(fail) + 1]
    assert [s.uuid for s in ep.sources] == [failed_result.uuid, fix.uuid, ok.uuid]
    assert ep.sources[0].timestamp == failed_result.timestamp and {s.project for s in ep.sources} == {CWD}
    assert {"shop/pricing.py", "KeyError"} <= set(ep.keywords)
    assert ep.attrs["verified"] == "True" and ep.salience == 0.6


def test_failure_inside_a_successful_tool_call_and_shell_noise():
    c = Conv()
    c.bash(
        "cargo test",
        "running 3 tests\ntest tests::parses ... FAILED\nerror[E0308]: mismatched types\ntest result: FAILED. 2 passed; 1 failed",
    )
    c.bash("grep -rn coupon src/", "Exit code 1", error=True)  # grep found nothing: not an error to fix
    c.edit(f"{CWD}/src/parse.rs", "let x = y;", "let x = y?;")
    c.bash("cargo test", "test result: ok. 3 passed; 0 failed")
    (ep,) = of(extract_session(c.turns), "error_fix")
    assert (
        "`cargo test` failed with error[E0308]: mismatched types" in ep.text
        and "(let x = y; -> let x = y?;)" in ep.text
    )
    assert "grep" not in ep.text


def test_unverified_fix_is_kept_weaker():
    c = Conv()
    c.bash(
        "uv run pytest -q",
        "E   AttributeError: 'NoneType' object has no attribute 'email'\n1 failed",
        error=True,
    )
    c.edit(
        f"{CWD}/app/users.py",
        "    return user.email",
        "    if user is None:\n        return None\n    return user.email",
    )
    (ep,) = of(extract_session(c.turns), "error_fix")
    assert "AttributeError: 'NoneType' object has no attribute 'email'" in ep.text
    assert "passed afterwards" not in ep.text and ep.salience < 0.6 and "(added if user is None:)" in ep.text


# ---------------------------------------------------------------------------------------------- project facts


PYPROJECT = """[project]
name = "shop"
requires-python = ">=3.11"
dependencies = ["fastapi>=0.1", "SQLAlchemy[asyncio]>=2"]

[tool.ruff]
line-length = 100
"""
PACKAGE_JSON = '{"name": "shop-web", "scripts": {"test": "vitest"}, "devDependencies": {"typescript": "^5"}}'


def test_project_facts_from_package_files_and_commands_that_passed():
    c = Conv()
    numbered = "\n".join(
        f"{i:>6}→{line}" for i, line in enumerate(PYPROJECT.splitlines(), 1)
    )  # as Read shows it
    c.tool("Read", {"file_path": f"{CWD}/pyproject.toml"}, numbered)
    c.write(f"{CWD}/web/package.json", PACKAGE_JSON)
    for cmd in (
        "cd /home/dev/shop && uv run pytest -q",
        "uv run pytest -q",
        "uv run pytest tests/test_cart.py -x",
    ):
        c.bash(cmd, "5 passed in 0.3s")
    c.bash("uv run ruff check .", "All checks passed!")
    c.bash("git status", "On branch main")
    # a failed run does not say how the project is linted
    c.bash("make lint", "Exit code 2\nmake: *** [lint] Error 2", error=True)
    facts = {m.key.split(":", 2)[2]: m for m in of(extract_session(c.turns), "project_fact")}
    assert set(facts) == {
        "manifest:pyproject-toml",
        "manifest:web-package-json",
        "cmd:test:pytest",
        "cmd:lint:ruff",
    }  # and no layout: one folder is not a layout
    py = facts["manifest:pyproject-toml"]
    assert (
        py.text
        == "shop (pyproject.toml): Python project `shop`; tools: Python >=3.11, ruff; dependencies: fastapi, sqlalchemy."
    )
    web = facts["manifest:web-package-json"].text
    assert (
        web
        == "shop (web/package.json): TypeScript project `shop-web`; dependencies: typescript; scripts: `test` = `vitest`."
    )
    assert (
        facts["cmd:test:pytest"].text
        == "In shop, tests run with `uv run pytest -q` (also: `uv run pytest tests/test_cart.py -x`)."
    )
    assert facts["cmd:lint:ruff"].text == "In shop, checks run with `uv run ruff check .`."


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        ("cd app && uv run pytest -x tests/", ("test", "pytest")),
        ("python -m pytest -q", ("test", "pytest")),
        ("FOO=1 npm test", ("test", "npm test")),
        ("pnpm vitest run src/a.test.ts", ("test", "vitest")),
        ("pnpm run build", ("build", "pnpm build")),
        ("cargo clippy --all-targets -- -D warnings", ("lint", "cargo clippy")),
        ("go test ./... -run TestX", ("test", "go test")),
        ("make", ("build", "make")),
        ("make test", ("test", "make test")),
        ("uv run alembic upgrade head", ("migrate", "alembic")),
        ("git commit -m 'x' && git push", None),
        ("ls -la | head", None),
    ],
)
def test_command_kind(command: str, kind: tuple[str, str] | None):
    assert command_kind(command) == kind


def test_manifest_parsers_tolerate_partial_files():
    assert manifest_facts(
        "/p/go.mod",
        "module github.com/acme/gw\n\ngo 1.23\n\nrequire (\n\tgithub.com/jackc/pgx/v5 v5.7.1\n)\n",
    ).dependencies == ["github.com/jackc/pgx/v5"]
    cargo = manifest_facts(
        "/p/Cargo.toml",
        '[package]\nname = "ledger"\nedition = "2021"\n[dependencies]\nserde = { version = "1" }\nclap = "4',
    )
    assert (
        cargo is not None and cargo.name == "ledger" and cargo.dependencies == ["serde", "clap"]
    )  # not valid TOML
    make = manifest_facts("/p/Makefile", "test:\n\tpytest -q\n\nlint: fmt\n\t@ruff check .\nVAR := 1\n")
    assert make is not None and make.commands == {"test": "pytest -q", "lint": "ruff check ."}
    assert manifest_facts("/p/README.md", "# hi") is None


def test_failure_line_picks_the_named_error():
    assert failure_line("====\nE       KeyError: 'coupon'\nFAILED t.py::x - KeyError") == "KeyError: 'coupon'"
    assert (
        failure_line("panic: runtime error: invalid memory address")
        == "panic: runtime error: invalid memory address"
    )
    assert failure_line("Exit code 1") is None


# ---------------------------------------------------------------------------------------------- code knowledge


PY_FILE = '''
import os


class CouponStore(Base):
    """Coupons by code."""

    def __init__(self, db, *, ttl=60):
        self.db = db

    async def get(self, code: str) -> Coupon | None:
        return None


def apply_discount(order: dict, rate: float = 0.1, *extra, **opts) -> int:
    return 0
'''


def test_python_definitions_with_ast_and_a_syntax_error_fallback():
    defs = [(d.kind, d.name, d.detail) for d in definitions("shop/coupons.py", PY_FILE)]
    assert defs == [
        ("class", "CouponStore", "Base"),
        ("method", "CouponStore.__init__", "db, ttl"),
        ("method", "CouponStore.get", "code"),
        ("function", "apply_discount", "order, rate, *extra, **opts"),
    ]
    broken = PY_FILE.replace("return 0", "return 0 +") + "\ndef later(x):\n    pass\n"
    names = [d.name for d in definitions("shop/coupons.py", broken)]
    assert names == ["CouponStore", "CouponStore.__init__", "CouponStore.get", "apply_discount", "later"]
    fragment = "    def total(self, rate):\n        if rate is None:\n"  # an Edit's new_string, cut mid-block
    assert [(d.kind, d.name) for d in definitions("a.py", fragment)] == [("function", "total")]


def test_definitions_in_other_languages():
    ts = "export async function loadOrders(id: string) {}\nexport const useCart = (id) => {}\nclass CartStore {}\nexport interface Order {}\ntype Id = string\n"
    assert [(d.kind, d.name) for d in definitions("src/cart.ts", ts)] == [
        ("function", "loadOrders"), ("function", "useCart"), ("class", "CartStore"), ("interface", "Order"), ("type", "Id"),
    ]  # fmt: skip
    go = "func (s *Server) Handle(w http.ResponseWriter) {}\nfunc NewServer() *Server {}\ntype Server struct {}\n"
    assert [(d.kind, d.name) for d in definitions("srv.go", go)] == [
        ("method", "Server.Handle"),
        ("function", "NewServer"),
        ("struct", "Server"),
    ]
    rs = "pub struct Ledger {}\nimpl Ledger {\n    pub async fn post(&mut self) {}\n}\nenum Kind {}\nfn main() {}\n"
    assert [(d.kind, d.name) for d in definitions("src/lib.rs", rs)] == [
        ("struct", "Ledger"),
        ("function", "post"),
        ("enum", "Kind"),
        ("function", "main"),
    ]
    assert definitions("notes.md", "def not_code(): pass") == []


def test_code_knowledge_per_file_from_writes_and_edits():
    c = Conv()
    c.write(f"{CWD}/shop/coupons.py", PY_FILE)
    c.write(f"{CWD}/shop/broken.py", "def half(:\n    pass\n\nclass Draft:\n    pass\n")
    c.edit(f"{CWD}/shop/cart.py", "x = 1", "x = 2")
    c.tool(
        "Write", {"file_path": f"{CWD}/shop/denied.py", "content": "def nope(): pass"}, "denied", error=True
    )
    code = {m.attrs["path"]: m for m in of(extract_session(c.turns), "code_knowledge")}
    assert set(code) == {
        "shop/coupons.py",
        "shop/broken.py",
        "shop/cart.py",
    }  # a refused Write taught nothing
    assert code["shop/coupons.py"].text == (
        "In shop, shop/coupons.py was written; it defines class CouponStore, method CouponStore.__init__(db, ttl),"
        " method CouponStore.get(code), function apply_discount(order, rate, *extra, **opts)."
    )
    assert {"CouponStore", "apply_discount"} <= set(code["shop/coupons.py"].keywords)
    assert "class Draft" in code["shop/broken.py"].text
    assert code["shop/cart.py"].text == "In shop, shop/cart.py was edited (x = 1 -> x = 2)."


def test_caps_bound_a_session():
    c = Conv()
    for i in range(60):
        c.write(f"{CWD}/gen/mod_{i}.py", f"def f{i}():\n    pass\n")
    assert len(of(extract_session(c.turns), "code_knowledge")) == CAPS["code_knowledge"]


# ---------------------------------------------------------------------------------------------- merging


def test_near_duplicates_across_sessions_merge_with_sources_unioned():
    a, b = Conv("s1", day=1), Conv("s2", day=9)
    a.user("Always run ruff before committing.")
    b.user("also please always run ruff before committing!")
    b.user("Always run mypy before committing.")  # a different tool: a different memory
    single = of(extract([a.turns]), "preference")[0].salience
    prefs = of(extract([a.turns, b.turns]), "preference")
    ruff = next(m for m in prefs if "ruff" in m.text)
    assert len(prefs) == 2 and ruff.text.endswith(
        "(shop): Always run ruff before committing!"
    )  # the newest wording, without its filler
    assert [(s.session_id, s.uuid) for s in ruff.sources] == [("s1", "s1-1"), ("s2", "s2-1")]
    assert ruff.salience > single


def test_later_decision_supersedes_earlier_and_both_are_kept():
    a, b = Conv("s1", day=1), Conv("s2", day=20)
    a.user("Let's use SQLAlchemy for the ORM. Let's use requests for the HTTP client.")
    b.user("Switch the ORM to SQLModel.")
    b.user("Replace requests with httpx.")
    decisions = {m.attrs["choice"]: m for m in of(extract([a.turns, b.turns]), "decision")}
    assert set(decisions) == {"sqlalchemy", "sqlmodel", "requests", "httpx"}
    assert (
        decisions["sqlalchemy"].superseded_by
        == decisions["sqlmodel"].key
        == "decision:home-dev-shop:orm=sqlmodel"
    )
    assert (
        decisions["requests"].superseded_by == decisions["httpx"].key
    )  # "replace X with Y" names what it replaced
    assert decisions["sqlmodel"].superseded_by is None and decisions["httpx"].superseded_by is None
    assert decisions["sqlalchemy"].salience < decisions["sqlmodel"].salience / 1.5  # halved


def test_reaffirmed_decision_is_current_again_and_merge_is_idempotent():
    a, b, c = Conv("s1", day=1), Conv("s2", day=5), Conv("s3", day=9)
    a.user("Let's use Celery for the task queue.")
    b.user("Let's use Dramatiq for the task queue.")
    c.user("Let's go with Celery for the task queue again.")
    merged = merge_memories([m for conv in (a, b, c) for m in extract_session(conv.turns)])
    decisions = {m.attrs["choice"]: m for m in of(merged, "decision")}
    assert (
        decisions["celery"].superseded_by is None
        and decisions["dramatiq"].superseded_by == decisions["celery"].key
    )
    before = [(m.key, m.salience, m.superseded_by, len(m.sources)) for m in merged]
    again = merge_memories(merged)
    assert [(m.key, m.salience, m.superseded_by, len(m.sources)) for m in again] == before


def test_keywords_are_identifiers_first_and_no_stopwords():
    kws = keywords_of(
        "In shop, `pytest -x` failed in tests/test_checkout.py: apply_discount raised KeyError in OrderService.apply",
        ["shop/pricing.py", "absent"],
    )
    assert kws[:4] == ["pytest -x", "tests/test_checkout.py", "apply_discount", "KeyError"]
    assert "OrderService.apply" in kws and "absent" not in kws  # a keyword always occurs in the text
    assert not {"in", "the", "failed", "raised"} & {k.lower() for k in kws}


# ---------------------------------------------------------------------------------------------- transcripts


def test_own_fixture_shop_session():
    path = OWN_FIXTURES / "-home-dev-shop" / "7f3c1e2a-0000-4000-8000-00000000c0de.jsonl"
    (turns,) = session_turns(path)
    assert turns[0].uuid == "u-1"  # the walk crossed the progress record between u-2 and a-4
    memories = extract_session(turns)
    assert {m.category for m in memories} == {
        "preference",
        "decision",
        "error_fix",
        "code_knowledge",
        "project_fact",  # "We use pytest ...": the test runner, stated in conversation
        "session",
    }
    (summary,) = of(memories, "session")
    assert summary.text.startswith(
        "Session of 2026-10-01 in shop: asked “The checkout test fails with a KeyError"
    )
    assert "Changed shop/pricing.py" in summary.text and "Outcome: Fixed: apply_discount" in summary.text
    (ep,) = of(memories, "error_fix")
    assert (
        "`pytest -x tests/test_checkout.py` failed with KeyError: 'coupon'; fixed by editing shop/pricing.py"
        in ep.text
    )
    assert [s.uuid for s in ep.sources] == ["u-2", "a-4"]
    assert {(s.session_id, s.project) for s in ep.sources} == {
        ("7f3c1e2a-0000-4000-8000-00000000c0de", "/home/dev/shop")
    }


def test_extraction_fixtures_two_sessions_through_the_parser():
    memories = extract(iter_sessions(EXTRACTION_FIXTURES))
    by_key = {m.key: m for m in memories}
    old, new = (
        by_key["decision:home-dev-billing:orm=sqlalchemy"],
        by_key["decision:home-dev-billing:orm=sqlmodel"],
    )
    assert old.superseded_by == new.key and new.superseded_by is None
    (ruff,) = [m for m in of(memories, "preference") if "ruff" in m.text]
    assert {s.session_id[:8] for s in ruff.sources} == {"aaaa0001", "aaaa0002"}
    assert not any("reminder" in m.text for m in memories)
    assert (
        "dependencies: sqlalchemy, fastapi"
        in by_key["project_fact:home-dev-billing:manifest:pyproject-toml"].text
    )
    assert (
        "method Invoice.total(tax_rate)" in by_key["code_knowledge:home-dev-billing:billing-models-py"].text
    )


@needs_shared
def test_shared_fixtures_extract_without_error():
    memories = extract(iter_sessions(SHARED_FIXTURES))
    assert all(m.category in CATEGORIES and m.sources and 0 <= m.salience <= 1 for m in memories)
    # Claude Code 1.0 kept sub-agents inline: their Read of package.json is still a project fact
    assert any(m.category == "project_fact" and "todo-app" in m.text for m in memories)
    rewound = session_turns(SHARED_FIXTURES / "claude-code-log" / "dag_compact_after_rewind.jsonl")[0]
    assert "b1u" not in {t.uuid for t in rewound}


def test_synthetic_history_has_every_category(tmp_path: Path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    import synth

    synth.write_transcripts(tmp_path, 6, seed=3)
    sessions = list(iter_sessions(tmp_path))
    started = time.perf_counter()
    memories = extract(sessions)
    elapsed = time.perf_counter() - started
    counts = Counter(m.category for m in memories)
    assert set(counts) == set(CATEGORIES), counts
    assert len({m.key for m in memories}) == len(memories)
    for m in memories:
        assert m.text and m.keywords and m.sources and 0 <= m.salience <= 1
        assert all(k.lower() in m.text.lower() for k in m.keywords)
        assert all(s.session_id and s.uuid and s.timestamp for s in m.sources)
    assert elapsed < 5  # ~0.1 s here; linear in the history


def test_rewound_branch_is_not_remembered():
    c = Conv()
    root = c.user("set up the linter")
    c.say("Which one?")
    abandoned = c.user("Always use tabs for indentation.")
    c.turns.append(  # the user rewound to the reply and said something else: a second child of the reply
        Turn("s1-99", abandoned.parent_uuid, "s1", "user", "prompt", "Use ruff with the default settings.",
             timestamp="2026-10-01T11:00:00.000Z", cwd=CWD)
    )  # fmt: skip
    memories = extract_session(c.turns)
    assert root.uuid != abandoned.uuid and of(memories, "preference") == []


def test_secrets_in_commands_do_not_reach_memories():
    c = Conv()
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    c.bash(f"GITHUB_TOKEN={token} uv run pytest -q", "4 passed")
    (fact,) = of(extract_session(c.turns), "project_fact")
    assert token not in fact.text and "[REDACTED:" in fact.text and token not in fact.attrs["command"]


def test_folding_a_file_across_sessions_keeps_older_definitions():
    from transcripts.extraction import Memory, Source, merge_memories

    def code(ts: str, verb: str, defs: str) -> Memory:
        return Memory(
            category="code_knowledge",
            text=f"In shop, shop/cart.py {verb}.",
            keywords=["shop/cart.py"],
            salience=0.5,
            sources=[Source(f"s-{ts}", f"u-{ts}", ts, "/home/dev/shop")],
            project="/home/dev/shop",
            key="code_knowledge:home-dev-shop:shop-cart-py",
            attrs={"path": "shop/cart.py", "verb": verb, "defs": defs, "change": ""},
        )

    older = code("2026-01-01T00:00:00Z", "was written", "class Cart\nfunction total(cart)")
    newer = code("2026-02-01T00:00:00Z", "was edited", "function apply_coupon(cart, code)")
    [merged] = merge_memories([older, newer])
    assert merged.attrs["verb"] == "was written"
    assert set(merged.attrs["defs"].splitlines()) == {
        "class Cart",
        "function total(cart)",
        "function apply_coupon(cart, code)",
    }
    assert "Cart" in merged.text and "apply_coupon" in merged.text and len(merged.sources) == 2
