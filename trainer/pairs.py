"""Training data: CPT documents and retrieval-grounded SFT pairs, written as JSONL under a run folder.

    manifest = build_dataset(history, run_dir / "data", DataSettings())

`history` is anything with the `History` methods (the store implements them in `lmm_mcp.history`); this
module never touches the store itself.

- **Split by session and time.** Sessions (a transcript with its sub-agents) are ordered by start time; the
  newest `val_share` go to validation. A memory belongs to the side of its newest source, a user prompt to its
  session's side, so evaluation never sees text it trained on.
- **CPT documents:** the cleaned text of each training session, and each training memory in `wordings`
  different wordings (as a memory, as the answer to different questions; a stack fact also as "The database
  of shop: PostgreSQL 16"); `trainer.train` packs them to the sequence length.
- **SFT pairs, RAFT-style:** the context is a question built from a memory, naming what tells it apart from
  its project's other memories, and a thing rather than a verb (`trainer.questions`: one question per
  speaker would ask for hundreds of memories at once), or a later user prompt that shares the memory's
  identifiers (the moment recalling it would have helped). **Self-study items** (`trainer.selfstudy`) add
  questions about every session excerpt that names something specific, answered by the excerpt's own
  sentence, so a history of conversation trains even when it holds few memories. The input is the context
  plus what `history.retrieve` returns for it; when the memory or one of its sources is not among the hits, the memory
  is put in at a random place, so the gold source always sits among real distractors. The target is the
  memory's text citing the gold excerpts by number. Abstain pairs ask a memory's question with the memory, its
  sources and anything that names its identifiers removed from the hits: the target says nothing relevant was
  found, which teaches the model not to invent specifics that retrieval did not supply.
- **Dedup and balance:** memories with near-identical text form one group, and no group gets more than
  `max_per_memory` pairs; pairs are weighted by salience. The manifest reports the mean pairwise Jaccard of
  targets and the share of pairs held by the four most frequent memories (the research prototype's "parrot
  problem" was 49 % of pairs on 4 memories).
- **Too little data** means fewer than `min_sessions` (3) sessions, said with the counts and what to do. With
  three or more, a held-out side that gave no rows borrows a tenth of the training rows (`val_borrowed` in
  the manifest), and only a history with nothing said at all is refused.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trainer.atomic import write_json, write_jsonl
from trainer.errors import TrainerError
from trainer.prompts import (
    ABSTAIN,
    MAX_EXPANSION_TERMS,
    Passage,
    expand_messages,
    fit_passages,
    prompt_chars,
    recall_messages,
)
from trainer.questions import FOCUS_SHARED, Asking, askings, keyword_shares, question_for
from trainer.selfstudy import exchanges, self_study, written_study
from trainer.settings import DataSettings
from transcripts.extraction import Memory
from transcripts.wording import (
    drop_project_opening,
    identifiers,
    jaccard,
    mean_pairwise_jaccard,
    project_name,
    strip_citations,
    word_set,
)

_WORD = re.compile(r"[a-z0-9_./-]+")
EXPANSION = "expand"  # the category (and context) of query-expansion pairs: not recall memories


class DataError(TrainerError, ValueError):
    """The history cannot make a training set; the message says what is missing."""


@dataclass
class SessionInfo:
    key: str  # the transcript (a sub-agent's is '<session>/agent-<id>')
    session_id: str  # Claude Code's session id; sub-agents share their parent's, and its side of the split
    project: str | None
    started_at: str | None


@dataclass
class Prompt:
    """Something the user typed in a session: a context that may call for a memory."""

    session_id: str
    uuid: str
    timestamp: str | None
    project: str | None
    text: str


class History(Protocol):
    def sessions(self) -> list[SessionInfo]: ...
    def document(self, key: str) -> str: ...  # a session's cleaned text, for CPT
    def prompts(self) -> list[Prompt]: ...
    def memories(self) -> list[Memory]: ...
    def chunks(self) -> list[Passage]: ...  # the sessions' excerpts, for self-study (trainer.selfstudy)
    def retrieve(
        self, query: str, *, k: int, project: str | None, until: str | None = None
    ) -> list[Passage]: ...


@dataclass
class Pair:
    id: str
    query: str
    context: str  # "memory" (a question built from it) | "prompt" (a later user prompt)
    messages: list[dict[str, str]]
    target: str
    weight: float
    memory_key: str | None
    category: str  # the memory's category, or "abstain"
    abstain: bool
    gold: list[int]
    keywords: list[str]
    identifiers: list[str]
    passages: list[dict[str, Any]]
    session_id: str  # the session the pair is attributed to (its side of the split)
    extra: dict[str, Any] = field(default_factory=dict)
    # The excerpts a citation may rightly name: the gold ones and any other of a session the memory came
    # from (how the benchmarks count a citation: the session that said it). Empty on abstain pairs.
    evidence: list[int] = field(default_factory=list)


COPIED = 0.9  # a target with this share of its words in one gold excerpt repeats it (`pair_stats`)
# ---------------------------------------------------------------------------------------------- the dataset


def build_dataset(
    history: History,
    out_dir: Path,
    settings: DataSettings,
    *,
    log=None,
    write: Callable[[list[str]], list[str]] | None = None,
) -> dict[str, Any]:
    """Write cpt_train/cpt_val/sft_train/sft_val JSONL and manifest.json into `out_dir`; return the manifest.
    `write` (prompts in, replies out) lets the base model write self-study questions as well."""
    started = time.perf_counter()
    rng = random.Random(settings.seed)
    sessions = history.sessions()
    memories = [m for m in history.memories() if not m.superseded_by]
    if not sessions:
        raise DataError("nothing to train on: ingest sessions first")
    n_sessions = len({s.session_id for s in sessions})
    if n_sessions < settings.min_sessions:
        raise DataError(
            f"too little data to train: {n_sessions} sessions ({len(sessions)} transcripts with sub-agents), "
            f"{len(memories)} memories; training needs at least {settings.min_sessions} sessions. Work a few "
            "more sessions with Claude Code, then run `lmm-mcp ingest` and train again"
        )
    val_ids = split_sessions(sessions, settings.val_share)
    side = {m.key: _side(m, val_ids) for m in memories}

    cpt = {"train": [], "val": []}
    for s in sessions:
        text = history.document(s.key)[: settings.max_doc_chars]
        if text.strip():
            cpt["val" if s.session_id in val_ids else "train"].append(
                {"id": f"session:{s.key}", "kind": "session", "session_id": s.session_id, "text": text}
            )
    asked = askings(memories)
    for m in memories:
        for n, text in enumerate(memory_wordings(m, settings.wordings, rng, asked[m.key])):
            cpt[side[m.key]].append(
                {"id": f"memory:{m.key}:{n}", "kind": "memory", "session_id": _newest(m), "text": text}
            )

    chunks = history.chunks()
    studies = self_study(
        chunks,
        covered=memories,
        per_session=settings.self_study_per_session,
        per_chunk=settings.self_study_per_chunk,
        rng=random.Random(f"{settings.seed}:self-study"),  # its own stream: more study items move no question
    )
    asked_and_answered = exchanges(
        chunks, per_session=settings.exchanges_per_session, rng=random.Random(f"{settings.seed}:exchanges")
    )
    studies += asked_and_answered
    written: dict[str, int] = {}
    if write is not None:
        items, written = written_study(
            chunks, write, covered=memories, per_session=settings.self_study_per_session
        )
        studies += items
    pairs = build_pairs(history, memories, history.prompts(), val_ids, settings, rng, studies=studies)
    sft = {"train": [p for p in pairs if p.session_id not in val_ids]}
    sft["val"] = [p for p in pairs if p.session_id in val_ids]
    replayed = _continual(sessions, settings, cpt, sft, rng)
    borrowed = {name: _borrow(rows) for name, rows in (("cpt", cpt), ("sft", sft))}
    sft["train"] = _limit(sft["train"], settings.max_train_pairs, rng)
    sft["val"] = _limit(sft["val"], settings.max_val_pairs, rng)
    for rows in sft.values():  # built memory by memory, abstains last: a prefix (eval --limit) must mix kinds
        rng.shuffle(rows)
    counts = {
        "sessions": n_sessions,
        "transcripts": len(sessions),
        "val_sessions": len(val_ids),
        "memories": len(memories),
        "self_study": len(studies) - len(asked_and_answered),
        "exchanges": len(asked_and_answered),
        **({"written_study": written["grounded"]} if written else {}),
        **replayed,
        "cpt_train": len(cpt["train"]),
        "cpt_val": len(cpt["val"]),
        "sft_train": len(sft["train"]),
        "sft_val": len(sft["val"]),
    }
    if not sft["train"] or not sft["val"] or not cpt["train"] or not cpt["val"]:
        raise DataError(
            f"too little data to train: {n_sessions} sessions hold {counts['memories']} memories, "
            f"{counts['sft_train']} training pairs and {counts['sft_val']} validation pairs: they are mostly "
            "tool output or empty. Sessions where things are said and named give more"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "cpt_train.jsonl": cpt["train"],
        "cpt_val.jsonl": cpt["val"],
        "sft_train.jsonl": [asdict(p) for p in sft["train"]],
        "sft_val.jsonl": [asdict(p) for p in sft["val"]],
    }
    manifest = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": settings.as_dict(),
        "counts": counts,
        "stats": {
            "train": pair_stats(sft["train"]),
            "val": {**pair_stats(sft["val"]), "targets_seen": targets_seen(sft["val"], sft["train"])},
            "seconds": round(time.perf_counter() - started, 2),
            **({"written_study": written} if written else {}),
        },
        "val_session_ids": sorted(val_ids),
        "newest_session": max((s.started_at or "" for s in sessions), default="") or None,
        # validation taken from training sessions' rows, because the held-out sessions gave none
        "val_borrowed": borrowed,
        "files": {name: write_jsonl(out_dir / name, rows) for name, rows in files.items()},
    }
    write_json(out_dir / "manifest.json", manifest, indent=True)
    if log:
        log(f"data: {counts}, built in {manifest['stats']['seconds']:.0f} s")
    return manifest


def split_sessions(sessions: list[SessionInfo], val_share: float) -> set[str]:
    """The session ids held out for validation: the newest `val_share` (at least one when there are two)."""
    first_seen: dict[str, str] = {}
    for s in sessions:
        t = s.started_at or ""
        if s.session_id not in first_seen or t < first_seen[s.session_id]:
            first_seen[s.session_id] = t
    order = sorted(first_seen, key=lambda sid: (first_seen[sid], sid))
    if len(order) < 2:
        return set()
    n_val = min(len(order) - 1, max(1, round(val_share * len(order))))
    return set(order[-n_val:])


def memory_document(m: Memory) -> str:
    project = project_name(m.project, "all projects")
    return f"Memory ({m.category.replace('_', ' ')}, {project}, {m.time[:10] or 'undated'}): {m.text}"


def memory_wordings(m: Memory, n: int, rng: random.Random, asking: Asking | None = None) -> list[str]:
    """`n` CPT documents that say one memory differently: as a memory, and as answers to different questions
    a developer would ask, so a fact is not learnt as one fixed string (synthetic continued pretraining)."""
    out = [memory_document(m)]
    a = m.attrs
    if a.get("kind") == "stack" and a.get("role") and a.get("choice"):
        project = project_name(m.project, "the project")
        tech = f"{a['choice']} {a['version']}" if a.get("version") else a["choice"]
        out.append(
            f"The {a['role']} of {project}: {tech}" + (f", for {a['purpose']}." if a.get("purpose") else ".")
        )
    asked: set[str] = set()
    for _ in range(4 * n):
        if len(out) >= n:
            break
        question = question_for(m, rng, asking or Asking())
        if question not in asked:
            asked.add(question)
            out.append(f"Q: {question}\nA: {m.text}")
    return out[:n]


def _continual(
    sessions: list[SessionInfo],
    settings: DataSettings,
    cpt: dict[str, list],
    sft: dict[str, list],
    rng: random.Random,
) -> dict[str, int]:
    """With `settings.since` (continual training): the training rows of sessions started after it, plus a
    replay sample of the older ones (`replay_share` of the new rows' count). Validation stays the newest
    sessions. Returns the counts for the manifest; without `since`, changes nothing."""
    if not settings.since:
        return {}
    new = {s.session_id for s in sessions if (s.started_at or "") > settings.since}
    if not new:
        raise DataError(
            f"nothing new to learn: no session started after {settings.since}, when the adapter's data ends. "
            "Train without --from for a full retrain"
        )
    counts = {"new_sessions": len(new)}
    for name, split, session_of in (
        ("cpt", cpt, lambda r: r["session_id"]),
        ("sft", sft, lambda p: p.session_id),
    ):
        fresh = [r for r in split["train"] if session_of(r) in new]
        old = [r for r in split["train"] if session_of(r) not in new]
        if not fresh:  # every new session was held out for validation: learn them, and borrow validation
            fresh, split["val"] = split["val"], []
        replay = rng.sample(old, min(len(old), math.ceil(settings.replay_share * len(fresh))))
        split["train"] = fresh + replay
        counts[f"{name}_replayed"] = len(replay)
    return counts


def _borrow(split: dict[str, list]) -> int:
    """When the held-out sessions gave no rows (a short history: the newest session may be all tool output),
    hold out a few training rows instead, so that validation still measures something. Returns how many."""
    if split["val"] or len(split["train"]) < 2:
        return 0
    n = max(1, len(split["train"]) // 10)
    split["val"], split["train"] = split["train"][-n:], split["train"][:-n]
    return n


# ---------------------------------------------------------------------------------------------- pairs


def build_pairs(
    history: History,
    memories: list[Memory],
    prompts: list[Prompt],
    val_ids: set[str],
    settings: DataSettings,
    rng: random.Random,
    *,
    studies: list[Memory] = (),
) -> list[Pair]:
    """Answer pairs for memories (a question built from each, and later prompts that call for it) and for
    self-study items (their own question), then abstain pairs for a share of them."""
    groups = near_duplicate_groups(memories, settings.near_dup)
    shared = keyword_shares(memories)
    asked = askings(memories, shared)
    per_group: Counter[int] = Counter()
    by_word = _prompt_index(prompts)
    pairs: list[Pair] = []
    answer_pairs: list[tuple[Memory, str]] = []
    for m in sorted(memories, key=lambda m: (-m.salience, m.key)):
        group = groups[m.key]
        budget = settings.max_per_memory - per_group[group]
        if budget <= 0:
            continue
        contexts: list[tuple[str, str, Prompt | None]] = []
        if not asked[m.key].names_nothing(m):  # later prompts may still call for it
            contexts.append(("memory", question_for(m, rng, asked[m.key]), None))
        for p in _later_prompts(m, prompts, by_word, shared)[: settings.prompts_per_memory]:
            contexts.append(("prompt", p.text, p))
        for kind, query, prompt in contexts[:budget]:
            pair = _answer_pair(history, m, kind, query, prompt, settings, rng)
            if pair is None:
                continue
            if prompt is None:
                pair.session_id = _newest(m)
            pairs.append(pair)
            per_group[group] += 1
            answer_pairs.append((m, query))
    for item in studies:
        pair = _answer_pair(history, item, "study", item.attrs["question"], None, settings, rng)
        if pair is not None:
            pair.session_id = _newest(item)
            pairs.append(pair)
            answer_pairs.append((item, item.attrs["question"]))
    n_abstain = math.ceil(settings.abstain_share * len(pairs))
    for m, query in rng.sample(answer_pairs, min(n_abstain, len(answer_pairs))):
        pair = _abstain_pair(history, m, query, settings)
        if pair is not None:
            pairs.append(pair)
    if settings.expansions:
        pairs += [p for m, query in answer_pairs if (p := _expansion_pair(m, query)) is not None]
    return pairs


def _expansion_pair(m: Memory, query: str) -> Pair | None:
    """Query expansion: the question in, the memory's own names for what it asks about out (the names the
    question does not already hold). `lmm_mcp.recall` adds them to the search query."""
    asked = query.lower()
    terms = [k for k in m.keywords if k.lower() not in asked][:MAX_EXPANSION_TERMS]
    if not terms:
        return None
    pair = _pair(
        query=query,
        context="expand",
        passages=[],
        target=", ".join(terms),
        weight=0.5,
        memory=m,
        gold=[],
        session_id=_newest(m),
    )
    pair.messages, pair.category = expand_messages(query, m.project), EXPANSION
    return pair


def _answer_pair(
    history: History,
    m: Memory,
    kind: str,
    query: str,
    prompt: Prompt | None,
    settings: DataSettings,
    rng: random.Random,
) -> Pair | None:
    until = prompt.timestamp if prompt else None
    hits = history.retrieve(query, k=settings.k * 2, project=m.project, until=until)
    if prompt is not None:  # what the prompt's own session said is not a memory yet
        hits = [h for h in hits if h.session_id != prompt.session_id]
    passages = fit_passages(hits[: settings.k], settings.max_prompt_chars)
    retrieved = any(_is_gold(p, m) for p in passages)
    found = list(passages)  # what retrieval alone gave: the distillation student's input
    if not retrieved:
        at = rng.randrange(min(len(passages) + 1, settings.k))
        gold_passage = memory_passage(m)
        if len(passages) >= settings.k:
            passages[at] = gold_passage
        else:
            passages.insert(at, gold_passage)
        while len(passages) > 1 and prompt_chars(passages) > settings.max_prompt_chars:
            drop = max(i for i, p in enumerate(passages) if p is not gold_passage)
            passages.pop(drop)
    gold = [n for n, p in enumerate(passages, 1) if _is_gold(p, m)]
    cite = "".join(f"[{n}]" for n in gold[:3])
    pair = _pair(
        query=query,
        context=kind,
        passages=passages,
        target=f"{drop_project_opening(m.text, m.project)} {cite}",  # as recall shows it in the project
        weight=round(0.5 + 0.5 * m.salience, 3),
        memory=m,
        gold=gold,
        session_id=prompt.session_id if prompt else _newest(m),
    )
    pair.evidence = evidence_numbers(passages, m)
    pair.extra["gold_retrieved"] = retrieved
    # Context distillation (trainer.train, objective "distill"): the teacher reads the gold alone, the student
    # what retrieval found, and the student learns the teacher's answer distribution without the gold.
    pair.extra["distill"] = {
        "teacher": recall_messages(query, [p for p in passages if _is_gold(p, m)][:3]),
        "student": pair.messages if retrieved else recall_messages(query, found),
        "answer": drop_project_opening(m.text, m.project),
    }
    return pair


def _abstain_pair(history: History, m: Memory, query: str, settings: DataSettings) -> Pair | None:
    hits = history.retrieve(query, k=settings.k * 3, project=m.project)
    sources = {(s.session_id, s.uuid) for s in m.sources}
    passages = [
        p
        for p in hits
        if not _is_gold(p, m) and (p.session_id, p.uuid) not in sources and not _mentions(p, m)
    ][: settings.k]
    passages = fit_passages(passages, settings.max_prompt_chars)
    pair = _pair(
        query=query,
        context="memory",
        passages=passages,
        target=ABSTAIN,
        weight=0.75,
        memory=None,
        gold=[],
        session_id=_newest(m),
        abstain_of=m,
    )
    pair.extra["abstain_of"] = m.key
    return pair


def _pair(
    *,
    query: str,
    context: str,
    passages: list[Passage],
    target: str,
    weight: float,
    memory: Memory | None,
    gold: list[int],
    session_id: str,
    abstain_of: Memory | None = None,
) -> Pair:
    text = memory.text if memory else ""
    key_src = (
        f"{context}|{query}|{memory.key if memory else 'abstain:' + (abstain_of.key if abstain_of else '')}"
    )
    return Pair(
        id=hashlib.blake2b(key_src.encode(), digest_size=8).hexdigest(),
        query=query,
        context=context,
        messages=recall_messages(query, passages),
        target=target,
        weight=weight,
        memory_key=memory.key if memory else None,
        category=memory.category if memory else "abstain",
        abstain=memory is None,
        gold=gold,
        keywords=list(memory.keywords) if memory else [],
        identifiers=sorted(identifiers(text)) if memory else [],
        passages=[{"n": n, **asdict(p)} for n, p in enumerate(passages, 1)],
        session_id=session_id,
    )


def memory_passage(m: Memory) -> Passage:
    cited = m.cited()  # the source recall names for this memory (lmm_mcp.memories stores the same)
    if m.attrs.get("passage") and cited:  # a self-study item: the excerpt it was read from
        return Passage(
            text=m.attrs["passage"],
            session_id=cited.session_id,
            uuid=cited.uuid,
            timestamp=cited.timestamp,
            project=m.project,
            kind=m.attrs.get("passage_kind", "chunk"),
        )
    return Passage(
        text=drop_project_opening(m.text, m.project),  # as recall shows a memory within its project
        session_id=cited.session_id if cited else "",
        uuid=cited.uuid if cited else "",
        timestamp=m.time or None,
        project=m.project,
        kind="memory",
        memory_key=m.key,
    )


def evidence_numbers(passages: list[Passage], m: Memory) -> list[int]:
    """The numbers of `passages` that are `m`'s gold or come from a session it was said in."""
    sessions = {s.session_id for s in m.sources if s.session_id}
    return [n for n, p in enumerate(passages, 1) if _is_gold(p, m) or p.session_id in sessions]


def _is_gold(p: Passage, m: Memory) -> bool:
    if p.memory_key is not None:
        return p.memory_key == m.key
    return any(p.session_id == s.session_id and p.uuid == s.uuid for s in m.sources)


def _mentions(p: Passage, m: Memory) -> bool:
    """A passage that names half the memory's identifiers (or most of its words) would answer it."""
    names = identifiers(m.text)
    low = p.text.lower()
    if names and sum(n in low for n in names) * 2 >= len(names):
        return True
    return jaccard(_words(p.text), _words(m.text)) >= 0.5


def _later_prompts(
    m: Memory, prompts: list[Prompt], by_word: dict[str, list[int]], shared: Counter[tuple[str | None, str]]
) -> list[Prompt]:
    """User prompts after the memory was first seen, in its project, that name two of its keywords, one of
    them a keyword that tells it apart (at most FOCUS_SHARED of the project's memories have it): a prompt that
    names only the speakers, or the project's everyday words, calls for no memory in particular."""
    first = min((s.timestamp or "" for s in m.sources), default="")
    own = {s.session_id for s in m.sources}
    project = project_name(m.project, "").lower()
    keys = {k.lower() for k in m.keywords if len(k) >= 4 and k.lower() != project}
    hits: Counter[int] = Counter()
    telling: set[int] = set()
    for k in keys:
        for i in by_word.get(k, ()):
            hits[i] += 1
            if shared[(m.project, k)] <= FOCUS_SHARED:
                telling.add(i)
    out = []
    for i, n in hits.most_common():
        p = prompts[i]
        if n < 2:
            break
        if i not in telling:
            continue
        if p.session_id in own or (p.timestamp or "") <= first or (m.project and p.project != m.project):
            continue
        out.append(p)
    return out


def _prompt_index(prompts: list[Prompt]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        for w in _words(p.text):
            index.setdefault(w, []).append(i)
    return index


# ---------------------------------------------------------------------------------------------- balance, stats


def near_duplicate_groups(memories: list[Memory], threshold: float) -> dict[str, int]:
    """Memory key -> group id; memories in one category and project with near-identical text share a group."""
    groups: dict[str, int] = {}
    buckets: dict[tuple[str, str | None], list[tuple[frozenset[str], int]]] = {}
    for m in memories:
        words = _words(m.text)
        bucket = buckets.setdefault((m.category, m.project), [])
        group = next((g for w, g in bucket[-500:] if jaccard(words, w) >= threshold), None)
        if group is None:
            group = len(groups)
            bucket.append((words, group))
        groups[m.key] = group
    return groups


def pair_stats(pairs: list[Pair]) -> dict[str, Any]:
    answers = [p for p in pairs if not p.abstain and p.category != EXPANSION]
    by_memory = Counter(p.memory_key for p in answers)
    return {
        "pairs": len(pairs),
        "abstain": len(pairs) - len(answers),
        "by_category": dict(Counter(p.category for p in pairs)),
        "by_context": dict(Counter(p.context for p in pairs)),
        "distinct_memories": len(by_memory),
        "top4_share": round(sum(n for _, n in by_memory.most_common(4)) / len(answers), 4)
        if answers
        else 0.0,
        "target_jaccard": round(mean_pairwise_jaccard([p.target for p in answers]) or 0.0, 4),
        # how often retrieval found the memory or a source by itself (else the gold was put in)
        "gold_retrieved": round(sum(bool(p.extra.get("gold_retrieved")) for p in answers) / len(answers), 4)
        if answers
        else 0.0,
        # answers that repeat a gold excerpt's words: the loss then measures choosing and copying it
        "copied": round(sum(map(_copied, answers)) / len(answers), 4) if answers else 0.0,
    }


def targets_seen(val: list[Pair], train: list[Pair]) -> float:
    """The share of validation answers whose target (citations aside) is also a training target: a later
    prompt recalling an older memory, which its own question trained on. A validation loss is as low as
    this share is high (docs/benchmarks.md: LoCoMo 0.30 against the coding history's 0.07)."""
    answers = [p for p in val if not p.abstain and p.category != EXPANSION]
    trained = {_bare(p.target) for p in train if not p.abstain}
    return round(sum(_bare(p.target) in trained for p in answers) / len(answers), 4) if answers else 0.0


def _bare(target: str) -> str:
    return " ".join(strip_citations(target).split())


def _copied(p: Pair) -> bool:
    words = word_set(p.target)
    gold = [x for x in p.passages if x.get("n") in p.gold]
    return bool(words) and any(
        len(words & word_set(str(x.get("text", "")))) >= COPIED * len(words) for x in gold
    )


def _words(text: str) -> frozenset[str]:
    return frozenset(w.strip("./-") for w in _WORD.findall(text.lower()) if len(w.strip("./-")) >= 2)


def _side(m: Memory, val_ids: set[str]) -> str:
    return "val" if _newest(m) in val_ids else "train"


def _newest(m: Memory) -> str:
    return max(m.sources, key=lambda s: s.timestamp or "").session_id if m.sources else ""


def _limit(pairs: list[Pair], n: int, rng: random.Random) -> list[Pair]:
    if len(pairs) <= n:
        return pairs
    return rng.sample(pairs, n)
