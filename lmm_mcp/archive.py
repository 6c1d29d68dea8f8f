"""The raw archive: a redacted, gzip-compressed copy of every transcript line ingested.

Claude Code deletes transcripts after 30 days; the archive keeps them so memory survives and a better
parser can re-read history later (`gzip -dc` gives the JSONL back). Each ingest appends one gzip member.
The store records how many archive bytes belong to committed ingests: before appending, the file is cut
back to that size, so a process killed between archive write and commit leaves no duplicate lines.

Ingest reads the archive back (`lmm-mcp ingest <home>/archive`, `lmm-mcp rebuild`): `transcript_name` maps
an archive file to the transcript it copies, and lines read from the archive are not archived again.
"""

from __future__ import annotations

import glob
import gzip
import os
import re
import zlib
from pathlib import Path
from typing import BinaryIO

COMPRESS_LEVEL = 3  # ~5x smaller than the JSONL at well over the ingest rate
_NAME = re.compile(r"(?P<name>.+\.jsonl)(?:\.(?P<generation>\d+))?\.gz")


def archive_path(archive_dir: Path, source: Path, claude_dir: Path | None, generation: int) -> Path:
    """Mirror the transcript's place under the Claude folder; a re-read file gets a new generation."""
    try:
        rel = source.resolve().relative_to(claude_dir.resolve()) if claude_dir else None
    except ValueError:
        rel = None
    if rel is None:
        rel = Path("_other") / source.resolve().as_posix().lstrip("/").replace("/", "-")
    suffix = f".{generation}" if generation > 1 else ""
    name = _NAME.fullmatch(rel.name)  # an archive file from elsewhere: not `.gz.gz`
    return archive_dir / rel.parent / f"{name['name'] if name else rel.name}{suffix}.gz"


def transcript_name(path: Path) -> tuple[str, int] | None:
    """`s1.jsonl.gz` -> ("s1.jsonl", 1), `s1.jsonl.2.gz` -> ("s1.jsonl", 2); None for other files."""
    found = _NAME.fullmatch(path.name)
    if found is None:
        return None
    return found["name"], int(found["generation"] or 1)


def generations(path: Path) -> list[Path]:
    """Every archive file of the transcript that `path` (one of its generations) copies."""
    known = transcript_name(path)
    if known is None:
        return [path] if path.exists() else []
    return sorted(p for p in path.parent.glob(f"{glob.escape(known[0])}*.gz") if _same(p, known[0]))


def _same(path: Path, name: str) -> bool:
    other = transcript_name(path)
    return other is not None and other[0] == name


def open_lines(path: Path) -> BinaryIO:
    """A transcript or archive file for reading lines: archive files are decompressed as they are read
    (every gzip member in turn)."""
    if transcript_name(path) is not None:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


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
