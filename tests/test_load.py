"""Load, short: four `lmm-mcp serve` processes over real stdio on one home recall and ingest for ~10 s while
`lmm-mcp watch` ingests a growing transcript (bench/load.py; its 60 s soak prints the figures). Zero errors,
"database is locked" included, and every line written is in the store afterwards."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from load import run_load


@pytest.mark.slow
def test_four_servers_and_watch_on_one_home(tmp_path):
    doc = run_load(tmp_path / "home", tmp_path / "projects", 10.0, servers=4, mb=0.1)
    print({k: v for k, v in doc.items() if k != "errors"})
    assert doc["errors"] == []
    assert doc["missing_before_catch_up"] == {}  # each server's ingest stored what it had just written
    assert doc["lost"] == {} and doc["lines_stored"] == doc["lines_written"]
    assert doc["recalls"] > 0 and doc["ingest_calls"] > 0  # the load did happen
    assert doc["watch_stored"] > 0  # and watch ingested the growing transcript meanwhile


@pytest.mark.slow
def test_a_large_transcript_ingests_in_bounded_memory(tmp_path):
    """Twice the file, the same peak: ingest reads 16 MB segments. Both sizes are past one segment, so the
    difference is what grows with the file (~60 MB here if memory grew with it). The Ingester alone: the
    memory refresh after it grows with one session's size (bench/ingest_large.py without --ingest-only)."""
    from ingest_large import measure

    small, large = measure(tmp_path, 17, ingest_only=True), measure(tmp_path, 34, ingest_only=True)
    print(small, large)
    for run in (small, large):
        assert run["errors"] == 0 and run["turns_stored"] == run["records"]
    assert large["peak_rss_mb"] - small["peak_rss_mb"] < 24
