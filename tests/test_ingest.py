"""Incremental, idempotent ingest into a real SQLite store, and the archive beside it."""

from __future__ import annotations

import gzip
import threading
import time
from pathlib import Path

import orjson
from conftest import OWN_FIXTURES, SHARED_FIXTURES, conversation, needs_shared, record, write_jsonl

from lmm_mcp.ingest import Ingester
from lmm_mcp.store import stats


def counts(conn) -> dict[str, int]:
    return {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("sessions", "turns", "chunks")
    }


def test_first_ingest_then_unchanged_adds_nothing(cfg, conn):
    write_jsonl(cfg.claude_dir / "-work-app" / "s1.jsonl", conversation("s1", 5))
    ing = Ingester(cfg, conn)
    first = ing.ingest()
    assert (first.files, first.sessions, first.turns, first.chunks) == (1, 1, 10, 10)
    again = ing.ingest()
    assert (again.files_changed, again.turns, again.chunks) == (0, 0, 0)
    assert counts(conn) == {"sessions": 1, "turns": 10, "chunks": 10}


def test_grown_file_reads_only_new_lines(cfg, conn):
    path = write_jsonl(cfg.claude_dir / "-work-app" / "s1.jsonl", conversation("s1", 3))
    ing = Ingester(cfg, conn)
    ing.ingest()
    offset = conn.execute("SELECT offset FROM files").fetchone()[0]
    assert offset == path.stat().st_size
    more = conversation("s1", 5)[6:]
    write_jsonl(path, more, mode="ab")
    report = ing.ingest()
    assert (report.turns, report.lines) == (4, 4)
    assert counts(conn)["turns"] == 10


def test_partial_line_waits_for_its_newline(cfg, conn):
    path = cfg.claude_dir / "-work-app" / "s1.jsonl"
    full = orjson.dumps(record("late", "a line written in two parts")) + b"\n"
    write_jsonl(path, [*conversation("s1", 1), full[:40]])
    ing = Ingester(cfg, conn)
    assert ing.ingest().turns == 2
    with open(path, "ab") as fh:
        fh.write(full[40:])
    assert ing.ingest().turns == 1
    assert conn.execute("SELECT text FROM turns WHERE uuid = 'late'").fetchone()[0].startswith("a line")


def test_truncated_or_replaced_file_is_read_again(cfg, conn):
    path = write_jsonl(cfg.claude_dir / "-work-app" / "s1.jsonl", conversation("s1", 4))
    ing = Ingester(cfg, conn)
    ing.ingest()
    write_jsonl(path, [record("fresh", "rewritten history about zebras", session="s1")])  # shorter: truncated
    report = ing.ingest()
    assert report.turns == 1 and report.files_changed == 1
    assert conn.execute("SELECT generation FROM files").fetchone()[0] == 2
    # replaced by another file of the same size: the head hash tells, and it is read again
    path.unlink()
    write_jsonl(path, [record("fresh", "rewritten history about zebrAS", session="s1")])
    report = ing.ingest()
    assert report.files_changed == 1 and report.turns == 0  # same uuid: nothing duplicated
    assert conn.execute("SELECT generation FROM files").fetchone()[0] == 3
    assert counts(conn)["turns"] == 9  # old turns survive: memory outlives the transcript


def test_streamed_message_split_across_ingests_is_merged(cfg, conn):
    path = cfg.claude_dir / "-work-app" / "s1.jsonl"
    blocks = [
        record("a1", role="assistant", message_id="m1", blocks=[{"type": "thinking", "thinking": "hmm"}]),
        record(
            "a2", role="assistant", parent="a1", message_id="m1", blocks=[{"type": "text", "text": "Running"}]
        ),
    ]
    write_jsonl(path, [record("u1", "run the migrations"), *blocks])
    ing = Ingester(cfg, conn)
    ing.ingest()
    tool = record(
        "a3",
        role="assistant",
        parent="a2",
        message_id="m1",
        blocks=[
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "alembic upgrade head"}}
        ],
    )
    write_jsonl(path, [tool], mode="ab")
    ing.ingest()
    rows = conn.execute("SELECT id, text, tool_calls FROM turns WHERE message_id = 'm1'").fetchall()
    assert len(rows) == 1
    assert "alembic upgrade head" in rows[0][2]
    chunk = conn.execute("SELECT text FROM chunks WHERE turn_id = ?", (rows[0][0],)).fetchall()
    assert len(chunk) == 1 and "alembic upgrade head" in chunk[0][0] and "Running" in chunk[0][0]
    uuids = {r[0] for r in conn.execute("SELECT uuid FROM record_uuids WHERE turn_id = ?", (rows[0][0],))}
    assert uuids == {"a1", "a2", "a3"}


def test_own_fixtures_subagents_link_to_parent_session(cfg, conn):
    report = Ingester(cfg, conn).ingest([OWN_FIXTURES])
    assert report.errors == [] and report.lines_skipped == 0
    rows = dict(conn.execute("SELECT key, session_id FROM sessions").fetchall())
    assert rows["7f3c1e2a-0000-4000-8000-00000000c0de/agent-b0c4d"] == "7f3c1e2a-0000-4000-8000-00000000c0de"
    assert (
        rows["11111111-2222-4333-8444-555555555555/agent-9e8f7a6b"] == "11111111-2222-4333-8444-555555555555"
    )
    sub = conn.execute(
        "SELECT agent_type, description, parent_tool_use_id FROM sessions WHERE agent_id = 'b0c4d'"
    ).fetchone()
    assert sub == ("general-purpose", "Check other coupon lookups", "toolu_3")
    title = conn.execute(
        "SELECT title FROM sessions WHERE key = '7f3c1e2a-0000-4000-8000-00000000c0de'"
    ).fetchone()
    assert title == ("Fix coupon KeyError in checkout",)
    # the progress record p-1 maps to the turn it hangs off, so a-4's parent resolves
    parent_turn = conn.execute(
        "SELECT t.uuid FROM record_uuids r JOIN turns t ON t.id = r.turn_id WHERE r.uuid = 'p-1'"
    ).fetchone()
    assert parent_turn == ("u-2",)
    projects = {r[0] for r in conn.execute("SELECT path FROM projects")}
    assert projects == {"/home/dev/shop", "/srv/api"}


@needs_shared
def test_every_shared_fixture_ingests(cfg, conn):
    report = Ingester(cfg, conn).ingest([SHARED_FIXTURES])
    assert report.files == 6 and report.errors == []
    assert report.lines_skipped == 7  # edge_cases.jsonl's malformed lines, counted not fatal
    reasons = conn.execute("SELECT line_no, reason FROM skipped_lines ORDER BY line_no").fetchall()
    assert len(reasons) == 7 and all(r[1] for r in reasons)
    s = stats(conn, cfg.db_path)
    assert s.sessions == 6 and s.turns > 70 and s.chunks > 70 and s.lines_skipped == 7
    again = Ingester(cfg, conn).ingest([SHARED_FIXTURES])
    assert again.turns == 0 and again.chunks == 0 and again.lines_skipped == 0


def test_archive_holds_every_line_redacted_and_survives_deletion(cfg, conn):
    path = write_jsonl(cfg.claude_dir / "-work-app" / "s1.jsonl", conversation("s1", 3))
    ing = Ingester(cfg, conn)
    ing.ingest()
    write_jsonl(path, conversation("s1", 5)[6:], mode="ab")
    ing.ingest()
    archived = conn.execute("SELECT archive_path FROM files").fetchone()[0]
    lines = gzip.decompress(Path(archived).read_bytes()).splitlines()
    assert lines == path.read_bytes().splitlines()  # two gzip members, same lines in order
    path.unlink()
    assert Path(archived).exists()


def test_malformed_file_kinds_keep_good_lines(cfg, conn):
    folder = cfg.claude_dir / "-work-app"
    write_jsonl(folder / "empty.jsonl", [])
    write_jsonl(
        folder / "garbage.jsonl",
        [
            b"\x00\x01\x02\xff\xfe garbage\n",
            b"\x89PNG\r\x1a\n",
            orjson.dumps(record("g-ok", "survivor one", session="garbage")) + b"\n",
        ],
    )
    write_jsonl(
        folder / "latin1.jsonl",
        [
            '{"type":"user","uuid":"l1","message":{"content":"caf\xe9"}}\n'.encode("latin-1"),
            orjson.dumps(record("l-ok", "survivor two", session="latin1")) + b"\n",
        ],
    )
    write_jsonl(
        folder / "types.jsonl",
        [
            orjson.dumps(dict(record("t1", "x", session="types"), parentUuid=7)) + b"\n",
            orjson.dumps({"type": "mystery", "data": 1}) + b"\n",
            orjson.dumps(record("t-ok", "survivor three", session="types")) + b"\n",
        ],
    )
    huge = record(
        "h-big",
        blocks=[{"type": "tool_result", "tool_use_id": "t", "content": "y" * 20_000_000}],
        session="huge",
    )
    write_jsonl(folder / "huge.jsonl", [huge, record("h-ok", "survivor four", session="huge")])
    report = Ingester(cfg, conn).ingest()
    assert report.errors == []
    uuids = {r[0] for r in conn.execute("SELECT uuid FROM turns")}
    assert {"g-ok", "l-ok", "t-ok", "h-ok", "h-big"} <= uuids
    assert report.lines_skipped == 4  # 2 garbage lines, the latin-1 line, the wrong-typed parentUuid
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_file_appended_while_it_is_being_ingested(cfg, conn):
    path = write_jsonl(
        cfg.claude_dir / "-work-app" / "live.jsonl", conversation("live", 200, words="x" * 300)
    )
    stop = threading.Event()
    written = [400]

    def writer() -> None:
        with open(path, "ab") as fh:
            while not stop.is_set() and written[0] < 4000:
                line = orjson.dumps(record(f"live-w{written[0]}", f"appended {written[0]}", session="live"))
                # half a line, a pause, the rest: the reader may see a torn last line
                fh.write(line[:30])
                fh.flush()
                time.sleep(0.0005)
                fh.write(line[30:] + b"\n")
                fh.flush()
                written[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    ing = Ingester(cfg, conn)
    for _ in range(5):
        ing.ingest()
    stop.set()
    thread.join()
    report = ing.ingest()
    assert report.errors == []
    assert counts(conn)["turns"] == written[0]
    assert conn.execute("SELECT sum(lines_skipped) FROM files").fetchone()[0] == 0


def test_neighbour_context_is_kept_up_to_date_as_a_session_grows(cfg, conn):
    path = write_jsonl(cfg.claude_dir / "-work-app" / "s1.jsonl", conversation("s1", 2))
    ing = Ingester(cfg, conn)
    ing.ingest()
    write_jsonl(path, [record("late", "a brand new zeppelin topic", session="s1", parent="s1-a1")], mode="ab")
    ing.ingest()
    rows = conn.execute("SELECT uuid, text, ctx FROM chunks WHERE session_key = 's1' ORDER BY id").fetchall()
    ctx = {uuid: c for uuid, _, c in rows}
    assert "zeppelin" in ctx["s1-u1"] and "zeppelin" in ctx["s1-a1"]  # the two before the new chunk
    assert "zeppelin" not in ctx["s1-a0"]  # three away: not a neighbour
    assert "question 1" in ctx["late"] and "answer 1" in ctx["late"]
    hit = conn.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'ctx:zeppelin'").fetchall()
    assert len(hit) == 2  # the FTS index followed the update
