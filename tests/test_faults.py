"""Faults and concurrency, with real processes: kill -9 mid-ingest (once, then at 20 random points), two
ingests of one folder at once, a full disk, kill -9 during training (5 times, a tiny model)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from conftest import conversation, write_jsonl

from trainer.atomic import read_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

FILES = 120
PAIRS = 150


def make_history(root: Path, files: int = FILES, pairs: int = PAIRS) -> None:
    filler = "the deployment pipeline retries flaky integration tests before paging anyone " * 4
    for i in range(files):
        write_jsonl(
            root / f"-work-p{i % 6}" / f"s{i:04d}.jsonl",
            conversation(f"s{i:04d}", pairs, cwd=f"/work/p{i % 6}", words=filler),
        )


def run_ingest(home: Path, claude: Path, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lmm_mcp",
            "ingest",
            "--home",
            str(home),
            "--claude-dir",
            str(claude),
            "--no-embed",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


def files_done(db: Path) -> int:
    """Transcripts committed so far, read beside the writer (WAL: readers never block it)."""
    if not db.exists():
        return 0
    try:
        c = sqlite3.connect(db, timeout=5)
        try:
            return c.execute("SELECT count(*) FROM files").fetchone()[0]
        finally:
            c.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def snapshot(home: Path) -> dict:
    conn = sqlite3.connect(home / "store.db")
    try:
        out = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("sessions", "turns", "chunks", "files", "record_uuids")
        }
        out["fts"] = conn.execute(
            "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'pipeline'"
        ).fetchone()[0]
        out["dup_turns"] = conn.execute(
            "SELECT count(*) FROM (SELECT session_key, uuid FROM turns GROUP BY 1, 2 HAVING count(*) > 1)"
        ).fetchone()[0]
        out["dup_chunks"] = conn.execute(
            "SELECT (SELECT count(*) FROM (SELECT turn_id, text FROM chunks WHERE turn_id IS NOT NULL"
            " GROUP BY 1, 2 HAVING count(*) > 1))"
            # a memory's chunk is keyed by the memory: two sessions may share a wording, never a key
            " + (SELECT count(*) FROM (SELECT session_key FROM chunks WHERE kind = 'memory'"
            " GROUP BY 1 HAVING count(*) > 1))"
        ).fetchone()[0]
        out["integrity"] = conn.execute("PRAGMA integrity_check").fetchone()[0]
        out["archived_lines"] = sum(
            len(gzip.decompress(Path(p).read_bytes()).splitlines())
            for (p,) in conn.execute("SELECT archive_path FROM files")
        )
        out["offsets"] = conn.execute("SELECT sum(offset) FROM files").fetchone()[0]
    finally:
        conn.close()
    return out


def test_kill_9_mid_ingest_then_reingest_matches_a_clean_run(tmp_path):
    claude = tmp_path / "projects"
    make_history(claude)
    clean_home, killed_home = tmp_path / "clean", tmp_path / "killed"
    assert run_ingest(clean_home, claude).wait(300) == 0
    clean = snapshot(clean_home)
    assert clean["turns"] == FILES * PAIRS * 2 and clean["dup_turns"] == 0

    proc = run_ingest(killed_home, claude)
    db = killed_home / "store.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until some files are committed, then kill without warning
        if db.exists():
            try:
                c = sqlite3.connect(db, timeout=5)
                done = c.execute("SELECT count(*) FROM files").fetchone()[0]
                c.close()
            except sqlite3.OperationalError:
                done = 0
            if done >= 5:
                break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = snapshot(killed_home)
    assert partial["integrity"] == "ok"
    assert 0 < partial["files"] < FILES, "the kill must land mid-ingest for this test to mean anything"

    rerun = run_ingest(killed_home, claude)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()
    doc = orjson.loads(out)
    assert doc["errors"] == []
    assert snapshot(killed_home) == clean


def test_two_processes_ingesting_one_folder_at_once(tmp_path):
    claude = tmp_path / "projects"
    make_history(claude)
    home = tmp_path / "home"
    procs = [run_ingest(home, claude) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
        assert orjson.loads(out)["errors"] == []
    docs = [orjson.loads(out) for out, _ in outputs]
    assert sum(d["turns"] for d in docs) == FILES * PAIRS * 2  # each turn added by exactly one process
    snap = snapshot(home)
    assert snap["turns"] == FILES * PAIRS * 2
    assert snap["dup_turns"] == 0 and snap["dup_chunks"] == 0 and snap["integrity"] == "ok"
    assert snap["archived_lines"] == FILES * PAIRS * 2


RANDOM_FILES, RANDOM_PAIRS = 24, 80


@pytest.mark.slow
def test_kill_9_at_20_random_points_during_ingest(tmp_path):
    """4 homes, 5 kills each at random points (a random count of committed files, then up to 30 ms more):
    after every kill the store is whole with nothing doubled; after a last clean pass each equals a clean run."""
    claude = tmp_path / "projects"
    make_history(claude, RANDOM_FILES, RANDOM_PAIRS)
    assert run_ingest(tmp_path / "clean", claude).wait(300) == 0
    clean = snapshot(tmp_path / "clean")
    assert clean["turns"] == RANDOM_FILES * RANDOM_PAIRS * 2
    rng = random.Random(12)
    landed = []  # files committed at each kill: how far in it was
    for h in range(4):
        home = tmp_path / f"killed{h}"
        for target in sorted(rng.sample(range(1, RANDOM_FILES + 1), 5)):
            proc = run_ingest(home, claude)
            while proc.poll() is None and files_done(home / "store.db") < target:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.03))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            partial = snapshot(home)
            assert partial["integrity"] == "ok"
            assert partial["dup_turns"] == 0 and partial["dup_chunks"] == 0
            landed.append(partial["files"])
        rerun = run_ingest(home, claude)
        out, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err.decode()
        assert orjson.loads(out)["errors"] == []
        assert snapshot(home) == clean
    print(f"files committed at each kill (of {RANDOM_FILES}): {landed}")
    assert any(0 < n < RANDOM_FILES for n in landed), landed  # some kills did land mid-ingest


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]).returncode == 0


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: files cannot grow past `limit`; writes beyond it fail (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("kind", ["tmpfs", "file-size-limit"])
def test_a_full_disk_gives_a_clear_error_and_no_corruption(tmp_path, kind):
    """tmpfs: a real 1 MB file system (needs root and mount; skipped without). file-size-limit: RLIMIT_FSIZE
    on the ingest process, which any Linux CI allows; SQLite then sees the write fail as a disk error."""
    claude = tmp_path / "projects"
    make_history(claude, 20, 100)  # ~1.8 MB of transcripts: more than fits
    popen: dict = {}
    if kind == "tmpfs":
        home = tmp_path / "small" / "home"
        if not _mount_tmpfs(home.parent, "1m"):
            pytest.skip("mounting a size-limited tmpfs needs root and mount(8); file-size-limit runs instead")
    else:
        home = tmp_path / "home"
        popen["preexec_fn"] = _file_size_limit(1_000_000)
    try:
        proc = run_ingest(home, claude, **popen)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, err.decode()
        assert "disk is probably full" in err.decode() and "Traceback" not in err.decode()
        partial = snapshot(home)
        assert partial["integrity"] == "ok" and partial["dup_turns"] == 0
        assert partial["files"] < 20
        if kind == "tmpfs":  # room again: the same ingest finishes where it stopped
            subprocess.run(["mount", "-o", "remount,size=64m", str(home.parent)], check=True)
        rerun = run_ingest(home, claude)
        _, err = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, err.decode()
        done = snapshot(home)
        assert done["integrity"] == "ok" and done["files"] == 20 and done["turns"] == 20 * 100 * 2
        assert done["dup_turns"] == 0 and done["dup_chunks"] == 0 and done["archived_lines"] == 20 * 100 * 2
    finally:
        if kind == "tmpfs" and os.path.ismount(tmp_path / "small"):
            subprocess.run(["umount", str(tmp_path / "small")])


# ------------------------------------------------------------------------------------------ training


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _loads(tiny: Path, home: Path, adapter: Path) -> bool:
    from trainer.generate import load_for_generation

    model, _tokenizer = load_for_generation(
        str(tiny), cache_dir=home / "models" / "base", adapter_dir=adapter
    )
    return model is not None


STAGE_ORDER = {"start": -1, "cpt": 0, "sft": 1, "eval": 2}  # "start": as soon as the job exists
KILL_AT = ["start", "cpt", "sft", "eval", "sft"]  # a resumed run skips the stages it finished


def _kill_at(folder: Path, pid: int, stage: str, rng: random.Random) -> str:
    """Kill -9 `pid` a random moment after its job's progress reaches `stage` (or its process ends first)."""
    seen = "start"
    while _running(pid):
        seen = read_json(folder / "progress.json").get("stage") or seen
        if STAGE_ORDER.get(seen, -1) >= STAGE_ORDER[stage]:
            break
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 1.0))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return seen


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().split(b")")[-1].split()[0] != b"Z"
    except OSError:
        return False


@pytest.mark.slow
def test_kill_9_during_training_5_times(tmp_path, capsys):
    """Kill -9 a tiny-model training at a random stage, five times (`lmm-mcp train` and retrain-tool jobs in
    turn): the active adapter stays as it was, byte for byte, and loads; the retrain lock and the run folder
    are free again; the next run resumes and publishes a new version. The first and last runs go through the
    same CLI in this process (torch is imported once)."""
    import dataclasses

    from synth import write_transcripts

    from lmm_mcp import cli
    from lmm_mcp.config import Config
    from lmm_mcp.ingest import Ingester
    from lmm_mcp.jobs import Jobs
    from lmm_mcp.memories import refresh_memories
    from lmm_mcp.store import connect
    from trainer.locks import holder
    from trainer.pipeline import OWNER_LOCK
    from trainer.tiny import build_tiny_qwen3
    from trainer.versions import active_version

    write_transcripts(tmp_path / "projects", 1.5, seed=2, projects=3)
    cfg = Config.load(home=tmp_path / "home", claude_dir=tmp_path / "projects")
    cfg = dataclasses.replace(cfg, allow_cpu_training=True)
    conn = connect(cfg.db_path)
    assert not Ingester(cfg, conn).ingest([cfg.claude_dir]).errors
    refresh_memories(conn)
    conn.close()
    tiny = build_tiny_qwen3(tmp_path / "qwen3")
    options = {"model": str(tiny), "max_steps": 2, "seq_len": 256, "eval_limit": 2}
    args = ["train", "--home", str(cfg.home), "--json", "--model", str(tiny), "--max-steps", "2"]
    args += ["--seq-len", "256", "--eval-limit", "2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    assert cli.main(args) == 0
    capsys.readouterr()
    models, jobs, rng = cfg.home / "models", Jobs(cfg), random.Random(7)
    active = active_version(models)
    assert active is not None and _loads(tiny, cfg.home, active.path)
    reached = []
    for trial in range(5):
        before, digest = active.name, _tree_digest(active.path)
        known = set(jobs.root.iterdir())
        if trial % 2 == 0:  # lmm-mcp train from a shell
            proc = subprocess.Popen(
                [sys.executable, "-m", "lmm_mcp", *args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            pid = proc.pid
            while proc.poll() is None and not set(jobs.root.iterdir()) - known:
                time.sleep(0.01)
            folder = next(iter(set(jobs.root.iterdir()) - known), jobs.root / "none")
        else:  # the retrain tool's background job
            job = jobs.start(options)
            assert not job.joined
            pid, folder = job.pid, jobs.root / job.job_id
        reached.append(_kill_at(folder, pid, KILL_AT[trial], rng))
        if trial % 2 == 0:
            proc.wait()
        else:
            jobs._children[pid].wait(60)
        assert holder(jobs.lock) is None  # the lock went with the process
        assert all(holder(run / OWNER_LOCK) is None for run in (cfg.home / "runs").iterdir())
        active = active_version(models)
        assert active is not None
        if active.name == before:
            assert _tree_digest(active.path) == digest
        else:  # the kill came after the new version was published: it is whole
            assert active.name > before
        assert _loads(tiny, cfg.home, active.path)
        reached[-1] += " (active unchanged)" if active.name == before else " (after publishing)"
    os.write(2, f"stages reached when killed: {reached}\n".encode())  # past capsys, for -s
    assert any("unchanged" in r for r in reached)  # some kills did land before the new version was out
    assert cli.main(args) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert doc["adapter_version"] == active_version(models).name > active.name
    assert _loads(tiny, cfg.home, active_version(models).path)
