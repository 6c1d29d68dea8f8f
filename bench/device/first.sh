#!/usr/bin/env bash
# Call 1 of 2 on the lent GPU machine (bench/device/README.md has the whole procedure):
#
#   run  command "bash bench/device/first.sh"  carry [".dev/wheels", ".dev/model/a"]  timeout_s 420
#
# Installs the carried wheels into .dev/site (git-ignored, so it stays for call 2 while the machine is warm),
# checks that the GPU path imports, and runs gpu_check's throughput step (a random Qwen3-1.7B-shaped model: no
# weights needed). Everything lands in $OUT: install.log, imports.txt, throughput.json/.log, gpu_check.json.
# PYTHON overrides the interpreter (default python3, the one that holds torch there).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out="${OUT:-$PWD/.dev/out/first}"
mkdir -p "$out"
export PYTHON="${PYTHON:-python3}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

[[ -d .dev/wheels ]] || { echo "first.sh: no .dev/wheels: run bench/device/prepare.sh here and carry it" >&2; exit 2; }
# Part a waits here for call 2; a part damaged on the way is better known now.
(cd .dev/model 2>/dev/null && grep ' a/part$' a/SHA256SUMS | sha256sum -c --quiet -) \
  || echo "first.sh: .dev/model/a is missing or damaged: carry it (call 2 needs it)" >&2

# The missing packages, and each floor package whose copy on this machine is older than floors.txt asks.
floor="$("$PYTHON" - <<'PY'
import importlib.metadata as m
from pathlib import Path

from packaging.version import Version

folder = Path(".dev/wheels/floor")
for line in (folder / "floors.txt").read_text().splitlines():
    name, least = line.split()
    try:
        if Version(m.version(name)) >= Version(least):
            continue
    except m.PackageNotFoundError:
        pass
    print(*folder.glob(name.replace("-", "_") + "-*.whl"))
PY
)"
echo "first.sh: floor wheels needed here: ${floor:-none}"
rm -rf .dev/site
# shellcheck disable=SC2086  # $floor is a list of paths
if ! "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target .dev/site \
  .dev/wheels/*.whl $floor >"$out/install.log" 2>&1; then
  cat "$out/install.log" >&2
  echo "first.sh: the wheels did not install" >&2
  exit 1
fi
export PYTHONPATH="$PWD/.dev/site:$PWD"

"$PYTHON" - <<'PY' 2>&1 | tee "$out/imports.txt"
"""What the GPU path imports, and the versions it got."""
import importlib, importlib.metadata as m

failed = []
for name in ("mcp", "orjson", "watchdog", "gguf", "torch", "transformers", "peft", "accelerate",
             "lmm_mcp.server", "lmm_mcp.app", "trainer.pipeline", "trainer.train", "trainer.models"):
    try:
        importlib.import_module(name)
    except Exception as e:  # any failure here is worth a line, not a stop: the throughput step may still run
        failed.append(name)
        print(f"import {name}: {type(e).__name__}: {e}")
import torch

print("cuda:", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")
dists = ("torch", "transformers", "peft", "accelerate", "huggingface-hub", "tokenizers", "mcp", "pydantic",
         "typing-extensions", "anyio")
print("versions:", ", ".join(f"{d} {m.version(d)}" for d in dists))
print("imports:", f"FAILED {failed}" if failed else "all ok")
PY

STEPS=throughput DEADLINE="${DEADLINE:-$((360 - SECONDS))}" TIMEOUT_THROUGHPUT="${TIMEOUT_THROUGHPUT:-300}" \
  bash bench/gpu_check.sh --work "$out" --out "$out/gpu_check.json" "$@"
