"""LoRA training of one stage, CPT or SFT, in our own accelerate loop (not the Hugging Face Trainer).

    cpt = train_stage("cpt", model_source="Qwen/Qwen3-1.7B", cache_dir=home / "models" / "base",
                      train_file=run / "cpt_train.jsonl", val_file=run / "cpt_val.jsonl", out_dir=run / "cpt",
                      lora=LoraSettings(), settings=default_stages()["cpt"])
    sft = train_stage("sft", ..., out_dir=run / "sft", init_adapter=cpt.adapter_dir)  # continues the CPT adapter

CPT rows (`{"id", "text", "kind"}`) are tokenized, each followed by eos, concatenated and cut into blocks of
`seq_len` tokens; every token is learned. SFT rows (`{"id", "messages", "target", "weight"}`) learn only the
target reply and its eos after the chat-formatted prompt, and each example's loss is scaled by its weight.
With `packing` (the default) a block's documents, and several SFT pairs packed into one sequence, attend
only to themselves. Validation loss is the plain mean token loss in both stages, so runs compare.

The same call runs on a CPU, one GPU, or data-parallel under `accelerate launch --num_processes N` (one process
per GPU; only the main process writes files and reports progress). It leaves in `out_dir` the best adapter
(`best/`), the resume point while it runs (`checkpoint/state.pt`), the progress log (`log.jsonl`) and its
result (`result.json`); a rerun after a crash continues from the checkpoint, and a rerun of a finished stage
returns its result without loading the model. With a time budget (`settings.max_seconds`) the stage plans
from its first steps' speed how many steps fit, decays its learning rate over those, and stops in time.

Where the parts live: `trainer.batches` turns JSONL rows into examples and batches (packing, chat encoding,
the sampler); `trainer.loss` computes the losses from hidden states, a chunk of tokens at a time;
`trainer.devices` chooses the shape the user left unset; `trainer.checkpoint` writes and reads the stage
folder's files (listed in its docstring); this module holds the loop: `train_stage` checks its inputs and
loads the model, `_setup` builds the optimizer, loaders and schedule and resumes, `_train` runs the epochs,
`_validate` and `_record` run at each validation or logged step, `_finish` saves the result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.batches import EpochOrder, TrainingError, collate, load_examples, read_rows
from trainer.checkpoint import (
    BEST,
    LoopState,
    append_log,
    fingerprint,
    fingerprint_inputs,
    finished_result,
    recover,
    resume,
    save_best,
    save_checkpoint,
    set_rng_state,
    write_result,
)
from trainer.devices import MemoryPeak, fit_settings
from trainer.loss import group_losses, kl_sums, last_hidden, output_head, weighted_loss
from trainer.models import load_model, quiet_peft
from trainer.settings import OBJECTIVES, STAGES, LoraSettings, Progress, StageSettings

if TYPE_CHECKING:
    import torch

MAX_PROGRESS_ROWS = 200  # progress on every step up to this many steps, then on every total/200-th
PLAN_AFTER = 3  # optimizer steps a time-budgeted stage runs before it plans how many fit (the first is slow)


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
    settings: dict[str, Any] = field(default_factory=dict)  # as run: with the shape chosen for the device
    step_s: float | None = None  # mean seconds per optimizer step of this process's run
    padding_share: float | None = None  # share of the training positions that were padding
    peak_memory: dict[str, Any] = field(default_factory=dict)  # {"rss_gib", "gpu_gib"} of this process's run
    planned_steps: int | None = None  # the steps its time budget (settings max_seconds) left room for

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "adapter_dir": str(self.adapter_dir)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageResult:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}  # older results lack the last
        return cls(**{**values, "adapter_dir": Path(values["adapter_dir"])})


@dataclass
class _Run:
    """A stage's run as `_setup` built it, with the counters its loop moves on."""

    stage: str
    settings: StageSettings
    out_dir: Path
    digest: str  # the fingerprint of the stage's inputs, stored in each checkpoint
    accelerator: Any
    model: Any  # as accelerate prepared it (wrapped for data-parallel); unwrap it to save the adapter
    head: Any  # the model's output projection, which the loss applies in chunks (trainer.loss)
    optimizer: Any
    scheduler: Any
    schedule: CosineSchedule  # the scheduler's learning-rate factor, which a time budget may shorten
    train_dl: Any
    val_dl: Any
    order: EpochOrder  # the training loader's sampler: the loop sets its epoch
    params: list[Any]  # the trainable (LoRA) parameters, whose gradients are clipped
    mean_weight: float  # the training set's mean example weight (see weighted_loss)
    steps_per_epoch: int
    total_steps: int
    state: LoopState
    resumed_from: int | None  # the step a checkpoint resumed from, else None
    rng: dict[str, Any] | None  # the checkpoint's RNG state, set just before the loop
    on_progress: Callable[[Progress], None] | None
    started: float = 0.0  # perf_counter when the run was set up: the ETA's clock
    train_s: float = 0.0  # seconds in training steps, validation excluded (this process, since the resume)
    run_tokens: int = 0  # training tokens since the resume (this process's run)
    run_positions: int = 0  # training positions since the resume, padding included
    run_steps: int = 0  # optimizer steps since the resume
    val_s: float = 0.0  # seconds in validation passes (this process, since the resume)
    vals: int = 0  # validation passes (this process, since the resume)

    @property
    def log_every(self) -> int:
        return max(1, self.total_steps // MAX_PROGRESS_ROWS)


# ---- loss -------------------------------------------------------------------------------------------------------


def batch_losses(run: _Run, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example of a training batch: its loss sum (cross-entropy, or the distillation objective where the
    row has a teacher) and its count of labelled tokens."""
    hidden = last_hidden(run.model, batch)
    sums, counts = group_losses(
        hidden, batch["labels"], batch["example_ids"], len(batch["weights"]), run.head
    )
    if "has_teacher" in batch:
        sums = _distill(run, batch, hidden, sums)
    return sums, counts


def _distill(
    run: _Run, batch: dict[str, torch.Tensor], hidden: torch.Tensor, sums: torch.Tensor
) -> torch.Tensor:
    """Per-example loss sums of the distillation objective: KL to the base model reading the gold (plus
    `distill_ce` x the student's own cross-entropy) where a row has a teacher; cross-entropy elsewhere.
    Distillation batches are unpacked, so an example is a row."""
    import torch

    with torch.no_grad(), run.accelerator.unwrap_model(run.model).disable_adapter():
        teacher = last_hidden(run.model, batch, prefix="teacher_")
    kl = kl_sums(
        hidden,
        batch["labels"],
        teacher,
        batch["teacher_labels"],
        batch["has_teacher"],
        run.head,
        run.settings.distill_temperature,
    )
    has = batch["has_teacher"].to(sums)
    return has * (kl + run.settings.distill_ce * sums) + (1 - has) * sums


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
    Settings left unset are chosen for the device first (`trainer.devices.fit_settings`); the result records
    them, with the stage's peak memory.
    """
    if stage not in STAGES:
        raise TrainingError(f"unknown stage {stage!r}: use 'cpt' or 'sft'")
    if settings.objective not in OBJECTIVES:
        raise TrainingError(f"objective {settings.objective!r}: choose one of {', '.join(OBJECTIVES)}")
    train_file, val_file, out_dir = Path(train_file), Path(val_file), Path(out_dir)
    if init_adapter is not None and not (Path(init_adapter) / "adapter_config.json").is_file():
        raise TrainingError(f"{init_adapter} is not a PEFT adapter folder: pass the previous stage's best/")
    settings = fit_settings(settings, device)
    if settings.seq_len < 2:
        raise TrainingError(f"seq_len is {settings.seq_len}: a sequence needs at least 2 tokens")
    train_rows, val_rows = read_rows(train_file, "training"), read_rows(val_file, "validation")
    inputs = fingerprint_inputs(stage, model_source, train_file, val_file, lora, settings, init_adapter)
    digest = fingerprint(inputs)
    finished = finished_result(out_dir, digest, StageResult.from_dict)
    if finished is not None:
        return finished

    from accelerate.utils import set_seed

    peak = MemoryPeak()  # from here: converting a GGUF file and loading the model count too

    accelerator = _accelerator(settings, device)
    if accelerator.is_main_process:
        recover(out_dir)
    set_seed(settings.seed)  # before the adapter exists: its initialisation follows the seed
    with accelerator.main_process_first():  # the first process converts a GGUF source; the others read it
        model, tokenizer = load_model(
            model_source, cache_dir=cache_dir, device=str(accelerator.device), for_training=True
        )
    objective = settings.objective if stage == "sft" else "sft"
    load = partial(load_examples, stage, tokenizer=tokenizer, seq_len=settings.seq_len, objective=objective)
    train_examples = load(train_rows, packing=settings.packing)
    # validation stays cross-entropy: for distillation, the answer's given only what retrieval found
    val_examples = load(val_rows, packing=settings.packing, validation=True)
    if not train_examples:
        raise TrainingError(f"no training examples in {train_file}: all its texts are empty")
    if not val_examples:
        raise TrainingError(f"no validation examples in {val_file}: all its texts are empty")
    weights = [w for e in train_examples for w in e.get("weights", [e.get("weight")])]
    if sum(weights) <= 0:
        raise TrainingError(f"every example in {train_file} has weight 0: nothing to learn")

    if settings.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()  # the frozen embedding's output must carry grad into the blocks
    run = _setup(
        stage,
        accelerator,
        _attach_adapter(model, lora, init_adapter),
        partial(collate, pad_id=tokenizer.pad_token_id),
        train_examples,
        val_examples,
        settings=settings,
        out_dir=out_dir,
        digest=digest,
        on_progress=on_progress,
        mean_weight=sum(weights) / len(weights),
    )
    if run.state.last_val_step is None:  # fresh: the loss before any training is the baseline to beat
        _record(run, None, _validate(run))
    if run.rng is not None:
        set_rng_state(run.rng)  # last: building and loading the model above drew from the RNG
    _train(run)
    return _finish(run, inputs, peak)


def _setup(
    stage: str,
    accelerator: Any,
    model: Any,
    to_batch: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    train_examples: list[dict[str, Any]],
    val_examples: list[dict[str, Any]],
    *,
    settings: StageSettings,
    out_dir: Path,
    digest: str,
    on_progress: Callable[[Progress], None] | None,
    mean_weight: float,
) -> _Run:
    """The optimizer, loaders and schedule for the adapter `model`, all prepared by accelerate.

    The loop state starts afresh, or where the checkpoint left off when one from the same inputs is there.
    """
    import torch
    from torch.utils.data import DataLoader

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    bs, order = settings.batch_size, EpochOrder(len(train_examples), settings.seed)
    # A private generator: the loader's per-iterator seed draw must not move the global RNG that dropout uses,
    # or a resumed run (which starts an iterator mid-epoch) would diverge from an uninterrupted one.
    train_dl = DataLoader(
        train_examples, batch_size=bs, sampler=order, collate_fn=to_batch, generator=torch.Generator()
    )
    if settings.val_batches:  # a prefix, not a break out of the loop: accelerate tracks loaders
        val_examples = val_examples[: max(1, settings.val_batches) * bs * accelerator.num_processes]
    val_dl = DataLoader(val_examples, batch_size=bs, collate_fn=to_batch)
    model, optimizer, train_dl, val_dl = accelerator.prepare(model, optimizer, train_dl, val_dl)

    ga = accelerator.gradient_accumulation_steps
    steps_per_epoch = math.ceil(len(train_dl) / ga)  # accelerate also steps on an epoch's last, short window
    total_steps = max(1, math.ceil(settings.epochs * steps_per_epoch))
    if settings.max_steps is not None:
        total_steps = max(1, min(total_steps, settings.max_steps))
    n = accelerator.num_processes  # a prepared scheduler steps once per process for each optimizer step
    schedule = CosineSchedule(round(settings.warmup_ratio * total_steps) * n, total_steps * n)
    scheduler = accelerator.prepare(torch.optim.lr_scheduler.LambdaLR(optimizer, schedule))

    unwrapped, main = accelerator.unwrap_model(model), accelerator.is_main_process
    state, rng = resume(out_dir, digest, n, unwrapped, optimizer, scheduler, main=main)
    if state.planned_steps is not None:  # a time budget planned the steps before the resume
        total_steps = min(total_steps, state.planned_steps)
    return _Run(
        stage=stage,
        settings=settings,
        out_dir=out_dir,
        digest=digest,
        accelerator=accelerator,
        model=model,
        head=output_head(unwrapped),
        optimizer=optimizer,
        scheduler=scheduler,
        schedule=schedule,
        train_dl=train_dl,
        val_dl=val_dl,
        order=order,
        params=params,
        mean_weight=mean_weight,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        state=state,
        resumed_from=state.step if rng is not None else None,
        rng=rng,
        on_progress=on_progress,
        started=time.perf_counter(),
    )


def _train(run: _Run) -> None:
    """The epoch loop: optimizer steps until `total_steps` or an early stop, validating and logging on the way."""
    import torch

    accelerator, model, settings, state = run.accelerator, run.model, run.settings, run.state
    optimizer, scheduler, train_dl = run.optimizer, run.scheduler, run.train_dl
    ga = accelerator.gradient_accumulation_steps
    # loss sum, target tokens, input tokens, positions (padding included), this process
    window = torch.zeros(4, device=accelerator.device)
    log_loss, log_count = 0.0, 0.0
    epoch, done_in_epoch = divmod(state.step, run.steps_per_epoch)
    while state.step < run.total_steps and not state.stopped_early:
        run.order.epoch = epoch
        # windows start at each epoch's first batch, so skipping whole windows lands on a step boundary
        loader = accelerator.skip_first_batches(train_dl, done_in_epoch * ga) if done_in_epoch else train_dl
        tick = time.perf_counter()
        for batch in loader:
            with accelerator.accumulate(model):
                sums, counts = batch_losses(run, batch)
                loss = weighted_loss(sums, counts, batch["weights"], mean_weight=run.mean_weight)
                accelerator.backward(loss)
                if accelerator.sync_gradients and settings.max_grad_norm:
                    accelerator.clip_grad_norm_(run.params, settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            real = (batch["example_ids"] >= 0).sum()
            window[:3] += torch.stack([sums.detach().sum(), counts.sum(), real]).float()
            window[3] += batch["example_ids"].numel()
            if not accelerator.sync_gradients:
                continue
            loss_sum, count, tokens, positions = accelerator.reduce(window, reduction="sum").tolist()
            window.zero_()
            state.step, state.tokens = state.step + 1, state.tokens + int(tokens)
            run.run_steps, run.run_tokens = run.run_steps + 1, run.run_tokens + int(tokens)
            run.run_positions += int(positions)
            log_loss, log_count = log_loss + loss_sum, log_count + count
            run.train_s += time.perf_counter() - tick
            if settings.max_seconds is not None:
                _keep_to_time(run, settings.max_seconds)
            val_due = state.step == run.total_steps or (
                settings.val_every > 0 and state.step % settings.val_every == 0
            )
            if val_due or state.step % run.log_every == 0:
                _record(run, log_loss / max(log_count, 1.0), _validate(run) if val_due else None)
                log_loss, log_count = 0.0, 0.0
            tick = time.perf_counter()
            if state.step >= run.total_steps or state.stopped_early:
                break
        loader.end()  # a loop left mid-epoch never runs the loader's own clean-up
        epoch, done_in_epoch = epoch + 1, 0


def _validate(run: _Run) -> float:
    """The mean token loss over the validation set, gathered from every process."""
    import torch

    model, started = run.model, time.perf_counter()
    model.eval()
    sums, counts = [], []
    with torch.no_grad():
        for batch in run.val_dl:
            hidden = last_hidden(model, batch)
            # per row, so gather_for_metrics can drop the duplicate rows that even out the last batch
            rows = torch.arange(len(hidden), device=hidden.device)[:, None].expand_as(batch["labels"])
            losses = group_losses(hidden, batch["labels"], rows, len(hidden), run.head)
            s, c = run.accelerator.gather_for_metrics(losses)
            sums.append(s.sum())
            counts.append(c.sum())
    model.train()
    loss = (torch.stack(sums).sum() / torch.stack(counts).sum().clamp(min=1)).item()
    run.val_s, run.vals = run.val_s + time.perf_counter() - started, run.vals + 1
    return loss


def _keep_to_time(run: _Run, budget_s: float) -> None:
    """A stage with a time budget: once `PLAN_AFTER` steps show its speed, plan how many steps fit (one last
    validation kept in reserve) and shorten the schedule to decay over them; past the budget, whatever the
    plan said, the step just done is the last. Both lower `run.total_steps`; under several processes the
    smallest wins, so that all stop at the same step."""
    state = run.state
    spent = time.perf_counter() - run.started
    # whether to plan now: the same on every process (their steps move together), unlike the clocks
    plan = state.planned_steps is None and run.run_steps >= min(PLAN_AFTER, run.total_steps)
    total = run.total_steps
    if spent >= budget_s:
        total = state.step
    elif plan:
        step_s = (spent - run.val_s) / run.run_steps  # wall time, so logging and checkpoints count too
        val_s = run.val_s / run.vals if run.vals else 0.0
        every = run.settings.val_every
        more = (budget_s - spent - val_s) / (step_s + (val_s / every if every > 0 else 0.0))
        total = max(state.step, min(total, state.step + math.floor(max(more, 0.0))))
    n = run.accelerator.num_processes
    if n > 1:
        import torch

        mine = torch.tensor([-total], device=run.accelerator.device)  # accelerate reduces by max, not min
        total = -int(run.accelerator.reduce(mine, reduction="max").item())
    if total == run.total_steps and not plan:
        return
    run.total_steps = state.planned_steps = total
    run.schedule.warmup = min(run.schedule.warmup, round(run.settings.warmup_ratio * total) * n)
    run.schedule.total = total * n


class CosineSchedule:
    """The learning-rate factor: linear warm-up over `warmup` scheduler steps, then a cosine decay to 0 at
    `total` (transformers' `get_cosine_schedule_with_warmup`). An object rather than a closure, so that a
    time budget can shorten it mid-run and a checkpoint keeps it (LambdaLR saves a callable object's state)."""

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup, self.total = warmup, total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return step / max(1, self.warmup)
        progress = (step - self.warmup) / max(1, self.total - self.warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def _record(run: _Run, loss: float | None, val_loss: float | None) -> None:
    """Judge a validation, save the best adapter and a checkpoint, then log and report the step."""
    state, accelerator = run.state, run.accelerator
    tokens_per_s = run.run_tokens / run.train_s if run.train_s else None
    lr = run.scheduler.get_last_lr()[0]
    row = {"step": state.step, "loss": loss, "val_loss": val_loss, "lr": lr, "tokens_per_s": tokens_per_s}
    improved = val_loss is not None and _judge(state, val_loss, run.settings.patience, run.total_steps)
    state.history.append(row)
    if not accelerator.is_main_process:
        return
    if improved:
        save_best(accelerator.unwrap_model(run.model), run.out_dir)
    if val_loss is not None and state.step > 0:
        unwrapped, n = accelerator.unwrap_model(run.model), accelerator.num_processes
        save_checkpoint(run.out_dir, run.digest, n, state, unwrapped, run.optimizer, run.scheduler)
    left = run.total_steps - state.step
    eta = (time.perf_counter() - run.started) / run.run_steps * left if run.run_steps else None
    progress = Progress(
        run.stage, state.step, run.total_steps, loss, val_loss, tokens_per_s, eta, extra={"lr": lr}
    )
    append_log(run.out_dir, progress.as_dict())
    if run.on_progress is not None:
        run.on_progress(progress)


def _finish(run: _Run, inputs: dict[str, Any], peak: MemoryPeak) -> StageResult:
    """The stage's result; the main process saves it (with the inputs it came from) and drops the checkpoint."""
    state, accelerator = run.state, run.accelerator
    result = StageResult(
        stage=run.stage,
        adapter_dir=run.out_dir / BEST,
        best_val_loss=state.best_val_loss,
        first_val_loss=state.first_val_loss,
        steps=state.step,
        tokens=state.tokens,
        tokens_per_s=run.run_tokens / run.train_s if run.train_s else 0.0,
        stopped_early=state.stopped_early,
        resumed_from=run.resumed_from,
        history=state.history,
        settings=run.settings.as_dict(),
        step_s=run.train_s / run.run_steps if run.run_steps else None,
        padding_share=1 - run.run_tokens / run.run_positions if run.run_positions else None,
        peak_memory=peak.read(),
        planned_steps=state.planned_steps,
    )
    if accelerator.is_main_process:
        write_result(run.out_dir, {**result.as_dict(), "fingerprint": run.digest, "inputs": inputs})
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
    return Accelerator(
        cpu=device == "cpu",
        gradient_accumulation_steps=max(1, settings.grad_accum),
        mixed_precision=settings.mixed_precision,  # fit_settings has resolved "auto"
    )


def _attach_adapter(model: Any, lora: LoraSettings, init_adapter: Path | None) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    with quiet_peft():
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


def _judge(state: LoopState, val_loss: float, patience: int, total_steps: int) -> bool:
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
