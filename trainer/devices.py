"""What this machine has, and the training shapes that fit it.

    gpu_visible()                                  # a GPU to train and generate on? (no torch import)
    settings = fit_settings(StageSettings(), "cpu")  # seq_len, batch, accumulation, precision, validation
    peak = MemoryPeak(); ...; peak.read()            # {"rss_gib": 2.1, "gpu_gib": None} since it was made

`fit_settings` fills what the user left unset from the device kind and its total memory. Total, not free:
a resumed run must choose what the interrupted one chose, or its checkpoint would not match its settings.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainer.settings import StageSettings

GIB = 1 << 30


def gpu_visible() -> bool:
    """An NVIDIA GPU (its device nodes) or Apple silicon (MPS): somewhere a model trains and generates fast."""
    if Path("/dev/nvidia0").exists() or Path("/dev/nvidiactl").exists():
        return True
    return sys.platform == "darwin" and os.uname().machine == "arm64"


@dataclass(frozen=True)
class Shape:
    """A stage's shape on one kind of device: what `fit_settings` fills in where the user set nothing."""

    seq_len: int
    batch_size: int
    grad_accum: int
    val_batches: int  # 0: the whole validation set
    gradient_checkpointing: bool


# SmolLM2-135M on a 2-core CPU (docs/benchmarks.md, issue 11): a 512-token packed row takes ~6 s forward and
# backward and the process peaks near 3 GiB; the old GPU shape (1024 x 4 x 4, fp32) climbed to 20 GB, nearly
# all of it activations and full-vocabulary logits. Below 8 GiB the activations are recomputed in backward
# instead (~0.7 GiB less, ~15% slower), keeping seq 512 so the data fits the same sequence on every CPU.
# Validation is capped on a CPU: 400 held-out pairs cost more than the training steps between two passes.
CPU_SHAPE = Shape(seq_len=512, batch_size=1, grad_accum=4, val_batches=8, gradient_checkpointing=False)
SMALL_CPU_SHAPE = Shape(seq_len=512, batch_size=1, grad_accum=4, val_batches=4, gradient_checkpointing=True)
GPU_SHAPE = Shape(seq_len=1024, batch_size=4, grad_accum=4, val_batches=50, gradient_checkpointing=False)
SMALL_GPU_SHAPE = Shape(seq_len=1024, batch_size=2, grad_accum=8, val_batches=50, gradient_checkpointing=True)
SHAPE_FIELDS = ("seq_len", "batch_size", "grad_accum", "val_batches", "gradient_checkpointing")


def device_kind(device: str | None) -> str:
    """ "cuda", "mps" or "cpu": `device` as given, else what torch finds (as `trainer.models.load_model` does)."""
    from trainer.models import resolve_device

    return resolve_device(device).split(":")[0]


def total_memory_gib(kind: str) -> float:
    """The device's total memory: the GPU's own for CUDA, the machine's RAM for the CPU and for MPS (shared)."""
    if kind == "cuda":
        import torch

        return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / GIB
    import psutil  # a dependency of accelerate, so always there where training is

    return psutil.virtual_memory().total / GIB


def fit_settings(settings: StageSettings, device: str | None) -> StageSettings:
    """A copy of `settings` with the unset shape fields and an "auto" precision chosen for `device`."""
    kind = device_kind(device)
    memory = total_memory_gib(kind)
    if kind == "cpu":
        shape = CPU_SHAPE if memory >= 8 else SMALL_CPU_SHAPE
    else:
        shape = GPU_SHAPE if memory >= 20 else SMALL_GPU_SHAPE
    values = {name: getattr(shape, name) for name in SHAPE_FIELDS if getattr(settings, name) is None}
    if settings.mixed_precision == "auto":
        values["mixed_precision"] = _precision(kind)
    return replace(settings, **values)


def _precision(kind: str) -> str:
    # bf16 autocast where the GPU has bf16; fp32 on a CPU (bf16 matmuls there are slower without AMX, and
    # LoRA's small updates need the precision) and on MPS (its half precision varies with the macOS version).
    if kind != "cuda":
        return "no"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "no"


class MemoryPeak:
    """The peak resident memory (and peak CUDA memory) of this process since it was made.

    On Linux the kernel's high-water mark is reset when it is made (`/proc/self/clear_refs`), so each stage of
    one process gets its own peak; elsewhere the figure is the process's peak so far (`ru_maxrss`).
    """

    def __init__(self) -> None:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
        # No torch import for this: where torch is not loaded, no GPU is used.
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def read(self) -> dict[str, float | None]:
        """{"rss_gib": peak resident memory, "gpu_gib": peak CUDA memory allocated, or None without CUDA}."""
        torch = sys.modules.get("torch")
        gpu = (
            torch.cuda.max_memory_allocated() / GIB
            if torch is not None and torch.cuda.is_available()
            else None
        )
        return {
            "rss_gib": round(_peak_rss_bytes() / GIB, 2),
            "gpu_gib": None if gpu is None else round(gpu, 2),
        }


def _peak_rss_bytes() -> int:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource  # Unix only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux
