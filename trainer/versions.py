"""Adapter versions under the home's `models/` folder, and the pointer to the active one.

    info = publish(home / "models", run_dir / "adapter", config=run_config, metrics=eval_metrics)
    list_versions(home / "models")          # newest first
    use_version(home / "models", "v0003")   # or 3, or the full name

Layout:

    models/ACTIVE                              the active version's name, one line
    models/versions/v0003-20261105-101500/     adapter files (PEFT's own format), run.json, metrics.json
                                               and STALE once data it may have trained on was forgotten

A version is written into a hidden temporary folder beside the others and renamed into place, so a
half-copied version never shows up; `ACTIVE` is replaced atomically (temporary file, fsync, `os.replace`),
so a reader sees the old pointer or the new one. The timestamp in a name is UTC. Publishing prunes old
versions but never the active one. No locking: one trainer publishes at a time.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainer.atomic import read_json, write_bytes, write_json
from trainer.errors import TrainerError

VERSIONS = "versions"
ACTIVE = "ACTIVE"
RUN_FILE, METRICS_FILE = "run.json", "metrics.json"
STALE_FILE = "STALE"  # why the version is stale, one line
STALE_S = 3600  # a temporary folder older than this is left over from a crash, not a publish in progress
_NAME = re.compile(r"v(\d{4,})-(\d{8}-\d{6})")
_STAMP = "%Y%m%d-%H%M%S"
_BULKY = frozenset({"by_category", "examples"})  # left out of a listing's metrics summary


class VersionError(TrainerError):
    """No such adapter version, or not an adapter folder; the message says what exists or what to pass."""


@dataclass(frozen=True)
class VersionInfo:
    name: str  # "v0003-20261105-101500"
    path: Path
    created: str  # ISO 8601, UTC, from the name
    active: bool
    base_model: str | None  # run.json's "model": the base the adapter was trained on
    metrics: dict[str, Any] = field(
        default_factory=dict
    )  # metrics.json without examples and per-category rows
    stale: str | None = None  # why: it may have trained on data the user has since forgotten

    @property
    def number(self) -> int:
        return int(self.name[1:].split("-", 1)[0])

    @property
    def verdict(self) -> dict[str, Any]:
        """Whether this adapter beat retrieval alone on held-out questions, and why (`trainer.evaluate`).
        A version from before verdicts were recorded, or without an evaluation, did not show that it did."""
        found = (self.metrics.get("eval") or {}).get("verdict")
        if isinstance(found, dict) and "beats_retrieval" in found:
            return {"beats_retrieval": bool(found["beats_retrieval"]), "why": str(found.get("why", ""))}
        return {"beats_retrieval": False, "why": "its evaluation recorded no comparison with retrieval"}

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path), "number": self.number}


def publish(
    models_dir: Path,
    adapter_dir: Path,
    *,
    config: dict[str, Any],
    metrics: dict[str, Any],
    activate: bool = True,
    keep: int = 5,
) -> VersionInfo:
    """Copy the adapter in `adapter_dir` into a new version with its run config and metrics.

    Then make it the active one (unless `activate` is False) and prune to the newest `keep` versions plus
    the active one.
    """
    models_dir, adapter_dir = Path(models_dir), Path(adapter_dir)
    if keep < 1:
        raise VersionError(f"keep={keep} would delete the version just published: keep at least 1")
    if not (adapter_dir / "adapter_config.json").is_file():
        raise VersionError(
            f"{adapter_dir} holds no adapter_config.json: pass the folder a PEFT model was saved to"
        )
    versions = models_dir / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=versions))
    try:
        shutil.copytree(adapter_dir, tmp, dirs_exist_ok=True)
        write_json(tmp / RUN_FILE, config, indent=True)
        write_json(tmp / METRICS_FILE, metrics, indent=True)
        _fsync_tree(tmp)
        name = _rename_into_place(tmp, versions)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(versions)
    if activate:
        _write_active(models_dir, name)
    prune(models_dir, keep=keep)
    return _info(versions / name, active=_read_active(models_dir) == name)


def _rename_into_place(tmp: Path, versions: Path) -> str:
    number = max((_number(p) for p in _scan(versions)), default=0) + 1
    stamp = datetime.now(UTC).strftime(_STAMP)
    while True:
        name = f"v{number:04d}-{stamp}"
        target = versions / name
        # Another publisher may have taken the number: the check avoids renaming onto an empty folder,
        # the error catches the race in between.
        if not any(_number(p) == number for p in _scan(versions)) and not target.exists():
            try:
                os.rename(tmp, target)
                return name
            except OSError:
                if not target.exists():
                    raise
        number += 1


def list_versions(models_dir: Path) -> list[VersionInfo]:
    """Every complete version, newest (highest number) first."""
    models_dir = Path(models_dir)
    active = _read_active(models_dir)
    return [_info(p, active=p.name == active) for p in _scan(models_dir / VERSIONS)]


def active_version(models_dir: Path) -> VersionInfo | None:
    """The version `ACTIVE` names; None when there is none or its folder is gone."""
    models_dir = Path(models_dir)
    name = _read_active(models_dir)
    if name is None or not _NAME.fullmatch(name) or not (models_dir / VERSIONS / name).is_dir():
        return None
    return _info(models_dir / VERSIONS / name, active=True)


def find_version(models_dir: Path, name: str | int) -> VersionInfo:
    """The version called `name`: its full name, its number prefix ("v0003", "v3") or its number (3)."""
    versions = list_versions(models_dir)
    key = str(name).strip()
    number = re.fullmatch(r"v?(\d+)", key)
    for info in versions:
        if info.name == key or (number is not None and info.number == int(number.group(1))):
            return info
    if not versions:
        raise VersionError(f"no adapter versions in {Path(models_dir) / VERSIONS}: train one first")
    available = ", ".join(v.name + (" (active)" if v.active else "") for v in versions)
    raise VersionError(
        f"no adapter version {key!r}; available: {available}. Pass a full name, a prefix like "
        f"{versions[0].name.split('-', 1)[0]} or a number"
    )


def use_version(models_dir: Path, name: str | int) -> VersionInfo:
    """Make the version called `name` (full name, "v0003" or 3) the active one; return it."""
    info = find_version(models_dir, name)
    _write_active(Path(models_dir), info.name)
    return replace(info, active=True)


def prune(models_dir: Path, *, keep: int) -> list[str]:
    """Delete all but the newest `keep` versions, never the active one; return the names deleted.

    A version is renamed to a hidden name before it is deleted, so a listing never shows half of one.
    Temporary folders left over from a crash (older than an hour) go too.
    """
    models_dir = Path(models_dir)
    versions = models_dir / VERSIONS
    active = _read_active(models_dir)
    removed: list[str] = []
    for path in _scan(versions)[max(keep, 0) :]:
        if path.name == active:
            continue
        doomed = versions / f".del-{path.name}-{os.getpid()}"
        try:
            os.rename(path, doomed)
        except FileNotFoundError:  # pruned by someone else meanwhile
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(path.name)
    if versions.is_dir():
        for leftover in versions.iterdir():
            if leftover.name.startswith((".tmp-", ".del-")) and _age_s(leftover) > STALE_S:
                shutil.rmtree(leftover, ignore_errors=True)
    return removed


def _scan(versions: Path) -> list[Path]:
    """Version folders, newest first; temporary and foreign folders are not versions."""
    if not versions.is_dir():
        return []
    found = [p for p in versions.iterdir() if _NAME.fullmatch(p.name) and p.is_dir()]
    return sorted(found, key=lambda p: (_number(p), p.name), reverse=True)


def _number(path: Path) -> int:
    return int(path.name[1:].split("-", 1)[0])


def _info(path: Path, *, active: bool) -> VersionInfo:
    stamp = _NAME.fullmatch(path.name).group(2)
    created = datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC).isoformat()
    run = read_json(path / RUN_FILE)
    model = run.get("model")
    return VersionInfo(
        name=path.name,
        path=path,
        created=created,
        active=active,
        base_model=str(model) if model is not None else None,
        metrics=metrics_summary(read_json(path / METRICS_FILE)),
        stale=_read_stale(path),
    )


def mark_stale(models_dir: Path, since: datetime | None, reason: str) -> list[str]:
    """Mark every version made at or after `since` (naive UTC; None: every version) as stale, because
    it may have trained on data that is gone now; return their names. A retrain makes a fresh one."""
    marked = []
    for path in _scan(Path(models_dir) / VERSIONS):
        made = datetime.strptime(_NAME.fullmatch(path.name).group(2), _STAMP)
        if since is None or made >= since:
            write_bytes(path / STALE_FILE, (reason + "\n").encode())
            marked.append(path.name)
    return marked


def _read_stale(path: Path) -> str | None:
    try:
        return (path / STALE_FILE).read_text(encoding="utf-8").strip() or "stale"
    except OSError:
        return None


def metrics_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """`metrics` in its own shape with the bulk left out: lists (examples) and per-category breakdowns.

    What stays is every scalar at any depth, e.g. `{"sft": {"best_val_loss": 1.2, ...}, "eval": {"model":
    {"specificity": 0.4, ...}, "baseline": {...}, "n": 100}}` for what the pipeline publishes.
    """
    summary: dict[str, Any] = {}
    for key, value in metrics.items():
        if key in _BULKY or isinstance(value, list | tuple):
            continue
        summary[key] = metrics_summary(value) if isinstance(value, dict) else value
    return summary


def _read_active(models_dir: Path) -> str | None:
    try:
        name = (models_dir / ACTIVE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return name or None


def _write_active(models_dir: Path, name: str) -> None:
    write_bytes(models_dir / ACTIVE, (name + "\n").encode())  # fsynced, then renamed over the old pointer
    _fsync_dir(models_dir)  # and the rename itself made durable


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    # Makes a rename durable on POSIX; Windows cannot open a folder, and does not need it.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0
