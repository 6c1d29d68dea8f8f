"""Retrieval's hits reordered by how likely the memory model finds the question after each one.

    scores = question_likelihoods(model, tokenizer, "Why did the deploy fail?", [h.text for h in hits])
    order = rerank_order(scores)          # indices into hits, the best first

Search ranks an excerpt by the words and the meaning it shares with the question; a language model can ask
the converse: having read this excerpt, how likely is this question about it? (query likelihood, as in
unsupervised passage reranking, Sachan et al. 2022). An excerpt that answers the question makes it likely
("I signed up for a cooking class" before "Why did James sign up for a cooking class?"), one that only shares
its words less so. The model reads each excerpt on its own with the question after it, and its score is the
mean log-probability of the question's tokens. Standardised over the hits, it is weighed against
retrieval's own order (`RANK_PENALTY` per place), so one likelihood cannot lift the twentieth hit over the
first for a tenth of a nat. On LoCoMo the best hit came from an evidence session 0.695 -> 0.766 of the time
at depth 16, 0.882 -> 0.875 on the coding set; the adapter and its base model scored alike. End to end it did
not pay with SmolLM2-135M (docs/benchmarks.md, session 24): coverage level on both sets, the judged lead's
citation accuracy +1.4 points on LoCoMo and -4.6 on coding, 1.5-3 s more a recall on 2 CPU cores. So recall
uses it only where `recall_rerank` is set; a larger model may judge likelihoods better.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainer.extract import standardised

RERANK_DEPTH = 16  # hits read by the model: 12-24 scored alike on LoCoMo, 8 lifted the first hit less
RANK_PENALTY = 0.5  # likelihood (standardised) one place down retrieval's ranking costs; 0.2 cost coding
PASSAGE_TOKENS = 160  # an excerpt's last tokens before the question (its opening is cut when longer)
PROMPT = "{text}\n\nA question about the text above:"


def question_likelihoods(
    model: Any,
    tokenizer: Any,
    question: str,
    texts: Sequence[str],
    *,
    passage_tokens: int = PASSAGE_TOKENS,
    batch_size: int = 8,
) -> list[float]:
    """The mean log-probability of `question`'s tokens after each text and `PROMPT`'s closing words (higher:
    likelier). Texts are read whole up to `passage_tokens` (their end kept), `batch_size` at a time, left
    padded so that every question sits at the end of its row and only its positions need logits."""
    import torch

    if not texts:
        return []
    if batch_size < 1 or passage_tokens < 1:
        raise ValueError(
            f"batch_size and passage_tokens must be at least 1, got {batch_size}, {passage_tokens}"
        )
    if not question.split():
        raise ValueError("question is empty: nothing to score")
    asked = tokenizer(" " + " ".join(question.split()), add_special_tokens=False)["input_ids"]
    prefixes = [
        tokenizer(PROMPT.format(text=" ".join(t.split())), add_special_tokens=False)["input_ids"][
            -passage_tokens:
        ]
        for t in texts
    ]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    target = torch.tensor(asked, device=device)
    scores: list[float] = []
    with torch.inference_mode():
        for start in range(0, len(prefixes), batch_size):
            rows = [p + asked for p in prefixes[start : start + batch_size]]
            width = max(map(len, rows))
            ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            # The question's first token is predicted by the position before it: keep len(asked) + 1 logits.
            out = model(
                input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=len(asked) + 1
            )
            logp = out.logits[:, :-1].float().log_softmax(-1)
            picked = logp.gather(-1, target.expand(len(rows), -1).unsqueeze(-1)).squeeze(-1)
            scores.extend(picked.mean(-1).tolist())
    return scores


def rerank_order(likelihoods: Sequence[float], rank_penalty: float = RANK_PENALTY) -> list[int]:
    """Indices of the hits, the best first: each hit's likelihood standardised over the hits, less
    `rank_penalty` per place of its retrieval rank (ties keep retrieval's order)."""
    fused = [z - rank_penalty * i for i, z in enumerate(standardised(likelihoods))]
    return sorted(range(len(fused)), key=lambda i: (-fused[i], i))
