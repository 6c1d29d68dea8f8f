"""The locks, with real processes and kill -9: the retrain lock (one job per home, the same for `lmm-mcp train`
and the retrain tool), a run folder's owner, one embedding process per home. A lock lives exactly as long as
the process holding it; a pid written in a file keeps nothing alive."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
from conftest import conversation, write_jsonl

from lmm_mcp.jobs import JobError, Jobs
from trainer import checkpoint
from trainer.locks import FileLock, holder
from trainer.pipeline import OWNER_LOCK, PipelineConfig, PipelineError, own_run

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}

HOLD = """
import os, sys, time
from pathlib import Path
from trainer.locks import FileLock
lock = FileLock(Path(sys.argv[1]))
if not lock.acquire():
    print("refused", flush=True)
    sys.exit(0)
lock.describe({"job_id": sys.argv[2], "pid": os.getpid(), "stage": "sft"})
print("held", flush=True)
time.sleep(600)
"""


def hold(path: Path, job_id: str = "j-other") -> subprocess.Popen:
    """A process that takes the flock at `path` (or says it could not) and keeps it until killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), job_id], stdout=subprocess.PIPE, text=True, env=ENV
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def open_files() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            out.add(os.readlink(f"/proc/self/fd/{fd}"))
    return out


def kill_9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


SHELL_TRAINING = """
import sys, time
from lmm_mcp.config import Config
from lmm_mcp.jobs import Jobs
with Jobs(Config.load(sys.argv[1])).hold("sft") as folder:
    print(folder.name, flush=True)
    time.sleep(600)
"""


def shell_training(cfg) -> tuple[subprocess.Popen, str]:
    """A process holding the retrain lock as `lmm-mcp train` does (`Jobs.hold`); and its job id."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SHELL_TRAINING, str(cfg.home)], stdout=subprocess.PIPE, text=True, env=ENV
    )
    return proc, proc.stdout.readline().strip()


def test_the_retrain_lock_lives_exactly_as_long_as_its_process(cfg):
    jobs = Jobs(cfg)
    training, job_id = shell_training(cfg)
    try:
        job = jobs.running()
        assert job is not None and job.job_id == job_id and job.state == "running" and job.pid == training.pid
        with pytest.raises(JobError, match=job_id), jobs.hold("sft"):
            pass
    finally:
        kill_9(training)
    assert jobs.running() is None  # kill -9: the kernel let go, nothing to clean up
    assert jobs.get(job_id).state == "failed"
    with jobs.hold("sft") as folder:
        assert jobs.running().job_id == folder.name
    assert jobs.running() is None


def test_a_process_looking_at_the_lock_never_makes_a_training_refuse(cfg):
    """memory_status looks at the lock (a shared flock for an instant); a training starting at that instant
    must look again, not report a retrain that is not there."""
    jobs = Jobs(cfg)
    jobs.root.mkdir(parents=True)
    jobs.lock.touch()
    looker = subprocess.Popen(
        [sys.executable, "-c", LOOK, str(jobs.lock)], stdout=subprocess.PIPE, text=True, env=ENV
    )
    try:
        assert looker.stdout.readline().strip() == "looking"
        for _ in range(200):
            with jobs.hold("sft"):
                pass
    finally:
        kill_9(looker)


LOOK = """
import sys
from pathlib import Path
from trainer.locks import holder
print("looking", flush=True)
while True:
    holder(Path(sys.argv[1]))
"""


def test_a_dead_jobs_words_are_not_taken_for_a_live_one(cfg):
    """The lock file still names a job killed -9 while a new holder has not described itself yet: that job is
    not running (its own lock in its folder is free), whoever holds the retrain lock."""
    jobs = Jobs(cfg)
    (jobs.root / "j-dead").mkdir(parents=True)
    (jobs.root / "j-dead" / "job.json").write_bytes(orjson.dumps({"job_id": "j-dead", "stage": "sft"}))
    other = hold(jobs.lock, "j-dead")  # holds the retrain lock, with the dead job's words in it
    try:
        job = jobs.running()
        assert job is not None and job.job_id != "j-dead"
        assert jobs.get("j-dead").state == "failed"
    finally:
        kill_9(other)


def test_a_live_pid_in_the_lock_file_keeps_nothing_alive(cfg):
    """The old pid-file lock believed any live process with the written pid: a reused pid kept it forever."""
    jobs = Jobs(cfg)
    jobs.root.mkdir(parents=True)
    jobs.lock.write_bytes(orjson.dumps({"job_id": "j-dead", "pid": os.getpid(), "stage": "both"}))
    assert jobs.running() is None
    with jobs.hold("both") as folder:
        assert folder.name != "j-dead"


def test_lmm_mcp_train_takes_the_lock_the_retrain_tool_holds(cfg):
    jobs = Jobs(dataclasses.replace(cfg, allow_cpu_training=True))
    cmd = [sys.executable, "-m", "lmm_mcp", "train", "--home", str(cfg.home), "--prepare-only", "--json"]
    job = jobs.start({"stage": "sft"})
    os.kill(job.pid, signal.SIGSTOP)  # the retrain tool's job, held still while the shell tries
    try:
        refused = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    finally:
        os.kill(job.pid, signal.SIGKILL)
        jobs._children[job.pid].wait(30)
    assert refused.returncode == 2
    assert "already running" in refused.stderr and job.job_id in refused.stderr
    # free again: it gets past the lock (and stops at the empty store), leaving its own job behind
    ran = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    assert "already running" not in ran.stderr and "ingest sessions first" in ran.stderr
    (mine,) = [p.name for p in jobs.root.glob("j-*") if p.name != job.job_id]  # same second: names tie
    assert jobs.get(mine).state == "failed" and "ingest" in jobs.get(mine).error


def test_the_retrain_tool_joins_a_training_started_from_the_shell(cfg):
    jobs = Jobs(dataclasses.replace(cfg, allow_cpu_training=True))
    shell, name = shell_training(cfg)
    try:
        joined = jobs.start({"stage": "both"})
        assert joined.joined and joined.job_id == name and joined.stage == "sft" and joined.pid == shell.pid
    finally:
        kill_9(shell)
    assert jobs.get(name).state == "failed"  # killed without a result: not running any more


def test_a_started_job_holds_the_lock_itself_and_kill_9_frees_it(cfg):
    jobs = Jobs(dataclasses.replace(cfg, allow_cpu_training=True))
    job = jobs.start({"stage": "sft", "max_steps": 1})
    os.kill(job.pid, signal.SIGSTOP)  # still importing: hold it there while we look
    try:
        assert (
            str(jobs.lock) not in open_files()
        )  # the server kept no descriptor: the child alone holds the lock
        assert (holder(jobs.lock) or {}).get("job_id") == job.job_id
        assert jobs.start({"stage": "sft"}).joined
    finally:
        os.kill(job.pid, signal.SIGKILL)
    jobs._children[job.pid].wait(30)
    assert holder(jobs.lock) is None
    assert jobs.get(job.job_id).state == "failed"
    again = jobs.start({"stage": "sft", "max_steps": 1})
    assert not again.joined and again.job_id != job.job_id
    jobs._children[again.pid].wait(120)  # an empty home: it fails fast, and lets go
    assert jobs.get(again.job_id).state == "failed" and holder(jobs.lock) is None


def test_racing_processes_get_one_lock(tmp_path):
    lock, go = tmp_path / "race.lock", tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from trainer.locks import FileLock
        while not Path({str(go)!r}).exists():
            time.sleep(0.005)
        lock = FileLock(Path({str(lock)!r}))
        print("held" if lock.acquire() else "refused", flush=True)
        sys.stdin.read()  # until the test closes our stdin
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV
        )
        for _ in range(6)
    ]
    go.touch()
    answers = [p.stdout.readline().strip() for p in procs]
    for p in procs:
        p.stdin.close()
        p.wait(30)
    assert sorted(answers) == ["held"] + ["refused"] * 5


def test_a_run_folder_belongs_to_one_run(tmp_path):
    cfg = PipelineConfig(home=tmp_path / "home")
    first, owner = own_run(cfg)
    checkpoint.update_run(first, fingerprint=cfg.fingerprint(), status="running")  # unfinished: resumable
    owner.release()
    other = hold(first / OWNER_LOCK, "r-other")
    try:
        second, owner = own_run(cfg)  # same settings, but that run is another training's now
        assert second != first
        owner.release()
        with pytest.raises(PipelineError, match="belongs to another training"):
            own_run(cfg, first)
    finally:
        kill_9(other)
    resumed, owner = own_run(cfg, first)  # its holder died: the folder is free to resume
    assert resumed == first
    owner.release()


# ----------------------------------------------------------------------------------------- embedding

EMBED = """
import os, sys, time
from pathlib import Path
import numpy as np
from lmm_mcp.embed import embed_pending
from lmm_mcp.store import connect

class Recorded:  # stands in for the model; loading it on first encode is what the lock saves
    model_name = "fake-model"
    def encode(self, texts):
        with open(sys.argv[2], "a") as log:
            log.write(f"in {os.getpid()}\\n")
        time.sleep(0.15)  # long enough for another process to run into it
        with open(sys.argv[2], "a") as log:
            log.write(f"out {os.getpid()}\\n")
        return np.ones((len(texts), 4), dtype=np.float32)

while not Path(sys.argv[3]).exists():
    time.sleep(0.005)
conn = connect(Path(sys.argv[1]))
print(embed_pending(conn, Recorded(), lock=Path(sys.argv[4])))
"""


def _filled_store(cfg, sessions: int, pairs: int = 200) -> int:
    from lmm_mcp.embed import UNEMBEDDED_KINDS
    from lmm_mcp.ingest import Ingester
    from lmm_mcp.store import connect

    for i in range(sessions):
        write_jsonl(cfg.claude_dir / "-work-app" / f"s{i}.jsonl", conversation(f"s{i}", pairs))
    conn = connect(cfg.db_path)
    assert not Ingester(cfg, conn).ingest([cfg.claude_dir]).errors
    kinds = ",".join("?" * len(UNEMBEDDED_KINDS))
    (n,) = conn.execute(
        f"SELECT count(*) FROM chunks WHERE kind NOT IN ({kinds})", UNEMBEDDED_KINDS
    ).fetchone()
    conn.close()
    return n


def test_one_process_embeds_at_a_time_and_every_chunk_once(cfg, tmp_path):
    pending = _filled_store(cfg, 4)
    assert pending > 1024  # several pages, so that processes without the lock would overlap
    log, go, lock = tmp_path / "encode.log", tmp_path / "go", cfg.home / "embed.lock"
    args = [str(cfg.db_path), str(log), str(go), str(lock)]
    procs = [
        subprocess.Popen([sys.executable, "-c", EMBED, *args], stdout=subprocess.PIPE, text=True, env=ENV)
        for _ in range(4)
    ]
    go.touch()
    counts = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(counts) == pending  # each chunk embedded by exactly one process
    events = [line.split() for line in log.read_text().splitlines()]
    for (a, pa), (b, pb) in zip(events[::2], events[1::2], strict=True):  # in/out pairs, never interleaved
        assert (a, b) == ("in", "out") and pa == pb
    from lmm_mcp.store import connect

    conn = connect(cfg.db_path)
    assert conn.execute("SELECT count(*) FROM vectors WHERE model = 'fake-model'").fetchone()[0] == pending
    conn.close()


def test_an_ingest_leaves_embedding_to_the_process_holding_the_lock(cfg):
    _filled_store(cfg, 1)
    cmd = [sys.executable, "-m", "lmm_mcp", "ingest", str(cfg.claude_dir), "--home", str(cfg.home), "--json"]
    other = hold(cfg.home / "embed.lock", "embedder")
    try:
        waited = orjson.loads(
            subprocess.run(cmd, capture_output=True, env=ENV, timeout=300, check=True).stdout
        )
    finally:
        kill_9(other)
    assert waited["chunks_embedded"] == 0 and waited["errors"] == []
    done = orjson.loads(subprocess.run(cmd, capture_output=True, env=ENV, timeout=300, check=True).stdout)
    assert done["chunks_embedded"] > 0 and done["errors"] == []


@pytest.mark.skipif(
    Path("/dev/nvidia0").exists(), reason="this machine has a GPU: the refusal does not apply"
)
def test_no_gpu_and_no_cpu_training_is_refused(cfg):
    with pytest.raises(JobError, match="allow_cpu_training"):
        Jobs(cfg).start()
    assert holder(Jobs(cfg).lock) is None


def test_a_lock_refuses_a_second_holder_in_the_same_process(tmp_path):
    """flock belongs to the open file, not the process: two callers in one server exclude each other too."""
    first, second = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    assert first.acquire() and not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
    assert holder(tmp_path / "x.lock") is None


def test_sessions_ending_together_embed_each_chunk_once(cfg):
    """The case that found it: after a --no-embed first ingest, three sessions end at once and each SessionEnd
    hook starts a detached ingest (`hooks.spawn_ingest`) with the real embedder. Each chunk gets one vector,
    from one process (without the lock, overlapping processes each embed the backlog)."""
    import re

    from lmm_mcp.embed import UNEMBEDDED_KINDS
    from lmm_mcp.hooks import spawn_ingest
    from lmm_mcp.store import connect

    _filled_store(cfg, 3, pairs=60)
    transcripts = sorted(cfg.claude_dir.rglob("*.jsonl"))
    pids = [spawn_ingest(cfg, [t], embed=True) for t in transcripts]
    for pid in pids:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    log = (cfg.home / "logs" / "ingest.log").read_text()
    embedded = [int(n) for n in re.findall(r"embedded \+(\d+)", log)]
    conn = connect(cfg.db_path)
    kinds = ",".join("?" * len(UNEMBEDDED_KINDS))  # the transcript's chunks and the memories' (refreshed)
    (chunks,) = conn.execute(
        f"SELECT count(*) FROM chunks WHERE kind NOT IN ({kinds})", UNEMBEDDED_KINDS
    ).fetchone()
    (vectors,) = conn.execute("SELECT count(DISTINCT chunk_id) FROM vectors").fetchone()
    conn.close()
    assert len(embedded) == 3 and sum(embedded) == chunks == vectors
