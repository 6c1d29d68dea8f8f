"""Tests for trainer.devices: the training shape chosen per device and memory, and the per-stage peak memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import trainer.devices as devices
from trainer.devices import (
    CPU_SHAPE,
    GPU_SHAPE,
    SHAPE_FIELDS,
    SMALL_CPU_SHAPE,
    SMALL_GPU_SHAPE,
    MemoryPeak,
    fit_settings,
)
from trainer.settings import StageSettings


def shape_of(settings: StageSettings) -> tuple:
    return tuple(getattr(settings, name) for name in SHAPE_FIELDS)


def expected(shape: devices.Shape) -> tuple:
    return tuple(getattr(shape, name) for name in SHAPE_FIELDS)


@pytest.mark.parametrize(("memory", "shape"), [(24.0, CPU_SHAPE), (7.5, SMALL_CPU_SHAPE)])
def test_cpu_gets_a_cpu_shape_in_fp32(monkeypatch: pytest.MonkeyPatch, memory: float, shape) -> None:
    monkeypatch.setattr(devices, "total_memory_gib", lambda kind: memory)
    fitted = fit_settings(StageSettings(), "cpu")
    assert shape_of(fitted) == expected(shape)
    assert fitted.mixed_precision == "no" and fitted.packing


@pytest.mark.parametrize(("memory", "shape"), [(80.0, GPU_SHAPE), (16.0, SMALL_GPU_SHAPE)])
def test_cuda_gets_a_gpu_shape_in_bf16(monkeypatch: pytest.MonkeyPatch, memory: float, shape) -> None:
    monkeypatch.setattr(devices, "total_memory_gib", lambda kind: memory)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    fitted = fit_settings(StageSettings(), "cuda")
    assert shape_of(fitted) == expected(shape) and fitted.mixed_precision == "bf16"


def test_what_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "total_memory_gib", lambda kind: 24.0)
    mine = StageSettings(seq_len=128, grad_accum=1, val_batches=0, mixed_precision="bf16", lr=1e-3)
    fitted = fit_settings(mine, "cpu")
    assert shape_of(fitted) == (128, CPU_SHAPE.batch_size, 1, 0, False)  # 0: the whole validation set
    assert fitted.mixed_precision == "bf16" and fitted.lr == 1e-3
    assert fit_settings(fitted, "cpu") == fitted  # fitting twice changes nothing
    assert mine.batch_size is None  # the caller's settings are left alone


def test_the_cpu_shape_fits_the_issue_budget() -> None:
    """The CPU defaults stay far from the shape that took 20 GB (seq 1024 x batch 4 x accum 4)."""
    assert CPU_SHAPE.seq_len * CPU_SHAPE.batch_size <= 1024
    assert SMALL_CPU_SHAPE.seq_len * SMALL_CPU_SHAPE.batch_size <= CPU_SHAPE.seq_len * CPU_SHAPE.batch_size


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="per-block peaks need Linux")
def test_memory_peak_is_per_block() -> None:
    first = MemoryPeak()
    block = bytearray(400 << 20)
    block[:: 1 << 12] = b"\1" * len(block[:: 1 << 12])  # touch every page: resident, not just reserved
    high = first.read()["rss_gib"]
    del block
    low = MemoryPeak().read()["rss_gib"]
    assert high >= 0.39 and low < high - 0.3  # the second peak starts after the 400 MB were freed
    assert first.read()["gpu_gib"] is None  # no CUDA here
