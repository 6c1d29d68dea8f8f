"""Grounded memories: the adapter chooses which sentences of the retrieved excerpts answer the question.

    extract = judge(model, tokenizer, query, passages, budget_chars=700)   # None: it abstained
    lines = render(extract, passages, {n: n for n in extract.cited()})     # the lead answer, then the rest

    extract = pack(query, passages, budget_chars=700)  # without a model: retrieve mode's packing

A small model writing freely restates the top excerpt, invents, or cites the wrong number (the research
prototype's finding, and ours: citation accuracy 0.80, no gain over the excerpts at 200 tokens). Here the
trained adapter does what it learned in SFT, answering the recall prompt with an excerpt's sentence and its
citation, but as a judge rather than a writer: every candidate sentence is scored as the adapter's answer
(`trainer.generate.score_answers`, one prompt pass for all), and the memory is built from the best ones.
Every word of it is in a retrieved excerpt, and every citation names the excerpt the sentence came from.

The candidates are the sentences holding most of the question's words and, where recall has an embedding
model, a few more nearest to it in meaning that share few of its words: the adapter decides whether those
answer. The score adds the adapter's judgement to the question's own words: each is standardised over the
candidates, so neither scale dominates. The memory leads with the sentence holding most of the question's
words, one word less per place its excerpt ranks lower, weighed against its closeness in meaning to the
question where recall has an embedding model (the answer, cited: on both benchmarks that pick came from an
evidence session more often than the adapter's), then packs the best-scored sentences, grouped under
their excerpts' numbers, into the rest of the budget: at a small budget that holds far more of what the
excerpts say about the question than whole excerpts in rank order.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from trainer.prompts import ABSTAIN, PASSAGE_CHARS, Passage, excerpt_labels, recall_messages
from transcripts.conversation import capitalised_words, content_words, speaker_and_words
from transcripts.wording import word_set

MAX_SENTENCE_CHARS = 220  # a longer sentence (a wrapped log line, a list run together) is cut at word ends
MIN_SENTENCE_CHARS = 12  # shorter pieces ("Done.", "OK") say nothing on their own
MAX_CANDIDATES = 8  # sentences the model judges by the question's words (8 beat 16: docs)
MODEL_WEIGHT = 1.0  # the adapter's standardised score against the question words' (1: equal say)
DECODINGS = ("extract", "write")  # how a generated recall uses the adapter: judge sentences, or write freely
REPEAT_SHARE = 0.9  # a sentence whose words are this share of one already chosen adds nothing: skipped
# Retrieve mode packs, and a judged memory picks its lead, by the question's words less this much per excerpt
# rank: one place down costs one shared word. With rank only breaking ties, a low-ranked excerpt's wordier
# sentence pushed out the better-ranked ones (docs/benchmarks.md, 200 tokens: retrieve coding 0.771 -> 0.802,
# LoCoMo 0.503 -> 0.520; the lead's citation accuracy 0.907 -> 0.920, 0.680 -> 0.699). The judge's packing
# keeps words first: ranked there, it packed worse.
RANK_WEIGHT = 1.0
NAME_WEIGHT = 0.25  # a speaker's name in a sentence, against a topic word's 1 (`lexical_scores`)
# The lead (the cited answer) among the best LEAD_CANDIDATES sentences by words less rank, each scored by those
# and by its closeness in meaning to the question (an embedding cosine, where recall has one), standardised,
# with this weight on meaning: with words alone, a question sharing only a word or two with every excerpt
# ("How are Python dependencies managed?") took the top hit's first sentence, often from another session
# (docs/benchmarks.md: the lead's citation accuracy, coding 0.907 -> 0.940, LoCoMo 0.706 -> 0.725).
LEAD_CANDIDATES = 8
LEAD_MEANING = 1.0
# The adapter also judges this many sentences nearest the question in meaning among those sharing fewer of
# its words ("the largest image" -> "reject anything over 50 megapixels"): words alone never put them among
# the candidates, and packed by closeness alone they cost the coding set more than they brought (session 22).
# Judged, they go in only where the adapter scores them as answers (docs/benchmarks.md, session 23).
MEANING_CANDIDATES = 4
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])")


@dataclass(frozen=True)
class Sentence:
    n: int  # the excerpt's number in the recall prompt (1-based)
    index: int  # the sentence's place in its excerpt
    text: str

    def answer(self) -> str:
        """The sentence as the adapter's recall answer: the text citing its excerpt."""
        return f"{self.text} [{self.n}]"


@dataclass
class Extract:
    """A grounded memory: the lead sentence (the answer, when there is one), then the other chosen sentences
    grouped under their excerpts' numbers, in rank order, each group in the excerpt's own order."""

    lead: Sentence | None
    groups: dict[int, list[Sentence]]

    def cited(self) -> list[int]:
        """The excerpt numbers it shows: the lead's first, then the groups' in rank order."""
        return list(dict.fromkeys([*([self.lead.n] if self.lead else []), *sorted(self.groups)]))


def passage_sentences(passages: Sequence[Passage]) -> list[Sentence]:
    """The sentences of each excerpt as the recall prompt shows it (whitespace folded, cut at PASSAGE_CHARS)."""
    out: list[Sentence] = []
    for n, p in enumerate(passages, 1):
        text = " ".join(p.text.split())[: PASSAGE_CHARS - 1]
        index = 0
        for part in _SPLIT.split(text):
            for piece in _cut(part):
                if len(piece) >= MIN_SENTENCE_CHARS:
                    out.append(Sentence(n, index, piece))
                    index += 1
    return out


def _cut(text: str) -> list[str]:
    pieces = []
    while len(text) > MAX_SENTENCE_CHARS:
        at = text.rfind(" ", 0, MAX_SENTENCE_CHARS)
        at = at if at > MAX_SENTENCE_CHARS // 3 else MAX_SENTENCE_CHARS
        pieces.append(text[:at].strip())
        text = text[at:].strip()
    return [*pieces, text]


def lexical_scores(query: str, sentences: Sequence[Sentence], rank_weight: float = 0.01) -> list[float]:
    """The question's content words each sentence holds, less `rank_weight` per place of its excerpt in the
    ranking (the default only breaks ties: among equals, the better-ranked excerpt first). The name of a
    person the question asks about who speaks in the excerpts counts `NAME_WEIGHT`: in a conversation every
    greeting and thanks names them ("Thanks, Melanie!"), and who said a line is its label's business."""
    asked = content_words(query)
    people = asked & _speakers(query, sentences)
    topic = asked - people
    return [
        len(words & topic) + NAME_WEIGHT * len(words & people) - rank_weight * s.n - 0.0001 * s.index
        for s, words in ((s, content_words(s.text)) for s in sentences)
    ]


def _speakers(query: str, sentences: Sequence[Sentence]) -> set[str]:
    """The excerpts' speakers (the labels their first sentences open with) whom the question names as a
    name, capitalised ("Melanie", "Caroline's"), lowercased as `content_words` has them."""
    named = {w.lower() for w in capitalised_words(query)}
    labels = set()
    for s in sentences:
        if s.index == 0:
            label, _ = speaker_and_words(s.text)
            if label and label.lower() in named:
                labels.add(label.lower())
    return labels


def candidates(lexical: Sequence[float], limit: int | None = None) -> list[int]:
    """Indices of the sentences worth the model's time: the `limit` (default `MAX_CANDIDATES`) best by the
    question's words."""
    return sorted(range(len(lexical)), key=lambda i: -lexical[i])[: limit or MAX_CANDIDATES]


def judged_candidates(
    query: str,
    sentences: Sequence[Sentence],
    seen: Sequence[float],
    closeness: Callable[[str, list[str]], Sequence[float]] | None = None,
    meaning: int | None = None,
) -> list[int]:
    """Indices of the sentences the adapter judges: the best by the question's words (`seen`, -inf for a
    sentence its prompt does not show), then, given `closeness`, the `meaning` (default `MEANING_CANDIDATES`)
    others nearest to `query` in meaning, where it tells them apart."""
    judged = [i for i in candidates(seen) if seen[i] != float("-inf")]
    extra = MEANING_CANDIDATES if meaning is None else meaning
    rest = [i for i, v in enumerate(seen) if v != float("-inf") and i not in judged]
    if closeness is None or not extra or not rest:
        return judged
    near = list(closeness(query, [sentences[i].text for i in rest]))
    if max(near) == min(near):
        return judged  # meaning unknown (no embedding model could run): nothing tells them apart
    return judged + [rest[j] for j in sorted(range(len(rest)), key=lambda j: -near[j])[:extra]]


def judged_scores(
    lexical: Sequence[float],
    judged: Sequence[int],
    model: Sequence[float],
    model_weight: float = 1.0,
    rest: Sequence[float] | None = None,
) -> list[float]:
    """Every sentence's final score: the judged candidates (indices `judged`, with the adapter's `model`
    scores) by the question-word overlap plus the adapter's score, each standardised over the candidates;
    after them, the sentences the model did not judge, by their words (or by `rest`, where given)."""
    final = [v - 1e6 for v in (lexical if rest is None else rest)]
    lex = standardised([lexical[i] for i in judged])
    for i, a, b in zip(judged, lex, standardised(model), strict=True):
        final[i] = a + model_weight * b
    return final


def lead_scores(
    query: str,
    sentences: Sequence[Sentence],
    ranked: Sequence[float],
    closeness: Callable[[str, list[str]], Sequence[float]] | None,
) -> list[float]:
    """Scores to pick the lead by: `ranked` (the question's words less rank) alone without `closeness`;
    with it, the best LEAD_CANDIDATES by `ranked`, each by its standardised `ranked` plus LEAD_MEANING times
    its standardised closeness to `query` (`closeness(query, texts)`, one value per text), ahead of the rest."""
    if closeness is None or len(sentences) < 2:
        return list(ranked)
    top = candidates(ranked, LEAD_CANDIDATES)
    near = list(closeness(query, [sentences[i].text for i in top]))
    out = [v - 1e6 for v in ranked]
    for i, a, b in zip(top, standardised([ranked[i] for i in top]), standardised(near), strict=True):
        out[i] = a + LEAD_MEANING * b
    return out


def standardised(values: Sequence[float]) -> list[float]:
    """`values` less their mean, over their spread (a -inf: far below every other; fewer than two: 0)."""
    finite = [v for v in values if v != float("-inf")]
    if len(finite) < 2:
        return [0.0 if v != float("-inf") else -1e9 for v in values]
    mean, spread = statistics.fmean(finite), statistics.pstdev(finite) or 1.0
    return [(v - mean) / spread if v != float("-inf") else -1e9 for v in values]


def choose(
    sentences: Sequence[Sentence],
    scores: Sequence[float],
    passages: Sequence[Passage],
    budget_chars: int,
    *,
    lead: bool = True,
    lead_scores: Sequence[float] | None = None,
) -> Extract | None:
    """The best-scored sentence as the lead (with `lead`; by `lead_scores` where given, else by `scores`),
    then the next best while they fit in `budget_chars` as `[n] (label) sentence … sentence` lines, each
    excerpt's label (`prompts.excerpt_labels`) counted once. The lead always goes in, cut to the budget if
    it must be. None without sentences."""
    if not sentences:
        return None
    order = sorted(range(len(sentences)), key=lambda i: -scores[i])
    first = None
    used = 0
    if lead:
        by = lead_scores if lead_scores is not None else scores
        best = sentences[order.pop(order.index(max(order, key=lambda i: by[i])))]
        room = max(budget_chars - len(f" [{best.n}]") - 1, MIN_SENTENCE_CHARS)
        first = best if len(best.text) <= room else Sentence(best.n, best.index, best.text[: room - 1] + "…")
        used = len(first.answer()) + 1
    groups: dict[int, list[Sentence]] = {}
    labels = excerpt_labels(passages)
    said = [word_set(first.text)] if first else []
    for i in order:
        s = sentences[i]
        header = 0 if s.n in groups else len(f"[{s.n}] ({labels[s.n - 1]}) ") + 1
        cost = header + len(s.text) + len(" … ")
        if used + cost > budget_chars:
            continue
        words = word_set(s.text)
        if any(len(words & w) >= REPEAT_SHARE * len(words) for w in said):
            continue  # a memory and the session it came from often say the same sentence: once is enough
        said.append(words)
        groups.setdefault(s.n, []).append(s)
        used += cost
    for chosen in groups.values():
        chosen.sort(key=lambda s: s.index)
    return Extract(first, dict(sorted(groups.items())))


def pack(query: str, passages: Sequence[Passage], budget_chars: int) -> Extract | None:
    """Retrieve mode's memory when the budget cannot hold every excerpt: the excerpts' sentences by the
    question's words they hold, less `RANK_WEIGHT` per place down the ranking, the most first,
    within `budget_chars`; no lead. None without sentences."""
    sentences = passage_sentences(passages)
    return choose(
        sentences, lexical_scores(query, sentences, RANK_WEIGHT), passages, budget_chars, lead=False
    )


def judge(
    model: Any,
    tokenizer: Any,
    query: str,
    passages: Sequence[Passage],
    budget_chars: int,
    *,
    abstain_margin: float | None = None,
    model_weight: float | None = None,
    shown: int | None = None,
    closeness: Callable[[str, list[str]], Sequence[float]] | None = None,
    recap: bool = False,
) -> Extract | None:
    """The adapter's grounded memory for `query` over `passages`, within `budget_chars`; None when it
    abstains: with an `abstain_margin`, when its abstention (`prompts.ABSTAIN`) outscores every candidate
    sentence by that much (None: never, nor is the abstention scored). `model_weight` (default
    `MODEL_WEIGHT`) is the adapter's say against the question's words; 0 leaves the model out entirely, which
    is how the benchmark measures what it adds. `shown`: the model's prompt holds only the first `shown`
    passages (a CPU's prompt budget, `prompts.fit_passages`) and judges only their sentences; the other
    passages' sentences still fill what budget is left, by the question's words less `RANK_WEIGHT` per place
    down the ranking, as retrieve mode packs them (None: every passage is in the prompt). `closeness`: how
    near in meaning each text is to the question, for the lead (`lead_scores`) and to pick the candidates
    the adapter judges beyond the question's words (`judged_candidates`; None: words and rank alone).
    `recap`: the question asks what happened in a period and names no subject ("what did we work on on
    February 3?"); the lead is then the best-ranked excerpt's opening (a session summary's "Session of … asked
    …"), since the question's few words (a month's name) would pick a stray sentence that holds them."""
    from trainer.generate import score_answers

    sentences = passage_sentences(passages)
    if not sentences:
        return None
    if recap and abstain_margin is None:
        # Nothing to judge: the window's excerpts (its sessions' summaries) answer as they are, in order.
        order = _in_order(sentences)
        return choose(sentences, order, passages, budget_chars, lead_scores=order)
    weight = MODEL_WEIGHT if model_weight is None else model_weight
    lexical = lexical_scores(query, sentences)
    ranked = lexical_scores(query, sentences, RANK_WEIGHT)
    shown = len(passages) if shown is None else max(1, min(shown, len(passages)))
    seen = [v if s.n <= shown else float("-inf") for s, v in zip(sentences, lexical, strict=True)]
    model_out = weight == 0 and abstain_margin is None
    # without the model, the candidates by their words alone: only the model may let one in by its meaning
    judged = judged_candidates(query, sentences, seen, None if model_out else closeness)
    if model_out:
        scores = [0.0] * len(judged)
    else:
        answers = [sentences[i].answer() for i in judged] + ([ABSTAIN] if abstain_margin is not None else [])
        scores = score_answers(model, tokenizer, recall_messages(query, list(passages[:shown])), answers)
        if abstain_margin is not None and scores.pop() > max(scores) + abstain_margin:
            return None
    # The lead (the cited answer) goes by the question's words, the ranking and, given `closeness`, meaning:
    # on both benchmarks the adapter's own pick was less often from an evidence session (docs/benchmarks.md);
    # it orders the rest, and what it did not judge follows as retrieve mode would pack it.
    final = judged_scores(lexical, judged, scores, weight, rest=ranked)
    lead = _in_order(sentences) if recap else lead_scores(query, sentences, ranked, closeness)
    return choose(sentences, final, passages, budget_chars, lead_scores=lead)


def _in_order(sentences: Sequence[Sentence]) -> list[float]:
    """Scores that keep the excerpts' order and each excerpt's own: the first excerpt's first sentence best."""
    return [-(s.n * 10_000 + s.index) for s in sentences]


def render(extract: Extract, passages: Sequence[Passage], numbers: dict[int, int]) -> list[str]:
    """The memory's lines, with excerpt numbers mapped through `numbers` (prompt number -> shown number)."""
    lines = [f"{extract.lead.text} [{numbers[extract.lead.n]}]"] if extract.lead else []
    labels = excerpt_labels(passages)
    for n, chosen in extract.groups.items():
        body = " … ".join(s.text for s in chosen)
        lines.append(f"[{numbers[n]}] ({labels[n - 1]}) {body}")
    return lines
