"""The raw archive: a redacted, gzip-compressed copy of every transcript line ingested.

Claude Code deletes transcripts after 30 days; the archive keeps them so memory survives and a better
parser can re-read history later (`gzip -dc` gives the JSONL back). Each ingest appends one gzip member.
The store records how many archive bytes belong to committed ingests: before appending, the file is cut
back to that size, so a process killed between archive write and commit leaves no duplicate lines.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

COMPRESS_LEVEL = 3  # ~5x smaller than the JSONL at well over the ingest rate


def archive_path(archive_dir: Path, source: Path, claude_dir: Path | None, generation: int) -> Path:
    """Mirror the transcript's place under the Claude folder; a re-read file gets a new generation."""
    try:
        rel = source.resolve().relative_to(claude_dir.resolve()) if claude_dir else None
    except ValueError:
        rel = None
    if rel is None:
        rel = Path("_other") / source.resolve().as_posix().lstrip("/").replace("/", "-")
    suffix = f".{generation}" if generation > 1 else ""
    return archive_dir / rel.parent / f"{rel.name}{suffix}.gz"


def append(path: Path, committed_size: int, lines: list[bytes]) -> int:
    """Cut the archive back to `committed_size`, append `lines` as one gzip member; return the new size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size != committed_size:
            os.ftruncate(fd, committed_size)
        if not lines:
            return committed_size
        packer = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, 31)  # wbits 31: a gzip member
        blob = b"".join(packer.compress(line) for line in lines) + packer.flush()
        os.lseek(fd, committed_size, os.SEEK_SET)
        view = memoryview(blob)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        return committed_size + len(blob)
    finally:
        os.close(fd)
