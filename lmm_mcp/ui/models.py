"""The adapter versions as the browser shows them: evaluation table, other figures, where the loss curve is.

A version folder holds `metrics.json` (`trainer.versions`); the loss curve is drawn into the training run's
`eval/loss.png` (`trainer.report`), and a version names its run in `run.json`. A curve is served only from
inside the version's own folder or that run's `eval` folder, whatever the names in those files say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmm_mcp.config import Config
from trainer.atomic import read_json
from trainer.report import ROWS
from trainer.versions import RUN_FILE, VersionInfo, list_versions

PLOT = "loss.png"


@dataclass(frozen=True)
class VersionRow:
    info: VersionInfo
    table: list[tuple[str, Any, Any]]  # (label, adapter, retrieval alone) per evaluation figure
    figures: list[tuple[str, Any]]  # every other scalar, as dotted name and value
    has_plot: bool


def version_rows(cfg: Config) -> list[VersionRow]:
    """Every version, newest first, with what its evaluation measured."""
    out = []
    for info in list_versions(cfg.models_dir):
        evaluation = info.metrics.get("eval") or {}
        model, baseline = evaluation.get("model") or {}, evaluation.get("baseline") or {}
        table = [
            (label, model.get(key), baseline.get(key))
            for key, label, _better in ROWS
            if key in model or key in baseline
        ]
        rest = {k: v for k, v in info.metrics.items() if k != "eval"}
        rest["eval"] = {k: v for k, v in evaluation.items() if k not in ("model", "baseline", "verdict")}
        out.append(VersionRow(info, table, _flat(rest), loss_plot(cfg, info.name) is not None))
    return out


def loss_plot(cfg: Config, name: str) -> Path | None:
    """The loss curve of version `name`, if it has one: a file inside its folder or its run's eval folder."""
    info = next((v for v in list_versions(cfg.models_dir) if v.name == name), None)
    if info is None:
        return None
    folders = [info.path]
    run = (read_json(info.path / RUN_FILE) or {}).get("run")
    if isinstance(run, str) and run == Path(run).name and run not in ("", ".", ".."):  # a name, not a path
        folders.append(cfg.home / "runs" / run / "eval")
    for folder in folders:
        found = _inside(folder, folder / PLOT)
        if found is not None and found.is_file():
            return found
    return None


def _inside(folder: Path, path: Path) -> Path | None:
    """`path` resolved, when it lies inside `folder` (resolved); a link out or a `..` name gives None."""
    try:
        root, resolved = folder.resolve(strict=True), path.resolve(strict=True)
    except OSError:
        return None
    return resolved if resolved.is_relative_to(root) and resolved != root else None


def _flat(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _flat(v, f"{prefix}{k}.")]
    if isinstance(value, list | tuple):
        return []
    return [(prefix.rstrip("."), value)]
