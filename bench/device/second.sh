#!/usr/bin/env bash
# Call 2 of 2 on the lent GPU machine, within 30 s of call 1's end (bench/device/README.md):
#
#   run  command "bash bench/device/second.sh"  carry [".dev/model/b"]  timeout_s 600
#
# Joins the GGUF's two parts (a came in call 1) and checks its sha256, then runs gpu_check's pipeline,
# recall and memory steps on it with the packages call 1 installed in .dev/site. Every step is bounded so the
# whole ends within BUDGET seconds (default 540); what finished is in $OUT: each step's JSON and log, and
# gpu_check.json. Environment: STEPS, BUDGET, MEMORY_MINUTES (default 2 here), MEMORY_ARGS (default
# "--limit 88": half the questions, spread over the categories), TIMEOUT_PIPELINE (default 270),
# TIMEOUT_RECALL (60) and the rest of gpu_check.sh's; arguments go to gpu_check.sh.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out="${OUT:-$PWD/.dev/out/second}"
mkdir -p "$out"
export PYTHON="${PYTHON:-python3}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

cold() {
  echo "second.sh: $1: the machine went cold after call 1 and dropped its files. Run first.sh again, then" \
    "this within 30 s of its end." >&2
  exit 3
}
[[ -f .dev/model/b/part ]] || { echo "second.sh: no .dev/model/b: carry it" >&2; exit 2; }
[[ -f .dev/model/a/part ]] || cold "part a of the model (.dev/model/a) is gone"
[[ -d .dev/site ]] || cold "the installed wheels (.dev/site) are gone"

name="$(awk '$2 !~ /^[ab]\/part$/ { print $2 }' .dev/model/b/SHA256SUMS)"
gguf="$PWD/.dev/model/$name"
if ! [[ -f "$gguf" ]] || ! (cd .dev/model && grep -F "  $name" b/SHA256SUMS | sha256sum -c --quiet -); then
  cat .dev/model/a/part .dev/model/b/part >"$gguf"
  if ! (cd .dev/model && sha256sum -c --quiet b/SHA256SUMS); then
    rm -f "$gguf"
    echo "second.sh: the joined model does not match its sha256 (see above): run prepare.sh here again," \
      "and carry a and b from the same run" >&2
    exit 4
  fi
fi
echo "second.sh: $gguf joined and checked in $SECONDS s"

export PYTHONPATH="$PWD/.dev/site:$PWD"
STEPS="${STEPS:-pipeline recall memory}" DEADLINE="$((${BUDGET:-540} - SECONDS))" \
  TIMEOUT_PIPELINE="${TIMEOUT_PIPELINE:-270}" TIMEOUT_RECALL="${TIMEOUT_RECALL:-60}" \
  MEMORY_MINUTES="${MEMORY_MINUTES:-2}" MEMORY_ARGS="${MEMORY_ARGS:---limit 88}" \
  bash bench/gpu_check.sh --model "$gguf" --work "$out" --out "$out/gpu_check.json" "$@"
