"""Memory generation: recall prompts in, short memories out, batched. Used by evaluation and by recall.

    model, tokenizer = load_for_generation("Qwen/Qwen3-1.7B", cache_dir=home / "models" / "base",
                                           adapter_dir=home / "models" / "versions" / "v0003-20261105-101500")
    memories = generate_memories(model, tokenizer, [recall_messages(query, passages)])

Prompts are rendered with the model's chat template (thinking off), left-padded into batches of similar
length, and decoded without the prompt. Greedy by default, so an evaluation is repeatable. Importing this
module does not import torch: the server pays for it only when it first generates.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.models import ModelError, chat_prompt, load_model, quiet_peft

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

TOP_P = 0.9  # nucleus sampling when temperature > 0
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_NO_LIMIT = 1_000_000  # tokenizers report "no limit" as a huge model_max_length; anything above is that


def generate_memories(
    model: Any,
    tokenizer: Any,
    prompts: list[list[dict[str, str]]],
    *,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    batch_size: int = 8,
) -> list[str]:
    """One memory per prompt (a list of chat messages), in the order given.

    Greedy when `temperature` is 0, else sampling at that temperature with top-p 0.9. Generation stops at the
    tokenizer's eos, Qwen3's `<|im_end|>` or the model's own stop tokens. A prompt too long for the model keeps
    its end (the last excerpts and the assistant turn's opening), losing tokens from its start: the system
    rules and the question go first, so callers should fit the excerpts to the model beforehand.
    """
    import torch

    if not prompts:
        return []
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    texts = [chat_prompt(tokenizer, messages) for messages in prompts]
    # A chat template writes its own special tokens (bos included, where a model has one): add none twice.
    encode = {"truncation": True, "max_length": _max_prompt_tokens(model, tokenizer, max_new_tokens)}
    encode["add_special_tokens"] = not getattr(tokenizer, "chat_template", None)
    sampling = (
        # top_k 0 switches off a top-k the model's generation config may set (Qwen3's is 20).
        {"do_sample": True, "temperature": float(temperature), "top_p": TOP_P, "top_k": 0}
        if temperature > 0
        else {"do_sample": False}
    )
    device = next(model.parameters()).device
    outputs: list[str] = [""] * len(texts)
    saved = tokenizer.padding_side, tokenizer.truncation_side
    tokenizer.padding_side, tokenizer.truncation_side = "left", "left"
    try:
        # Batches of similar length waste less compute on padding; outputs go back to the caller's order.
        lengths = [len(ids) for ids in tokenizer(texts, **encode)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: lengths[i], reverse=True)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            enc = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True, **encode).to(device)
            with torch.inference_mode():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    eos_token_id=_stop_ids(model, tokenizer),
                    pad_token_id=tokenizer.pad_token_id,
                    **sampling,
                )
            new = out[:, enc["input_ids"].shape[1] :]
            for i, text in zip(batch, tokenizer.batch_decode(new, skip_special_tokens=True), strict=True):
                outputs[i] = clean_memory(text)
    finally:
        tokenizer.padding_side, tokenizer.truncation_side = saved
    return outputs


def score_answers(
    model: Any,
    tokenizer: Any,
    messages: list[dict[str, str]],
    answers: list[str],
    *,
    batch_size: int = 16,
) -> list[float]:
    """How likely the model is to answer `messages` with each of `answers`: the mean log-probability of the
    answer's tokens as the assistant's reply (higher is likelier; a mean, so length does not decide).

    The prompt is run once and its key/value cache shared by every answer, so scoring N answers costs the
    prompt plus the answers' own tokens, not N prompts. An empty answer scores -inf.
    """
    import copy

    import torch

    if not answers:
        return []
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    text = chat_prompt(tokenizer, messages)
    encoded_answers = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in answers]
    room = _max_prompt_tokens(model, tokenizer, max(len(e) for e in encoded_answers) + 1)
    prompt = tokenizer(text, add_special_tokens=not getattr(tokenizer, "chat_template", None))["input_ids"]
    prompt = prompt[-room:]  # as generation does: a prompt too long keeps its end
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores: list[float] = []
    with torch.inference_mode():
        ids = torch.tensor([prompt], device=device)
        first = model(input_ids=ids, use_cache=True, logits_to_keep=1)  # only the last position's logits
        prompt_cache, next_logits = first.cache, first.logits[:, -1:, :]
        for start in range(0, len(answers), batch_size):
            encoded = encoded_answers[start : start + batch_size]
            width = max(1, max(len(e) for e in encoded))
            batch = torch.tensor([e + [pad] * (width - len(e)) for e in encoded], device=device)
            mask = torch.tensor(
                [[1] * (len(prompt) + len(e)) + [0] * (width - len(e)) for e in encoded], device=device
            )
            cache = copy.deepcopy(prompt_cache)
            cache.batch_repeat_interleave(len(encoded))
            positions = torch.arange(len(prompt), len(prompt) + width, device=device).expand(len(encoded), -1)
            out = model(
                input_ids=batch, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True
            )
            # The first answer token is predicted by the prompt's last position, the rest by the answer's own.
            logits = torch.cat([next_logits.expand(len(encoded), -1, -1), out.logits[:, :-1]], dim=1)
            logp = logits.float().log_softmax(-1).gather(-1, batch.unsqueeze(-1)).squeeze(-1)
            for row, e in zip(logp, encoded, strict=True):
                scores.append(row[: len(e)].mean().item() if e else float("-inf"))
    return scores


def clean_memory(text: str) -> str:
    """Generated text without think blocks (closed, or left open when the token budget ran out) or padding."""
    text = _THINK_BLOCK.sub("", text)
    if "</think>" in text:  # the opening tag was in the prompt: keep what follows the block
        text = text.rsplit("</think>", 1)[1]
    if "<think>" in text:  # still thinking when the budget ran out: no answer was written
        text = text.split("<think>", 1)[0]
    return text.strip()


def _max_prompt_tokens(model: Any, tokenizer: Any, max_new_tokens: int) -> int:
    limits = [
        getattr(model.config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    usable = [int(n) for n in limits if isinstance(n, int | float) and 0 < n < _NO_LIMIT]
    if not usable:
        return _NO_LIMIT
    room = min(usable) - max_new_tokens
    if room < 1:
        raise ValueError(
            f"max_new_tokens={max_new_tokens} leaves no room for a prompt in a model of {min(usable)} positions"
        )
    return room


def _stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """The model's own stop tokens, the tokenizer's eos and `<|im_end|>` (Qwen3's end of turn) when it exists."""
    ids: list[int] = []
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids += configured if isinstance(configured, list) else [configured]
    ids.append(tokenizer.eos_token_id)
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        ids.append(im_end)
    return list(dict.fromkeys(i for i in ids if isinstance(i, int)))


def load_for_generation(
    model_source: str,
    *,
    cache_dir: Path,
    adapter_dir: Path | None,
    device: str | None = None,
    merge: bool = True,
    dtype: Any = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model in eval mode with the PEFT adapter at `adapter_dir` applied (None: the base alone).

    With `merge` the adapter is folded into the freshly loaded base weights (no copy), so generation costs
    what the base model costs; without it the model stays a `PeftModel` whose adapter can be swapped. `dtype`
    as `load_model`'s (None: picked for the device).
    """
    model, tokenizer = load_model(model_source, cache_dir=cache_dir, device=device, dtype=dtype)
    if adapter_dir is not None:
        from peft import PeftModel

        adapter_dir = Path(adapter_dir)
        if not (adapter_dir / "adapter_config.json").is_file():
            raise ModelError(f"{adapter_dir} holds no adapter_config.json: pass a PEFT adapter folder")
        with quiet_peft():
            model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
        if merge:
            model = model.merge_and_unload()
        model.eval()
    return model, tokenizer
