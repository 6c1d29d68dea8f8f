"""The training pipeline, as one function: data → CPT → SFT → evaluation → a new adapter version.

    result = run_pipeline(PipelineConfig(home=Path("~/.lmm").expanduser()), history=StoreHistory(...))
    result.adapter_version, result.metrics

`lmm-mcp train`, the MCP `retrain` tool (in a background process) and `python -m trainer` all call
`run_pipeline`. Everything a run makes lives in its folder `home/runs/<run>/`: `data/` (the JSONL training
sets and their manifest), `cpt/` and `sft/` (checkpoints, logs, the best adapter), `eval/` (the report) and
`run.json` (config and status). A run that was interrupted is picked up again by the next call with the same
config: the data is not rebuilt, each stage resumes from its last checkpoint, and the active adapter stays
untouched until the new version has been trained and evaluated.

Without a `history` (a GPU box under `accelerate launch`), the run folder must already hold its data:
`lmm-mcp train --prepare-only` writes it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from trainer import checkpoint
from trainer.atomic import read_json
from trainer.devices import MemoryPeak, device_kind, fit_settings
from trainer.errors import TrainerError
from trainer.locks import FileLock, holder
from trainer.models import DEFAULT_BASE_MODEL
from trainer.options import option
from trainer.settings import (
    OBJECTIVES,
    STAGE_CHOICES,
    STAGES,
    DataSettings,
    LoraSettings,
    Progress,
    StageSettings,
    default_stages,
)

if TYPE_CHECKING:
    from trainer.pairs import History
    from trainer.train import StageResult
    from trainer.versions import VersionInfo


CPU_MINUTES = 30  # a CPU's training budget when none was given (SmolLM2-135M on two cores: ~300k tokens)
# Of a time budget, CPT's share: facts come from SFT's pairs; CPT teaches the history's style.
CPT_SHARE = 0.25
OWNER_LOCK = "owner.lock"  # in a run folder: held by the one training that works in it (trainer.locks)


class PipelineError(TrainerError, RuntimeError):
    """The pipeline cannot run as asked; the message says what to do."""


@dataclass
class PipelineConfig:
    """One training run's settings. Fields declared with `option` are the user's training options: the CLI,
    `python -m trainer`, the `retrain` tool and the job runner take their flags and parameters from them."""

    home: Path  # the lmm home: runs/ and models/ live under it
    model: str = option(
        DEFAULT_BASE_MODEL,
        "base model: hub id, local folder or .gguf file (default: base_model in config.toml)",
        configured=True,
    )
    stage: Literal[STAGE_CHOICES] = option(  # the Literal of settings.STAGE_CHOICES: one list of stages
        "both", "stages to train: cpt, sft, or both (SFT then starts from the CPT adapter)"
    )
    max_steps: int | None = option(
        None, "cap on the optimizer steps of each stage (a quick refresh)", minimum=1
    )
    seq_len: int | None = option(
        None,
        "tokens per training sequence in both stages (default: chosen for the device, 512 on a CPU, 1024 on "
        "a GPU)",
        minimum=16,
    )
    eval_limit: int | None = option(
        100, "held-out pairs to evaluate the new adapter on (default 100)", minimum=1
    )
    minutes: int | None = option(
        None,
        f"time budget for training, both stages together (CPT a quarter of it): each stage plans the steps "
        f"that fit and stops in time (default: {CPU_MINUTES} minutes on a CPU unless --max-steps is given; "
        f"none on a GPU)",
        minimum=1,
    )
    device: str | None = option(None, "cuda, mps or cpu (default: a GPU when there is one, else the CPU)")
    fresh: bool = option(
        False, "start a new run instead of resuming an interrupted one with the same settings"
    )
    objective: Literal[OBJECTIVES] = option(  # the Literal of settings.OBJECTIVES
        "sft",
        "SFT's objective: sft (cross-entropy on cited answers) or distill (context distillation: match the "
        "base model reading the gold source, from what retrieval found)",
    )
    from_version: str | None = option(
        None,
        "continue training an adapter version (name, v3 or 3; 'active' for the active one) instead of "
        "starting a fresh adapter: the first stage starts from it",
        flag="from",
    )
    data: DataSettings = field(default_factory=DataSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    stages: dict[str, StageSettings] = field(default_factory=default_stages)
    eval_max_new_tokens: int = 128
    decoding: str = "extract"  # how recall uses the adapter, and so how it is evaluated (trainer.evaluate)
    keep_versions: int = 5  # adapter versions kept for rollback
    prepare_only: bool = False  # stop after writing the data

    def stage_settings(self, stage: str) -> StageSettings:
        """A stage's settings with the run-wide options (max_steps, seq_len) applied; what is still unset is
        chosen for the device by `trainer.devices.fit_settings`."""
        settings = StageSettings(**asdict(self.stages[stage]))
        if self.max_steps is not None:
            settings.max_steps = self.max_steps
        if self.seq_len is not None:
            settings.seq_len = self.seq_len
        if stage == "sft":
            settings.objective = self.objective
        return settings

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["home"] = str(self.home)
        d["lora"] = self.lora.as_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PipelineConfig:
        """The config a run folder's run.json recorded."""
        d = {k: v for k, v in d.items() if k != "resume"}  # run.json of an older version
        return cls(
            **{
                **d,
                "home": Path(d["home"]),
                "data": DataSettings(**d.get("data", {})),
                "lora": LoraSettings(
                    **{**d.get("lora", {}), "targets": tuple(d.get("lora", {}).get("targets", ()))}
                )
                if d.get("lora")
                else LoraSettings(),
                "stages": {k: StageSettings(**v) for k, v in d.get("stages", {}).items()} or default_stages(),
            }
        )

    def fingerprint(self) -> str:
        d = self.as_dict()
        for volatile in ("fresh", "prepare_only", "eval_limit", "keep_versions", "device", "decoding"):
            d.pop(volatile)
        return hashlib.blake2b(orjson.dumps(d, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


@dataclass
class PipelineResult:
    run_dir: Path
    adapter_version: str | None  # None with prepare_only
    metrics: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "adapter_version": self.adapter_version,
            "run_dir": str(self.run_dir),
            "metrics": self.metrics,
        }


def run_pipeline(
    cfg: PipelineConfig,
    history: History | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    log: Callable[[str], None] | None = None,
    run_dir: Path | None = None,
) -> PipelineResult:
    """Run (or resume) one training run end to end and publish its adapter as the active version.

    `run_dir` names the run folder (else an unfinished run with the same config, else a new one).
    """
    if cfg.stage not in STAGE_CHOICES:
        raise PipelineError(f"stage {cfg.stage!r}: choose one of {', '.join(STAGE_CHOICES)}")
    run_dir, owner = own_run(cfg, run_dir)
    try:
        return _run(cfg, history, run_dir, on_progress, log or (lambda _msg: None))
    finally:
        if owner is not None:
            owner.release()


def own_run(cfg: PipelineConfig, run_dir: Path | None = None) -> tuple[Path, FileLock | None]:
    """The run folder for this run, with the lock that makes it ours alone until we release it.

    A given folder that another training holds is refused. Otherwise the unfinished run with the same
    settings is resumed if it is free, and a new folder is made if it is not: two trainings never share one.
    Under `accelerate launch` only rank 0 takes the lock; the other ranks work in the folder it holds.
    """
    if os.environ.get("RANK", "0") != "0":
        return run_dir or checkpoint.open_run(cfg.home, cfg.fingerprint(), fresh=cfg.fresh), None
    if run_dir is not None:
        owner = FileLock(run_dir / OWNER_LOCK)
        if not owner.acquire():
            raise PipelineError(
                f"{run_dir} belongs to another training now ({holder(owner.path) or 'starting'}): "
                "wait for it to end, or train another run folder"
            )
        return _described(owner), owner
    fresh = cfg.fresh
    for _ in range(10):
        try:
            run_dir = checkpoint.open_run(cfg.home, cfg.fingerprint(), fresh=fresh)
        except FileExistsError:  # another training made that very folder this second
            continue
        owner = FileLock(run_dir / OWNER_LOCK)
        if owner.acquire():
            return _described(owner), owner
        fresh = True  # the unfinished run with these settings is another training's: start our own
    raise PipelineError(f"could not make a run folder of our own under {cfg.home / 'runs'}; try again")


def _described(owner: FileLock) -> Path:
    owner.describe({"pid": os.getpid(), "since": checkpoint.now()})
    return owner.path.parent


def _run(
    cfg: PipelineConfig,
    history: History | None,
    run_dir: Path,
    on_progress: Callable[[Progress], None] | None,
    say: Callable[[str], None],
) -> PipelineResult:
    if cfg.fresh:  # a given folder, trained afresh: its data stays, its stages go (a new folder has none)
        for stage in STAGES:
            shutil.rmtree(run_dir / stage, ignore_errors=True)
    started = read_json(run_dir / "run.json").get("started") or checkpoint.now()
    checkpoint.update_run(
        run_dir, config=cfg.as_dict(), fingerprint=cfg.fingerprint(), status="running", started=started
    )
    start = start_version(cfg)
    if start is not None:  # continual: what is new since that adapter's data, and a replay of the rest
        since = (start.metrics.get("data") or {}).get("newest_session")
        cfg = replace(cfg, data=replace(cfg.data, since=since))
        say(f"continuing {start.name}: sessions after {since or 'the start'}, with a replay of older ones")
    peak = MemoryPeak()
    manifest = _data(cfg, history, run_dir / "data", say)
    metrics: dict[str, Any] = {
        "data": {"counts": manifest["counts"], "stats": manifest["stats"]},
        "from_version": start.name if start else None,
        "peak_memory": {"data": peak.read()},  # per stage: {"rss_gib", "gpu_gib"}
    }
    if manifest.get("newest_session"):
        metrics["data"]["newest_session"] = manifest["newest_session"]
    if cfg.prepare_only:
        return PipelineResult(run_dir, None, metrics)
    results = _train_stages(cfg, run_dir, manifest, metrics, on_progress, say, start.path if start else None)
    if not _is_main_process():
        return PipelineResult(run_dir, None, metrics)
    adapter = results[-1].adapter_dir
    say("eval: generating memories for the held-out pairs")
    peak = MemoryPeak()
    metrics["eval"] = evaluate_adapter(
        cfg, adapter, run_dir / "data" / "sft_val.jsonl", on_progress=on_progress
    )
    metrics["peak_memory"]["eval"] = peak.read()
    from trainer.report import write_report
    from trainer.versions import publish

    report = {
        **metrics["eval"],
        "stages": {r.stage: metrics[r.stage] for r in results},
        "data": metrics["data"]["stats"],
    }
    write_report(run_dir / "eval", report, {r.stage: r.history for r in results})
    version = publish(
        cfg.home / "models",
        adapter,
        config={**cfg.as_dict(), "run": run_dir.name, "data": manifest["counts"]},
        metrics=metrics,
        activate=True,
        keep=cfg.keep_versions,
    )
    checkpoint.update_run(run_dir, status="done", finished=checkpoint.now(), adapter_version=version.name)
    say(f"published adapter version {version.name}")
    return PipelineResult(run_dir, version.name, metrics)


def _data(
    cfg: PipelineConfig, history: History | None, data: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    """The run's training data: reused when the folder holds it, else built from the history."""
    if (data / "manifest.json").exists():
        say(f"data: reusing {data}")
        return read_json(data / "manifest.json")
    from trainer.pairs import build_dataset  # the extraction rules load here, not when a server starts

    if history is None:
        raise PipelineError(f"{data} holds no training data: prepare it with `lmm-mcp train --prepare-only`")
    # Inputs must fit the SFT sequence with room for the rules and the target (~3 characters a token). The
    # sequence is the one chosen for this device: data prepared here for another machine wants --seq-len.
    fit = max(300, (fit_settings(cfg.stage_settings("sft"), cfg.device).seq_len - 224) * 3)
    settings = DataSettings(**{**asdict(cfg.data), "max_prompt_chars": min(cfg.data.max_prompt_chars, fit)})
    if not _writes_study(cfg):
        return build_dataset(history, data, settings, log=say)
    from trainer.generate import generate_memories, load_for_generation

    say("data: the base model writes self-study questions")
    loaded = [
        load_for_generation(
            cfg.model, cache_dir=cfg.home / "models" / "base", adapter_dir=None, device=cfg.device
        )
    ]

    def write(prompts: list[str]) -> list[str]:
        model, tokenizer = loaded[0]
        chats = [[{"role": "user", "content": p}] for p in prompts]
        return generate_memories(model, tokenizer, chats, max_new_tokens=96, batch_size=16)

    try:
        return build_dataset(history, data, settings, log=say, write=write)
    finally:
        loaded.clear()  # the GPU's memory goes to training next


def _writes_study(cfg: PipelineConfig) -> bool:
    """Whether the base model writes self-study questions: asked for, or "auto" with a GPU to do it on."""
    choice = cfg.data.written_study
    if choice not in ("auto", "on", "off"):
        raise PipelineError(f"written_study {choice!r}: choose auto, on or off")
    if choice == "auto":
        from trainer.devices import gpu_visible

        return cfg.device != "cpu" and gpu_visible()
    return choice == "on"


def _train_stages(
    cfg: PipelineConfig,
    run_dir: Path,
    manifest: dict[str, Any],
    metrics: dict[str, Any],
    on_progress: Callable[[Progress], None] | None,
    say: Callable[[str], None],
    adapter: Path | None,
) -> list[StageResult]:
    """Train the asked stages in order, the first from `adapter` (or a fresh one), each next one from the
    previous one's."""
    from trainer.report import loss_curve
    from trainer.train import train_stage  # heavy imports start here

    data, results = run_dir / "data", []
    budget_s = training_seconds(cfg)
    deadline = time.monotonic() + budget_s if budget_s else None
    for stage in STAGES:
        if cfg.stage not in (stage, "both"):
            continue
        settings = fit_settings(cfg.stage_settings(stage), cfg.device)
        budget = ""
        if deadline is not None:  # CPT takes its share; SFT what is left, with what CPT did not use
            share = CPT_SHARE if stage == "cpt" and cfg.stage == "both" else 1.0
            settings.max_seconds = max(deadline - time.monotonic(), 1.0) * share
            budget = f", at most {settings.max_seconds / 60:.1f} min"
        say(
            f"{stage}: training on {manifest['counts'][stage + '_train']} examples ({shape(settings)}{budget})"
        )
        result = train_stage(
            stage,
            model_source=cfg.model,
            cache_dir=cfg.home / "models" / "base",
            train_file=data / f"{stage}_train.jsonl",
            val_file=data / f"{stage}_val.jsonl",
            out_dir=run_dir / stage,
            lora=cfg.lora,
            settings=settings,
            init_adapter=adapter,
            on_progress=on_progress,
            device=cfg.device,
        )
        results.append(result)
        adapter = result.adapter_dir
        metrics[stage] = {k: v for k, v in result.as_dict().items() if k != "history"}
        metrics[stage]["curve"] = loss_curve(result.history)  # `lmm-mcp eval` redraws loss.png from it
        metrics["peak_memory"][stage] = result.peak_memory
    return results


def training_seconds(cfg: PipelineConfig) -> float | None:
    """The run's training time budget in seconds: `minutes` where given, else `CPU_MINUTES` on a CPU when no
    step cap was set, for the run or for each stage it trains (a month of history is hours of a CPU's time),
    else none."""
    if cfg.minutes is not None:
        return cfg.minutes * 60.0
    capped = all(cfg.stage_settings(s).max_steps is not None for s in STAGES if cfg.stage in (s, "both"))
    if not capped and device_kind(cfg.device) == "cpu":
        return CPU_MINUTES * 60.0
    return None


def shape(settings: StageSettings) -> str:
    """A stage's shape in words: "seq 512 x batch 1 x accum 4, fp32, packed"."""
    precision = {"no": "fp32"}.get(settings.mixed_precision, settings.mixed_precision)
    return (
        f"seq {settings.seq_len} x batch {settings.batch_size} x accum {settings.grad_accum}, {precision}, "
        + ("packed" if settings.packing else "padded")
    )


def start_version(cfg: PipelineConfig) -> VersionInfo | None:
    """The version the first stage continues (`--from`), checked against the base model; None: a fresh one."""
    if not cfg.from_version:
        return None
    from trainer.versions import VersionError, active_version, find_version

    models = cfg.home / "models"
    if cfg.from_version == "active":
        info = active_version(models)
        if info is None:
            raise PipelineError("--from active: there is no active adapter version yet; train one first")
    else:
        try:
            info = find_version(models, cfg.from_version)
        except VersionError as e:
            raise PipelineError(f"--from {cfg.from_version}: {e}") from None
    if info.stale:  # continuing it would carry forgotten sessions into the new version
        raise PipelineError(f"--from {info.name}: it is stale ({info.stale}); train a fresh adapter")
    if info.base_model and info.base_model != cfg.model:
        raise PipelineError(
            f"--from {info.name}: that adapter was trained on {info.base_model}, not {cfg.model}; "
            f"pass --model {info.base_model}"
        )
    return info


def evaluate_adapter(
    cfg: PipelineConfig,
    adapter: Path | None,
    pairs_file: Path,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Generate memories for held-out pairs with base + adapter and score them against retrieval alone."""
    from trainer.evaluate import evaluate
    from trainer.generate import load_for_generation

    rows = (orjson.loads(line) for line in pairs_file.read_bytes().splitlines() if line.strip())
    pairs = [p for p in rows if p.get("context") != "expand"]  # recall pairs: expansion is not a memory
    model, tokenizer = load_for_generation(
        cfg.model, cache_dir=cfg.home / "models" / "base", adapter_dir=adapter, device=cfg.device
    )
    if on_progress:
        on_progress(Progress("eval", 0, 1))
    result = evaluate(
        model,
        tokenizer,
        pairs,
        max_new_tokens=cfg.eval_max_new_tokens,
        limit=cfg.eval_limit,
        decoding=cfg.decoding,
    )
    if on_progress:
        on_progress(Progress("eval", 1, 1))
    return result


def evaluate_version(
    home: Path, version: str | None = None, *, limit: int | None = 100, device: str | None = None
) -> dict[str, Any]:
    """Re-evaluate an adapter version (default: the active one) on the held-out pairs of the run that made it."""
    from trainer.versions import active_version, find_version

    info = find_version(home / "models", version) if version else active_version(home / "models")
    if info is None:
        raise PipelineError("no trained adapter yet: run `lmm-mcp train` first")
    run = read_json(info.path / "run.json")
    pairs = home / "runs" / str(run.get("run", "")) / "data" / "sft_val.jsonl"
    if not run.get("run") or not pairs.exists():
        raise PipelineError(f"the held-out pairs of {info.name} are gone ({pairs}): train a new version")
    cfg = PipelineConfig(
        home=home, model=run.get("model") or DEFAULT_BASE_MODEL, eval_limit=limit, device=device
    )
    metrics = evaluate_adapter(cfg, info.path, pairs)
    from trainer.report import write_report

    # the run's own training figures stay in the report: the stages' losses and the data's statistics
    stages = {s: info.metrics[s] for s in ("cpt", "sft") if isinstance(info.metrics.get(s), dict)}
    stats = (info.metrics.get("data") or {}).get("stats")
    report = {**metrics, "version": info.name, "stages": stages, "data": stats}
    curves = {s: v["curve"] for s, v in stages.items() if isinstance(v.get("curve"), list)}
    write_report(home / "runs" / run["run"] / "eval", report, curves or None)
    return {**metrics, "version": info.name}


def _is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process
