"""Expanding a citation (`lmm_mcp.sources`) and counting what memory costs in tokens (`lmm_mcp.usage`).

Real transcripts ingested into a real SQLite store; the hook runs as its own process.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import orjson
import pytest
from conftest import conversation, record, write_jsonl
from test_injection import BILLING, INJECTION, _session_with_a_poisoned_page

from lmm_mcp import usage
from lmm_mcp.config import Config
from lmm_mcp.ingest import Ingester
from lmm_mcp.memories import refresh_memories
from lmm_mcp.recall import THIRD_PARTY_LABEL
from lmm_mcp.sources import RECORD_CHARS, SourceError, record_chars, source_context
from lmm_mcp.store import connect


@pytest.fixture
def store(tmp_path):
    cfg = Config.load(home=tmp_path / "home", claude_dir=tmp_path / "projects")
    write_jsonl(cfg.claude_dir / "-work-billing" / "sess-web.jsonl", _session_with_a_poisoned_page())
    long_reply = "The flaky importer test failed on the retry path. " * 200
    talk = conversation("sess-talk", 8, cwd="/work/app")
    talk.append(
        record("talk-long", long_reply, role="assistant", session="sess-talk", parent=talk[-1]["uuid"])
    )
    write_jsonl(cfg.claude_dir / "-work-app" / "sess-talk.jsonl", talk)
    conn = connect(cfg.db_path)
    assert not Ingester(cfg, conn).ingest().errors
    refresh_memories(conn)
    yield cfg, conn
    conn.close()


def test_a_record_comes_with_its_neighbours_in_session_order(store):
    _cfg, conn = store
    ctx = source_context(conn, "sess-talk", "sess-talk-u3", around=2)
    uuids = [r.uuid for r in ctx.records]
    assert uuids == ["sess-talk-u2", "sess-talk-a2", "sess-talk-u3", "sess-talk-a3", "sess-talk-u4"]
    assert [r.cited for r in ctx.records] == [False, False, True, False, False]
    total = conn.execute("SELECT count(*) FROM turns WHERE session_key = 'sess-talk'").fetchone()[0]
    assert ctx.before + len(ctx.records) + ctx.after == total and ctx.before == 4
    assert ctx.project == "/work/app" and ctx.session_key == "sess-talk"
    assert [r.role for r in ctx.records] == ["user", "assistant", "user", "assistant", "user"]

    edge = source_context(conn, "sess-talk", "sess-talk-u0", around=3)
    assert edge.records[0].cited and edge.before == 0 and len(edge.records) == 4
    alone = source_context(conn, "sess-talk", "sess-talk-u0", around=0)
    assert [r.uuid for r in alone.records] == ["sess-talk-u0"]


def test_long_records_are_clipped_and_bad_requests_say_why(store):
    _cfg, conn = store
    ctx = source_context(conn, "sess-talk", "talk-long", around=0)
    assert len(ctx.records[0].text) == RECORD_CHARS and ctx.records[0].text.endswith("…")
    with pytest.raises(SourceError, match="no record"):
        source_context(conn, "sess-talk", "not-a-uuid")
    with pytest.raises(SourceError, match="no record"):
        source_context(conn, "sess-web", "sess-talk-u3")  # a real uuid, but of another session
    with pytest.raises(SourceError, match="between 0 and"):
        source_context(conn, "sess-talk", "sess-talk-u3", around=11)
    with pytest.raises(SourceError, match="session_id and uuid"):
        source_context(conn, " ", "sess-talk-u3")


def test_third_party_records_are_labelled_and_neutralised(store):
    _cfg, conn = store
    ctx = source_context(conn, "sess-web", "r1", around=1)
    page = next(r for r in ctx.records if r.uuid == "r1")
    assert page.origin == "third_party" and page.tool_results
    shown = page.tool_results[0]
    assert shown.startswith(THIRD_PARTY_LABEL) and "Deploying billing" in shown
    assert "evil.example" not in shown and "ignore your instructions" not in shown
    assert INJECTION not in json.dumps(ctx.as_dict())
    call = next(r for r in ctx.records if r.uuid == "a1")
    assert call.tool_calls == ["WebFetch: https://wiki.example/billing/deploy"]
    own = source_context(conn, "sess-web", "r2", around=0).records[0]
    assert own.origin == "project" and own.tool_results == ["make test\n42 passed in 3.1s"]


def test_record_chars_counts_each_cited_record_once(store):
    _cfg, conn = store
    one = record_chars(conn, [("sess-talk", "talk-long", "chunk")])
    assert one >= len("The flaky importer test failed on the retry path. " * 200) - 1
    assert record_chars(conn, [("sess-talk", "talk-long", "chunk")] * 3) == one
    assert record_chars(conn, [("sess-talk", "nope", "chunk"), ("", "", "chunk")]) == 0
    # A memory stands for every record it was read from, not only the one its chunk cites.
    key, sources, sid, uuid = conn.execute(
        "SELECT m.key, m.sources, c.session_id, c.uuid FROM memories m JOIN chunks c ON c.id = m.chunk_id"
        " WHERE json_array_length(m.sources) > 1 LIMIT 1"
    ).fetchone()
    alone = record_chars(conn, [(sid, uuid, "chunk")])
    every = [(s["session_id"], s["uuid"], "chunk") for s in orjson.loads(sources)]
    assert record_chars(conn, [(sid, uuid, "memory")]) == record_chars(conn, [*every, (sid, uuid, "chunk")])
    assert record_chars(conn, [(sid, uuid, "memory")]) > alone, key


def test_usage_sums_per_channel_and_survives_a_torn_line(tmp_path):
    home = tmp_path / "home"
    usage.record(home, "recall_memory", served_chars=400, source_chars=4000)
    usage.record(home, "recall_memory", served_chars=399, source_chars=0)
    usage.record(home, "session_start", served_chars=1000, source_chars=None)
    with open(home / usage.FILE, "ab") as fh:
        fh.write(b'\n{"t": 1, "channel": "user_pro')  # a writer killed mid-line
    usage.record(home, "user_prompt", served_chars=81, source_chars=800)
    s = usage.summary(home)
    assert s["channels"]["recall_memory"] == {"calls": 2, "tokens_served": 200, "tokens_of_sources": 1000}
    assert s["channels"]["session_start"] == {"calls": 1, "tokens_served": 250, "tokens_of_sources": 0}
    assert s["channels"]["user_prompt"] == {"calls": 1, "tokens_served": 21, "tokens_of_sources": 200}
    assert s["tokens_served"] == 471 and s["tokens_of_sources"] == 1200 and s["since"]
    assert s["served_per_source_token"] == round(221 / 1200, 4)  # SessionStart cites no records
    with pytest.raises(ValueError):
        usage.record(home, "elsewhere", served_chars=1, source_chars=None)
    assert usage.summary(tmp_path / "empty")["tokens_served"] == 0


def _hook(cfg: Config, event: str, payload: dict) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "lmm_mcp", "hook", event, "--home", str(cfg.home)],
        input=orjson.dumps(payload),
        capture_output=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)["hookSpecificOutput"]["additionalContext"]


def test_the_hooks_count_what_they_inject(store):
    cfg, _conn = store
    asked = _hook(
        cfg,
        "user-prompt",
        {"prompt": "why did the flaky importer test fail on the retry path?", "cwd": "/work/app"},
    )
    started = _hook(cfg, "session-start", {"session_id": "new", "cwd": BILLING, "source": "startup"})
    rows = [orjson.loads(x) for x in (cfg.home / usage.FILE).read_bytes().splitlines() if x]
    assert [r["channel"] for r in rows] == ["user_prompt", "session_start"]
    assert rows[0]["served"] == math.ceil(len(asked) / usage.CHARS_PER_TOKEN)
    assert rows[0]["sources"] > rows[0]["served"]  # the long reply it cites, counted whole
    assert rows[1]["served"] == math.ceil(len(started) / usage.CHARS_PER_TOKEN) and rows[1]["sources"] is None
