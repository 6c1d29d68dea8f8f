"""Load: four MCP servers on one home, as Claude Code runs them for four sessions, recalling and ingesting at
once while `lmm-mcp watch` ingests a growing transcript. Counts every error ("database is locked" included),
checks that every line written was stored, and prints recall latency under that load.

    python bench/load.py --seconds 60            # the soak; prints one JSON document and a summary line
    python bench/load.py --seconds 10 --mb 0.5   # what tests/test_load.py runs

Each server is `lmm-mcp serve` over real stdio (`mcp.Client(StdioServerParameters(...))`). Each client owns
one session transcript that it appends a prompt/reply pair to before every ingest_session of that session,
and calls recall_memory (retrieval mode) in between. A writer appends to a fifth transcript that only
`watch` ingests. At the end one plain `lmm-mcp ingest` catches up, and the store must hold every line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import write_transcripts

QUERIES = [
    "how do we run the tests",
    "why did the migration fail",
    "which database do we use",
    "deployment pipeline retries",
    "what did we decide about caching",
    "failed with",
    "the warehouse update transaction",
    "live session marker",
]
INGEST_EVERY = 5  # a client ingests its own session after every this many recalls


def record(session: str, uuid: str, parent: str | None, role: str, text: str, cwd: str) -> dict[str, Any]:
    """A Claude Code user or assistant record with the usual envelope."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    if role == "assistant":
        message: dict[str, Any] = {
            "id": f"msg-{uuid}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": text}],
        }
    else:
        message = {"role": "user", "content": text}
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
        "timestamp": stamp,
        "message": message,
    }


class Transcript:
    """A session file that grows one prompt/reply pair at a time, as Claude Code writes it."""

    def __init__(self, claude: Path, session: str, cwd: str = "/work/load"):
        self.session, self.cwd = session, cwd
        self.path = claude / ("-" + cwd.strip("/").replace("/", "-")) / f"{session}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.pairs, self.parent = 0, None

    def append_pair(self) -> None:
        i = self.pairs
        u, a = f"{self.session}-u{i}", f"{self.session}-a{i}"
        lines = [
            record(
                self.session,
                u,
                self.parent,
                "user",
                f"live session marker {self.session} question {i}",
                self.cwd,
            ),
            record(
                self.session,
                a,
                u,
                "assistant",
                f"answer {i} for {self.session}: run the tests first",
                self.cwd,
            ),
        ]
        with open(self.path, "ab") as fh:
            fh.write(b"".join(orjson.dumps(r) + b"\n" for r in lines))
        self.pairs, self.parent = i + 1, a


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path, "CLAUDE_PROJECT_DIR": "/work/load"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lmm_mcp", *args]


async def _start_together(out: dict[str, Any]) -> float:
    """Wait until every server is up (seconds each on a busy machine); the load's deadline."""
    while out["ready"] < out["servers"]:
        await asyncio.sleep(0.05)
    return out.setdefault("until", time.monotonic() + out["seconds"])


async def _client_loop(params, transcript: Transcript, rng: random.Random, out: dict[str, Any]) -> None:
    from mcp import Client

    async with Client(params) as client:
        out["ready"] += 1
        until = await _start_together(out)
        n = 0
        while time.monotonic() < until:
            n += 1
            started = time.perf_counter()
            try:
                result = await client.call_tool(
                    "recall_memory", {"query": rng.choice(QUERIES), "mode": "retrieve", "k": 8}
                )
            except Exception as e:  # a broken connection, a server that died
                out["errors"].append(f"recall: {type(e).__name__}: {e}")
                continue
            if result.is_error:
                out["errors"].append(f"recall: {result.content}")
            else:
                out["recall_ms"].append((time.perf_counter() - started) * 1000)
            if n % INGEST_EVERY == 0:
                transcript.append_pair()
                started = time.perf_counter()
                try:
                    result = await client.call_tool("ingest_session", {"session_id": transcript.session})
                except Exception as e:
                    out["errors"].append(f"ingest: {type(e).__name__}: {e}")
                    continue
                data = result.structured_content or {}
                if result.is_error or data.get("errors"):
                    out["errors"].append(f"ingest: {result.content if result.is_error else data['errors']}")
                else:
                    out["ingest_ms"].append((time.perf_counter() - started) * 1000)
        out["closing"] = time.monotonic()
    out["closed_s"].append(time.monotonic() - out["closing"])  # how long the server took to go


async def _writer(transcript: Transcript, out: dict[str, Any]) -> None:
    until = await _start_together(out)
    while time.monotonic() < until:
        transcript.append_pair()
        await asyncio.sleep(0.1)


def run_load(
    home: Path, claude: Path, seconds: float, *, servers: int = 4, mb: float = 2.0, embedded: bool = False
) -> dict[str, Any]:
    """Prepare a home from `mb` of generated history, put it under load for `seconds`, return the figures.

    `embedded`: the history is embedded before the load, so recall is hybrid (BM25 + vectors, each query
    embedded); else the servers start on a store without vectors and recall by BM25 alone, while the first
    ingest_session to take the embedding lock embeds the history during the load.
    """
    from mcp import StdioServerParameters

    write_transcripts(claude, mb, seed=5, projects=3)
    env = _env()
    no_embed = [] if embedded else ["--no-embed"]
    first = subprocess.run(
        _cli("ingest", "--home", str(home), "--claude-dir", str(claude), *no_embed, "--json"),
        capture_output=True,
        env=env,
    )
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    watch_log = open(logs / "load-watch.log", "wb")  # noqa: SIM115 - closed below, after the watcher
    watch = subprocess.Popen(
        _cli("watch", "--home", str(home), "--claude-dir", str(claude), "--debounce", "0.2"),
        stdout=subprocess.DEVNULL,
        stderr=watch_log,
        env=env,
    )
    params = [
        StdioServerParameters(
            command=sys.executable,
            args=["-m", "lmm_mcp", "serve", "--home", str(home), "--claude-dir", str(claude)],
            env=env,
        )
        for _ in range(servers)
    ]
    sessions = [Transcript(claude, f"load-s{i}") for i in range(servers)]
    live = Transcript(claude, "load-watched")
    out: dict[str, Any] = {"servers": servers, "seconds": seconds, "ready": 0}
    out.update(errors=[], recall_ms=[], ingest_ms=[], closed_s=[])

    async def load() -> None:
        clients = [_client_loop(params[i], sessions[i], random.Random(i), out) for i in range(servers)]
        await asyncio.gather(*clients, _writer(live, out))

    started = time.monotonic()
    try:
        asyncio.run(load())
    finally:
        watch.send_signal(signal.SIGTERM)
        try:
            watch.wait(120)
        except subprocess.TimeoutExpired:
            watch.kill()
        watch_log.close()
    wall = time.monotonic() - started
    written = {t.session: t.pairs * 2 for t in [*sessions, live]}
    before = _turns_by_session(home / "store.db", list(written))  # what the servers and watch stored
    caught_up = subprocess.run(
        _cli("ingest", "--home", str(home), "--claude-dir", str(claude), "--no-embed", "--json"),
        capture_output=True,
        env=env,
    )
    if caught_up.returncode != 0:
        out["errors"].append(f"final ingest: {caught_up.stderr.decode()[-500:]}")
    watch_text = (logs / "load-watch.log").read_text(errors="replace")
    out["errors"] += [f"watch: {line}" for line in watch_text.splitlines() if _is_error(line)]
    stored = _turns_by_session(home / "store.db", list(written))
    recall, ingest = sorted(out["recall_ms"]), sorted(out["ingest_ms"])
    return {
        "servers": servers,
        "seconds": seconds,
        "recall": "hybrid" if embedded else "bm25",
        "wall_s": round(wall, 1),
        "recalls": len(recall),
        "recall_p50_ms": round(_quantile(recall, 0.50), 1),
        "recall_p95_ms": round(_quantile(recall, 0.95), 1),
        "recall_max_ms": round(recall[-1], 1) if recall else None,
        "ingest_calls": len(ingest),
        "ingest_p50_ms": round(_quantile(ingest, 0.50), 1),
        "ingest_p95_ms": round(_quantile(ingest, 0.95), 1),
        "ingest_max_ms": round(ingest[-1], 1) if ingest else None,
        "server_exit_s": [round(x, 1) for x in out["closed_s"]],
        "lines_written": sum(written.values()),
        "lines_stored": sum(stored.values()),
        "watch_stored": before.get(live.session, 0),
        # each server ingested its own session after every append: all of it must be there already
        "missing_before_catch_up": {
            t.session: written[t.session] - before.get(t.session, 0)
            for t in sessions
            if before.get(t.session, 0) != written[t.session]
        },
        "lost": {s: written[s] - stored.get(s, 0) for s in written if written[s] != stored.get(s, 0)},
        "errors": out["errors"],
    }


def _is_error(line: str) -> bool:
    low = line.lower()
    return "error" in low or "locked" in low or "traceback" in low


def _turns_by_session(db: Path, sessions: list[str]) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        marks = ",".join("?" * len(sessions))
        rows = conn.execute(
            f"SELECT s.session_id, count(*) FROM turns t JOIN sessions s ON s.key = t.session_key "
            f"WHERE s.session_id IN ({marks}) GROUP BY 1",
            sessions,
        ).fetchall()
    finally:
        conn.close()
    return dict(rows)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="load duration once every server is up")
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument(
        "--mb", type=float, default=2.0, help="generated history in the store before the load"
    )
    parser.add_argument("--home", type=Path, help="where to build the home (default: a temporary folder)")
    parser.add_argument("--embedded", action="store_true", help="embed the history first: hybrid recall")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        base = args.home or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lmm-load-")))
        doc = run_load(
            base / "home",
            base / "projects",
            args.seconds,
            servers=args.servers,
            mb=args.mb,
            embedded=args.embedded,
        )
    print(orjson.dumps(doc).decode())
    print(
        f"{doc['servers']} servers, {doc['seconds']:g}s: {doc['recalls']} {doc['recall']} recalls, p50 {doc['recall_p50_ms']} ms, "
        f"p95 {doc['recall_p95_ms']} ms; {doc['ingest_calls']} ingest_session calls; "
        f"lines written {doc['lines_written']}, stored {doc['lines_stored']}; errors {len(doc['errors'])}",
        file=sys.stderr,
    )
    return 0 if not doc["errors"] and not doc["lost"] and not doc["missing_before_catch_up"] else 1


if __name__ == "__main__":
    sys.exit(main())
