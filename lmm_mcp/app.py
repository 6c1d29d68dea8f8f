"""The composition root: every part of lmm-mcp is built here, from one `Config`, and nowhere else.

    app = App.open(cfg)                         # the store connection; the rest is built on first use
    report = app.ingest([path])                 # ingest, refresh memories, embed what is missing
    result = app.recaller().recall("how do we run the tests?", project="/home/me/shop")
    job = app.jobs().start({"stage": "sft"})
    app.close()

The CLI, the MCP server's lifespan, `watch`, the hooks and the demo all hold an `App`. Parts are built lazily
and kept, so a process that only reads memories never loads the embedding model, and one that embeds
loads it once. Importing this module costs nothing heavy: numpy, torch and the trainer load inside the parts
that need them.

Ingest has one behaviour everywhere (`App.ingest`): transcripts are read and committed file by file, the
memories of the sessions that changed are re-extracted, then every chunk without a vector is embedded. If
embedding fails (no model files, a broken install, out of memory), nothing ingested is lost: the report
carries `embed_error` and a line in `errors`, search falls back to BM25 for the chunks without vectors, and
the next ingest embeds them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmm_mcp import queries
from lmm_mcp.config import Config
from lmm_mcp.store import connect

if TYPE_CHECKING:
    from lmm_mcp.embed import Embedder
    from lmm_mcp.history import StoreHistory
    from lmm_mcp.ingest import IngestReport
    from lmm_mcp.jobs import Jobs
    from lmm_mcp.recall import Recaller
    from lmm_mcp.retrieval import Retriever


class App:
    """The parts of lmm-mcp over one store connection. One per process (or per thread that writes)."""

    def __init__(self, cfg: Config, conn: sqlite3.Connection):
        self.cfg = cfg
        self.conn = conn
        self._embedder: Embedder | None = None
        self._retrievers: dict[tuple[bool, str], Retriever] = {}
        self._recallers: dict[bool, Recaller] = {}
        self._jobs: Jobs | None = None

    @classmethod
    def open(cls, cfg: Config, *, busy_timeout_ms: int | None = None) -> App:
        """An App on its own connection to the store (created and migrated if needed)."""
        return cls(cfg, connect(cfg.db_path, busy_timeout_ms or cfg.busy_timeout_ms))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ parts

    def embedder(self) -> Embedder:
        """The sentence encoder of `embed_model`; its weights load on the first encode."""
        if self._embedder is None:
            from lmm_mcp.embed import Embedder

            cfg = self.cfg
            self._embedder = Embedder(
                cfg.embed_model, max_tokens=cfg.embed_max_tokens, batch_size=cfg.embed_batch, home=cfg.home
            )
        return self._embedder

    def retriever(self, *, vectors: bool = True, fusion: str = "zscore") -> Retriever:
        """Hybrid retrieval; BM25 alone when `vectors` is off or the store holds no vectors yet."""
        key = (vectors, fusion)
        if key not in self._retrievers:
            from lmm_mcp.retrieval import Retriever

            use = vectors and fusion != "bm25" and queries.has_vectors(self.conn)
            self._retrievers[key] = Retriever(self.conn, self.embedder() if use else None, fusion=fusion)
        return self._retrievers[key]

    def recaller(self, *, vectors: bool = True) -> Recaller:
        """Recall with the active adapter; `vectors=False` keeps it pure SQLite (the hooks)."""
        if vectors not in self._recallers:
            from lmm_mcp.recall import Recaller

            self._recallers[vectors] = Recaller(self.cfg, self.conn, lambda: self.retriever(vectors=vectors))
        return self._recallers[vectors]

    def jobs(self) -> Jobs:
        if self._jobs is None:
            from lmm_mcp.jobs import Jobs

            self._jobs = Jobs(self.cfg)
        return self._jobs

    def history(self) -> StoreHistory:
        """The store as the trainer's `History`, retrieving as recall does."""
        from lmm_mcp.history import StoreHistory

        return StoreHistory(self.conn, self.retriever())

    # ------------------------------------------------------------------------------------------ ingest

    def ingest(
        self,
        paths: Iterable[Path] | None = None,
        *,
        embed: bool = True,
        on_file: Callable[[Any], None] | None = None,
        on_embedded: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """Ingest files or folders (default: the Claude projects folder), refresh memories, embed.

        See the module docstring for what happens when embedding fails. `on_file` is called after each
        transcript (and may raise to abandon the rest: each file has committed on its own).
        """
        from lmm_mcp.ingest import Ingester
        from lmm_mcp.memories import refresh_memories

        report = Ingester(self.cfg, self.conn).ingest(list(paths) if paths else None, progress=on_file)
        report.memories = refresh_memories(self.conn)
        if embed:
            from lmm_mcp.embed import embed_pending

            started = time.perf_counter()
            try:
                lock = self.cfg.home / "embed.lock"  # one embedding process per home (lmm_mcp.embed)
                report.chunks_embedded = embed_pending(self.conn, self.embedder(), on_embedded, lock=lock)
            except Exception as e:  # BM25 still finds everything; say why vectors lag
                report.embed_error = f"{type(e).__name__}: {e}"
                report.errors.append(
                    f"embedding skipped ({report.embed_error}); search uses BM25 until an ingest embeds"
                )
            report.embed_seconds = time.perf_counter() - started
        return report
