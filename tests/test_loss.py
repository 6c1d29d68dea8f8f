"""Tests for trainer.loss: the chunked cross-entropy gives the plain loss and gradients without keeping the
logits, on a tiny random Qwen3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import trainer.loss as loss_module
from trainer.batches import IGNORE_INDEX, collate
from trainer.loss import chunk_tokens, group_losses, last_hidden, output_head
from trainer.models import load_model
from trainer.tiny import build_tiny_qwen3


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("loss")
    model, _ = load_model(
        str(build_tiny_qwen3(root / "tiny")), cache_dir=root / "cache", device="cpu", dtype="float32"
    )
    return model


def batch_of(vocab: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    examples = []
    for n, prompt in ((40, 25), (31, 10), (12, 11)):
        ids = torch.randint(0, vocab, (n,), generator=generator).tolist()
        examples.append({"input_ids": ids, "labels": [IGNORE_INDEX] * prompt + ids[prompt:], "weight": 1.0})
    return collate(examples, pad_id=0)


def plain_losses(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: the model's full logits, cross-entropy per row."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    losses = F.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none"
    )
    return losses.sum(1), (labels != IGNORE_INDEX).sum(1)


def test_chunked_loss_and_gradients_equal_the_plain_ones(model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    head = output_head(model)
    vocab = head.weight.shape[0]
    monkeypatch.setitem(loss_module.CHUNK_ELEMENTS, "cpu", 3 * vocab)  # 3 tokens a chunk: many chunks
    assert chunk_tokens(head, torch.device("cpu")) == 3
    batch = batch_of(vocab)
    layer = model.model.layers[0].mlp.up_proj.weight

    model.zero_grad()
    sums, counts = plain_losses(model, batch)
    (sums.sum() / counts.sum()).backward()
    plain_grad = layer.grad.clone()

    model.zero_grad()
    hidden = last_hidden(model, batch)
    chunked, chunked_counts = group_losses(hidden, batch["labels"], batch["example_ids"], 3, head)
    (chunked.sum() / chunked_counts.sum()).backward()

    assert chunked_counts.tolist() == counts.tolist() == [15, 21, 1]
    assert torch.allclose(chunked, sums.detach(), rtol=1e-5)
    assert torch.allclose(layer.grad, plain_grad, rtol=1e-4, atol=1e-7)


def test_backward_keeps_no_logits(model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What autograd saves for backward holds no tensor as wide as the vocabulary: each chunk's logits are
    recomputed in backward instead."""
    head = output_head(model)
    vocab = head.weight.shape[0]
    monkeypatch.setitem(loss_module.CHUNK_ELEMENTS, "cpu", 4 * vocab)
    batch = batch_of(vocab)
    hidden = last_hidden(model, batch).detach().requires_grad_()
    saved: list[torch.Size] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.shape)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        sums, _ = group_losses(hidden, batch["labels"], batch["example_ids"], 3, head)
    sums.sum().backward()
    assert saved and not any(s and s[-1] == vocab for s in saved), saved
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0


def test_no_labelled_token_gives_zero_loss_that_backward_takes(model: Any) -> None:
    head = output_head(model)
    batch = collate([{"input_ids": [1, 2, 3], "labels": [IGNORE_INDEX] * 3, "weight": 1.0}], pad_id=0)
    sums, counts = group_losses(last_hidden(model, batch), batch["labels"], batch["example_ids"], 1, head)
    assert sums.tolist() == [0.0] and counts.tolist() == [0]
    sums.sum().backward()  # a micro-batch with nothing to learn must not stop the loop


def test_a_soft_capped_model_is_refused(tmp_path: Path) -> None:
    class Capped(torch.nn.Module):
        config = type("Config", (), {"final_logit_softcapping": 30.0})()

    with pytest.raises(loss_module.TrainingError, match="soft-caps its logits"):
        output_head(Capped())
