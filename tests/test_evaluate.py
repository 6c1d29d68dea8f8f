"""Tests for trainer.evaluate (metrics on hand-made strings), trainer.generate and trainer.report.

The metric tests need no model. The generation and integration tests build a tiny random Qwen3 once per
module: its outputs are noise, so they check structure, order and ranges, not quality.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from trainer.evaluate import (
    baseline_memory,
    citation_accuracy,
    keyword_coverage,
    score,
    specificity,
)
from trainer.generate import clean_memory
from trainer.prompts import ABSTAIN, Passage, recall_messages
from trainer.report import loss_curve, render_markdown, write_report
from transcripts.wording import identifiers, mean_pairwise_jaccard

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_pair(
    category: str,
    passages: list[str],
    *,
    query: str = "what did we decide?",
    target: str = "",
    gold: list[int] | None = None,
    keywords: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A held-out SFT pair as the pair builder writes it (one JSONL row)."""
    objs = [
        Passage(text, f"sess-{n}", f"uuid-{n}", "2026-10-01T10:00:00Z", "/work/app")
        for n, text in enumerate(passages, 1)
    ]
    return {
        "id": f"{category}-{len(passages)}-{query[:8]}",
        "messages": recall_messages(query, objs),
        "target": target or ABSTAIN,
        "category": category,
        "abstain": category == "abstain",
        "gold": gold or [],
        "keywords": keywords or [],
        "passages": [{"n": n, **asdict(p)} for n, p in enumerate(objs, 1)],
        "query": query,
        **extra,
    }


# --- identifiers -----------------------------------------------------------------------------------------


def test_identifiers_files_dotted_names_calls_and_flags() -> None:
    text = "Edit src/app.py and pyproject.toml, then call os.path.join() and main() [2]; pass --max-steps 10."
    assert identifiers(text) == {"src/app.py", "pyproject.toml", "os.path.join", "main", "--max-steps"}


def test_identifiers_code_words_and_backticks() -> None:
    text = (
        "Use load_model, loadModel and PeftModel with `pytest -q tests/` and HF_HUB_OFFLINE; the API is JSON."
    )
    assert identifiers(text) == {
        "load_model",
        "loadmodel",
        "peftmodel",
        "pytest -q tests/",
        "tests/",
        "hf_hub_offline",
    }
    assert identifiers("Run `uv pip install -e .` then `Store.search()`.") == {
        "uv pip install -e .",
        "store.search",
    }


def test_identifiers_ignore_prose() -> None:
    text = "We chose this, e.g. for speed, and/or input/output on 10/11/2026 with Python 3.11 and file(s) [1] [12]."
    assert identifiers(text) == set()
    assert identifiers("see ~/notes, /work and https://example.com/a/b.") == {
        "~/notes",
        "/work",
        "https://example.com/a/b",
    }


# --- keyword coverage and specificity --------------------------------------------------------------------


def test_keyword_coverage_whole_words_case_insensitive() -> None:
    text = "We run PyTest with ruff [1]."
    assert keyword_coverage(text, ["pytest", "Ruff", "mypy", "test"]) == 0.5  # "test" is not "pytest"
    assert keyword_coverage(text, ["c++"]) == 0.0
    assert keyword_coverage("built with c++ and SQLite", ["C++", "sqlite", "SQLite"]) == 1.0
    assert keyword_coverage(text, []) is None
    assert keyword_coverage(text, ["", "  "]) is None


def test_specificity_counts_gold_identifiers_present() -> None:
    text = "Edit src/app.py and call load_model() [1]."
    assert specificity(text, ["src/app.py", "load_model", "os.path.join"]) == pytest.approx(2 / 3)
    assert specificity(text, ["load_model()", "SRC/APP.PY"]) == 1.0  # same normalisation as identifiers()
    assert specificity("edited the apps", ["app"]) == 0.0
    assert specificity("edited apps/app.py", ["app.py"]) == 1.0
    assert specificity(text, []) is None


# --- diversity and citations -----------------------------------------------------------------------------


def test_mean_pairwise_jaccard_exact() -> None:
    # {a,b} {a,c} {a,b}: 1/3, 1, 1/3; the citation is not a word.
    assert mean_pairwise_jaccard(["a b", "A c", "a b [1]"]) == pytest.approx(5 / 9)
    assert mean_pairwise_jaccard(["x y", "z"]) == 0.0
    assert mean_pairwise_jaccard(["", ""]) == 1.0
    assert mean_pairwise_jaccard(["only one"]) is None


def test_mean_pairwise_jaccard_samples_many_pairs_with_a_fixed_seed() -> None:
    texts = [f"w{i} w{i + 1} common" for i in range(100)]  # 4950 pairs: sampled
    first = mean_pairwise_jaccard(texts)
    assert first == mean_pairwise_jaccard(texts)
    exact = mean_pairwise_jaccard(texts, max_pairs=10_000)
    assert first is not None and exact is not None and abs(first - exact) < 0.01
    assert mean_pairwise_jaccard(["same words"] * 100) == 1.0


def test_citation_accuracy() -> None:
    assert citation_accuracy("x [1] y [3] z [1]", [1, 2], 3) == 0.5  # [1] once, [3] wrong
    assert citation_accuracy("x [2]", [2], 3) == 1.0
    assert citation_accuracy("x [9] [0]", [1], 3) is None  # no excerpt behind them: nothing cited
    assert citation_accuracy("no citation", [1], 3) is None
    assert citation_accuracy("x [1]", [], 3) == 0.0  # citing on an abstain pair


def test_citation_counts_any_excerpt_of_an_evidence_session() -> None:
    # [2] is not the gold excerpt, but it comes from the session the memory was said in: right, as the
    # benchmarks count it
    pair = make_pair("decision", ["gold", "same session", "other"], gold=[1], evidence=[1, 2])
    assert score(["It was decided [2]."], [pair])["citation_accuracy"] == 1.0
    assert score(["It was decided [3]."], [pair])["citation_accuracy"] == 0.0
    # a pair written before `evidence` existed: the excerpts of the gold excerpt's session
    older = make_pair("decision", ["gold", "same session", "other"], gold=[1])
    assert score(["It was decided [2]."], [older])["citation_accuracy"] == 0.0  # each its own session
    older["passages"][1]["session_id"] = older["passages"][0]["session_id"]
    assert score(["It was decided [2]."], [older])["citation_accuracy"] == 1.0
    assert score(["It was decided [3]."], [older])["citation_accuracy"] == 0.0


# --- baseline ----------------------------------------------------------------------------------------------


def test_baseline_memory_is_the_top_passage_cut_at_a_word() -> None:
    long = "alpha  beta\n" + " ".join(f"word{i}" for i in range(100))
    pair = make_pair("decision", [long, "second passage"])
    pair["passages"].reverse()  # the top-ranked one is n == 1, wherever it sits in the list
    memory = baseline_memory(pair)
    assert memory.endswith(" [1]") and memory.startswith("alpha beta word0 word1")
    body = memory.removesuffix(" [1]")
    assert len(body) <= 300 and body in " ".join(long.split()) and body.split()[-1].startswith("word")
    assert " ".join(long.split()).startswith(body + " ")  # cut at a word boundary
    assert baseline_memory(make_pair("decision", ["short one"])) == "short one [1]"
    assert baseline_memory(make_pair("abstain", [])) == ABSTAIN
    # at a larger budget the next excerpts follow, each citing its own number
    two = baseline_memory(make_pair("decision", ["first excerpt here", "second excerpt there"]), chars=200)
    assert two == "first excerpt here [1] second excerpt there [2]"


def test_the_verdict_needs_more_coverage_and_right_citations() -> None:
    from trainer.evaluate import verdict

    won = verdict({"keyword_coverage": 0.8, "citation_accuracy": 0.95}, {"keyword_coverage": 0.7})
    assert won["beats_retrieval"] and "0.800 against retrieval's 0.700" in won["why"]
    lost = verdict({"keyword_coverage": 0.6, "citation_accuracy": 0.5}, {"keyword_coverage": 0.7})
    assert not lost["beats_retrieval"]
    assert "0.600 is not above retrieval's 0.700" in lost["why"] and "citation accuracy 0.50" in lost["why"]
    silent = verdict({"keyword_coverage": 0.9, "citation_accuracy": None}, {"keyword_coverage": 0.7})
    assert not silent["beats_retrieval"] and "cited no excerpt" in silent["why"]


# --- score -------------------------------------------------------------------------------------------------


def score_fixture() -> tuple[list[str], list[dict[str, Any]]]:
    pairs = [
        make_pair(
            "preference", ["a", "b"], gold=[1], keywords=["pytest", "ruff"], identifiers=["pyproject.toml"]
        ),
        make_pair(
            "preference", ["a", "b"], gold=[2], keywords=["sqlite"], target="The store is `store.db` [2]."
        ),
        make_pair("abstain", ["unrelated"]),
        make_pair("decision", ["a"], gold=[1], keywords=["fts5"], identifiers=[]),
    ]
    outputs = [
        "Use pytest via pyproject.toml [1] [2]",  # kw 1/2, spec 1, cites 1 of 2 right
        "Use the store.db [2]",  # kw 0, spec 1 (store.db from the target), cites right
        ABSTAIN,  # right to abstain
        ABSTAIN,  # wrong to abstain
    ]
    return outputs, pairs


def test_score_overall() -> None:
    outputs, pairs = score_fixture()
    result = score(outputs, pairs)
    assert result["count"] == 4
    assert result["keyword_coverage"] == pytest.approx(1 / 6)
    assert result["specificity"] == 1.0
    assert result["citation_accuracy"] == 0.75
    assert result["citation_rate"] == pytest.approx(2 / 3)
    # {use,pytest,via,pyproject,toml} vs {use,the,store,db}: 1/8; both vs the abstention: 0.
    assert result["diversity"] == pytest.approx(1 / 24)
    assert result["abstain_accuracy"] == 1.0
    assert result["false_abstain_rate"] == pytest.approx(1 / 3)
    assert result["mean_words"] == 7.0
    assert [e["output"] for e in result["examples"]] == outputs  # one per category, then the rest
    assert set(result["examples"][0]) == {"query", "target", "output"}


def test_score_per_category() -> None:
    outputs, pairs = score_fixture()
    by = score(outputs, pairs)["by_category"]
    assert list(by) == ["abstain", "decision", "preference"]
    assert {
        k: by["preference"][k] for k in ("count", "keyword_coverage", "specificity", "citation_accuracy")
    } == {
        "count": 2,
        "keyword_coverage": 0.25,
        "specificity": 1.0,
        "citation_accuracy": 0.75,
    }
    assert by["preference"]["diversity"] == 0.125 and by["preference"]["false_abstain_rate"] == 0.0
    assert by["preference"]["abstain_accuracy"] is None
    assert by["abstain"]["abstain_accuracy"] == 1.0
    assert by["abstain"]["keyword_coverage"] is None and by["abstain"]["false_abstain_rate"] is None
    assert by["decision"]["false_abstain_rate"] == 1.0 and by["decision"]["specificity"] is None
    assert by["decision"]["diversity"] is None  # one output has no pair to compare with


def test_score_refuses_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="one output per pair"):
        score(["x"], [])


# --- generation --------------------------------------------------------------------------------------------


def test_clean_memory_strips_think_blocks() -> None:
    assert clean_memory("<think>\nhmm\n</think>\n\n The answer [1]. ") == "The answer [1]."
    assert clean_memory("reasoning</think>answer") == "answer"
    assert clean_memory("answer <think>unfinished") == "answer"
    assert clean_memory("  plain\n") == "plain"


def test_importing_eval_modules_stays_light() -> None:
    code = (
        "import sys, trainer.evaluate, trainer.generate, trainer.report, trainer.versions;"
        "sys.exit(any(m in sys.modules for m in ('torch', 'transformers', 'peft', 'matplotlib')))"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], check=False)
    assert run.returncode == 0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer.tiny import build_tiny_qwen3

    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny") / "qwen3")


@pytest.fixture(scope="module")
def adapter(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter with random (non-zero) B matrices, so it changes what the tiny model says."""
    import torch
    from peft import LoraConfig, get_peft_model

    from trainer.models import load_model, quiet_peft

    model, _ = load_model(
        str(tiny), cache_dir=tmp_path_factory.mktemp("cache"), device="cpu", dtype="float32"
    )
    with torch.random.fork_rng(devices=[]), quiet_peft():
        torch.manual_seed(0)
        config = LoraConfig(
            r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False
        )
        peft_model = get_peft_model(model, config)
    folder = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(folder)
    return folder


PROMPTS = [
    recall_messages("how do we run the tests?", [Passage("run pytest -q tests/", "s1", "u1")]),
    recall_messages("which store? " * 3, [Passage("we use SQLite with FTS5 " * 5, "s2", "u2")] * 2),
    recall_messages("anything?", []),
]


def test_generation_with_an_adapter_is_batch_invariant(tiny: Path, adapter: Path, tmp_path: Path) -> None:
    from trainer.generate import generate_memories, load_for_generation

    base, tokenizer = load_for_generation(
        str(tiny), cache_dir=tmp_path, adapter_dir=None, device="cpu", dtype="float32"
    )
    plain = generate_memories(base, tokenizer, PROMPTS, max_new_tokens=6)
    model, tokenizer = load_for_generation(
        str(tiny), cache_dir=tmp_path, adapter_dir=adapter, device="cpu", dtype="float32"
    )
    tokenizer.padding_side = "right"
    batched = generate_memories(model, tokenizer, PROMPTS, max_new_tokens=6, batch_size=3)
    assert tokenizer.padding_side == "right"  # restored
    single = [generate_memories(model, tokenizer, [p], max_new_tokens=6)[0] for p in PROMPTS]
    assert batched == single  # left padding does not change what a prompt generates
    assert batched != plain and any(batched)  # the adapter is applied
    sampled = generate_memories(model, tokenizer, PROMPTS, max_new_tokens=6, temperature=0.8, batch_size=2)
    assert len(sampled) == 3 and all(isinstance(s, str) for s in sampled)


def test_a_prompt_longer_than_the_model_is_cut_from_the_left(tiny: Path, tmp_path: Path) -> None:
    from trainer.generate import generate_memories, load_for_generation

    model, tokenizer = load_for_generation(
        str(tiny), cache_dir=tmp_path, adapter_dir=None, device="cpu", dtype="float32"
    )
    long = recall_messages("which store?", [Passage("x " * 300, "s", f"u{i}") for i in range(8)])
    assert len(tokenizer(long[1]["content"])["input_ids"]) > model.config.max_position_embeddings
    assert len(generate_memories(model, tokenizer, [long, PROMPTS[0]], max_new_tokens=4)) == 2


def test_evaluate_and_report_on_a_tiny_model(tiny: Path, tmp_path: Path) -> None:
    from trainer.evaluate import evaluate
    from trainer.generate import load_for_generation

    model, tokenizer = load_for_generation(
        str(tiny), cache_dir=tmp_path / "cache", adapter_dir=None, device="cpu"
    )
    pairs = [
        make_pair(
            "preference",
            ["The user prefers pytest -q and ruff.", "unrelated"],
            query="which test runner?",
            target="The user runs `pytest -q` [1].",
            gold=[1],
            keywords=["pytest"],
        ),
        make_pair(
            "error_fix",
            ["ModuleNotFoundError: orjson; pip install orjson fixed it"],
            target="Installing orjson fixed the ModuleNotFoundError [1].",
            gold=[1],
            keywords=["orjson"],
        ),
        make_pair("abstain", ["The quick brown fox."], query="what is the deploy key?"),
    ]
    judged = evaluate(model, tokenizer, pairs, max_new_tokens=40)
    assert judged["decoding"] == "extract"
    timed = judged["recall_seconds"]  # what one judged recall took, for `auto` on this CPU
    assert timed["device"] == "cpu" and 0 < timed["p50"] <= timed["p95"]
    for e in judged["examples"]:  # the judged memory is the excerpts' own words, or the abstention
        excerpts = " ".join(
            p["text"] for p in pairs[[q["query"] for q in pairs].index(e["query"])]["passages"]
        )
        words = re.sub(r" \[\d+\]", "", e["output"])
        assert e["output"] == ABSTAIN or all(s in excerpts for s in words.split(". ") if s), e
    # the baseline packs the question's sentences: at 160 characters both keyword-bearing excerpts fit
    assert judged["baseline"]["keyword_coverage"] == 1.0
    with pytest.raises(ValueError, match="decoding"):
        evaluate(model, tokenizer, pairs, decoding="sing")

    result = evaluate(model, tokenizer, pairs, max_new_tokens=8, batch_size=2, decoding="write")
    assert set(result) == {
        *("model", "baseline", "verdict", "decoding", "n", "generation_s", "recall_seconds", "examples")
    }
    assert result["recall_seconds"] is None  # free writing is batched: no per-recall time
    # an untrained tiny model writes noise: it does not beat the excerpts, and the verdict says why
    assert result["verdict"]["beats_retrieval"] is False and "retrieval" in result["verdict"]["why"]
    assert result["n"] == 3 and result["generation_s"] >= 0
    for which in ("model", "baseline"):
        scores = result[which]
        assert scores["count"] == 3 and set(scores["by_category"]) == {"preference", "error_fix", "abstain"}
        for key in (
            "keyword_coverage",
            "specificity",
            "citation_accuracy",
            "citation_rate",
            "diversity",
            "abstain_accuracy",
            "false_abstain_rate",
        ):
            value = scores[key]
            assert value is None or (isinstance(value, float) and 0.0 <= value <= 1.0), (which, key, value)
    assert result["baseline"]["keyword_coverage"] == 1.0  # the top passage holds the keywords
    assert result["baseline"]["abstain_accuracy"] == 0.0  # retrieval alone never abstains
    assert {e["category"] for e in result["examples"]} == {"preference", "error_fix", "abstain"}
    assert all(set(e) >= {"query", "target", "output", "baseline"} for e in result["examples"])
    assert evaluate(model, tokenizer, pairs, max_new_tokens=4, limit=1)["n"] == 1

    metrics = {
        **result,
        "stages": {
            "cpt": {"val_loss": 2.5, "steps": 10, "adapter_dir": "/x/best"},
            "sft": {"val_loss": float("nan")},
        },
    }
    curves = {
        "cpt": [{"step": 1, "loss": 3.0, "val_loss": None}, {"step": 2, "loss": 2.8, "val_loss": 2.5}],
        "sft": [{"step": 1, "loss": None, "val_loss": 2.0}],
    }
    paths = write_report(tmp_path / "run", metrics, curves)
    assert set(paths) == {"json", "markdown", "plot"} and all(
        p.parent == tmp_path / "run" for p in paths.values()
    )
    assert paths["plot"].read_bytes().startswith(PNG_MAGIC)
    markdown = paths["markdown"].read_text()
    assert "| metric | model | retrieval-only baseline | better |" in markdown
    assert "## Per category" in markdown and "## Training stages" in markdown and "## Examples" in markdown
    assert "| stage | val loss | steps |" in markdown and "/x/best" not in markdown
    saved = json.loads(paths["json"].read_text())
    assert saved["n"] == 3 and saved["stages"]["sft"]["val_loss"] is None  # NaN is not JSON
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]


def test_report_without_curves_or_stages(tmp_path: Path) -> None:
    outputs, pairs = score_fixture()
    metrics = {"model": score(outputs, pairs), "baseline": score([baseline_memory(p) for p in pairs], pairs)}
    paths = write_report(tmp_path, metrics, {})
    assert paths["plot"].read_bytes().startswith(PNG_MAGIC)
    markdown = render_markdown(metrics)
    assert "| keyword coverage | 0.167 |" in markdown
    assert "Training stages" not in markdown


def test_a_version_keeps_its_loss_curve_small_and_loses_no_validation(tmp_path: Path) -> None:
    """A GPU run logs thousands of steps: the version keeps every validation and evenly spaced training
    points, so `lmm-mcp eval` can redraw loss.png; a report without curves leaves the old picture alone."""
    history = [
        {"step": i, "loss": 2.0 / i, "val_loss": 1.0 / i if i % 50 == 0 else None, "lr": 1e-4}
        for i in range(1, 3001)
    ]
    curve = loss_curve(history, most=200)
    assert len(curve) <= 200 and curve[0]["step"] == 1 and curve[-1]["step"] == 3000
    assert [r["step"] for r in curve if "val_loss" in r] == list(range(50, 3001, 50))
    assert all(set(r) <= {"step", "loss", "val_loss"} for r in curve)
    assert loss_curve(history[:30]) == [{"step": i, "loss": 2.0 / i} for i in range(1, 31)]

    outputs, pairs = score_fixture()
    metrics = {"model": score(outputs, pairs)}
    plot = write_report(tmp_path, metrics, {"sft": curve})["plot"].read_bytes()
    write_report(tmp_path, metrics, None)
    assert (tmp_path / "loss.png").read_bytes() == plot
    assert write_report(tmp_path / "new", metrics, None)["plot"].read_bytes().startswith(PNG_MAGIC)


def test_report_says_how_much_the_validation_data_repeats_training() -> None:
    """eval.md shows the training data's statistics per side, so that a low validation loss can be read:
    answers that copy their gold excerpt, and validation targets that were trained on too."""
    outputs, pairs = score_fixture()
    stats = {
        "train": {"pairs": 120, "abstain": 15, "copied": 0.941, "target_jaccard": 0.11, "top4_share": 0.02},
        "val": {"pairs": 40, "abstain": 4, "copied": 0.936, "targets_seen": 0.304, "gold_retrieved": 0.61},
        "seconds": 3.2,
    }
    metrics = {"model": score(outputs, pairs), "data": stats}
    markdown = render_markdown(metrics)
    assert "## Training data" in markdown
    assert "| train | 120 | 15 | 0.941 |" in markdown
    assert "| val | 40 | 4 | 0.936 |" in markdown and "0.304" in markdown
    assert "seconds" not in markdown.split("## Training data")[1]
    assert "## Training data" not in render_markdown({"model": score(outputs, pairs)})


def test_a_projects_short_name_is_its_folders_last_part() -> None:
    from transcripts.wording import project_name

    assert project_name("/home/ana/src/shop") == "shop" == project_name("/home/ana/src/shop/")
    assert project_name(None, "all projects") == "all projects" == project_name("/", "all projects")
    assert project_name("", "") == "" and project_name("shop") == "shop"
