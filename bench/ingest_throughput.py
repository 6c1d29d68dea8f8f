"""Ingest throughput in MB/s of JSONL, beside a bare orjson parse of the same files in the same run.

    python bench/ingest_throughput.py [--mb 100] [--embed-mb 10] [--json]

Generates a realistic transcript tree (bench/synth.py), then times, each on a fresh store:
  orjson      read every line and orjson.loads it: the floor any JSONL reader pays
  parse       our parser alone (transcripts.parse), no redaction, no store
  ingest      the full ingest: redact, parse, archive, store, FTS5 index (no embeddings)
  memories    the memory refresh that follows (extraction of every session, merge, profiles), timed apart;
              `lmm-mcp ingest --no-embed` does both: its MB/s is reported as ingest+memories
  ingest+emb  the same plus all-MiniLM-L6-v2 embeddings of every new chunk, on a smaller tree
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import synth  # noqa: E402

from lmm_mcp.config import Config  # noqa: E402
from lmm_mcp.embed import Embedder, embed_pending  # noqa: E402
from lmm_mcp.ingest import Ingester  # noqa: E402
from lmm_mcp.store import connect  # noqa: E402
from transcripts.parse import discover, parse_file  # noqa: E402


def tree_bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def bare_orjson(paths: list[Path]) -> float:
    t0 = time.perf_counter()
    for p in paths:
        with open(p, "rb") as fh:
            for line in fh:
                orjson.loads(line)
    return time.perf_counter() - t0


def parse_only(root: Path) -> float:
    t0 = time.perf_counter()
    for tf in discover(root):
        for _ in parse_file(tf.path):
            pass
    return time.perf_counter() - t0


def full_ingest(root: Path, home: Path, embed: bool) -> tuple[float, dict]:
    cfg = Config.load(home=home, claude_dir=root)
    conn = connect(cfg.db_path)
    embedder = Embedder(cfg.embed_model) if embed else None
    if embedder is not None:
        embedder.encode(["warm up"])  # model load is a one-off, not throughput
    t0 = time.perf_counter()
    report = Ingester(cfg, conn).ingest()
    t_ingest = time.perf_counter() - t0
    if embedder is not None:
        report.chunks_embedded = embed_pending(conn, embedder)
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed, {
        "turns": report.turns,
        "chunks": report.chunks,
        "embedded": report.chunks_embedded,
        "secrets": report.secrets_redacted,
        "ingest_s": round(t_ingest, 2),
    }


def memory_refresh(home: Path) -> tuple[float, int]:
    """Extract and merge the memories of an ingested store, as `App.ingest` does after the ingest."""
    from lmm_mcp.memories import refresh_memories

    conn = connect(home / "store.db")
    t0 = time.perf_counter()
    report = refresh_memories(conn)
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed, report.memories


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=100, help="size of the generated tree (default 100)")
    ap.add_argument("--embed-mb", type=float, default=10, help="size of the tree for the embedding run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        root = tmp_path / "projects"
        paths = synth.write_transcripts(root, args.mb, seed=1)
        size = tree_bytes(paths)
        mb = size / 1e6
        # Reading the files once first puts them in the page cache for every contender alike.
        bare_orjson(paths)
        t = bare_orjson(paths)
        results["orjson"] = {"seconds": round(t, 2), "mb_s": round(mb / t, 1)}
        t = parse_only(root)
        results["parse"] = {"seconds": round(t, 2), "mb_s": round(mb / t, 1)}
        t, info = full_ingest(root, tmp_path / "home-plain", embed=False)
        results["ingest"] = {"seconds": round(t, 2), "mb_s": round(mb / t, 1), **info}
        m, memories = memory_refresh(tmp_path / "home-plain")
        results["memories"] = {"seconds": round(m, 2), "mb_s": round(mb / m, 1), "memories": memories}
        results["ingest+memories"] = {"seconds": round(t + m, 2), "mb_s": round(mb / (t + m), 1)}

        small_root = tmp_path / "small"
        small = synth.write_transcripts(small_root, args.embed_mb, seed=2)
        small_mb = tree_bytes(small) / 1e6
        t, info = full_ingest(small_root, tmp_path / "home-embed", embed=True)
        results["ingest+embed"] = {
            "seconds": round(t, 2),
            "mb_s": round(small_mb / t, 2),
            "mb": round(small_mb, 1),
            **info,
        }
    doc = {"mb": round(mb, 1), "files": len(paths), "cpus": os.cpu_count(), "results": results}
    if args.json:
        print(json.dumps(doc))
        return 0
    print(f"ingest throughput over {doc['mb']} MB of JSONL in {doc['files']} files ({doc['cpus']} CPUs)")
    for name, r in results.items():
        extra = {k: v for k, v in r.items() if k not in ("seconds", "mb_s")}
        print(f"  {name:<13} {r['mb_s']:>8} MB/s  {r['seconds']:>7}s  {extra if extra else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
