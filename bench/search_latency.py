"""Search latency p50/p95 at 10k and 100k chunks, query embedding included.

    python bench/search_latency.py [--sizes 10000 100000] [--queries 200] [--json]

Fills a fresh store per size with synthetic coding-session chunks (bench/synth.py) spread over 8 projects,
with their FTS5 index and a vector per chunk, then times `Retriever.retrieve(query, k=10)` in one warm
process, as the MCP server runs it: hybrid (the default), BM25 only, vector only, and hybrid scoped to one
project. Embedding 100k chunks of ~650 characters would take hours on 2 cores, so the real
all-MiniLM-L6-v2 vectors of the first 5,000 chunks are reused, with noise, for the rest: vector search cost
does not depend on the values. Query embeddings are real and computed per query.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import synth  # noqa: E402

from lmm_mcp.config import Config  # noqa: E402
from lmm_mcp.embed import Embedder  # noqa: E402
from lmm_mcp.retrieval import Retriever, parse_since  # noqa: E402
from lmm_mcp.store import connect, project_id, write_transaction  # noqa: E402

REAL_VECTORS = 5_000


def fill(conn, embedder: Embedder, n: int) -> None:
    rows = list(synth.synthetic_chunks(n, seed=11))
    base = embedder.encode([t for _, _, t in rows[:REAL_VECTORS]])
    rng = np.random.default_rng(0)
    with write_transaction(conn):
        projects = {p: project_id(conn, p) for p in {p for p, _, _ in rows}}
        conn.executemany(
            "INSERT INTO chunks(id, session_key, session_id, uuid, project_id, timestamp, ts, kind, text)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    i + 1,
                    f"s{i // 50}",
                    f"s{i // 50}",
                    f"u{i}",
                    projects[p],
                    ts,
                    parse_since(ts),
                    "reply",
                    text,
                )
                for i, (p, ts, text) in enumerate(rows)
            ],
        )
        for start in range(0, n, 10_000):
            idx = np.arange(start, min(start + 10_000, n))
            vecs = base[idx % len(base)] + rng.normal(0, 0.02, (len(idx), base.shape[1])).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            conn.executemany(
                "INSERT INTO vectors(chunk_id, model, vec) VALUES (?,?,?)",
                [
                    (int(i) + 1, embedder.model_name, v.astype(np.float32).tobytes())
                    for i, v in zip(idx, vecs, strict=True)
                ],
            )


def time_queries(retriever: Retriever, queries: list[str], project: str | None = None) -> dict:
    retriever.retrieve(queries[0], k=10, project=project)  # warm: matrix load, first-query costs
    times = []
    for q in queries:
        t0 = time.perf_counter()
        retriever.retrieve(q, k=10, project=project)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
        "mean_ms": round(statistics.fmean(times), 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    embedder = Embedder()
    embedder.encode(["warm up"])
    queries = synth.synthetic_queries(args.queries, seed=5)
    t0 = time.perf_counter()
    for q in queries[:50]:
        embedder.encode([q])
    embed_ms = (time.perf_counter() - t0) / 50 * 1000
    results = {}
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Config.load(home=Path(tmp))
            conn = connect(cfg.db_path)
            fill(conn, embedder, n)
            project = conn.execute("SELECT path FROM projects ORDER BY id LIMIT 1").fetchone()[0]
            results[str(n)] = {
                "hybrid": time_queries(Retriever(conn, embedder), queries),
                "bm25": time_queries(Retriever(conn, None), queries),
                "vector": time_queries(Retriever(conn, embedder, fusion="vector"), queries),
                "hybrid_one_project": time_queries(Retriever(conn, embedder), queries, project=project),
            }
            conn.close()
    doc = {"cpus": os.cpu_count(), "query_embedding_ms": round(embed_ms, 2), "results": results}
    if args.json:
        print(json.dumps(doc))
        return 0
    print(
        f"search latency, k=10, {args.queries} queries, {doc['cpus']} CPUs; query embedding alone {embed_ms:.1f} ms"
    )
    for n, modes in results.items():
        for mode, r in modes.items():
            print(f"  {int(n):>7} chunks  {mode:<19} p50 {r['p50_ms']:>7} ms  p95 {r['p95_ms']:>7} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
