"""The bundled sample transcripts (`lmm_mcp.samples`): real format, up to date with their scenario, and rich
enough that every kind of memory, a changed decision, a cross-project preference and a redaction show up."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path

import orjson
import pytest

from lmm_mcp.ingest import Ingester
from lmm_mcp.memories import load_memories, refresh_memories
from lmm_mcp.samples import samples_path
from lmm_mcp.samples.build import build
from transcripts.extraction import CATEGORIES, extract, iter_sessions
from transcripts.parse import Skipped, Turn, discover, parse_file

FAKE_KEY = "FAKEFAKEFAKE"


def test_samples_are_up_to_date_with_their_scenario(tmp_path):
    """`python -m lmm_mcp.samples.build` is deterministic and the checked-in JSONL is what it writes."""
    fresh = {p.relative_to(tmp_path / "projects"): p.read_bytes() for p in build(tmp_path / "projects")}
    shipped = {p.relative_to(samples_path()): p.read_bytes() for p in samples_path().rglob("*.jsonl")}
    assert fresh.keys() == shipped.keys()
    stale = [str(p) for p in fresh if fresh[p] != shipped[p]]
    assert not stale, f"run `python -m lmm_mcp.samples.build`: {stale}"


def test_samples_follow_the_on_disk_format():
    files = discover(samples_path())
    assert sum(p.stat().st_size for p in samples_path().rglob("*")) < 1_500_000
    per_project = Counter(f.path.parent.name for f in files)
    assert len(per_project) == 3 and all(3 <= n <= 5 for n in per_project.values()), per_project
    starts = []
    for tf in files:
        records = [orjson.loads(line) for line in tf.path.read_bytes().splitlines()]
        assert 10 <= len(records) <= 42, (tf.path, len(records))
        assert records[0]["type"] == "summary" and records[0]["leafUuid"]
        chained = [r for r in records if "uuid" in r]
        seen: set[str | None] = {None}
        for r in chained:  # every record hangs off an earlier one: one unbroken parentUuid chain
            assert r["parentUuid"] in seen and r["sessionId"] == tf.path.stem
            assert re.sub(r"[^a-zA-Z0-9]", "-", r["cwd"]) == tf.path.parent.name
            seen.add(r["uuid"])
        stamps = [r["timestamp"] for r in chained]
        assert stamps == sorted(stamps)
        starts.append(stamps[0])
        items = list(parse_file(tf.path))
        assert not [i for i in items if isinstance(i, Skipped)]
        tools = {c.name for t in items if isinstance(t, Turn) for c in t.tool_calls}
        assert {"Bash", "Write"} <= tools or {"Bash", "Edit"} <= tools
    assert min(starts)[:10] < max(starts)[:10]  # sessions spread over weeks


@pytest.fixture(scope="module")
def memories():
    return extract(iter_sessions(samples_path()))


def test_every_kind_of_memory_is_extracted(memories):
    counts = Counter(m.category for m in memories)
    assert set(counts) == set(CATEGORIES) and all(counts[c] >= 3 for c in CATEGORIES), counts
    fixes = [m for m in memories if m.category == "error_fix"]
    assert any(
        "TypeError: can't compare offset-naive" in m.text and "passed afterwards" in m.text for m in fixes
    )
    facts = " ".join(m.text for m in memories if m.category == "project_fact")
    assert "tests run with `cargo test`" in facts and "pnpm vitest run" in facts and "pyproject.toml" in facts
    code = " ".join(m.text for m in memories if m.category == "code_knowledge")
    assert "function overdue_tasks(session, now)" in code


def test_a_changed_decision_supersedes_the_old_one(memories):
    decisions = {m.key: m for m in memories if m.category == "decision"}
    superseded = {
        m.attrs["choice"]: decisions[m.superseded_by] for m in decisions.values() if m.superseded_by
    }
    assert superseded["sqlite"].attrs["choice"] == "postgresql"
    assert superseded["recharts"].attrs["choice"] == "visx"


def test_a_preference_applies_across_projects(memories):
    [commits] = [m for m in memories if m.category == "preference" and m.project is None]
    assert "conventional commit messages" in commits.text
    assert len({s.project for s in commits.sources}) == 3  # said in every project, folded into one memory


def test_the_fake_key_is_redacted_on_ingest(cfg, conn):
    assert FAKE_KEY in b"".join(p.read_bytes() for p in samples_path().rglob("*.jsonl")).decode()
    report = Ingester(cfg, conn).ingest([samples_path()])
    assert report.lines_skipped == 0 and not report.errors
    assert report.secrets_by_kind == {"anthropic-api-key": 1}
    refresh_memories(conn)
    stored = load_memories(conn)
    assert any("[REDACTED:anthropic-api-key]" in m.text for m in stored)
    for table, column in (("turns", "text"), ("chunks", "text"), ("memories", "text"), ("memories", "attrs")):
        assert not conn.execute(f"SELECT 1 FROM {table} WHERE {column} LIKE ?", (f"%{FAKE_KEY}%",)).fetchone()
    archived = b"".join(gzip.decompress(p.read_bytes()) for p in Path(cfg.archive_dir).rglob("*.gz"))
    assert archived and FAKE_KEY.encode() not in archived
