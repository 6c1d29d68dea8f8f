"""The Claude Code hooks as Claude Code runs them: a real `lmm-mcp hook ...` process, event JSON on stdin."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from conftest import OWN_FIXTURES, stored_sessions

from lmm_mcp import hooks
from lmm_mcp.config import Config
from lmm_mcp.hooks import start_context, worth_recalling
from lmm_mcp.ingest import Ingester
from lmm_mcp.memories import refresh_memories
from lmm_mcp.store import connect

SHOP = "/home/dev/shop"
SHOP_SESSION = "7f3c1e2a-0000-4000-8000-00000000c0de"


def hook(event: str, payload: dict | bytes, home: Path, claude_dir: Path, *extra: str) -> tuple[dict, float]:
    """Run one hook; returns its parsed stdout (exactly one JSON object) and its wall time."""
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmm_mcp",
            "hook",
            event,
            "--home",
            str(home),
            "--claude-dir",
            str(claude_dir),
            *extra,
        ],
        input=payload if isinstance(payload, bytes) else orjson.dumps(payload),
        capture_output=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().strip().splitlines()
    assert len(lines) == 1, proc.stdout
    doc = orjson.loads(lines[0])
    assert isinstance(doc, dict)
    if doc:
        out = doc["hookSpecificOutput"]
        assert set(out) == {"hookEventName", "additionalContext"}
        assert isinstance(out["additionalContext"], str) and out["additionalContext"]
    return doc, elapsed


@pytest.fixture(scope="module")
def filled(tmp_path_factory) -> tuple[Path, Path]:
    """A home whose store holds the fixture transcripts (no embeddings), and the Claude dir they sit in."""
    root = tmp_path_factory.mktemp("filled")
    claude_dir = root / "projects"
    shutil.copytree(OWN_FIXTURES, claude_dir)
    cfg = Config.load(root / "home", claude_dir)
    conn = connect(cfg.db_path)
    assert not Ingester(cfg, conn).ingest().errors
    refresh_memories(conn)
    conn.close()
    return cfg.home, claude_dir


def event(name: str, **fields) -> dict:
    return {
        "session_id": "new-session",
        "transcript_path": "",
        "cwd": SHOP,
        "hook_event_name": name,
        **fields,
    }


def context_of(doc: dict, event_name: str) -> str:
    assert doc["hookSpecificOutput"]["hookEventName"] == event_name
    return doc["hookSpecificOutput"]["additionalContext"]


# ------------------------------------------------------------------------------------------- session-start


def test_session_start_injects_preferences_decisions_and_the_last_session(filled):
    home, claude_dir = filled
    doc, _ = hook("session-start", event("SessionStart", source="startup"), home, claude_dir)
    text = context_of(doc, "SessionStart")
    assert len(text) < 2000
    assert "not instructions" in text  # framed as records, not commands
    assert "We use pytest and always run it with -x" in text  # a preference of this project
    assert "keep coupons optional" in text  # a current decision
    assert "Fix coupon KeyError in checkout" in text  # the last session here, by its title
    assert "SQLAlchemy" not in text  # another project's preference stays out

    doc, _ = hook("session-start", event("SessionStart", cwd="/srv/api"), home, claude_dir)
    assert "Never use SQLAlchemy sessions outside a request scope" in context_of(doc, "SessionStart")


def test_session_start_takes_the_project_from_the_environment(filled):
    home, _ = filled
    payload = event("SessionStart")
    del payload["cwd"]
    proc = subprocess.run(
        [sys.executable, "-m", "lmm_mcp", "hook", "session-start", "--home", str(home)],
        input=orjson.dumps(payload),
        capture_output=True,
        env={**os.environ, "CLAUDE_PROJECT_DIR": "/srv/api"},
        timeout=120,
    )
    assert proc.returncode == 0
    assert "SQLAlchemy" in context_of(orjson.loads(proc.stdout), "SessionStart")


def test_session_start_with_nothing_to_say_prints_an_empty_object(filled, tmp_path):
    home, claude_dir = filled
    assert hook("session-start", event("SessionStart", cwd="/nowhere/known"), home, claude_dir)[0] == {}
    missing = tmp_path / "no-home"
    assert hook("session-start", event("SessionStart"), missing, claude_dir)[0] == {}
    assert not missing.exists()  # no store, no files


def test_start_context_fits_its_budget_when_there_is_much_to_say(cfg, conn):
    rows = [
        (
            f"preference:{i}",
            "preference",
            f"User preference (app): rule number {i} " + "x" * 300,
            0.9,
            "/work/app",
        )
        for i in range(30)
    ] + [
        (f"decision:{i}", "decision", f"Decision for app: choice {i} " + "y" * 300, 0.5, "/work/app")
        for i in range(30)
    ]
    conn.executemany(
        "INSERT INTO memories(key, category, text, keywords, salience, project, superseded_by, attrs, sources,"
        " last_seen) VALUES (?, ?, ?, '[]', ?, ?, NULL, '{}', '[]', '2026-10-01T10:00:00Z')",
        rows,
    )
    conn.execute(
        "INSERT INTO memories VALUES ('decision:old', 'decision', 'Decision for app: the superseded one', '[]',"
        " 0.99, '/work/app', 'decision:1', '{}', '[]', '2026-09-01', NULL)"
    )
    text = start_context(conn, "/work/app/sub/dir")  # a folder inside the project counts as the project
    assert len(text) <= 2000
    assert "rule number" in text and "choice" in text
    assert "superseded" not in text


# ------------------------------------------------------------------------------------------- user-prompt


def test_user_prompt_recalls_for_a_matching_prompt(filled):
    home, claude_dir = filled
    payload = event(
        "UserPromptSubmit", prompt="the checkout test raises KeyError coupon again, what fixed it?"
    )
    doc, _ = hook("user-prompt", payload, home, claude_dir)
    text = context_of(doc, "UserPromptSubmit")
    assert text.startswith("Recalled from past sessions")
    assert "order.get('coupon')" in text
    assert len(text) <= 400 * 4 + 200  # the token budget, at ~4 characters a token
    # a prompt naming something new still gets its context (recall_memory would say nothing mentions Sentry)
    payload = event("UserPromptSubmit", prompt="send the checkout KeyError coupon failures to Sentry too")
    assert "order.get('coupon')" in context_of(
        hook("user-prompt", payload, home, claude_dir)[0], "UserPromptSubmit"
    )


def test_user_prompt_stays_quiet_for_trivial_prompts_and_a_missing_store(filled, tmp_path):
    home, claude_dir = filled
    for prompt in ("yes", "ok, go ahead", "/clear", "continue please"):
        assert hook("user-prompt", event("UserPromptSubmit", prompt=prompt), home, claude_dir)[0] == {}
    missing = tmp_path / "no-home"
    payload = event("UserPromptSubmit", prompt="the checkout test raises KeyError coupon")
    assert hook("user-prompt", payload, missing, claude_dir)[0] == {}
    assert not missing.exists()


def test_user_prompt_does_not_search_with_a_private_span(filled):
    home, claude_dir = filled
    hidden = "<private>the checkout test raises KeyError coupon again</private> ok, go ahead"
    assert hook("user-prompt", event("UserPromptSubmit", prompt=hidden), home, claude_dir)[0] == {}
    shown = "the checkout test raises KeyError coupon again <private>ok</private>"
    doc, _ = hook("user-prompt", event("UserPromptSubmit", prompt=shown), home, claude_dir)
    assert "order.get('coupon')" in context_of(doc, "UserPromptSubmit")


def test_worth_recalling():
    assert worth_recalling("why does the websocket test flake?")
    assert worth_recalling("fix KeyError coupon")
    assert not worth_recalling("yes please")
    assert not worth_recalling("  ")
    assert not worth_recalling("/compact")


# -------------------------------------------------------------------------------------------- session-end


def _pid_from_log(home: Path) -> int:
    log = (home / "logs" / "hooks.log").read_text()
    line = next(line for line in log.splitlines() if "ingest of" in line)
    return int(line.split("(pid ")[1].split(",")[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A finished child of init may linger as a zombie for a moment: that is not alive either.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def test_session_end_returns_at_once_and_a_detached_process_ingests(tmp_path):
    claude_dir = tmp_path / "projects"
    shutil.copytree(OWN_FIXTURES, claude_dir)
    home = tmp_path / "home"
    transcript = claude_dir / "-home-dev-shop" / f"{SHOP_SESSION}.jsonl"
    payload = event("SessionEnd", session_id=SHOP_SESSION, transcript_path=str(transcript), reason="exit")
    doc, elapsed = hook("session-end", payload, home, claude_dir, "--no-embed")
    assert doc == {}
    assert elapsed < 1.5  # Claude Code's budget for all SessionEnd hooks together (bench: p50 ~0.1 s)
    pid = _pid_from_log(home)
    if _alive(pid):
        assert os.getsid(pid) != os.getsid(0)  # its own session: it outlives Claude Code's
    deadline = time.monotonic() + 30
    # each transcript (the session, its sub-agent) commits on its own: wait for both
    wanted = {SHOP_SESSION, f"{SHOP_SESSION}/agent-b0c4d"}
    while time.monotonic() < deadline and not wanted <= stored_sessions(home / "store.db"):
        time.sleep(0.2)
    keys = stored_sessions(home / "store.db")
    assert SHOP_SESSION in keys
    assert f"{SHOP_SESSION}/agent-b0c4d" in keys  # its sub-agent folder came along
    assert not any(k.startswith("11111111") for k in keys)  # only this session, not the whole folder
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert (home / "logs" / "ingest.log").exists()


def test_session_end_ignores_a_transcript_outside_the_claude_dir(tmp_path):
    claude_dir = tmp_path / "projects"
    claude_dir.mkdir()
    outside = tmp_path / "elsewhere" / "-home-dev-shop"
    shutil.copytree(OWN_FIXTURES / "-home-dev-shop", outside)
    transcript = outside / f"{SHOP_SESSION}.jsonl"
    link = claude_dir / "sneaky.jsonl"
    link.symlink_to(transcript)  # inside by name, outside once resolved
    home = tmp_path / "home"
    for path in (transcript, link, claude_dir / ".." / "elsewhere" / "-home-dev-shop" / transcript.name):
        payload = event("SessionEnd", transcript_path=str(path), reason="exit")
        assert hook("session-end", payload, home, claude_dir, "--no-embed")[0] == {}
    time.sleep(1.0)
    assert not (home / "store.db").exists()
    assert not (home / "logs" / "ingest.log").exists()
    assert "not ingested" in (home / "logs" / "hooks.log").read_text()


def test_a_broken_event_still_exits_zero_and_is_logged(tmp_path):
    home = tmp_path / "home"
    for name in ("session-start", "user-prompt", "session-end"):
        assert hook(name, b"{not json", home, tmp_path)[0] == {}
    log = (home / "logs" / "hooks.log").read_text()
    for name in ("session-start", "user-prompt", "session-end"):
        assert f"{name}: JSONDecodeError" in log


def test_hook_entry_survives_a_broken_config_and_unknown_flags(tmp_path, monkeypatch, capsys):
    """hooks.main is what cli.main hands `hook` to: exit 2 from UserPromptSubmit would block the prompt."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("embed_batch = [unclosed")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"prompt": "fix the KeyError coupon"}')))
    assert hooks.main(["user-prompt", "--home", str(home), "--flag-from-a-newer-version"]) == 0
    assert orjson.loads(capsys.readouterr().out) == {}
    assert "ConfigError" in (home / "logs" / "hooks.log").read_text()
