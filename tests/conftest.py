"""Shared test fixtures: paths to transcript fixtures, a temporary home, a record builder."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The tests' dates are UTC days, whatever this machine's zone (recall reads days in the local zone).
os.environ["TZ"] = "UTC"
if hasattr(time, "tzset"):
    time.tzset()

TESTS = Path(__file__).resolve().parent
OWN_FIXTURES = TESTS / "fixtures" / "projects"
SHARED = TESTS.parents[1] / "shared"
SHARED_FIXTURES = SHARED / "fixtures" / "claude-code"
needs_shared = pytest.mark.skipif(
    not SHARED_FIXTURES.exists(),
    reason="../shared/fixtures/claude-code is not beside this checkout (it ships with the team's workspace)",
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cfg(tmp_path: Path):
    from lmm_mcp.config import Config

    return Config.load(home=tmp_path / "home", claude_dir=tmp_path / "projects")


@pytest.fixture
def conn(cfg):
    from lmm_mcp.store import connect

    c = connect(cfg.db_path)
    yield c
    c.close()


@pytest.fixture
def own_store(cfg, conn):
    """The tests' own fixture projects ingested into a real store, their memories refreshed."""
    from lmm_mcp.ingest import Ingester
    from lmm_mcp.memories import refresh_memories

    assert not Ingester(cfg, conn).ingest([OWN_FIXTURES]).errors
    refresh_memories(conn)
    return cfg, conn


def record(
    uuid: str,
    text: str = "",
    *,
    role: str = "user",
    parent: str | None = None,
    session: str = "sess-1",
    cwd: str = "/work/app",
    ts: str = "2026-10-01T10:00:00.000Z",
    message_id: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A Claude Code record with the usual envelope."""
    if role == "assistant":
        message = {
            "id": message_id or f"msg-{uuid}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": blocks if blocks is not None else [{"type": "text", "text": text}],
        }
    else:
        message = {"role": "user", "content": blocks if blocks is not None else text}
    return {
        "type": role,
        "uuid": uuid,
        "parentUuid": parent,
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session,
        "version": "2.1.40",
        "gitBranch": "main",
        "timestamp": ts,
        "message": message,
        **extra,
    }


def write_jsonl(path: Path, records: list[Any], *, mode: str = "wb") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as fh:
        for r in records:
            fh.write(r if isinstance(r, bytes) else orjson.dumps(r) + b"\n")
    return path


def conversation(session: str, n: int, *, cwd: str = "/work/app", words: str = "") -> list[dict[str, Any]]:
    """n prompt/reply pairs with distinct, searchable words."""
    out, parent = [], None
    for i in range(n):
        u, a = f"{session}-u{i}", f"{session}-a{i}"
        out.append(
            record(
                u,
                f"question {i} about topic{i} {words}",
                parent=parent,
                session=session,
                cwd=cwd,
                ts=f"2026-10-01T10:{i // 60:02d}:{i % 60:02d}.000Z",
            )
        )
        out.append(
            record(
                a,
                f"answer {i} explaining topic{i}",
                role="assistant",
                parent=u,
                session=session,
                cwd=cwd,
                ts=f"2026-10-01T10:{i // 60:02d}:{i % 60:02d}.500Z",
            )
        )
        parent = a
    return out


def stored_sessions(db: Path) -> set[str]:
    """The session keys a store holds, read from another connection; empty while it is not there or migrated."""
    if not db.exists():
        return set()
    conn = sqlite3.connect(db, timeout=30)
    try:
        return {r[0] for r in conn.execute("SELECT key FROM sessions")}
    except sqlite3.OperationalError:  # not migrated yet
        return set()
    finally:
        conn.close()
