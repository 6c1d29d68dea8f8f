"""Training settings: plain dataclasses whose field comments are their documentation.

One `LoraSettings` and one `StageSettings` per stage travel from the pipeline config into `trainer.train`, and
are written into every run folder and adapter version, so a result always says how it was made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STAGES = ("cpt", "sft")  # the training stages, in the order they run
STAGE_CHOICES = (*STAGES, "both")  # what a user may ask for: one stage, or both (SFT then starts from CPT)

# All attention and MLP projections of Qwen3, Llama and SmolLM2 (the same names in all three).
ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class DataSettings:
    """How `trainer.pairs` builds a run's training data."""

    val_share: float = 0.15  # share of sessions, the newest, held out for validation
    k: int = 4  # excerpts per SFT input, at most
    # Excerpt characters per input (~400 tokens; with the rules, question and target it fits 512), the same as
    # recall reads (lmm_mcp.config recall_prompt_chars).
    max_prompt_chars: int = 1_200
    max_per_memory: int = 3  # pairs per memory (near-duplicate memories count as one)
    prompts_per_memory: int = 2  # of those, how many may come from later user prompts
    abstain_share: float = 0.15  # abstain pairs, as a share of the answer pairs
    near_dup: float = 0.7  # Jaccard of target words at which two memories are one for balancing
    max_train_pairs: int = 20_000
    max_val_pairs: int = 400
    min_sessions: int = (
        3  # fewer sessions than this is "too little data"; from this many, training goes ahead
    )
    self_study_per_session: int = 12  # question/answer items from a session's excerpts (trainer.selfstudy)
    self_study_per_chunk: int = 2
    # Items from the history's own questions and the replies to them (trainer.selfstudy.exchanges), per session.
    # Off: 6 a session moved no LoCoMo figure on the CPU (docs/benchmarks.md, session 26); kept for longer runs.
    exchanges_per_session: int = 0
    wordings: int = 3  # CPT documents per memory, each a different wording of it
    # Continual training (`--from`): sessions started after `since` are new; the training rows of older ones
    # are replayed at `replay_share` of the new rows' count, so a retrain costs what is new, not the history.
    since: str | None = None
    replay_share: float = 0.5
    # Also teach query expansion (a question in, the memory's own names out). Off: it was 40 % of the SFT pairs
    # and never helped search (docs/benchmarks.md); `lmm-mcp train` turns it on with `expand_queries`.
    expansions: bool = False
    # Self-study questions written by the base model itself (trainer.selfstudy.written_study), kept when
    # grounded in the excerpt: "auto" where a GPU is visible (the CPU is too slow for it), "on", "off".
    written_study: str = "auto"
    max_doc_chars: int = (
        200_000  # a session's CPT text beyond this is cut (a runaway session is not 10x the signal)
    )
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoraSettings:
    r: int = 16  # adapter rank
    alpha: int = 32  # scaling numerator: the update is scaled by alpha / r
    dropout: float = 0.05  # dropout on the adapter's input
    targets: tuple[str, ...] = ALL_PROJECTIONS  # module names that get an adapter

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "targets": list(self.targets)}


@dataclass
class StageSettings:
    """How one stage trains. The shape fields left at None, and `mixed_precision` "auto", are chosen for the
    device when the stage starts (`trainer.devices.fit_settings`): a laptop CPU and an 80 GB GPU want
    different shapes, and a value the user set is kept."""

    seq_len: int | None = None  # tokens per sequence: CPT packs to it, SFT truncates the prompt to fit it
    batch_size: int | None = None  # sequences (packed rows when `packing`) per micro-batch on each device
    grad_accum: int | None = None  # micro-batches per optimizer step
    packing: bool = True  # several examples share a sequence, each with its own positions and attention
    lr: float = 2e-4  # peak learning rate (linear warm-up, cosine decay)
    warmup_ratio: float = 0.05  # share of the steps spent warming up
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    epochs: float = 1.0  # passes over the training data; max_steps caps it
    max_steps: int | None = None  # optimizer steps, at most; None: as many as the epochs need
    # Wall-clock seconds the stage may take (validations included): its first steps' speed plans how many
    # steps fit, the schedule decays over those, and it stops at the budget whatever the plan said. None: no
    # limit. Not part of a checkpoint's fingerprint: a resumed stage keeps the steps it planned.
    max_seconds: float | None = None
    val_every: int = 50  # optimizer steps between validation passes (and checkpoints)
    val_batches: int | None = None  # validation micro-batches per pass; 0: the whole set; None: per device
    patience: int = 3  # validation passes without improvement before stopping early; 0 never stops
    gradient_checkpointing: bool | None = None  # recompute activations in backward: less memory, slower
    mixed_precision: str = "auto"  # "auto": bf16 on a GPU that has it, else fp32 ("no"); or "bf16", "fp16"
    seed: int = 0  # data order, adapter init and dropout all follow it
    # SFT's objective. "sft": cross-entropy on the cited target, with the gold among the excerpts. "distill":
    # context distillation: the student (base + adapter) reads only what retrieval found and matches, by KL on
    # the answer's tokens, the teacher (the base model alone) reading the gold source; abstain pairs keep
    # cross-entropy. CPT ignores it.
    objective: str = "sft"
    distill_ce: float = 0.0  # with "distill": weight of the student's own cross-entropy on the answer, added
    distill_temperature: float = 1.0  # softens both distributions before the KL

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


OBJECTIVES = ("sft", "distill")


def default_stages() -> dict[str, StageSettings]:
    """CPT reads the history once at a gentle rate; SFT goes over the pairs a few times."""
    return {
        "cpt": StageSettings(lr=1e-4, epochs=1.0),
        "sft": StageSettings(lr=2e-4, epochs=3.0),
    }


@dataclass
class Progress:
    """One report from a training loop, for logs, the CLI and the `retrain` tool's progress notifications."""

    stage: str  # "cpt" | "sft" | "eval"
    step: int  # optimizer steps done in this stage
    total_steps: int
    loss: float | None = None  # mean training loss over the last logging window
    val_loss: float | None = None  # set on validation steps
    tokens_per_s: float | None = None
    eta_s: float | None = None  # seconds left in this stage
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One human-readable log line: "sft step 12/40  loss 0.4123  val 0.3990  2,310 tok/s  eta 95s"."""
        parts = [f"{self.stage} step {self.step}/{self.total_steps}"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.val_loss is not None:
            parts.append(f"val {self.val_loss:.4f}")
        if self.tokens_per_s:
            parts.append(f"{self.tokens_per_s:,.0f} tok/s")
        if self.eta_s is not None:
            parts.append(f"eta {self.eta_s:,.0f}s")
        return "  ".join(parts)
