"""Retrain jobs: the trainer pipeline in a separate background process, one per home folder.

    jobs = Jobs(cfg)
    job = jobs.start({"stage": "sft", "max_steps": 20})  # training options; returns at once, joins a running job
    job = jobs.get(job.job_id)              # state, step, loss, ETA, adapter version when done

A job is `python -m lmm_mcp train --job-dir <home>/jobs/<id> ...` started in its own session: GPU memory is
freed when it exits, the server keeps answering meanwhile, and a crash stays in the child. The child writes
`progress.json` (atomically, on every report) and `result.json`; its stderr goes to `log.txt`.

One job per home across every server process and shell: `<home>/jobs/retrain.lock` is held with `flock`
(`trainer.locks`) by the training process itself, so a crash, a reboot or a kill -9 frees it and a reused pid
can never keep it. The retrain tool's starter takes it and passes it to the child (`--lock-fd`); `lmm-mcp
train` from a shell takes the same lock and gets a job folder too, so either kind is visible to the other.
The lock file also names the job, for display and for joining; whether that job lives is told by its own
lock, `<home>/jobs/<id>/job.lock`, held the same way by the same process (so a dead job's name, left in the
file for the instant before a new holder writes its own, is never taken for the running job).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lmm_mcp.config import Config
from lmm_mcp.extras import TrainingUnavailable, require_training
from trainer.atomic import read_json, write_json
from trainer.devices import gpu_visible
from trainer.locks import FileLock, holder

JOB_LOCK = (
    "job.lock"  # in a job's folder, held by its process: a dead job's words in retrain.lock are ignored
)
TAKE_LOCK_S = 10.0  # how long `start` keeps looking while jobs end and start around it


class JobError(RuntimeError):
    """A retrain job cannot start or be found; the message says what to do."""


@dataclass
class Job:
    job_id: str
    state: str  # running | done | failed
    stage: str
    pid: int | None = None
    started: str | None = None
    finished: str | None = None
    step: int | None = None
    total_steps: int | None = None
    phase: str | None = None  # the stage reporting: cpt | sft | eval
    loss: float | None = None
    val_loss: float | None = None
    eta_s: float | None = None
    adapter_version: str | None = None
    error: str | None = None
    log_path: str | None = None
    joined: bool = False  # this call found the job already running

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Jobs:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.root = cfg.home / "jobs"
        self.lock = self.root / "retrain.lock"
        self._children: dict[int, subprocess.Popen] = {}

    def start(self, options: dict[str, Any] | None = None) -> Job:
        """Start a retrain with these training options (`trainer.options`), or join the one running."""
        from trainer import options as training_options
        from trainer.pipeline import PipelineConfig

        try:
            argv = training_options.to_argv(options or {}, PipelineConfig)
        except training_options.OptionError as e:
            raise JobError(str(e)) from e
        stage = (options or {}).get("stage") or "both"
        try:
            require_training("retrain")
        except TrainingUnavailable as e:
            raise JobError(str(e)) from None
        if not self.cfg.allow_cpu_training and not gpu_visible():
            raise JobError(
                "no GPU here, and training on the CPU is off: set allow_cpu_training = true in "
                f"{self.cfg.home / 'config.toml'} to train anyway (slow, fine for small models), "
                "or run `lmm-mcp train --prepare-only` here and `accelerate launch -m trainer` on a GPU box"
            )
        deadline = time.monotonic() + TAKE_LOCK_S
        while time.monotonic() < deadline:
            running = self.running()
            if running is not None:
                running.joined = True
                return running
            lock = FileLock(self.lock)
            if lock.acquire():
                try:
                    return self._spawn(lock, stage, argv)
                finally:
                    lock.release()  # the child keeps its own descriptor, and with it the lock
            time.sleep(0.02)  # a job just ending, or another process looking: look again
        raise JobError(f"could not take {self.lock}: a job keeps ending and starting; try again")

    @contextlib.contextmanager
    def hold(self, stage: str, *, job_dir: Path | None = None, lock_fd: int | None = None) -> Iterator[Path]:
        """The retrain lock for a training run in this process; yields its job folder.

        With `lock_fd` (a job the retrain tool started) the lock is the one its starter passed down; else it
        is taken here (`lmm-mcp train` from a shell), or JobError says which job holds it.
        """
        with contextlib.ExitStack() as held:
            if lock_fd is not None:
                try:
                    held.callback(FileLock.adopt(self.lock, lock_fd).release)
                except OSError as e:
                    raise JobError(f"the retrain lock was not passed down to this job ({e})") from e
                if job_dir is None:
                    raise JobError("--lock-fd is for a job the retrain tool started: it needs --job-dir")
                yield job_dir  # its starter took the job's own lock too, and passed it down
                return
            lock, deadline = FileLock(self.lock), time.monotonic() + TAKE_LOCK_S
            while not lock.acquire():
                job = self.running()  # None: a job just ending, or another process looking: look again
                if job is not None or time.monotonic() > deadline:
                    who = f"job {job.job_id} (pid {job.pid})" if job else "another process"
                    raise JobError(
                        f"a retrain is already running: {who}; wait for it (memory_status shows its progress)"
                    )
                time.sleep(0.02)
            held.callback(lock.release)
            folder = job_dir or self.root / _new_job_id()
            held.callback(self._own_job(folder).release)
            meta = {"job_id": folder.name, "pid": os.getpid(), "stage": stage, "started": _now()}
            write_json(folder / "job.json", {**meta, "cmd": sys.argv})
            lock.describe(meta)
            yield folder

    def running(self) -> Job | None:
        """The job holding the retrain lock, or None. Only the OS locks say whether it lives."""
        for _ in range(50):
            info = self._holder()
            if info is None:
                return None
            job_id = info.get("job_id")
            if isinstance(job_id, str) and self._alive(job_id):
                folder = self.root / job_id
                if (folder / "result.json").exists():
                    return None  # done with the work; it lets go as it exits
                if not (folder / "job.json").exists():  # its starter is spawning it now
                    stage = info.get("stage", "both")
                    return Job(job_id, "running", stage, pid=info.get("pid"), phase="starting")
                return self.get(job_id)
            time.sleep(0.02)  # the lock's new holder is describing itself in place of a dead one's words
        return Job("unknown", "running", "both", phase="starting")

    def get(self, job_id: str | None = None) -> Job:
        """A job's state from its folder (default: the running one, else the newest)."""
        if job_id is None:
            running = self.running()
            if running is not None:
                return running
            folders = sorted(self.root.glob("j-*")) if self.root.is_dir() else []
            if not folders:
                raise JobError("no retrain job has run yet: call retrain")
            job_id = folders[-1].name
        folder = self.root / job_id
        meta = read_json(folder / "job.json")
        if not meta:
            raise JobError(f"no job {job_id!r}")
        progress, result = read_json(folder / "progress.json"), read_json(folder / "result.json")
        alive = not result and self._alive(job_id)
        states = {True: "done", False: "failed", None: "running" if alive else "failed"}
        state = states[bool(result.get("ok")) if result else None]
        error = result.get("error") if result else (None if alive else _last_error(folder / "log.txt"))
        return Job(
            job_id=job_id,
            state=state,
            stage=meta.get("stage", "both"),
            pid=meta.get("pid"),
            started=meta.get("started"),
            finished=result.get("finished") if result else None,
            step=progress.get("step"),
            total_steps=progress.get("total_steps"),
            phase=progress.get("stage"),
            loss=progress.get("loss"),
            val_loss=progress.get("val_loss"),
            eta_s=progress.get("eta_s"),
            adapter_version=result.get("adapter_version") if result else None,
            error=error,
            log_path=str(folder / "log.txt"),
        )

    # ------------------------------------------------------------------------------------------ internals

    def _spawn(self, lock: FileLock, stage: str, argv: list[str]) -> Job:
        assert lock.fd is not None
        job_id = _new_job_id()
        folder = self.root / job_id
        own = self._own_job(folder)
        try:
            started = _now()
            lock.describe({"job_id": job_id, "pid": os.getpid(), "stage": stage, "started": started})
            cmd = [sys.executable, "-m", "lmm_mcp", "train", "--home", str(self.cfg.home), *argv]
            cmd += ["--job-dir", str(folder), "--lock-fd", str(lock.fd), "--json"]
            with open(folder / "log.txt", "ab") as log, open(folder / "stdout.json", "wb") as out:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=log,
                    pass_fds=(lock.fd, own.fd),  # the locks go with it: free the moment the child ends
                    start_new_session=True,  # not killed with the server's process group; a crash stays its own
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            # Reap it when it ends, or it lingers as a zombie.
            self._children[proc.pid] = proc
            threading.Thread(target=proc.wait, daemon=True).start()
            meta = {"job_id": job_id, "pid": proc.pid, "stage": stage, "started": started}
            write_json(folder / "job.json", {**meta, "cmd": cmd})
            lock.describe(meta)
        finally:
            own.release()  # the child holds it now (or there is no child)
        return self.get(job_id)

    def _own_job(self, folder: Path) -> FileLock:
        """The job's own lock in its new folder, taken under the retrain lock: it says which job lives."""
        folder.mkdir(parents=True, exist_ok=True)
        own = FileLock(folder / JOB_LOCK)
        if not own.acquire():
            raise JobError(f"{folder} belongs to another job")
        return own

    def _alive(self, job_id: str) -> bool:
        return holder(self.root / job_id / JOB_LOCK) is not None

    def _holder(self) -> dict[str, Any] | None:
        """The lock holder's description; waits out the instant in which a new holder is writing it."""
        for _ in range(50):
            info = holder(self.lock)
            if info != {}:
                return info
            time.sleep(0.02)
        return {}


def write_progress(job_dir: Path, progress: dict[str, Any]) -> None:
    write_json(job_dir / "progress.json", progress)


def write_result(job_dir: Path, result: dict[str, Any]) -> None:
    write_json(job_dir / "result.json", {**result, "finished": _now()})


def _new_job_id() -> str:
    return time.strftime("j-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _last_error(log: Path) -> str | None:
    try:
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return None
    return lines[-1][-500:] if lines else "the job ended without a result"
