"""The `lmm-mcp` command: one entry point, one subcommand per job.

    lmm-mcp ingest [PATH ...] [--claude-dir DIR] [--no-embed] [--json]
    lmm-mcp search QUERY [--k N] [--project P] [--since 7d] [--json] | --queries FILE
    lmm-mcp status [--json]

Every subcommand takes `--home DIR` (else $LMM_HOME, else ~/.lmm). With `--json` a command prints exactly
one JSON document on stdout (`search --queries` prints one per line); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from lmm_mcp.config import Config, ConfigError
from lmm_mcp.store import StoreError, connect, stats


class UsageError(Exception):
    """Bad arguments the parser cannot catch; printed without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = Config.load(args.home, getattr(args, "claude_dir", None))
        return args.run(cfg, args)
    except (ConfigError, StoreError, UsageError, ValueError) as e:
        print(f"lmm-mcp {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
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
    from lmm_mcp.ingest import Ingester

    conn = connect(cfg.db_path, cfg.busy_timeout_ms)
    file_done = _progress(0, "files")
    report = Ingester(cfg, conn).ingest(args.paths or None, progress=lambda _file: file_done())
    from lmm_mcp.memories import refresh_memories

    memories = refresh_memories(conn)
    if not args.no_embed:
        from lmm_mcp.embed import Embedder, embed_pending

        embedder = Embedder(cfg.embed_model, max_tokens=cfg.embed_max_tokens, batch_size=cfg.embed_batch)
        report.chunks_embedded = embed_pending(conn, embedder, _progress(0, "\nembedded"))
    doc = {**report.as_dict(), "memories": memories.as_dict()}
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
    from lmm_mcp.embed import Embedder
    from lmm_mcp.retrieval import Retriever

    if (args.query is None) == (args.queries is None):
        raise UsageError("give a QUERY or --queries FILE, not both")
    conn = connect(cfg.db_path, cfg.busy_timeout_ms)
    has_vectors = conn.execute("SELECT 1 FROM vectors LIMIT 1").fetchone() is not None
    embedder = None
    if args.mode != "bm25" and has_vectors:
        embedder = Embedder(cfg.embed_model, max_tokens=cfg.embed_max_tokens, batch_size=cfg.embed_batch)
    retriever = Retriever(conn, embedder, fusion=args.mode)
    queries = [args.query] if args.query is not None else _read_queries(args.queries)
    for query in queries:
        hits = retriever.retrieve(query, k=args.k, project=args.project, since=args.since)
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
    conn = connect(cfg.db_path, cfg.busy_timeout_ms)
    s = stats(conn, cfg.db_path)
    doc = {"home": str(cfg.home), **s.__dict__}
    text = "\n".join(f"{k:>17}: {v}" for k, v in doc.items())
    _emit(args, doc, text)
    return 0
