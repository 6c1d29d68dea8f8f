"""Retrain jobs: the trainer pipeline in a separate background process, one per home folder.

    jobs = Jobs(cfg)
    job = jobs.start({"stage": "sft", "max_steps": 20})  # training options; returns at once, joins a running job
    job = jobs.get(job.job_id)              # state, step, loss, ETA, adapter version when done

A job is `python -m lmm_mcp train --job-dir <home>/jobs/<id> ...` started in its own session: GPU memory is
freed when it exits, the server keeps answering meanwhile, and a crash stays in the child. The child writes
`progress.json` (atomically, on every report) and `result.json`; its stderr goes to `log.txt`.

One job per home across every server process: `<home>/jobs/retrain.lock` names the running job and its pid,
created with O_EXCL. A lock whose pid is gone (a crash, a reboot, kill -9) is stale and is taken over.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from lmm_mcp.config import Config
from trainer.atomic import read_json, write_json
from trainer.devices import gpu_visible


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
        if not self.cfg.allow_cpu_training and not gpu_visible():
            raise JobError(
                "no GPU here, and training on the CPU is off: set allow_cpu_training = true in "
                f"{self.cfg.home / 'config.toml'} to train anyway (slow, fine for small models), "
                "or run `lmm-mcp train --prepare-only` here and `accelerate launch -m trainer` on a GPU box"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            running = self.running()
            if running is not None:
                running.joined = True
                return running
            job_id = time.strftime("j-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(3)
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                continue  # another process got there first: join its job on the next pass
            with os.fdopen(fd, "wb") as fh:  # our own pid until the child's is known: alive either way
                fh.write(orjson.dumps({"job_id": job_id, "pid": os.getpid(), "stage": stage}))
            try:
                return self._spawn(job_id, stage, argv)
            except BaseException:
                self.lock.unlink(missing_ok=True)
                raise
        raise JobError(f"could not take {self.lock}: another process keeps creating it")

    def running(self) -> Job | None:
        """The job that holds the lock, or None; a stale lock (dead pid) is removed."""
        try:
            held = orjson.loads(self.lock.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError):
            held = {}
        if not held:
            # Being written right now (O_EXCL create, then the write) or torn: give the writer a moment.
            time.sleep(0.05)
            try:
                held = orjson.loads(self.lock.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                self._break_lock()
                return None
        pid = held.get("pid")
        finished = (
            self.root / str(held.get("job_id")) / "result.json"
        ).exists()  # exiting, done with the work
        if isinstance(pid, int) and not finished and self._alive(pid):
            if not (self.root / held["job_id"] / "job.json").exists():  # its starter is spawning it now
                return Job(held["job_id"], "running", held.get("stage", "both"), pid=pid, phase="starting")
            return self.get(held["job_id"])
        self._break_lock()
        return None

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
        pid = meta.get("pid")
        alive = isinstance(pid, int) and self._alive(pid)
        states = {True: "done", False: "failed", None: "running" if alive else "failed"}
        state = states[bool(result.get("ok")) if result else None]
        error = result.get("error") if result else (None if alive else _last_error(folder / "log.txt"))
        return Job(
            job_id=job_id,
            state=state,
            stage=meta.get("stage", "both"),
            pid=pid,
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

    def _spawn(self, job_id: str, stage: str, argv: list[str]) -> Job:
        folder = self.root / job_id
        folder.mkdir(parents=True)
        cmd = [sys.executable, "-m", "lmm_mcp", "train", "--home", str(self.cfg.home), *argv]
        cmd += ["--job-dir", str(folder), "--json"]
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with open(folder / "log.txt", "ab") as log, open(folder / "stdout.json", "wb") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=log,
                start_new_session=True,  # not killed with the server's process group; its own crash stays its own
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        # Reap it when it ends, or it lingers as a zombie that still looks alive to os.kill(pid, 0).
        self._children[proc.pid] = proc
        threading.Thread(target=proc.wait, daemon=True).start()
        write_json(
            folder / "job.json",
            {"job_id": job_id, "pid": proc.pid, "stage": stage, "started": started, "cmd": cmd},
        )
        write_json(self.lock, {"job_id": job_id, "pid": proc.pid, "stage": stage, "started": started})
        return self.get(job_id)

    def _alive(self, pid: int) -> bool:
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not _is_zombie(pid)

    def _break_lock(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.lock.unlink()


def write_progress(job_dir: Path, progress: dict[str, Any]) -> None:
    write_json(job_dir / "progress.json", progress)


def write_result(job_dir: Path, result: dict[str, Any]) -> None:
    write_json(
        job_dir / "result.json", {**result, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    )


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().split(b")")[-1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def _last_error(log: Path) -> str | None:
    try:
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return None
    return lines[-1][-500:] if lines else "the job ended without a result"
