"""Evaluation of a memory model on held-out SFT pairs, against a retrieval-only baseline.

    result = evaluate(model, tokenizer, pairs, limit=200)   # pairs: held-out rows of the SFT set
    result["model"]["specificity"], result["baseline"]["specificity"]

The metrics ask what the research prototype could not answer from the loss alone: does a memory keep the
gold memory's keywords (`keyword_coverage`) and its exact names of files, functions and commands
(`specificity`), does it cite the excerpts the fact came from (`citation_accuracy`, `citation_rate`), does it
abstain exactly when nothing relevant was retrieved (`abstain_accuracy`, `false_abstain_rate`), and do
memories differ from one another (`diversity`: mean pairwise Jaccard of their words, lower is more diverse).
The baseline answers with the top-ranked excerpt itself: a trained model earns its place only by beating it.
Everything except `evaluate` is a pure function over strings and dicts.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

from trainer.prompts import ABSTAIN, citations, is_abstention

MAX_PAIRS = 2000  # pairs sampled for the mean pairwise Jaccard when there are more
BASELINE_CHARS = 300  # characters of the top excerpt the retrieval-only baseline answers with
N_EXAMPLES = 5  # example rows kept for the report
METRICS = (  # the per-pair metrics averaged by `score`, in report order
    "keyword_coverage",
    "specificity",
    "citation_accuracy",
)

_CITATION = re.compile(r"\[\d{1,3}\]")
_BACKTICKED = re.compile(r"`([^`\n]+)`")
_FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")
# Path candidates: anchored (/x, ./x, ../x, ~/x) or slash-joined (a/b, a/); `_is_path` then keeps the ones
# that do not read as prose ("and/or", "input/output", "10/11").
_PATH = re.compile(r"(?<![\w/.~:-])(?:(?:~|\.{1,2})?/[\w.-]+(?:/[\w.-]+)*/?|[\w.-]+(?:/[\w.-]+)*/[\w.-]*)")
_URL = re.compile(r"https?://[^\s`'\"<>()\[\]]+")
# Dotted names and code words inside a path or a longer dotted name belong to it, not beside it.
_DOTTED = re.compile(r"(?<![\w./-])[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)+(?![\w/-])")
_WORD = re.compile(r"(?<![\w./-])[A-Za-z_][A-Za-z0-9_]*(?:\(\))?(?![\w/-]|\.\w)")
_CALL = re.compile(r"(?<![\w.])([A-Za-z_][\w.]*)\((?!s\)|es\))[^()\n]{0,80}\)")
_EXTENSION = re.compile(r"\.[A-Za-z][\w]{0,7}$")
_WORDS = re.compile(r"\w+")
_EMPHASIS = re.compile(r"_[A-Za-z0-9]+_")
_TRAILING = ".,;:!?'\""


def _strip_citations(text: str) -> str:
    return _CITATION.sub(" ", text)


def _is_path(token: str) -> bool:
    core = token.rstrip("/")
    if not any(c.isalpha() for c in core):
        return False
    return (
        token.startswith(("/", "./", "../", "~/"))
        or token.endswith("/")
        or core.count("/") >= 2
        or bool(_EXTENSION.search(core.rsplit("/", 1)[-1]))
    )


def _is_code_word(word: str) -> bool:
    """snake_case, camelCase, PascalCase with an inner capital, or a call `name()`."""
    if word.endswith("()"):
        return True
    if "_" in word:  # but not markdown emphasis, `_word_`
        return any(c.isalpha() for c in word) and not _EMPHASIS.fullmatch(word)
    # An inner capital in a word that also has lower case: `loadModel`, `PeftModel`, `SQLite`; not `API`.
    return any(c.islower() for c in word) and any(c.isupper() for c in word[1:])


def identifiers(text: str) -> set[str]:
    """The specific names in a text, lower-cased: what a useful memory must keep exactly.

    The rule, applied to the text with citation markers `[n]` removed:
    - a backticked span, whole, punctuation kept (`pytest -q tests/`, `pip install -e .`), besides what
      the rules below find inside it;
    - a URL (`https://...`), whole;
    - a path: slash-joined segments that are anchored (`/work/app`, `./run.sh`, `~/x`), end in a slash
      (`tests/`), have two or more slashes, or end in a file extension (`src/app.py`);
    - a dotted name: letters/underscore-led segments joined by dots (`os.path.join`, `pyproject.toml`),
      unless every segment is a single letter (`e.g`);
    - a code word: snake_case (`load_model`, `HF_HUB_OFFLINE`), camelCase or PascalCase with an inner capital
      and some lower case (`loadModel`, `PeftModel`; not `API`), or any name called with parentheses
      (`main()`, `run(x)`; not the plural `file(s)`);
    - a long flag (`--max-steps`).
    Outside backticks, trailing sentence punctuation is dropped; a call's parentheses are never kept
    (`main()` → `main`), so the same name written two ways is one identifier. Whitespace is collapsed.
    Product names written in camel case (`GitHub`, `SQLite`) count too: they are specifics a memory should
    keep.
    """
    text = _strip_citations(text)
    found: set[str] = set()

    def add(token: str, *, verbatim: bool = False) -> None:
        token = (token.strip() if verbatim else token.strip().rstrip(_TRAILING)).removesuffix("()")
        if token:
            found.add(" ".join(token.lower().split()))

    for span in _BACKTICKED.findall(text):
        add(span, verbatim=True)  # a command's last `.` is part of it
    for match in _URL.finditer(text):
        add(match.group(0))
    text = _URL.sub(" ", text)  # a URL's host and path are part of it, not names of their own
    for match in _PATH.finditer(text):
        token = match.group(0).rstrip(_TRAILING)
        if _is_path(token):
            add(token)
    for match in _DOTTED.finditer(text):
        token = match.group(0).rstrip(_TRAILING + "-")
        if "." in token and any(len(part) > 1 for part in token.split(".")):
            add(token)
    for match in _CALL.finditer(text):
        add(match.group(1))
    for match in _WORD.finditer(text):
        if _is_code_word(match.group(0)):
            add(match.group(0))
    for match in _FLAG.finditer(text):
        add(match.group(0))
    return found


def _contains(text: str, phrase: str) -> bool:
    """`phrase` occurs in `text` (both lower-cased already) with no word character directly around it."""
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


def keyword_coverage(text: str, keywords: Iterable[str]) -> float | None:
    """Share of `keywords` present in `text`, case-insensitively and as whole words; None without keywords."""
    wanted = {" ".join(k.lower().split()) for k in keywords if k and k.strip()}
    if not wanted:
        return None
    low = " ".join(_strip_citations(text).lower().split())
    return sum(_contains(low, k) for k in wanted) / len(wanted)


def specificity(text: str, gold_identifiers: Iterable[str]) -> float | None:
    """Share of the gold memory's identifiers that `text` contains; None when the gold has none.

    An identifier counts as present when it occurs in the lower-cased text with no word character directly
    before or after it, so `app.py` is present in "edited src/app.py" but `app` is not present in "apps".
    """
    gold = {" ".join(g.lower().split()).removesuffix("()") for g in gold_identifiers if g and g.strip()}
    if not gold:
        return None
    low = " ".join(_strip_citations(text).lower().split())
    return sum(_contains(low, g) for g in gold) / len(gold)


def _word_set(text: str) -> frozenset[str]:
    return frozenset(_WORDS.findall(_strip_citations(text).lower()))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b|; two empty sets are identical (1.0)."""
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def mean_pairwise_jaccard(texts: Sequence[str], *, max_pairs: int = MAX_PAIRS, seed: int = 0) -> float | None:
    """Mean Jaccard similarity of the word sets of all pairs of texts; None for fewer than two texts.

    Words are lower-cased runs of letters, digits and underscores, citation markers removed. Above
    `max_pairs` pairs, a fixed-seed sample of `max_pairs` distinct pairs stands in for all of them.
    """
    n = len(texts)
    if n < 2:
        return None
    sets = [_word_set(t) for t in texts]
    if n * (n - 1) // 2 <= max_pairs:
        pairs: Iterable[tuple[int, int]] = combinations(range(n), 2)
    else:
        rng = random.Random(seed)
        chosen: set[tuple[int, int]] = set()
        while len(chosen) < max_pairs:
            i, j = rng.sample(range(n), 2)
            chosen.add((min(i, j), max(i, j)))
        pairs = sorted(chosen)
    values = [jaccard(sets[i], sets[j]) for i, j in pairs]
    return sum(values) / len(values)


def citation_accuracy(text: str, gold: Iterable[int], n_passages: int) -> float | None:
    """Share of the excerpts `text` cites that are gold sources; None when it cites none.

    Citations are read with `prompts.citations`, so a number with no excerpt behind it ([0], [9] of 3) is
    not a citation at all: recall drops it from the memory the agent sees.
    """
    cited, _ = citations(text, n_passages)
    if not cited:
        return None
    gold_set = set(gold)
    return sum(n in gold_set for n in cited) / len(cited)


def baseline_memory(pair: dict[str, Any]) -> str:
    """Retrieval-only recall: the top-ranked excerpt itself, cut to ~300 characters, citing [1]; else ABSTAIN."""
    passages = pair.get("passages") or []
    if not passages:
        return ABSTAIN
    top = min(passages, key=lambda p: p.get("n", 1))
    text = " ".join(str(top.get("text", "")).split())
    if len(text) > BASELINE_CHARS:
        cut = text[: BASELINE_CHARS + 1]
        space = cut.rfind(" ")
        text = cut[:space] if space > 0 else text[:BASELINE_CHARS]
    return f"{text} [1]"


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _gold_identifiers(pair: dict[str, Any]) -> Iterable[str]:
    given = pair.get("identifiers")
    return given if given is not None else identifiers(pair.get("target", ""))


def _summary(outputs: Sequence[str], pairs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    per_pair: dict[str, list[float | None]] = {name: [] for name in METRICS}
    for out, pair in zip(outputs, pairs, strict=True):
        abstain = bool(pair.get("abstain"))
        # Coverage and specificity measure how much of a gold memory survives: an abstain pair has none.
        per_pair["keyword_coverage"].append(
            None if abstain else keyword_coverage(out, pair.get("keywords") or [])
        )
        per_pair["specificity"].append(None if abstain else specificity(out, _gold_identifiers(pair)))
        n_passages = len(pair.get("passages") or [])
        per_pair["citation_accuracy"].append(citation_accuracy(out, pair.get("gold") or [], n_passages))
    answered = [(o, p) for o, p in zip(outputs, pairs, strict=True) if not p.get("abstain")]
    abstained = [o for o, p in zip(outputs, pairs, strict=True) if p.get("abstain")]
    return {
        "count": len(outputs),
        **{name: _mean(values) for name, values in per_pair.items()},
        # A model that never cites would show no citation_accuracy at all: this says how often it cites.
        "citation_rate": _mean(
            float(bool(citations(o, len(p.get("passages") or []))[0])) for o, p in answered
        ),
        "diversity": mean_pairwise_jaccard([o for o, _ in answered]),
        "abstain_accuracy": _mean(float(is_abstention(o)) for o in abstained),
        "false_abstain_rate": _mean(float(is_abstention(o)) for o, _ in answered),
        "mean_words": _mean(float(len(o.split())) for o in outputs),
    }


def pick_examples(pairs: Sequence[dict[str, Any]], k: int = N_EXAMPLES) -> list[int]:
    """Indices of `k` pairs for a report: one per category first (in order of appearance), then the next ones."""
    firsts: dict[str, int] = {}
    for i, pair in enumerate(pairs):
        firsts.setdefault(str(pair.get("category", "")), i)
    chosen = list(firsts.values())[:k]
    chosen += [i for i in range(len(pairs)) if i not in chosen][: k - len(chosen)]
    return sorted(chosen)


def score(outputs: Sequence[str], pairs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The metrics of `outputs` (one per pair, in order), overall and per category, with a few example rows.

    Each metric is a mean over the pairs where it is defined (None where it is defined for none):
    `keyword_coverage` and `specificity` over non-abstain pairs with keywords / gold identifiers,
    `citation_accuracy` over outputs that cite, `citation_rate` and `false_abstain_rate` over non-abstain
    pairs, `abstain_accuracy` over abstain pairs, `diversity` over the outputs of non-abstain pairs.
    """
    if len(outputs) != len(pairs):
        raise ValueError(f"{len(outputs)} outputs for {len(pairs)} pairs: pass one output per pair")
    result = _summary(outputs, pairs)
    by_category: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs):
        by_category.setdefault(str(pair.get("category", "")), []).append(i)
    result["by_category"] = {
        category: _summary([outputs[i] for i in idx], [pairs[i] for i in idx])
        for category, idx in sorted(by_category.items())
    }
    result["examples"] = [
        {"query": pairs[i].get("query", ""), "target": pairs[i].get("target", ""), "output": outputs[i]}
        for i in pick_examples(pairs)
    ]
    return result


def evaluate(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[dict[str, Any]],
    *,
    max_new_tokens: int = 128,
    limit: int | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Generate a memory for each pair's recall prompt (greedy) and score it beside the retrieval-only baseline."""
    from trainer.generate import generate_memories

    pairs = list(pairs[:limit] if limit is not None else pairs)
    started = time.perf_counter()
    outputs = generate_memories(
        model, tokenizer, [p["messages"] for p in pairs], max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    generation_s = time.perf_counter() - started
    baseline = [baseline_memory(p) for p in pairs]
    return {
        "model": score(outputs, pairs),
        "baseline": score(baseline, pairs),
        "n": len(pairs),
        "generation_s": round(generation_s, 3),
        "examples": [
            {
                "id": pairs[i].get("id"),
                "category": pairs[i].get("category"),
                "query": pairs[i].get("query", ""),
                "target": pairs[i].get("target", ""),
                "output": outputs[i],
                "baseline": baseline[i],
            }
            for i in pick_examples(pairs)
        ],
    }
