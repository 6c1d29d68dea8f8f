"""Tests for packed batches (trainer.batches): rows of several examples whose positions and attention stay
inside each example, run through a tiny random Qwen3 to check they give each example's own loss."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from trainer.batches import IGNORE_INDEX, collate, encode_sft, load_examples, pack_cpt, pack_examples
from trainer.loss import group_losses, last_hidden, output_head
from trainer.models import load_model
from trainer.settings import LoraSettings, StageSettings
from trainer.tiny import build_tiny_qwen3
from trainer.train import train_stage

QUESTIONS = [
    ("Which test runner does this project use?", "pytest -q tests/."),
    ("How is the code linted?", "The user lints with ruff check . before opening a pull request."),
    ("Which database does the store use?", "SQLite with FTS5."),
    ("What does the user prefer in functions?", "Small functions with type hints and a docstring."),
    (
        "Where do the adapters live?",
        "Under models/, one folder per version, with a pointer to the active one.",
    ),
]


def sft_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"p{i}",
            "messages": [{"role": "user", "content": QUESTIONS[i % 5][0]}],
            "target": QUESTIONS[i % 5][1],
            "weight": 0.5 + (i % 3) / 2,
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("packing")
    folder = build_tiny_qwen3(root / "tiny")
    model, tokenizer = load_model(str(folder), cache_dir=root / "cache", device="cpu", dtype="float32")
    return {"root": root, "folder": folder, "model": model, "tokenizer": tokenizer}


# ---- packing the examples ---------------------------------------------------------------------------------------


def test_pack_examples_fills_rows_without_splitting_an_example() -> None:
    examples = [
        {"input_ids": [i] * n, "labels": [IGNORE_INDEX] * (n - 1) + [i], "weight": float(i)}
        for i, n in enumerate([7, 3, 5, 2, 9, 4, 1, 6], start=1)
    ]
    rows = pack_examples(examples, seq_len=10)
    assert all(len(r["input_ids"]) <= 10 for r in rows)
    assert len(rows) == 4  # 37 tokens: best fit needs only the 4 rows that 10-token rows allow at the least
    seen = sorted((r["input_ids"][sum(r["segments"][:k])], n, w) for r in rows
                  for k, (n, w) in enumerate(zip(r["segments"], r["weights"], strict=True)))  # fmt: skip
    assert seen == sorted((i, len(e["input_ids"]), e["weight"]) for i, e in enumerate(examples, start=1))
    for r in rows:  # each example whole and contiguous, its labels beside its tokens
        assert r["segments"] == r["examples"] and sum(r["segments"]) == len(r["input_ids"])
        at = 0
        for n in r["segments"]:
            token = r["input_ids"][at]
            assert r["input_ids"][at : at + n] == [token] * n
            assert r["labels"][at : at + n] == [IGNORE_INDEX] * (n - 1) + [token]
            at += n


def test_validation_rows_keep_the_examples_order() -> None:
    """A capped validation pass reads the first rows: they must hold the file's first examples, not its
    longest."""
    examples = [
        {"input_ids": [i] * n, "labels": [i] * n, "weight": 1.0} for i, n in enumerate([3, 4, 9, 2, 2])
    ]
    rows = pack_examples(examples, seq_len=10, keep_order=True)
    assert [r["input_ids"] for r in rows] == [[0] * 3 + [1] * 4, [2] * 9, [3] * 2 + [4] * 2]


def test_collate_restarts_positions_and_masks_each_segment_start() -> None:
    rows = [
        {"input_ids": [5, 6, 7, 8, 9], "labels": [5, 6, 7, 8, 9], "segments": [2, 3], "examples": [5],
         "weights": [1.0]},
        {"input_ids": [1, 2, 3], "labels": [IGNORE_INDEX, 2, 3], "segments": [1, 2], "examples": [1, 2],
         "weights": [0.5, 2.0]},
    ]  # fmt: skip
    batch = collate(rows, pad_id=0)
    assert "attention_mask" not in batch  # the model reads the segments from the positions
    assert batch["position_ids"].tolist() == [[0, 1, 0, 1, 2], [0, 0, 1, 0, 1]]  # padding: a segment too
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [1, 2, 3, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, -100, 8, 9], [-100, -100, 3, -100, -100]]
    assert batch["example_ids"].tolist() == [[0, 0, 0, 0, 0], [1, 2, 2, -1, -1]]
    assert batch["weights"].tolist() == [1.0, 0.5, 2.0]


def test_packed_cpt_blocks_cut_segments_at_document_starts(tiny: dict[str, Any]) -> None:
    tok = tiny["tokenizer"]
    texts = ["The user prefers small functions.", "Always run the tests.", "SQLite with FTS5 for the store."]
    lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts]  # with eos
    plain, packed = pack_cpt(texts, tok, seq_len=8), pack_cpt(texts, tok, seq_len=8, packing=True)
    assert [b["input_ids"].tolist() for b in plain] == [b["input_ids"].tolist() for b in packed]
    starts = {0, lengths[0], lengths[0] + lengths[1]}
    for i, block in enumerate(packed):
        cuts = {i * 8 + sum(block["segments"][:k]) for k in range(len(block["segments"]))}
        assert cuts == {i * 8} | {s for s in starts if i * 8 < s < i * 8 + 8}
        assert block["examples"] == [len(block["input_ids"])] and block["weights"] == [1.0]


def test_distillation_examples_stay_unpacked_but_their_validation_packs(tiny: dict[str, Any]) -> None:
    rows = [{**r, "extra": {"distill": {"teacher": r["messages"], "student": r["messages"],
                                        "answer": r["target"]}}} for r in sft_rows(4)]  # fmt: skip
    tok = tiny["tokenizer"]
    train = load_examples("sft", rows, tok, 256, "distill", packing=True)
    assert len(train) == 4 and all("teacher_ids" in e and "segments" not in e for e in train)
    val = load_examples("sft", rows, tok, 256, "distill", packing=True, validation=True)
    assert len(val) < 4 and all("segments" in r for r in val)


# ---- the model on packed rows -----------------------------------------------------------------------------------


def alone_and_packed(tiny: dict[str, Any], n: int) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor]]:
    examples = [encode_sft(r, tiny["tokenizer"], 256) for r in sft_rows(n)]
    rows = pack_examples(examples, seq_len=256)
    assert len(rows) < n  # several examples share a row
    return examples, collate(rows, pad_id=tiny["tokenizer"].pad_token_id)


def example_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        hidden = last_hidden(model, batch)
    return group_losses(
        hidden, batch["labels"], batch["example_ids"], len(batch["weights"]), output_head(model)
    )


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_a_packed_row_gives_each_example_its_own_loss(tiny: dict[str, Any], attention: str) -> None:
    """The model is in eval mode with its KV cache on, as for generation: the loss must not depend on it."""
    model, pad = tiny["model"], tiny["tokenizer"].pad_token_id
    examples, batch = alone_and_packed(tiny, 5)
    model.set_attn_implementation(attention)
    try:
        sums, counts = example_loss(model, batch)
        in_row_order = [e for r in pack_examples(examples, 256) for e in _members(r, examples)]
        assert len(in_row_order) == len(sums) == 5
        for k, example in enumerate(in_row_order):
            alone_sum, alone_count = example_loss(model, collate([example], pad_id=pad))
            assert counts[k] == alone_count[0] > 0
            assert sums[k].item() == pytest.approx(alone_sum.item(), rel=1e-5)
            assert batch["weights"][k].item() == example["weight"]
    finally:
        model.set_attn_implementation("sdpa")


def _members(row: dict[str, Any], examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The examples of a packed row, in row order, found by their tokens."""
    out, at = [], 0
    for n in row["segments"]:
        ids = row["input_ids"][at : at + n]
        out.append(next(e for e in examples if e["input_ids"] == ids))
        at += n
    return out


def test_no_attention_crosses_an_example_boundary(tiny: dict[str, Any]) -> None:
    model = tiny["model"]
    _, batch = alone_and_packed(tiny, 5)
    first = (
        int(torch.nonzero(batch["example_ids"][0] == 0).max()) + 1
    )  # where the row's second example starts
    changed = {k: v.clone() for k, v in batch.items()}
    changed["input_ids"][0, :first] = torch.randint(0, 300, (first,))  # another first example, same length
    with torch.no_grad():
        a, b = last_hidden(model, batch), last_hidden(model, changed)
    assert not torch.allclose(a[0, :first], b[0, :first])
    assert torch.allclose(a[0, first:], b[0, first:], atol=1e-6)  # the rest never saw the first example


# ---- training, packed and not -----------------------------------------------------------------------------------


def test_training_packs_rows_and_keeps_the_unpacked_path(tiny: dict[str, Any], tmp_path: Path) -> None:
    files = {}
    for name, n in (("train", 20), ("val", 5)):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r) + "\n" for r in sft_rows(n)), encoding="utf-8")
    results = {}
    for packing in (False, True):
        settings = StageSettings(
            seq_len=256, batch_size=2, grad_accum=1, lr=1e-2, epochs=3, val_every=100, packing=packing
        )
        results[packing] = train_stage(
            "sft",
            model_source=str(tiny["folder"]),
            cache_dir=tiny["root"] / "cache",
            train_file=files["train"],
            val_file=files["val"],
            out_dir=tmp_path / f"packing-{packing}",
            lora=LoraSettings(r=4, alpha=8, dropout=0.0),
            settings=settings,
            device="cpu",
        )
    plain, packed = results[False], results[True]
    assert plain.tokens == packed.tokens  # every example once per epoch, either way
    assert packed.steps < plain.steps  # fewer, fuller sequences
    assert packed.padding_share < 0.1 < plain.padding_share
    assert packed.first_val_loss == pytest.approx(plain.first_val_loss, rel=1e-4)  # the same validation loss
    for result in (plain, packed):
        assert result.best_val_loss < result.first_val_loss
        assert result.peak_memory["rss_gib"] > 0 and result.step_s > 0
