"""MCP server latency: cold start to the `initialize` reply, and recall_memory p50/p95, each beside a baseline.

    python bench/server_latency.py [--mb 10] [--starts 8] [--queries 40]
    python bench/server_latency.py --home ~/.lmm-bench --generate     # a home with an active adapter

- **Cold start**: spawn `lmm-mcp serve` over stdio and time until the client has the `initialize` reply, against
  a bare `MCPServer` with one tool in the same run (the floor: Python + the mcp package).
- **Recall, retrieval only**: `recall_memory(mode="retrieve")` through an in-process client on a store built
  from `--mb` of generated transcripts (or `--home`), for `--queries` generated queries.
- **Recall with generation** (`--generate`, needs an active adapter in `--home`): the same on the CPU with the
  adapter's base model (SmolLM2-135M from `bench/train_gpu.py --model <gguf> --device cpu` is the small one);
  the first call, which loads the model, is reported apart.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BARE = """
from mcp.server.mcpserver import MCPServer
server = MCPServer("bare")

@server.tool()
def ping(x: int) -> int:
    \"\"\"Echo.\"\"\"
    return x

server.run("stdio")
"""


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def cold_starts(command: list[str], n: int, env: dict[str, str]) -> list[float]:
    from mcp import Client, StdioServerParameters

    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with Client(StdioServerParameters(command=command[0], args=command[1:], env=env)):
            times.append((time.perf_counter() - t0) * 1000)
    return times


async def recalls(cfg, queries: list[str], mode: str) -> tuple[list[float], float]:
    from mcp import Client

    from lmm_mcp.server import build_server

    times, first = [], 0.0
    async with Client(build_server(cfg)) as client:
        for i, q in enumerate(queries):
            t0 = time.perf_counter()
            result = await client.call_tool("recall_memory", {"query": q, "mode": mode, "project": None})
            ms = (time.perf_counter() - t0) * 1000
            if result.is_error:
                raise SystemExit(f"recall failed: {result.content}")
            if i == 0:
                first = ms
            else:
                times.append(ms)
    return times, first


def build_home(mb: float, seed: int) -> Path:
    from synth import write_transcripts

    from lmm_mcp.app import App
    from lmm_mcp.config import Config

    work = Path(tempfile.mkdtemp(prefix="lmm-server-bench-"))
    write_transcripts(work / "projects", mb, seed=seed, projects=6)
    cfg = Config.load(home=work / "home", claude_dir=work / "projects")
    with App.open(cfg) as app:
        app.ingest([work / "projects"], embed=False)
    return cfg.home


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--home", type=Path, help="an existing home (default: a new one from --mb of transcripts)"
    )
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--starts", type=int, default=8)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--generate", action="store_true", help="also time generating recalls (CPU)")
    args = ap.parse_args()

    from synth import synthetic_queries

    from lmm_mcp.config import Config

    home = args.home or build_home(args.mb, seed=5)
    cfg = Config.load(home=home)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(BARE)
    bare = asyncio.run(cold_starts([sys.executable, fh.name], args.starts, env))
    ours = asyncio.run(
        cold_starts([sys.executable, "-m", "lmm_mcp", "serve", "--home", str(home)], args.starts, env)
    )
    print(
        f"cold start to initialize, {args.starts} runs: lmm-mcp serve p50 {pct(ours, 0.5):.0f} ms p95 "
        f"{pct(ours, 0.95):.0f} ms; bare MCPServer p50 {pct(bare, 0.5):.0f} ms p95 {pct(bare, 0.95):.0f} ms"
    )

    queries = synthetic_queries(args.queries, seed=3)
    times, first = asyncio.run(recalls(cfg, queries, "retrieve"))
    print(
        f"recall_memory retrieve, {len(times)} queries: p50 {statistics.median(times):.1f} ms p95 "
        f"{pct(times, 0.95):.1f} ms (first call {first:.0f} ms)"
    )
    if args.generate:
        gen_cfg = dataclasses.replace(cfg, allow_cpu_generation=True)
        n = min(args.queries, 12)
        times, first = asyncio.run(recalls(gen_cfg, queries[:n], "generate"))
        print(
            f"recall_memory generate (CPU), {len(times)} queries: p50 {statistics.median(times):.0f} ms p95 "
            f"{pct(times, 0.95):.0f} ms (first call, loading the model: {first:.0f} ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
