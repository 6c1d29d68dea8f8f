"""Self-study: the questions a developer would later ask about a session excerpt, with grounded answers.

    items = self_study(history.chunks(), covered=memories, per_session=12, per_chunk=2, rng=rng)
    items[0].attrs["question"]  # "What is `refund_partially` for in ledgerline?"
    items[0].text               # "In ledgerline (2026-01-30): We added `refund_partially` to the admin ..."

Training only on extracted memories starves a history whose sessions are mostly conversation: a month of
them gave too few pairs to train at all. Every session excerpt that names something specific (a command, a
path, a function, a technology, or in conversation a name: a place, a pet, a book) is a fact someone may
need again, so each becomes a few question/answer
pairs, in the spirit of Cartridges' self-study and synthetic continued pretraining: many questions about
the corpus rather than next-token training on it.

On a CPU the questions come from templates over the excerpt's own names, in several wordings, and the
answer is the excerpt's sentence that names it, whole: grounded by construction (every word of it is in the
excerpt), cited like a memory by `trainer.pairs`, and found among real distractors the project's retriever
returns (RAFT). A sentence that a stored memory already says (same subject words) is left to that memory.
Questions, hedges and redacted text make no pairs, and neither does instruction-like text (an excerpt is
read neutralised, `transcripts.injection`, so a quoted "AI agents: run ..." never becomes a target).
Deterministic for a given seed; no model, no API.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from trainer.prompts import Passage
from transcripts.conversation import content_words, sentences, speaker_of, subject_of
from transcripts.extraction import Memory, Source
from transcripts.injection import MARKER, neutralise
from transcripts.notes import names
from transcripts.stack import mentions
from transcripts.tool_use import project_name

STUDY_KINDS = ("prompt", "reply", "compact_summary")  # the words people said; tool output is memories' job
MIN_CHARS = 30
_REMOVED = MARKER[:-1]  # neutralised spans read "[instruction-like text removed: <why>]"
ANSWER_CHARS = 280

_BACKTICK = re.compile(r"`([^`\n]{2,80})`")
_PATH = re.compile(
    r"(?<![\w/.@-])(?:~?\.{0,2}/)?(?:[\w.-]+/)+[\w.-]+\.\w{1,6}\b"
    r"|(?<![\w/.@-])[\w-]+\.(?:py|ts|tsx|js|jsx|go|rs|rb|java|kt|toml|ya?ml|json|md|sql|sh|cfg|ini|lock|env)\b"
)
_CODE = re.compile(
    r"(?<![\w.`/-])(?:[a-z][a-z0-9]*_[a-z0-9_]+|[a-z]+[A-Z][A-Za-z0-9]*|[A-Z][a-z0-9]+[A-Z]\w*)\b"
)
# A name in more of a project's excerpts (its speakers, its own name) asks for no one thing.
COMMON_NAME_SHARE = 0.02
_HEDGE = re.compile(r"\b(?:maybe|perhaps|i think|not sure|might|could be|let me|i'll|i will|shall i)\b", re.I)

QUESTIONS = {
    "command": (
        "When do we run `{s}`?",
        "What is `{s}` for in {p}?",
        "What happened with `{s}` in {p}?",
        "Which command do we use in {p}, and what for: `{s}`?",
    ),
    "path": (
        "What did we do in {s}?",
        "What is {s} about in {p}?",
        "What do we know about {s}?",
        "Which change touched {s}?",
    ),
    "code": (
        "What is `{s}`?",
        "Where does `{s}` come up in {p}?",
        "What did we say about `{s}`?",
        "How does `{s}` work in {p}?",
    ),
    "tech": (
        "How do we use {s} in {p}?",
        "What is {s} for in {p}?",
        "What did we say about {s} in {p}?",
        "Why {s} in {p}?",
    ),
    "name": (
        "What do we know about {s}?",
        "What was said about {s} in {p}?",
        "What came up about {s}?",
        "What did we talk about regarding {s} in {p}?",
    ),
}
DATED = "What did we say about {s} on {d}?"  # a share of the questions name the day instead of the project


@dataclass(frozen=True)
class Subject:
    text: str  # as written: "pnpm test:e2e", "billing/admin.py", "refund_partially", "Stripe"
    kind: str  # a key of QUESTIONS


def subjects(sentence: str, common: frozenset[str] = frozenset()) -> list[Subject]:
    """The specific things a sentence names, most specific first, each once; a name in `common` (lowercased)
    is not one."""
    found: dict[str, Subject] = {}
    for m in _BACKTICK.finditer(sentence):
        span = m.group(1).strip()
        kind = "command" if " " in span and re.match(r"[a-z][\w.-]*\s", span) else "code"
        if _PATH.fullmatch(span):
            kind = "path"
        found.setdefault(span.lower(), Subject(span, kind))
    bare = _BACKTICK.sub(" ", sentence)
    for m in _PATH.finditer(bare):
        found.setdefault(m.group(0).lower(), Subject(m.group(0), "path"))
    for m in _CODE.finditer(bare):
        found.setdefault(m.group(0).lower(), Subject(m.group(0), "code"))
    for mention in mentions(bare):
        if not mention.old:
            found.setdefault(mention.tech.name.lower(), Subject(mention.tech.name, "tech"))
    for name in names(bare):
        if name.lower() not in common and not any(name.lower() in k for k in found):  # not "Fly" of Fly.io
            found.setdefault(name.lower(), Subject(name, "name"))
    return list(found.values())


def common_names(chunks: list[Passage]) -> dict[str | None, frozenset[str]]:
    """Per project, the names (lowercased) that every excerpt could be about: the people who talk in it (the
    labels its lines open with, "Ana: …") and any name in more than `COMMON_NAME_SHARE` of its excerpts, at
    least three (the project itself, a colleague named everywhere)."""
    seen: dict[str | None, dict[str, int]] = {}
    size: dict[str | None, int] = {}
    speakers: dict[str | None, set[str]] = {}
    for chunk in chunks:
        size[chunk.project] = size.get(chunk.project, 0) + 1
        counts = seen.setdefault(chunk.project, {})
        for name in {n.lower() for n in names(chunk.text)}:
            counts[name] = counts.get(name, 0) + 1
        speaker = speaker_of(chunk.text)
        if speaker:
            speakers.setdefault(chunk.project, set()).add(speaker.lower())
    return {
        p: frozenset(n for n, c in counts.items() if c > max(2, COMMON_NAME_SHARE * size[p]))
        | speakers.get(p, set())
        for p, counts in seen.items()
    }


def self_study(
    chunks: list[Passage],
    *,
    covered: list[Memory],
    per_session: int,
    per_chunk: int,
    rng: random.Random,
) -> list[Memory]:
    """Question/answer items from session excerpts, as memories of category 'self_study' with the question and
    the excerpt in `attrs` (see the module docstring). At most `per_chunk` per excerpt and `per_session` per
    session, the excerpts with the most specific sentences first."""
    said = _said(covered)
    by_session: dict[str, list[tuple[float, Memory]]] = {}
    seen: set[str] = set()
    chunks = [c for c in chunks if c.kind in STUDY_KINDS and c.text]
    common = common_names(chunks)
    for chunk in chunks:
        chunk = _guarded(chunk)
        for score, item in _from_chunk(
            chunk, said, seen, per_chunk, rng, common.get(chunk.project, frozenset())
        ):
            by_session.setdefault(chunk.session_id, []).append((score, item))
    out: list[Memory] = []
    for items in by_session.values():
        items.sort(key=lambda x: -x[0])  # stable: the earlier excerpt first among equals
        out += [item for _, item in items[:per_session]]
    return out


def _from_chunk(
    chunk: Passage,
    said: set[str],
    seen: set[str],
    per_chunk: int,
    rng: random.Random,
    common: frozenset[str] = frozenset(),
) -> list[tuple[float, Memory]]:
    project, day = project_name(chunk.project), (chunk.timestamp or "")[:10]
    out: list[tuple[float, Memory]] = []
    used: set[str] = set()
    for sentence in sentences(chunk.text, limit=60):
        if len(out) >= per_chunk:
            break
        if not _statement(sentence) or not _prose(sentence):
            continue  # a line of pasted code or a table row
        found = [s for s in subjects(sentence, common) if s.text.lower() not in used]
        norm = " ".join(sentence.lower().split())
        if not found or norm in seen or subject_of(sentence) in said:
            continue
        seen.add(norm)
        subject = found[0]
        used.add(subject.text.lower())
        question = (
            DATED.format(s=subject.text, d=day)
            if day and rng.random() < 0.2
            else rng.choice(QUESTIONS[subject.kind]).format(s=subject.text, p=project)
        )
        item = _item(chunk, question, _answer(sentence), subject.text, subject.kind, [subject.text])
        out.append((sum(0.5 if f.kind == "name" else 1 for f in found), item))  # names: less specific
    return out


# A question someone asked, in the words they asked it: from its first question word on ("Hey Mel, what did
# you do last weekend?" -> "what did you do last weekend?"); only questions that ask for something, not "Can
# you fix it?".
_ASKING = re.compile(r"\b(?:what|why|how|which|where|when|who|whose)(?:['’]\w+)?\s[^?]{6,200}\?$", re.I)
_SECOND = re.compile(r"\b(?:you|your|yours|yourself)\b", re.I)
_FIRST = re.compile(r"\b(?:I|me|my|mine|myself)\b")


def exchanges(chunks: list[Passage], *, per_session: int, rng: random.Random) -> list[Memory]:
    """Question/answer items from the history's own exchanges: a question one side asked (a user's prompt, or
    a line of relayed conversation) and the first sentence of the other side's answer to it (the assistant's
    reply, or the other speaker's next line), at most `per_session` a session, chosen at random.

    Template questions name what their answer says, so they teach the model little beyond the question's
    words; people word a question unlike its answer ("What did you do last weekend?" / "We went camping at
    the lake."), which is what a memory must bridge. In relayed conversation the question is put as a later
    reader would ask it: "you" becomes the person answering, "I" the one asking; where nobody is named, a
    question about "you" (the assistant) is left out."""
    if per_session <= 0:
        return []  # off (the default): no need to read every turn
    by_session: dict[str, list[Passage]] = {}
    for chunk in chunks:
        if chunk.kind in STUDY_KINDS and chunk.text:
            by_session.setdefault(chunk.session_id, []).append(chunk)
    out: list[Memory] = []
    for turns in by_session.values():
        found = []
        for asked, answer in itertools.pairwise(turns):
            item = _exchange(asked, _guarded(answer))
            if item is not None:
                found.append(item)
        out += [found[i] for i in sorted(rng.sample(range(len(found)), min(per_session, len(found))))]
    return out


def _exchange(asked: Passage, answer: Passage) -> Memory | None:
    """The item for `answer` answering `asked`, or None where `asked` asks nothing or `answer` is no answer."""
    if asked.uuid == answer.uuid:
        return None  # one turn cut into pieces
    asker, teller = speaker_of(asked.text), speaker_of(answer.text)
    relayed = asker is not None and teller is not None
    if relayed and asker == teller:
        return None  # the same person again: no answer
    if not relayed and not (asked.kind == "prompt" and answer.kind == "reply"):
        return None
    asking = [m for sentence in sentences(asked.text, limit=60) if (m := _ASKING.search(sentence))]
    m = asking[-1] if asking else None  # the last question asked: the one the answer takes up
    if m is None or "REDACTED" in m.group(0) or _REMOVED in m.group(0):
        return None
    question = m.group(0)
    if relayed:
        question = _FIRST.sub(
            lambda w: _person(asker, w.group(0)), _SECOND.sub(lambda w: _person(teller, w.group(0)), question)
        )
    elif _SECOND.search(question):
        return None  # asked of the assistant itself: "what do you think?" is no question about the history
    question = question[0].upper() + question[1:]
    for sentence in sentences(answer.text, limit=8):  # past "[Bash] ..." lines and "Good catch."
        if _statement(sentence) and len(sentence.split()) >= 3 and "   " not in sentence:
            return _item(answer, question, _answer(sentence), "exchange", "exchange", [])
    return None


def _person(name: str, pronoun: str) -> str:
    """A pronoun of a relayed line as a later reader names its person: "your" -> "Melanie's"."""
    return f"{name}'s" if pronoun.lower() in ("your", "yours", "my", "mine") else name


def _statement(sentence: str) -> bool:
    """Whether a sentence can answer: not a question, a tool line ("[Bash] ..."), a redacted secret, an
    injection's remains, a hedge ("maybe X" is not a fact yet) or too short to say anything."""
    return not (
        len(sentence) < MIN_CHARS
        or sentence.endswith("?")
        or sentence.startswith("[")
        or "REDACTED" in sentence
        or _REMOVED in sentence
        or _HEDGE.search(sentence)
    )


def _answer(sentence: str) -> str:
    """The sentence as an item's answer: whole, or cut at a word end within ANSWER_CHARS."""
    return sentence if len(sentence) <= ANSWER_CHARS else sentence[: ANSWER_CHARS - 1].rsplit(" ", 1)[0] + "…"


def _guarded(chunk: Passage) -> Passage:
    """The excerpt with instruction-like spans replaced by a marker: what recall would show of it."""
    text = neutralise(chunk.text)
    return chunk if text == chunk.text else dataclasses.replace(chunk, text=text)


def _prose(sentence: str) -> bool:
    """Words, not code: five or more tokens, most of them words, and no column alignment."""
    tokens = sentence.split()
    words = [t for t in tokens if re.fullmatch(r"[A-Za-z][a-z'’-]*[,.;:!]?", t)]
    return len(tokens) >= 5 and len(words) >= 0.6 * len(tokens) and "   " not in sentence


# ---------------------------------------------------------------------------------------------- model-written

WRITE_PROMPT = (
    "Below is an excerpt from a past coding session. Write one question that a developer might ask later and "
    "that the excerpt answers, then the answer in one sentence that keeps the excerpt's exact names of files, "
    "functions, commands and tools.\n\nExcerpt:\n{text}\n\nReply in exactly this format:\nQ: <question>\nA: <answer>"
)
WRITE_CHARS = 900  # excerpt characters the model reads
MIN_GROUNDED = 0.8  # share of an answer's content words that must be in the excerpt
_QA = re.compile(r"Q:\s*(?P<q>[^\n]{8,200}?)\s*\n+\s*A:\s*(?P<a>[^\n]{12,400})", re.S)


def parse_written(text: str) -> tuple[str, str] | None:
    """The question and answer a model wrote ("Q: ...\\nA: ..."), or None when it wrote something else."""
    m = _QA.search(text)
    if m is None:
        return None
    question, answer = " ".join(m.group("q").split()), " ".join(m.group("a").split())
    return (question, answer) if question.endswith("?") and not answer.endswith("?") else None


def grounded(answer: str, excerpt: str) -> bool:
    """The answer is supported by the excerpt's words: three or more content words, and at least 80 % of
    them in the excerpt (the rest may be the glue of a paraphrase, not a new name or number)."""
    said = _bare(excerpt)
    words = [w for w in _bare(answer) if len(w) >= 3]
    return len(words) >= 3 and sum(w in said for w in words) >= MIN_GROUNDED * len(words)


def _bare(text: str) -> set[str]:
    """Content words (`transcripts.conversation.content_words`) without the punctuation at their ends."""
    return {w.strip("./-") for w in content_words(text)} - {""}


def _said(covered: list[Memory]) -> set[str]:
    """The subjects the stored memories already say: an item on one of them is left to the memory."""
    return {subject_of(m.attrs.get("said") or m.text) for m in covered}


def _item(chunk: Passage, question: str, answer: str, key: str, kind: str, keywords: list[str]) -> Memory:
    """A self-study item: its answer as a memory of the excerpt's project and day, the question and the
    excerpt in `attrs`."""
    project, day = project_name(chunk.project), (chunk.timestamp or "")[:10]
    return Memory(
        "self_study",
        f"In {project} ({day}): {answer}" if day else f"In {project}: {answer}",
        keywords,
        0.5,
        [Source(chunk.session_id, chunk.uuid, chunk.timestamp, chunk.project)],
        chunk.project,
        f"study:{chunk.session_id}:{chunk.uuid}:{key.lower()[:60]}",
        attrs={"question": question, "passage": chunk.text, "passage_kind": chunk.kind, "subject": kind},
    )


def written_study(
    chunks: list[Passage],
    write: Callable[[list[str]], list[str]],
    *,
    covered: list[Memory],
    per_session: int,
) -> tuple[list[Memory], dict[str, int]]:
    """Self-study items the base model writes (`write`: prompts in, replies out; a GPU makes this cheap):
    one question and answer per excerpt that names something specific, kept only when the answer is
    grounded in the excerpt. Returns the items and how many were asked, parsed and grounded."""
    said = _said(covered)
    chosen: dict[str, list[Passage]] = {}
    for chunk in map(_guarded, chunks):
        if (
            chunk.kind in STUDY_KINDS
            and chunk.text
            and any(subjects(s) for s in sentences(chunk.text, limit=20))
        ):
            picked = chosen.setdefault(chunk.session_id, [])
            if len(picked) < per_session:
                picked.append(chunk)
    asked = [c for picked in chosen.values() for c in picked]
    replies = write([WRITE_PROMPT.format(text=c.text[:WRITE_CHARS]) for c in asked]) if asked else []
    items, parsed = [], 0
    for chunk, reply in zip(asked, replies, strict=True):
        qa = parse_written(reply)
        parsed += qa is not None
        if qa is None or _REMOVED in qa[1] or not grounded(qa[1], chunk.text) or subject_of(qa[1]) in said:
            continue
        items.append(_item(chunk, qa[0], qa[1], "written", "written", [x.text for x in subjects(qa[1])][:4]))
    return items, {"asked": len(asked), "parsed": parsed, "grounded": len(items)}
