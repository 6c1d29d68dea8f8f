"""Faults and concurrency, with real processes: kill -9 mid-ingest, two ingests of one folder at once."""

from __future__ import annotations

import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
from conftest import conversation, write_jsonl

FILES = 120
PAIRS = 150


def make_history(root: Path) -> None:
    filler = "the deployment pipeline retries flaky integration tests before paging anyone " * 4
    for i in range(FILES):
        write_jsonl(
            root / f"-work-p{i % 6}" / f"s{i:04d}.jsonl",
            conversation(f"s{i:04d}", PAIRS, cwd=f"/work/p{i % 6}", words=filler),
        )


def run_ingest(home: Path, claude: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lmm_mcp",
            "ingest",
            "--home",
            str(home),
            "--claude-dir",
            str(claude),
            "--no-embed",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def snapshot(home: Path) -> dict:
    conn = sqlite3.connect(home / "store.db")
    try:
        out = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("sessions", "turns", "chunks", "files", "record_uuids")
        }
        out["fts"] = conn.execute(
            "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'pipeline'"
        ).fetchone()[0]
        out["dup_turns"] = conn.execute(
            "SELECT count(*) FROM (SELECT session_key, uuid FROM turns GROUP BY 1, 2 HAVING count(*) > 1)"
        ).fetchone()[0]
        out["dup_chunks"] = conn.execute(
            "SELECT (SELECT count(*) FROM (SELECT turn_id, text FROM chunks WHERE turn_id IS NOT NULL"
            " GROUP BY 1, 2 HAVING count(*) > 1))"
            # a memory's chunk is keyed by the memory: two sessions may share a wording, never a key
            " + (SELECT count(*) FROM (SELECT session_key FROM chunks WHERE kind = 'memory'"
            " GROUP BY 1 HAVING count(*) > 1))"
        ).fetchone()[0]
        out["integrity"] = conn.execute("PRAGMA integrity_check").fetchone()[0]
        out["archived_lines"] = sum(
            len(gzip.decompress(Path(p).read_bytes()).splitlines())
            for (p,) in conn.execute("SELECT archive_path FROM files")
        )
        out["offsets"] = conn.execute("SELECT sum(offset) FROM files").fetchone()[0]
    finally:
        conn.close()
    return out


def test_kill_9_mid_ingest_then_reingest_matches_a_clean_run(tmp_path):
    claude = tmp_path / "projects"
    make_history(claude)
    clean_home, killed_home = tmp_path / "clean", tmp_path / "killed"
    assert run_ingest(clean_home, claude).wait(300) == 0
    clean = snapshot(clean_home)
    assert clean["turns"] == FILES * PAIRS * 2 and clean["dup_turns"] == 0

    proc = run_ingest(killed_home, claude)
    db = killed_home / "store.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until some files are committed, then kill without warning
        if db.exists():
            try:
                c = sqlite3.connect(db, timeout=5)
                done = c.execute("SELECT count(*) FROM files").fetchone()[0]
                c.close()
            except sqlite3.OperationalError:
                done = 0
            if done >= 5:
                break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = snapshot(killed_home)
    assert partial["integrity"] == "ok"
    assert 0 < partial["files"] < FILES, "the kill must land mid-ingest for this test to mean anything"

    rerun = run_ingest(killed_home, claude)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    doc = orjson.loads(out)
    assert doc["errors"] == []
    assert snapshot(killed_home) == clean


def test_two_processes_ingesting_one_folder_at_once(tmp_path):
    claude = tmp_path / "projects"
    make_history(claude)
    home = tmp_path / "home"
    procs = [run_ingest(home, claude) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
        assert orjson.loads(out)["errors"] == []
    docs = [orjson.loads(out) for out, _ in outputs]
    assert sum(d["turns"] for d in docs) == FILES * PAIRS * 2  # each turn added by exactly one process
    snap = snapshot(home)
    assert snap["turns"] == FILES * PAIRS * 2
    assert snap["dup_turns"] == 0 and snap["dup_chunks"] == 0 and snap["integrity"] == "ok"
    assert snap["archived_lines"] == FILES * PAIRS * 2
