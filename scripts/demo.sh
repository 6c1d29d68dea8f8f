#!/usr/bin/env bash
# The main job on a fresh machine, offline: install, then `lmm-mcp demo` on the bundled sample transcripts
# (ingest, recall by retrieval, a short CPU training of SmolLM2-135M, recall by generation, a summary).
# Extra arguments go to the demo: `bash scripts/demo.sh --no-train`, `--home DIR`, `--steps N`, `--json`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/lmm-mcp demo "$@"
