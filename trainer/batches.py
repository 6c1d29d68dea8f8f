"""Training batches: a stage's JSONL rows turned into token examples, the sampler, and the collate function.

    rows = read_rows(run / "sft_train.jsonl", "training")
    examples = load_examples("sft", rows, tokenizer, seq_len=1024, packing=True)  # packed rows of examples
    loader = DataLoader(examples, batch_size=4, sampler=EpochOrder(len(examples), seed=0),
                        collate_fn=partial(collate, pad_id=tokenizer.pad_token_id))

An example is `{"input_ids", "labels", "weight"}`; a label of IGNORE_INDEX is not learned. With packing, what
the loader batches is a *packed row* instead: several examples end to end in one sequence of at most
`seq_len` tokens, `{"input_ids", "labels", "segments", "examples", "weights"}`. `segments` are the lengths of
the runs of tokens that attend only to each other (each restarts its position ids at 0), `examples` the
lengths of the runs whose loss is averaged together, `weights` one per example. In SFT both are the packed
pairs; in CPT the row is one example (its mean token loss, as unpacked) cut into segments at each document
start. Collate then passes `position_ids` and no `attention_mask`: transformers reads the restarts as packed
sequences and builds a block-diagonal causal mask (SDPA and eager alike; flash-attention's varlen path too).

A batch always carries `example_ids`: for each position, the batch's example it belongs to (-1 on padding),
so the loss can be summed per example whether rows are packed or not. Importing this module does not
import torch.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.errors import TrainerError
from trainer.models import chat_prompt

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100  # label of a position that is not learned (prompt, padding): cross_entropy skips it


# Here, in the lowest module that raises it, so that train.py can import this one; callers catch it as
# `trainer.train.TrainingError`.
class TrainingError(TrainerError, RuntimeError):
    """A stage cannot train as asked; the message says what to fix."""


def read_rows(path: Path, what: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; `what` ("training" / "validation") names it in errors."""
    if not path.is_file():
        raise TrainingError(f"{what} file {path} does not exist: build the stage's data before training")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise TrainingError(
                    f"{path} line {n} is not JSON ({error}): rebuild the {what} data"
                ) from error
            if not isinstance(row, dict):
                raise TrainingError(f"{path} line {n} is not a JSON object: rebuild the {what} data")
            rows.append(row)
    if not rows:
        raise TrainingError(f"no {what} examples in {path}: the file is empty; build the stage's data first")
    return rows


def pack_cpt(
    texts: Iterable[str], tokenizer: Any, seq_len: int, *, packing: bool = False
) -> list[dict[str, Any]]:
    """Each text + eos, concatenated and cut into blocks of `seq_len` tokens, labels = input ids.

    The short tail is kept as a block of its own (collate pads it and masks the pads), so a small validation
    file still gives one block; a tail of one token has nothing to predict and is dropped. With `packing`,
    each block is a packed row whose segments start at the documents' starts: a document attends only to
    itself, and its first token, which nothing before it in the document predicts, is not learned.
    """
    import torch

    eos = _eos_id(tokenizer)
    stream = array("i")  # 4 bytes a token: a long history packs into MBs, not GBs of Python ints
    starts = array("q")  # where each document begins in the stream
    batch: list[str] = []

    def flush() -> None:
        for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            starts.append(len(stream))
            stream.extend(ids)
            stream.append(eos)
        batch.clear()

    for text in texts:
        if text:
            batch.append(text)
        if len(batch) >= 1000:
            flush()
    if batch:
        flush()
    tokens = torch.frombuffer(stream, dtype=torch.int32) if stream else torch.empty(0, dtype=torch.int32)
    blocks = []
    for i in range(0, len(tokens), seq_len):
        block = tokens[i : i + seq_len]
        if len(block) < 2:
            continue
        if not packing:
            blocks.append({"input_ids": block, "labels": block, "weight": 1.0})
            continue
        inside = starts[bisect.bisect_right(starts, i) : bisect.bisect_left(starts, i + len(block))]
        cuts = [0, *(c - i for c in inside), len(block)]
        segments = [b - a for a, b in itertools.pairwise(cuts)]
        blocks.append(
            {
                "input_ids": block,
                "labels": block,
                "segments": segments,
                "examples": [len(block)],
                "weights": [1.0],
            }
        )
    return blocks


def pack_examples(
    examples: Sequence[dict[str, Any]], seq_len: int, *, keep_order: bool = False
) -> list[dict[str, Any]]:
    """Encoded SFT examples packed into rows of at most `seq_len` tokens: best fit, longest first, or with
    `keep_order` in the examples' own order (each row takes the next examples while they fit).

    Best fit decreasing leaves little room unused (a few percent on our pairs) and is deterministic, so a
    resumed run packs the same rows; the sampler then shuffles the rows each epoch. Validation keeps the
    order: a capped validation pass (`val_batches`) then reads the file's first examples, as unpacked,
    rather than its longest.
    """
    bins: list[list[int]] = []
    if keep_order:
        room = 0
        for i, example in enumerate(examples):
            size = len(example["input_ids"])
            if size > room:
                bins.append([])
                room = seq_len
            bins[-1].append(i)
            room -= size
    else:
        order = sorted(range(len(examples)), key=lambda i: -len(examples[i]["input_ids"]))
        # (room left, bin), sorted: the tightest bin that fits is a bisect away
        free: list[tuple[int, int]] = []
        for i in order:
            size = len(examples[i]["input_ids"])
            at = bisect.bisect_left(free, (size, -1))
            if at < len(free):
                room, b = free.pop(at)
            else:
                room, b = seq_len, len(bins)
                bins.append([])
            bins[b].append(i)
            if room - size > 0:
                bisect.insort(free, (room - size, b))
    rows = []
    for members in bins:
        parts = [examples[i] for i in members]
        lengths = [len(e["input_ids"]) for e in parts]
        rows.append(
            {
                "input_ids": [t for e in parts for t in e["input_ids"]],
                "labels": [t for e in parts for t in e["labels"]],
                "segments": lengths,
                "examples": lengths,
                "weights": [float(e["weight"]) for e in parts],
            }
        )
    return rows


def encode_sft(row: dict[str, Any], tokenizer: Any, seq_len: int) -> dict[str, Any]:
    """Prompt (chat template, generation prompt) + target + eos; labels are IGNORE_INDEX on the prompt.

    Prompt and target are tokenized apart, so training sees the target exactly as generation produces it after
    the prompt. Too long: the prompt loses tokens from its left side (a leading system message is kept when it
    takes at most half the room); the target is cut only when it alone does not fit.
    """
    messages, target = row.get("messages"), row.get("target")
    if not isinstance(messages, list) or not isinstance(target, str):
        raise TrainingError(f"SFT row {row.get('id')!r} needs 'messages' (a list) and 'target' (a string)")
    try:
        weight = float(row.get("weight", 1.0))
    except (TypeError, ValueError):
        weight = math.nan
    if not math.isfinite(weight) or weight < 0:
        raise TrainingError(f"SFT row {row.get('id')!r} has weight {row.get('weight')!r}: use a number >= 0")

    def tokenize(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    prompt = tokenize(chat_prompt(tokenizer, messages, add_generation_prompt=True))
    answer = [*tokenize(target), _eos_id(tokenizer)][: seq_len - 1]  # one prompt token must precede it
    room = seq_len - len(answer)
    if len(prompt) > room:
        head: list[int] = []
        if messages and messages[0].get("role") == "system":
            head = tokenize(chat_prompt(tokenizer, messages[:1], add_generation_prompt=False))
            if prompt[: len(head)] != head or len(head) > room // 2:
                head = []
        prompt = head + prompt[len(prompt) - (room - len(head)) :]
    return {"input_ids": prompt + answer, "labels": [IGNORE_INDEX] * len(prompt) + answer, "weight": weight}


def encode_distill(row: dict[str, Any], tokenizer: Any, seq_len: int) -> dict[str, Any]:
    """A context-distillation example: the student's input (what retrieval found) and the teacher's (the gold
    source), each followed by the same answer tokens, which both label. Rows without a teacher (abstain
    pairs) are plain SFT examples."""
    distill = (row.get("extra") or {}).get("distill")
    if not distill:
        return encode_sft(row, tokenizer, seq_len)
    answer = str(distill.get("answer") or "")
    student = encode_sft({**row, "messages": distill["student"], "target": answer}, tokenizer, seq_len)
    teacher = encode_sft({**row, "messages": distill["teacher"], "target": answer}, tokenizer, seq_len)
    return {**student, "teacher_ids": teacher["input_ids"], "teacher_labels": teacher["labels"]}


def collate(examples: Sequence[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch to its longest example: pads get pad_id, attention 0 and label IGNORE_INDEX.
    Distillation examples also carry the teacher's sequence (`teacher_*`; a row without one is all padding
    there, and `has_teacher` says which rows have one). Packed rows go to `collate_packed`."""
    import torch

    if "segments" in examples[0]:
        return collate_packed(examples, pad_id)
    out = _pad([e["input_ids"] for e in examples], [e["labels"] for e in examples], pad_id)
    out["weights"] = torch.tensor([float(e["weight"]) for e in examples])
    rows = torch.arange(len(examples))[:, None].expand_as(out["input_ids"])
    out["example_ids"] = torch.where(out["attention_mask"].bool(), rows, -1)
    if any("teacher_ids" in e for e in examples):
        t = _pad(
            [e.get("teacher_ids", [pad_id]) for e in examples],
            [e.get("teacher_labels", [IGNORE_INDEX]) for e in examples],
            pad_id,
        )
        out.update({f"teacher_{k}": v for k, v in t.items()})
        out["has_teacher"] = torch.tensor([float("teacher_ids" in e) for e in examples])
    return out


def collate_packed(rows: Sequence[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Packed rows as a batch: `position_ids` restart at every segment and no `attention_mask` is given, so
    the model masks attention between segments. A segment's first token is not learned (what came before it
    belongs to another segment). Right padding is a segment of its own, never learned."""
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    example_ids = torch.full((len(rows), width), -1, dtype=torch.long)
    weights: list[float] = []
    for i, row in enumerate(rows):
        n = len(row["input_ids"])
        ids[i, :n] = torch.as_tensor(row["input_ids"])
        labels[i, :n] = torch.as_tensor(row["labels"])
        at = 0
        for length in [*row["segments"], width - n]:
            positions[i, at : at + length] = torch.arange(length)
            labels[i, at : at + length][:1] = IGNORE_INDEX
            at += length
        at = 0
        for length, weight in zip(row["examples"], row["weights"], strict=True):
            example_ids[i, at : at + length] = len(weights)
            weights.append(float(weight))
            at += length
    return {
        "input_ids": ids,
        "position_ids": positions,
        "labels": labels,
        "example_ids": example_ids,
        "weights": torch.tensor(weights),
    }


def _pad(
    all_ids: Sequence[Sequence[int]], all_labels: Sequence[Sequence[int]], pad_id: int
) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids in all_ids)
    ids = torch.full((len(all_ids), width), pad_id, dtype=torch.long)
    labels = torch.full((len(all_ids), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(all_ids), width), dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(zip(all_ids, all_labels, strict=True)):
        n = len(row_ids)
        ids[i, :n] = torch.as_tensor(row_ids)
        labels[i, :n] = torch.as_tensor(row_labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _eos_id(tokenizer: Any) -> int:
    if tokenizer.eos_token_id is None:
        raise TrainingError("the tokenizer has no eos token: training needs one to end documents and replies")
    return tokenizer.eos_token_id


def load_examples(
    stage: str,
    rows: list[dict[str, Any]],
    tokenizer: Any,
    seq_len: int,
    objective: str = "sft",
    *,
    packing: bool = False,
    validation: bool = False,
) -> list[dict[str, Any]]:
    """A stage's examples: CPT blocks, encoded SFT pairs, or distillation examples; with `packing`, packed
    rows (see the module docstring). Distillation examples are not packed: the teacher's sequence would need
    a packing of its own whose answers pair up with the student's. For `validation` the teacher's sequence
    goes (validation is the student's cross-entropy) and packing keeps the examples' order."""
    if stage == "cpt":
        return pack_cpt((str(r.get("text") or "") for r in rows), tokenizer, seq_len, packing=packing)
    encode = encode_distill if objective == "distill" else encode_sft
    examples = [encode(r, tokenizer, seq_len) for r in rows]
    if validation:
        examples = [{k: v for k, v in e.items() if not k.startswith("teacher_")} for e in examples]
    if packing and not any("teacher_ids" in e for e in examples):
        return pack_examples(examples, seq_len, keep_order=validation)
    return examples


class EpochOrder:
    """Sampler: a permutation per epoch from (seed, epoch) alone, so a resume knows the order it left.

    The attribute is `epoch`, not `set_epoch`: accelerate calls `set_epoch` with its own iteration count, which a
    resumed (skipping) loader starts again at 0.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        import torch

        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())
