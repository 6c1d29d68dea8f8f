"""The watcher on a temporary Claude folder: catch-up, new files, appended lines, debounced batches, the command."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from conftest import OWN_FIXTURES, conversation, record, write_jsonl

from lmm_mcp.config import Config
from lmm_mcp.watch import Watcher


def count(db: Path, sql: str, *args) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, args).fetchone()[0]
    finally:
        conn.close()


def memories_in(db: Path) -> int:
    """Memories in a store another process may still be creating."""
    try:
        return count(db, "SELECT count(*) FROM memories") if db.exists() else 0
    except sqlite3.OperationalError:  # not migrated yet
        return 0


def eventually(watcher: Watcher, check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll `check` while the watcher settles (a write may reach the observer after wait_idle returned)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        watcher.wait_idle(max(0.1, deadline - time.monotonic()))
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("the store did not catch up in time")


@pytest.fixture
def watching(tmp_path):
    claude_dir = tmp_path / "projects"
    shutil.copytree(OWN_FIXTURES / "-srv-api", claude_dir / "-srv-api")
    cfg = Config.load(tmp_path / "home", claude_dir)
    lines: list[str] = []
    watcher = Watcher(cfg, debounce=0.3, log=lines.append)
    watcher.start()
    yield watcher, cfg, lines
    watcher.stop()


def test_watch_catches_up_then_ingests_new_files_and_appended_lines(watching):
    watcher, cfg, lines = watching
    db = cfg.db_path
    assert watcher.wait_idle(60)
    assert count(db, "SELECT count(*) FROM sessions") == 2  # the fixture session and its 2.0 agent file
    assert lines and lines[0].startswith("watch: catch-up: 2/2 file(s) changed")

    path = cfg.claude_dir / "-work-app" / "sess-new.jsonl"
    write_jsonl(path, conversation("sess-new", 3, words="zebracorn"))
    eventually(watcher, lambda: count(db, "SELECT count(*) FROM turns WHERE session_key = 'sess-new'") == 6)
    assert count(db, "SELECT count(*) FROM chunks WHERE kind != 'memory' AND text LIKE '%zebracorn%'") == 3

    write_jsonl(
        path,
        [
            record(
                "sess-new-u9", "one more question about quokkalemon", parent="sess-new-a2", session="sess-new"
            )
        ],
        mode="ab",
    )
    eventually(watcher, lambda: count(db, "SELECT count(*) FROM turns WHERE session_key = 'sess-new'") == 7)
    assert count(db, "SELECT count(*) FROM chunks WHERE text LIKE '%quokkalemon%'") == 1
    assert any("turns +1" in line for line in lines)


def test_a_burst_of_writes_is_one_ingest_and_memories_follow(tmp_path):
    claude_dir = tmp_path / "projects"
    claude_dir.mkdir()
    cfg = Config.load(tmp_path / "home", claude_dir)
    watcher = Watcher(cfg, debounce=1.5, log=lambda _line: None)
    watcher.start()
    try:
        assert watcher.wait_idle(60)
        before = watcher.batches
        path = claude_dir / "-work-app" / "sess-burst.jsonl"
        records = conversation("sess-burst", 5)
        records[0]["message"]["content"] = "We always use ruff for formatting in this repo, never black."
        for r in records:  # one turn at a time, as Claude Code writes them
            write_jsonl(path, [r], mode="ab")
            time.sleep(0.02)
        eventually(watcher, lambda: count(cfg.db_path, "SELECT count(*) FROM turns") == 10)
        assert watcher.batches - before == 1
        assert count(cfg.db_path, "SELECT count(*) FROM memories WHERE category = 'preference'") >= 1
    finally:
        watcher.stop()
    assert not watcher.alive


def test_watch_command_runs_until_sigterm(tmp_path):
    claude_dir = tmp_path / "projects"
    shutil.copytree(OWN_FIXTURES, claude_dir)
    home = tmp_path / "home"
    command = [sys.executable, "-m", "lmm_mcp", "watch", "--home", str(home), "--claude-dir", str(claude_dir)]
    proc = subprocess.Popen(
        [*command, "--debounce", "0.2", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not memories_in(home / "store.db"):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    doc = orjson.loads(out)
    assert doc["batches"] >= 1 and doc["files"] == 4 and doc["turns"] > 10 and doc["errors"] == 0
    assert b"catch-up" in err


def test_watch_refuses_a_missing_folder(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmm_mcp",
            "watch",
            "--home",
            str(tmp_path / "h"),
            "--claude-dir",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2 and b"is not a folder" in proc.stderr


def test_an_embedding_failure_is_reported_and_the_batch_still_counts(tmp_path):
    """The one ingest behaviour (lmm_mcp.app): a model that cannot load costs the vectors, not the ingest."""
    claude_dir = tmp_path / "projects"
    shutil.copytree(OWN_FIXTURES / "-srv-api", claude_dir / "-srv-api")
    base = Config.load(tmp_path / "home", claude_dir)
    cfg = Config(**{**base.__dict__, "embed_model": str(tmp_path / "no-model-here")})
    lines: list[str] = []
    watcher = Watcher(cfg, debounce=0.3, embed=True, log=lines.append)
    watcher.start()
    try:
        assert watcher.wait_idle(60)
    finally:
        watcher.stop()
    assert watcher.batches == 1 and watcher.totals["turns"] > 0 and watcher.totals["errors"] == 1
    assert "file(s) changed" in lines[0] and "embedding skipped" in lines[0]
    assert count(cfg.db_path, "SELECT count(*) FROM turns") == watcher.totals["turns"]
    assert count(cfg.db_path, "SELECT count(*) FROM vectors") == 0
