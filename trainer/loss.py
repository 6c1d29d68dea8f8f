"""The training losses, computed from the model's last hidden states a chunk of tokens at a time.

    hidden = last_hidden(model, batch)                     # (batch, seq, hidden): no logits yet
    head = output_head(model)                              # the frozen projection onto the vocabulary
    sums, counts = group_losses(hidden, batch["labels"], batch["example_ids"], len(batch["weights"]), head)
    loss = weighted_loss(sums, counts, batch["weights"], mean_weight=1.0)

Why not the model's logits: a batch's full logits are batch x seq x vocab floats (4 x 1024 x 49k for SmolLM2
is 0.8 GB in fp32, 2.5 GB for Qwen3's 152k vocabulary), and cross-entropy and its backward hold several
copies; on a CPU that was most of a 20 GB process. Here the projection runs only on the labelled positions
(an SFT prompt is never projected), `chunk_tokens` of them at a time, each chunk under activation
checkpointing: forward keeps only the per-token losses, and backward recomputes one chunk's logits at a
time. The result is the same loss and the same gradients (tests/test_loss.py), at the cost of projecting the
labelled positions twice. A fused kernel (liger-kernel, cut-cross-entropy) could replace `token_losses` on
a GPU with the same inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trainer.batches import IGNORE_INDEX, TrainingError

if TYPE_CHECKING:
    import torch

# Logit elements (tokens x vocab) per chunk: 64 MB of fp32 logits on a CPU (341 tokens of SmolLM2's 49k
# vocabulary), 512 MB on a GPU, where fewer, larger matrix products run faster.
CHUNK_ELEMENTS = {"cpu": 1 << 24, "gpu": 1 << 27}


def last_hidden(model: Any, batch: dict[str, torch.Tensor], prefix: str = "") -> torch.Tensor:
    """The final (normed) hidden states of a batch's sequences: `prefix` "teacher_" reads the teacher's.

    The model is called whole (under data-parallel its wrapper must run the forward) with
    `logits_to_keep=1`, so it projects one position per row and the loss projects the rest in chunks. No KV
    cache: besides costing memory, one makes transformers ignore the packed rows' position ids.
    """
    inputs = {
        k: batch[prefix + k] for k in ("input_ids", "attention_mask", "position_ids") if prefix + k in batch
    }
    out = model(**inputs, use_cache=False, output_hidden_states=True, logits_to_keep=1)
    return out.hidden_states[-1]


def output_head(model: Any) -> Any:
    """The module that turns hidden states into logits, checked to be all there is to the model's logits."""
    config = getattr(model, "config", None)
    if getattr(config, "final_logit_softcapping", None) is not None:
        raise TrainingError(
            f"{type(model).__name__} soft-caps its logits, which the chunked loss does not apply: "
            "train a model without logit soft-capping (Qwen3, Llama, SmolLM2)"
        )
    head = model.get_output_embeddings()
    if head is None:
        raise TrainingError(f"{type(model).__name__} has no output projection: train a causal language model")
    return head


def chunk_tokens(head: Any, device: torch.device) -> int:
    """Tokens per loss chunk on `device` for this head's vocabulary size."""
    budget = CHUNK_ELEMENTS["cpu" if device.type == "cpu" else "gpu"]
    return max(1, budget // head.weight.shape[0])


def token_losses(hidden: torch.Tensor, targets: torch.Tensor, head: Any, chunk: int) -> torch.Tensor:
    """The cross-entropy of each row of `hidden` (tokens x hidden) against its target, `chunk` rows at a time."""
    return _chunked(_cross_entropy, chunk, hidden, targets, head=head)


def token_kls(
    student: torch.Tensor, teacher: torch.Tensor, head: Any, chunk: int, temperature: float = 1.0
) -> torch.Tensor:
    """KL(teacher || student) at each position, from the two models' hidden states at matching positions;
    scaled by temperature² so the gradient's size does not depend on it."""
    return _chunked(_kl, chunk, student, teacher, head=head, temperature=temperature)


def _chunked(fn: Any, chunk: int, *tensors: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    import torch
    from torch.utils.checkpoint import checkpoint

    grad = torch.is_grad_enabled() and tensors[0].requires_grad
    parts = []
    for i in range(0, len(tensors[0]), chunk):
        args = [t[i : i + chunk] for t in tensors]
        if grad:  # keep only the chunk's inputs; backward recomputes its logits
            parts.append(checkpoint(fn, *args, **kwargs, use_reentrant=False, preserve_rng_state=False))
        else:
            parts.append(fn(*args, **kwargs))
    if not parts:  # nothing labelled: still a loss that backward accepts (it reaches no weight)
        return tensors[0].new_zeros(0, dtype=torch.float32) + 0 * tensors[0].sum()
    return torch.cat(parts)


def _cross_entropy(hidden: torch.Tensor, targets: torch.Tensor, *, head: Any) -> torch.Tensor:
    import torch.nn.functional as F

    return F.cross_entropy(head(hidden).float(), targets, reduction="none")


def _kl(student: torch.Tensor, teacher: torch.Tensor, *, head: Any, temperature: float) -> torch.Tensor:
    import torch.nn.functional as F

    s = F.log_softmax(head(student).float() / temperature, -1)
    t = F.log_softmax(head(teacher).float() / temperature, -1)
    return F.kl_div(s, t, log_target=True, reduction="none").sum(-1) * temperature**2


def group_losses(
    hidden: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, n_groups: int, head: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per group (an example, or a row): the summed next-token cross-entropy over its labelled positions,
    and how many there are. `groups` gives each position's group, -1 on padding."""
    import torch

    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    owner = groups[:, 1:][keep]  # a target's group: positions before a group's first are never labelled
    losses = token_losses(hidden[:, :-1][keep], targets[keep], head, chunk_tokens(head, hidden.device))
    sums = torch.zeros(n_groups, device=hidden.device, dtype=torch.float32).index_add(0, owner, losses)
    return sums, torch.bincount(owner, minlength=n_groups)


def kl_sums(
    student: torch.Tensor,
    labels: torch.Tensor,
    teacher: torch.Tensor,
    teacher_labels: torch.Tensor,
    has_teacher: torch.Tensor,
    head: Any,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Per row: the summed KL(teacher || student) over the answer's positions, 0 for a row without a teacher.
    `student` and `teacher` are hidden states of unpacked rows; both sequences end in the same answer tokens
    (`batches.encode_distill`), so their labelled positions pair up in order."""
    import torch

    rows_with = has_teacher.bool()[:, None]
    s_mask = (labels[:, 1:] != IGNORE_INDEX) & rows_with
    t_mask = (teacher_labels[:, 1:] != IGNORE_INDEX) & rows_with
    if int(s_mask.sum()) != int(t_mask.sum()):
        raise TrainingError("a distillation example's student and teacher answers differ: rebuild the data")
    chunk = chunk_tokens(head, student.device)
    per_token = token_kls(student[:, :-1][s_mask], teacher[:, :-1][t_mask], head, chunk, temperature)
    sums = torch.zeros(len(labels), device=per_token.device, dtype=per_token.dtype)
    return sums.index_add(0, s_mask.nonzero()[:, 0], per_token)


def weighted_loss(
    sums: torch.Tensor, counts: torch.Tensor, weights: torch.Tensor, *, mean_weight: float = 1.0
) -> torch.Tensor:
    """Each example's mean token loss times its weight, averaged over the batch and divided by the mean weight.

    Dividing by the training set's mean weight rather than the batch's weight sum keeps an example's pull
    independent of its batch mates (a lone low-weight example in a small batch would otherwise count in
    full), and the expected gradient is that of the weighted mean over the whole set. Weight 0: no pull at all.
    """
    per_example = sums / counts.clamp(min=1)
    return (weights.to(per_example) * per_example).sum() / (len(per_example) * mean_weight)
