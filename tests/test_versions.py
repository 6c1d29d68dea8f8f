"""Tests for trainer.versions: publishing adapter versions, the ACTIVE pointer, pruning, crash leftovers."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from trainer.versions import (
    ACTIVE,
    VERSIONS,
    VersionError,
    active_version,
    list_versions,
    prune,
    publish,
    use_version,
)


@pytest.fixture
def adapter(tmp_path: Path) -> Path:
    """What `PeftModel.save_pretrained` writes, with stand-in contents."""
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 8, "peft_type": "LORA"}')
    (folder / "adapter_model.safetensors").write_bytes(b"\0weights" * 16)
    return folder


@pytest.fixture
def models(tmp_path: Path) -> Path:
    return tmp_path / "home" / "models"


def publish_n(models: Path, adapter: Path, n: int, **kwargs) -> list[str]:
    return [
        publish(models, adapter, config={"model": "tiny", "run": i}, metrics={}, **kwargs).name
        for i in range(n)
    ]


def test_publish_copies_adapter_config_and_metrics_and_activates(models: Path, adapter: Path) -> None:
    metrics = {
        "sft": {"best_val_loss": 1.25, "steps": 30},
        "eval": {"model": {"specificity": 0.5, "by_category": {"preference": {}}}, "examples": [{}], "n": 3},
    }
    info = publish(models, adapter, config={"model": "Qwen/Qwen3-1.7B", "lr": 2e-4}, metrics=metrics)

    assert info.name.startswith("v0001-") and info.number == 1 and info.active
    assert info.path == models / VERSIONS / info.name
    assert (info.path / "adapter_model.safetensors").read_bytes() == b"\0weights" * 16
    assert json.loads((info.path / "run.json").read_text())["lr"] == 2e-4
    assert json.loads((info.path / "metrics.json").read_text()) == metrics
    assert info.base_model == "Qwen/Qwen3-1.7B"
    assert info.metrics == {
        "sft": {"best_val_loss": 1.25, "steps": 30},
        "eval": {"model": {"specificity": 0.5}, "n": 3},
    }
    assert info.created.endswith("+00:00") and info.created[:4].isdigit()
    assert (models / ACTIVE).read_text().strip() == info.name
    assert (adapter / "adapter_model.safetensors").exists()  # copied, not moved


def test_second_publish_becomes_active_and_use_switches_back(models: Path, adapter: Path) -> None:
    first, second = publish_n(models, adapter, 2)
    assert active_version(models).name == second

    info = use_version(models, first)
    assert info.name == first and info.active
    assert active_version(models).name == first
    assert [v.active for v in list_versions(models)] == [False, True]
    assert not [p for p in models.iterdir() if p.name != ACTIVE and p.name != VERSIONS]  # no temp files


def test_use_version_accepts_prefix_and_number(models: Path, adapter: Path) -> None:
    names = publish_n(models, adapter, 3)
    assert use_version(models, "v0001").name == names[0]
    assert use_version(models, 2).name == names[1]
    assert use_version(models, "3").name == names[2]
    assert use_version(models, "v2").name == names[1]


def test_unknown_version_lists_the_available_ones(models: Path, adapter: Path) -> None:
    with pytest.raises(VersionError, match="no adapter versions"):
        use_version(models, 1)
    names = publish_n(models, adapter, 2)
    with pytest.raises(VersionError) as error:
        use_version(models, "v0009")
    message = str(error.value)
    assert "'v0009'" in message and names[0] in message and f"{names[1]} (active)" in message
    assert active_version(models).name == names[1]  # a failed switch changes nothing


def test_listing_is_newest_first(models: Path, adapter: Path) -> None:
    names = publish_n(models, adapter, 3, activate=False)
    listed = list_versions(models)
    assert [v.name for v in listed] == names[::-1]
    assert [v.number for v in listed] == [3, 2, 1]
    assert not any(v.active for v in listed) and active_version(models) is None


def test_prune_keeps_the_newest_and_the_active_one(models: Path, adapter: Path) -> None:
    (first,) = publish_n(models, adapter, 1)
    others = publish_n(models, adapter, 3, activate=False, keep=2)

    assert [v.name for v in list_versions(models)] == [others[2], others[1], first]
    assert active_version(models).name == first
    assert not (models / VERSIONS / others[0]).exists()
    assert not [p for p in (models / VERSIONS).iterdir() if p.name.startswith(".")]


def test_numbers_keep_rising_after_pruning(models: Path, adapter: Path) -> None:
    names = publish_n(models, adapter, 4, keep=1)
    assert [v.name for v in list_versions(models)] == [names[3]]
    assert names[3].startswith("v0004-")
    assert prune(models, keep=1) == []


def test_active_naming_a_missing_folder_is_no_active_version(models: Path, adapter: Path) -> None:
    (name,) = publish_n(models, adapter, 1)
    (models / ACTIVE).write_text("v0042-20260101-000000\n")
    assert active_version(models) is None
    assert not list_versions(models)[0].active
    (models / ACTIVE).write_text("../../etc\n")
    assert active_version(models) is None
    assert use_version(models, name).active


def test_a_crash_between_copy_and_rename_leaves_no_version(models: Path, adapter: Path) -> None:
    (name,) = publish_n(models, adapter, 1)
    leftover = models / VERSIONS / ".tmp-crashed"
    leftover.mkdir()
    (leftover / "adapter_config.json").write_text("{}")
    (models / VERSIONS / "not-a-version").mkdir()

    assert [v.name for v in list_versions(models)] == [name]
    assert publish_n(models, adapter, 1)[0].startswith("v0002-")

    old = time.time() - 2 * 3600
    os.utime(leftover, (old, old))
    prune(models, keep=5)
    assert not leftover.exists()  # stale leftovers are cleaned up by the next prune


def test_publish_refuses_a_folder_without_an_adapter(models: Path, tmp_path: Path) -> None:
    with pytest.raises(VersionError, match=r"adapter_config\.json"):
        publish(models, tmp_path, config={}, metrics={})
    with pytest.raises(VersionError, match="keep"):
        publish(models, tmp_path, config={}, metrics={}, keep=0)
    assert list_versions(models) == []
