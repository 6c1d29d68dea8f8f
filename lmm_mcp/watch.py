"""`lmm-mcp watch`: keep the store current while Claude Code writes transcripts.

    lmm-mcp watch [--claude-dir DIR] [--debounce 2] [--embed]

A watchdog observer follows the Claude projects folder (recursively). A `*.jsonl` file that is created, grows
or is moved in is ingested once it has been quiet for `--debounce` seconds (a session writes a burst of lines
per turn: one ingest per burst, not per line); files that come due together are ingested as one batch, and a
file that never goes quiet (a long tool loop) is still ingested every MAX_WAIT_FACTOR x debounce seconds.
Each batch is `App.ingest(paths)` (ingest, memory refresh, and with `--embed` embedding), logged as one line
on stderr; an embedding failure is logged with the batch, whose ingest stands. At start the
whole folder is caught up the same way (only new lines are read). Runs until SIGINT or SIGTERM.

No embedding by default: loading the embedding model costs ~1 GB and seconds of CPU, and BM25 finds new
lines at once; `lmm-mcp ingest` (or `--embed` here) embeds what is missing later.

The core is `Watcher` (start, stop, wait_idle), which tests drive in-process on a temporary folder.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_DEBOUNCE = 2.0
MAX_WAIT_FACTOR = 10  # a file busy for this many debounce periods is ingested anyway


class WatchError(ValueError):
    """The watcher cannot start; the message says why and what to do."""


class _Stopped(Exception):
    """Raised inside an ingest to abandon it between files when the watcher stops."""


class Watcher:
    """Ingests transcripts under `cfg.claude_dir` as they are written; one worker thread, one connection."""

    def __init__(
        self,
        cfg,
        *,
        debounce: float = DEFAULT_DEBOUNCE,
        embed: bool = False,
        log: Callable[[str], None] | None = None,
    ):
        self.cfg = cfg
        self.root = Path(cfg.claude_dir).expanduser()
        self.debounce = max(0.0, debounce)
        self.embed = embed
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.batches = 0  # ingests done, the catch-up included
        self.totals: dict[str, int] = {"files": 0, "turns": 0, "chunks": 0, "errors": 0}
        self._pending: dict[Path, tuple[float, float]] = {}  # path -> (first event, last event), monotonic
        self._cond = threading.Condition()
        self._busy = True  # until the catch-up is done
        self._stopping = False
        self._observer: Any = None
        self._worker: threading.Thread | None = None
        self.error: str | None = None  # why the worker gave up, if it did

    @property
    def alive(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    # --------------------------------------------------------------------------------------------- public

    def start(self) -> None:
        """Watch first, then catch up, so nothing written in between is missed."""
        if not self.root.is_dir():
            raise WatchError(f"{self.root} is not a folder: start Claude Code once, or pass --claude-dir")
        from watchdog.observers import Observer

        self._observer = Observer()
        _watch(self._observer, self)
        self._observer.start()
        self._worker = threading.Thread(target=self._run, name="lmm-watch", daemon=True)
        self._worker.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop watching; an ingest under way stops after its current file (each file commits on its own)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._worker is not None:
            self._worker.join(timeout)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until the catch-up is done and no file waits or is being ingested; False on timeout.

        A write that happened just before the call may not have reached the observer yet: tests poll the
        store and call this again.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy or self._pending:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping:
                    return False
                self._cond.wait(left)
        return True

    def notify(self, path: Path) -> None:
        """A transcript under the root was created, written or moved in."""
        if "tool-results" in path.parts:
            return
        now = time.monotonic()
        with self._cond:
            first = self._pending.get(path, (now, now))[0]
            self._pending[path] = (first, now)
            self._cond.notify_all()

    # --------------------------------------------------------------------------------------------- worker

    def _run(self) -> None:
        from lmm_mcp.app import App

        try:
            app = App.open(self.cfg)  # this thread's own connection; the embedder, once loaded, is kept
        except Exception as e:
            self.error = f"cannot open the store {self.cfg.db_path}: {e}"
            with self._cond:
                self._busy = False
                self._stopping = True
                self._cond.notify_all()
            return
        try:
            self._batch(app, [self.root], label="catch-up")
            while True:
                paths = self._next_batch()
                if paths is None:
                    return
                self._batch(app, paths, label="ingest")
        finally:
            app.close()
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _next_batch(self) -> list[Path] | None:
        """Block until some files are due; None when stopping."""
        with self._cond:
            self._busy = False
            self._cond.notify_all()
            while not self._stopping:
                now = time.monotonic()
                due = [p for p, (first, last) in self._pending.items() if self._due(first, last, now)]
                if due:
                    for p in due:
                        del self._pending[p]
                    self._busy = True
                    return sorted(due)
                wake = min(
                    (
                        min(last + self.debounce, first + self._max_wait)
                        for first, last in self._pending.values()
                    ),
                    default=None,
                )
                self._cond.wait(None if wake is None else max(0.01, wake - now))
            return None

    @property
    def _max_wait(self) -> float:
        return max(self.debounce * MAX_WAIT_FACTOR, 1.0)

    def _due(self, first: float, last: float, now: float) -> bool:
        return now - last >= self.debounce or now - first >= self._max_wait

    def _batch(self, app, paths: list[Path], *, label: str) -> None:
        existing = [p for p in paths if p.exists()]  # deleted since the event: nothing to read
        if not existing:
            return
        started = time.perf_counter()
        try:
            report = app.ingest(existing, embed=self.embed, on_file=self._check_stop)
        except _Stopped:
            return
        except Exception as e:  # a watcher outlives a bad batch: log it, keep watching
            self.totals["errors"] += 1
            self.log(f"watch: {label} of {len(existing)} path(s) failed: {type(e).__name__}: {e}")
            return
        memories, embedded = report.memories, report.chunks_embedded
        self.batches += 1
        for key in ("turns", "chunks"):
            self.totals[key] += getattr(report, key)
        self.totals["files"] += report.files_changed
        self.totals["errors"] += len(report.errors)
        if report.files_changed or report.errors or label == "catch-up":
            line = (
                f"watch: {label}: {report.files_changed}/{report.files} file(s) changed, sessions {report.sessions},"
                f" turns +{report.turns}, chunks +{report.chunks}"
            )
            if memories is not None and report.files_changed:
                line += f", memories {memories.memories} (+{memories.added}, {memories.changed} changed)"
            if self.embed:
                line += f", embedded +{embedded}"
            line += f" in {time.perf_counter() - started:.2f}s"
            for err in report.errors:
                line += f"\nwatch: error: {err}"
            self.log(line)

    def _check_stop(self, _file) -> None:
        if self._stopping:
            raise _Stopped


def _watch(observer, watcher: Watcher) -> None:
    """Schedule `watcher` on its root; watchdog is imported here, so `lmm-mcp` starts without it."""
    from watchdog import events as ev

    class Handler(ev.FileSystemEventHandler):
        def on_any_event(self, event: ev.FileSystemEvent) -> None:
            raw = event.dest_path if event.event_type == ev.EVENT_TYPE_MOVED else event.src_path
            if raw and not event.is_directory:
                path = Path(os.fsdecode(raw))
                if path.suffix == ".jsonl":
                    watcher.notify(path)

    # Folders need no events of their own: for one created or moved in, watchdog reports its files.
    kinds = [ev.FileCreatedEvent, ev.FileModifiedEvent, ev.FileMovedEvent, ev.FileClosedEvent]
    observer.schedule(Handler(), str(watcher.root), recursive=True, event_filter=kinds)


# ------------------------------------------------------------------------------------------------ command


def register(sub, common) -> None:
    p = sub.add_parser(
        "watch",
        parents=[common],
        help="ingest transcripts as Claude Code writes them (until Ctrl-C)",
        description="Watch the Claude projects folder and ingest new and growing transcripts.",
    )
    p.add_argument("--claude-dir", help="Claude projects folder (default: ~/.claude/projects)")
    p.add_argument(
        "--debounce",
        type=float,
        default=DEFAULT_DEBOUNCE,
        help=f"seconds a file must be quiet before it is ingested (default {DEFAULT_DEBOUNCE:g})",
    )
    p.add_argument("--embed", action="store_true", help="embed new chunks too (loads the embedding model)")
    p.set_defaults(run=cmd_watch)


def cmd_watch(cfg, args) -> int:
    if args.debounce < 0:
        raise WatchError("--debounce must be 0 or more seconds")
    watcher = Watcher(cfg, debounce=args.debounce, embed=args.embed)
    done = threading.Event()
    previous = {s: signal.signal(s, lambda *_: done.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        watcher.start()
        print(
            f"watch: watching {watcher.root} (debounce {watcher.debounce:g}s); Ctrl-C stops", file=sys.stderr
        )
        while watcher.alive and not done.wait(1.0):
            pass
    finally:
        watcher.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if watcher.error:
        raise WatchError(watcher.error)
    doc = {"claude_dir": str(watcher.root), "batches": watcher.batches, **watcher.totals}
    if args.json:
        import json

        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        print(
            f"watch: stopped after {watcher.batches} batch(es): {watcher.totals['files']} file change(s), "
            f"turns +{watcher.totals['turns']}, chunks +{watcher.totals['chunks']}"
        )
    sys.stdout.flush()
    return 0
