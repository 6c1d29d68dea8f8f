"""What memory costs the agent's context in tokens, and what those tokens stand for.

    python bench/token_cost.py [--no-embed] [--json]

The coding benchmark's 28 sessions (`bench/coding_memory/`) are ingested into a temporary home and its 176
questions are put to the real server in process (`mcp.Client(build_server(cfg))`), each as the agent would:

- `recall_memory` in retrieve mode at 200 and at 1500 tokens (the tool's default);
- `get_source` on the first source of the 200-token recall: the progressive-disclosure path, a small recall
  then one expanded citation, against the one large recall;
- the UserPromptSubmit hook with the question as the prompt, and the SessionStart hook once per project:
  the text memory puts in front of the agent unasked.

It prints, per channel, the estimated tokens served (mean, p50, p95 per call) against the tokens of the
whole records they cite, and the totals `memory_status` reports for the run (`lmm_mcp.usage`). Tokens are
estimated at 4 characters each, as recall budgets them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp import Client  # noqa: E402

from bench.coding_memory.questions import QUESTIONS, load_questions  # noqa: E402
from bench.coding_memory.scenario import write_sessions  # noqa: E402
from lmm_mcp import hooks  # noqa: E402
from lmm_mcp.app import App  # noqa: E402
from lmm_mcp.config import Config  # noqa: E402
from lmm_mcp.server import build_server  # noqa: E402
from lmm_mcp.usage import tokens  # noqa: E402

BUDGETS = (200, 1500)


def _figures(values: list[int]) -> dict[str, float]:
    if not values:
        return {"calls": 0}
    ordered = sorted(values)
    return {
        "calls": len(values),
        "mean": round(statistics.fmean(values), 1),
        "p50": ordered[len(ordered) // 2],
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
    }


async def _ask(cfg: Config, questions) -> dict:
    served = {b: [] for b in BUDGETS}
    cited = {b: [] for b in BUDGETS}
    expanded, expanded_cited = [], []
    async with Client(build_server(cfg)) as client:
        for q in questions:
            first = None
            for budget in BUDGETS:
                args = {"query": q.question, "mode": "retrieve", "max_tokens": budget}
                if q.project:
                    args["project"] = q.project
                out = (await client.call_tool("recall_memory", args)).structured_content
                served[budget].append(out["reply_tokens"])
                cited[budget].append(out["source_tokens"])
                if budget == BUDGETS[0] and out["sources"]:
                    first = out["sources"][0]
            if first is not None:
                src = {"session_id": first["session_id"], "uuid": first["uuid"]}
                got = (await client.call_tool("get_source", src)).structured_content
                expanded.append(got["reply_tokens"])
                expanded_cited.append(sum(tokens(len(r["text"])) for r in got["records"]))
        status = (await client.call_tool("memory_status", {})).structured_content
    return {
        **{f"recall_memory@{b}": {**_figures(served[b]), "cites": _figures(cited[b])} for b in BUDGETS},
        "get_source": _figures(expanded),
        f"recall@{BUDGETS[0]}+get_source": round(
            statistics.fmean(served[BUDGETS[0]]) + statistics.fmean(expanded or [0]), 1
        ),
        "memory_status": status["tokens"],
    }


def _hooks(cfg: Config, questions) -> dict:
    prompt, start = [], []
    for q in questions:
        out = hooks.user_prompt(cfg, {"prompt": q.question, "cwd": q.project or "/home/ana"}, None)
        prompt.append(tokens(len(out["hookSpecificOutput"]["additionalContext"])) if out else 0)
    for project in sorted({q.project for q in questions if q.project}):
        out = hooks.session_start(cfg, {"session_id": "bench", "cwd": project, "source": "startup"}, None)
        start.append(tokens(len(out["hookSpecificOutput"]["additionalContext"])) if out else 0)
    return {
        "user_prompt": {
            **_figures(prompt),
            "injected_share": round(sum(x > 0 for x in prompt) / len(prompt), 3),
        },
        "session_start": _figures(start),
    }


def run(embed: bool) -> dict:
    questions = load_questions(QUESTIONS)
    with tempfile.TemporaryDirectory() as tmp:
        claude = Path(tmp) / "projects"
        write_sessions(claude)
        cfg = Config.load(home=Path(tmp) / "home", claude_dir=claude)
        with App.open(cfg) as app:
            app.ingest(embed=embed)
        t0 = time.perf_counter()
        hooked = _hooks(cfg, questions)  # before the tools: memory_status then reports both
        asked = asyncio.run(_ask(cfg, questions))
        seconds = time.perf_counter() - t0
    return {"embed": embed, "questions": len(questions), "seconds": round(seconds, 1), **asked, **hooked}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-embed", action="store_true", help="ingest without embeddings: search is BM25 only")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()
    doc = run(embed=not args.no_embed)
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    print(f"{doc['questions']} questions, {'hybrid' if doc['embed'] else 'BM25'} search, {doc['seconds']} s")
    print(f"{'channel':<26}{'calls':>6}{'mean':>8}{'p50':>7}{'p95':>7}   cited records (mean tokens)")
    for name in (*(f"recall_memory@{b}" for b in BUDGETS), "get_source", "user_prompt", "session_start"):
        f = doc[name]
        cites = f.get("cites", {}).get("mean", "")
        print(
            f"{name:<26}{f['calls']:>6}{f.get('mean', 0):>8}{f.get('p50', 0):>7}{f.get('p95', 0):>7}   {cites}"
        )
    print(f"recall@{BUDGETS[0]} + one get_source: {doc[f'recall@{BUDGETS[0]}+get_source']} tokens a question")
    status = doc["memory_status"]
    print(
        f"memory_status: {status['tokens_served']} tokens served, {status['tokens_of_sources']} tokens of cited "
        f"records ({status['served_per_source_token']} served per record token)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
