"""Memories in the store: extraction from stored turns, merge, the memory chunks, incremental refresh."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

from lmm_mcp.ingest import Ingester
from lmm_mcp.memories import load_memories, refresh_memories
from lmm_mcp.retrieval import Retriever
from transcripts.extraction import extract, iter_sessions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synth import write_transcripts


def _ingest(cfg, conn, root: Path) -> None:
    report = Ingester(cfg, conn).ingest([root])
    assert not report.errors


def test_store_extraction_matches_extraction_from_files(cfg, conn, tmp_path):
    root = tmp_path / "projects"
    write_transcripts(root, 1.5, seed=3, projects=3)
    _ingest(cfg, conn, root)
    report = refresh_memories(conn)
    assert report.sessions_extracted > 0 and report.added == report.memories > 20
    stored = {m.key: m for m in load_memories(conn)}
    from_files = {m.key: m for m in extract(iter_sessions(root))}
    assert stored.keys() == from_files.keys()
    for key, m in stored.items():
        assert m.text == from_files[key].text
        assert {(s.session_id, s.uuid) for s in m.sources} == {
            (s.session_id, s.uuid) for s in from_files[key].sources
        }


def test_memories_are_chunks_that_retrieval_finds(cfg, conn, tmp_path):
    root = tmp_path / "projects"
    write_transcripts(root, 1.0, seed=4, projects=2)
    _ingest(cfg, conn, root)
    refresh_memories(conn)
    memories = load_memories(conn)
    n_chunks = conn.execute("SELECT count(*) FROM chunks WHERE kind = 'memory'").fetchone()[0]
    assert n_chunks == len(memories)
    target = next(m for m in memories if m.category == "error_fix")
    hits = Retriever(conn).retrieve(target.text, k=5)
    assert any(h.memory_key == target.key for h in hits)
    hit = next(h for h in hits if h.memory_key == target.key)
    assert (hit.session_id, hit.uuid) in {(s.session_id, s.uuid) for s in target.sources}


def test_refresh_is_incremental_and_idempotent(cfg, conn, tmp_path):
    root = tmp_path / "projects"
    write_transcripts(root, 1.0, seed=5, projects=2)
    _ingest(cfg, conn, root)
    first = refresh_memories(conn)
    chunk_ids = dict(conn.execute("SELECT key, chunk_id FROM memories").fetchall())
    again = refresh_memories(conn)
    assert again.sessions_extracted == 0 and again.added == again.changed == again.removed == 0
    assert again.memories == first.memories
    forced = refresh_memories(conn, force=True)
    assert forced.sessions_extracted == first.sessions_extracted
    assert forced.added == forced.changed == forced.removed == 0
    assert dict(conn.execute("SELECT key, chunk_id FROM memories").fetchall()) == chunk_ids


def test_sessions_extracted_by_older_rules_are_extracted_again(cfg, conn, tmp_path, monkeypatch):
    """Better extraction rules reach the sessions already stored: a session extracted by older rules is
    extracted again at the next refresh, once, and one whose stamp is current is left alone (a refresh
    killed halfway resumes where it stopped)."""
    import lmm_mcp.memories as memories

    root = tmp_path / "projects"
    write_transcripts(root, 1.0, seed=7, projects=2)
    _ingest(cfg, conn, root)
    first = refresh_memories(conn)
    keys = [k for (k,) in conn.execute("SELECT session_key FROM session_memories ORDER BY session_key")]
    assert first.sessions_extracted == len(keys) >= 3
    monkeypatch.setattr(memories, "EXTRACTION_RULES", memories.EXTRACTION_RULES + 1)
    conn.execute(
        "UPDATE session_memories SET rules = ? WHERE session_key = ?", (memories.EXTRACTION_RULES, keys[0])
    )
    upgraded = refresh_memories(conn)
    assert upgraded.sessions_extracted == len(keys) - 1
    assert upgraded.memories == first.memories  # the same rules in fact: the same memories
    assert refresh_memories(conn).sessions_extracted == 0
    stamps = {r for (r,) in conn.execute("SELECT DISTINCT rules FROM session_memories")}
    assert stamps == {memories.EXTRACTION_RULES}


def test_a_grown_session_is_reextracted_alone(cfg, conn, tmp_path):
    root = tmp_path / "projects"
    write_transcripts(root, 1.0, seed=6, projects=2)
    _ingest(cfg, conn, root)
    refresh_memories(conn)
    path = sorted(root.rglob("*.jsonl"))[0]
    records = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    last = next(r for r in reversed(records) if r.get("uuid") and r.get("type") in ("user", "assistant"))
    extra = {
        **{k: last[k] for k in ("sessionId", "cwd", "version") if k in last},
        "type": "user",
        "uuid": "0f0f0f0f-0000-4000-8000-000000000001",
        "parentUuid": last["uuid"],
        "timestamp": "2030-01-01T00:00:00.000Z",
        "isSidechain": False,
        "userType": "external",
        "message": {
            "role": "user",
            "content": "From now on, always use ripgrep instead of grep in this repo.",
        },
    }
    with path.open("ab") as fh:
        fh.write(orjson.dumps(extra) + b"\n")
    _ingest(cfg, conn, root)
    report = refresh_memories(conn)
    assert report.sessions_extracted == 1
    assert report.added >= 1
    assert any("ripgrep" in m.text for m in load_memories(conn))


def test_a_session_too_large_to_hold_is_extracted_window_by_window(cfg, conn, tmp_path, monkeypatch):
    """Windows read every turn once, in order, with its record uuids; extracted window by window, a session
    keeps the memories of its start and of its end (a multi-GB transcript costs one window's memory)."""
    import lmm_mcp.memories as memories
    from lmm_mcp.turns import load_session_turns, session_windows

    root = tmp_path / "projects"
    write_transcripts(root, 1.5, seed=3, projects=3)
    _ingest(cfg, conn, root)
    key, size = conn.execute(
        "SELECT session_key, sum(length(text) + length(tool_results)) AS n FROM turns"
        " GROUP BY session_key ORDER BY n DESC LIMIT 1"
    ).fetchone()
    whole = load_session_turns(conn, key)
    windows = list(session_windows(conn, key, size // 5))
    assert len(windows) >= 4 and all(windows)
    assert [t for w in windows for t in w] == whole  # every field, aliases included, in arrival order

    refresh_memories(conn)
    at_once = {
        m.key for m in load_memories(conn) if any(s.session_id == whole[0].session_id for s in m.sources)
    }
    monkeypatch.setattr(memories, "EXTRACT_WINDOW_CHARS", size // 5)
    refresh_memories(conn, force=True)
    windowed = {
        m.key for m in load_memories(conn) if any(s.session_id == whole[0].session_id for s in m.sources)
    }
    assert at_once and len(windowed & at_once) >= 0.8 * len(at_once)
