"""The SQLite store itself: WAL, schema versions, migrations under concurrency, project lookup."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from lmm_mcp.store import SCHEMA_VERSION, StoreError, connect, project_id, resolve_projects, stats


def test_new_store_is_wal_with_current_schema(tmp_path):
    conn = connect(tmp_path / "store.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 60_000
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {
        "projects",
        "sessions",
        "turns",
        "chunks",
        "chunks_fts",
        "vectors",
        "files",
        "record_uuids",
    } <= tables
    s = stats(conn, tmp_path / "store.db")
    assert (s.sessions, s.turns, s.chunks, s.embedded_chunks) == (0, 0, 0, 0) and s.db_bytes > 0


def test_reopening_does_not_migrate_again(tmp_path):
    path = tmp_path / "store.db"
    conn = connect(path)
    project_id(conn, "/src/app")
    conn.close()
    conn = connect(path)
    assert conn.execute("SELECT path FROM projects").fetchall() == [("/src/app",)]


def test_a_newer_store_is_refused_with_advice(tmp_path):
    path = tmp_path / "store.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer than this lmm-mcp"):
        connect(path)


def test_processes_creating_one_store_at_once_migrate_once(tmp_path):
    path = tmp_path / "store.db"
    code = (
        "import sys; from pathlib import Path; from lmm_mcp.store import connect, project_id;"
        "c = connect(Path(sys.argv[1])); project_id(c, '/p/' + sys.argv[2]); c.close()"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(i)]) for i in range(4)]
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    conn = connect(path)
    assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 4
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_resolve_projects_by_path_prefix_and_name(tmp_path):
    conn = connect(tmp_path / "store.db")
    ids = {p: project_id(conn, p) for p in ("/src/app", "/src/app/backend", "/src/app2", "/src/a_b")}
    assert set(resolve_projects(conn, "/src/app")) == {ids["/src/app"], ids["/src/app/backend"]}
    assert resolve_projects(conn, "app2") == [ids["/src/app2"]]
    assert resolve_projects(conn, "/src/a%") == []  # LIKE wildcards in user text are literal
    assert resolve_projects(conn, "/src/a_b") == [ids["/src/a_b"]]


def test_the_relay_lookup_reads_only_third_party_chunks(conn):
    """Ingest asks, for every assistant reply, for the session's latest third-party outputs: through the partial
    index that holds only those, not a walk over all of a session's chunks (quadratic in a long session)."""
    sql = (
        "EXPLAIN QUERY PLAN SELECT c.turn_id FROM chunks c WHERE c.session_key = ? AND c.origin = 'third_party'"
        " ORDER BY c.id DESC LIMIT 12"
    )
    plan = " ".join(row[3] for row in conn.execute(sql, ("s",)))
    assert "chunks_third_party" in plan, plan


def test_a_hit_finds_its_memory_row_by_index(conn):
    """Every retrieval joins its hits to their memory rows (is it superseded?): by the chunk_id index, not a
    scan of all memories per hit (22 ms a retrieval with 4,000 memories; training retrieves 10,000 times)."""
    sql = (
        "EXPLAIN QUERY PLAN SELECT c.id, m.superseded_by IS NOT NULL FROM chunks c"
        " LEFT JOIN memories m ON m.chunk_id = c.id AND c.kind = 'memory' WHERE c.id IN (?, ?, ?)"
    )
    plan = " ".join(row[3] for row in conn.execute(sql, (1, 2, 3)))
    assert "memories_by_chunk" in plan and "SCAN m" not in plan, plan
