"""Peak memory of ingesting one very large transcript: it must stay bounded, whatever the file's size.

    python bench/ingest_large.py --mb 1024                       # the 1 GB file; one JSON document per size
    python bench/ingest_large.py --mb 17 --mb 34 --ingest-only   # what tests/test_load.py compares

Writes one session transcript of about the given size (prompt/reply pairs with ~1.6 KB of varied text, a
long tool output every tenth pair), runs `lmm-mcp ingest FILE --no-embed` on a fresh home as its own
process and reads that process's peak RSS from the kernel (`os.wait4`). Ingest reads a file in segments of
16 MB (lmm_mcp.ingest.SEGMENT_BYTES), so its peak should not grow with the file. `--ingest-only` runs the
`Ingester` alone, without the memory refresh that `lmm-mcp ingest` runs after it: the refresh extracts a
grown session from all of its turns at once, so its peak does grow with one session's size.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
WORDS = [
    "deploy",
    "pipeline",
    "retry",
    "flaky",
    "integration",
    "test",
    "warehouse",
    "transaction",
    "migration",
    "schema",
    "index",
    "cache",
    "invalidate",
    "token",
    "rotate",
    "queue",
    "worker",
    "backoff",
    "timeout",
    "handler",
    "parser",
    "config",
    "feature",
    "flag",
    "rollout",
    "metric",
    "latency",
    "histogram",
    "shard",
    "replica",
    "snapshot",
    "compaction",
    "vacuum",
]


def write_transcript(path: Path, mb: float, *, seed: int = 0) -> int:
    """One session file of about `mb` megabytes; returns the number of records written."""
    rng = random.Random(seed)
    phrases = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(512)]
    path.parent.mkdir(parents=True, exist_ok=True)
    target, written, n, parent = int(mb * 1024 * 1024), 0, 0, None
    session = path.stem
    with open(path, "wb") as fh:
        while written < target:
            i = n // 2
            text = " ".join(phrases[(i * 7 + k) % len(phrases)] for k in range(16))
            if n % 2 == 0:
                message: dict[str, Any] = {"role": "user", "content": f"question {i}: {text}"}
                role = "user"
            else:
                body = [{"type": "text", "text": f"answer {i}: {text}"}]
                if i % 10 == 0:  # a long tool output now and then, as real sessions have
                    body.append({"type": "text", "text": text * 20})
                message = {"id": f"msg-{i}", "type": "message", "role": "assistant", "content": body}
                role = "assistant"
            uuid = f"{session}-{n}"
            line = orjson.dumps(
                {
                    "type": role,
                    "uuid": uuid,
                    "parentUuid": parent,
                    "isSidechain": False,
                    "cwd": "/work/large",
                    "sessionId": session,
                    "version": "2.1.40",
                    "timestamp": f"2026-10-{1 + i // 86400 % 28:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:"
                    f"{i % 60:02d}.000Z",
                    "message": message,
                }
            )
            fh.write(line + b"\n")
            written += len(line) + 1
            parent, n = uuid, n + 1
    return n


INGEST_ONLY = """
import sys
from pathlib import Path
from lmm_mcp.config import Config
from lmm_mcp.ingest import Ingester
from lmm_mcp.store import connect
cfg = Config.load(home=Path(sys.argv[2]), claude_dir=Path(sys.argv[3]))
report = Ingester(cfg, connect(cfg.db_path)).ingest([Path(sys.argv[1])])
print('{"errors": %d}' % len(report.errors))
"""


def measure(base: Path, mb: float, *, ingest_only: bool = False) -> dict[str, Any]:
    """Ingest a fresh `mb` file into a fresh home; the child's peak RSS and how many records were stored."""
    claude = base / f"projects-{mb:g}"
    transcript = claude / "-work-large" / f"large-{mb:g}.jsonl"
    records = write_transcript(transcript, mb)
    home = base / f"home-{mb:g}"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    if ingest_only:
        cmd = [sys.executable, "-c", INGEST_ONLY, str(transcript), str(home), str(claude)]
    else:
        cmd = [sys.executable, "-m", "lmm_mcp", "ingest", str(transcript), "--home", str(home)]
        cmd += ["--claude-dir", str(claude), "--no-embed", "--json"]
    started = time.monotonic()
    with open(base / "out.json", "wb") as out, open(base / "err.txt", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"ingest failed: {(base / 'err.txt').read_text()[-2000:]}")
    report = orjson.loads((base / "out.json").read_bytes())
    conn = sqlite3.connect(home / "store.db")
    try:
        (stored,) = conn.execute("SELECT count(*) FROM turns").fetchone()
    finally:
        conn.close()
    size = transcript.stat().st_size
    transcript.unlink()  # a 1 GB file is not kept around
    return {
        "mb": round(size / 2**20, 1),
        "records": records,
        "turns_stored": stored,
        "seconds": round(seconds, 1),
        "mb_per_s": round(size / 2**20 / seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "ingest_only": ingest_only,
        "errors": report["errors"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, action="append", help="file sizes to try (default: 1024)")
    parser.add_argument("--ingest-only", action="store_true", help="the Ingester alone, no memory refresh")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lmm-large-") as tmp:
        for mb in args.mb or [1024.0]:
            doc = measure(Path(tmp), mb, ingest_only=args.ingest_only)
            print(orjson.dumps(doc).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
