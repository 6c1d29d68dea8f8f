"""Which optional parts of lmm-mcp this environment has, and what to install for the missing ones.

    missing_training()                 # which of torch, transformers, peft, accelerate cannot be imported
    require_training("lmm-mcp train")  # TrainingUnavailable, whose message names the fix, when any cannot

The core install (`pip install lmm-mcp`) serves, ingests, retrieves (BM25 and vectors, `lmm_mcp.encoder`),
runs the hooks and the UI without torch. Training, generation and judging with an adapter, `lmm-mcp eval`
and the demo's training step need the `[train]` extra. Checked with `importlib.util.find_spec`, so asking
costs no import; a finder that refuses a module (an environment that blocks it) counts as missing. The
answer is kept for the process: recall asks on every call, and an environment does not gain torch mid-run.
"""

from __future__ import annotations

import functools
import importlib.util

TRAIN_MODULES = ("torch", "transformers", "peft", "accelerate")
TRAIN_INSTALL = "pip install 'lmm-mcp[train]'"
CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


class TrainingUnavailable(RuntimeError):
    """Something needs the training stack and this environment lacks it; the message says what to install."""


@functools.cache
def missing_training() -> tuple[str, ...]:
    """The training modules this environment cannot import (empty: training and generation can run)."""
    return tuple(name for name in TRAIN_MODULES if not importable(name))


def training_hint() -> str:
    """How to get the training stack, for messages."""
    return f"{TRAIN_INSTALL} (on a machine without a GPU, first `{CPU_TORCH}` to get the small CPU build)"


def require_training(what: str) -> None:
    """Raise TrainingUnavailable naming `what` and the fix, unless the training stack is importable."""
    missing = missing_training()
    if missing:
        raise TrainingUnavailable(
            f"{what} needs the training extra ({', '.join(missing)} not installed): {training_hint()}"
        )


def importable(name: str) -> bool:
    """`name` can be imported here (found, not imported)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a finder refused it, or a half-initialised module in sys.modules
        return False
