"""Hook latency: each `lmm-mcp hook ...` as Claude Code runs it (a new process, the event JSON on stdin).

Fills a store from generated transcripts (bench/synth.py; ingest without embeddings, then memories), then runs,
round-robin so machine noise hits all alike, N times each:
  baseline       `python -c pass` (the interpreter's own start-up, the floor for any hook)
  session-start  preferences, decisions and open threads for the busiest project
  user-prompt    BM25 recall for a generated query in that project
  session-end    start the detached ingest of an already-ingested transcript (timed until the hook returns;
                 the detached process is awaited between runs so it does not load the next one)
and prints p50/p95 wall and CPU time per hook (on a busy machine wall time includes waiting for a core), the detached ingest's own duration, and how much context came back.

Run:  python bench/hook_latency.py [--mb 20] [--runs 10] [--projects 6] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import synthetic_queries, write_transcripts

from lmm_mcp.app import App
from lmm_mcp.config import Config
from lmm_mcp.queries import memory_counts
from lmm_mcp.store import connect, stats


def hook_command() -> tuple[list[str], str]:
    script = Path(sys.executable).parent / "lmm-mcp"
    if script.is_file():
        return [str(script)], "lmm-mcp script"
    return [sys.executable, "-m", "lmm_mcp"], "python -m lmm_mcp"


def timed(command: list[str], payload: bytes | None) -> tuple[float, float, bytes]:
    """Wall time, CPU time (user + system) of the process, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, input=payload, capture_output=True, timeout=120)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{command} failed: {proc.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, proc.stdout


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fill(root: Path, mb: float, seed: int, projects: int) -> tuple[Config, dict]:
    claude_dir = root / "projects"
    started = time.perf_counter()
    write_transcripts(claude_dir, mb, seed=seed, projects=projects)
    cfg = Config.load(root / "home", claude_dir)
    with App.open(cfg) as app:  # as `lmm-mcp ingest --no-embed` does it
        report = app.ingest(embed=False)
        info = {
            **stats(app.conn, cfg.db_path).__dict__,
            "fill_seconds": round(time.perf_counter() - started, 1),
        }
        info["ingest_errors"] = len(report.errors)
        info["memories_by_category"] = {c: v["memories"] for c, v in memory_counts(app.conn).items()}
    return cfg, info


def busiest_project(cfg: Config) -> tuple[str, Path]:
    """The project with the most chunks, and its largest main transcript."""
    conn = connect(cfg.db_path, cfg.busy_timeout_ms)
    project = conn.execute(
        "SELECT p.path FROM chunks c JOIN projects p ON p.id = c.project_id GROUP BY p.id ORDER BY count(*) DESC"
    ).fetchone()[0]
    paths = [
        Path(r[0])
        for r in conn.execute(
            "SELECT s.file_path FROM sessions s JOIN projects p ON p.id = s.project_id"
            " WHERE p.path = ? AND s.agent_id IS NULL",
            (project,),
        )
    ]
    conn.close()
    return project, max(paths, key=lambda p: p.stat().st_size)


def wait_for_detached(home: Path, timeout: float = 120.0) -> float:
    """Seconds until the ingest the last session-end started has exited (its pid is in hooks.log)."""
    started = time.perf_counter()
    last = (home / "logs" / "hooks.log").read_text().strip().splitlines()[-1]
    pid = int(last.split("(pid ")[1].split(",")[0])
    while time.perf_counter() - started < timeout:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
            if state == "Z":
                break
        except (ProcessLookupError, FileNotFoundError):
            break
        time.sleep(0.02)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=20, help="generated transcripts, MB (default 20)")
    ap.add_argument("--runs", type=int, default=10, help="runs per hook (default 10)")
    ap.add_argument("--projects", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="lmm-hook-bench-") as tmp:
        root = Path(tmp)
        print(f"filling a store from {args.mb:g} MB of generated transcripts...", file=sys.stderr)
        cfg, store = fill(root, args.mb, args.seed, args.projects)
        project, transcript = busiest_project(cfg)
        prefix, how = hook_command()
        common = ["--home", str(cfg.home), "--claude-dir", str(cfg.claude_dir)]
        queries = synthetic_queries(args.runs, seed=args.seed)
        base = {"session_id": "bench", "transcript_path": str(transcript), "cwd": project}
        names = ("baseline", "session-start", "user-prompt", "session-end")
        times: dict[str, list[float]] = {k: [] for k in names}
        cpu: dict[str, list[float]] = {k: [] for k in names}
        detached: list[float] = []
        context_chars: dict[str, list[int]] = {"session-start": [], "user-prompt": []}
        for i in range(args.runs):
            elapsed, used, _ = timed([sys.executable, "-c", "pass"], None)
            times["baseline"].append(elapsed)
            cpu["baseline"].append(used)
            for name, extra in (
                ("session-start", {"hook_event_name": "SessionStart", "source": "startup"}),
                ("user-prompt", {"hook_event_name": "UserPromptSubmit", "prompt": queries[i]}),
                ("session-end", {"hook_event_name": "SessionEnd", "reason": "exit"}),
            ):
                flags = ["--no-embed"] if name == "session-end" else []
                payload = orjson.dumps({**base, **extra})
                elapsed, used, out = timed([*prefix, "hook", name, *common, *flags], payload)
                times[name].append(elapsed)
                cpu[name].append(used)
                doc = orjson.loads(out)
                if name in context_chars:
                    context = doc.get("hookSpecificOutput", {}).get("additionalContext", "")
                    context_chars[name].append(len(context))
                if name == "session-end":
                    detached.append(wait_for_detached(cfg.home))

    ms = lambda v: round(v * 1000, 1)  # noqa: E731
    result = {
        "runs": args.runs,
        "command": how,
        "store": store,
        "project": project,
        "latency_ms": {
            k: {"p50": ms(statistics.median(v)), "p95": ms(percentile(v, 0.95)), "max": ms(max(v))}
            for k, v in times.items()
        },
        "cpu_ms": {
            k: {"p50": ms(statistics.median(v)), "p95": ms(percentile(v, 0.95))} for k, v in cpu.items()
        },
        "load_average": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "detached_ingest_ms": {"p50": ms(statistics.median(detached)), "max": ms(max(detached))},
        "context_chars": {
            k: {"mean": round(statistics.mean(v)), "with_context": sum(1 for c in v if c)}
            for k, v in context_chars.items()
        },
    }
    if args.json:
        print(orjson.dumps(result).decode())
        return
    print(
        f"store: {store['sessions']} sessions, {store['chunks']} chunks, {store['memories']} memories,"
        f" {store['db_bytes'] / 1e6:.0f} MB (filled in {store['fill_seconds']}s); project {project}"
    )
    print(
        f"{args.runs} runs each via {how}, ms; wall = the whole process as Claude Code waits for it,"
        f" cpu = its user + system time (load average {result['load_average']} on {result['cpus']} CPUs)"
    )
    print(f"{'':<15}{'wall p50':>10}{'p95':>8}{'max':>8}{'cpu p50':>10}{'p95':>8}")
    for name, row in result["latency_ms"].items():
        c = result["cpu_ms"][name]
        print(f"{name:<15}{row['p50']:>10}{row['p95']:>8}{row['max']:>8}{c['p50']:>10}{c['p95']:>8}")
    d = result["detached_ingest_ms"]
    print(
        f"detached ingest after session-end (transcript already ingested): p50 {d['p50']} ms, max {d['max']} ms"
    )
    for name, row in result["context_chars"].items():
        print(f"{name}: context in {row['with_context']}/{args.runs} runs, mean {row['mean']} characters")


if __name__ == "__main__":
    main()
