"""The benchmark's questions: each with its answer terms, evidence sessions and category, and how a text's
coverage of the answer terms is counted (whole words, case-insensitive). Shared by `bench/coding_memory.py`
(search and recall) and `bench/memory_model.py` (the trained model against retrieval alone)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

QUESTIONS = Path(__file__).with_name("questions.jsonl")
CATEGORIES = (
    "tech_stack",
    "architecture",
    "preference",
    "error_fix",
    "knowledge_update",
    "continuity",
    "synthesis",
    "unanswerable",
)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    project: str | None
    answer_terms: list[str]
    evidence: list[str]  # session labels (scenario.Spec.label)
    category: str


def load_questions(path: Path) -> list[Question]:
    return [Question(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def term_pattern(term: str) -> re.Pattern[str]:
    """A term as a whole word (or words), case-insensitive; any run of spaces matches a space."""
    body = r"\s+".join(re.escape(part) for part in term.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def coverage(terms: list[str], text: str) -> float:
    return sum(bool(term_pattern(t).search(text)) for t in terms) / len(terms) if terms else 0.0
