"""`lmm-mcp demo` in a subprocess: retrieval only (default home in a temporary folder), and the full run with a
tiny Qwen3 (slow: trains, publishes an adapter version, recalls by generation)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from trainer.versions import active_version
from transcripts.extraction import CATEGORIES

STEPS = ("ingest", "recall_retrieve")


def demo(*args: str, env: dict[str, str] | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "lmm_mcp", "demo", "--json", *args],
        capture_output=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    lines = proc.stdout.decode().strip().splitlines()
    assert len(lines) == 1, proc.stdout[-2000:]  # progress goes to stderr
    assert b"== 2. recall by retrieval" in proc.stderr
    return orjson.loads(lines[0])


@pytest.fixture(scope="module")
def retrieval_run(tmp_path_factory) -> tuple[Path, dict]:
    """`demo --no-train` with no --home: it makes its own folder under the temporary directory."""
    tmp = tmp_path_factory.mktemp("demo")
    doc = demo("--no-train", env={"TMPDIR": str(tmp), "LMM_HOME": str(tmp / "not-this-one")})
    return tmp, doc


def test_demo_without_training_recalls_with_sources(retrieval_run):
    tmp, doc = retrieval_run
    home = Path(doc["home"])
    assert home.parent == tmp and home.name.startswith("lmm-demo-") and not (tmp / "not-this-one").exists()
    assert doc["train"] is None and doc["generate"] is None
    assert set(doc["timings_s"]) == {*STEPS, "total"}
    ingest = doc["ingest"]
    assert ingest["files"] == 12 and ingest["sessions"] == 12 and ingest["lines_skipped"] == 0
    assert ingest["secrets_redacted"] == 1 and ingest["embed_error"] is None and ingest["chunks_embedded"] > 0

    conn = sqlite3.connect(home / "store.db")
    sessions = {r[0] for r in conn.execute("SELECT session_id FROM sessions")}
    assert len(doc["retrieve"]) == 4
    for r in doc["retrieve"]:
        assert r["mode_used"] == "retrieve" and r["sources"] and r["latency_ms"] > 0
        assert [s["n"] for s in r["sources"]] == list(range(1, len(r["sources"]) + 1))
        assert all(s["session_id"] in sessions and s["timestamp"] for s in r["sources"])
        assert all(f"[{s['n']}]" in r["memory"] for s in r["sources"])
    by_query = {r["query"]: r for r in doc["retrieve"]}
    tests = by_query["How do we run the tests?"]
    assert "uv run pytest -q" in tests["memory"]
    assert all(s["project"] == "/home/dev/code/tasklane-api" for s in tests["sources"])
    database = by_query["Which database did we choose, and did it change?"]["memory"]
    assert "PostgreSQL for the database, replacing SQLite" in database and "superseded" in database
    commits = by_query["What does the user prefer for commits and commit messages?"]
    assert "conventional commit messages" in commits["memory"]
    assert any(s["kind"] == "memory" and s["project"] is None for s in commits["sources"])

    summary = doc["summary"]
    assert set(summary["memories_by_category"]) == set(CATEGORIES)
    assert summary["memories_by_category"]["decision"]["superseded"] >= 2
    assert (
        summary["store"]["sessions"] == 12 and summary["store"]["projects"] == 3 and summary["eval"] is None
    )


@pytest.mark.slow
def test_full_demo_with_a_tiny_model(retrieval_run, tmp_path):
    """Train the tiny Qwen3 for two steps a stage on the demo's store, publish it and recall by generation."""
    from trainer.tiny import build_tiny_qwen3

    home = Path(
        shutil.copytree(retrieval_run[1]["home"], tmp_path / "home")
    )  # the store is built: only training is new
    tiny = build_tiny_qwen3(tmp_path / "tiny")
    doc = demo("--home", str(home), "--model", str(tiny), "--steps", "2")
    assert doc["ingest"]["files_changed"] == 0 and doc["ingest"]["turns"] == 0
    train = doc["train"]
    version = active_version(home / "models")
    assert version is not None and train["adapter_version"] == version.name
    assert train["model"] == str(tiny) and train["metrics"]["sft"]["steps"] == 2
    assert [g["query"] for g in doc["generate"]] == [r["query"] for r in doc["retrieve"]]
    for g in doc["generate"]:  # the tiny model's text is noise: only that generation ran is checked
        # an uncited answer falls back to the retrieval memory, still naming the adapter that was asked
        assert (
            g["mode_used"] in ("generate", "retrieve")
            and g["adapter_version"] == version.name
            and g["memory"]
        )
    assert set(doc["timings_s"]) == {*STEPS, "train", "recall_generate", "total"}
    assert {"model", "baseline"} <= set(doc["summary"]["eval"])
