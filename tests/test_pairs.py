"""Training data from a real store: split, CPT documents, RAFT-style SFT pairs, balance, manifest, errors."""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from lmm_mcp.history import StoreHistory
from lmm_mcp.ingest import Ingester
from lmm_mcp.memories import refresh_memories
from lmm_mcp.retrieval import Retriever
from trainer.pairs import DataError, DataSettings, build_dataset
from trainer.prompts import ABSTAIN, citations

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synth import write_transcripts


@pytest.fixture
def history(cfg, conn, tmp_path):
    root = tmp_path / "projects"
    write_transcripts(root, 3.0, seed=1, projects=3)
    assert not Ingester(cfg, conn).ingest([root]).errors
    refresh_memories(conn)
    return StoreHistory(conn, Retriever(conn))


def _rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_dataset_split_pairs_and_manifest(history, tmp_path):
    out = tmp_path / "data"
    manifest = build_dataset(history, out, DataSettings(max_per_memory=2))
    sessions = history.sessions()
    val_ids = set(manifest["val_session_ids"])
    # the newest sessions are held out
    first = {}
    for s in sessions:
        first[s.session_id] = min(first.get(s.session_id, "~"), s.started_at or "")
    assert val_ids and max(first[i] for i in first if i not in val_ids) <= min(first[i] for i in val_ids)

    cpt_train, cpt_val = _rows(out / "cpt_train.jsonl"), _rows(out / "cpt_val.jsonl")
    assert cpt_train and cpt_val
    assert not {r["session_id"] for r in cpt_train} & val_ids
    assert {r["session_id"] for r in cpt_val} <= val_ids
    assert {"session", "memory"} <= {r["kind"] for r in cpt_train}

    train, val = _rows(out / "sft_train.jsonl"), _rows(out / "sft_val.jsonl")
    assert len(train) >= 8 and len(val) >= 2
    assert not {p["session_id"] for p in train} & val_ids and {p["session_id"] for p in val} <= val_ids
    for p in train + val:
        n = len(p["passages"])
        assert p["messages"][0]["role"] == "system" and p["query"] in p["messages"][1]["content"]
        assert 0 < p["weight"] <= 1
        if p["abstain"]:
            assert p["target"] == ABSTAIN and p["gold"] == []
            assert all(x.get("memory_key") != p["id"] for x in p["passages"])
        else:
            cited, _ = citations(p["target"], n)
            assert p["gold"] and cited and set(cited) <= set(p["gold"])
            gold = p["passages"][p["gold"][0] - 1]
            assert gold["memory_key"] == p["memory_key"] or gold["kind"] != "memory"
    assert any(p["abstain"] for p in train) and any(p["context"] == "prompt" for p in train + val)

    # balance: no memory more than max_per_memory times
    per_memory = Counter(p["memory_key"] for p in train + val if not p["abstain"])
    assert max(per_memory.values()) <= 2
    stats = manifest["stats"]["train"]
    answers = stats["pairs"] - stats["abstain"]  # the share is of answer pairs; 4 memories x 2 at most
    assert 0 < stats["target_jaccard"] < 0.5 and 0 < stats["top4_share"] <= round(
        8 / answers, 4
    )  # stored rounded

    for name, info in manifest["files"].items():
        data = (out / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"] and len(data.splitlines()) == info["rows"]
    assert manifest["counts"]["sft_train"] == len(train)


def test_same_seed_same_dataset(history, tmp_path):
    a = build_dataset(history, tmp_path / "a", DataSettings(seed=7))
    b = build_dataset(history, tmp_path / "b", DataSettings(seed=7))
    assert {n: f["sha256"] for n, f in a["files"].items()} == {n: f["sha256"] for n, f in b["files"].items()}


def test_abstain_pairs_hold_nothing_that_answers(history, tmp_path):
    out = tmp_path / "data"
    build_dataset(history, out, DataSettings(abstain_share=0.5))
    memories = {m.key: m for m in history.memories()}
    abstains = [p for p in _rows(out / "sft_train.jsonl") if p["abstain"]]
    assert abstains
    for p in abstains:
        m = memories[p["extra"]["abstain_of"]]
        sources = {(s.session_id, s.uuid) for s in m.sources}
        for x in p["passages"]:
            assert x["memory_key"] != m.key and (x["session_id"], x["uuid"]) not in sources


def test_empty_history_says_ingest_first(conn, tmp_path):
    with pytest.raises(DataError, match="nothing to train on: ingest sessions first"):
        build_dataset(StoreHistory(conn, Retriever(conn)), tmp_path / "data", DataSettings())


def test_too_little_data_reports_the_counts(cfg, conn, tmp_path):
    from tests.conftest import OWN_FIXTURES

    assert not Ingester(cfg, conn).ingest([OWN_FIXTURES]).errors
    refresh_memories(conn)
    with pytest.raises(
        DataError, match=r"too little data to train: \d+ sessions .* memories, \d+ training pairs"
    ):
        build_dataset(StoreHistory(conn, Retriever(conn)), tmp_path / "data", DataSettings())
