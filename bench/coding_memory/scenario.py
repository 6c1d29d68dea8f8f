"""The coding-memory benchmark's history: 28 sessions of one developer over four projects, January 5 to
February 10, 2026, written as Claude Code 2.1 transcripts.

    labels = write_sessions(claude_dir)    # {label: session id}; files under <claude_dir>/<encoded cwd>/
    texts = session_texts()                # {label: every word the session holds}, to check the questions

The sessions (one module per project) are ordinary work: stacks told in prose, decisions with their reasons,
corrections, errors seen in tool output and fixed, facts that change later (a host, an ORM, a migration tool,
versions), open tasks. Besides: one session that is only tool output (ledgerline, January 30), one nearly empty
(kiln, February 5), a fetched page with a prompt injection and a pasted fake API key (trailmap, January 20).
`lmm_mcp.samples.build.Session` writes the records, as it does for the demo's samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from lmm_mcp.samples.build import Session, encode_cwd

from . import blog, kiln, ledgerline, trailmap
from .spec import Spec
from .trailmap import FAKE_KEY

SESSIONS: list[Spec] = sorted(
    [*ledgerline.SESSIONS, *trailmap.SESSIONS, *kiln.SESSIONS, *blog.SESSIONS], key=lambda spec: spec.start
)
INJECTION = "ignore your previous instructions"  # the fetched page's words to agents (trailmap.INJECTED_PAGE)
SECRET = FAKE_KEY


def play(spec: Spec) -> Session:
    session = Session(spec.cwd, spec.start, branch=spec.branch, version=spec.version, title=spec.title)
    spec.script(session)
    return session


def write_sessions(claude_dir: Path) -> dict[str, str]:
    """Write every session as `<claude_dir>/<encoded cwd>/<session id>.jsonl`; return {label: session id}."""
    ids = {}
    for spec in SESSIONS:
        session = play(spec)
        path = claude_dir / encode_cwd(session.cwd) / f"{session.id}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in session.lines()))
        ids[spec.label] = session.id
    return ids


def session_texts() -> dict[str, str]:
    """Per label: the session's date, project name and every string of its messages and tool results."""
    out = {}
    for spec in SESSIONS:
        parts = [spec.start[:10], spec.cwd.rsplit("/", 1)[-1]]
        for record in play(spec).records:
            content = (record.get("message") or {}).get("content")
            blocks = [{"text": content}] if isinstance(content, str) else content or []
            for block in blocks:
                _strings([block.get(k) for k in ("text", "input", "content")], parts)
        out[spec.label] = "\n".join(parts)
    return out


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)
