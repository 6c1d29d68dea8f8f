"""The real `lmm-mcp` command in a subprocess: --home, --json documents, batch queries, errors."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
from conftest import OWN_FIXTURES


def cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "lmm_mcp", *args],
        capture_output=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def one_json(proc: subprocess.CompletedProcess) -> dict:
    lines = proc.stdout.decode().strip().splitlines()
    assert len(lines) == 1, proc.stdout
    return orjson.loads(lines[0])


def test_ingest_search_status_round_trip(tmp_path):
    home = tmp_path / "home"
    doc = one_json(cli("ingest", "--home", str(home), "--claude-dir", str(OWN_FIXTURES), "--json"))
    assert doc["files"] == 4 and doc["sessions"] == 4 and doc["turns"] > 10 and doc["chunks"] > 10
    memories = doc["memories"]["memories"]
    assert memories >= 4 and doc["memories"]["added"] == memories  # each memory is a chunk too
    assert (
        0 < doc["chunks_embedded"] < doc["chunks"] + memories
        and doc["lines_skipped"] == 0
        and doc["secrets_redacted"] == 0
    )

    again = one_json(cli("ingest", "--home", str(home), "--claude-dir", str(OWN_FIXTURES), "--json"))
    assert again["turns"] == 0 and again["chunks_embedded"] == 0 and again["memories"]["added"] == 0

    hits = one_json(cli("search", "KeyError coupon", "--home", str(home), "--k", "3", "--json"))["hits"]
    assert 1 <= len(hits) <= 3
    assert set(hits[0]) >= {"session_id", "uuid", "timestamp", "project", "text", "score"}
    assert hits[0]["project"] == "/home/dev/shop"

    scoped = one_json(cli("search", "routers", "--home", str(home), "--project", "/srv/api", "--json"))[
        "hits"
    ]
    assert scoped and all(h["project"] == "/srv/api" for h in scoped)

    status = one_json(cli("status", "--home", str(home), "--json"))
    # plain tool output is searchable by BM25 but not embedded
    assert status["sessions"] == 4 and status["chunks"] == doc["chunks"] + memories
    assert status["memories"] == memories
    assert status["embedded_chunks"] == doc["chunks_embedded"]
    assert status["db_bytes"] > 0
    assert status["recall_auto_mode"] == "retrieve" and status["recall_auto_why"] == "no trained adapter yet"


def test_batch_queries_print_one_document_per_line(tmp_path):
    home = tmp_path / "home"
    cli("ingest", "--home", str(home), "--claude-dir", str(OWN_FIXTURES), "--no-embed", "--json")
    queries = tmp_path / "q.txt"
    queries.write_text("coupon KeyError\n\nFastAPI routers\nSQLAlchemy request scope\n")
    out = cli("search", "--queries", str(queries), "--home", str(home), "--json").stdout.decode().splitlines()
    docs = [orjson.loads(line) for line in out]
    assert [d["query"] for d in docs] == ["coupon KeyError", "FastAPI routers", "SQLAlchemy request scope"]
    assert all(d["hits"] for d in docs)


def test_lmm_home_environment_and_paths(tmp_path):
    home = tmp_path / "envhome"
    path = OWN_FIXTURES / "-srv-api"
    doc = one_json(cli("ingest", str(path), "--json", env={"LMM_HOME": str(home)}))
    assert doc["files"] == 2 and (home / "store.db").exists() and (home / "archive").is_dir()


def test_clear_errors(tmp_path):
    home = tmp_path / "home"
    missing = cli("ingest", str(tmp_path / "nope"), "--home", str(home), "--json", check=False)
    assert missing.returncode == 1
    assert orjson.loads(missing.stdout)["errors"] == [f"{tmp_path / 'nope'}: no such file or folder"]
    bad = cli("search", "--home", str(home), check=False)
    assert bad.returncode == 2 and b"give a QUERY" in bad.stderr
    (home).mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("embed_modle = 'x'\n")
    typo = cli("status", "--home", str(home), check=False)
    assert typo.returncode == 2 and b"unknown setting" in typo.stderr and b"Traceback" not in typo.stderr


def test_models_alone_lists_the_versions(tmp_path):
    """`lmm-mcp models` is what a person types first: it lists, as `models list` does, instead of an argparse
    error; `use` still needs its VERSION."""
    home = str(tmp_path / "home")
    alone = cli("models", "--home", home)
    assert alone.returncode == 0 and b"no adapter versions yet" in alone.stdout
    assert one_json(cli("models", "--home", home, "--json")) == {"versions": []}
    use = cli("models", "use", "--home", home, check=False)
    assert use.returncode == 2 and b"needs a VERSION" in use.stderr


def test_recall_from_the_shell(tmp_path):
    home = str(tmp_path / "home")
    cli("ingest", "--home", home, "--claude-dir", str(OWN_FIXTURES), "--no-embed")
    doc = one_json(cli("recall", "KeyError coupon", "--home", home, "--project", "/home/dev/shop", "--json"))
    assert set(doc) == {"memory", "sources", "mode_used", "adapter_version", "latency_ms", "project"}
    assert doc["mode_used"] == "retrieve" and doc["sources"] and doc["project"] == "/home/dev/shop"
    assert {"n", "session_id", "uuid", "timestamp", "project", "snippet", "score"} <= set(doc["sources"][0])
    assert "coupon" in doc["memory"]


def test_memories_lists_by_project_and_category_with_what_superseded_them(tmp_path):
    from lmm_mcp.samples import samples_path

    home = str(tmp_path / "home")
    cli("ingest", "--home", home, "--claude-dir", str(samples_path()), "--no-embed", "--json")
    everything = one_json(cli("memories", "--home", home, "--all", "--json"))["memories"]
    current = one_json(cli("memories", "--home", home, "--json"))["memories"]
    assert len(current) < len(everything) and all(m["superseded_by"] is None for m in current)
    for m in everything:
        assert {"key", "category", "text", "project", "sources", "superseded_by"} <= set(m)
        assert m["sources"] and all("session_id" in s and "uuid" in s for s in m["sources"])

    api = one_json(cli("memories", "--home", home, "--project", "tasklane-api", "--all", "--json"))[
        "memories"
    ]
    assert api and {m["project"] for m in api} == {"/home/dev/code/tasklane-api"}
    decisions = one_json(
        cli(
            "memories",
            "--home",
            home,
            "--project",
            "tasklane-api",
            "--category",
            "decision",
            "--all",
            "--json",
        )
    )["memories"]
    old = [m for m in decisions if m["superseded_by"]]
    assert decisions and all(m["category"] == "decision" for m in decisions)
    assert any("SQLite" in m["text"] and "PostgreSQL" in m["superseded_by"]["text"] for m in old)

    text = cli("memories", "--home", home, "--category", "decision", "--all").stdout.decode()
    assert "superseded by: Decision for tasklane-api: PostgreSQL" in text
    assert one_json(cli("memories", "--home", home, "--project", "no-such-project", "--json")) == {
        "memories": []
    }
