"""Locks that only a living process can hold: `fcntl.flock` on a file that is never deleted.

    lock = FileLock(run_dir / "owner.lock")
    if not lock.acquire():                     # never waits
        raise ...(f"in use by {holder(lock.path)}")
    lock.describe({"pid": os.getpid()})        # for display only
    ...
    lock.release()                             # or just end: the kernel releases it

The kernel drops a flock when the last descriptor of its open file goes, however the process ends (kill -9
and power loss included), so a crash never leaves a lock behind and no pid is ever checked for liveness. A
descriptor passed to a child (`subprocess.Popen(pass_fds=...)`) carries the lock with it: the child then holds
it until it exits, whatever becomes of the parent.

The file may carry a short JSON description of its holder (job id, pid, stage) for people and status tools;
it says nothing about whether the holder lives. The file is never unlinked or replaced: a lock lives on the
inode, and a process that opened a replaced file would lock a different one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import orjson


class FileLock:
    """An exclusive flock on `path`, taken without waiting."""

    def __init__(self, path: Path, fd: int | None = None):
        self.path = Path(path)
        self.fd = fd  # set while held

    @classmethod
    def adopt(cls, path: Path, fd: int) -> FileLock:
        """The lock behind a descriptor a parent passed down; fails if that descriptor does not hold it."""
        os.set_inheritable(fd, False)  # ours alone from here: our own children must not keep it alive
        lock = cls(path, fd)
        given, named = os.fstat(fd), os.stat(path)
        if (given.st_dev, given.st_ino) != (named.st_dev, named.st_ino):
            raise OSError(f"descriptor {fd} is not {path}")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the same open file: succeeds only if it is ours
        return lock

    @property
    def held(self) -> bool:
        return self.fd is not None

    def acquire(self) -> bool:
        """Take the lock if it is free; True when this object now holds it."""
        if self.fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)  # a description left by a holder that died belongs to no one now
        self.fd = fd
        return True

    def describe(self, info: dict[str, Any]) -> None:
        """Write the holder's description into the lock file (readers retry if they catch it half written)."""
        assert self.fd is not None, "describe a lock only while holding it"
        data = orjson.dumps(info)
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        """Close our descriptor: the lock is free once no process keeps one (a child it was passed to may)."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def __enter__(self) -> FileLock:
        if not self.acquire():
            raise BlockingIOError(f"{self.path} is held by another process")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def holder(path: Path) -> dict[str, Any] | None:
    """None when nobody holds the lock at `path`; else the holder's description ({} while being written).

    The probe takes a shared lock for an instant: a process taking the lock at that very moment fails once and
    should look again (`FileLock.acquire` never waits, so callers loop).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                info = orjson.loads(os.pread(fd, 65536, 0))
            except orjson.JSONDecodeError:
                return {}
            return info if isinstance(info, dict) else {}
        return None  # free (closing the descriptor drops the probe's shared lock)
    finally:
        os.close(fd)
