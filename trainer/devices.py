"""What accelerator this machine has, probed without importing torch (the server and hooks must stay light)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def gpu_visible() -> bool:
    """An NVIDIA GPU (its device nodes) or Apple silicon (MPS): somewhere a model trains and generates fast."""
    if Path("/dev/nvidia0").exists() or Path("/dev/nvidiactl").exists():
        return True
    return sys.platform == "darwin" and os.uname().machine == "arm64"
