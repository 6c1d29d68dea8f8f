"""Hybrid retrieval: FTS5 BM25 and embedding cosine, fused by reciprocal rank.

    retriever = Retriever(conn, Embedder(cfg.embed_model))
    hits = retriever.retrieve("how did we fix the flaky websocket test", k=8, project="/src/app")

BM25 finds the exact identifiers a coding memory lives on (function names, flags, error strings); vectors
find the paraphrases. Reciprocal-rank fusion was chosen over a weighted sum of normalised scores by
measurement on LoCoMo (docs/benchmarks.md). The vectors sit in one in-memory matrix per process, loaded from
the store on first use and topped up as other processes add chunks: a brute-force dot product over 100k
chunks costs a few milliseconds, and needs no index to rebuild.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from lmm_mcp.embed import Embedder
from lmm_mcp.store import resolve_projects

RRF_K = 60  # the constant from Cormack et al.; ranks past ~60 contribute little
CANDIDATES = 100  # depth taken from each ranker before fusion
SNIPPET_CHARS = 240
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
        }


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
    """All chunk vectors of one model as a matrix, with project and time per row for filtering."""

    def __init__(self, model: str):
        self.model = model
        self.ids = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self.projects = np.zeros(0, dtype=np.int64)
        self.ts = np.zeros(0, dtype=np.float64)
        self._max_id = 0
        self._deletes = -1

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Top up with vectors added since the last call; reload all if chunks were deleted or missed."""
        deletes = int(conn.execute("SELECT value FROM meta WHERE key = 'chunk_deletes'").fetchone()[0])
        if deletes != self._deletes:
            self.__init__(self.model)  # type: ignore[misc]
            self._deletes = deletes
        new = self._load(conn, self._max_id)
        if new:
            self._append(*new)
        count = conn.execute("SELECT count(*) FROM vectors WHERE model = ?", (self.model,)).fetchone()[0]
        if count != len(self.ids):  # another process filled in below our high-water mark
            self.__init__(self.model)  # type: ignore[misc]
            self._deletes = deletes
            full = self._load(conn, 0)
            if full:
                self._append(*full)

    def _load(self, conn: sqlite3.Connection, after: int):
        rows = conn.execute(
            "SELECT v.chunk_id, v.vec, coalesce(c.project_id, -1), coalesce(c.ts, 0) FROM vectors v"
            " JOIN chunks c ON c.id = v.chunk_id WHERE v.model = ? AND v.chunk_id > ? ORDER BY v.chunk_id",
            (self.model, after),
        ).fetchall()
        if not rows:
            return None
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        projects = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
        ts = np.fromiter((r[3] for r in rows), dtype=np.float64, count=len(rows))
        return ids, matrix, projects, ts

    def _append(self, ids, matrix, projects, ts) -> None:
        if len(self.ids):
            self.matrix = np.concatenate([self.matrix, matrix])
        else:
            self.matrix = np.ascontiguousarray(matrix)
        self.ids = np.concatenate([self.ids, ids])
        self.projects = np.concatenate([self.projects, projects])
        self.ts = np.concatenate([self.ts, ts])
        self._max_id = int(self.ids[-1])

    def search(
        self, query: np.ndarray, n: int, projects: list[int] | None, since: float | None, until: float | None
    ) -> list[int]:
        """Chunk ids of the n best cosine matches that pass the filters, best first."""
        if not len(self.ids):
            return []
        scores = self.matrix @ query
        mask = None
        if projects is not None:
            mask = np.isin(self.projects, projects)
        if since is not None:
            mask = (self.ts >= since) if mask is None else mask & (self.ts >= since)
        if until is not None:
            mask = (self.ts <= until) if mask is None else mask & (self.ts <= until)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        return [int(self.ids[i]) for i in top if np.isfinite(scores[i])]


class Retriever:
    """Hybrid search over one store. Keep one per process: it holds the vector matrix."""

    def __init__(self, conn: sqlite3.Connection, embedder: Embedder | None = None, *, fusion: str = "rrf"):
        if fusion not in ("rrf", "bm25", "vector"):
            raise RetrievalError(f"fusion={fusion!r}: choose rrf, bm25 or vector")
        self.conn = conn
        self.embedder = embedder
        self.fusion = fusion if embedder is not None else "bm25"
        self.index = VectorIndex(embedder.model_name) if embedder is not None else None

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
        lexical = self._bm25(query, depth, projects, since_ts, until_ts) if self.fusion != "vector" else []
        semantic: list[int] = []
        if self.fusion != "bm25" and self.index is not None and self.embedder is not None:
            self.index.refresh(self.conn)
            if len(self.index.ids):
                qvec = self.embedder.encode([query])[0]
                semantic = self.index.search(qvec, depth, projects, since_ts, until_ts)
        fused: dict[int, float] = {}
        for ranking in (lexical, semantic):
            for rank, chunk_id in enumerate(ranking):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused, key=fused.__getitem__, reverse=True)[:k]
        lex_rank = {c: i + 1 for i, c in enumerate(lexical)}
        vec_rank = {c: i + 1 for i, c in enumerate(semantic)}
        return self._hits(best, fused, query, lex_rank, vec_rank)

    def _bm25(
        self, query: str, n: int, projects: list[int] | None, since: float | None, until: float | None
    ) -> list[int]:
        match = fts_query(query)
        if match is None:
            return []
        sql = "SELECT f.rowid FROM chunks_fts f"
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
        return [r[0] for r in self.conn.execute(sql, args)]

    def _hits(self, ids: list[int], scores: dict[int, float], query: str, lex: dict, vec: dict) -> list[Hit]:
        if not ids:
            return []
        rows = self.conn.execute(
            "SELECT c.id, c.session_id, c.uuid, c.timestamp, p.path, c.kind, c.text FROM chunks c"
            f" LEFT JOIN projects p ON p.id = c.project_id WHERE c.id IN ({','.join('?' * len(ids))})",
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
                )
            )
        return hits
