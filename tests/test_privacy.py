"""Privacy controls through the real store, archive and CLI: `<private>` spans, excluded projects, the archive
read back, `rebuild`, `forget`, `export` and `import`.

Each check looks where the data could hide: the archive's gzip files, the tables, the FTS index, the vectors,
the memories, and the raw bytes of the SQLite file.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import orjson
import pytest
from conftest import OWN_FIXTURES, SHARED_FIXTURES, conversation, needs_shared, record, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from lmm_mcp import ingest as ingest_module
from lmm_mcp.app import App
from lmm_mcp.config import Config, ConfigError
from lmm_mcp.ingest import Ingester
from lmm_mcp.privacy import drop_private, excluded
from lmm_mcp.store import connect

SECRET = "zanzibarquux"  # one word that must end up nowhere


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "lmm_mcp", *args],
        capture_output=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def cli_json(*args: str) -> dict:
    return orjson.loads(cli(*args, "--json").stdout)


def archived_bytes(home: Path) -> bytes:
    """Everything under the archive, gzip copies decompressed."""
    files = sorted(p for p in (home / "archive").rglob("*") if p.is_file())
    return b"".join(gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes() for p in files)


def store_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.glob("store.db*"))


def contents(db: Path) -> dict[str, list]:
    """What a store knows, without row ids (which differ between two stores holding the same)."""
    conn = sqlite3.connect(db)
    try:
        return {
            "sessions": sorted(
                conn.execute(
                    "SELECT s.key, s.session_id, s.agent_id, s.agent_type, s.description, s.parent_tool_use_id,"
                    " s.title, p.path, s.git_branch, s.version, s.started_at, s.ended_at"
                    " FROM sessions s LEFT JOIN projects p ON p.id = s.project_id"
                )
            ),
            "turns": sorted(
                conn.execute("SELECT session_key, uuid, role, kind, text, tool_calls FROM turns")
            ),
            "chunks": sorted(conn.execute("SELECT session_key, uuid, kind, text, ctx FROM chunks")),
            "memories": sorted(conn.execute("SELECT key, text, salience, sources FROM memories")),
        }
    finally:
        conn.close()


def fts_hits(conn: sqlite3.Connection, word: str) -> int:
    return conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (word,)).fetchone()[0]


# ----------------------------------------------------------------------------------------- <private>


def test_private_spans_reach_neither_archive_nor_store(cfg, conn):
    records = [
        record("u1", f"deploy with make ship <private>my {SECRET} salary</private> then check logs"),
        record("a1", f"Noted. <PRIVATE>unclosed {SECRET} span", role="assistant", parent="u1"),
        record("u2", "what about <private>a</private> the <private>b</private> tags", parent="a1"),
    ]
    write_jsonl(cfg.claude_dir / "-work-app" / "s1.jsonl", records)
    report = Ingester(cfg, conn).ingest()
    assert report.turns == 3 and report.private_spans == 4
    assert SECRET.encode() not in archived_bytes(cfg.home) and b"private>" not in archived_bytes(cfg.home)
    texts = [r[0] for r in conn.execute("SELECT text FROM turns ORDER BY id")]
    assert texts[0].startswith("deploy with make ship") and texts[0].endswith("then check logs")
    assert texts[1] == "Noted." and texts[2] == "what about  the  tags"
    assert not any(SECRET in t for (t,) in conn.execute("SELECT text || ctx FROM chunks"))
    assert fts_hits(conn, SECRET) == 0 and fts_hits(conn, "ship") > 0
    assert SECRET.encode() not in store_bytes(cfg.home)


def test_a_personal_chat_keeps_what_the_user_said_of_themselves_but_not_their_password(cfg, conn):
    """In a chat about life rather than code, the user's own statements become memories; a password they
    mention in passing reaches neither the archive, the store nor a memory."""
    from lmm_mcp.memories import refresh_memories

    password, cwd = "Summer2024!", "/home/me/chat"
    records = [
        record("u1", "I've been vegetarian for about three years now. Can you suggest five dinners?", cwd=cwd),
        record("a1", "Chickpea curry, mushroom risotto, bean tacos, lentil pie and a tofu stir-fry.", role="assistant", parent="u1", cwd=cwd),
        record("u2", f"Thanks. My password for the meal-planner site is {password}, log in and save them.", parent="a1", cwd=cwd),
    ]  # fmt: skip
    write_jsonl(cfg.claude_dir / "-home-me-chat" / "s1.jsonl", records)
    Ingester(cfg, conn).ingest()
    refresh_memories(conn)
    memories = [t for (t,) in conn.execute("SELECT text FROM memories")]
    assert "In chat: I've been vegetarian for about three years now." in memories
    assert password.encode() not in store_bytes(cfg.home) and password.encode() not in archived_bytes(
        cfg.home
    )
    assert any("[REDACTED:prose-secret]" in t for (t,) in conn.execute("SELECT text FROM turns"))


@settings(max_examples=200, deadline=None)
@given(
    before=st.text(),
    inside=st.text().filter(lambda s: "</private>" not in s.lower()),
    after=st.text(),
    closed=st.booleans(),
)
def test_drop_private_cuts_every_span_and_keeps_the_rest(before, inside, after, closed):
    text = f"{before}<private>{inside}{SECRET}{'</private>' if closed else ''}{after}"
    line = orjson.dumps({"type": "user", "message": {"content": [{"type": "text", "text": text}]}})
    out, spans = drop_private(line)
    kept = orjson.loads(out)["message"]["content"][0]["text"]  # still valid JSON, same shape
    assert spans >= 1 and SECRET not in kept
    if "<private>" in before.lower():
        return  # the span starts earlier; what is asserted above still holds
    if not closed:
        assert kept == before  # an open span runs to the end of its text
    elif "<private>" not in after.lower():
        assert kept == before + after


# ----------------------------------------------------------------------------------------- exclusions


def test_excluded_projects_and_their_folders_are_never_stored(tmp_path):
    home, claude = tmp_path / "home", tmp_path / "projects"
    home.mkdir()
    (home / "config.toml").write_text('exclude_projects = ["/work/secret/"]\n')
    cfg = Config.load(home=home, claude_dir=claude)
    assert cfg.exclude_projects == ("/work/secret",)
    write_jsonl(claude / "-work-secret" / "s1.jsonl", conversation("s1", 2, cwd="/work/secret", words=SECRET))
    title = {"type": "summary", "summary": f"{SECRET} title", "leafUuid": "s1-a1"}  # no cwd: its folder rules
    write_jsonl(claude / "-work-secret" / "s1.jsonl", [title], mode="ab")
    sub = conversation("s2", 2, cwd="/work/secret/sub/dir", words=SECRET)
    write_jsonl(claude / "-work-secret-sub-dir" / "s2.jsonl", sub)
    write_jsonl(claude / "-work-secretive" / "s3.jsonl", conversation("s3", 2, cwd="/work/secretive"))
    write_jsonl(claude / "-work-app" / "s4.jsonl", conversation("s4", 2, cwd="/work/app"))
    with App.open(cfg) as app:
        report = app.ingest(embed=False)
        keys = {r[0] for r in app.conn.execute("SELECT key FROM sessions")}
        assert fts_hits(app.conn, SECRET) == 0
    assert keys == {"s3", "s4"}  # a sibling whose name only starts alike is not excluded
    assert report.lines_excluded == 9 and report.errors == []
    assert SECRET.encode() not in archived_bytes(home) and SECRET.encode() not in store_bytes(home)


@pytest.mark.parametrize("value", ['"/work/x"', '["relative/path"]', "[1]"])
def test_exclude_projects_must_be_a_list_of_absolute_paths(tmp_path, value):
    (tmp_path / "config.toml").write_text(f"exclude_projects = {value}\n")
    with pytest.raises(ConfigError, match="exclude_projects"):
        Config.load(home=tmp_path)


def test_excluded_matches_the_path_and_folders_under_it_only():
    projects = ("/work/secret",)
    assert excluded("/work/secret", projects) and excluded("/work/secret/a/b", projects)
    assert not excluded("/work/secretive", projects) and not excluded("/work", projects)
    assert not excluded(None, projects) and not excluded("/work/secret", ())


# ----------------------------------------------------------------------------------------- archive read back


def test_ingest_reads_the_archive_and_never_archives_it_again(cfg, tmp_path):
    path = write_jsonl(cfg.claude_dir / "-work-app" / "s1.jsonl", conversation("s1", 3))
    conn = connect(cfg.db_path)
    Ingester(cfg, conn).ingest()
    write_jsonl(path, conversation("s1", 5)[6:], mode="ab")  # a second gzip member
    Ingester(cfg, conn).ingest()
    conn.close()
    before = {p: p.read_bytes() for p in cfg.archive_dir.rglob("*") if p.is_file()}
    for p in cfg.home.glob("store.db*"):
        p.unlink()
    doc = cli_json("ingest", "--home", str(cfg.home), str(cfg.archive_dir), "--no-embed")
    assert doc["files"] == 1 and doc["turns"] == 10 and doc["errors"] == []
    after = {p: p.read_bytes() for p in cfg.archive_dir.rglob("*") if p.is_file()}
    assert after == before  # read, not copied again
    again = cli_json("ingest", "--home", str(cfg.home), str(cfg.archive_dir), "--no-embed")
    assert again["files_changed"] == 0  # an unchanged archive file costs a stat
    # The live transcript is read next: its copy gets a new generation, the one read back stays whole.
    doc = cli_json("ingest", "--home", str(cfg.home), "--claude-dir", str(cfg.claude_dir), "--no-embed")
    assert doc["turns"] == 0
    names = sorted(p.name for p in cfg.archive_dir.rglob("*.gz"))
    assert (
        names == ["s1.jsonl.2.gz", "s1.jsonl.gz"]
        and (cfg.archive_dir / "-work-app" / "s1.jsonl.gz").read_bytes()
        == before[cfg.archive_dir / "-work-app" / "s1.jsonl.gz"]
    )


def test_a_large_archive_copy_is_read_in_segments_and_resumed_when_it_grows(cfg, monkeypatch):
    monkeypatch.setattr(ingest_module, "SEGMENT_BYTES", 2000)  # many segments from a small file
    path = write_jsonl(cfg.claude_dir / "-work-app" / "s1.jsonl", conversation("s1", 20))
    with App.open(cfg) as app:
        app.ingest(embed=False)
    copy = next(cfg.archive_dir.rglob("*.gz"))
    other = Config(**{**cfg.__dict__, "home": cfg.home.parent / "other"})
    with App.open(other) as app:
        first = app.ingest([copy], embed=False)
        assert first.turns == 40
        size = app.conn.execute("SELECT size FROM files").fetchone()[0]
        assert size == copy.stat().st_size  # read to its end: the next ingest costs a stat
        write_jsonl(path, conversation("s1", 25)[40:], mode="ab")
        with App.open(cfg) as source:  # the source home appends a member to the copy
            source.ingest(embed=False)
        grown = app.ingest([copy], embed=False)
        assert grown.turns == 10 and grown.lines == 10  # only the new lines: resumed, not re-read
        assert app.conn.execute("SELECT count(*) FROM turns").fetchone()[0] == 50


def test_a_damaged_archive_copy_keeps_the_lines_before_the_damage(cfg, tmp_path):
    good = gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in conversation("s1", 2)))
    damaged = gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in conversation("s1", 4)[4:]))
    copy = tmp_path / "elsewhere" / "-work-app" / "s1.jsonl.gz"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(good + damaged[:20] + b"\x00" * 40 + damaged[60:])
    with App.open(cfg) as app:
        report = app.ingest([copy.parent.parent], embed=False)
    assert report.turns == 4 and report.lines_skipped == 1 and "damaged" in report.skipped[0]["reason"]


@needs_shared
def test_rebuild_after_deleting_the_store_gives_the_same_memory(tmp_path):
    home, claude = tmp_path / "home", tmp_path / "projects"
    shutil.copytree(SHARED_FIXTURES, claude / "shared")
    shutil.copytree(OWN_FIXTURES, claude, dirs_exist_ok=True)
    cli("ingest", "--home", str(home), "--claude-dir", str(claude), "--no-embed")
    cli("forget", "--home", str(home), "--session", "11111111-2222-4333-8444-555555555555")
    before = contents(home / "store.db")
    assert len(before["sessions"]) == 8 and len(before["memories"]) > 5
    refused = cli("rebuild", "--home", str(home), "--no-embed", check=False)
    assert refused.returncode == 2 and b"--force" in refused.stderr
    shutil.rmtree(claude)  # Claude Code deleted its transcripts: the archive is all there is
    for p in home.glob("store.db*"):
        p.unlink()
    copies = archived_bytes(home)
    doc = cli_json("rebuild", "--home", str(home), "--no-embed")
    assert doc["errors"] == [] and doc["sessions"] == 8
    assert contents(home / "store.db") == before and archived_bytes(home) == copies  # read, not re-archived
    # --force replaces a full store, and its tombstones carry over to the new one
    conn = sqlite3.connect(home / "store.db")
    conn.execute("INSERT INTO forgotten VALUES ('7f3c1e2a-0000-4000-8000-00000000c0de', 'now')")
    conn.commit()
    conn.close()
    doc = cli_json("rebuild", "--home", str(home), "--no-embed", "--force")
    assert doc["sessions"] == 6 and (home / "store.db.replaced").exists()


# ----------------------------------------------------------------------------------------- forget


def _two_sessions(claude: Path) -> None:
    write_jsonl(
        claude / "-work-app" / "keep.jsonl", conversation("keep", 3, cwd="/work/app", words="pipeline")
    )
    gone = conversation("gone", 3, cwd="/work/app/sub", words=f"{SECRET} pipeline")
    gone.append(
        record(
            "gone-tool",
            "",
            parent="gone-a2",
            session="gone",
            cwd="/work/app/sub",
            blocks=[{"type": "text", "text": f"I always use {SECRET} for deploys, we decided"}],
        )
    )
    write_jsonl(claude / "-work-app-sub" / "gone.jsonl", gone)
    agent = [
        record(
            "g-agent-1",
            f"sub-agent on {SECRET}",
            session="gone",
            cwd="/work/app/sub",
            isSidechain=True,
            agentId="x1",
        )
    ]
    write_jsonl(claude / "-work-app-sub" / "gone" / "subagents" / "agent-x1.jsonl", agent)
    meta = {"agentType": "Explore", "description": f"look into {SECRET}", "toolUseId": "toolu_1"}
    (claude / "-work-app-sub" / "gone" / "subagents" / "agent-x1.meta.json").write_bytes(orjson.dumps(meta))


def test_forget_a_session_leaves_nothing_and_it_does_not_come_back(tmp_path):
    from trainer.versions import publish

    home, claude = tmp_path / "home", tmp_path / "projects"
    _two_sessions(claude)
    cfg = Config.load(home=home, claude_dir=claude)
    with App.open(cfg) as app:
        report = app.ingest()  # real vectors, from the real embedder
        assert report.embed_error is None and report.chunks_embedded > 0
        assert fts_hits(app.conn, SECRET) > 0
    server = App.open(cfg)  # a running server: its vector index is in memory
    assert "gone" in _found(server, "deploys we decided") and "gone" in _found(
        server, "vector", mode="vector"
    )
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    publish(cfg.models_dir, adapter, config={}, metrics={})
    for run in ("r-20260901-000000", "r-20261002-000000"):  # made before the session began, and after
        (home / "runs" / run / "data").mkdir(parents=True)
        (home / "runs" / run / "data" / "sft.jsonl").write_text(SECRET if run > "r-20261001" else "")

    stray = home / "archive" / "-work-app-sub" / "gone.jsonl.7.gz"  # a copy this store never read
    stray.write_bytes(gzip.compress(SECRET.encode() + b"\n"))

    doc = cli_json("forget", "--home", str(home), "--session", "gone")
    assert doc["sessions"] == ["gone"] and doc["transcripts"] == 2 and doc["turns"] == 8
    assert doc["archive_files"] == 4 and len(doc["stale_adapters"]) == 1 and not stray.exists()
    assert doc["runs_removed"] == ["r-20261002-000000"] and not (home / "runs" / "r-20261002-000000").exists()
    assert (home / "runs" / "r-20260901-000000").exists()
    conn = connect(cfg.db_path)
    for table in ("sessions", "turns", "chunks", "record_uuids", "session_memories", "files"):
        column = "key" if table == "sessions" else "session_key"
        left = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} LIKE 'gone%'").fetchone()[0]
        assert left == 0, table
    assert conn.execute("SELECT count(*) FROM turns WHERE session_key = 'keep'").fetchone()[0] == 6
    assert fts_hits(conn, SECRET) == 0 and fts_hits(conn, "pipeline") > 0
    orphans = "SELECT count(*) FROM vectors WHERE chunk_id NOT IN (SELECT id FROM chunks)"
    assert conn.execute(orphans).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM vectors").fetchone()[0] > 0  # the kept session's stay
    sources = " ".join(r[0] + r[1] for r in conn.execute("SELECT text, sources FROM memories"))
    assert "gone" not in sources and SECRET not in sources
    assert conn.execute("SELECT count(*) FROM projects WHERE path = '/work/app/sub'").fetchone()[0] == 0
    conn.close()
    assert SECRET.encode() not in archived_bytes(home) and SECRET.encode() not in store_bytes(home)
    assert "gone" not in _found(server, "deploys we decided") | _found(server, "vector", mode="vector")
    server.close()

    # The transcript is still under ~/.claude/projects, and grows: the tombstone keeps it out.
    write_jsonl(
        claude / "-work-app-sub" / "gone.jsonl", conversation("gone", 5, cwd="/work/app/sub")[6:], mode="ab"
    )
    doc = cli_json("ingest", "--home", str(home), "--claude-dir", str(claude), "--no-embed")
    assert doc["turns"] == 0 and doc["errors"] == []
    assert SECRET.encode() not in archived_bytes(home)
    assert not any("gone" in p.name for p in (home / "archive").rglob("*.gz"))
    conn = connect(cfg.db_path)
    assert conn.execute("SELECT count(*) FROM sessions WHERE session_id = 'gone'").fetchone()[0] == 0
    conn.close()
    assert _status(cfg)["adapter_stale"]


def test_a_stale_adapter_is_not_continued_by_the_next_retrain(tmp_path):
    from trainer.pipeline import PipelineConfig, PipelineError, start_version
    from trainer.versions import mark_stale, publish

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    models = tmp_path / "home" / "models"
    publish(models, adapter, config={}, metrics={})
    cfg = PipelineConfig(home=tmp_path / "home", from_version="active")
    assert start_version(cfg) is not None
    assert mark_stale(models, None, "sessions were forgotten") != []
    with pytest.raises(PipelineError, match="stale"):
        start_version(cfg)


def _found(app: App, query: str, mode: str = "zscore") -> set[str]:
    """The sessions a search through this App finds (the vector mode ranks every embedded chunk)."""
    hits = app.retriever(fusion=mode).retrieve(query, k=50)
    return {h.session_id for h in hits}


def _status(cfg: Config) -> dict:
    """memory_status through the real MCP server, in process."""
    from mcp import Client

    from lmm_mcp.server import build_server

    async def ask() -> dict:
        async with Client(build_server(cfg)) as client:
            result = await client.call_tool("memory_status", {})
            assert not result.is_error, result.content
            return result.structured_content

    return asyncio.run(ask())


def test_forget_a_project_or_everything_before_a_date(tmp_path):
    home, claude = tmp_path / "home", tmp_path / "projects"
    _two_sessions(claude)
    old = [record("old-u", "an old question", session="old", cwd="/work/other", ts="2026-01-05T10:00:00Z")]
    write_jsonl(claude / "-work-other" / "old.jsonl", old)
    cli("ingest", "--home", str(home), "--claude-dir", str(claude), "--no-embed")

    doc = cli_json("forget", "--home", str(home), "--before", "2026-02-01")
    assert doc["sessions"] == ["old"] and doc["turns"] == 1
    doc = cli_json("forget", "--home", str(home), "--project", "/work/app/sub")
    assert doc["sessions"] == ["gone"]
    conn = connect(home / "store.db")
    assert [r[0] for r in conn.execute("SELECT key FROM sessions")] == ["keep"]  # the parent folder stays
    conn.close()
    doc = cli_json("forget", "--home", str(home), "--project", "/work/app")
    assert doc["sessions"] == ["keep"] and not list((home / "archive").rglob("*.gz"))
    assert cli("forget", "--home", str(home), "--before", "yesterday", check=False).returncode == 2
    assert cli("forget", "--home", str(home), check=False).returncode == 2  # names nothing


# ----------------------------------------------------------------------------------------- export / import


def test_export_while_a_writer_holds_the_store_then_import_elsewhere(tmp_path):
    from trainer.versions import active_version, publish

    home, claude, moved = tmp_path / "home", tmp_path / "projects", tmp_path / "new-machine"
    (tmp_path / "disk").mkdir()
    home.symlink_to(tmp_path / "disk")  # paths the store wrote (via the link) and read (resolved) differ
    shutil.copytree(OWN_FIXTURES, claude)
    cli("ingest", "--home", str(home), "--claude-dir", str(claude), "--no-embed")
    cli("ingest", "--home", str(home), str(home / "archive"), "--no-embed")  # rows for the copies read back
    (home / "config.toml").write_text('exclude_projects = ["/work/secret"]\n')
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    publish(home / "models", adapter, config={}, metrics={})
    (home / "models" / "base" / "huge").mkdir(parents=True)  # the base model cache stays behind
    before = contents(home / "store.db")

    writer = sqlite3.connect(home / "store.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO projects(path, name) VALUES ('/half/written', 'written')")
    exported = tmp_path / "out" / "lmm.tar.gz"
    done = threading.Event()
    result: dict = {}

    def run() -> None:
        result["proc"] = cli("export", "--home", str(home), str(exported), "--json", check=False)
        done.set()

    threading.Thread(target=run).start()
    assert done.wait(120)  # a pending write does not block the snapshot
    writer.execute("COMMIT")
    writer.close()
    assert result["proc"].returncode == 0, result["proc"].stderr
    with tarfile.open(exported) as tar:
        names = tar.getnames()
    assert (
        "store.db" in names and "config.toml" in names and not any(n.startswith("models/base") for n in names)
    )

    doc = cli_json("import", "--home", str(moved), str(exported))
    assert doc["paths_rewritten"] > 0
    assert contents(moved / "store.db") == before  # the committed state, without the half-written row
    conn = sqlite3.connect(moved / "store.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM projects WHERE path = '/half/written'").fetchone()[0] == 0
    copies = [Path(p) for (p,) in conn.execute("SELECT archive_path FROM files")]
    read_back = [Path(p) for (p,) in conn.execute("SELECT path FROM files WHERE path LIKE '%.gz'")]
    conn.close()
    assert len(copies) == 8 and all(p.is_relative_to(moved / "archive") and p.exists() for p in copies)
    assert len(read_back) == 4 and all(p.is_relative_to(moved / "archive") for p in read_back)
    archive_before = archived_bytes(moved)
    doc = cli_json("ingest", "--home", str(moved), str(moved / "archive"), "--no-embed")
    assert doc["turns"] == 0 and doc["errors"] == [] and archived_bytes(moved) == archive_before
    assert active_version(moved / "models") is not None
    assert Config.load(home=moved).exclude_projects == ("/work/secret",)
    doc = cli_json("rebuild", "--home", str(moved), "--no-embed", "--force")  # the archive came along
    assert contents(moved / "store.db")["turns"] == before["turns"]

    again = cli("import", "--home", str(moved), str(exported), check=False)
    assert again.returncode == 2 and b"new home" in again.stderr


def test_import_refuses_a_file_that_is_not_an_export(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("archive/../../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    proc = cli("import", "--home", str(tmp_path / "home"), str(evil), check=False)
    assert proc.returncode == 2 and not (tmp_path / "escaped.txt").exists()
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        info = tarfile.TarInfo("etc/passwd")
        tar.addfile(info, io.BytesIO(b""))
    proc = cli("import", "--home", str(tmp_path / "home"), str(other), check=False)
    assert proc.returncode == 2 and b"not an lmm-mcp export" in proc.stderr


def test_import_refuses_a_store_newer_than_this_lmm_mcp(tmp_path):
    newer = tmp_path / "newer.tar.gz"
    with tarfile.open(newer, "w:gz") as tar:
        for name, data in (
            ("manifest.json", b'{"format": 1, "home": "/x", "schema": 999}'),
            ("store.db", b""),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    proc = cli("import", "--home", str(tmp_path / "home"), str(newer), check=False)
    assert (
        proc.returncode == 2 and b"upgrade" in proc.stderr and not (tmp_path / "home" / "store.db").exists()
    )


_LINE = st.one_of(
    st.builds(
        lambda i, text: orjson.dumps(record(f"u{i}", text, session="s1")) + b"\n",
        st.integers(0, 30),
        st.text(max_size=200),
    ),
    st.sampled_from([b"\n", b"not json\n", b'{"type": "mystery"}\n', b'{"truncated": \n']),
)


@settings(max_examples=25, deadline=None)
@given(batches=st.lists(st.lists(_LINE, max_size=8), min_size=1, max_size=4))
def test_reading_the_archive_gives_what_reading_the_transcripts_gave(tmp_path_factory, batches):
    """Whatever lines arrive, in however many ingests (one gzip member each), the copies read back alike."""
    root = tmp_path_factory.mktemp("roundtrip")
    first = Config.load(home=root / "a", claude_dir=root / "projects")
    path = root / "projects" / "-work-app" / "s1.jsonl"
    with App.open(first) as app:
        for batch in batches:
            write_jsonl(path, batch, mode="ab")
            app.ingest(embed=False)
    second = Config.load(home=root / "b", claude_dir=root / "projects")
    with App.open(second) as app:
        report = app.ingest([first.archive_dir], embed=False)
    assert report.errors == []
    a, b = contents(first.db_path), contents(second.db_path)
    assert a["turns"] == b["turns"] and a["chunks"] == b["chunks"] and a["sessions"] == b["sessions"]


def test_a_session_forgotten_while_an_ingest_reads_it_is_not_stored(tmp_path, monkeypatch):
    """The tombstone is checked inside the ingest's write transaction, after the lines were read."""
    from lmm_mcp.privacy import forget

    home, claude = tmp_path / "home", tmp_path / "projects"
    _two_sessions(claude)
    cfg = Config.load(home=home, claude_dir=claude)
    read = Ingester._read_segment

    def read_then_forget(self, tf, start, line_no):
        segment = read(self, tf, start, line_no)
        if tf.path.name == "gone.jsonl":
            with App.open(cfg) as other:  # another process's forget, between the read and the write
                assert forget(other, session="gone").sessions == ["gone"]
        return segment

    monkeypatch.setattr(Ingester, "_read_segment", read_then_forget)
    with App.open(cfg) as app:
        report = app.ingest(embed=False)
        keys = [r[0] for r in app.conn.execute("SELECT key FROM sessions")]
    assert keys == ["keep"] and report.errors == []
    assert SECRET.encode() not in archived_bytes(home) and SECRET.encode() not in store_bytes(home)
