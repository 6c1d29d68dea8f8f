"""Hostile input, property-based: the transcript parser and the redactor take any bytes, recall takes any
query, and `ingest_session` refuses every path that leaves the transcripts folder (`..`, `~`, links, NUL).

Examples are few (tens to a couple of hundred per property) so the file runs in seconds; hypothesis still
shrinks any failure to a small input, and its database is off so CI starts from nothing each time.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import anyio
import orjson
import pytest
from conftest import conversation, record, write_jsonl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from lmm_mcp.app import App
from lmm_mcp.config import Config
from lmm_mcp.ingest import Ingester
from lmm_mcp.recall import RecallError, RecallResult
from lmm_mcp.retrieval import fts_query
from lmm_mcp.server import build_server
from lmm_mcp.store import connect
from lmm_mcp.tools import _ingest_targets
from transcripts.parse import Link, Skipped, Title, Turn, parse_file, parse_line
from transcripts.redact import Redactor

FEW = settings(max_examples=150, deadline=None, database=None)
SOME = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------------- inputs

# Pieces that matter to the parser, the redactor and FTS5: JSON and shell punctuation, escapes, keywords,
# secret prefixes, FTS operators, non-ASCII, lone surrogates.
PUNCTUATION = ['"', "\\", "'", ":", "=", "{", "}", "[", "]", ",", "\n", "\t", "\\n", "\\u0000", "\x00"]
UNICODE = ["\ud800", "é", "→", "\u202e", "\ufeff"]
SECRETISH = ["token", "password", "secret", "key", " is ", "sk-", "AKIA", "ghp_", "eyJ", "-----BEGIN"]
FTS = ["AND", "OR", "NOT", "NEAR(", "*", "^", "-", "(", ")", "text:", "ctx:", '""', "+", "%", "_"]
SCOPE = ["yesterday", "last week", "in project ", "2026-10-01", "/home/dev/app"]
PIECES = PUNCTUATION + UNICODE + SECRETISH + FTS + SCOPE
hostile_text = st.lists(st.sampled_from(PIECES) | st.text(max_size=12), max_size=24).map("".join)

RECORD_TYPES = ["user", "assistant", "system", "summary", "progress", "attachment", "custom-title", "x-new"]
BLOCK_TYPES = ["text", "thinking", "tool_use", "tool_result", "image", "document", "tool_reference", "?"]
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | hostile_text
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def dumps(obj) -> bytes:
    """JSON as Claude Code writes it: UTF-8, a lone surrogate as a \\ud800 escape (orjson refuses those)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj).encode()


def loads(data: bytes):
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # the escapes of lone surrogates, which orjson rejects


@st.composite
def records(draw) -> dict:
    """Claude Code-shaped records whose every field may hold the wrong type."""
    block = st.fixed_dictionaries(
        {"type": st.sampled_from(BLOCK_TYPES)},
        optional={
            k: json_value for k in ("text", "thinking", "id", "name", "input", "tool_use_id", "content")
        },
    )
    content = st.lists(block | json_value, max_size=4) | json_value
    message = st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", 3, None]), "content": content},
        optional={"id": json_value, "model": json_value, "usage": json_value},
    )
    # A valid envelope, so the parse reaches the content; junk in the content, the optional fields, and in
    # whole records (`any_record`).
    ident = st.uuids().map(str)
    stamp = st.datetimes().map(lambda d: d.isoformat() + "Z") | json_value
    envelope = {"type": st.sampled_from(RECORD_TYPES), "uuid": ident, "message": message}
    optional = {"parentUuid": ident, "sessionId": ident, "timestamp": stamp, "cwd": json_value}
    optional |= {k: json_value for k in ("toolUseResult", "isSidechain", "isCompactSummary", "subtype")}
    return draw(st.fixed_dictionaries(envelope, optional=optional))


any_record = records() | st.dictionaries(st.sampled_from(["type", "uuid", "message", "summary"]), json_value)


# ---------------------------------------------------------------------------------------------- parser


@FEW
@given(st.binary(max_size=3000))
def test_parse_line_takes_any_bytes(data: bytes) -> None:
    assert isinstance(parse_line(data, 1), Turn | Title | Link | Skipped | type(None))


@FEW
@given(any_record)
def test_parse_line_takes_any_record_shape(rec: dict) -> None:
    item = parse_line(dumps(rec), 7)
    assert isinstance(item, Turn | Title | Link | Skipped | type(None))
    if isinstance(item, Skipped):
        assert item.line_no == 7 and item.reason


@SOME
@given(st.lists(st.binary(max_size=400) | any_record.map(lambda r: dumps(r) + b"\n"), max_size=12))
def test_a_file_of_anything_parses_and_ingests(chunks: list[bytes]) -> None:
    """Any file content: the parser yields items and the real ingest stores or skips every line, no raise."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "projects"
        path = root / "-work-app" / "6f1c0b1e-1111-4222-8333-944445555666.jsonl"
        path.parent.mkdir(parents=True)
        path.write_bytes(b"".join(chunks))
        list(parse_file(path))
        cfg = Config.load(home=Path(tmp) / "home", claude_dir=root)
        conn = connect(cfg.db_path)
        try:
            report = Ingester(cfg, conn).ingest()
        finally:
            conn.close()
        assert report.errors == [] and report.files == 1


@FEW
@given(json_value)
def test_redaction_keeps_any_json_valid(value) -> None:
    raw = dumps({"content": value, "nested": dumps(value).decode()})
    out, _ = Redactor().redact_bytes(raw)
    loads(out)


@FEW
@given(st.binary(max_size=2000))
def test_redaction_takes_any_bytes(data: bytes) -> None:
    out, counts = Redactor().redact_bytes(data)
    assert isinstance(out, bytes) and (out == data) == (not counts)


# ---------------------------------------------------------------------------------------------- queries


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    root = base / "projects"
    write_jsonl(root / "-work-app" / "s1.jsonl", conversation("s1", 12, words="deploy pipeline redis"))
    write_jsonl(root / "-work-api" / "s2.jsonl", conversation("s2", 8, cwd="/work/api", words="tests fail"))
    cfg = Config.load(home=base / "home", claude_dir=root)
    app = App.open(cfg)
    assert not app.ingest([root], embed=False).lines_skipped
    yield app
    app.close()


@FEW
@given(hostile_text)
def test_fts_query_is_always_valid_fts5(store, text: str) -> None:
    match = fts_query(text)
    if match is not None:  # runs as SQLite would run it: any error here is a crash of the search
        store.conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (match,)).fetchone()


@FEW
@given(hostile_text, st.none() | hostile_text, st.integers(-3, 60), st.integers(0, 3000))
def test_recall_gives_results_or_a_clear_error(store, query: str, project, k: int, max_tokens: int) -> None:
    try:
        result = store.recaller(vectors=False).recall(
            query, project=project, k=k, max_tokens=max_tokens, mode="retrieve"
        )
    except RecallError as e:
        assert str(e)  # says what is wrong
        return
    assert isinstance(result, RecallResult) and len(result.sources) <= k


def test_recall_with_a_lone_surrogate_in_the_query_or_project(store) -> None:
    """JSON can carry half a surrogate pair ('\\ud800' in a tool call); recall reads it as a replaced character."""
    for query, project in (("deploy", "/work/\ud800"), ("deploy \ud800", None)):
        result = store.recaller(vectors=False).recall(query, project=project, mode="retrieve")
        assert result.mode_used == "retrieve" and "deploy" in result.memory.lower()


def test_recall_finds_what_is_there_through_hostile_punctuation(store) -> None:
    """The property above would pass if every query found nothing: this one must find the session."""
    for query in ('"deploy" AND (pipeline', "redis* NEAR(deploy", "text:deploy -pipeline ^redis"):
        result = store.recaller(vectors=False).recall(query, k=5, mode="retrieve")
        assert result.sources and "deploy" in result.memory


# ---------------------------------------------------------------------------------------------- paths


@pytest.fixture
def planted(tmp_path):
    """A transcripts folder with one real session, and a file outside it that links inside point to."""
    root = tmp_path / "projects"
    write_jsonl(root / "-work-app" / "s1.jsonl", [record("u1", "inside words")])
    outside = tmp_path / "outside"
    write_jsonl(outside / "s9.jsonl", [record("u9", "zebra outside words", session="s9")])
    (root / "-work-app" / "s9.jsonl").symlink_to(outside / "s9.jsonl")  # a file link, inside a folder
    (root / "-linked").symlink_to(outside, target_is_directory=True)  # a folder link
    (tmp_path / "projects-evil").mkdir()  # shares the folder's name as a string prefix
    write_jsonl(tmp_path / "projects-evil" / "s8.jsonl", [record("u8", "zebra evil", session="s8")])
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('embed_model = "/nonexistent/embedder"\n')
    return Config.load(home=home, claude_dir=root)


def _refusals(root: Path) -> list[str]:
    outside = root.parent / "outside"
    return [
        str(outside / "s9.jsonl"),
        str(root / ".." / "outside" / "s9.jsonl"),
        str(root / "-work-app" / ".." / ".." / "outside"),
        str(root / "-work-app" / "s9.jsonl"),  # the link itself
        str(root / "-linked" / "s9.jsonl"),
        str(root / "-linked"),
        str(root.parent / "projects-evil" / "s8.jsonl"),
        "../../../../../../etc/passwd",
        "~/.ssh/id_rsa",
        "/",
    ]


async def test_ingest_session_refuses_paths_out_of_the_folder(planted):
    root = planted.claude_dir.resolve()
    async with Client(build_server(planted)) as client:
        for bad in _refusals(root):
            result = await client.call_tool("ingest_session", {"path": bad})
            assert result.is_error and "outside the transcripts folder" in result.content[0].text, bad
        nul = await client.call_tool("ingest_session", {"path": str(root / "-work-app" / "s1.jsonl\x00x")})
        assert nul.is_error and "NUL" in nul.content[0].text
        for sid in ("../outside/s9", "..", "s9/../../x", "*", "s1.jsonl"):
            result = await client.call_tool("ingest_session", {"session_id": sid})
            assert result.is_error and "not a session id" in result.content[0].text, sid
        linked = await client.call_tool("ingest_session", {"session_id": "s9"})
        assert linked.is_error and "no transcript" in linked.content[0].text
        for args in ({"all": True}, {"path": str(root)}, {"path": str(root / "-work-app")}):
            result = await client.call_tool("ingest_session", args)
            assert not result.is_error, result.content
    conn = connect(planted.db_path)
    texts = [t for (t,) in conn.execute("SELECT text FROM turns")]
    files = [p for (p,) in conn.execute("SELECT path FROM files")]
    conn.close()
    assert any("inside words" in t for t in texts)  # the folder itself was ingested
    assert not any("zebra" in t for t in texts) and files == [str(root / "-work-app" / "s1.jsonl")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
async def test_ingest_session_skips_a_fifo_named_like_a_transcript(planted):
    """A FIFO would block the ingest at open() until a writer came: the tool never opens one."""
    root = planted.claude_dir.resolve()
    os.mkfifo(root / "-work-app" / "s7.jsonl")
    assert _ingest_targets(planted, None, None, True) == [root / "-work-app" / "s1.jsonl"]
    assert _ingest_targets(planted, "s7", None, False) == []
    with anyio.fail_after(60):  # a blocked open() would hang here, not fail
        async with Client(build_server(planted)) as client:
            result = await client.call_tool("ingest_session", {"session_id": "s7"})
    assert not result.is_error and result.structured_content["files"] == 0


NAMES = ["..", ".", "-work-app", "s1.jsonl", "s9.jsonl", "-linked", "outside", "projects", "~", "", "\x00"]


@settings(FEW, suppress_health_check=[HealthCheck.function_scoped_fixture])  # the folder is only read
@given(
    st.sampled_from(["", "/", "~/", "{root}/", "{root}/../"]),
    st.lists(st.sampled_from(NAMES) | st.text(max_size=6), max_size=6),
)
def test_ingest_targets_never_leave_the_folder(planted, start: str, parts: list[str]) -> None:
    """Any path: a clear refusal, or transcripts whose real path is inside the folder."""
    root = planted.claude_dir.resolve()
    path = start.replace("{root}", str(root)) + "/".join(parts)
    try:
        targets = _ingest_targets(planted, None, path, False)
    except ToolError as e:
        assert str(e)
        return
    assert all(t.resolve().is_relative_to(root) and t.suffix == ".jsonl" for t in targets)
