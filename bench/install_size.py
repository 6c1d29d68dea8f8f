"""Install size and time of the core and of `[train]`, and the core server's cold start (issue 13).

    nice python bench/install_size.py [--variants core,train,train-cpu] [--runs 3] [--json]

In fresh virtual environments under a temporary folder, from a copy of this checkout (pip builds in the
source tree), each timed, then the size of each site-packages (du) and whether torch, transformers, scipy or
scikit-learn got in: `core` is `pip install .`; `train` is `pip install '.[train]'` as pip resolves it (on
Linux from PyPI: torch's CUDA build and its nvidia libraries); `train-cpu` installs the CPU build of torch
first (`--cpu-torch`, default `torch==2.13.0`, which this machine's pip serves from local disk; elsewhere
`--cpu-torch "torch --index-url https://download.pytorch.org/whl/cpu"`), then `.[train]`. In the core environment:
`lmm-mcp setup` (the embedding model's download and unpack, timed), an ingest of the bundled samples, then
`lmm-mcp serve` started cold `--runs` times: seconds to the `initialize` answer and to the first
`recall_memory` answer (retrieve mode, hybrid: the query is embedded). pip uses its own configuration, as a
user's would; where that serves torch's CUDA build, `[train]` measures that (see README for the CPU build).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "scipy", "scikit-learn", "sentence-transformers", "peft", "accelerate")
QUERY = {"query": "How do we run the tests?", "project": "/home/dev/code/tasklane-api", "mode": "retrieve"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="core,train,train-cpu", help="which installs to measure")
    parser.add_argument(
        "--cpu-torch", default="torch==2.13.0", help="pip arguments for the CPU build of torch"
    )
    parser.add_argument("--runs", type=int, default=3, help="cold starts of the server (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lmm-install-") as tmp:
        work = Path(tmp)
        src = work / "src"
        shutil.copytree(
            ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build")
        )
        variants = args.variants.split(",")
        doc: dict[str, Any] = {"python": sys.version.split()[0]}
        if "core" in variants:
            doc["core"] = install(work / "core", [str(src)])
            doc["core"].update(first_use(work / "core", work / "home", args.runs))
        if "train" in variants:
            doc["train"] = install(work / "train", [f"{src}[train]"])
        if "train-cpu" in variants:
            doc["train-cpu"] = install(work / "train-cpu", args.cpu_torch.split(), [f"{src}[train]"])
    if args.json:
        print(json.dumps(doc))
    else:
        print(report(doc))


def install(env_dir: Path, *steps: list[str]) -> dict[str, Any]:
    """A fresh venv with each step's arguments pip-installed in turn: wall time of all the steps,
    site-packages size, what heavy got in."""
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    started = time.perf_counter()
    for step in steps:
        _run([str(python), "-m", "pip", "install", "-q", *step], timeout=3600)
    seconds = time.perf_counter() - started
    site = next(env_dir.glob("lib/python*/site-packages"))
    listed = json.loads(_run([str(python), "-m", "pip", "list", "--format=json"]))
    names = {p["name"].lower(): p["version"] for p in listed}
    return {
        "install_s": round(seconds, 1),
        "site_packages_mb": round(_du(site) / 1e6, 1),
        "packages": len(names),
        "heavy": {n: names[n] for n in HEAVY if n in names},
        "torch": names.get("torch"),
    }


def first_use(env_dir: Path, home: Path, runs: int) -> dict[str, Any]:
    """`lmm-mcp setup`, an ingest of the samples, then cold starts of the server."""
    exe = str(env_dir / "bin" / "lmm-mcp")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"HF_HUB_OFFLINE": "1", "LMM_HOME": str(home)}
    started = time.perf_counter()
    _run([exe, "setup", "--json"], env=env, timeout=1800)
    setup_s = time.perf_counter() - started
    samples = next(env_dir.glob("lib/python*/site-packages/lmm_mcp/samples/projects"))
    _run([exe, "ingest", str(samples), "--json"], env=env, timeout=1800)
    starts = [cold_start(exe, env) for _ in range(runs)]
    return {
        "setup_s": round(setup_s, 1),
        "model_mb": round(_du(home / "models" / "base") / 1e6, 1),
        "initialize_s": [s["initialize_s"] for s in starts],
        "first_recall_s": [s["first_recall_s"] for s in starts],
        "initialize_p50_s": round(statistics.median(s["initialize_s"] for s in starts), 2),
        "first_recall_p50_s": round(statistics.median(s["first_recall_s"] for s in starts), 2),
        "sources": starts[-1]["sources"],
    }


def cold_start(exe: str, env: dict[str, str]) -> dict[str, Any]:
    """Seconds from spawning `lmm-mcp serve` to its `initialize` answer and to its first recall's answer."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [exe, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    try:
        _send(
            proc,
            1,
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "install-bench", "version": "0"},
            },
        )
        _answer(proc, 1)
        initialize_s = time.perf_counter() - started
        proc.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        _send(proc, 2, "tools/call", {"name": "recall_memory", "arguments": QUERY})
        answer = _answer(proc, 2)
        recall_s = time.perf_counter() - started
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    result = answer.get("result") or {}
    if result.get("isError") or "error" in answer:
        raise SystemExit(f"recall failed: {answer}")
    sources = len((result.get("structuredContent") or {}).get("sources") or [])
    return {"initialize_s": round(initialize_s, 2), "first_recall_s": round(recall_s, 2), "sources": sources}


def _send(proc: subprocess.Popen, id_: int, method: str, params: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(
        json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}).encode() + b"\n"
    )
    proc.stdin.flush()


def _answer(proc: subprocess.Popen, id_: int) -> dict[str, Any]:
    assert proc.stdout is not None
    while line := proc.stdout.readline():
        message = json.loads(line)
        if message.get("id") == id_:
            return message
    raise SystemExit(f"the server exited before answering request {id_}")


def _run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _du(path: Path) -> int:
    """Bytes on disk under `path` (what `du` counts: allocated blocks, hard links once)."""
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) * 1024


def report(doc: dict[str, Any]) -> str:
    lines = [f"{'install':<10}{'time s':>8}{'site-packages MB':>18}{'packages':>10}  heavy"]
    for name in ("core", "train", "train-cpu"):
        if name in doc:
            d = doc[name]
            heavy = ", ".join(f"{k} {v}" for k, v in d["heavy"].items()) or "none"
            lines.append(
                f"{name:<10}{d['install_s']:>8}{d['site_packages_mb']:>18}{d['packages']:>10}  {heavy}"
            )
    if "core" not in doc:
        return "\n".join(lines)
    c = doc["core"]
    lines.append(f"lmm-mcp setup: {c['setup_s']} s, model {c['model_mb']} MB")
    lines.append(
        f"core server cold start: initialize p50 {c['initialize_p50_s']} s {c['initialize_s']}, "
        f"first recall p50 {c['first_recall_p50_s']} s {c['first_recall_s']} ({c['sources']} sources)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
