"""The composition root (`lmm_mcp.app`) and the one source of the training options.

- `App.ingest` is the one "ingest, refresh memories, embed" and behaves the same through every door: when
  embedding fails, what was ingested stays, the report says why, search works by BM25, and the next ingest
  with a working model embeds what was missed.
- `lmm-mcp train`, `python -m trainer` and the MCP `retrain` tool accept the same training options, all
  generated from `PipelineConfig` (trainer.options), and the job runner passes them through unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from mcp import Client

from lmm_mcp.app import App
from lmm_mcp.config import Config
from tests.conftest import conversation, write_jsonl
from trainer import options
from trainer.pipeline import PipelineConfig

OPTION_NAMES = {o.name for o in options.options_of(PipelineConfig)}
OPTION_FLAGS = {o.flag[2:].replace("-", "_") for o in options.options_of(PipelineConfig)}


def _transcripts(root: Path) -> Path:
    write_jsonl(root / "-work-app" / "s1.jsonl", conversation("s1", 6, words="alembic migrations postgres"))
    write_jsonl(root / "-work-app" / "s2.jsonl", conversation("s2", 4, words="redis cache invalidation"))
    return root


def test_ingest_survives_an_embedding_failure_and_a_later_ingest_embeds(tmp_path):
    claude = _transcripts(tmp_path / "projects")
    broken = Config.load(tmp_path / "home", claude)
    broken = Config(**{**broken.__dict__, "embed_model": str(tmp_path / "no-such-model")})
    with App.open(broken) as app:
        report = app.ingest()
        assert report.files_changed == 2 and report.turns == 20 and report.chunks > 0
        assert report.embed_error and "no-such-model" in report.embed_error
        assert any(e.startswith("embedding skipped") for e in report.errors)
        assert report.memories is not None and report.chunks_embedded == 0
        hits = app.retriever().retrieve("alembic migrations", k=3)  # no vectors: BM25 alone, still finds it
        assert hits and "alembic" in hits[0].text and app.retriever().embedder is None
    with App.open(Config.load(tmp_path / "home", claude)) as app:  # the model works again
        again = app.ingest()
        assert again.files_changed == 0 and again.embed_error is None
        assert again.chunks_embedded == report.chunks + report.memories.memories - _unembedded(app)


def _unembedded(app: App) -> int:
    return app.conn.execute("SELECT count(*) FROM chunks WHERE kind = 'tool_result'").fetchone()[0]


def test_the_cli_reports_an_embedding_failure_without_losing_the_ingest(tmp_path):
    claude = _transcripts(tmp_path / "projects")
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'embed_model = "{tmp_path / "missing"}"\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lmm_mcp",
            "ingest",
            "--home",
            str(home),
            "--claude-dir",
            str(claude),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    doc = orjson.loads(proc.stdout)
    assert doc["turns"] == 20 and doc["embed_error"] and doc["memories"]["memories"] >= 0


def _flags(help_text: str) -> set[str]:
    return {f[2:].replace("-", "_") for f in re.findall(r"(?<![\w-])--[a-z][a-z-]+", help_text)}


def test_cli_trainer_and_retrain_tool_take_the_same_training_options(tmp_path):
    cli_help = subprocess.run(
        [sys.executable, "-m", "lmm_mcp", "train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    trainer_help = subprocess.run(
        [sys.executable, "-m", "trainer", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert _flags(cli_help) >= OPTION_FLAGS
    assert _flags(trainer_help) >= OPTION_FLAGS
    # What each takes beyond the training options is its own business, and small.
    assert _flags(cli_help) - OPTION_FLAGS == {"help", "home", "json", "prepare_only"}
    assert _flags(trainer_help) - OPTION_FLAGS == {"help", "home", "json", "run"}

    from lmm_mcp.server import build_server

    async def schema() -> dict:
        async with Client(build_server(Config.load(tmp_path / "home", tmp_path))) as client:
            tools = (await client.list_tools()).tools
            return next(t for t in tools if t.name == "retrain").input_schema

    props = asyncio.run(schema())["properties"]
    assert set(props) == OPTION_NAMES | {"wait"}
    for o in options.options_of(PipelineConfig):
        assert props[o.name]["description"] == o.help  # the same help text everywhere
    assert props["stage"]["enum"] == ["cpt", "sft", "both"]


def test_options_round_trip_through_argv_and_refuse_bad_values():
    given = {
        "stage": "sft",
        "max_steps": 3,
        "seq_len": 128,
        "device": "cpu",
        "fresh": True,
        "model": "m.gguf",
        "from_version": "v3",
    }
    parser = argparse.ArgumentParser()
    options.add_arguments(parser, PipelineConfig)
    argv = options.to_argv(given, PipelineConfig)
    assert argv[argv.index("v3") - 1] == "--from"  # a flag named for the reader, not the field
    back = options.from_namespace(parser.parse_args(argv), PipelineConfig)
    assert back == given
    cfg = options.apply(PipelineConfig(home=Path("/tmp/h")), back)
    assert (cfg.stage, cfg.max_steps, cfg.fresh, cfg.stage_settings("cpt").seq_len) == ("sft", 3, True, 128)
    assert options.check({"model": None, "fresh": False}, PipelineConfig) == {}  # unset: the config's own
    for bad, message in [
        ({"stage": "all"}, "choose one of cpt, sft, both"),
        ({"max_steps": 0}, "at least 1"),
        ({"max_steps": "3"}, "whole number"),
        ({"learning_rate": 1}, "unknown training option"),
    ]:
        with pytest.raises(options.OptionError, match=message):
            options.check(bad, PipelineConfig)


def test_the_job_runner_passes_the_options_to_the_training_process(tmp_path):
    from lmm_mcp.jobs import JobError, Jobs

    cfg = Config(**{**Config.load(tmp_path / "home").__dict__, "allow_cpu_training": True})
    with pytest.raises(JobError, match="choose one of"):
        Jobs(cfg).start({"stage": "everything"})
    job = Jobs(cfg).start({"stage": "sft", "max_steps": 2, "seq_len": 64})
    cmd = orjson.loads((cfg.home / "jobs" / job.job_id / "job.json").read_bytes())["cmd"]
    assert cmd[cmd.index("--stage") + 1] == "sft" and cmd[cmd.index("--max-steps") + 1] == "2"
    assert cmd[cmd.index("--seq-len") + 1] == "64"
    # nothing to train on in an empty home: the child fails fast, with the reason in the job
    for _ in range(600):
        done = Jobs(cfg).get(job.job_id)
        if done.state != "running":
            break
        import time

        time.sleep(0.1)
    assert done.state == "failed" and "ingest" in (done.error or "")
