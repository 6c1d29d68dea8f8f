"""Sample Claude Code transcripts bundled with lmm-mcp, for `lmm-mcp demo` and the tests.

Three small projects (a FastAPI service, a React dashboard, a Rust CLI), four sessions each, written from the
authored scenario in `scenario.py` by `python -m lmm_mcp.samples.build`. The JSONL is checked in, so the demo
never needs to regenerate it.
"""

from __future__ import annotations

from pathlib import Path


def samples_path() -> Path:
    """The bundled projects folder, laid out like `~/.claude/projects` (one folder per encoded cwd)."""
    return Path(__file__).resolve().parent / "projects"
