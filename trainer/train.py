"""LoRA training of one stage, CPT or SFT, in our own accelerate loop (not the Hugging Face Trainer).

    cpt = train_stage("cpt", model_source="Qwen/Qwen3-1.7B", cache_dir=home / "models" / "base",
                      train_file=run / "cpt_train.jsonl", val_file=run / "cpt_val.jsonl", out_dir=run / "cpt",
                      lora=LoraSettings(), settings=default_stages()["cpt"])
    sft = train_stage("sft", ..., out_dir=run / "sft", init_adapter=cpt.adapter_dir)  # continues the CPT adapter

CPT rows (`{"id", "text", "kind"}`) are tokenized, each followed by eos, concatenated and cut into blocks of
`seq_len` tokens; every token is learned. SFT rows (`{"id", "messages", "target", "weight"}`) learn only the
target reply and its eos after the chat-formatted prompt, and each example's loss is scaled by its weight.
Validation loss is the plain mean token loss in both stages, so runs compare.

The same call runs on a CPU, one GPU, or data-parallel under `accelerate launch --num_processes N` (one process
per GPU; only the main process writes files and reports progress). What it leaves in `out_dir`:
- `best/`: the adapter with the lowest validation loss, in PEFT's own format (`PeftModel.from_pretrained`);
- `checkpoint/state.pt`: the resume point, rewritten at each validation; a rerun after a crash continues there;
- `log.jsonl`: one `Progress` row per logged or validated step;
- `result.json`: the `StageResult` and the fingerprint of its inputs; a rerun with the same inputs returns it
  without loading the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.models import chat_prompt, load_model
from trainer.settings import LoraSettings, Progress, StageSettings

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

STAGES = ("cpt", "sft")
IGNORE_INDEX = -100  # label of a position that is not learned (prompt, padding): cross_entropy skips it
MAX_PROGRESS_ROWS = 200  # progress on every step up to this many steps, then on every total/200-th


class TrainingError(RuntimeError):
    """A stage cannot train as asked; the message says what to fix."""


@dataclass
class StageResult:
    stage: str  # "cpt" | "sft"
    adapter_dir: Path  # the best adapter (PEFT save_pretrained folder): out_dir / "best"
    best_val_loss: float | None
    first_val_loss: float | None  # before the first optimizer step (step 0)
    steps: int  # optimizer steps done in total, counting those before a resume
    tokens: int  # non-pad training tokens seen in total
    tokens_per_s: float  # training throughput of this process's run (validation time excluded)
    stopped_early: bool
    resumed_from: int | None  # the step a resume started from, else None
    # one row per logged or validated step: {"step", "loss", "val_loss", "lr", "tokens_per_s"}
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "adapter_dir": str(self.adapter_dir)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageResult:
        values = {f.name: data[f.name] for f in fields(cls)}
        return cls(**{**values, "adapter_dir": Path(values["adapter_dir"])})


@dataclass
class _LoopState:
    """What a checkpoint carries besides tensors: enough to go on as if the run had never stopped."""

    step: int = 0
    tokens: int = 0
    best_val_loss: float | None = None
    first_val_loss: float | None = None
    bad_vals: int = 0  # validations since the last improvement
    last_val_step: int | None = None
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


# ---- data -------------------------------------------------------------------------------------------------------


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


def pack_cpt(texts: Iterable[str], tokenizer: Any, seq_len: int) -> list[dict[str, Any]]:
    """Each text + eos, concatenated and cut into blocks of `seq_len` tokens, labels = input ids.

    The short tail is kept as a block of its own (collate pads it and masks the pads), so a small validation
    file still gives one block; a tail of one token has nothing to predict and is dropped.
    """
    import torch

    eos = _eos_id(tokenizer)
    stream = array("i")  # 4 bytes a token: a long history packs into MBs, not GBs of Python ints
    batch: list[str] = []

    def flush() -> None:
        for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
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
    blocks = [tokens[i : i + seq_len] for i in range(0, len(tokens), seq_len)]
    return [{"input_ids": b, "labels": b, "weight": 1.0} for b in blocks if len(b) >= 2]


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


def collate(examples: Sequence[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch to its longest example: pads get pad_id, attention 0 and label IGNORE_INDEX."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[i, :n] = torch.as_tensor(e["input_ids"])
        labels[i, :n] = torch.as_tensor(e["labels"])
        mask[i, :n] = 1
    weights = torch.tensor([float(e["weight"]) for e in examples])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "weights": weights}


def _eos_id(tokenizer: Any) -> int:
    if tokenizer.eos_token_id is None:
        raise TrainingError("the tokenizer has no eos token: training needs one to end documents and replies")
    return tokenizer.eos_token_id


def load_examples(
    stage: str, rows: list[dict[str, Any]], tokenizer: Any, seq_len: int
) -> list[dict[str, Any]]:
    """A stage's training examples: packed CPT blocks or encoded SFT pairs."""
    if stage == "cpt":
        return pack_cpt((str(r.get("text") or "") for r in rows), tokenizer, seq_len)
    return [encode_sft(r, tokenizer, seq_len) for r in rows]


class _EpochOrder:
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


# ---- loss -------------------------------------------------------------------------------------------------------


def example_losses(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example: the summed next-token cross-entropy over its labelled positions, and how many there are."""
    import torch.nn.functional as F

    shift_labels = labels[:, 1:]
    losses = F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view_as(shift_labels)
    return losses.sum(1), (shift_labels != IGNORE_INDEX).sum(1)


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


# ---- training ---------------------------------------------------------------------------------------------------


def train_stage(
    stage: str,
    *,
    model_source: str,
    cache_dir: Path,
    train_file: Path,
    val_file: Path,
    out_dir: Path,
    lora: LoraSettings,
    settings: StageSettings,
    init_adapter: Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    device: str | None = None,
) -> StageResult:
    """Train one stage's LoRA adapter and keep the best one in `out_dir / "best"`.

    `init_adapter` (SFT after CPT) is loaded trainable and trained further; its own LoRA config then applies,
    not `lora`. `device="cpu"` forces the CPU; otherwise accelerate places each process (one per GPU).
    A rerun with the same inputs resumes from the last checkpoint, or returns the saved result when finished.
    """
    if stage not in STAGES:
        raise TrainingError(f"unknown stage {stage!r}: use 'cpt' or 'sft'")
    if settings.seq_len < 2:
        raise TrainingError(f"seq_len is {settings.seq_len}: a sequence needs at least 2 tokens")
    train_file, val_file, out_dir = Path(train_file), Path(val_file), Path(out_dir)
    if init_adapter is not None and not (Path(init_adapter) / "adapter_config.json").is_file():
        raise TrainingError(f"{init_adapter} is not a PEFT adapter folder: pass the previous stage's best/")
    train_rows, val_rows = read_rows(train_file, "training"), read_rows(val_file, "validation")
    inputs = _fingerprint_inputs(stage, model_source, train_file, val_file, lora, settings, init_adapter)
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]
    finished = _finished_result(out_dir, digest)
    if finished is not None:
        return finished

    import torch
    from accelerate.utils import set_seed
    from torch.utils.data import DataLoader
    from transformers import get_cosine_schedule_with_warmup

    accelerator = _accelerator(settings, device)
    main = accelerator.is_main_process
    best_dir, log_file = out_dir / "best", out_dir / "log.jsonl"
    ckpt_file = out_dir / "checkpoint" / "state.pt"
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        _recover_dir(best_dir)
    set_seed(settings.seed)  # before the adapter exists: its initialisation follows the seed
    with accelerator.main_process_first():  # the first process converts a GGUF source; the others read it
        model, tokenizer = load_model(
            model_source, cache_dir=Path(cache_dir), device=str(accelerator.device), for_training=True
        )
    train_examples = load_examples(stage, train_rows, tokenizer, settings.seq_len)
    val_examples = load_examples(stage, val_rows, tokenizer, settings.seq_len)
    if not train_examples:
        raise TrainingError(f"no training examples in {train_file}: all its texts are empty")
    if not val_examples:
        raise TrainingError(f"no validation examples in {val_file}: all its texts are empty")
    mean_weight = sum(e["weight"] for e in train_examples) / len(train_examples)
    if mean_weight <= 0:
        raise TrainingError(f"every example in {train_file} has weight 0: nothing to learn")

    if settings.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()  # the frozen embedding's output must carry grad into the blocks
    model = _attach_adapter(model, lora, init_adapter)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)

    bs, to_batch = settings.batch_size, partial(collate, pad_id=tokenizer.pad_token_id)
    order = _EpochOrder(len(train_examples), settings.seed)
    # A private generator: the loader's per-iterator seed draw must not move the global RNG that dropout uses,
    # or a resumed run (which starts an iterator mid-epoch) would diverge from an uninterrupted one.
    train_dl = DataLoader(
        train_examples, batch_size=bs, sampler=order, collate_fn=to_batch, generator=torch.Generator()
    )
    if settings.val_batches is not None:  # a prefix, not a break out of the loop: accelerate tracks loaders
        val_examples = val_examples[: max(1, settings.val_batches) * bs * accelerator.num_processes]
    val_dl = DataLoader(val_examples, batch_size=bs, collate_fn=to_batch)
    model, optimizer, train_dl, val_dl = accelerator.prepare(model, optimizer, train_dl, val_dl)

    ga = accelerator.gradient_accumulation_steps
    steps_per_epoch = math.ceil(len(train_dl) / ga)  # accelerate also steps on an epoch's last, short window
    total_steps = max(1, math.ceil(settings.epochs * steps_per_epoch))
    if settings.max_steps is not None:
        total_steps = max(1, min(total_steps, settings.max_steps))
    n = accelerator.num_processes  # a prepared scheduler steps once per process for each optimizer step
    warmup = round(settings.warmup_ratio * total_steps)
    scheduler = accelerator.prepare(get_cosine_schedule_with_warmup(optimizer, warmup * n, total_steps * n))

    state, resumed_from = _LoopState(), None
    # A checkpoint from another number of processes has another data split and schedule: start afresh.
    payload = _read_checkpoint(ckpt_file, digest, n) if best_dir.is_dir() else None
    if payload is not None:
        _restore(payload, accelerator.unwrap_model(model), optimizer, scheduler)
        state = _LoopState(**payload["loop"])
        resumed_from = state.step
        if main:  # the log goes on from the checkpoint, as the history does
            _trim_log(log_file, state.step)
    elif main:  # a fresh start: whatever is there came from other inputs
        for stale in (ckpt_file, log_file, out_dir / "result.json"):
            stale.unlink(missing_ok=True)

    log_every = max(1, total_steps // MAX_PROGRESS_ROWS)
    started, train_s, run_tokens, run_steps = time.perf_counter(), 0.0, 0, 0

    def validate() -> float:
        model.eval()
        sums, counts = [], []
        with torch.no_grad():
            for batch in val_dl:
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                # per example, so gather_for_metrics can drop the duplicates that even out the last batch
                s, c = accelerator.gather_for_metrics(example_losses(logits, batch["labels"]))
                sums.append(s.sum())
                counts.append(c.sum())
        model.train()
        return (torch.stack(sums).sum() / torch.stack(counts).sum().clamp(min=1)).item()

    def record(loss: float | None, val_loss: float | None) -> None:
        """Judge a validation, save the best adapter and a checkpoint, then log and report the step."""
        tokens_per_s = run_tokens / train_s if train_s else None
        lr = scheduler.get_last_lr()[0]
        row = {"step": state.step, "loss": loss, "val_loss": val_loss, "lr": lr, "tokens_per_s": tokens_per_s}
        improved = val_loss is not None and _judge(state, val_loss, settings.patience, total_steps)
        state.history.append(row)
        if not main:
            return
        if improved:
            _save_best(accelerator.unwrap_model(model), best_dir)
        if val_loss is not None and state.step > 0:
            unwrapped = accelerator.unwrap_model(model)
            _save_checkpoint(ckpt_file, digest, n, state, unwrapped, optimizer, scheduler)
        eta = (time.perf_counter() - started) / run_steps * (total_steps - state.step) if run_steps else None
        progress = Progress(
            stage, state.step, total_steps, loss, val_loss, tokens_per_s, eta, extra={"lr": lr}
        )
        with open(log_file, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(progress.as_dict()) + "\n")
        if on_progress is not None:
            on_progress(progress)

    if state.last_val_step is None:  # fresh: the loss before any training is the baseline to beat
        record(None, validate())
    if payload is not None:
        _set_rng_state(payload["rng"])  # last: building and loading the model above drew from the RNG

    window = torch.zeros(3, device=accelerator.device)  # loss sum, target tokens, input tokens (this process)
    log_loss, log_count = 0.0, 0.0
    epoch, done_in_epoch = divmod(state.step, steps_per_epoch)
    while state.step < total_steps and not state.stopped_early:
        order.epoch = epoch
        # windows start at each epoch's first batch, so skipping whole windows lands on a step boundary
        loader = accelerator.skip_first_batches(train_dl, done_in_epoch * ga) if done_in_epoch else train_dl
        tick = time.perf_counter()
        for batch in loader:
            with accelerator.accumulate(model):
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                sums, counts = example_losses(logits, batch["labels"])
                accelerator.backward(weighted_loss(sums, counts, batch["weights"], mean_weight=mean_weight))
                if accelerator.sync_gradients and settings.max_grad_norm:
                    accelerator.clip_grad_norm_(params, settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            window += torch.stack([sums.detach().sum(), counts.sum(), batch["attention_mask"].sum()]).float()
            if not accelerator.sync_gradients:
                continue
            loss_sum, count, tokens = accelerator.reduce(window, reduction="sum").tolist()
            window.zero_()
            state.step, state.tokens, run_steps = state.step + 1, state.tokens + int(tokens), run_steps + 1
            run_tokens += int(tokens)
            log_loss, log_count = log_loss + loss_sum, log_count + count
            train_s += time.perf_counter() - tick
            val_due = state.step == total_steps or (
                settings.val_every > 0 and state.step % settings.val_every == 0
            )
            if val_due or state.step % log_every == 0:
                record(log_loss / max(log_count, 1.0), validate() if val_due else None)
                log_loss, log_count = 0.0, 0.0
            tick = time.perf_counter()
            if state.step >= total_steps or state.stopped_early:
                break
        loader.end()  # a loop left mid-epoch never runs the loader's own clean-up
        epoch, done_in_epoch = epoch + 1, 0

    result = StageResult(
        stage=stage,
        adapter_dir=best_dir,
        best_val_loss=state.best_val_loss,
        first_val_loss=state.first_val_loss,
        steps=state.step,
        tokens=state.tokens,
        tokens_per_s=run_tokens / train_s if train_s else 0.0,
        stopped_early=state.stopped_early,
        resumed_from=resumed_from,
        history=state.history,
    )
    if main:
        _write_json(out_dir / "result.json", {**result.as_dict(), "fingerprint": digest, "inputs": inputs})
        shutil.rmtree(ckpt_file.parent, ignore_errors=True)  # the result now marks the stage done
    accelerator.wait_for_everyone()
    accelerator.free_memory()
    return result


def _accelerator(settings: StageSettings, device: str | None) -> Any:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    # Both are process-wide singletons: a second stage in one process (CPT then SFT) with another precision
    # would be refused, and a stage that stopped mid-epoch leaves its loader registered. The process group
    # (PartialState) stays.
    AcceleratorState._reset_state()
    GradientState._reset_state()
    precision = settings.mixed_precision
    if precision == "auto":
        import torch

        on_cuda = device is None or device.startswith("cuda")
        bf16 = on_cuda and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        precision = "bf16" if bf16 else "no"
    return Accelerator(
        cpu=device == "cpu",
        gradient_accumulation_steps=max(1, settings.grad_accum),
        mixed_precision=precision,
    )


def _attach_adapter(model: Any, lora: LoraSettings, init_adapter: Path | None) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    if init_adapter is not None:
        model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
    else:
        config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.targets),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, config)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise TrainingError(f"no LoRA target among the model's modules: check targets {list(lora.targets)}")
    if any("lora_" not in name for name in trainable):  # the base must stay frozen: adapters only
        raise TrainingError(
            f"non-LoRA parameters are trainable: {[n for n in trainable if 'lora_' not in n][:3]}"
        )
    return model


def _judge(state: _LoopState, val_loss: float, patience: int, total_steps: int) -> bool:
    """Record a validation; True when it is the best so far. Sets `stopped_early` once patience runs out."""
    if state.first_val_loss is None:
        state.first_val_loss = val_loss
    state.last_val_step = state.step
    if state.best_val_loss is None or val_loss < state.best_val_loss:
        state.best_val_loss, state.bad_vals = val_loss, 0
        return True
    state.bad_vals += 1
    if patience > 0 and state.bad_vals >= patience and state.step < total_steps:
        state.stopped_early = True
    return False


# ---- files: fingerprint, best adapter, checkpoint, result -------------------------------------------------------


def _fingerprint_inputs(
    stage: str,
    model_source: str,
    train_file: Path,
    val_file: Path,
    lora: LoraSettings,
    settings: StageSettings,
    init_adapter: Path | None,
) -> dict[str, Any]:
    """Everything that decides the result: a checkpoint or result made from other inputs is not reused."""

    def file_id(path: Path) -> dict[str, Any]:
        return {"path": str(path), "size": path.stat().st_size, "sha256": _sha256([path])}

    adapter = None
    if init_adapter is not None:
        files = sorted(p for p in Path(init_adapter).iterdir() if p.is_file() and p.name != "README.md")
        adapter = {"path": str(init_adapter), "sha256": _sha256(files)}
    return {
        "stage": stage,
        "model_source": str(model_source),
        "settings": settings.as_dict(),
        "lora": lora.as_dict(),
        "train_file": file_id(train_file),
        "val_file": file_id(val_file),
        "init_adapter": adapter,
    }


def _sha256(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _finished_result(out_dir: Path, digest: str) -> StageResult | None:
    try:
        saved = json.loads((out_dir / "result.json").read_text(encoding="utf-8"))
        if saved["fingerprint"] != digest or not (out_dir / "best" / "adapter_config.json").is_file():
            return None
        # the folder as it is now: a run folder may have moved since
        return replace(StageResult.from_dict(saved), adapter_dir=out_dir / "best")
    except (OSError, ValueError, KeyError, TypeError):  # missing, torn or from another version: train again
        return None


def _trim_log(log_file: Path, step: int) -> None:
    """Drop the rows a killed run logged after its last checkpoint: the resumed run logs those steps again."""
    if log_file.is_file():
        rows = log_file.read_text(encoding="utf-8").splitlines()
        kept = [r for r in rows if r.strip() and json.loads(r)["step"] <= step]
        log_file.write_text("".join(r + "\n" for r in kept), encoding="utf-8")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _save_best(model: Any, best_dir: Path) -> None:
    """Write the adapter beside `best_dir`, then swap it in: a crash leaves the old or the new one whole."""
    tmp = Path(tempfile.mkdtemp(prefix=".best-", dir=best_dir.parent))
    try:
        model.save_pretrained(tmp)
        old = best_dir.with_name(best_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if best_dir.exists():
            os.replace(best_dir, old)  # a folder cannot be renamed over a non-empty one
        os.replace(tmp, best_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _recover_dir(best_dir: Path) -> None:
    """Undo a swap cut short between its two renames, and drop temp folders of a killed write."""
    old = best_dir.with_name(best_dir.name + ".old")
    if old.is_dir():
        if best_dir.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, best_dir)
    for tmp in best_dir.parent.glob(".best-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def _save_checkpoint(
    path: Path, digest: str, processes: int, state: _LoopState, model: Any, optimizer: Any, scheduler: Any
) -> None:
    """One file, written beside the old one and renamed over it: a kill -9 mid-write keeps the old one usable.

    Only the adapter's weights go in (the base never changes); `accelerator.save_state` would write the whole
    model each time. Sharded optimizers (FSDP, DeepSpeed ZeRO) would need save_state instead.
    """
    import torch

    payload = {
        "fingerprint": digest,
        "processes": processes,
        "loop": asdict(state),
        "adapter": {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": _rng_state(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _read_checkpoint(path: Path, digest: str, processes: int) -> dict[str, Any] | None:
    import torch

    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a torn or foreign file fails in many ways; starting afresh is always safe
        log.warning("ignoring unreadable checkpoint %s (%s): starting the stage afresh", path, error)
        return None
    if not isinstance(payload, dict) or payload.get("fingerprint") != digest:
        return None
    return payload if payload.get("processes") == processes else None


def _restore(payload: dict[str, Any], model: Any, optimizer: Any, scheduler: Any) -> None:
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in payload["adapter"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])


def _rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
