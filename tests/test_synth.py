"""Tests for bench/synth.py, the synthetic Claude Code transcript generator.

Small runs (a few MB, well under a second each) checked for what the parser and benchmarks rely on: valid
JSONL, the real envelope and layout, streamed assistant messages, tool results of the right shape, determinism
and the requested size.

Run:  pytest tests/test_synth.py -q
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
import synth

ENVELOPE = (
    "parentUuid",
    "isSidechain",
    "userType",
    "cwd",
    "sessionId",
    "version",
    "gitBranch",
    "uuid",
    "timestamp",
)
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def load(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [orjson.loads(line) for line in data.split(b"\n")[:-1]]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("projects")
    return root, synth.write_transcripts(root, 5.0, seed=0)


@pytest.fixture(scope="module")
def records(tree: tuple[Path, list[Path]]) -> dict[Path, list[dict[str, Any]]]:
    return {p: load(p) for p in tree[1]}


def sessions(records: dict[Path, list[dict[str, Any]]]) -> dict[Path, list[dict[str, Any]]]:
    return {p: r for p, r in records.items() if p.parent.name != "subagents"}


def test_returns_every_jsonl_written(tree: tuple[Path, list[Path]]) -> None:
    root, paths = tree
    assert sorted(paths) == sorted(root.rglob("*.jsonl"))
    assert len({p.name for p in paths}) == len(paths)


def test_every_line_is_json_with_the_envelope(records: dict[Path, list[dict[str, Any]]]) -> None:
    for recs in records.values():
        for rec in recs:
            assert isinstance(rec, dict) and isinstance(rec["type"], str)
            if rec["type"] in ("user", "assistant", "system"):
                for key in ENVELOPE:
                    assert key in rec, (key, rec)
                assert rec["userType"] == "external"
                assert rec["version"].startswith("2.1.")
                assert ISO_MS.match(rec["timestamp"])
                assert UUID.match(rec["uuid"])
                assert rec["cwd"].startswith("/")


def test_layout_folders_and_ids(
    tree: tuple[Path, list[Path]], records: dict[Path, list[dict[str, Any]]]
) -> None:
    root = tree[0]
    subagents = 0
    for path, recs in records.items():
        rel = path.relative_to(root).parts
        envelope = [r for r in recs if "uuid" in r]
        cwd = envelope[0]["cwd"]
        assert rel[0] == re.sub(r"[^a-zA-Z0-9]", "-", cwd)
        assert all(r["cwd"] == cwd for r in envelope)
        if len(rel) == 2:
            assert UUID.match(path.stem)
            assert all(r["sessionId"] == path.stem and r["isSidechain"] is False for r in envelope)
            assert "agentId" not in envelope[0]
        else:
            subagents += 1
            session, folder, name = rel[1:]
            assert folder == "subagents" and name.startswith("agent-")
            agent_id = path.stem.removeprefix("agent-")
            assert (root / rel[0] / f"{session}.jsonl").exists()
            assert all(r["sessionId"] == session and r["isSidechain"] is True for r in envelope)
            assert all(r["agentId"] == agent_id for r in envelope)
            meta = orjson.loads(path.with_name(f"agent-{agent_id}.meta.json").read_bytes())
            assert set(meta) == {"agentType", "description", "toolUseId"}
            parent = load(root / rel[0] / f"{session}.jsonl")
            uses = {
                b["id"]: b
                for r in parent
                if r["type"] == "assistant"
                for b in r["message"]["content"]
                if b["type"] == "tool_use"
            }
            assert uses[meta["toolUseId"]]["name"] in ("Task", "Agent")
            assert uses[meta["toolUseId"]]["input"]["prompt"] == envelope[0]["message"]["content"]
    assert subagents > 0


def test_parent_chain_and_time_order(records: dict[Path, list[dict[str, Any]]]) -> None:
    for recs in records.values():
        seen: set[str] = set()
        last = ""
        for rec in recs:
            if "uuid" not in rec:
                continue
            assert rec["parentUuid"] is None or rec["parentUuid"] in seen
            assert rec["timestamp"] > last
            seen.add(rec["uuid"])
            last = rec["timestamp"]
        assert recs[0].get("parentUuid") is None


def test_streamed_assistant_records_share_message_id(records: dict[Path, list[dict[str, Any]]]) -> None:
    multi = 0
    for recs in records.values():
        chain = [r for r in recs if "uuid" in r]
        groups: dict[str, list[int]] = defaultdict(list)
        for i, rec in enumerate(chain):
            if rec["type"] == "assistant" and not rec.get("isApiErrorMessage"):
                assert len(rec["message"]["content"]) == 1  # one record per content block
                groups[rec["message"]["id"]].append(i)
        for idx in groups.values():
            group = [chain[i] for i in idx]
            assert idx == list(range(idx[0], idx[0] + len(idx)))  # consecutive
            assert len({r["requestId"] for r in group}) == 1
            assert all(r["message"]["stop_reason"] is None for r in group[:-1])
            assert group[-1]["message"]["stop_reason"] in ("tool_use", "end_turn", "stop_sequence")
            multi += len(idx) > 1
    assert multi > 50


def test_tool_results_match_uses_and_shapes(records: dict[Path, list[dict[str, Any]]]) -> None:
    names: dict[str, str] = {}
    seen_tools: set[str] = set()
    errors = big_reads = 0
    for recs in records.values():
        for rec in recs:
            if rec["type"] == "assistant":
                for b in rec["message"]["content"]:
                    if b["type"] == "tool_use":
                        names[b["id"]] = b["name"]
                        assert isinstance(b["input"], dict)
            content = rec.get("message", {}).get("content") if rec["type"] == "user" else None
            if not isinstance(content, list):
                continue
            for block in content:
                if block["type"] != "tool_result":
                    continue
                name = names.pop(block["tool_use_id"])  # each tool_use answered once, after it
                seen_tools.add(name)
                result = rec["toolUseResult"]
                if block.get("is_error"):
                    errors += 1
                    assert isinstance(result, str) and result.startswith("Error")
                elif name == "Bash":
                    assert {"stdout", "stderr", "interrupted"} <= set(result)
                elif name == "Read":
                    assert {"filePath", "content"} <= set(result["file"])
                    big_reads += len(result["file"]["content"]) >= 20_000
                elif name == "Edit":
                    assert {"filePath", "oldString", "newString"} <= set(result)
                elif name == "Write":
                    assert result["type"] == "create" and {"filePath", "content"} <= set(result)
                elif name == "TodoWrite":
                    assert {"oldTodos", "newTodos"} <= set(result)
    assert not names
    assert {"Bash", "Read", "Edit", "Write", "Grep", "Glob", "TodoWrite"} <= seen_tools
    assert errors > 0 and big_reads > 0


def test_markup_and_side_records_appear(records: dict[Path, list[dict[str, Any]]]) -> None:
    kinds = {(r["type"], r.get("subtype")) for recs in records.values() for r in recs}
    assert {("file-history-snapshot", None), ("system", "turn_duration")} <= kinds
    user_text = [
        orjson.dumps(r["message"]["content"]).decode()
        for recs in records.values()
        for r in recs
        if r["type"] == "user"
    ]
    assert any("<system-reminder>" in t for t in user_text)
    assert any("<command-name>" in t for t in user_text)
    blocks = [
        b["type"] for recs in records.values() for r in recs if r["type"] == "assistant"
        for b in r["message"]["content"]
    ]  # fmt: skip
    assert {"thinking", "text", "tool_use"} <= set(blocks)


def test_session_sizes_and_lengths(records: dict[Path, list[dict[str, Any]]]) -> None:
    for path, recs in sessions(records).items():
        assert synth.MIN_FILE <= path.stat().st_size <= synth.MAX_FILE
        assert 50 <= sum(1 for r in recs if "uuid" in r) <= 450


@pytest.mark.parametrize("mb", [0.5, 1.0, 4.0])
def test_total_size_within_20_percent(tmp_path: Path, mb: float) -> None:
    paths = synth.write_transcripts(tmp_path, mb, seed=7, projects=3)
    total = sum(p.stat().st_size for p in paths)
    assert abs(total - mb * synth.MB) <= 0.2 * mb * synth.MB
    assert len({p.relative_to(tmp_path).parts[0] for p in paths}) <= 3


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def snapshot(root: Path, seed: int) -> dict[str, bytes]:
        synth.write_transcripts(root, 1.0, seed=seed)
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    first = snapshot(tmp_path / "a", 11)
    assert first == snapshot(tmp_path / "b", 11)
    assert first != snapshot(tmp_path / "c", 12)


def test_synthetic_chunks() -> None:
    chunks = list(synth.synthetic_chunks(500, seed=3, projects=4))
    assert len(chunks) == 500
    assert len({c[0] for c in chunks}) == 4
    assert [c[1] for c in chunks] == sorted(c[1] for c in chunks)
    for project, ts, text in chunks:
        assert project.startswith("/") and ISO_MS.match(ts)
        assert 100 <= len(text) <= 1200
    assert len({c[2] for c in chunks}) > 450
    assert chunks == list(synth.synthetic_chunks(500, seed=3, projects=4))


def test_synthetic_queries() -> None:
    queries = synth.synthetic_queries(200, seed=5)
    assert len(queries) == 200
    assert all(q and "{" not in q and "}" not in q for q in queries)
    assert len(set(queries)) > 150
    assert queries == synth.synthetic_queries(200, seed=5)


def test_cli_writes_a_tree(tmp_path: Path) -> None:
    script = Path(__file__).parents[1] / "bench" / "synth.py"
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "out"), "--mb", "0.3", "--seed", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(out.stdout.strip().splitlines()) == 1 and "MB/s" in out.stdout
    assert list((tmp_path / "out").rglob("*.jsonl"))
