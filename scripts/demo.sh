#!/usr/bin/env bash
# The main job on a fresh machine, offline: install, ingest the sample transcripts, search them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1
home=$(mktemp -d)
echo "== lmm-mcp ingest (sample transcripts in tests/fixtures/projects, store in $home)"
lmm-mcp ingest --home "$home" --claude-dir tests/fixtures/projects
for q in "why did the checkout test fail" "which routers does the API have" "SQLAlchemy sessions rule"; do
  echo; echo "== lmm-mcp search \"$q\""
  lmm-mcp search "$q" --home "$home" --k 3
done
echo; echo "== lmm-mcp status"
lmm-mcp status --home "$home"
