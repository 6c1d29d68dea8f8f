"""The transcript parser on every shared fixture, our own hand-written ones, and malformed input."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import orjson
import pytest
from conftest import OWN_FIXTURES, SHARED_FIXTURES, needs_shared, record, write_jsonl

from transcripts.parse import (
    Link,
    Skipped,
    Title,
    Turn,
    classify,
    clean_markup,
    discover,
    main_thread,
    parse_file,
    parse_line,
    read_lines,
    trim_output,
)


def items_of(path: Path) -> list:
    return list(parse_file(path))


def turns_of(path: Path) -> list[Turn]:
    return [i for i in parse_file(path) if isinstance(i, Turn)]


# ------------------------------------------------------------------------------------------ shared fixtures


@needs_shared
def test_every_shared_fixture_parses_without_exception():
    files = discover(SHARED_FIXTURES)
    assert {f.path.name for f in files} == {
        "5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl",
        "agent-test-hash-123.jsonl",
        "edge_cases.jsonl",
        "dag_compact_after_rewind.jsonl",
        "55550000-0000-4000-8000-000000000001.jsonl",
        "agent-showcol1.jsonl",
    }
    for f in files:
        turns = turns_of(f.path)
        assert turns, f.path
        for t in turns:
            assert t.uuid and t.role in ("user", "assistant", "system")


@needs_shared
def test_v1_inline_sidechains_and_streamed_messages_merge():
    turns = turns_of(SHARED_FIXTURES / "claude-code-viewer" / "5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl")
    ids = [t.message_id for t in turns if t.message_id]
    assert len(ids) == len(set(ids)), "records sharing message.id must come out as one turn"
    merged = [t for t in turns if len(t.record_uuids) > 1]
    assert merged and all(t.role == "assistant" for t in merged)
    sidechain = [t for t in turns if t.is_sidechain]
    assert sidechain and all(t.agent_id is None for t in sidechain)  # 1.0: inline, no agentId
    assert any(c.name == "Task" for t in turns for c in t.tool_calls)
    prompt = turns[0]
    assert prompt.kind == "prompt" and "<command-name>" not in prompt.text and "orchestrator" in prompt.text
    assert any(t.kind == "meta" for t in turns)
    assert all(t.cwd == "/path/to/Demo" for t in turns)


@needs_shared
def test_v2_agent_file_beside_sessions_without_type_field():
    path = SHARED_FIXTURES / "claude-code-viewer" / "agent-test-hash-123.jsonl"
    tf = classify(path)
    assert tf is not None and tf.agent_id == "test-hash-123" and tf.session_id is None
    turns = turns_of(path)
    assert [t.role for t in turns] == ["user", "assistant"]  # the 2nd record has no `type`
    assert turns[0].session_id == "5c0375b4-57a5-4f26-b12d-d022ee4e51b7"


@needs_shared
def test_v21_subagent_folder_with_meta():
    path = SHARED_FIXTURES / "claude-code-log/minimal_showcase/55550000-0000-4000-8000-000000000001/subagents"
    tf = classify(path / "agent-showcol1.jsonl")
    assert tf is not None
    assert (tf.session_id, tf.agent_id, tf.tool_use_id) == (
        "55550000-0000-4000-8000-000000000001",
        "showcol1",
        "toolu_sc_showcol1",
    )
    assert tf.description == "Survey the web module"
    assert all(t.agent_id == "showcol1" for t in turns_of(tf.path))


@needs_shared
def test_rewind_and_compaction_keep_the_tree():
    turns = turns_of(SHARED_FIXTURES / "claude-code-log" / "dag_compact_after_rewind.jsonl")
    children = Counter(t.parent_uuid for t in turns)
    assert children["a1"] == 2  # the rewind: two branches from one parent
    boundary = next(t for t in turns if t.kind == "compact_boundary")
    assert boundary.parent_uuid is None and boundary.logical_parent_uuid == "b2a2"
    assert any(t.kind == "compact_summary" for t in turns)
    thread = [t.uuid for t in main_thread(turns)]
    assert thread == ["u1", "a1", "b2u", "b2a", "b2u2", "b2a2", "cb", "cs", "p1u", "p1a"]
    assert "b1u" not in thread  # the abandoned branch


@needs_shared
def test_edge_cases_bad_lines_are_counted_with_reasons_and_good_lines_survive():
    items = items_of(SHARED_FIXTURES / "claude-code-log" / "edge_cases.jsonl")
    skipped = [i for i in items if isinstance(i, Skipped)]
    turns = [i for i in items if isinstance(i, Turn)]
    assert {s.line_no for s in skipped} >= {13, 14, 15, 16}  # bare scalar, untyped object, int, array
    assert all(s.reason for s in skipped)
    assert any("café" in t.text for t in turns)
    assert any(t.tool_results and t.tool_results[0].is_error for t in turns)
    assert any(isinstance(i, Title) and i.leaf_uuid == "edge_011" for i in items)


# ------------------------------------------------------------------------------------------ own fixtures


def test_own_fixture_turn_fields():
    path = OWN_FIXTURES / "-home-dev-shop" / "7f3c1e2a-0000-4000-8000-00000000c0de.jsonl"
    items = items_of(path)
    turns = [i for i in items if isinstance(i, Turn)]
    first = turns[0]
    assert first.kind == "prompt" and first.text.startswith("/init")
    assert (first.cwd, first.git_branch, first.version) == ("/home/dev/shop", "main", "2.1.40")
    streamed = turns[1]
    assert streamed.record_uuids == ["a-1", "a-2", "a-3"]
    assert streamed.thinking.startswith("The KeyError")
    assert streamed.text == "Let me run the failing test first."
    assert streamed.tool_calls[0].name == "Bash" and streamed.tool_calls[0].input["command"].startswith(
        "pytest"
    )
    result = turns[2].tool_results[0]
    assert result.is_error and "KeyError" in result.content and "system-reminder" not in result.content
    edit_result = next(t for t in turns if t.uuid == "u-3").tool_results[0]
    assert edit_result.file_paths == ["/home/dev/shop/shop/pricing.py"]
    assert any(isinstance(i, Link) and i.uuid == "p-1" for i in items)  # progress record: kept in the tree
    assert any(isinstance(i, Title) and i.text == "Fix coupon KeyError in checkout" for i in items)
    assert not any(isinstance(i, Skipped) for i in items)  # unknown record types are not errors


def test_own_fixture_layouts_and_image_trimmed():
    files = {f.path.name: f for f in discover(OWN_FIXTURES)}
    assert files["agent-b0c4d.jsonl"].tool_use_id == "toolu_3"
    assert files["agent-9e8f7a6b.jsonl"].session_id is None
    api = turns_of(OWN_FIXTURES / "-srv-api" / "11111111-2222-4333-8444-555555555555.jsonl")
    assert "[image]" in api[0].text and "iVBOR" not in api[0].text


def test_compaction_agent_is_not_user_knowledge(tmp_path):
    write_jsonl(tmp_path / "p" / "agent-acompact-123.jsonl", [record("x", "summary")])
    assert discover(tmp_path) == []


# ------------------------------------------------------------------------------------------ malformed


def test_malformed_lines_never_stop_the_file(tmp_path):
    good = [record(f"g{i}", f"good line {i}") for i in range(3)]
    wrong_types = dict(record("w1", "x"), uuid=42)
    lines = [
        orjson.dumps(good[0]) + b"\n",
        b'{"type": "user", "uuid": "trunc", "message": {"role": "us\n',  # truncated line
        bytes(b for b in range(256) if b != 10) + b"\n",  # binary garbage
        b'{"type":"user","uuid":"latin","message":{"content":"caf\xe9"}}\n',  # not UTF-8
        orjson.dumps(wrong_types) + b"\n",
        orjson.dumps(dict(record("w2", "x"), message=["not", "an", "object"])) + b"\n",
        orjson.dumps(dict(record("w3", "x"), timestamp=12345)) + b"\n",
        orjson.dumps({"type": "never-seen-before", "uuid": "n1"}) + b"\n",
        b"\n",
        orjson.dumps(good[1]) + b"\n",
        orjson.dumps(good[2]) + b"\n",
    ]
    path = write_jsonl(tmp_path / "s.jsonl", lines)
    items = items_of(path)
    assert [t.uuid for t in items if isinstance(t, Turn)] == ["g0", "g1", "g2"]
    skipped = {s.line_no: s.reason for s in items if isinstance(s, Skipped)}
    assert sorted(skipped) == [2, 3, 4, 5, 6, 7]
    assert "invalid JSON" in skipped[2] and "uuid" in skipped[5] and "timestamp" in skipped[7]


def test_discovery_skips_fifos_and_symlinks_that_leave_the_folder(tmp_path):
    """A FIFO named like a transcript would block the reader forever; a symlink planted in the projects folder
    would feed an outside file into the store. Links that stay inside still count."""
    import os

    projects = tmp_path / "projects" / "-work-app"
    projects.mkdir(parents=True)
    (projects / "real.jsonl").write_bytes(b"{}\n")
    os.mkfifo(projects / "pipe.jsonl")
    outside = tmp_path / "secret.jsonl"
    outside.write_bytes(b"{}\n")
    (projects / "leak.jsonl").symlink_to(outside)
    (projects / "alias.jsonl").symlink_to(projects / "real.jsonl")
    found = sorted(f.path.name for f in discover(tmp_path / "projects"))
    assert found == ["alias.jsonl", "real.jsonl"]


def test_a_lone_surrogate_escape_keeps_its_line():
    """Half an emoji (`\\ud83d` without its pair) in a message: orjson refuses the line; it is read anyway."""
    line = (
        b'{"type": "user", "uuid": "u1", "sessionId": "s1", "timestamp": "2026-01-01T00:00:00Z",'
        b' "message": {"role": "user", "content": "ship it \\ud83d today"}}'
    )
    turn = parse_line(line, 1)
    assert isinstance(turn, Turn) and turn.text == "ship it ? today"
    assert isinstance(parse_line(b'{"type": "user", "message": "\\ud83d', 2), Skipped)  # still not JSON


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert items_of(path) == []


def test_twenty_megabyte_single_line_is_parsed_and_trimmed(tmp_path):
    huge = "x" * (20 * 1024 * 1024)
    rec = record("big", blocks=[{"type": "tool_result", "tool_use_id": "t", "content": huge}])
    path = write_jsonl(tmp_path / "big.jsonl", [rec, record("after", "still here")])
    turns = turns_of(path)
    assert [t.uuid for t in turns] == ["big", "after"]
    assert len(turns[0].tool_results[0].content) < 10_000


def test_line_over_the_limit_is_skipped_without_holding_it():
    data = b"A" * 5000 + b"\n" + orjson.dumps(record("ok", "fine")) + b"\n"
    lines = list(read_lines(io.BytesIO(data), max_line=1000))
    assert lines[0].data is None and lines[0].end == 5001
    assert lines[1].data is not None and lines[1].line_no == 2


def test_partial_last_line_is_left_for_later():
    first = orjson.dumps(record("a", "done")) + b"\n"
    data = first + b'{"type": "user", "uuid": "b", "mess'
    lines = list(read_lines(io.BytesIO(data)))
    assert len(lines) == 1 and lines[0].end == len(first)


def test_whole_last_object_without_newline_is_read():
    first = orjson.dumps(record("a", "done")) + b"\n"
    last = orjson.dumps(record("b", "final"))
    lines = list(read_lines(io.BytesIO(first + last)))
    assert [ln.end for ln in lines] == [len(first), len(first) + len(last)]


def test_read_from_offset_counts_lines_on():
    a, b = orjson.dumps(record("a", "x")) + b"\n", orjson.dumps(record("b", "y")) + b"\n"
    lines = list(read_lines(io.BytesIO(a + b), len(a), line_no=1))
    assert [(ln.line_no, ln.start) for ln in lines] == [(2, len(a))]


# ------------------------------------------------------------------------------------------ text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<system-reminder>noise</system-reminder>Fix it", "Fix it"),
        ("<command-name>/review</command-name><command-args>pr 12</command-args>", "/review  pr 12"),
        ("<local-command-stdout>ok</local-command-stdout>", "ok"),
        ("see data:image/png;base64," + "A" * 500, "see [image]"),
    ],
)
def test_clean_markup(raw, expected):
    assert clean_markup(raw) == expected


def test_trim_output_keeps_head_and_tail():
    text = "HEAD" + "m" * 100_000 + "TAIL"
    out = trim_output(text)
    assert out.startswith("HEAD") and out.endswith("TAIL") and "trimmed" in out and len(out) < 7_000


def test_main_thread_passes_through_progress_records():
    items = items_of(OWN_FIXTURES / "-home-dev-shop" / "7f3c1e2a-0000-4000-8000-00000000c0de.jsonl")
    turns = [i for i in items if isinstance(i, Turn)]
    links = [i for i in items if isinstance(i, Link)]
    thread = main_thread(turns, links)
    assert thread[0].uuid == "u-1" and thread[-1].uuid == "s-1" and len(thread) == len(turns)
    assert len(main_thread(turns)) < len(turns)  # without the links the walk stops at the progress record
