"""The MCP server through a real client: in process (`mcp.Client(server)`) and over stdio (`lmm-mcp serve`).

A temporary home and a transcripts folder of generated sessions; retrain runs a real background training job
of a tiny Qwen3 on the CPU (allowed by the test's config.toml).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from lmm_mcp.config import Config
from lmm_mcp.server import build_server
from trainer.tiny import build_tiny_qwen3
from trainer.versions import active_version

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synth import write_transcripts

TOOLS = {"recall_memory", "get_source", "ingest_session", "retrain", "memory_status"}


@pytest.fixture(scope="module")
def transcripts(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("claude") / "projects"
    write_transcripts(root, 2.0, seed=11, projects=3)
    return root


@pytest.fixture
def cfg(tmp_path, transcripts) -> Config:
    home = tmp_path / "home"
    home.mkdir()
    tiny = build_tiny_qwen3(tmp_path / "tiny")
    (home / "config.toml").write_text(
        f'base_model = "{tiny}"\nallow_cpu_training = true\n'
        'embed_model = "/nonexistent/embedder"\n'  # BM25 only: keeps these tests fast and torch-free
    )
    return Config.load(home=home, claude_dir=transcripts)


def _data(result):
    assert not result.is_error, result.content
    return result.structured_content


async def test_tools_are_listed_with_typed_schemas(cfg):
    async with Client(build_server(cfg)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    recall = tools["recall_memory"]
    assert recall.input_schema["required"] == ["query"]
    assert set(recall.input_schema["properties"]) == {"query", "project", "k", "max_tokens", "mode"}
    assert recall.input_schema["properties"]["mode"]["enum"] == ["auto", "retrieve", "generate"]
    assert set(recall.output_schema["properties"]) >= {
        "memory",
        "sources",
        "mode_used",
        "adapter_version",
        "latency_ms",
    }
    assert set(tools["ingest_session"].input_schema["properties"]) == {"session_id", "path", "all"}
    assert set(tools["retrain"].input_schema["properties"]) >= {"stage", "wait"}
    assert tools["get_source"].input_schema["required"] == ["session_id", "uuid"]
    assert set(tools["get_source"].input_schema["properties"]) == {"session_id", "uuid", "around"}
    for t in tools.values():
        assert t.description and len(t.description) > 60 and t.output_schema


async def test_ingest_then_recall_cites_stored_sessions(cfg, transcripts):
    async with Client(build_server(cfg)) as client:
        ingest = _data(await client.call_tool("ingest_session", {"all": True}))
        assert ingest["files"] > 5 and ingest["turns"] > 100 and ingest["memories"] > 10
        assert any("embedding skipped" in e for e in ingest["errors"])  # the test's embedder does not exist
        again = _data(await client.call_tool("ingest_session", {"all": True}))
        assert again["turns"] == 0

        recall = _data(
            await client.call_tool(
                "recall_memory", {"query": "how do we run the tests", "mode": "retrieve", "k": 5}
            )
        )
        first = recall["sources"][0]
        source = _data(
            await client.call_tool("get_source", {"session_id": first["session_id"], "uuid": first["uuid"]})
        )
        wrong = await client.call_tool("get_source", {"session_id": first["session_id"], "uuid": "nope"})
        status = _data(await client.call_tool("memory_status", {}))
    assert wrong.is_error and "no record" in wrong.content[0].text
    assert source["session_id"] == first["session_id"] and 1 <= len(source["records"]) <= 5
    assert sum(r["cited"] for r in source["records"]) == 1
    cited = next(r for r in source["records"] if r["cited"])
    turn_uuid = (
        sqlite3.connect(cfg.db_path)
        .execute(
            "SELECT t.uuid FROM record_uuids r JOIN turns t ON t.id = r.turn_id WHERE r.uuid = ?",
            (first["uuid"],),
        )
        .fetchone()[0]
    )
    assert cited["uuid"] == turn_uuid and (cited["text"] or cited["tool_calls"] or cited["tool_results"])
    # Tokens: the memory's, the whole reply's, the records it stands for; memory_status adds them up.
    assert recall["tokens"] == -(-len(recall["memory"]) // 4) and recall["reply_tokens"] > recall["tokens"]
    assert recall["source_tokens"] > 0
    spent = status["tokens"]["channels"]
    assert spent["recall_memory"] == {
        "calls": 1,
        "tokens_served": recall["reply_tokens"],
        "tokens_of_sources": recall["source_tokens"],
    }
    assert (
        spent["get_source"]["calls"] == 1 and spent["get_source"]["tokens_served"] == source["reply_tokens"]
    )
    assert status["tokens"]["tokens_served"] == recall["reply_tokens"] + source["reply_tokens"]
    assert recall["mode_used"] == "retrieve" and recall["adapter_version"] is None
    assert recall["memory"].startswith("Recalled from past sessions") and "[1]" in recall["memory"]
    assert 1 <= len(recall["sources"]) <= 5 and [s["n"] for s in recall["sources"]] == list(
        range(1, len(recall["sources"]) + 1)
    )
    conn = sqlite3.connect(cfg.db_path)
    stored = {r[0] for r in conn.execute("SELECT session_id FROM sessions")}
    assert {s["session_id"] for s in recall["sources"]} <= stored
    assert status["sessions"] == len(conn.execute("SELECT key FROM sessions").fetchall())
    assert status["memories"] == ingest["memories"] and status["active_adapter"] is None
    assert status["last_ingest"]


async def test_ingest_by_session_id_and_refusals(cfg, transcripts, tmp_path):
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text('{"type": "user"}\n')
    link = transcripts / "sneaky.jsonl"
    link.symlink_to(outside)
    try:
        async with Client(build_server(cfg)) as client:
            for bad in ({"path": str(outside)}, {"path": str(link)}, {"path": "/etc/passwd"}):
                result = await client.call_tool("ingest_session", bad)
                assert result.is_error and "outside the transcripts folder" in result.content[0].text
            result = await client.call_tool("ingest_session", {})
            assert result.is_error and "exactly one" in result.content[0].text
            session = next(transcripts.glob("*/*.jsonl")).stem
            one = _data(await client.call_tool("ingest_session", {"session_id": session}))
            assert one["files"] >= 1 and one["turns"] > 0
            missing = await client.call_tool(
                "ingest_session", {"session_id": "00000000-0000-0000-0000-000000000000"}
            )
            assert missing.is_error and "no transcript" in missing.content[0].text
    finally:
        link.unlink()


async def test_retrain_runs_reports_progress_and_switches_the_adapter(cfg):
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, total, message))

    async with Client(build_server(cfg)) as client:
        _data(await client.call_tool("ingest_session", {"all": True}))
        first, second = await asyncio.gather(
            client.call_tool("retrain", {"max_steps": 3, "wait": True}, progress_callback=on_progress),
            client.call_tool("retrain", {"max_steps": 3}),
        )
        job, joined = _data(first), _data(second)
        assert job["state"] == "done", job
        # whichever call came second joined the first one's job
        assert joined["job_id"] == job["job_id"] and {job["joined"], joined["joined"]} == {True, False}
        assert job["adapter_version"] == active_version(cfg.models_dir).name
        assert progress and any(m and ("cpt" in m or "sft" in m) for _, _, m in progress)
        status = _data(await client.call_tool("memory_status", {}))
        assert status["active_adapter"] == job["adapter_version"]
        assert status["job"]["job_id"] == job["job_id"] and status["job"]["state"] == "done"
        assert "sft" in status["adapter_metrics"]
        # three steps of a tiny model do not beat retrieval: auto mode keeps retrieving, and says why
        assert status["adapter_metrics"]["eval"]["verdict"]["beats_retrieval"] is False
        assert status["auto_mode"] == "retrieve" and "did not beat retrieval alone" in status["auto_mode_why"]
        generated = _data(
            await client.call_tool("recall_memory", {"query": "how do we run the tests", "mode": "generate"})
        )
        assert generated["mode_used"] in ("generate", "retrieve")  # uncited noise falls back to retrieval
        assert generated["adapter_version"] == job["adapter_version"]
        assert all(f"[{s['n']}]" in generated["memory"] for s in generated["sources"])
        after = _data(await client.call_tool("retrain", {"max_steps": 3}))
        assert after["job_id"] != job["job_id"] and after["joined"] is False  # the lock was released
        while after["state"] == "running":
            await asyncio.sleep(0.5)
            after = _data(await client.call_tool("memory_status", {}))["job"]


async def test_retrain_refuses_without_gpu_unless_allowed(tmp_path, transcripts):
    home = tmp_path / "home2"
    cfg = Config.load(home=home, claude_dir=transcripts)
    if Path("/dev/nvidia0").exists():
        pytest.skip("this machine has a GPU: the refusal does not apply")
    async with Client(build_server(cfg)) as client:
        result = await client.call_tool("retrain", {})
    assert result.is_error and "allow_cpu_training" in result.content[0].text


async def test_stdio_server_lists_tools_and_recalls(cfg):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "lmm_mcp", "serve", "--home", str(cfg.home), "--claude-dir", str(cfg.claude_dir)],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "CLAUDE_PROJECT_DIR": "/nowhere"},
    )
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == TOOLS
        _data(await client.call_tool("ingest_session", {"all": True}))
        recall = _data(await client.call_tool("recall_memory", {"query": "failed with", "mode": "retrieve"}))
    assert recall["sources"] and recall["mode_used"] == "retrieve"
