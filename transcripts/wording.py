"""Words, identifiers and overlap: the text measures that extraction, training data and evaluation share.

jaccard(words_a, words_b)            # one definition of set overlap for the whole project
identifiers("run `pytest -q` in src/app.py")  # {"pytest -q", "src/app.py", ...}: what must be kept exactly
mean_pairwise_jaccard(texts)         # how alike a set of texts is (the "parrot" statistic)
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from itertools import combinations

MAX_PAIRS = 2000  # pairs sampled for the mean pairwise Jaccard when there are more

_CITATION = re.compile(r"\[\d{1,3}\]")
_SUMMARY_IN = re.compile(r"(Session of \S+) in ([^:]+):")  # a session summary's opening (transcripts.summary)
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


def project_name(project: str | None, default: str = "") -> str:
    """A project's short name: the last part of its folder ("/home/ana/src/shop/" -> "shop"), else `default`."""
    return (project or "").rstrip("/").rsplit("/", 1)[-1] or default


def drop_project_opening(text: str, project: str | None) -> str:
    """A stored memory's `text` without its own project's name where the memory opens with it ("In shop: …",
    "In shop, …", "Session of 2026-01-13 in shop: …" -> "…", "…", "Session of 2026-01-13: …"). Recall within
    the project shows it so (every line would repeat the name, and eight of them cost a 200-token budget a
    sentence's room), and the training data shows the model the same."""
    name = project_name(project)
    if not name:
        return text
    opening = f"In {name}"
    if text.startswith(opening) and text[len(opening) : len(opening) + 2] in (": ", ", "):
        return text[len(opening) + 2 :]
    summary = _SUMMARY_IN.match(text)
    if summary and summary.group(2) == name:
        return f"{summary.group(1)}:{text[summary.end() :]}"
    return text


def strip_citations(text: str) -> str:
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
    text = strip_citations(text)
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


def word_set(text: str) -> frozenset[str]:
    """The lower-cased words of `text`, citations left out."""
    return frozenset(_WORDS.findall(strip_citations(text).lower()))


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
    sets = [word_set(t) for t in texts]
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
