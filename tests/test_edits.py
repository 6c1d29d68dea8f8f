"""A memory the user corrected or forgot stays so: through re-extraction, in the training input, in retrieval,
through export/import and a rebuild from the archive; and an adapter that may have learned it goes stale."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from lmm_mcp import backup, edits
from lmm_mcp.app import App
from lmm_mcp.config import Config
from lmm_mcp.memories import load_memories, refresh_memories
from lmm_mcp.samples import samples_path
from trainer.pairs import memory_wordings

POSTGRES = "decision:home-dev-code-tasklane-api:database=postgresql"
SQLITE = "decision:home-dev-code-tasklane-api:database=sqlite"


@pytest.fixture
def app(tmp_path):
    cfg = Config.load(home=tmp_path / "home", claude_dir=samples_path())
    with App.open(cfg) as opened:
        opened.ingest(embed=False)
        yield opened


def _memory(app: App, key: str):
    return next((m for m in load_memories(app.conn) if m.key == key), None)


def _bm25(app: App, query: str) -> list[str]:
    return [h.text for h in app.retriever(vectors=False).retrieve(query, k=5)]


def test_a_correction_outlives_re_extraction_and_reaches_training_and_retrieval(app):
    before = _memory(app, POSTGRES)
    assert before is not None and "PostgreSQL" in before.text
    report = edits.correct_memory(app.conn, POSTGRES, "tasklane-api keeps its tasks in CockroachDB zeppelin.")
    assert report.text == "tasklane-api keeps its tasks in CockroachDB zeppelin."

    refresh_memories(app.conn, force=True)  # every session extracted again, then merged
    after = _memory(app, POSTGRES)
    assert after.text == report.text
    assert after.sources == before.sources and after.category == before.category
    # What training words its questions and documents from: nothing of the old statement is left.
    assert "PostgreSQL" in before.keywords and before.attrs["choice"] == "postgresql"
    assert "PostgreSQL" not in after.keywords and "choice" not in after.attrs and "said" not in after.attrs
    assert "CockroachDB" not in after.keywords  # keywords come from extraction; a correction only drops
    assert {"tasklane-api"} <= set(after.keywords) and after.attrs.get("kind") == before.attrs.get("kind")
    documents = memory_wordings(after, 6, random.Random(0))  # the CPT documents and questions of this memory
    assert len(documents) > 1 and all("postgres" not in d.lower() for d in documents)
    assert any("postgres" in d.lower() for d in memory_wordings(before, 6, random.Random(0)))
    trained_on = {m.key: m.text for m in app.history().memories()}  # what trainer.pairs reads
    assert trained_on[POSTGRES] == report.text
    assert _bm25(app, "zeppelin") == [report.text]  # the memory's chunk was re-indexed with the new text
    assert before.text not in [h for h in _bm25(app, "PostgreSQL database decision") if "zeppelin" not in h]


def test_a_forgotten_memory_is_gone_everywhere_and_what_it_superseded_stands_again(app):
    assert _memory(app, SQLITE).superseded_by == POSTGRES
    text = _memory(app, POSTGRES).text
    edits.forget_memory(app.conn, POSTGRES)
    refresh_memories(app.conn, force=True)

    assert _memory(app, POSTGRES) is None
    assert POSTGRES not in {m.key for m in app.history().memories()}
    assert _memory(app, SQLITE).superseded_by is None  # the user said the newer decision was wrong
    chunks = app.conn.execute(
        "SELECT text FROM chunks WHERE session_key = ?", (f"memory:{POSTGRES}",)
    ).fetchall()
    assert chunks == []
    assert text not in _bm25(app, text)
    assert [(e.key, e.action, e.text) for e in edits.edits(app.conn)] == [(POSTGRES, "forget", None)]


def test_undo_gives_back_what_extraction_says(app):
    original = _memory(app, POSTGRES).text
    edits.forget_memory(app.conn, POSTGRES)
    edits.undo_edit(app.conn, POSTGRES)
    assert _memory(app, POSTGRES).text == original
    assert _memory(app, SQLITE).superseded_by == POSTGRES
    edits.correct_memory(app.conn, POSTGRES, "something else")
    edits.undo_edit(app.conn, POSTGRES)
    assert _memory(app, POSTGRES).text == original and edits.edits(app.conn) == []
    with pytest.raises(edits.EditError, match="no edit"):
        edits.undo_edit(app.conn, POSTGRES)


def test_a_corrected_text_is_redacted_and_must_say_something(app):
    secret = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    report = edits.correct_memory(app.conn, POSTGRES, f"deploy with {secret} <private>my notes</private>")
    assert secret not in report.text and "my notes" not in report.text and report.secrets_redacted == 1
    stored = app.conn.execute("SELECT text FROM memory_edits").fetchone()[0]
    assert secret not in stored and "[REDACTED" in stored
    with pytest.raises(edits.EditError, match="empty"):
        edits.correct_memory(app.conn, POSTGRES, "  <private>only this</private> ")
    with pytest.raises(edits.EditError, match="no memory"):
        edits.forget_memory(app.conn, "decision:nowhere:nothing")


def test_an_adapter_that_may_have_learned_it_goes_stale_and_an_unfinished_run_is_not_resumed(app, tmp_path):
    from trainer.checkpoint import update_run
    from trainer.locks import FileLock
    from trainer.versions import list_versions, publish

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    publish(app.cfg.models_dir, adapter, config={}, metrics={})
    runs = app.cfg.home / "runs"
    for name, status in (("r-20261101-100000", "done"), ("r-20261102-100000", "running")):
        (runs / name / "data").mkdir(parents=True)
        update_run(runs / name, status=status)
    busy = FileLock(app.cfg.home / "jobs" / "retrain.lock")
    assert busy.acquire()  # a retrain runs now: its folder stays
    try:
        report = edits.forget_memory(app.conn, SQLITE, cfg=app.cfg)
    finally:
        busy.release()
    assert report.runs_removed == [] and (runs / "r-20261102-100000").is_dir()

    report = edits.correct_memory(app.conn, POSTGRES, "we use Postgres 16", cfg=app.cfg)
    [version] = list_versions(app.cfg.models_dir)
    assert report.stale_adapters == [version.name] and "corrected" in version.stale
    assert report.runs_removed == ["r-20261102-100000"]  # it would resume with the old memory in its data
    assert sorted(p.name for p in runs.iterdir()) == ["r-20261101-100000"]


def test_edits_travel_with_an_export_and_survive_a_rebuild_from_the_archive(app, tmp_path):
    edits.correct_memory(app.conn, POSTGRES, "tasklane-api runs on CockroachDB.")
    edits.forget_memory(app.conn, SQLITE)
    file = tmp_path / "home.tar.gz"
    backup.export_home(app.cfg, file)

    other = Config.load(home=tmp_path / "other", claude_dir=tmp_path / "none")
    backup.import_home(other, file)
    with App.open(other) as moved:
        assert _memory(moved, POSTGRES).text == "tasklane-api runs on CockroachDB."
        assert _memory(moved, SQLITE) is None
    backup.rebuild(other, force=True, embed=False)  # a new store from the archive: extraction from scratch
    with App.open(other) as rebuilt:
        assert _memory(rebuilt, POSTGRES).text == "tasklane-api runs on CockroachDB."
        assert _memory(rebuilt, SQLITE) is None and len(edits.edits(rebuilt.conn)) == 2


def test_the_memory_command_corrects_lists_and_undoes(app):
    home = str(app.cfg.home)

    def cli(*args: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "lmm_mcp", "memory", *args, "--home", home, "--json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    assert cli("correct", POSTGRES, "Postgres 16 it is.")["action"] == "correct"
    assert cli("list")["edits"][0]["text"] == "Postgres 16 it is."
    assert _memory(app, POSTGRES).text == "Postgres 16 it is."
    cli("undo", POSTGRES)
    assert cli("list")["edits"] == []
    bad = subprocess.run(
        [sys.executable, "-m", "lmm_mcp", "memory", "forget", "nope", "--home", home],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "no memory 'nope'" in bad.stderr
