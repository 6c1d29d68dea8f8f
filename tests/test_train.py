"""Tests for trainer.train: data encoding, the weighted loss, and real LoRA runs of a tiny random Qwen3.

The tiny model (trainer.tiny) trains a step in milliseconds on a CPU, so every run here is a real run through
accelerate, PEFT and the checkpoint files; only `load_model` is wrapped where a test needs to see the model.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import trainer.train as train_module
from trainer.batches import IGNORE_INDEX, collate, encode_sft, pack_cpt
from trainer.loss import group_losses, last_hidden, output_head, weighted_loss
from trainer.models import chat_prompt, load_model, quiet_peft
from trainer.settings import LoraSettings, Progress, StageSettings
from trainer.tiny import build_tiny_qwen3
from trainer.train import StageResult, TrainingError, train_stage

LORA = LoraSettings(r=4, alpha=8, dropout=0.1)
SYSTEM = {"role": "system", "content": "You recall the user's coding habits from past sessions."}
FACTS = [
    ("Which test runner does this project use?", "The project runs its tests with pytest -q tests/."),
    ("How is the code linted?", "The user lints with ruff check . before opening a pull request."),
    ("Which database does the store use?", "SQLite with FTS5, because one file is easy to back up."),
    ("What does the user prefer in functions?", "Small functions with type hints and a docstring."),
]
CPT_TEXTS = [
    "The user prefers small functions with type hints and a docstring at the top of each module.",
    "Always run the tests before committing; never push directly to the main branch.",
    "We decided to use SQLite with FTS5 for the store, because one file is easy to back up and search.",
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def sft_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"pair-{i}",
            "messages": [SYSTEM, {"role": "user", "content": FACTS[i % len(FACTS)][0]}],
            "target": FACTS[i % len(FACTS)][1],
            "weight": 1.0,
            "kind": "memory",
        }
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    return {
        "model": build_tiny_qwen3(root / "tiny"),
        "cache": root / "cache",
        "cpt_train": write_jsonl(
            root / "cpt_train.jsonl",
            [{"id": f"c{i}", "text": CPT_TEXTS[i % 3], "kind": "session"} for i in range(24)],
        ),
        "cpt_val": write_jsonl(root / "cpt_val.jsonl", [{"id": "v", "text": CPT_TEXTS[0], "kind": "memory"}]),
        "sft_train": write_jsonl(root / "sft_train.jsonl", sft_rows(16)),
        "sft_val": write_jsonl(root / "sft_val.jsonl", sft_rows(4)),
    }


@pytest.fixture(scope="module")
def tokenizer(data: dict[str, Path]):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(data["model"])


def run(data: dict[str, Path], stage: str, out_dir: Path, settings: StageSettings, **kw: Any) -> StageResult:
    return train_stage(
        stage,
        model_source=str(data["model"]),
        cache_dir=data["cache"],
        train_file=data[f"{stage}_train"],
        val_file=data[f"{stage}_val"],
        out_dir=out_dir,
        lora=LORA,
        settings=settings,
        device="cpu",
        **kw,
    )


def adapter_tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "adapter_model.safetensors")


def identity_head(vocab: int) -> torch.nn.Linear:
    """An output projection that passes hidden states through: the loss functions then read logits."""
    head = torch.nn.Linear(vocab, vocab, bias=False)
    head.weight.data = torch.eye(vocab)
    head.weight.requires_grad_(False)
    return head


def row_losses(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of `logits` (batch x seq x vocab): the summed token loss and the labelled tokens."""
    rows = torch.arange(len(labels))[:, None].expand_as(labels)
    return group_losses(logits, labels, rows, len(labels), identity_head(logits.shape[-1]))


def test_importing_train_does_not_import_torch() -> None:
    code = "import sys, trainer.train; sys.exit(any(m in sys.modules for m in ('torch', 'transformers', 'peft')))"
    assert (
        subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], check=False).returncode
        == 0
    )


# ---- encoding and loss ------------------------------------------------------------------------------------------


def test_sft_labels_mask_exactly_the_prompt(tokenizer) -> None:
    row = sft_rows(1)[0]
    prompt = tokenizer(chat_prompt(tokenizer, row["messages"]), add_special_tokens=False)["input_ids"]
    answer = tokenizer(row["target"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]

    ex = encode_sft(row, tokenizer, seq_len=256)
    assert ex["input_ids"] == prompt + answer
    assert ex["labels"] == [IGNORE_INDEX] * len(prompt) + answer
    assert tokenizer.decode(ex["input_ids"][len(prompt) :]) == row["target"] + "<|im_end|>"

    short = encode_sft({**row, "target": "Yes.", "weight": 0.5}, tokenizer, seq_len=256)
    batch = collate([ex, short], pad_id=tokenizer.pad_token_id)
    n = len(short["input_ids"])
    assert batch["input_ids"].shape == (2, len(ex["input_ids"]))
    assert batch["labels"][1, :n].tolist() == short["labels"]
    assert (batch["labels"][1, n:] == IGNORE_INDEX).all()
    assert (batch["input_ids"][1, n:] == tokenizer.pad_token_id).all()
    assert batch["attention_mask"][1].tolist() == [1] * n + [0] * (len(ex["input_ids"]) - n)
    assert batch["weights"].tolist() == [1.0, 0.5]


def test_sft_truncation_keeps_the_target_and_the_system_text(tokenizer) -> None:
    row = sft_rows(1)[0]
    row["messages"][1]["content"] = "Tell me everything about the build. " * 40
    head = tokenizer(chat_prompt(tokenizer, [SYSTEM], add_generation_prompt=False), add_special_tokens=False)
    answer = tokenizer(row["target"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]

    full = encode_sft(row, tokenizer, seq_len=4096)["input_ids"]
    ex = encode_sft(row, tokenizer, seq_len=160)
    assert len(ex["input_ids"]) == 160
    assert ex["input_ids"][-len(answer) :] == answer  # the target is whole
    assert ex["labels"] == [IGNORE_INDEX] * (160 - len(answer)) + answer
    n = len(head["input_ids"])
    assert ex["input_ids"][:n] == head["input_ids"]  # the system text survives the cut
    assert ex["input_ids"][n:] == full[len(full) - 160 + n :]  # the rest is the prompt's end

    cramped = encode_sft(row, tokenizer, seq_len=64)  # the system text would take over half the room
    assert cramped["input_ids"] == full[-64:]

    long_target = encode_sft({**row, "target": "pytest " * 100}, tokenizer, seq_len=16)
    assert len(long_target["input_ids"]) == 16
    assert long_target["labels"][0] == IGNORE_INDEX and IGNORE_INDEX not in long_target["labels"][1:]


def test_cpt_packs_documents_with_eos_into_blocks(tokenizer) -> None:
    blocks = pack_cpt(CPT_TEXTS, tokenizer, seq_len=16)
    ids = [t for b in blocks for t in b["input_ids"].tolist()]
    expected = []
    for text in CPT_TEXTS:
        expected += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert ids == expected
    assert all(len(b["input_ids"]) == 16 for b in blocks[:-1]) and len(blocks[-1]["input_ids"]) <= 16
    assert all(b["labels"] is b["input_ids"] for b in blocks)
    # a validation file shorter than one block still gives one (padded by collate)
    assert len(pack_cpt(["Short."], tokenizer, seq_len=1024)) == 1


def test_weight_zero_example_contributes_nothing() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11, requires_grad=True)
    labels = torch.randint(0, 11, (2, 6))
    labels[:, :2] = IGNORE_INDEX  # a prompt
    weights = torch.tensor([1.0, 0.0])

    sums, counts = row_losses(logits, labels)
    loss = weighted_loss(sums, counts, weights, mean_weight=0.5)
    loss.backward()
    assert logits.grad is not None
    assert (logits.grad[1] == 0).all() and logits.grad[0].abs().sum() > 0

    own = torch.nn.functional.cross_entropy(logits[0, :-1].detach(), labels[0, 1:], ignore_index=IGNORE_INDEX)
    assert counts.tolist() == [4, 4]
    assert loss.item() == pytest.approx(own.item() * 1.0 / (2 * 0.5), rel=1e-5)

    other = logits.detach().clone()
    other[1] = torch.randn(6, 11) * 10
    again = weighted_loss(*row_losses(other, labels), weights, mean_weight=0.5)
    assert again.item() == pytest.approx(loss.item(), rel=1e-6)


# ---- training runs ----------------------------------------------------------------------------------------------

SFT_SETTINGS = StageSettings(
    seq_len=128,
    batch_size=4,
    grad_accum=2,
    lr=1e-2,
    warmup_ratio=0.1,
    epochs=20,
    max_steps=24,
    val_every=6,
    patience=0,
)
RESUME_SETTINGS = StageSettings(
    seq_len=128, batch_size=4, grad_accum=2, lr=3e-3, epochs=5, max_steps=10, val_every=3, patience=0, seed=7
)  # 2 steps an epoch: the resume lands mid-epoch


def test_cpt_then_sft_trains_only_the_adapter(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[Any] = []

    def keep_model(*args: Any, **kwargs: Any):
        model, tok = load_model(*args, **kwargs)
        loaded.append(model)
        return model, tok

    monkeypatch.setattr(train_module, "load_model", keep_model)
    base = {
        k: v.clone()
        for k, v in load_model(str(data["model"]), cache_dir=data["cache"], device="cpu", dtype="float32")[0]
        .state_dict()
        .items()
    }
    reports: list[Progress] = []
    cpt_settings = StageSettings(
        seq_len=32, batch_size=4, grad_accum=1, lr=3e-3, max_steps=6, val_every=3, gradient_checkpointing=True
    )
    cpt = run(data, "cpt", tmp_path / "cpt", cpt_settings, on_progress=reports.append)
    sft = run(data, "sft", tmp_path / "sft", SFT_SETTINGS, init_adapter=cpt.adapter_dir)

    assert [r.step for r in reports] == list(range(7)) and reports[-1].total_steps == 6
    assert reports[0].val_loss == cpt.first_val_loss and reports[3].val_loss is not None
    assert cpt.steps == 6 and cpt.tokens > 0 and cpt.tokens_per_s > 0
    assert sft.steps == 24 and sft.history[-1]["step"] == 24
    assert sft.history[-1]["val_loss"] < sft.first_val_loss - 0.3  # the repeated pairs are learned
    assert sft.best_val_loss == min(r["val_loss"] for r in sft.history if r["val_loss"] is not None)

    cpt_lora, sft_lora = adapter_tensors(cpt.adapter_dir), adapter_tensors(sft.adapter_dir)
    assert cpt_lora and all("lora_" in k for k in cpt_lora)
    assert all(v.abs().sum() > 0 for k, v in cpt_lora.items() if "lora_B" in k)  # B starts at zero
    assert cpt_lora.keys() == sft_lora.keys()
    assert all(not torch.equal(cpt_lora[k], sft_lora[k]) for k in cpt_lora if "lora_B" in k)

    for model in loaded:  # the base weights the runs trained on, LoRA layers wrapped around them
        for name, value in model.state_dict().items():
            if "lora_" not in name:
                assert torch.equal(value, base[name.replace(".base_layer", "")]), name

    for stage_dir in (tmp_path / "cpt", tmp_path / "sft"):
        saved = json.loads((stage_dir / "result.json").read_text())
        assert saved["fingerprint"] and saved["inputs"]["settings"]["seq_len"] in (32, 128)
        assert len((stage_dir / "log.jsonl").read_text().splitlines()) == len(saved["history"])
        assert not (stage_dir / "checkpoint").exists()

    from peft import PeftModel

    fresh, tok = load_model(str(data["model"]), cache_dir=data["cache"], device="cpu", dtype="float32")
    with quiet_peft():
        model = PeftModel.from_pretrained(fresh, str(sft.adapter_dir))
    batch = collate([encode_sft(sft_rows(1)[0], tok, 128)], pad_id=tok.pad_token_id)
    with torch.no_grad():
        hidden = last_hidden(model, batch)
    s, c = group_losses(hidden, batch["labels"], batch["example_ids"], 1, output_head(model))
    assert (s / c).item() < sft.first_val_loss


class Interrupted(Exception):
    pass


def stop_at_step_5(progress: Progress) -> None:
    if progress.step == 5:
        raise Interrupted


class Clock:
    """Stands in for the `time` module: every reading is one second later, so steps take seconds and a time
    budget's plan is exact."""

    now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture(scope="module")
def uninterrupted(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> StageResult:
    return run(data, "sft", tmp_path_factory.mktemp("whole") / "sft", RESUME_SETTINGS)


def test_attaching_the_adapter_warns_nothing_a_user_cannot_act_on(
    data: dict[str, Path], tmp_path: Path
) -> None:
    # peft reads transformers' deprecated `is_gradient_checkpointing`: a FutureWarning in every training log
    model, _ = load_model(str(data["model"]), cache_dir=data["cache"], device="cpu", dtype="float32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh = train_module._attach_adapter(model, LoraSettings(), None)
        fresh.save_pretrained(tmp_path / "adapter")
        again, _ = load_model(str(data["model"]), cache_dir=data["cache"], device="cpu", dtype="float32")
        train_module._attach_adapter(again, LoraSettings(), tmp_path / "adapter")
    assert not [w for w in caught if "gradient_checkpointing" in str(w.message)]


def test_same_seed_gives_the_same_adapter(data: dict[str, Path], tmp_path: Path, uninterrupted) -> None:
    again = run(data, "sft", tmp_path / "sft", RESUME_SETTINGS)
    assert again.resumed_from is None and again.steps == uninterrupted.steps == 10
    a, b = adapter_tensors(uninterrupted.adapter_dir), adapter_tensors(again.adapter_dir)
    assert all(torch.allclose(a[k], b[k], atol=1e-7, rtol=0) for k in a)
    strip = [{k: r[k] for k in ("step", "loss", "val_loss", "lr")} for r in uninterrupted.history]
    assert strip == [{k: r[k] for k in ("step", "loss", "val_loss", "lr")} for r in again.history]


def test_resume_after_interruption_reaches_the_same_result(
    data: dict[str, Path], tmp_path: Path, uninterrupted, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "sft"
    with pytest.raises(Interrupted):
        run(data, "sft", out, RESUME_SETTINGS, on_progress=stop_at_step_5)
    assert (out / "checkpoint" / "state.pt").is_file() and not (out / "result.json").exists()

    seen: list[int] = []
    resumed = run(data, "sft", out, RESUME_SETTINGS, on_progress=lambda p: seen.append(p.step))
    assert resumed.resumed_from == 3 and seen[0] == 4  # the checkpoint of the validation at step 3
    assert resumed.steps == 10 and resumed.tokens == uninterrupted.tokens
    assert [r["step"] for r in resumed.history] == [r["step"] for r in uninterrupted.history]
    logged = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert logged == [r["step"] for r in resumed.history]  # the killed run's rows after step 3 are gone
    assert resumed.best_val_loss == pytest.approx(uninterrupted.best_val_loss, abs=1e-6)
    a, b = adapter_tensors(uninterrupted.adapter_dir), adapter_tensors(resumed.adapter_dir)
    assert all(torch.allclose(a[k], b[k], atol=1e-6, rtol=0) for k in a)

    def no_model(*args: Any, **kwargs: Any):
        raise AssertionError("a finished stage must not load the model")

    monkeypatch.setattr(train_module, "load_model", no_model)
    done = run(data, "sft", out, RESUME_SETTINGS)
    assert done.as_dict() == resumed.as_dict()


def test_changed_settings_start_afresh(data: dict[str, Path], tmp_path: Path, uninterrupted) -> None:
    out = tmp_path / "sft"
    run(data, "sft", out, RESUME_SETTINGS)
    shorter = run(data, "sft", out, StageSettings(**{**RESUME_SETTINGS.as_dict(), "max_steps": 4}))
    assert shorter.steps == 4 and shorter.resumed_from is None


def test_early_stopping_after_patience(data: dict[str, Path], tmp_path: Path) -> None:
    # a learning rate this high diverges at once, so the validations never beat step 0
    settings = StageSettings(
        seq_len=128, batch_size=4, grad_accum=1, lr=5.0, epochs=20, max_steps=40, val_every=1, patience=2
    )
    result = run(data, "sft", tmp_path / "sft", settings)
    assert result.stopped_early and result.steps == 2
    assert result.best_val_loss == result.first_val_loss


def test_errors_say_what_to_fix(data: dict[str, Path], tmp_path: Path) -> None:
    empty = write_jsonl(tmp_path / "empty.jsonl", [])
    common = dict(
        model_source=str(data["model"]),
        cache_dir=data["cache"],
        out_dir=tmp_path / "out",
        lora=LORA,
        settings=StageSettings(),
        device="cpu",
    )
    with pytest.raises(TrainingError, match=r"no training examples in .*empty\.jsonl"):
        train_stage("sft", train_file=empty, val_file=data["sft_val"], **common)
    with pytest.raises(TrainingError, match="no validation examples"):
        train_stage("sft", train_file=data["sft_train"], val_file=empty, **common)
    with pytest.raises(TrainingError, match="does not exist"):
        train_stage("cpt", train_file=tmp_path / "missing.jsonl", val_file=data["cpt_val"], **common)
    with pytest.raises(TrainingError, match="unknown stage 'dpo'"):
        train_stage("dpo", train_file=data["sft_train"], val_file=data["sft_val"], **common)
    blank = write_jsonl(tmp_path / "blank.jsonl", [{"id": "b", "text": "", "kind": "session"}])
    with pytest.raises(TrainingError, match="no training examples"):
        train_stage("cpt", train_file=blank, val_file=data["cpt_val"], **common)


# --- context distillation -----------------------------------------------------------------------------------


def distill_rows(n: int, *, abstain: bool = True) -> list[dict[str, Any]]:
    """SFT rows that also carry a distillation teacher reading the same input, and an abstain row."""
    rows = [
        {
            **r,
            "extra": {"distill": {"teacher": r["messages"], "student": r["messages"], "answer": r["target"]}},
        }
        for r in sft_rows(n)
    ]
    abstain = {
        "id": "no",
        "messages": [SYSTEM, {"role": "user", "content": "?"}],
        "target": "No.",
        "weight": 1.0,
    }
    return [*rows, abstain] if abstain else rows


def test_kl_sums_are_per_example_and_zero_where_the_teacher_agrees() -> None:
    from trainer.loss import kl_sums

    torch.manual_seed(0)
    labels = torch.tensor([[IGNORE_INDEX, 5, 6, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX, 7, 8]])
    t_labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 5, 6], [IGNORE_INDEX, IGNORE_INDEX, 7, 8]])
    student = torch.randn(2, 4, 11)
    teacher = torch.zeros(2, 4, 11)
    teacher[0, 1:3] = student[0, 0:2]  # row 0: the teacher's answer positions hold the student's logits
    head = identity_head(11)  # hidden states are the logits
    same = kl_sums(student, labels, teacher, t_labels, torch.tensor([1.0, 0.0]), head)
    assert same.tolist() == pytest.approx([0.0, 0.0], abs=1e-6)  # agreeing, and no teacher at all
    differ = kl_sums(student, labels, torch.zeros(2, 4, 11), t_labels, torch.tensor([1.0, 1.0]), head)
    uniform = torch.full((11,), -torch.log(torch.tensor(11.0)))
    by_hand = sum(
        torch.nn.functional.kl_div(
            torch.log_softmax(student[1, p], -1), uniform, log_target=True, reduction="sum"
        )
        for p in (1, 2)
    )
    assert differ[0] > 0 and differ[1].item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_distillation_pulls_the_student_toward_the_base_model_teacher(
    data: dict[str, Path], tmp_path: Path
) -> None:
    """Continued from an adapter that learnt the facts, with the teacher reading the same input: the teacher
    is the base model without the adapter, so the KL starts above 0 and training shrinks it."""
    sft = run(data, "sft", tmp_path / "sft", SFT_SETTINGS)
    files = {
        **data,
        "sft_train": write_jsonl(tmp_path / "train.jsonl", distill_rows(16)),
        "sft_val": write_jsonl(tmp_path / "val.jsonl", distill_rows(4)),
    }
    settings = StageSettings(
        seq_len=128, batch_size=4, grad_accum=1, lr=3e-3, epochs=4, val_every=100, objective="distill"
    )
    result = run(files, "sft", tmp_path / "distill", settings, init_adapter=sft.adapter_dir)
    kl = [h["loss"] for h in result.history if h["loss"] is not None]
    assert kl[0] > 0.05 and kl[-1] < kl[0] / 2
    saved = json.loads((tmp_path / "distill" / "result.json").read_text())
    assert saved["inputs"]["settings"]["objective"] == "distill"
    with pytest.raises(TrainingError, match="objective 'rl': choose one of sft, distill"):
        run(files, "sft", tmp_path / "bad", StageSettings(seq_len=128, objective="rl"))


def test_the_cosine_schedule_is_transformers_and_can_be_shortened() -> None:
    from transformers import get_cosine_schedule_with_warmup

    schedule = train_module.CosineSchedule(warmup=3, total=20)
    theirs = get_cosine_schedule_with_warmup(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], 1.0), 3, 20
    )
    assert [schedule(s) for s in range(22)] == pytest.approx([theirs.lr_lambdas[0](s) for s in range(22)])
    schedule.total = 10  # what a time budget does: the same warm-up, the decay reaching 0 at step 10
    assert schedule(10) == pytest.approx(0.0) and schedule(5) > schedule(8) > 0


def test_a_time_budget_ends_the_stage_with_its_best_adapter(data: dict[str, Path], tmp_path: Path) -> None:
    settings = StageSettings(**{**RESUME_SETTINGS.as_dict(), "max_seconds": 1e-3})
    result = run(data, "sft", tmp_path / "sft", settings)
    # the budget was spent before the first step ended: that step is the last, validated and kept
    assert result.steps == result.planned_steps == 1
    assert result.history[-1]["step"] == 1 and result.history[-1]["val_loss"] is not None
    assert (result.adapter_dir / "adapter_config.json").is_file()


def test_a_time_budget_plans_the_steps_and_the_schedule_ends_with_them(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train_module, "time", Clock())
    settings = StageSettings(**{**RESUME_SETTINGS.as_dict(), "max_seconds": 30.0})
    result = run(data, "sft", tmp_path / "sft", settings)
    assert train_module.PLAN_AFTER < result.steps == result.planned_steps < 10  # 10 without the budget
    assert result.history[-1]["lr"] == pytest.approx(0.0)  # the decay was fitted to the planned steps


def test_a_budget_that_fits_changes_nothing(data: dict[str, Path], tmp_path: Path, uninterrupted) -> None:
    settings = StageSettings(**{**RESUME_SETTINGS.as_dict(), "max_seconds": 3600.0})
    result = run(data, "sft", tmp_path / "sft", settings)
    assert result.steps == result.planned_steps == uninterrupted.steps == 10
    a, b = adapter_tensors(uninterrupted.adapter_dir), adapter_tensors(result.adapter_dir)
    assert all(torch.allclose(a[k], b[k], atol=1e-7, rtol=0) for k in a)  # the same schedule, the same run


def test_a_resumed_stage_keeps_the_steps_its_budget_planned(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "sft"
    budgeted = StageSettings(**{**RESUME_SETTINGS.as_dict(), "max_seconds": 30.0})
    with monkeypatch.context() as m:
        m.setattr(train_module, "time", Clock())
        with pytest.raises(Interrupted):
            run(data, "sft", out, budgeted, on_progress=stop_at_step_5)
    # resumed on the real clock, with an ample budget: the plan made before the kill (checkpoint of step 3) holds
    resumed = run(data, "sft", out, StageSettings(**{**budgeted.as_dict(), "max_seconds": 3600.0}))
    assert resumed.resumed_from == 3
    assert resumed.planned_steps is not None and resumed.steps == resumed.planned_steps < 10
    assert resumed.history[-1]["lr"] == pytest.approx(0.0)
