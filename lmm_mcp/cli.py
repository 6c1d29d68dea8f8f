"""The `lmm-mcp` command: one entry point, one subcommand per job.

    lmm-mcp ingest [PATH ...] [--claude-dir DIR] [--no-embed] [--json]
    lmm-mcp search QUERY [--k N] [--project P] [--since 7d] [--json] | --queries FILE
    lmm-mcp status [--json]
    lmm-mcp memories [--project P] [--category C] [--all] [--json]
    lmm-mcp train [training options: --stage, --model, --max-steps, --seq-len, --eval-limit, --device, --fresh]
                  [--prepare-only] [--json]
    lmm-mcp eval [--version V] [--limit N] [--json]
    lmm-mcp models list [--json] | lmm-mcp models use VERSION
    lmm-mcp recall QUERY [--project P] [--k N] [--mode auto|retrieve|generate] [--json]
    lmm-mcp serve [--claude-dir DIR]            # the MCP server, over stdio
    lmm-mcp setup [--wheel FILE]                # fetch the embedding model once; say whether training is here
    lmm-mcp forget --session ID | --project PATH | --before DATE
    lmm-mcp export FILE | lmm-mcp import FILE | lmm-mcp rebuild [--force] [--no-embed]
    lmm-mcp ui [--port 0] [--no-open]         # the memory browser on 127.0.0.1 (the URL carries a token)
    lmm-mcp memory correct KEY TEXT | forget KEY | undo KEY | list

train, eval and the demo's training step need the `[train]` extra (torch and friends, `lmm_mcp.extras`);
without it they stop with a message saying what to install, and everything else works.

Every subcommand takes `--home DIR` (else $LMM_HOME, else ~/.lmm). With `--json` a command prints exactly
one JSON document on stdout (`search --queries` prints one per line); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from lmm_mcp import backup, demo, hooks, install, privacy, setup_env, watch
from lmm_mcp.app import App
from lmm_mcp.config import Config, ConfigError
from lmm_mcp.extras import TrainingUnavailable, require_training
from lmm_mcp.store import StoreError, stats
from trainer.errors import TrainerError
from transcripts.wording import project_name


class UsageError(Exception):
    """Bad arguments the parser cannot catch; printed without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["hook"] and not {"-h", "--help"} & set(argv):
        return hooks.main(argv[1:])  # a hook must never fail the user's session, even on a bad config
    args = _parser().parse_args(argv)
    cfg = None
    try:
        cfg = Config.load(args.home, getattr(args, "claude_dir", None))
        return args.run(cfg, args)
    except (
        ConfigError,
        StoreError,
        UsageError,
        ValueError,
        TrainerError,
        TrainingUnavailable,
    ) as e:  # RecallError is a ValueError
        print(f"lmm-mcp {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except (sqlite3.OperationalError, OSError) as e:
        if not _out_of_space(e):
            raise
        print(
            f"lmm-mcp {args.command}: cannot write under {cfg.home if cfg else 'the home'} ({e}): the disk is "
            "probably full. Free some space and run it again; what was stored before is intact.",
            file=sys.stderr,
        )
        return 2


def _out_of_space(e: Exception) -> bool:
    """A write refused for want of room: SQLite's "full" (or the I/O error a file size limit gives), ENOSPC."""
    if isinstance(e, sqlite3.OperationalError):
        return "full" in str(e) or "disk I/O error" in str(e)
    return e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _parser() -> argparse.ArgumentParser:
    from trainer import options
    from trainer.pipeline import PipelineConfig

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", help="data folder (default: $LMM_HOME or ~/.lmm)")
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser = argparse.ArgumentParser(prog="lmm-mcp", description="Local memory for coding agents.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", parents=[common], help="ingest Claude Code transcripts into the store")
    p.add_argument(
        "paths", nargs="*", type=Path, help="files or folders (default: the Claude projects folder)"
    )
    p.add_argument("--claude-dir", help="Claude projects folder (default: ~/.claude/projects)")
    p.add_argument("--no-embed", action="store_true", help="skip embedding (search falls back to BM25)")
    p.set_defaults(run=cmd_ingest)

    p = sub.add_parser("search", parents=[common], help="hybrid search over the memory")
    p.add_argument("query", nargs="?", help="what to look for")
    p.add_argument("--queries", type=Path, help="file with one query per line; prints one document per line")
    p.add_argument("--k", type=int, default=10, help="hits to return (default 10)")
    p.add_argument("--project", help="restrict to a project path or folder name")
    p.add_argument("--since", help="only memories after this: ISO date or an age like 7d")
    p.add_argument(
        "--mode",
        choices=["zscore", "rrf", "bm25", "vector"],
        default="zscore",
        help="ranking (default zscore: hybrid)",
    )
    p.set_defaults(run=cmd_search)

    p = sub.add_parser("status", parents=[common], help="what the store holds")
    p.set_defaults(run=cmd_status)

    p = sub.add_parser("memories", parents=[common], help="list the memories extracted from your sessions")
    p.add_argument(
        "--project", help="only this project's memories: a path (folders under it too) or a folder name"
    )
    p.add_argument("--category", help="only this category (preference, decision, project_fact, ...)")
    p.add_argument("--all", action="store_true", help="also the memories a later one superseded")
    p.set_defaults(run=cmd_memories)

    p = sub.add_parser(
        "train", parents=[common], help="train the memory model on the store (CPT, SFT, eval, new adapter)"
    )
    options.add_arguments(
        p.add_argument_group("training options"), PipelineConfig
    )  # one source: trainer.options
    p.add_argument("--prepare-only", action="store_true", help="write the training data and stop")
    p.add_argument("--job-dir", type=Path, help=argparse.SUPPRESS)  # set by the retrain tool's background job
    p.add_argument("--lock-fd", type=int, help=argparse.SUPPRESS)  # the retrain lock, passed to that job
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("eval", parents=[common], help="evaluate an adapter version on its held-out pairs")
    p.add_argument("--version", help="version name or number (default: the active one)")
    p.add_argument("--limit", type=int, default=100, help="held-out pairs to evaluate (default 100)")
    p.add_argument("--device", help="cuda, mps or cpu")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("models", parents=[common], help="list adapter versions or switch the active one")
    p.add_argument(
        "action", nargs="?", choices=["list", "use"], default="list", help="list (the default) or use"
    )
    p.add_argument("version", nargs="?", help="for `use`: a version name, `v0003` or `3`")
    p.set_defaults(run=cmd_models)

    p = sub.add_parser("recall", parents=[common], help="recall a memory, as the recall_memory tool does")
    p.add_argument("query", help="what to recall")
    p.add_argument("--project", help="project path or folder name (default: the current directory's)")
    p.add_argument("--k", type=int, default=8, help="sources to draw on (default 8)")
    p.add_argument("--max-tokens", type=int, default=1500, help="budget for the memory (default 1500)")
    p.add_argument("--mode", choices=["auto", "retrieve", "generate"], default="auto")
    p.set_defaults(run=cmd_recall)

    p = sub.add_parser("serve", parents=[common], help="run the MCP server over stdio (for Claude Code)")
    p.add_argument("--claude-dir", help="Claude projects folder (default: ~/.claude/projects)")
    p.set_defaults(run=cmd_serve)

    # Each module owns its subcommand(s); the memory browser and its edits (`ui`, `memory`) are imported
    # here, not with this module: a hook, which never builds the parser, does not pay for them.
    from lmm_mcp import edits, ui

    for module in (hooks, install, watch, demo, privacy, backup, setup_env, edits, ui):
        module.register(sub, common)
    return parser


def _emit(args: argparse.Namespace, doc: dict[str, Any], text: str) -> None:
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
    else:
        print(text)
    sys.stdout.flush()


def _progress(total: int, label: str):
    """A one-line progress counter on stderr, only when a person is watching."""
    if not sys.stderr.isatty():
        return lambda *_: None
    done = [0]

    def tick(n: int = 1) -> None:
        done[0] += n
        shown = f"{done[0]}/{total}" if total else str(done[0])
        print(f"\r{label} {shown}", end="", file=sys.stderr, flush=True)

    return tick


def cmd_ingest(cfg: Config, args: argparse.Namespace) -> int:
    with App.open(cfg) as app:
        file_done, embedded = _progress(0, "files"), _progress(0, "\nembedded")
        report = app.ingest(
            args.paths or None, embed=not args.no_embed, on_file=lambda _f: file_done(), on_embedded=embedded
        )
    memories = report.memories
    assert memories is not None
    doc = report.as_dict()
    text = (
        f"files {report.files} ({report.files_changed} changed), sessions {report.sessions}, "
        f"turns +{report.turns}, chunks +{report.chunks}, embedded +{report.chunks_embedded}, "
        f"memories {memories.memories} (+{memories.added}, {memories.changed} changed), "
        f"lines skipped {report.lines_skipped}, secrets redacted {report.secrets_redacted} "
        f"in {report.seconds:.1f}s"
    )
    for err in report.errors:
        text += f"\nerror: {err}"
    _emit(args, doc, text)
    return 1 if report.errors and not report.files_changed and not report.files else 0


def cmd_search(cfg: Config, args: argparse.Namespace) -> int:
    if (args.query is None) == (args.queries is None):
        raise UsageError("give a QUERY or --queries FILE, not both")
    from lmm_mcp.query import find

    app = App.open(cfg)
    retriever = app.retriever(fusion=args.mode)
    queries = [args.query] if args.query is not None else _read_queries(args.queries)
    for query in queries:
        hits = find(retriever, app.conn, query, k=args.k, project=args.project, since=args.since)
        doc = {"query": query, "hits": [h.as_dict() for h in hits]}
        lines = [
            f"{i + 1}. [{h.score:.4f}] {h.timestamp or '?'} {h.project or '?'} {h.session_id}/{h.uuid}\n"
            f"   {' '.join(h.snippet.split())}"
            for i, h in enumerate(hits)
        ]
        _emit(args, doc, "\n".join(lines) or "no hits")
    return 0


def _read_queries(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read queries from {path}: {e}") from e
    return [q for q in (line.strip() for line in lines) if q]


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    with App.open(cfg) as app:
        s = stats(app.conn, cfg.db_path)
        auto, why = app.recaller().auto_mode()
    doc = {"home": str(cfg.home), **s.__dict__, "recall_auto_mode": auto, "recall_auto_why": why}
    text = "\n".join(f"{k:>17}: {v}" for k, v in doc.items())
    _emit(args, doc, text)
    return 0


def cmd_memories(cfg: Config, args: argparse.Namespace) -> int:
    from lmm_mcp import queries
    from lmm_mcp.store import project_paths_named

    with App.open(cfg) as app:
        paths = project_paths_named(app.conn, args.project) if args.project else None
        rows = queries.list_memories(
            app.conn, projects=paths, category=args.category, include_superseded=args.all
        )
    lines = []
    for m in rows:
        when = (m["last_seen"] or "")[:10] or "undated"
        where = project_name(m["project"], "all projects")
        lines.append(f"[{m['category']}] {where} {when}: {' '.join(m['text'].split())}")
        if m["superseded_by"]:
            lines.append(f"    superseded by: {' '.join(m['superseded_by']['text'].split())}")
    _emit(args, {"memories": rows}, "\n".join(lines) or "no memories (yet): run `lmm-mcp ingest`")
    return 0


def cmd_train(cfg: Config, args: argparse.Namespace) -> int:
    """Train under the retrain lock, the same one the `retrain` tool's jobs hold: one training per home."""
    from lmm_mcp.jobs import JobError

    require_training("lmm-mcp train")  # --prepare-only too: the run settles its device with torch first
    app = App.open(cfg)
    stage = getattr(args, "stage", None) or "both"
    with contextlib.ExitStack() as stack:
        try:
            job_dir = stack.enter_context(app.jobs().hold(stage, job_dir=args.job_dir, lock_fd=args.lock_fd))
        except JobError as e:
            raise UsageError(str(e)) from None
        return _train(app, args, job_dir)


def _train(app: App, args: argparse.Namespace, job_dir: Path) -> int:
    from lmm_mcp.jobs import write_progress, write_result
    from lmm_mcp.memories import refresh_memories
    from trainer import options
    from trainer.pipeline import PipelineConfig, run_pipeline
    from trainer.settings import DataSettings

    cfg = app.cfg
    refresh_memories(app.conn)
    base = PipelineConfig(
        home=cfg.home,
        model=cfg.base_model,
        keep_versions=cfg.keep_versions,
        data=DataSettings(expansions=cfg.expand_queries),  # teach expansion only where recall will use it
    )
    pipeline = options.apply(base, options.from_namespace(args, PipelineConfig))
    pipeline.prepare_only = args.prepare_only
    history = app.history()

    def on_progress(p) -> None:
        _print_progress(p)
        write_progress(job_dir, p.as_dict())

    try:
        result = run_pipeline(pipeline, history, on_progress=on_progress, log=_log)
    except BaseException as e:
        write_result(job_dir, {"ok": False, "error": f"{type(e).__name__}: {e}"})
        raise
    doc = result.as_dict()
    write_result(job_dir, {"ok": True, "adapter_version": result.adapter_version, "run_dir": doc["run_dir"]})
    text = _train_summary(doc)
    _emit(args, doc, text)
    return 0


def cmd_recall(cfg: Config, args: argparse.Namespace) -> int:
    import os

    project = args.project or os.environ.get("CLAUDE_PROJECT_DIR") or os.getcwd()
    result = (
        App.open(cfg)
        .recaller()
        .recall(args.query, project=project, k=args.k, max_tokens=args.max_tokens, mode=args.mode)
    )
    lines = [result.memory, ""]
    lines += [
        f"  [{s.n}] {s.session_id[:8]} {(s.timestamp or '')[:10]} {s.project or '-'}  {s.snippet[:100]}"
        for s in result.sources
    ]
    lines.append(
        f"  ({result.mode_used}, {result.latency_ms:.0f} ms, adapter {result.adapter_version or '-'})"
    )
    _emit(args, result.as_dict(), "\n".join(lines))
    return 0


def cmd_serve(cfg: Config, args: argparse.Namespace) -> int:
    from lmm_mcp.server import serve

    serve(cfg)
    return 0


def cmd_eval(cfg: Config, args: argparse.Namespace) -> int:
    from trainer.pipeline import evaluate_version

    require_training("lmm-mcp eval")
    metrics = evaluate_version(cfg.home, args.version, limit=args.limit, device=args.device)
    _emit(args, metrics, _eval_summary(metrics))
    return 0


def cmd_models(cfg: Config, args: argparse.Namespace) -> int:
    from trainer.versions import list_versions, use_version

    if args.action == "use":
        if not args.version:
            raise UsageError("models use needs a VERSION (see `lmm-mcp models list`)")
        info = use_version(cfg.models_dir, args.version)
        _emit(args, {"active": info.name}, f"active adapter: {info.name}")
        return 0
    versions = list_versions(cfg.models_dir)
    doc = {"versions": [v.as_dict() for v in versions]}
    lines = [
        f"{'*' if v.active else ' '} {v.name}  {v.base_model or '?'}  {_short_metrics(v.metrics)}"
        for v in versions
    ]
    _emit(args, doc, "\n".join(lines) or "no adapter versions yet: run `lmm-mcp train`")
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_progress(p) -> None:
    every = max(1, p.total_steps // 20)
    if p.val_loss is None and p.step % every and p.step != p.total_steps:
        return
    _log(p.line())


def _short_metrics(metrics: dict[str, Any]) -> str:
    model = (metrics.get("eval") or {}).get("model") or {}
    sft = metrics.get("sft") or {}
    bits = []
    if sft.get("best_val_loss") is not None:
        bits.append(f"sft val {sft['best_val_loss']:.3f}")
    for key in ("keyword_coverage", "citation_accuracy"):
        if model.get(key) is not None:
            bits.append(f"{key} {model[key]:.2f}")
    return ", ".join(bits)


def _train_summary(doc: dict[str, Any]) -> str:
    if doc["adapter_version"] is None:
        counts = doc["metrics"]["data"]["counts"]
        return f"training data written to {doc['run_dir']}/data: {counts}"
    return f"adapter version {doc['adapter_version']} is active ({_short_metrics(doc['metrics'])})"


def _eval_summary(metrics: dict[str, Any]) -> str:
    model, base = metrics.get("model") or {}, metrics.get("baseline") or {}
    rows = [f"{'metric':<22}{'model':>10}{'retrieval':>12}"]
    for key in sorted(set(model) | set(base)):
        a, b = model.get(key), base.get(key)
        if isinstance(a, (int, float)) or isinstance(b, (int, float)):
            fmt = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "-"  # noqa: E731
            rows.append(f"{key:<22}{fmt(a):>10}{fmt(b):>12}")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
