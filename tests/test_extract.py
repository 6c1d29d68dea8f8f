"""Extractive memories: the model's scores of candidate answers, the excerpts' sentences, and the packing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from trainer.prompts import Passage, recall_messages

MESSAGES = recall_messages(
    "how do we run the tests?",
    [
        Passage("Run pytest -q tests/ before pushing. The CI uses tox.", "s1", "u1"),
        Passage("We use Redis.", "s2", "u2"),
    ],
)
ANSWERS = [
    "Run pytest -q tests/ before pushing. [1]",
    "We use Redis. [2]",
    "x",
    "The CI uses tox, with three envs. [1]",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer.tiny import build_tiny_qwen3

    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny") / "qwen3")


def _plain_score(model, tokenizer, messages, answer: str) -> float:
    """The same mean log-probability from one forward pass over prompt + answer, no cache."""
    import torch

    from trainer.models import chat_prompt

    prompt = tokenizer(chat_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]
    ans = tokenizer(answer, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt + ans])).logits[0].float().log_softmax(-1)
    return sum(logits[len(prompt) - 1 + i, t].item() for i, t in enumerate(ans)) / len(ans)


def test_scores_with_a_shared_prompt_cache_equal_a_plain_forward_pass(tiny: Path, tmp_path: Path) -> None:
    from trainer.generate import load_for_generation, score_answers

    model, tokenizer = load_for_generation(str(tiny), cache_dir=tmp_path, adapter_dir=None, device="cpu")
    batched = score_answers(model, tokenizer, MESSAGES, ANSWERS, batch_size=3)  # a padded batch and a single
    one_by_one = [score_answers(model, tokenizer, MESSAGES, [a])[0] for a in ANSWERS]
    plain = [_plain_score(model, tokenizer, MESSAGES, a) for a in ANSWERS]
    assert len(batched) == len(ANSWERS)
    for a, b, c in zip(batched, one_by_one, plain, strict=True):
        assert math.isfinite(a) and a < 0
        assert a == pytest.approx(b, abs=1e-4) and a == pytest.approx(c, abs=1e-4)
    assert score_answers(model, tokenizer, MESSAGES, []) == []
    with pytest.raises(ValueError, match="batch_size"):
        score_answers(model, tokenizer, MESSAGES, ANSWERS, batch_size=0)
