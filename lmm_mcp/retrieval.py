"""Hybrid retrieval: FTS5 BM25 and embedding cosine, each smoothed over neighbouring chunks, then fused.

    retriever = App.open(cfg).retriever()      # built in lmm_mcp.app: hybrid when the store has vectors
    hits = retriever.retrieve("how did we fix the flaky websocket test", k=8, project="/src/app")

BM25 finds the exact identifiers a coding memory lives on (function names, flags, error strings); vectors
find the paraphrases. A memory is rarely one chunk alone (an answer needs its question, an output its
command), so FTS5 also indexes each chunk's neighbours in a second column at half weight, and a chunk's
cosine is raised by its best neighbours' (0.5 x the best of ±1, 0.25 x the best of ±2). The two rankings are
fused by a weighted sum of z-scores (0.7 BM25, 0.3 vectors): on LoCoMo this beat reciprocal-rank fusion and
either ranker alone at every k (docs/benchmarks.md, where the alternatives are measured). A stored memory
that still holds gets 0.3 more: a statement distilled from the session ranks above the raw output that matches
as well (one a later memory replaced does not: what held before is history).

The vectors sit in one in-memory matrix per process, loaded from the store on first use and topped up as
other processes add chunks: a brute-force dot product over 100k chunks costs a few milliseconds and needs
no index to rebuild.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from lmm_mcp.embed import Embedder, EmbeddingModelMissing, blas_threads
from lmm_mcp.store import resolve_projects
from trainer.prompts import Passage
from transcripts.conversation import content_words

RRF_K = 60  # the constant from Cormack et al.; ranks past ~60 contribute little
CANDIDATES = 100  # depth taken from each ranker before fusion
# Query vectors kept per retriever: training data asks the same question for many memories and again for its
# abstain pairs (LoCoMo's month: about 5,800 distinct of 10,537), at 16 ms an encoding on the CPU. 384 floats each.
QUERY_CACHE = 4096
BM25_WEIGHT = 0.7  # share of the lexical z-score in the fused score
NEIGHBOUR_WEIGHTS = (0.5, 0.25)  # cosine smoothing from the best neighbour at distance 1 and 2
MEMORY_PRIOR = (
    0.3  # added to a stored memory's fused z-score: at an equal match, the distilled statement first
)
# ...but not one a later memory replaced ("uses SQLite" once "uses PostgreSQL" came): what held before ranks as the
# raw text it came from, so at an equal match the statement that holds now comes first.
SUPERSEDED_PRIOR = 0.0
FUSIONS = ("zscore", "rrf", "bm25", "vector")
# A word in more than this share of chunks says little (BM25 idf under ~2) but makes FTS5 score every chunk
# it is in: dropped from the query while rarer words remain. Only past PRUNE_FROM chunks, where it costs.
COMMON_TERM_SHARE = 0.15
PRUNE_FROM = 5_000
SNIPPET_CHARS = 240
# A hit whose content words a better-ranked hit of the same record holds to this share adds nothing.
HELD_SHARE = 0.8
MAX_QUERY_TERMS = 32

_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)
_WORD = re.compile(r"\w+", re.UNICODE)


class RetrievalError(ValueError):
    """A retrieval request that cannot be served; the message says what to change."""


@dataclass
class Hit:
    chunk_id: int
    session_id: str
    uuid: str
    timestamp: str | None
    project: str | None
    kind: str
    text: str  # the whole chunk
    snippet: str
    score: float
    bm25_rank: int | None = None
    vector_rank: int | None = None
    session_key: str | None = None  # the transcript, or 'memory:<key>' for a stored memory
    superseded: bool = False  # a stored memory that a later one replaced (what held before)
    origin: str = "third_party"  # who wrote it (transcripts.provenance); unknown counts as third-party

    @property
    def memory_key(self) -> str | None:
        """The memory's key when this hit is a stored memory (kind 'memory'), else None."""
        if self.kind == "memory" and self.session_key and self.session_key.startswith("memory:"):
            return self.session_key[len("memory:") :]
        return None

    def passage(self) -> Passage:
        """The hit as the memory model reads it (trainer.prompts)."""
        return Passage(
            text=self.text,
            session_id=self.session_id,
            uuid=self.uuid,
            timestamp=self.timestamp,
            project=self.project,
            kind=self.kind,
            memory_key=self.memory_key,
            score=round(self.score, 4),
        )

    def as_dict(self) -> dict:
        return {
            "session_id": self.session_id,
            "uuid": self.uuid,
            "timestamp": self.timestamp,
            "project": self.project,
            "kind": self.kind,
            "text": self.text,
            "snippet": self.snippet,
            "score": round(self.score, 6),
            "bm25_rank": self.bm25_rank,  # place in each ranking before fusion (1 = best; None: not in its top)
            "vector_rank": self.vector_rank,
            "superseded": self.superseded,
            "origin": self.origin,
        }


def dedupe_hits(hits: list[Hit]) -> list[Hit]:
    """One excerpt per text: a listing or log repeated across sessions (same first 200 characters) once, and
    no hit whose words (`HELD_SHARE` of them) a better-ranked hit of the same record already holds, such as
    a note read off one line below that line itself."""
    out, seen = [], set()
    said: dict[tuple[str, str], list[frozenset[str]]] = {}
    for h in hits:
        head = " ".join(h.text.split())[:200]
        if head in seen or h.chunk_id in seen:
            continue
        words = content_words(h.text)
        record = (h.session_id, h.uuid)
        if h.uuid and any(len(words & w) >= HELD_SHARE * len(words) for w in said.get(record, ())):
            continue
        seen.update((head, h.chunk_id))
        said.setdefault(record, []).append(words)
        out.append(h)
    return out


def query_terms(text: str) -> list[str]:
    """Search words of a user's text: unicode words, lower-cased, stopwords dropped unless nothing is left."""
    words = [w.lower() for w in _WORD.findall(text)]
    kept = [w for w in words if w not in _STOPWORDS] or words
    return list(dict.fromkeys(kept))[:MAX_QUERY_TERMS]


def fts_query(text: str) -> str | None:
    """Any text as a safe FTS5 query: each word a quoted string, ORed; None if it has no words.

    Quoting makes FTS5 read operators (AND, NEAR, -, *, ^, column:) as plain words, and \\w+ words can hold
    no double quote, so no input can break out of the string.
    """
    terms = query_terms(text)
    return " OR ".join(f'"{t}"' for t in terms) if terms else None


def parse_since(value: str | float | datetime | None) -> float | None:
    """A time bound as unix seconds: ISO date/time, '7d' / '12h' / '30m' ago, or a number."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhmw])\s*", value)
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return (datetime.now(UTC) - timedelta(**{unit: float(m.group(1))})).timestamp()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise RetrievalError(f"since={value!r}: use an ISO date (2026-01-31) or an age like 7d, 12h") from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def make_snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> str:
    """A window of the chunk around its first query word."""
    if len(text) <= width:
        return text
    lower = text.lower()
    at = min((i for i in (lower.find(t) for t in terms) if i >= 0), default=0)
    start = max(0, min(at - width // 3, len(text) - width))
    piece = text[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


class VectorIndex:
    """All chunk vectors of one model as a matrix, with project, time and session neighbours per row."""

    def __init__(self, model: str):
        self.model = model
        self._reset()

    def _reset(self) -> None:
        self.ids = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self.projects = np.zeros(0, dtype=np.int64)
        self.ts = np.zeros(0, dtype=np.float64)
        self.sessions = np.zeros(0, dtype=np.int64)
        self._session_codes: dict[str, int] = {}
        self.neighbours = np.zeros((4, 0), dtype=np.int64)  # rows of prev2, prev1, next1, next2; -1 if none
        self._max_id = 0
        self._stamp: tuple[int, int] = (-1, -1)

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Top up with vectors added since the last call; reload all if chunks were deleted or rows missed.

        Costs one small read when nothing changed: the store counts vector writes and chunk deletes.
        """
        meta = dict(
            conn.execute("SELECT key, value FROM meta WHERE key IN ('chunk_deletes', 'vector_writes')")
        )
        stamp = (int(meta.get("chunk_deletes", 0)), int(meta.get("vector_writes", 0)))
        if stamp == self._stamp:
            return
        if stamp[0] != self._stamp[0]:
            self._reset()
        new = self._load(conn, self._max_id)
        if new is not None:
            self._append(*new)
        count = conn.execute("SELECT count(*) FROM vectors WHERE model = ?", (self.model,)).fetchone()[0]
        if count != len(self.ids):  # another process filled in below our high-water mark
            self._reset()
            full = self._load(conn, 0)
            if full is not None:
                self._append(*full)
        self._link_neighbours()
        self._stamp = stamp

    def _load(self, conn: sqlite3.Connection, after: int):
        rows = conn.execute(
            "SELECT v.chunk_id, v.vec, coalesce(c.project_id, -1), coalesce(c.ts, 0), c.session_key"
            " FROM vectors v JOIN chunks c ON c.id = v.chunk_id WHERE v.model = ? AND v.chunk_id > ?"
            " ORDER BY v.chunk_id",
            (self.model, after),
        ).fetchall()
        if not rows:
            return None
        n = len(rows)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(n, -1)
        projects = np.fromiter((r[2] for r in rows), dtype=np.int64, count=n)
        ts = np.fromiter((r[3] for r in rows), dtype=np.float64, count=n)
        codes = self._session_codes
        sessions = np.fromiter((codes.setdefault(r[4], len(codes)) for r in rows), dtype=np.int64, count=n)
        return ids, matrix, projects, ts, sessions

    def _append(self, ids, matrix, projects, ts, sessions) -> None:
        if len(self.ids):
            self.matrix = np.concatenate([self.matrix, matrix])
        else:
            self.matrix = matrix.copy()  # frombuffer gives a read-only view of the rows' bytes
        self.ids = np.concatenate([self.ids, ids])
        self.projects = np.concatenate([self.projects, projects])
        self.ts = np.concatenate([self.ts, ts])
        self.sessions = np.concatenate([self.sessions, sessions])
        self._max_id = int(self.ids[-1])

    def _link_neighbours(self) -> None:
        """For each row, the rows 1 and 2 before and after it in the same session (chunk id order)."""
        n = len(self.ids)
        order = np.lexsort((self.ids, self.sessions))
        links = np.full((4, n), -1, dtype=np.int64)
        for slot, shift in enumerate((-2, -1, 1, 2)):
            src = np.arange(max(0, -shift), n - max(0, shift))
            a, b = order[src], order[src + shift]
            same = self.sessions[a] == self.sessions[b]
            links[slot, a[same]] = b[same]
        self.neighbours = links

    def search(
        self, query: np.ndarray, n: int, projects: list[int] | None, since: float | None, until: float | None
    ) -> tuple[list[int], np.ndarray]:
        """Chunk ids of the n best matches (cosine smoothed over neighbours) that pass the filters, and scores."""
        if not len(self.ids):
            return [], np.zeros(0)
        cos = _matvec(self.matrix, query)
        mask = None
        if projects is not None:
            mask = np.isin(self.projects, projects)
        if since is not None:
            mask = (self.ts >= since) if mask is None else mask & (self.ts >= since)
        if until is not None:
            mask = (self.ts <= until) if mask is None else mask & (self.ts <= until)
        allowed = cos if mask is None else np.where(mask, cos, -np.inf)
        # Smooth only around the best raw matches: a chunk outside them whose neighbours are outside them
        # too cannot climb into the top n, and the whole matrix need not be touched twice.
        shortlist = min(len(cos), max(4 * n, 400))
        pre = np.argpartition(-allowed, shortlist - 1)[:shortlist]
        cand = np.unique(np.concatenate([pre, self.neighbours[:, pre].ravel()]))
        cand = cand[cand >= 0]
        scores = cos[cand].astype(np.float64)
        links = self.neighbours[:, cand]
        for (before, after), weight in zip(((1, 2), (0, 3)), NEIGHBOUR_WEIGHTS, strict=True):
            near = np.maximum(_pick(cos, links[before]), _pick(cos, links[after]))
            scores += weight * np.where(np.isfinite(near), near, 0.0)
        if mask is not None:
            scores = np.where(mask[cand], scores, -np.inf)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        top = top[np.isfinite(scores[top])]
        return [int(i) for i in self.ids[cand[top]]], scores[top]


class _Done:
    """A result already at hand, shaped like a Future."""

    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def _matvec(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """matrix @ vector on torch's thread pool when torch is loaded (it is, once a query was embedded).

    numpy's BLAS threads busy-wait after a call; next to torch's own pool on 2 cores that made the next query
    embedding 3-4x slower (measured: 33 ms instead of 9 ms). One pool avoids the fight.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return matrix @ vector
    return (torch.from_numpy(matrix) @ torch.from_numpy(np.ascontiguousarray(vector))).numpy()


def _pick(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """values[rows] with -inf where a row is -1 (no such neighbour)."""
    return np.where(rows >= 0, values[np.maximum(rows, 0)], -np.inf)


def _zscores(ids: list[int], scores: np.ndarray) -> dict[int, float]:
    """Scores of one ranking, standardised over its candidates and shifted so the worst is 0."""
    if not ids:
        return {}
    scores = np.asarray(scores, dtype=np.float64)
    std = scores.std()
    z = (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)
    z -= z.min()
    return dict(zip(ids, z.tolist(), strict=True))


class Retriever:
    """Hybrid search over one store. Keep one per process: it holds the vector matrix."""

    def __init__(self, conn: sqlite3.Connection, embedder: Embedder | None = None, *, fusion: str = "zscore"):
        if fusion not in FUSIONS:
            raise RetrievalError(f"fusion={fusion!r}: choose one of {', '.join(FUSIONS)}")
        self.conn = conn
        self.embedder = embedder
        self.fusion = fusion if embedder is not None else "bm25"
        self.index = VectorIndex(embedder.model_name) if embedder is not None else None
        self._scratch = False  # the temp tables _stems uses exist on this connection
        self._executor: ThreadPoolExecutor | None = None
        self._vectors: dict[str, np.ndarray] = {}  # query -> its vector, up to QUERY_CACHE

    def _embed_query(self, query: str, threads: int | None) -> np.ndarray | None:
        """The query's vector; None, and BM25 from here on, when the store has vectors but this machine has
        no embedding model (a core install that never ran `lmm-mcp setup`, a model folder since removed)."""
        if (cached := self._vectors.get(query)) is not None:
            return cached
        try:
            vector = self.embedder.encode([query], threads=threads)[0]
        except (EmbeddingModelMissing, FileNotFoundError) as e:
            print(f"lmm-mcp: searching with BM25 alone: {e}", file=sys.stderr)
            self.embedder, self.index, self.fusion = None, None, "bm25"
            return None
        if len(self._vectors) >= QUERY_CACHE:
            self._vectors.clear()  # a fresh start costs one encoding a query; no order to keep across threads
        self._vectors[query] = vector
        return vector

    def retrieve(
        self,
        query: str,
        k: int = 10,
        project: str | None = None,
        since: str | float | datetime | None = None,
        until: str | float | datetime | None = None,
    ) -> list[Hit]:
        if k < 1:
            raise RetrievalError("k must be at least 1")
        projects = resolve_projects(self.conn, project) if project else None
        if projects == []:
            return []
        since_ts, until_ts = parse_since(since), parse_since(until)
        depth = max(CANDIDATES, 2 * k)
        use_vectors = self.fusion != "bm25" and self.index is not None and self.embedder is not None
        if use_vectors:
            self.index.refresh(self.conn)
            use_vectors = len(self.index.ids) > 0
        lexical = None
        if self.fusion != "vector":
            args = (query, depth, projects, since_ts, until_ts)
            # SQLite and torch both release the GIL: score BM25 while the query is embedded.
            lexical = self._pool().submit(self._bm25, *args) if use_vectors else _Done(self._bm25(*args))
        vec_ids, vec_scores, qvec = [], np.zeros(0), None
        if use_vectors:
            # One core embeds while the other runs BM25: two torch threads here would fight the BM25
            # thread for the same two cores (measured at 100k chunks: p95 61 ms with 2, 48 ms with 1).
            qvec = self._embed_query(query, 1 if lexical is not None else None)
            if qvec is None and lexical is None:  # vector-only search, and no model: BM25 after all
                lexical = _Done(self._bm25(query, depth, projects, since_ts, until_ts))
        if qvec is not None:
            # The matrix product too: numpy's spinning BLAS threads would take BM25's core.
            with blas_threads(1 if lexical is not None else None):
                vec_ids, vec_scores = self.index.search(qvec, depth, projects, since_ts, until_ts)
        lex_ids, lex_scores = lexical.result() if lexical is not None else ([], np.zeros(0))
        fused: dict[int, float] = {}
        if self.fusion == "rrf":
            for ranking in (lex_ids, vec_ids):
                for rank, chunk_id in enumerate(ranking):
                    fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        else:
            weights = {"zscore": (BM25_WEIGHT, 1 - BM25_WEIGHT), "bm25": (1.0, 0.0), "vector": (0.0, 1.0)}
            w_lex, w_vec = weights[self.fusion]
            for ranking, weight in (
                (_zscores(lex_ids, lex_scores), w_lex),
                (_zscores(vec_ids, vec_scores), w_vec),
            ):
                for chunk_id, z in ranking.items():
                    fused[chunk_id] = fused.get(chunk_id, 0.0) + weight * z
            for chunk_id, superseded in self._memory_chunks(list(fused)):
                fused[chunk_id] += SUPERSEDED_PRIOR if superseded else MEMORY_PRIOR
        order = {c: i for i, c in enumerate(lex_ids)} | {
            c: i for i, c in enumerate(vec_ids) if c not in lex_ids
        }  # ties: keep ranker order
        best = sorted(fused, key=lambda c: (-fused[c], order.get(c, 0)))[:k]
        lex_rank = {c: i + 1 for i, c in enumerate(lex_ids)}
        vec_rank = {c: i + 1 for i, c in enumerate(vec_ids)}
        return self._hits(best, fused, query, lex_rank, vec_rank)

    def _memory_chunks(self, ids: list[int]) -> list[tuple[int, bool]]:
        """The stored memories among `ids`, each with whether a later memory replaced it."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(
            "SELECT c.id, m.superseded_by IS NOT NULL FROM chunks c"
            " LEFT JOIN memories m ON m.chunk_id = c.id"
            f" WHERE c.kind = 'memory' AND c.id IN ({marks})",
            ids,
        )
        return [(chunk_id, bool(superseded)) for chunk_id, superseded in rows]

    def recent(
        self,
        k: int,
        project: str | None = None,
        since: str | float | datetime | None = None,
        until: str | float | datetime | None = None,
    ) -> list[Hit]:
        """The chunks of a period or project without a query: session summaries first, then other memories,
        then the transcripts, newest first in each. For "what did we do on ...", "where did we stop"."""
        projects = resolve_projects(self.conn, project) if project else None
        if projects == []:
            return []
        where, args = [], []
        if projects is not None:
            where.append(f"project_id IN ({','.join('?' * len(projects))})")
            args.extend(projects)
        for op, bound in ((">=", parse_since(since)), ("<=", parse_since(until))):
            if bound is not None:
                where.append(f"ts {op} ?")
                args.append(bound)
        rows = self.conn.execute(
            "SELECT id FROM chunks"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY session_key LIKE 'memory:session:%' DESC, kind = 'memory' DESC, ts DESC LIMIT ?",
            [*args, k],
        ).fetchall()
        ids = [r[0] for r in rows]
        return self._hits(ids, {c: 1.0 / (i + 1) for i, c in enumerate(ids)}, "", {}, {})

    def _bm25(
        self, query: str, n: int, projects: list[int] | None, since: float | None, until: float | None
    ) -> tuple[list[int], np.ndarray]:
        match = fts_query(" ".join(self._informative_terms(query)))
        if match is None:
            return [], np.zeros(0)
        sql = "SELECT f.rowid, -f.rank FROM chunks_fts f"  # rank: bm25(1.0, 0.5), configured by the store
        where, args = ["chunks_fts MATCH ?"], [match]
        if projects is not None or since is not None or until is not None:
            sql += " JOIN chunks c ON c.id = f.rowid"
            if projects is not None:
                where.append(f"c.project_id IN ({','.join('?' * len(projects))})")
                args.extend(projects)
            if since is not None:
                where.append("c.ts >= ?")
                args.append(since)
            if until is not None:
                where.append("c.ts <= ?")
                args.append(until)
        sql += " WHERE " + " AND ".join(where) + " ORDER BY f.rank LIMIT ?"
        args.append(n)
        rows = self.conn.execute(sql, args).fetchall()
        return [r[0] for r in rows], np.array([r[1] for r in rows], dtype=np.float64)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmm-bm25")
        return self._executor

    def _informative_terms(self, query: str) -> list[str]:
        """The query's words less those so common they cost much and rank little (see COMMON_TERM_SHARE)."""
        terms = query_terms(query)
        total = self.conn.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()[0]
        if total < PRUNE_FROM or len(terms) < 2:
            return terms
        stems = self._stems(terms)
        unique = sorted(set(stems.values()))
        vocab = dict(
            self.conn.execute(
                f"SELECT term, doc FROM chunks_vocab WHERE term IN ({','.join('?' * len(unique))})", unique
            )
        )
        kept = [t for t in terms if vocab.get(stems.get(t, t), 0) <= COMMON_TERM_SHARE * total]
        return kept or [min(terms, key=lambda t: vocab.get(stems.get(t, t), 0))]

    def _stems(self, terms: list[str]) -> dict[str, str]:
        """Each word as FTS5's tokenizer indexes it (porter stem, folded), via a scratch table in temp."""
        conn = self.conn
        if not self._scratch:
            conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_words USING fts5("
                "w, tokenize='porter unicode61 remove_diacritics 2')"
            )
            conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_words_v USING fts5vocab(temp, query_words, instance)"
            )
            self._scratch = True
        conn.execute("DELETE FROM temp.query_words")
        conn.executemany("INSERT INTO temp.query_words(rowid, w) VALUES (?, ?)", list(enumerate(terms)))
        stems = {}
        for term, row in conn.execute("SELECT term, doc FROM temp.query_words_v"):
            stems.setdefault(terms[row], term)
        return stems

    def _hits(self, ids: list[int], scores: dict[int, float], query: str, lex: dict, vec: dict) -> list[Hit]:
        if not ids:
            return []
        rows = self.conn.execute(
            "SELECT c.id, c.session_id, c.uuid, c.timestamp, p.path, c.kind, c.text, c.session_key,"
            " m.superseded_by IS NOT NULL, c.origin FROM chunks c LEFT JOIN projects p ON p.id = c.project_id"
            " LEFT JOIN memories m ON m.chunk_id = c.id AND c.kind = 'memory'"
            f" WHERE c.id IN ({','.join('?' * len(ids))})",
            ids,
        ).fetchall()
        by_id = {r[0]: r for r in rows}
        terms = query_terms(query)
        hits = []
        for chunk_id in ids:
            r = by_id.get(chunk_id)
            if r is None:
                continue  # deleted by a concurrent re-chunk since ranking
            hits.append(
                Hit(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5],
                    r[6],
                    make_snippet(r[6], terms),
                    scores[chunk_id],
                    lex.get(chunk_id),
                    vec.get(chunk_id),
                    r[7],
                    bool(r[8]),
                    r[9] or "third_party",
                )
            )
        return hits
