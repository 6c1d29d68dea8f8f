"""Recall: the compact retrieval-only memory, the generated memory's citations, modes and errors."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest

from lmm_mcp.app import App
from lmm_mcp.recall import FRAME, RecallError, compose_generated
from lmm_mcp.retrieval import Hit


def _hit(n: int) -> Hit:
    return Hit(
        n,
        f"session-{n}",
        f"uuid-{n}",
        f"2026-01-0{n}T00:00:00Z",
        "/p",
        "reply",
        f"text {n}",
        f"snip {n}",
        1.0 / n,
    )


def test_generated_citations_map_to_sources_and_invalid_ones_are_dropped():
    hits = [_hit(1), _hit(2), _hit(3)]
    r = compose_generated(
        "Run `uv run pytest -x` [2][7]; it was fixed in app.py [0] [3].", hits, "v0001", 500
    )
    # the model's memory, then the excerpts: the cited ones under their new numbers, then the rest
    assert r.memory == (
        f"{FRAME}\nRun `uv run pytest -x` [1]; it was fixed in app.py [2].\n"
        "[1] (2026-01-02) snip 2\n[2] (2026-01-03) snip 3\n[3] (2026-01-01) snip 1"
    )
    assert [(s.n, s.session_id) for s in r.sources] == [(1, "session-2"), (2, "session-3"), (3, "session-1")]
    wordy = [dataclasses.replace(_hit(n), snippet=f"snip {n} " * 10) for n in (1, 2, 3)]
    tight = compose_generated("Run it [2] and check [3].", wordy, "v0001", 50)
    assert [s.n for s in tight.sources] == [1, 2]  # a small budget still shows every cited source
    assert len(tight.memory) <= 50 * 4 + 40
    assert r.mode_used == "generate" and r.adapter_version == "v0001"


def test_an_excerpt_the_generated_memory_repeats_shows_its_header_only():
    said = "In shop: tests run with `uv run pytest -q` from the api folder."
    copied = dataclasses.replace(_hit(1), kind="memory", text=said)
    r = compose_generated(f"{said} [1]", [copied, _hit(2)], "v1", 500)
    assert r.memory.splitlines()[2] == "[1] (2026-01-01) (said above)"
    assert r.memory.splitlines()[3] == "[2] (2026-01-02) snip 2"  # news keeps its text
    assert [s.session_id for s in r.sources] == ["session-1", "session-2"]


def test_an_excerpts_label_names_its_project_only_among_several_projects():
    # the budget is small and the sources say the rest: one project's excerpts are labelled by their day
    other = dataclasses.replace(_hit(2), project="/home/ana/src/kiln")
    mixed = compose_generated("Run it [1].", [_hit(1), other], "v1", 500).memory.splitlines()
    assert mixed[2:] == ["[1] (2026-01-01, p) snip 1", "[2] (2026-01-02, kiln) snip 2"]
    global_memory = dataclasses.replace(_hit(2), project=None)
    lines = compose_generated("Run it [1].", [_hit(1), global_memory], "v1", 500).memory.splitlines()
    assert lines[3] == "[2] (2026-01-02, any project) snip 2"


def test_a_memory_that_cites_nothing_is_not_returned():
    assert compose_generated("Tests run with `make check`.", [_hit(1)], "v1", 500) is None


def test_an_abstaining_model_returns_no_sources():
    r = compose_generated(
        "No relevant memory: nothing in past sessions answers this. [1]", [_hit(1)], "v1", 500
    )
    assert r.sources == [] and r.memory.startswith("No relevant memory")


@pytest.fixture
def store(own_store):
    return own_store


def test_retrieval_only_memory_is_framed_numbered_and_within_budget(store):
    cfg, conn = store
    r = App(cfg, conn).recaller().recall("KeyError coupon pricing", project="/home/dev/shop", mode="retrieve")
    assert r.mode_used == "retrieve" and r.adapter_version is None
    lines = r.memory.splitlines()
    assert lines[0] == FRAME and lines[1].startswith("[1] (")
    assert [s.n for s in r.sources] == list(range(1, len(r.sources) + 1))
    assert any("coupon" in line for line in lines[1:])
    small = (
        App(cfg, conn)
        .recaller()
        .recall("KeyError coupon pricing", project="/home/dev/shop", mode="retrieve", max_tokens=60)
    )
    assert len(small.memory) <= 60 * 4 + 1 and len(small.sources) >= 1


def test_project_scoping(store):
    cfg, conn = store
    r = (
        App(cfg, conn)
        .recaller()
        .recall("SQLAlchemy sessions request scope", project="/srv/api", mode="retrieve", k=10)
    )
    assert r.sources and all(s.project in ("/srv/api", None) for s in r.sources)
    # a folder memory has never seen searches everything
    anywhere = App(cfg, conn).recaller().recall("KeyError coupon", project="/brand/new", mode="retrieve")
    assert any(s.project == "/home/dev/shop" for s in anywhere.sources)
    assert anywhere.project == "/home/dev/shop"  # one project: the reply names it, the lines give their days
    assert all(re.match(r"\[\d+\] \(\d{4}-\d\d-\d\d\) ", line) for line in anywhere.memory.splitlines()[1:])
    # sources from several projects: each line names its own, and the reply none
    mixed = App(cfg, conn).recaller().recall("SQLAlchemy sessions request scope", mode="retrieve", k=10)
    assert {s.project for s in mixed.sources} == {"/srv/api", "/home/dev/shop"} and mixed.project is None
    labels = [
        re.match(r"\[\d+\] \(\d{4}-\d\d-\d\d, (\w+)\) ", line) for line in mixed.memory.splitlines()[1:]
    ]
    assert all(labels) and {m.group(1) for m in labels} == {"api", "shop"}


def test_generate_without_an_adapter_says_train_first(store):
    cfg, conn = store
    with pytest.raises(RecallError, match="no trained adapter yet"):
        App(cfg, conn).recaller().recall("pytest", mode="generate")
    auto = App(cfg, conn).recaller().recall("pytest", mode="auto")
    assert auto.mode_used == "retrieve"


def test_bad_requests(store):
    cfg, conn = store
    for kwargs, message in (
        ({"mode": "dream"}, "mode"),
        ({"k": 0}, "k must"),
        ({"max_tokens": 5}, "max_tokens"),
    ):
        with pytest.raises(RecallError, match=message):
            App(cfg, conn).recaller().recall("pytest", **kwargs)
    with pytest.raises(RecallError, match="empty"):
        App(cfg, conn).recaller().recall("   ")


def test_retrieval_only_recall_does_not_import_torch(store):
    from lmm_mcp.embed import Embedder, embed_pending

    cfg, conn = store
    assert embed_pending(conn, Embedder(cfg.embed_model)) > 0  # hybrid search: the query gets embedded too
    code = (
        "import sys\nfrom lmm_mcp.config import Config\nfrom lmm_mcp.store import connect\n"
        "from lmm_mcp.app import App\n"
        f"cfg = Config.load(home={str(cfg.home)!r})\n"
        "r = App.open(cfg).recaller().recall('coupon', mode='auto')\n"
        "assert r.sources and r.mode_used == 'retrieve', r\n"
        "assert r.sources, r\n"
        "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _publish(cfg, tmp_path, name: str, verdict: dict | None) -> None:
    from trainer.versions import publish

    adapter = tmp_path / name
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    metrics = {"eval": {"n": 10, **({"verdict": verdict} if verdict is not None else {})}}
    publish(cfg.models_dir, adapter, config={"model": "tiny"}, metrics=metrics)


def test_auto_generates_only_with_an_adapter_that_beat_retrieval(store, tmp_path):
    import dataclasses

    cfg, conn = store
    cpu = dataclasses.replace(cfg, allow_cpu_generation=True)
    assert App(cpu, conn).recaller().auto_mode() == ("retrieve", "no trained adapter yet")

    _publish(
        cfg,
        tmp_path,
        "lost",
        {"beats_retrieval": False, "why": "keyword coverage 0.400 is not above retrieval's 0.600"},
    )
    mode, why = App(cpu, conn).recaller().auto_mode()
    assert mode == "retrieve" and "did not beat retrieval alone: keyword coverage 0.400" in why
    r = App(cpu, conn).recaller().recall("KeyError coupon", mode="auto")  # no model is loaded for this
    assert r.mode_used == "retrieve" and r.sources

    _publish(cfg, tmp_path, "old", None)  # an adapter from before verdicts: not shown to beat retrieval
    assert App(cpu, conn).recaller().auto_mode()[0] == "retrieve"

    _publish(cfg, tmp_path, "won", {"beats_retrieval": True, "why": "keyword coverage 0.700 against 0.600"})
    assert App(cpu, conn).recaller().auto_mode() == (
        "generate",
        f"adapter {_active(cfg)} beat retrieval alone: keyword coverage 0.700 against 0.600",
    )
    no_cpu = dataclasses.replace(cfg, allow_cpu_generation=False)
    if not App(no_cpu, conn).recaller().can_generate():  # no GPU here: the CPU is not used unless allowed
        assert App(no_cpu, conn).recaller().auto_mode() == (
            "retrieve",
            "no GPU here, and allow_cpu_generation is off",
        )


def test_auto_generates_on_a_cpu_where_the_evaluation_timed_recall_fast_enough(store, tmp_path):
    """Left unset, `allow_cpu_generation` follows the adapter's evaluation: recall judged on a CPU within
    CPU_RECALL_S (p50) generates; slower, or timed on a GPU only, or never timed, retrieves."""
    import dataclasses

    from lmm_mcp.recall import CPU_RECALL_S
    from trainer.versions import publish

    cfg, conn = store
    unset = dataclasses.replace(cfg, allow_cpu_generation=None)
    if App(unset, conn).recaller().can_generate():
        pytest.skip("a GPU is visible: the CPU rule is not consulted")
    won = {"beats_retrieval": True, "why": "coverage 0.80 against 0.75"}
    for name, timed, mode, why in (
        ("untimed", None, "retrieve", "no evaluation timed this adapter's recall on a CPU"),
        ("gpu", {"p50": 0.2, "p95": 0.3, "device": "cuda"}, "retrieve", "no evaluation timed"),
        ("slow", {"p50": CPU_RECALL_S + 1, "p95": 9.0, "device": "cpu"}, "retrieve", "(p50) on a CPU, over"),
        (
            "fast",
            {"p50": CPU_RECALL_S - 0.5, "p95": 2.4, "device": "cpu"},
            "generate",
            "beat retrieval alone",
        ),
    ):
        adapter = tmp_path / name
        adapter.mkdir()
        (adapter / "adapter_config.json").write_text("{}")
        metrics = {"eval": {"n": 10, "verdict": won, **({"recall_seconds": timed} if timed else {})}}
        publish(cfg.models_dir, adapter, config={"model": "tiny"}, metrics=metrics)
        got = App(unset, conn).recaller().auto_mode()
        assert got[0] == mode and why in got[1], (name, got)
    forced_off = dataclasses.replace(cfg, allow_cpu_generation=False)
    assert App(forced_off, conn).recaller().auto_mode()[0] == "retrieve"


def _active(cfg) -> str:
    from trainer.versions import active_version

    return active_version(cfg.models_dir).name


def _shown_sentences(memory: str) -> list[str]:
    """The sentences of a packed or judged memory: its lines without the frame, numbers and headers."""
    out = []
    for line in memory.splitlines()[1:]:
        body = re.sub(r"^\[\d+\] \([^)]*\) ", "", line)
        body = re.sub(r" \[\d+\]$", "", body)
        out += [part.rstrip("…").strip() for part in body.split(" … ")]
    return [s for s in out if s]


def test_a_small_budget_packs_the_questions_sentences_from_more_excerpts(store):
    cfg, conn = store
    recaller = App(cfg, conn).recaller()
    query = "KeyError coupon pricing"
    hits = recaller.hits(query, project="/home/dev/shop", k=8)
    full = recaller.recall(query, project="/home/dev/shop", mode="retrieve", max_tokens=1500)
    small = recaller.recall(query, project="/home/dev/shop", mode="retrieve", max_tokens=80)
    assert len(small.memory) <= 80 * 4 and small.memory.splitlines()[0] == FRAME
    texts = " ".join(" ".join(h.text.split()) for h in hits)
    shown = _shown_sentences(small.memory)
    assert shown and all(s in texts for s in shown)  # every word from an excerpt, none invented
    assert [s.n for s in small.sources] == list(range(1, len(small.sources) + 1))
    assert all(f"[{s.n}] (" in small.memory for s in small.sources)
    assert "coupon" in small.memory.lower() and "coupon" in full.memory.lower()


def test_generate_mode_judges_the_excerpts_sentences_with_the_adapter(store, tmp_path):
    """A real (tiny) model and adapter through `recall_memory`'s generate path: the memory is the excerpts'
    own sentences, the lead citing its excerpt; the abstention margin decides when it abstains."""

    import torch
    from peft import LoraConfig, get_peft_model

    from trainer.models import load_model, quiet_peft
    from trainer.tiny import build_tiny_qwen3
    from trainer.versions import publish

    cfg, conn = store
    tiny = build_tiny_qwen3(tmp_path / "tiny")
    model, _ = load_model(str(tiny), cache_dir=tmp_path / "cache", device="cpu")
    with quiet_peft():
        torch.manual_seed(0)
        peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    peft_model.save_pretrained(tmp_path / "adapter")
    publish(cfg.models_dir, tmp_path / "adapter", config={"model": str(tiny)}, metrics={})
    cfg = dataclasses.replace(cfg, base_model=str(tiny), allow_cpu_generation=True)
    recaller = App(cfg, conn).recaller()
    r = recaller.recall("KeyError coupon pricing", project="/home/dev/shop", mode="generate", max_tokens=120)
    assert r.mode_used == "generate" and r.adapter_version == _active(cfg)
    lines = r.memory.splitlines()
    assert lines[0] == FRAME and re.search(r" \[1\]$", lines[1]) and len(r.memory) <= 120 * 4
    hits = recaller.hits("KeyError coupon pricing", project="/home/dev/shop", k=8)
    texts = " ".join(" ".join(h.text.split()) for h in hits)
    assert all(s in texts for s in _shown_sentences(r.memory))
    assert [s.n for s in r.sources] == list(range(1, len(r.sources) + 1))
    # A budget that holds every hit whole: the judged lead, then all that retrieve mode shows, none cut.
    wide = recaller.recall(
        "KeyError coupon pricing", project="/home/dev/shop", mode="generate", max_tokens=3000
    )
    plain = recaller.recall(
        "KeyError coupon pricing", project="/home/dev/shop", mode="retrieve", max_tokens=3000
    )
    lead, *rest = wide.memory.splitlines()[1:]
    assert len(wide.sources) == len(plain.sources) == len(hits)
    assert {(s.session_id, s.uuid) for s in wide.sources} == {(s.session_id, s.uuid) for s in plain.sources}
    bodies = {re.sub(r"^\[\d+\] ", "", line) for line in plain.memory.splitlines()[1:]}
    # The lead's own excerpt, a stored memory that is that one sentence, shows its label only: the agent
    # reads the sentence once. The others show as retrieve mode shows them.
    said = lead.removesuffix(" [1]")
    assert lead.endswith(" [1]") and rest[0].endswith(") (said above)")
    assert f"{rest[0].removeprefix('[1] ').removesuffix('(said above)')}{said}" in bodies
    assert bodies - {b for b in bodies if b.endswith(said)} == {
        re.sub(r"^\[\d+\] ", "", line) for line in rest[1:]
    }
    # A prompt that holds only the first excerpt (a CPU's budget): the model judges its sentences, and the
    # rest of the memory's budget still goes to the other hits' sentences, as retrieve mode packs them.
    narrow = dataclasses.replace(cfg, recall_prompt_chars=1)
    r = (
        App(narrow, conn)
        .recaller()
        .recall("KeyError coupon pricing", project="/home/dev/shop", mode="generate", max_tokens=120)
    )
    assert r.mode_used == "generate" and re.search(r" \[1\]$", r.memory.splitlines()[1])
    first = (hits[0].session_id, hits[0].uuid)
    assert any((s.session_id, s.uuid) != first for s in r.sources), r.memory
    assert all(s in texts for s in _shown_sentences(r.memory))
    # Reranking: the hits a generated recall shows are the best of a deeper search in the order the model's
    # likelihood of the question gives them (trainer.rerank), not retrieval's first k.
    from trainer.rerank import RERANK_DEPTH, question_likelihoods, rerank_order

    assert not recaller.reranks()  # off unless asked for
    reranking = App(dataclasses.replace(cfg, recall_rerank=True), conn).recaller()
    assert reranking.reranks()
    query = "KeyError coupon pricing"
    deeper = reranking.hits(query, project="/home/dev/shop", k=RERANK_DEPTH)
    _, model, tokenizer = reranking._load(_active(cfg))
    best = [
        deeper[i]
        for i in rerank_order(question_likelihoods(model, tokenizer, query, [h.text for h in deeper]))
    ]
    shown = reranking.recall(query, project="/home/dev/shop", mode="generate", k=3, max_tokens=3000)
    assert shown.mode_used == "generate" and len(shown.sources) == 3
    assert {(s.session_id, s.uuid) for s in shown.sources} == {(h.session_id, h.uuid) for h in best[:3]}
    assert best[:3] != deeper[:3]  # the (seeded) tiny model's order is not retrieval's: the check has teeth
    # A margin below any score difference: the abstention always wins.
    shy = dataclasses.replace(cfg, abstain_margin=-1e9)
    r = App(shy, conn).recaller().recall("KeyError coupon pricing", project="/home/dev/shop", mode="generate")
    assert r.memory.startswith("No relevant memory") and r.sources == []
    # The lead weighs meaning with retrieval's own embedding model (all-MiniLM-L6-v2) once the store has
    # vectors; BM25 alone, words and rank pick it.
    from lmm_mcp.embed import Embedder, embed_pending

    assert recaller._closeness() is None
    assert embed_pending(conn, Embedder(cfg.embed_model)) > 0
    embedded = App(cfg, conn).recaller()
    near, far = embedded._closeness()(
        "How are Python dependencies managed?",
        [
            "Dependencies are locked with Poetry in pyproject.toml.",
            "The office plants need water on Fridays.",
        ],
    )
    assert near > far + 0.2
    r = embedded.recall("KeyError coupon pricing", project="/home/dev/shop", mode="generate", max_tokens=120)
    assert r.mode_used == "generate" and re.search(r" \[1\]$", r.memory.splitlines()[1])
    # A question about a day that names no subject: the lead is that day's summary opening, not a stray
    # sentence nearest the date in meaning.
    day = embedded.recall("What did we do on October 1?", project="/home/dev/shop", mode="generate")
    assert day.mode_used == "generate"
    assert day.memory.splitlines()[1].startswith("Session of 2026-10-01: asked"), day.memory


def test_a_projects_own_memories_drop_its_name_from_their_opening(store):
    """Within a project every note would open "In shop: …" and every summary "Session of … in shop:": the
    name is dropped there (the budget goes to what was said); a recall across projects keeps it."""
    cfg, conn = store
    recaller = App(cfg, conn).recaller()
    inside = recaller.hits("coupon pricing KeyError", project="/home/dev/shop", k=10)
    memories = [h for h in inside if h.kind == "memory" and h.project == "/home/dev/shop"]
    assert memories, "the fixture's shop project has memories about coupons"
    assert not any(re.match(r"In shop[:,] |Session of \S+ in shop:", h.text) for h in memories)
    everywhere = recaller.hits("coupon pricing KeyError", project=None, k=10)
    stored = {h.memory_key: h.text for h in everywhere if h.memory_key}
    assert any(re.match(r"In shop[:,] |Session of \S+ in shop:", t) for t in stored.values())
    for h in memories:  # the same memory, word for word but the name
        if h.memory_key in stored:
            named = stored[h.memory_key].replace(" in shop:", ":", 1)
            assert named.removeprefix("In shop: ").removeprefix("In shop, ") == h.text
