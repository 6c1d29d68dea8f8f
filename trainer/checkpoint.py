"""Run and stage files: the one place that knows what a training run leaves on disk and how to resume it.

    run_dir = open_run(home, fingerprint, fresh=False)   # the unfinished run with these settings, or a new one
    update_run(run_dir, status="running")                # run.json: config, fingerprint, status, times

    inputs = fingerprint_inputs("sft", model_source, train_file, val_file, lora, settings, init_adapter)
    digest = fingerprint(inputs)
    done = finished_result(out_dir, digest, StageResult.from_dict)   # the saved result, or None: train
    recover(out_dir)
    state, rng = resume(out_dir, digest, processes, model, optimizer, scheduler, main=True)
    ...                                                              # train, calling save_best / save_checkpoint
    write_result(out_dir, {**result.as_dict(), "fingerprint": digest, "inputs": inputs})

A run folder `home/runs/r-<time>/` holds `run.json`, `data/` (trainer.pairs), one folder per stage and
`eval/`. What a stage folder holds:
- `best/`: the adapter with the lowest validation loss, in PEFT's own format (`PeftModel.from_pretrained`),
  written beside the old one and swapped in (`atomic.replace_dir`);
- `checkpoint/state.pt`: the resume point (adapter weights, optimizer, scheduler, RNG, `LoopState`), rewritten
  at each validation; a rerun after a crash continues there, and a finished stage deletes it;
- `log.jsonl`: one `Progress` row per logged or validated step; a resume drops the rows after its checkpoint;
- `result.json`: the stage's result with the fingerprint of its inputs; a rerun with the same inputs returns it
  without loading the model.

Every file is tied to the fingerprint of the inputs that made it (model, data files, settings, the adapter
trained further): a checkpoint or result from other inputs is never reused. Only the main process writes here.
Importing this module does not import torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from trainer.atomic import read_json, recover_dir, replace_dir, replacing, write_json
from trainer.settings import LoraSettings, StageSettings

log = logging.getLogger(__name__)

BEST, CHECKPOINT, LOG, RESULT = "best", "checkpoint/state.pt", "log.jsonl", "result.json"

R = TypeVar("R")


@dataclass
class LoopState:
    """What a checkpoint carries besides tensors: enough to go on as if the run had never stopped."""

    step: int = 0
    tokens: int = 0
    best_val_loss: float | None = None
    first_val_loss: float | None = None
    bad_vals: int = 0  # validations since the last improvement
    last_val_step: int | None = None
    stopped_early: bool = False
    planned_steps: int | None = None  # the steps a time budget (max_seconds) planned, kept across a resume
    history: list[dict[str, Any]] = field(default_factory=list)


# ---- fingerprint and result -------------------------------------------------------------------------------------


def fingerprint_inputs(
    stage: str,
    model_source: str,
    train_file: Path,
    val_file: Path,
    lora: LoraSettings,
    settings: StageSettings,
    init_adapter: Path | None,
) -> dict[str, Any]:
    """Everything that decides the result: a checkpoint or result made from other inputs is not reused."""

    def file_id(path: Path) -> dict[str, Any]:
        return {"path": str(path), "size": path.stat().st_size, "sha256": _sha256([path])}

    adapter = None
    if init_adapter is not None:
        files = sorted(p for p in Path(init_adapter).iterdir() if p.is_file() and p.name != "README.md")
        adapter = {"path": str(init_adapter), "sha256": _sha256(files)}
    return {
        "stage": stage,
        "model_source": str(model_source),
        # the time budget only plans the step count, which the checkpoint keeps (LoopState.planned_steps)
        "settings": {k: v for k, v in settings.as_dict().items() if k != "max_seconds"},
        "lora": lora.as_dict(),
        "train_file": file_id(train_file),
        "val_file": file_id(val_file),
        "init_adapter": adapter,
    }


def fingerprint(inputs: dict[str, Any]) -> str:
    """A short digest of `fingerprint_inputs`, stored in the checkpoint and the result."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def finished_result(out_dir: Path, digest: str, load: Callable[[dict[str, Any]], R]) -> R | None:
    """The result a finished run from the same inputs saved, read by `load`; None when the stage must train."""
    saved = read_json(out_dir / RESULT)
    if saved.get("fingerprint") != digest or not (out_dir / BEST / "adapter_config.json").is_file():
        return None
    try:
        # the folder as it is now: a run folder may have moved since
        return load({**saved, "adapter_dir": str(out_dir / BEST)})
    except (ValueError, KeyError, TypeError):  # from another version: train again
        return None


def write_result(out_dir: Path, doc: dict[str, Any]) -> None:
    """Save the stage's result, which marks it done: its checkpoint goes."""
    write_json(out_dir / RESULT, doc, indent=True)
    shutil.rmtree((out_dir / CHECKPOINT).parent, ignore_errors=True)


# ---- best adapter and log ---------------------------------------------------------------------------------------


def recover(out_dir: Path) -> None:
    """Make the stage folder, and put back a best adapter whose swap a crash cut short."""
    out_dir.mkdir(parents=True, exist_ok=True)
    recover_dir(out_dir / BEST)


def save_best(model: Any, out_dir: Path) -> None:
    """Save the adapter as `best/`: a crash leaves the old one or the new one whole."""
    replace_dir(model.save_pretrained, out_dir / BEST)


def append_log(out_dir: Path, row: dict[str, Any]) -> None:
    with open(out_dir / LOG, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def _trim_log(log_file: Path, step: int) -> None:
    """Drop the rows a killed run logged after its last checkpoint: the resumed run logs those steps again."""
    if log_file.is_file():
        rows = log_file.read_text(encoding="utf-8").splitlines()
        kept = [r for r in rows if r.strip() and json.loads(r)["step"] <= step]
        log_file.write_text("".join(r + "\n" for r in kept), encoding="utf-8")


# ---- checkpoint -------------------------------------------------------------------------------------------------


def save_checkpoint(
    out_dir: Path, digest: str, processes: int, state: LoopState, model: Any, optimizer: Any, scheduler: Any
) -> None:
    """One file, written beside the old one and renamed over it: a kill -9 mid-write keeps the old one usable.

    Only the adapter's weights go in (the base never changes); `accelerator.save_state` would write the whole
    model each time. Sharded optimizers (FSDP, DeepSpeed ZeRO) would need save_state instead.
    """
    import torch

    payload = {
        "fingerprint": digest,
        "processes": processes,
        "loop": asdict(state),
        "adapter": {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": _rng_state(),
    }
    with replacing(out_dir / CHECKPOINT) as fh:
        torch.save(payload, fh)


def resume(
    out_dir: Path, digest: str, processes: int, model: Any, optimizer: Any, scheduler: Any, *, main: bool
) -> tuple[LoopState, dict[str, Any] | None]:
    """Load the stage's checkpoint into `model` (unwrapped), `optimizer` and `scheduler`.

    Returns the loop state to go on from and the RNG state to set last, just before the loop (building the
    model draws from the RNG). No checkpoint from these inputs: a fresh LoopState and None, and the main process
    deletes what a run from other inputs left. A checkpoint from another number of processes has another data
    split and schedule, so it does not count either.
    """
    payload = _read_checkpoint(out_dir / CHECKPOINT, digest, processes) if (out_dir / BEST).is_dir() else None
    if payload is None:
        if main:
            for stale in (out_dir / CHECKPOINT, out_dir / LOG, out_dir / RESULT):
                stale.unlink(missing_ok=True)
        return LoopState(), None
    _restore(payload, model, optimizer, scheduler)
    state = LoopState(**payload["loop"])
    if main:  # the log goes on from the checkpoint, as the history does
        _trim_log(out_dir / LOG, state.step)
    return state, payload["rng"]


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back the RNG state a checkpoint saved (Python, torch CPU and, when there, CUDA)."""
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _read_checkpoint(path: Path, digest: str, processes: int) -> dict[str, Any] | None:
    import torch

    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a torn or foreign file fails in many ways; starting afresh is always safe
        log.warning("ignoring unreadable checkpoint %s (%s): starting the stage afresh", path, error)
        return None
    if not isinstance(payload, dict) or payload.get("fingerprint") != digest:
        return None
    return payload if payload.get("processes") == processes else None


def _restore(payload: dict[str, Any], model: Any, optimizer: Any, scheduler: Any) -> None:
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in payload["adapter"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])


def _sha256(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


# ---- run folders ------------------------------------------------------------------------------------------------


def latest_run(home: Path) -> Path | None:
    runs = sorted((home / "runs").glob("r-*")) if (home / "runs").is_dir() else []
    return runs[-1] if runs else None


def open_run(home: Path, fingerprint_: str, *, fresh: bool) -> Path:
    """The newest run folder if it is unfinished and made with these settings (unless `fresh`), else a new one."""
    last = latest_run(home)
    if not fresh and last is not None:
        status = read_json(last / "run.json")
        if status.get("status") != "done" and status.get("fingerprint") == fingerprint_:
            return last
    name = time.strftime("r-%Y%m%d-%H%M%S", time.gmtime())
    run_dir = home / "runs" / name
    n = 1
    while run_dir.exists():  # two runs in one second
        n += 1
        run_dir = home / "runs" / f"{name}-{n}"
    run_dir.mkdir(parents=True)
    return run_dir


def update_run(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into the run's run.json (written atomically); returns the new document."""
    doc = {**read_json(run_dir / "run.json"), **fields}
    write_json(run_dir / "run.json", doc, indent=True)
    return doc


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
