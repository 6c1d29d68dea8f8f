"""The retrain lock: one job per home, a stale lock (dead pid) recovered, refusal without a GPU."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from lmm_mcp.jobs import JobError, Jobs


def test_a_lock_whose_process_is_gone_is_recovered(cfg):
    jobs = Jobs(cfg)
    jobs.root.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    jobs.lock.write_bytes(orjson.dumps({"job_id": "j-old", "pid": dead.pid, "stage": "both"}))
    assert jobs.running() is None
    assert not jobs.lock.exists()


def test_a_live_lock_is_the_running_job(cfg):
    jobs = Jobs(cfg)
    jobs.root.mkdir(parents=True)
    jobs.lock.write_bytes(orjson.dumps({"job_id": "j-now", "pid": os.getpid(), "stage": "sft"}))
    job = jobs.running()
    assert job is not None and job.job_id == "j-now" and job.state == "running" and job.stage == "sft"
    # a second start joins it instead of starting another (the CPU is allowed here)
    joined = Jobs(dataclasses.replace(cfg, allow_cpu_training=True)).start({"stage": "both"})
    assert joined.job_id == "j-now" and joined.joined
    assert [p.name for p in jobs.root.iterdir()] == ["retrain.lock"]


def test_a_torn_lock_is_recovered(cfg):
    jobs = Jobs(cfg)
    jobs.root.mkdir(parents=True)
    jobs.lock.write_bytes(b'{"job_id": "j-')
    assert jobs.running() is None and not jobs.lock.exists()


@pytest.mark.skipif(
    Path("/dev/nvidia0").exists(), reason="this machine has a GPU: the refusal does not apply"
)
def test_no_gpu_and_no_cpu_training_is_refused(cfg):
    with pytest.raises(JobError, match="allow_cpu_training"):
        Jobs(cfg).start()
    assert not Jobs(cfg).lock.exists()
