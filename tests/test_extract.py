"""Extractive memories: the model's scores of candidate answers, the excerpts' sentences, and the packing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from trainer.prompts import Passage, recall_messages

MESSAGES = recall_messages(
    "how do we run the tests?",
    [
        Passage("Run pytest -q tests/ before pushing. The CI uses tox.", "s1", "u1"),
        Passage("We use Redis.", "s2", "u2"),
    ],
)
ANSWERS = [
    "Run pytest -q tests/ before pushing. [1]",
    "We use Redis. [2]",
    "x",
    "The CI uses tox, with three envs. [1]",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer.tiny import build_tiny_qwen3

    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny") / "qwen3")


def _plain_score(model, tokenizer, messages, answer: str) -> float:
    """The same mean log-probability from one forward pass over prompt + answer, no cache."""
    import torch

    from trainer.models import chat_prompt

    prompt = tokenizer(chat_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]
    ans = tokenizer(answer, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt + ans])).logits[0].float().log_softmax(-1)
    return sum(logits[len(prompt) - 1 + i, t].item() for i, t in enumerate(ans)) / len(ans)


def test_scores_with_a_shared_prompt_cache_equal_a_plain_forward_pass(tiny: Path, tmp_path: Path) -> None:
    from trainer.generate import load_for_generation, score_answers

    model, tokenizer = load_for_generation(
        str(tiny), cache_dir=tmp_path, adapter_dir=None, device="cpu", dtype="float32"
    )
    batched = score_answers(model, tokenizer, MESSAGES, ANSWERS, batch_size=3)  # a padded batch and a single
    one_by_one = [score_answers(model, tokenizer, MESSAGES, [a])[0] for a in ANSWERS]
    plain = [_plain_score(model, tokenizer, MESSAGES, a) for a in ANSWERS]
    assert len(batched) == len(ANSWERS)
    for a, b, c in zip(batched, one_by_one, plain, strict=True):
        assert math.isfinite(a) and a < 0
        assert a == pytest.approx(b, abs=1e-4) and a == pytest.approx(c, abs=1e-4)
    assert score_answers(model, tokenizer, MESSAGES, []) == []
    with pytest.raises(ValueError, match="batch_size"):
        score_answers(model, tokenizer, MESSAGES, ANSWERS, batch_size=0)


def _passage(text: str, n: int = 1) -> Passage:
    return Passage(text, f"s{n}", f"u{n}", f"2026-01-0{n}T00:00:00Z", "/home/dev/shop")


def test_sentences_are_what_the_prompt_shows_cut_at_word_ends_without_scraps():
    from trainer.extract import MAX_SENTENCE_CHARS, passage_sentences
    from trainer.prompts import PASSAGE_CHARS

    long = "word " * 100
    text = f"Run   pytest -q first. OK. {long}\nThe  deploy goes through make ship. " + "tail " * 200
    sentences = passage_sentences([_passage(text), _passage("We use Redis 7 for the queue.", 2)])
    assert sentences[0].text == "Run pytest -q first." and sentences[0].n == 1  # whitespace folded
    assert all(s.text != "OK." for s in sentences)  # too short to say anything
    assert all(len(s.text) <= MAX_SENTENCE_CHARS for s in sentences)
    assert all(not s.text.startswith(" ") and not s.text.endswith(" ") for s in sentences)
    assert sum(len(s.text) for s in sentences if s.n == 1) < PASSAGE_CHARS  # the prompt's cut, no more
    assert [s.index for s in sentences if s.n == 1] == list(range(len([s for s in sentences if s.n == 1])))
    assert sentences[-1].answer() == "We use Redis 7 for the queue. [2]"


def test_choose_leads_with_the_best_and_packs_the_rest_within_the_budget():
    from trainer.extract import choose, lexical_scores, passage_sentences, render

    passages = [
        _passage("The shop is a Django app. Tests run with pytest -q. Lint is ruff.", 1),
        _passage("Deploys go out with make ship on Fridays. Staging is on Fly.", 2),
        _passage("Nothing here matters at all today.", 3),
    ]
    sentences = passage_sentences(passages)
    scores = lexical_scores("how do deploys go out to staging?", sentences)
    extract = choose(sentences, scores, passages, budget_chars=400)
    assert extract.lead.text == "Deploys go out with make ship on Fridays."
    lines = render(extract, passages, {n: n for n in extract.cited()})
    assert lines[0] == "Deploys go out with make ship on Fridays. [2]"
    # one project's excerpts: each group is labelled by its day alone (the prompt's header says more)
    assert lines[1:] and all(
        line.startswith(f"[{n}] (2026-01-0{n}) ") for n, line in zip(extract.groups, lines[1:], strict=True)
    )
    assert sum(len(line) + 1 for line in lines) <= 400
    assert extract.cited()[0] == 2 and list(extract.groups) == sorted(extract.groups)
    tight = choose(sentences, scores, passages, budget_chars=90)
    assert (
        tight.lead.n == 2 and sum(len(line) + 1 for line in render(tight, passages, {1: 1, 2: 2, 3: 3})) <= 90
    )
    assert choose([], [], passages, 400) is None
    flat = choose(sentences, scores, passages, budget_chars=400, lead=False)
    assert flat.lead is None and 2 in flat.groups


def test_retrieve_packing_and_the_judged_lead_weigh_the_ranking_against_the_words():
    # at a small budget a low-ranked excerpt's sentence with one more question word used to push out the top
    # hit's: in retrieve mode each place down the ranking now costs one shared word, and in a judged lead
    from trainer.extract import RANK_WEIGHT, choose, judge, lexical_scores, passage_sentences

    passages = [
        _passage("Deploys run from the main branch only.", 1),
        _passage("The linter is ruff, run before commits.", 2),
        _passage("Invoices are numbered per year.", 3),
        _passage("Staging deploys go out on Fridays with make ship.", 4),
    ]
    sentences = passage_sentences(passages)
    query = "how do staging deploys go out?"
    by_words = choose(sentences, lexical_scores(query, sentences), passages, 80, lead=False)
    assert list(by_words.groups) == [4]
    ranked = choose(sentences, lexical_scores(query, sentences, RANK_WEIGHT), passages, 60, lead=False)
    assert list(ranked.groups) == [1]
    roomy = choose(sentences, lexical_scores(query, sentences, RANK_WEIGHT), passages, 400, lead=False)
    assert {1, 4} <= set(roomy.groups)  # with room, the wordier one still comes
    # a judged memory's lead (its cited answer) weighs the ranking the same way; with room the other follows
    judged = judge(None, None, query, passages, 400, model_weight=0)
    assert judged.lead.n == 1 and 4 in judged.groups


def test_a_sentence_already_said_is_not_packed_again():
    # a memory and the session it came from often hold the same sentence: the budget holds it once, and the
    # room goes to what else the excerpts say
    from trainer.extract import choose, lexical_scores, passage_sentences

    passages = [
        _passage("Staging deploys go out with make ship. The staging host is on Fly.", 1),
        _passage("Staging deploys go out with make ship! Deploy staging from main only.", 2),
    ]
    sentences = passage_sentences(passages)
    scores = lexical_scores("how do staging deploys go out?", sentences)
    for lead in (True, False):
        extract = choose(sentences, scores, passages, budget_chars=400, lead=lead)
        chosen = [s.text for group in extract.groups.values() for s in group]
        chosen += [extract.lead.text] if extract.lead else []
        assert sum(t.startswith("Staging deploys go out") for t in chosen) == 1, chosen
        assert "Deploy staging from main only." in chosen and "The staging host is on Fly." in chosen
    # a sentence that adds words of its own is not a repeat
    wider = [
        _passage("Staging deploys go out with make ship.", 1),
        _passage("Staging deploys go out with make ship after the smoke tests pass on CI.", 2),
    ]
    sentences = passage_sentences(wider)
    extract = choose(sentences, lexical_scores("staging deploys", sentences), wider, 400, lead=False)
    assert sum(len(group) for group in extract.groups.values()) == 2


def test_the_model_judges_only_the_candidates_and_the_others_follow_by_their_words():
    from trainer.extract import candidates, judged_scores

    lexical = [3.0, 0.0, 2.0, 1.0]
    judged = candidates(lexical, limit=3)
    assert judged == [0, 2, 3]
    final = judged_scores(lexical, judged, model=[-3.0, -0.5, -2.0])  # the model prefers sentence 2 by far
    assert final[2] > final[0] > final[3]  # its clear preference outweighs one word of overlap
    assert final[3] > final[1]  # the sentence it did not judge comes last
    words_only = judged_scores(lexical, judged, model=[-3.0, -0.5, -2.0], model_weight=0.0)
    assert words_only[0] > words_only[2] > words_only[3]


def test_the_lead_goes_by_the_questions_words_and_the_model_orders_the_rest(tiny: Path):
    """The judged memory's lead (its cited answer) is the sentence with most of the question's words, whatever
    the adapter prefers; the adapter's scores order what follows it."""
    from trainer.extract import choose, judge, lexical_scores, passage_sentences
    from trainer.generate import load_for_generation

    passages = [
        _passage("The shop is a Django app. Tests run with pytest -q. Lint is ruff.", 1),
        _passage("Deploys go out with make ship on Fridays. Staging is on Fly.", 2),
    ]
    sentences = passage_sentences(passages)
    lexical = lexical_scores("how do deploys go out to staging?", sentences)
    packing = [10.0 if s.text.startswith("Lint") else 0.0 for s in sentences]  # a judge fond of the lint line
    extract = choose(sentences, packing, passages, budget_chars=400, lead_scores=lexical)
    assert extract.lead.text == "Deploys go out with make ship on Fridays."
    assert extract.groups[1][0].text == "The shop is a Django app."  # excerpt order inside a group
    assert choose(sentences, packing, passages, budget_chars=400).lead.text == "Lint is ruff."  # without it

    model, tokenizer = load_for_generation(str(tiny), cache_dir=tiny.parent / "cache", adapter_dir=None)
    judged = judge(model, tokenizer, "how do deploys go out to staging?", passages, 400)
    assert judged.lead.text == "Deploys go out with make ship on Fridays."


def test_a_judge_shown_the_first_excerpts_still_packs_every_hits_sentences(tiny: Path):
    """On a CPU the prompt holds only the best-ranked excerpts (`shown`): the model judges their sentences,
    and what budget is left goes to the other hits' sentences, by the question's words as retrieve mode packs
    them, rather than to nothing."""
    from trainer.extract import judge
    from trainer.generate import load_for_generation

    passages = [
        _passage("Deploys go out with make ship on Fridays.", 1),
        _passage("The shop is a Django app.", 2),
        _passage("Staging deploys need the VPN, then make ship staging.", 3),
    ]
    query = "how do deploys go out to staging?"
    for model, tokenizer in [
        (None, None),
        load_for_generation(str(tiny), cache_dir=tiny.parent / "cache", adapter_dir=None),
    ]:
        weight = 0 if model is None else None
        extract = judge(model, tokenizer, query, passages, 400, model_weight=weight, shown=1)
        assert extract.lead.n == 1
        assert 3 in extract.groups  # beyond the prompt, still in the memory
        tight = judge(model, tokenizer, query, passages, 130, model_weight=weight, shown=1)
        assert tight.lead.n == 1
        assert list(tight.groups) == [3]  # the budget's rest: the unshown hit with the question's words


def test_a_speakers_name_counts_less_than_the_topic_so_greetings_do_not_lead():
    """In a conversation every greeting names the people asked about: "Thanks so much, Melanie!" shares two
    of the question's words and says nothing of its topic."""
    from trainer.extract import lexical_scores, pack, passage_sentences

    passages = [
        _passage("In chat: Caroline: Thanks so much, Melanie!", 1),
        _passage("Caroline: I want to adopt a child soon.", 2),
        _passage("Melanie: See you soon, Caroline!", 3),
    ]
    sentences = passage_sentences(passages)
    question = "What does Melanie say about Caroline's wish to adopt a child?"
    greeting, topic, bye = lexical_scores(question, sentences)
    assert topic > greeting and topic > bye
    # a name that is no speaker of the excerpts is a topic word like any other
    (named,) = lexical_scores(
        "Which beagle did Scout chase?", passage_sentences([_passage("Scout chased it.", 1)])
    )
    assert named > 0.9  # a whole word, less the rank's hundredth
    # retrieve mode's packing, at a budget for one line, keeps the topic's
    extract = pack(question, passages, 70)
    assert [s.text for group in extract.groups.values() for s in group] == [
        "Caroline: I want to adopt a child soon."
    ]


def test_the_lead_weighs_meaning_where_the_question_shares_few_words_with_any_excerpt():
    # "managed" and "repo" are in no excerpt: by words and rank alone the top hit's sentence sharing "python"
    # leads; closeness in meaning (an embedding cosine in recall) brings the answer forward, and without a
    # closeness function the lead is as before
    from trainer.extract import judge, lead_scores, passage_sentences

    passages = [
        _passage("The Python image is pinned to 3.12-slim in the Dockerfile.", 1),
        _passage("Dependencies are declared in pyproject.toml and locked with Poetry.", 2),
        _passage("Invoices are numbered per year.", 3),
    ]
    query = "How are Python dependencies managed in this repo?"
    meaning = {"Dependencies are declared in pyproject.toml and locked with Poetry.": 0.8}

    def closeness(q: str, texts: list[str]) -> list[float]:
        assert q == query
        return [meaning.get(t, 0.1) for t in texts]

    assert judge(None, None, query, passages, 400, model_weight=0).lead.n == 1
    assert judge(None, None, query, passages, 400, model_weight=0, closeness=closeness).lead.n == 2
    sentences = passage_sentences(passages)
    assert lead_scores(query, sentences, [1.0, 0.0], None) == [1.0, 0.0]  # words and rank alone
    assert len(lead_scores(query, sentences[:1], [1.0], closeness)) == 1


def test_the_adapter_also_judges_the_sentences_nearest_in_meaning_that_words_leave_out():
    from trainer.extract import MAX_CANDIDATES, Sentence, judged_candidates

    sentences = [Sentence(1, i, f"sentence {i}") for i in range(12)]
    seen = [float(12 - i) for i in range(12)]  # by the question's words: 0 best, 11 worst
    seen[10] = float("-inf")  # in an excerpt the prompt does not show
    near = {"sentence 10": 0.95, "sentence 11": 0.9, "sentence 9": 0.5, "sentence 3": 0.99}

    def closeness(q: str, texts: list[str]) -> list[float]:
        return [near.get(t, 0.0) for t in texts]

    by_words = list(range(MAX_CANDIDATES))
    assert judged_candidates("q", sentences, seen) == by_words
    assert judged_candidates("q", sentences, seen, closeness, meaning=1) == [*by_words, 11]
    assert judged_candidates("q", sentences, seen, closeness, meaning=2) == [*by_words, 11, 9]
    assert judged_candidates("q", sentences, seen, closeness, meaning=0) == by_words
    # recall's closeness without its embedding model is the same for every text: no pick by meaning
    assert judged_candidates("q", sentences, seen, lambda q, texts: [0.0] * len(texts), meaning=2) == by_words


def test_a_sentence_near_in_meaning_reaches_the_memory_only_through_the_adapter(tiny: Path):
    """ "Rollbacks take one command" shares no word with the question: words alone pack the excerpts'
    other sentences first and the budget runs out before it. Judged by the adapter it goes in with the
    other candidates; with the model left out (weight 0) or without an embedding model, it stays out."""
    from trainer.extract import judge
    from trainer.generate import load_for_generation

    steps = [
        "Staging deploys run make ship-a on Mondays.",
        "Staging deploys run make ship-b on Tuesdays.",
        "Staging deploys run make ship-c at noon.",
        "Staging deploys run make ship-d after lunch.",
        "Staging deploys wait for the green build.",
        "Staging deploys post to the ops channel.",
        "Staging deploys keep two old releases.",
        "Staging deploys tag the commit first.",
    ]
    rollback = "Rollbacks take one command: fly releases rollback."
    passages = [
        _passage(" ".join(steps[:4]), 1),
        _passage(" ".join(steps[4:]), 2),
        _passage(
            "Staging deploys are logged. Staging deploys are quick. Staging deploys are safe. "
            f"Staging deploys are cheap. {rollback}",
            3,
        ),
    ]
    query = "how do deploys go out to staging?"

    def closeness(q: str, texts: list[str]) -> list[float]:
        return [0.9 if t == rollback else 0.1 for t in texts]

    def shown(extract) -> list[str]:
        return [extract.lead.text] + [s.text for group in extract.groups.values() for s in group]

    model, tokenizer = load_for_generation(str(tiny), cache_dir=tiny.parent / "cache", adapter_dir=None)
    assert rollback in shown(judge(model, tokenizer, query, passages, 560, closeness=closeness))
    assert rollback not in shown(judge(model, tokenizer, query, passages, 560))
    assert rollback not in shown(judge(None, None, query, passages, 560, model_weight=0, closeness=closeness))
    assert rollback in shown(judge(None, None, query, passages, 800, model_weight=0, closeness=closeness))


def test_a_recap_leads_with_the_first_excerpts_opening_and_keeps_each_excerpt_in_order():
    # "what did we work on on February 3?" names no subject: its few words ("february") would lead with a
    # stray sentence of a summary; the window's summaries answer as they are, and no model is needed
    from trainer.extract import judge

    passages = [
        _passage(
            "Session of 2026-02-03 in kiln: asked to move kiln to Go 1.23. Go 1.22 stops getting fixes in "
            "February. Outcome: golangci-lint bumped to v1.61.0.",
            1,
        ),
        _passage("Session of 2026-02-03 in blog: asked to fix the RSS feed. Outcome: the feed validates.", 2),
    ]
    query = "What did we work on on February 3?"

    def closeness(q: str, texts: list[str]) -> list[float]:  # the month's sentence is nearest in meaning
        return [0.9 if "February" in t else 0.2 for t in texts]

    stray = judge(None, None, query, passages, 400, model_weight=0, closeness=closeness).lead
    assert stray.text == "Go 1.22 stops getting fixes in February."
    recap = judge(None, None, query, passages, 400, closeness=closeness, recap=True)  # no model is asked
    assert recap.lead.text == "Session of 2026-02-03 in kiln: asked to move kiln to Go 1.23."
    assert [s.text for s in recap.groups[1]] == [
        "Go 1.22 stops getting fixes in February.",
        "Outcome: golangci-lint bumped to v1.61.0.",
    ]
    assert recap.groups[2][0].text.startswith("Session of 2026-02-03 in blog")
