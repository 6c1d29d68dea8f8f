"""Training data from a real store: split, CPT documents, RAFT-style SFT pairs, balance, manifest, errors."""

from __future__ import annotations

import hashlib
import random
import re
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from conftest import record, write_jsonl

from lmm_mcp.history import StoreHistory
from lmm_mcp.ingest import Ingester
from lmm_mcp.memories import refresh_memories
from lmm_mcp.retrieval import Retriever
from trainer.pairs import DataError, DataSettings, build_dataset
from trainer.prompts import ABSTAIN, Passage, citations
from trainer.questions import askings, question_for
from trainer.selfstudy import exchanges
from transcripts.extraction import Memory, Source
from transcripts.nouns import ACTION
from transcripts.wording import drop_project_opening

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from synth import write_transcripts


@pytest.fixture
def history(cfg, conn, tmp_path):
    root = tmp_path / "projects"
    write_transcripts(root, 3.0, seed=1, projects=3)
    assert not Ingester(cfg, conn).ingest([root]).errors
    refresh_memories(conn)
    return StoreHistory(conn, Retriever(conn))


def _rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_dataset_split_pairs_and_manifest(history, tmp_path):
    out = tmp_path / "data"
    manifest = build_dataset(history, out, DataSettings(max_per_memory=2))
    sessions = history.sessions()
    val_ids = set(manifest["val_session_ids"])
    # the newest sessions are held out
    first = {}
    for s in sessions:
        first[s.session_id] = min(first.get(s.session_id, "~"), s.started_at or "")
    assert val_ids and max(first[i] for i in first if i not in val_ids) <= min(first[i] for i in val_ids)

    cpt_train, cpt_val = _rows(out / "cpt_train.jsonl"), _rows(out / "cpt_val.jsonl")
    assert cpt_train and cpt_val
    assert not {r["session_id"] for r in cpt_train} & val_ids
    assert {r["session_id"] for r in cpt_val} <= val_ids
    assert {"session", "memory"} <= {r["kind"] for r in cpt_train}

    train, val = _rows(out / "sft_train.jsonl"), _rows(out / "sft_val.jsonl")
    assert len(train) >= 8 and len(val) >= 2
    assert not {p["session_id"] for p in train} & val_ids and {p["session_id"] for p in val} <= val_ids
    recall_pairs = [p for p in train + val if p["context"] != "expand"]  # expansion: its own test
    widened = 0
    for p in recall_pairs:
        n = len(p["passages"])
        assert p["messages"][0]["role"] == "system" and p["query"] in p["messages"][1]["content"]
        assert 0 < p["weight"] <= 1
        if p["abstain"]:
            assert p["target"] == ABSTAIN and p["gold"] == []
            assert all(x.get("memory_key") != p["id"] for x in p["passages"])
        else:
            cited, _ = citations(p["target"], n)
            assert p["gold"] and cited and set(cited) <= set(p["gold"])
            gold = p["passages"][p["gold"][0] - 1]
            assert gold["memory_key"] == p["memory_key"] or gold["kind"] != "memory"
            # the evidence: the gold, and every other excerpt of a session the gold excerpts came from
            sessions = {p["passages"][g - 1]["session_id"] for g in p["gold"]}
            same = [x["n"] for x in p["passages"] if x["session_id"] in sessions or x["n"] in p["gold"]]
            assert set(p["gold"]) <= set(p["evidence"]) and set(same) <= set(p["evidence"])
            widened += len(p["evidence"]) > len(p["gold"])
    assert any(p["abstain"] for p in train) and any(p["context"] == "prompt" for p in train + val)
    assert widened  # some pairs show other excerpts of the gold's session: a citation of those is right too

    # balance: no memory more than max_per_memory times
    per_memory = Counter(
        p["memory_key"] for p in recall_pairs if not p["abstain"] and p["context"] != "study"
    )
    assert max(per_memory.values()) <= 2
    stats = manifest["stats"]["train"]
    answers = sum(not p["abstain"] and p["context"] != "expand" for p in train)  # 4 memories x 2 at most
    assert 0 < stats["target_jaccard"] < 0.5 and 0 < stats["top4_share"] <= round(
        8 / answers, 4
    )  # stored rounded

    for name, info in manifest["files"].items():
        data = (out / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"] and len(data.splitlines()) == info["rows"]
    assert manifest["counts"]["sft_train"] == len(train)


def test_same_seed_same_dataset(history, tmp_path):
    a = build_dataset(history, tmp_path / "a", DataSettings(seed=7))
    b = build_dataset(history, tmp_path / "b", DataSettings(seed=7))
    assert {n: f["sha256"] for n, f in a["files"].items()} == {n: f["sha256"] for n, f in b["files"].items()}


def test_abstain_pairs_hold_nothing_that_answers(history, tmp_path):
    out = tmp_path / "data"
    build_dataset(history, out, DataSettings(abstain_share=0.5))
    memories = {m.key: m for m in history.memories()}
    abstains = [p for p in _rows(out / "sft_train.jsonl") if p["abstain"]]
    assert abstains
    for p in abstains:
        key = p["extra"]["abstain_of"]
        if key.startswith("study:"):  # a self-study item: "study:<session>:<uuid>:<subject>"
            sources = {tuple(key.split(":")[1:3])}
        else:
            sources = {(s.session_id, s.uuid) for s in memories[key].sources}
        for x in p["passages"]:
            assert x["memory_key"] != key and (x["session_id"], x["uuid"]) not in sources


def test_empty_history_says_ingest_first(conn, tmp_path):
    with pytest.raises(DataError, match="nothing to train on: ingest sessions first"):
        build_dataset(StoreHistory(conn, Retriever(conn)), tmp_path / "data", DataSettings())


def test_too_little_data_reports_the_counts(cfg, conn, tmp_path):
    from tests.conftest import OWN_FIXTURES

    assert not Ingester(cfg, conn).ingest([OWN_FIXTURES]).errors
    refresh_memories(conn)
    with pytest.raises(
        DataError,
        match=r"too little data to train: 2 sessions \(4 transcripts with sub-agents\), \d+ memories; "
        r"training needs at least 3 sessions. Work a few more sessions",
    ):
        build_dataset(StoreHistory(conn, Retriever(conn)), tmp_path / "data", DataSettings())


# Three short conversation sessions: things said and named, little that the extractors turn into memories.
TALK = [
    (
        "The nightly export writes CSV files to exports/daily.csv and the `export_rows` job runs at 2am.",
        "Right: `export_rows` reads from the replica, so the nightly run never locks the primary tables.",
    ),
    (
        "The invoice PDFs broke because `render_invoice` pulls fonts from static/fonts/inter.woff2 at runtime.",
        "I moved the font into the image; `render_invoice` now loads it from the package data directory instead.",
    ),
    (
        "Customers complained the `retry_webhook` loop hammered their endpoint during the outage yesterday.",
        "Now `retry_webhook` backs off exponentially and stops after six attempts with a final alert email sent.",
    ),
]


def _talk_sessions(cfg, conn, n: int) -> StoreHistory:
    for i, (said, reply) in enumerate(TALK[:n]):
        ts = f"2026-03-0{i + 1}T10:00:00.000Z"
        records = [
            record(f"u{i}", said, session=f"s{i}", cwd="/work/app", ts=ts),
            record(f"a{i}", reply, role="assistant", parent=f"u{i}", session=f"s{i}", cwd="/work/app", ts=ts),
        ]
        write_jsonl(cfg.claude_dir / "-work-app" / f"s{i}.jsonl", records)
    assert not Ingester(cfg, conn).ingest().errors
    refresh_memories(conn)
    return StoreHistory(conn, Retriever(conn))


def test_three_conversation_sessions_train_on_self_study_pairs(cfg, conn, tmp_path):
    """Few memories, yet every session says something specific: self-study makes grounded, cited pairs of it."""
    out = tmp_path / "data"
    manifest = build_dataset(_talk_sessions(cfg, conn, 3), out, DataSettings())
    assert manifest["counts"]["sessions"] == 3 and manifest["counts"]["self_study"] >= 3
    rows = _rows(out / "sft_train.jsonl") + _rows(out / "sft_val.jsonl")
    studies = [p for p in rows if p["context"] == "study"]
    assert studies and {p["category"] for p in studies} == {"self_study"}
    for p in studies:
        cited, _ = citations(p["target"], len(p["passages"]))
        assert cited == p["gold"] and cited, p["target"]  # it cites its excerpt, by its number
        excerpt = p["passages"][cited[0] - 1]["text"]
        said = re.sub(r"\s*\[\d+\]", "", p["target"]).split("): ", 1)[1].strip()
        assert said in excerpt  # the answer is the excerpt's own sentence: grounded
        subject = p["query"].split("`")[1] if "`" in p["query"] else None
        assert subject is None or subject in said  # the question asks about a name the answer holds
    assert any("export_rows" in p["query"] for p in studies)


# Three sessions of two friends talking: places, a pet, a book, and no identifier at all.
CHAT = [
    (
        "Ana: Thanks, Ben! I spent the weekend in Lisbon with my sister.",
        "Ben: Sounds lovely, Ana. We adopted a puppy called Biscuit last month.",
    ),
    (
        "Ana: Hey Ben, I finally finished reading Middlemarch on the train.",
        "Ben: Nice one, Ana! Biscuit chewed through my running shoes again.",
    ),
    (
        "Ana: Ben, my sister and I booked a trip to Porto for the spring.",
        "Ben: Ana, that sounds great. I started volunteering at the Riverside animal shelter.",
    ),
]


def _write_chat(cfg, conn, talk: list[tuple[str, str]]) -> None:
    """Each pair of relayed lines as one session of /talk/friends, a day apart, ingested with its memories."""
    for i, (first, second) in enumerate(talk):
        ts = f"2026-03-0{i + 1}T10:00:00.000Z"
        records = [
            record(f"u{i}a", first, session=f"c{i}", cwd="/talk/friends", ts=ts),
            record(f"u{i}b", second, parent=f"u{i}a", session=f"c{i}", cwd="/talk/friends", ts=ts),
        ]
        write_jsonl(cfg.claude_dir / "-talk-friends" / f"c{i}.jsonl", records)
    assert not Ingester(cfg, conn).ingest().errors
    refresh_memories(conn)


def test_conversation_without_identifiers_gets_self_study_questions_about_what_it_names(cfg, conn, tmp_path):
    """Chat names places, pets and books, not functions: self-study asks about those names, and never about
    the people talking, whom every excerpt mentions."""
    _write_chat(cfg, conn, CHAT)
    out = tmp_path / "data"
    build_dataset(StoreHistory(conn, Retriever(conn)), out, DataSettings())
    rows = _rows(out / "sft_train.jsonl") + _rows(out / "sft_val.jsonl")
    queries = [p["query"] for p in rows if p["context"] == "study"]
    asked = {
        name
        for name in ("Lisbon", "Biscuit", "Middlemarch", "Porto", "Riverside")
        if any(name in q for q in queries)
    }
    assert len(asked) >= 3, queries
    assert not any(" Ana" in q or " Ben" in q for q in queries), queries


def _turn(text: str, uuid: str, kind: str = "prompt", session: str = "c1") -> Passage:
    return Passage(text, session, uuid, "2026-03-01T10:00:00.000Z", "/talk/friends", kind)


def test_an_exchange_asks_as_a_later_reader_would_and_answers_with_the_reply():
    """A question one side asked, and the first sentence of the other side's answer: the history's own words
    for a question worded unlike its answer."""
    relayed = [
        _turn("Ana: Hey Ben, what did you do with your sister last weekend?", "u1"),
        _turn("Ben: Yes! We went camping at the lake near Sintra. It rained.", "u2"),
        _turn("Ana: That sounds lovely. Why did my brother skip it?", "u3"),
        _turn("Ben: He was stuck at work on a Saturday shift again.", "u4"),
    ]
    items = exchanges(relayed, per_session=6, rng=random.Random(0))
    assert [(i.attrs["question"], i.text, i.sources[0].uuid) for i in items] == [
        (
            "What did Ben do with Ben's sister last weekend?",
            "In friends (2026-03-01): We went camping at the lake near Sintra.",
            "u2",
        ),
        (
            "Why did Ana's brother skip it?",
            "In friends (2026-03-01): Ben: He was stuck at work on a Saturday shift again.",
            "u4",
        ),
    ]
    coding = [
        _turn("The deploy broke again. Where does the deploy config live?", "p1", session="s1"),
        _turn(
            "Let me look.\n[Bash] ls deploy\nIt lives in `deploy/fly.toml`, next to the Dockerfile.",
            "r1",
            "reply",
            "s1",
        ),
    ]
    (item,) = exchanges(coding, per_session=6, rng=random.Random(0))
    assert item.attrs["question"] == "Where does the deploy config live?"
    assert item.text.endswith(
        "It lives in `deploy/fly.toml`, next to the Dockerfile."
    )  # past the hedge and the tool


@pytest.mark.parametrize(
    "pair",
    [
        [
            _turn("Can you fix the failing test?", "p1"),
            _turn("Fixed: the fixture now resets the clock.", "r1", "reply"),
        ],
        [
            _turn("What do you think about Redis here?", "p1"),
            _turn("Redis would add a second moving part.", "r1", "reply"),
        ],
        [
            _turn("Ana: What did you cook on Sunday?", "u1"),
            _turn("Ana: Also, the oven is broken again.", "u2"),
        ],
        [
            _turn("Ana: What did you cook on Sunday?", "u1"),
            _turn("Ben: Let me think, maybe a risotto.", "u2"),
        ],
        [
            _turn("Ana: What did you cook on Sunday?", "u1"),
            _turn("Ben: We made a mushroom risotto.", "u2", session="c2"),
        ],
        [_turn("What broke in the nightly import?", "p1"), _turn("What broke in the nightly import?", "p1")],
    ],
    ids=[
        "a request",
        "asks the assistant",
        "same speaker",
        "a hedge",
        "another session",
        "one turn in pieces",
    ],
)
def test_what_is_no_question_or_no_answer_makes_no_exchange(pair):
    assert exchanges(pair, per_session=6, rng=random.Random(0)) == []


def test_a_sessions_exchanges_are_capped():
    turns = []
    for n in range(10):
        turns += [
            _turn(f"Ana: What did you read in week {n}?", f"q{n}"),
            _turn(f"Ben: I read the book number {n} twice.", f"a{n}"),
        ]
    assert len(exchanges(turns, per_session=4, rng=random.Random(0))) == 4
    assert len(exchanges(turns, per_session=0, rng=random.Random(0))) == 0


def test_a_conversations_questions_and_answers_become_cited_pairs(cfg, conn, tmp_path):
    talk = [
        (
            "Ana: Ben, what did you name the new puppy?",
            "Ben: We called him Biscuit, after the colour of his fur.",
        ),
        (
            "Ana: Where did you and your sister travel in May?",
            "Ben: We spent a week hiking around Porto and the Douro valley.",
        ),
        (
            "Ana: Which book are you reading on the train?",
            "Ben: I am halfway through Middlemarch, slowly but happily.",
        ),
    ]
    _write_chat(cfg, conn, talk)
    out = tmp_path / "data"
    manifest = build_dataset(StoreHistory(conn, Retriever(conn)), out, DataSettings(exchanges_per_session=6))
    assert manifest["counts"]["exchanges"] == 3
    rows = _rows(out / "sft_train.jsonl") + _rows(out / "sft_val.jsonl")
    asked = {
        p["query"]: p
        for p in rows
        if p["context"] == "study" and p["query"].startswith(("What did Ben", "Where did", "Which book"))
    }
    assert set(asked) == {  # "you" read as the person answering; grammar is the model's business
        "What did Ben name the new puppy?",
        "Where did Ben and Ben's sister travel in May?",
        "Which book are Ben reading on the train?",
    }
    for p in asked.values():
        cited, _ = citations(p["target"], len(p["passages"]))
        assert cited == p["gold"] and cited
        said = re.sub(r"\s*\[\d+\]", "", p["target"]).split("): ", 1)[1].strip()
        assert said in p["passages"][cited[0] - 1]["text"] and said.startswith(
            "Ben: "
        )  # the answer, grounded
    none = build_dataset(
        StoreHistory(conn, Retriever(conn)), tmp_path / "none", DataSettings()
    )  # off by default
    assert none["counts"]["exchanges"] == 0


def test_each_memory_is_written_several_ways_for_cpt(history, tmp_path):
    out = tmp_path / "data"
    build_dataset(history, out, DataSettings(wordings=3))
    docs = [r for r in _rows(out / "cpt_train.jsonl") if r["kind"] == "memory"]
    by_memory: dict[str, list[str]] = {}
    for r in docs:
        by_memory.setdefault(r["id"].rsplit(":", 1)[0], []).append(r["text"])
    assert by_memory and all(len(set(texts)) == len(texts) for texts in by_memory.values())
    assert sum(len(texts) == 3 for texts in by_memory.values()) >= 0.8 * len(by_memory)
    assert any(t.startswith("Q: ") for texts in by_memory.values() for t in texts)


def test_expansion_pairs_teach_the_memorys_own_names(history, tmp_path):
    from trainer.prompts import EXPAND_SYSTEM, expansion_terms

    out = tmp_path / "data"
    manifest = build_dataset(history, out, DataSettings(expansions=True))
    rows = _rows(out / "sft_train.jsonl") + _rows(out / "sft_val.jsonl")
    expand = [p for p in rows if p["context"] == "expand"]
    assert expand and all(p["category"] == "expand" and not p["passages"] for p in expand)
    memories = {m.key: m for m in history.memories()}
    for p in expand:
        assert p["messages"][0]["content"] == EXPAND_SYSTEM and p["query"] in p["messages"][1]["content"]
        terms = expansion_terms(p["target"])
        assert terms and all(t.lower() not in p["query"].lower() for t in terms)
        if p["memory_key"] in memories:
            names = [k.lower() for k in memories[p["memory_key"]].keywords]  # each term: (part of) a name
            assert all(any(t.lower() in k for k in names) for t in terms), (terms, names)
    train_expand = sum(p["context"] == "expand" for p in _rows(out / "sft_train.jsonl"))
    assert manifest["stats"]["train"]["by_category"]["expand"] == train_expand
    assert expansion_terms("FastAPI, `uv run pytest`\n'PostgreSQL 16'., FastAPI, x") == [
        "FastAPI",
        "uv run pytest",
        "PostgreSQL 16",
    ]
    without = build_dataset(history, tmp_path / "none", DataSettings())  # the default: recall does not expand
    assert without["counts"]["sft_train"] + without["counts"]["sft_val"] < len(rows)
    assert not any(p["context"] == "expand" for p in _rows(tmp_path / "none" / "sft_train.jsonl"))


def test_model_written_self_study_keeps_only_grounded_answers(cfg, conn, tmp_path):
    """The writer is the input here (on a GPU, the base model): what it writes is parsed, and kept only when
    the answer's words are the excerpt's."""
    from trainer.selfstudy import grounded, parse_written

    assert parse_written("Q: When does the export run?\nA: The nightly `export_rows` job runs at 2am.") == (
        "When does the export run?",
        "The nightly `export_rows` job runs at 2am.",
    )
    assert parse_written("Sure! Here is a question about exports.") is None
    excerpt = (
        "The nightly export writes CSV files to exports/daily.csv and the `export_rows` job runs at 2am."
    )
    assert grounded("The export_rows job writes exports/daily.csv nightly at 2am.", excerpt)
    assert not grounded("The export runs on Kubernetes with Argo Workflows every hour.", excerpt)

    def writer(prompts: list[str]) -> list[str]:
        out = []
        for i, prompt in enumerate(prompts):
            first = prompt.split("Excerpt:\n", 1)[1].split(". ")[0].split("\n")[0]
            out.append(
                f"Q: What did we say then?\nA: {first}."
                if i % 2 == 0
                else "Q: Where does it run?\nA: Kubernetes with Argo on Mars, hourly."
            )
        return out

    out = tmp_path / "data"
    manifest = build_dataset(_talk_sessions(cfg, conn, 3), out, DataSettings(), write=writer)
    stats = manifest["stats"]["written_study"]
    assert (
        stats["asked"] >= 3 and stats["parsed"] == stats["asked"] and 0 < stats["grounded"] < stats["asked"]
    )
    rows = _rows(out / "sft_train.jsonl") + _rows(out / "sft_val.jsonl")
    written = [p for p in rows if p["memory_key"] and p["memory_key"].endswith(":written")]
    assert written and all(
        "Mars" not in p["target"] and p["query"] == "What did we say then?" for p in written
    )


def test_continual_data_learns_new_sessions_even_when_all_are_held_out():
    import random

    from trainer.pairs import SessionInfo, _continual

    sessions = [SessionInfo(f"s{i}", f"s{i}", "/p", f"2026-03-0{i}T00:00:00Z") for i in range(1, 6)]
    rows = lambda ids: [{"session_id": s, "n": n} for s in ids for n in range(4)]  # noqa: E731
    settings = DataSettings(since="2026-03-04T12:00:00Z", replay_share=0.5)  # s5 is new, and held out
    cpt = {"train": rows(["s1", "s2", "s3", "s4"]), "val": rows(["s5"])}
    sft = {"train": [], "val": []}
    counts = _continual(sessions, settings, cpt, sft, random.Random(0))
    assert counts == {"new_sessions": 1, "cpt_replayed": 2, "sft_replayed": 0}
    assert [r["session_id"] for r in cpt["train"][:4]] == ["s5"] * 4 and cpt["val"] == []
    with pytest.raises(DataError, match="nothing new to learn"):
        _continual(sessions, DataSettings(since="2026-03-09"), cpt, sft, random.Random(0))


def _said(key: str, keywords: list[str], category: str = "project_fact", day: str = "2026-01-05") -> Memory:
    source = Source(f"s-{day}", "u1", f"{day}T10:00:00.000Z", "/talk/chat")
    return Memory(
        category, f"{key} was said.", keywords, 0.5, [source], "/talk/chat", f"{category}:chat:{key}"
    )


def test_each_memory_is_asked_about_what_tells_it_apart():
    """Many memories of one conversation lead with the same speaker: a question built on that name would ask
    for all of them at once, and train one input on many targets. Each asks about its own rarest keyword."""
    memories = [
        _said("snakes", ["Jolene", "snakes", "pity"]),
        _said("flowers", ["Jolene", "flowers", "beautiful"]),
        _said("companion", ["Jolene", "Susie", "companion"]),  # Susie: four memories, too many to tell
        _said("walks", ["Jolene", "Susie", "walks", "chat"]),  # the project's own name is never the focus
        _said("yoga", ["Jolene", "Susie", "yoga"]),
        _said("susie", ["Jolene", "Susie", "chat"]),  # nothing that tells it apart: the rarest it has
        _said("alone", ["Jolene"]),
    ]
    asked = askings(memories)
    assert [asked[m.key].focus for m in memories] == [
        "snakes",
        "flowers",
        "companion",
        "walks",
        "yoga",
        "Susie",
        "Jolene",
    ]
    rng = random.Random(0)
    questions = {m.key: {question_for(m, rng, asked[m.key]) for _ in range(20)} for m in memories}
    assert all("snakes" in q for q in questions[memories[0].key])
    assert not questions[memories[0].key] & questions[memories[1].key]


def test_a_question_names_a_thing_not_a_verb():
    """A chat turn's keywords come in text order, so the first that tells it apart is often its verb: "What do
    we know about heard?" asks for nothing. The history's own sentences show which words are verbs."""
    source = Source("s-1", "u1", "2026-01-05T10:00:00.000Z", "/talk/chat")

    def turn(key: str, text: str, keywords: list[str]) -> Memory:
        return Memory("project_fact", text, keywords, 0.5, [source], "/talk/chat", f"project_fact:chat:{key}")

    memories = [
        turn("setup", "I heard about a great camping setup for the kids.", ["heard", "camping", "setup"]),
        turn("pie", "I made it again: my favorite recipe is Chicken Pot Pie.", ["made", "favorite", "Pie"]),
        turn("noted", "Noted, the deploy goes through pydantic now.", ["Noted", "deploy", "pydantic"]),
        turn("heard", "You heard me, I made it twice.", ["heard", "made"]),  # verbs only: still asked
    ]
    asked = askings(memories)
    assert [asked[m.key].focus for m in memories] == ["camping", "favorite", "deploy", "heard"]
    memories[1].keywords = ["made", "Pie", "favorite"]
    assert askings(memories)[memories[1].key].focus == "Chicken Pot Pie"
    rng = random.Random(0)
    questions = {question_for(memories[0], rng, asked[memories[0].key]) for _ in range(20)}
    assert all("camping" in q and "setup setup" not in q for q in questions)


def test_a_memory_that_names_nothing_gets_no_templated_question():
    """A pleasantry's only telling keywords are verbs and fillers: its question ("What do we know about yeah?")
    would ask for nothing, so it trains through CPT and later prompts only. A stack fact whose telling word is
    a verb is asked by its role and keeps its question."""
    source = Source("s-1", "u1", "2026-01-05T10:00:00.000Z", "/talk/chat")
    said = [
        Memory("project_fact", t, k, 0.5, [source], "/talk/chat", f"project_fact:chat:{i}")
        for i, (t, k) in enumerate(
            [
                ("Yeah, I heard it deploys fine, keep it up!", ["Yeah", "heard", "keep"]),
                ("I heard the new camping setup arrived.", ["heard", "camping", "setup"]),
                ("I keep the camping gear in the garage.", ["keep", "camping", "garage"]),
            ]
        )
    ]
    stack = Memory(
        "project_fact", "chat deploys to Vercel.", ["deploys"], 0.7, [source], "/talk/chat",
        "project_fact:chat:stack-deploy", attrs={"kind": "stack", "role": "deploy target", "choice": "Vercel"},
    )  # fmt: skip
    asked = askings([*said, stack])
    assert [asked[m.key].names_nothing(m) for m in said] == [True, False, False]
    assert asked[stack.key].rank == ACTION and not asked[stack.key].names_nothing(stack)


def test_a_memory_that_names_only_its_project_is_not_asked_about_it_twice():
    source = Source("s-1", "u1", "2026-01-05T10:00:00.000Z", "/talk/chat")
    m = Memory(
        "project_fact", "chat is written in Go.", ["chat"], 0.5, [source], "/talk/chat", "project_fact:x"
    )
    asked = askings([m])
    rng = random.Random(0)
    questions = {question_for(m, rng, asked[m.key]) for _ in range(20)}
    assert questions and not any("chat in chat" in q for q in questions)


def test_only_the_newest_session_is_where_we_left_off():
    old = _said("old", ["migration"], category="session", day="2026-01-05")
    new = _said("new", ["deploy"], category="session", day="2026-02-01")
    asked = askings([new, old])
    rng = random.Random(0)
    assert not any("leave off" in question_for(old, rng, asked[old.key]) for _ in range(40))
    assert any("leave off" in question_for(new, rng, asked[new.key]) for _ in range(40))


def test_few_questions_ask_for_more_than_one_memory(history, tmp_path):
    """Over a generated history (templated: many memories alike): a question built from a memory is rarely
    another memory's too (27 % of them before questions named what tells a memory apart, 12 % now). Which
    template each memory draws is random, and one seed's share moves between 9 % and 19 %: three seeds."""
    shared = total = 0
    for seed in (0, 1, 2):
        out = tmp_path / f"data{seed}"
        build_dataset(history, out, DataSettings(seed=seed))
        rows = [r for r in _rows(out / "sft_train.jsonl") if r["context"] == "memory" and not r["abstain"]]
        targets: dict[str, set[str]] = {}
        for r in rows:
            targets.setdefault(r["query"], set()).add(r["target"])
        shared += sum(1 for r in rows if len(targets[r["query"]]) > 1)
        total += len(rows)
    assert total and shared <= 0.15 * total, (shared, total)


def test_the_manifest_says_how_much_validation_repeats_training(history, tmp_path):
    """A low validation loss is explained by the data: answers that copy a gold excerpt (`copied`), and
    validation targets that are training targets too (`targets_seen`), both counted from the written rows."""
    out = tmp_path / "data"
    stats = build_dataset(history, out, DataSettings())["stats"]
    train, val = _rows(out / "sft_train.jsonl"), _rows(out / "sft_val.jsonl")

    def bare(target: str) -> str:
        return " ".join(re.sub(r"\[\d+\]", " ", target).split())

    def copies(p: dict) -> bool:
        words = set(re.findall(r"\w+", bare(p["target"]).lower()))
        gold = [x["text"].lower() for x in p["passages"] if x["n"] in p["gold"]]
        return any(len(words & set(re.findall(r"\w+", g))) >= 0.9 * len(words) for g in gold)

    for rows, side in ((train, stats["train"]), (val, stats["val"])):
        answers = [p for p in rows if not p["abstain"] and p["context"] != "expand"]
        assert answers and 0 < side["copied"] <= 1
        assert side["copied"] == pytest.approx(sum(map(copies, answers)) / len(answers), abs=1e-3)
    trained = {bare(p["target"]) for p in train if not p["abstain"]}
    answers = [p for p in val if not p["abstain"] and p["context"] != "expand"]
    seen = sum(bare(p["target"]) in trained for p in answers) / len(answers)
    assert stats["val"]["targets_seen"] == pytest.approx(seen, abs=1e-3)
    assert "targets_seen" not in stats["train"]


def test_a_paraphrased_answer_is_not_counted_as_copied():
    from trainer.pairs import Pair, pair_stats

    def pair(target: str, excerpt: str) -> Pair:
        return Pair(
            id="p",
            query="q?",
            context="memory",
            messages=[],
            target=target,
            weight=1.0,
            memory_key="m",
            category="project_fact",
            abstain=False,
            gold=[1],
            keywords=[],
            identifiers=[],
            passages=[{"n": 1, "text": excerpt}],
            session_id="s",
        )

    excerpt = "We deploy with make ship from the main branch on Fridays."
    copied = pair("Deploy with make ship from the main branch on Fridays. [1]", excerpt)
    paraphrase = pair("Releases go out each Friday through the ship target. [1]", excerpt)
    assert pair_stats([copied])["copied"] == 1.0
    assert pair_stats([paraphrase])["copied"] == 0.0
    assert pair_stats([copied, paraphrase])["copied"] == 0.5


def test_pairs_show_a_projects_memories_as_recall_does(history, tmp_path):
    """Recall within a project drops the name its memories open with ("In shop: …"); the pairs show the model
    the same, in the retrieved excerpts, the gold put in among them and the target alike, so that neither the
    served format is new to it nor the name a cue to the gold."""
    out = tmp_path / "data"
    build_dataset(history, out, DataSettings(max_per_memory=2))
    pairs = [
        p for p in _rows(out / "sft_train.jsonl") + _rows(out / "sft_val.jsonl") if p["context"] != "expand"
    ]
    shown = [x for p in pairs for x in p["passages"] if x["kind"] == "memory"]
    assert shown and pairs

    def named(text: str, project: str | None) -> bool:
        name = (project or "").rstrip("/").rsplit("/", 1)[-1]
        return bool(name) and bool(
            re.match(rf"In {re.escape(name)}[:,] |Session of \S+ in {re.escape(name)}:", text)
        )

    assert not [x["text"] for x in shown if named(x["text"], x["project"])]
    stored = [m for m in history.memories() if named(m.text, m.project)]
    assert stored, "the synthetic history's memories open with their project's name"
    answered = [p for p in pairs if not p["abstain"] and p["context"] != "study"]
    gold_project = {p["id"]: p["passages"][p["gold"][0] - 1]["project"] for p in answered}
    assert answered and not [p["target"] for p in answered if named(p["target"], gold_project[p["id"]])]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("In shop: Coupons stay optional.", "Coupons stay optional."),
        ("In shop, shop/pricing.py was edited.", "shop/pricing.py was edited."),
        ("Session of 2026-10-01 in shop: asked “fix it”.", "Session of 2026-10-01: asked “fix it”."),
        ("In shopfront: Coupons stay optional.", "In shopfront: Coupons stay optional."),  # another project
        ("In short: coupons stay optional.", "In short: coupons stay optional."),
        ("shop deploys to Fly.io.", "shop deploys to Fly.io."),
    ],
)
def test_a_memory_drops_only_its_own_projects_name_from_its_opening(text, shown):
    assert drop_project_opening(text, "/home/dev/shop") == shown
    assert drop_project_opening(text, None) == text
