"""LoRA training throughput on one GPU for a Qwen3-1.7B-shaped model: tokens/s, peak memory, MFU.

    python bench/train_gpu.py --random [--steps 15] [--json]     # throughput alone, no weights needed

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
import time

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
    args = ap.parse_args()
    if not args.random:
        ap.error("only --random is implemented so far: the pipeline run comes with the trainer pipeline")

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

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


if __name__ == "__main__":
    raise SystemExit(main())
