"""Crash-safe files: the trainer's one set of small primitives for writing (and reading back) its files.

    doc = read_json(run / "result.json")                  # {} when missing, torn or not an object
    write_json(run / "result.json", doc, indent=True)
    write_bytes(models / "ACTIVE", b"v0003-20261105-101500\n")
    stats = write_jsonl(run / "sft_train.jsonl", rows)    # {"rows", "bytes", "sha256"}
    replace_dir(model.save_pretrained, run / "best")       # a folder, written beside and swapped in
    recover_dir(run / "best")                              # after a crash: finish or undo a cut-short swap

Every write goes to a temporary name beside its target and is renamed over it (`os.replace`, atomic on POSIX
and Windows), so a crash or a kill -9 leaves the old version or the new one whole, never half of either. Files
are flushed and fsynced before the rename, so the new name never points at data still in the page cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; {} when the file is missing, unreadable, torn, or holds something else."""
    try:
        value = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def write_json(path: Path, doc: Any, *, indent: bool = False) -> None:
    """Write `doc` as JSON; `indent` for files people read (two spaces, a final newline).

    NaN and infinities become null (JSON has no such numbers), keys that are not strings become their text,
    and values JSON does not know (a Path) their str().
    """
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    if indent:
        option |= orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    write_bytes(path, orjson.dumps(doc, default=_fallback, option=option))


def write_bytes(path: Path, data: bytes) -> None:
    """Replace the file at `path` with `data`; its folder is created when missing."""
    with replacing(path) as fh:
        fh.write(data)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Write one JSON object a line; what was written: {"rows": n, "bytes": size, "sha256": hex digest}."""
    digest, count, size = hashlib.sha256(), 0, 0
    with replacing(path) as fh:
        for row in rows:
            line = orjson.dumps(row) + b"\n"
            fh.write(line)
            digest.update(line)
            count += 1
            size += len(line)
    return {"rows": count, "bytes": size, "sha256": digest.hexdigest()}


@contextmanager
def replacing(path: Path) -> Iterator[IO[bytes]]:
    """A binary file to write `path`'s new contents to, renamed over `path` when the block ends without error.

    with replacing(out_dir / "state.pt") as fh:
        torch.save(payload, fh)  # streamed to disk, never whole in memory as bytes
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per process and thread, so two writers of one file never share a temp file, and a file's
    # default permissions (unlike mkstemp's 0600) so readers of the target can still read it.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def replace_dir(write: Callable[[Path], None], target: Path) -> None:
    """`write(folder)` fills a new folder beside `target`, which is then swapped in for the old one.

    A folder cannot be renamed over a non-empty one, so the swap takes two renames (old aside, new in); a
    crash between them leaves `<target>.old`, which `recover_dir` puts back.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(tmp)
        old = _old(target)
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def recover_dir(target: Path) -> None:
    """Undo a `replace_dir` swap cut short between its two renames, and drop temp folders of a killed write."""
    target = Path(target)
    old = _old(target)
    if old.is_dir():
        if target.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, target)
    if target.parent.is_dir():
        for tmp in target.parent.iterdir():
            if tmp.name.startswith(f".{target.name}-") and tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)


def _old(target: Path) -> Path:
    return target.with_name(target.name + ".old")


def _fallback(value: Any) -> Any:
    # orjson writes float subclasses as strings; a number should stay a number
    return float(value) if isinstance(value, float) else str(value)
