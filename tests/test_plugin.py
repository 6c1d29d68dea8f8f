"""The Claude Code plugin as Claude Code runs it, from a copy of the plugin in a cache-like folder.

Claude Code reads `.mcp.json` and `hooks/hooks.json` with `${CLAUDE_PLUGIN_ROOT}` and `${CLAUDE_PLUGIN_DATA}`
substituted, exports both to the processes it starts, and runs a hook's command line through a shell with the
event JSON on stdin. These tests do the same with PATH=/usr/bin:/bin, so no virtual environment and no lmm-mcp
on PATH: everything must come through the plugin's own `bin/lmm-mcp`.

- prepared: the data folder holds a ready environment (its lmm-mcp runs this checkout), and the hooks and the
  server really work: session-end ingests a transcript, user-prompt recalls it, serve answers over stdio.
- first run: no environment. The setup (injected through LMM_MCP_INSTALL_CMD: no network) starts once for
  hooks that start together, hooks exit 0 at once, serve waits for it; a failed setup is told and retried at
  the next session start, not in a loop; an updated plugin (a new version folder) sets itself up again.
- slow: the real setup, a fresh venv and `pip install` of the plugin copy, then the hooks through it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from conftest import OWN_FIXTURES, stored_sessions
from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parents[1]
# What an installed plugin's folder holds: the marketplace source is the repository root.
PLUGIN_FILES = (".claude-plugin", ".mcp.json", "hooks", "bin", "LICENSE", "README.md", "pyproject.toml")
PACKAGES = ("lmm_mcp", "trainer", "transcripts")
BARE_PATH = "/usr/bin:/bin"
SHOP = "/home/dev/shop"
SHOP_SESSION = "7f3c1e2a-0000-4000-8000-00000000c0de"
EVENTS = {"SessionStart": "session-start", "UserPromptSubmit": "user-prompt", "SessionEnd": "session-end"}
TOOLS = {"recall_memory", "get_source", "ingest_session", "retrain", "memory_status"}


@dataclass
class Plugin:
    root: Path  # ${CLAUDE_PLUGIN_ROOT}: a versioned cache folder, with a space in its path
    data: Path  # ${CLAUDE_PLUGIN_DATA}
    home: Path  # LMM_HOME for the hooks and the server
    claude_dir: Path  # where the transcripts are

    def expand(self, text: str) -> str:
        return text.replace("${CLAUDE_PLUGIN_ROOT}", str(self.root)).replace(
            "${CLAUDE_PLUGIN_DATA}", str(self.data)
        )

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        env.update(
            PATH=BARE_PATH,
            HOME=str(self.home.parent / "user home"),
            CLAUDE_PLUGIN_ROOT=str(self.root),
            CLAUDE_PLUGIN_DATA=str(self.data),
            LMM_HOME=str(self.home),
            LMM_CLAUDE_DIR=str(self.claude_dir),
            HF_HUB_OFFLINE="1",
        )
        env.update(extra)
        return env

    def hooks(self) -> dict[str, tuple[str, int]]:
        """Event -> (the command line as Claude Code runs it, its timeout)."""
        config = json.loads((self.root / "hooks" / "hooks.json").read_text())
        out = {}
        for event, groups in config["hooks"].items():
            [group] = groups
            [h] = group["hooks"]
            out[event] = (self.expand(h["command"]), h["timeout"])
        return out

    def server(self, **extra: str) -> StdioServerParameters:
        entry = json.loads((self.root / ".mcp.json").read_text())["mcpServers"]["lmm"]
        return StdioServerParameters(
            command=self.expand(entry["command"]),
            args=[self.expand(a) for a in entry["args"]],
            env=self.env(**extra),
        )

    def start_hook(self, event: str, payload: dict, **extra: str) -> subprocess.Popen:
        command, _timeout = self.hooks()[event]
        proc = subprocess.Popen(
            ["sh", "-c", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env(**extra),
            cwd=self.home.parent,
        )
        assert proc.stdin is not None
        proc.stdin.write(orjson.dumps(payload))
        proc.stdin.close()
        return proc

    def hook(self, event: str, payload: dict, **extra: str) -> tuple[dict, float]:
        """Run one hook as its command line says; exit 0 and one JSON object within the hook's timeout."""
        _command, timeout = self.hooks()[event]
        started = time.perf_counter()
        proc = self.start_hook(event, payload, **extra)
        return finish(proc, timeout, started)


def finish(proc: subprocess.Popen, timeout: int, started: float) -> tuple[dict, float]:
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    code = proc.wait(timeout=timeout)
    elapsed = time.perf_counter() - started
    assert code == 0, err.decode()
    assert elapsed < timeout
    [line] = out.decode().strip().splitlines()
    doc = orjson.loads(line)
    assert isinstance(doc, dict)
    return doc, elapsed


def make_plugin(tmp_path: Path, *, package: bool = False) -> Plugin:
    root = tmp_path / "plugins cache" / "lmm-mcp" / "lmm-mcp" / "0.1.0"
    root.mkdir(parents=True)
    for name in PLUGIN_FILES + (PACKAGES if package else ()):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, root / name)
    claude_dir = tmp_path / "projects"
    shutil.copytree(OWN_FIXTURES, claude_dir)
    home = tmp_path / "lmm home"
    home.mkdir()
    (home / "config.toml").write_text('embed_model = "/nonexistent/embedder"\n')  # BM25 only: fast
    return Plugin(root=root, data=tmp_path / "plugin data", home=home, claude_dir=claude_dir)


def prepare_env(plugin: Plugin) -> None:
    """A ready environment in the data folder whose lmm-mcp runs this checkout, as a finished setup leaves it."""
    bin_dir = plugin.data / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    write_wrapper(bin_dir / "lmm-mcp")
    (plugin.data / "venv.ready").write_text(f"0.1.0 {plugin.root.resolve()}\n")


def write_wrapper(path: Path) -> None:
    path.write_text(
        f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(REPO))} exec {shlex.quote(sys.executable)} -m lmm_mcp "$@"\n'
    )
    path.chmod(0o755)


def event(name: str, **fields) -> dict:
    return {
        "session_id": "new-session",
        "transcript_path": "",
        "cwd": SHOP,
        "hook_event_name": name,
        **fields,
    }


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


async def list_tools(params: StdioServerParameters) -> set[str]:
    async with Client(params) as client:
        return {t.name for t in (await client.list_tools()).tools}


# ------------------------------------------------------------------------------------------------ layout


def test_paths_resolve_from_the_plugin_root(tmp_path):
    plugin = make_plugin(tmp_path)
    assert "lmm-mcp" not in {p.name for d in BARE_PATH.split(":") for p in Path(d).iterdir()}
    commands = [command for command, _timeout in plugin.hooks().values()]
    assert set(plugin.hooks()) == set(EVENTS)
    server = plugin.server()
    for argv in [shlex.split(c) for c in commands] + [[server.command, *server.args]]:
        assert "${" not in " ".join(argv)  # nothing left for a shell to expand differently
        program = Path(argv[0])
        assert program == plugin.root / "bin" / "lmm-mcp"  # one argument despite the space in the path
        assert program.is_file() and os.access(program, os.X_OK)
    for event_name, (command, timeout) in plugin.hooks().items():
        assert shlex.split(command)[1:] == ["hook", EVENTS[event_name]]
        assert 0 < timeout <= 10
    launcher = plugin.root / "bin" / "lmm-mcp"
    assert launcher.read_text().startswith("#!/bin/sh\n")
    if shutil.which("dash"):  # a POSIX shell without bash's extensions parses it
        assert subprocess.run(["dash", "-n", str(launcher)], capture_output=True).returncode == 0


# ---------------------------------------------------------------------------------------------- prepared


async def test_hooks_and_server_work_from_the_plugin_layout_with_no_venv_on_path(tmp_path):
    plugin = make_plugin(tmp_path)
    prepare_env(plugin)

    transcript = plugin.claude_dir / "-home-dev-shop" / f"{SHOP_SESSION}.jsonl"
    doc, elapsed = plugin.hook(
        "SessionEnd",
        event("SessionEnd", session_id=SHOP_SESSION, transcript_path=str(transcript), reason="exit"),
    )
    assert doc == {} and elapsed < 1.5  # Claude Code's budget for SessionEnd hooks
    assert wait_for(lambda: SHOP_SESSION in stored_sessions(plugin.home / "store.db"), 60)

    prompt = "the checkout test raises KeyError coupon again, what fixed it?"
    doc, _ = plugin.hook("UserPromptSubmit", event("UserPromptSubmit", prompt=prompt))
    context = doc["hookSpecificOutput"]["additionalContext"]
    assert doc["hookSpecificOutput"]["hookEventName"] == "UserPromptSubmit"
    assert "order.get('coupon')" in context

    doc, _ = plugin.hook("SessionStart", event("SessionStart", source="startup"))
    assert doc == {} or doc["hookSpecificOutput"]["hookEventName"] == "SessionStart"

    assert await list_tools(plugin.server()) == TOOLS
    assert not (plugin.data / "setup.log").exists()  # a ready environment is used as it is


async def test_an_lmm_mcp_on_path_is_used_when_the_plugin_has_none(tmp_path):
    plugin = make_plugin(tmp_path)
    own_bin = tmp_path / "pip bin"
    own_bin.mkdir()
    write_wrapper(own_bin / "lmm-mcp")
    path = f"{plugin.root / 'bin'}:{own_bin}:{BARE_PATH}"  # the plugin's bin/ first: it must skip itself
    doc, _ = plugin.hook("UserPromptSubmit", event("UserPromptSubmit", prompt="yes"), PATH=path)
    assert doc == {}
    assert await list_tools(plugin.server(PATH=path)) == TOOLS
    assert not (plugin.data / "setup.log").exists()


# --------------------------------------------------------------------------------------------- first run

INSTALL = (
    'echo started >> "$LMM_MCP_VENV/../installs"; sleep {delay}; cp {wrapper} "$LMM_MCP_VENV/bin/lmm-mcp"'
)


def installs(plugin: Plugin) -> int:
    path = plugin.data / "installs"
    return len(path.read_text().splitlines()) if path.exists() else 0


async def test_first_run_sets_up_once_while_hooks_return_and_serve_waits(tmp_path):
    plugin = make_plugin(tmp_path)
    wrapper = tmp_path / "wrapper"
    write_wrapper(wrapper)
    setup = {"LMM_MCP_INSTALL_CMD": INSTALL.format(delay=4, wrapper=shlex.quote(str(wrapper)))}

    # A session starts: SessionStart and a first prompt come together.
    started = time.perf_counter()
    procs = [
        (plugin.start_hook("SessionStart", event("SessionStart", source="startup"), **setup), 10),
        (
            plugin.start_hook(
                "UserPromptSubmit", event("UserPromptSubmit", prompt="fix coupon bug"), **setup
            ),
            5,
        ),
    ]
    (start_doc, start_s), (prompt_doc, prompt_s) = [finish(p, t, started) for p, t in procs]
    assert start_s < 2 and prompt_s < 2  # neither waits for the setup
    message = start_doc["hookSpecificOutput"]["additionalContext"]
    assert start_doc["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert "being set up" in message and str(plugin.data / "setup.log") in message
    assert start_doc["systemMessage"] == message  # the user sees it too
    assert prompt_doc == {}

    # The server, started meanwhile, waits for the setup and then serves.
    assert await list_tools(plugin.server(**setup)) == TOOLS
    assert time.perf_counter() - started >= 3  # it did wait
    assert installs(plugin) == 1
    assert "setup finished" in (plugin.data / "setup.log").read_text()
    assert not (plugin.data / "setup.lock").exists()

    # From now on the hooks run lmm-mcp itself, and nothing is set up again.
    doc, _ = plugin.hook("SessionStart", event("SessionStart", source="startup"), **setup)
    assert "being set up" not in json.dumps(doc)
    assert plugin.hook("UserPromptSubmit", event("UserPromptSubmit", prompt="yes"), **setup)[0] == {}
    assert installs(plugin) == 1


async def test_a_failed_setup_is_told_and_retried_at_the_next_session_start_only(tmp_path):
    plugin = make_plugin(tmp_path)
    fail = {
        "LMM_MCP_INSTALL_CMD": 'echo started >> "$LMM_MCP_VENV/../installs"; echo "no route to index" >&2; exit 3'
    }
    plugin.hook("SessionStart", event("SessionStart", source="startup"), **fail)
    assert wait_for(
        lambda: (plugin.data / "setup.failed").exists() and not (plugin.data / "setup.lock").exists(), 30
    )
    assert installs(plugin) == 1

    for _ in range(3):  # prompts and session ends: silent, and no new attempt
        assert plugin.hook("UserPromptSubmit", event("UserPromptSubmit", prompt="fix it"), **fail)[0] == {}
        assert plugin.hook("SessionEnd", event("SessionEnd", reason="exit"), **fail)[0] == {}
    time.sleep(0.5)
    assert installs(plugin) == 1

    # The server says why, with the log's end, and exits non-zero (Claude Code shows it as failed).
    server = plugin.server(**fail)
    proc = subprocess.run(
        [server.command, *server.args],
        env=server.env,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode != 0 and proc.stdout == b""  # stdout belongs to the protocol
    err = proc.stderr.decode()
    assert "setup failed" in err and "LMM_MCP_INSTALL_CMD" in err and "no route to index" in err

    # The next session start tells the failure and tries once more.
    before = installs(plugin)
    doc, elapsed = plugin.hook("SessionStart", event("SessionStart", source="startup"), **fail)
    assert elapsed < 2
    message = doc["hookSpecificOutput"]["additionalContext"]
    assert "setup failed" in message and "tried again" in message
    assert wait_for(lambda: installs(plugin) == before + 1 and not (plugin.data / "setup.lock").exists(), 30)


def test_an_updated_plugin_sets_itself_up_again(tmp_path):
    plugin = make_plugin(tmp_path)
    prepare_env(plugin)
    old_root = plugin.root.parent / "0.0.9"
    (plugin.data / "venv.ready").write_text(f"0.0.9 {old_root}\n")  # set up by the previous version
    wrapper = tmp_path / "wrapper"
    write_wrapper(wrapper)
    setup = {"LMM_MCP_INSTALL_CMD": INSTALL.format(delay=0, wrapper=shlex.quote(str(wrapper)))}
    doc, _ = plugin.hook("SessionStart", event("SessionStart", source="startup"), **setup)
    assert "being updated to version 0.1.0" in doc["hookSpecificOutput"]["additionalContext"]
    assert wait_for(lambda: installs(plugin) == 1 and not (plugin.data / "setup.lock").exists(), 30)
    assert (plugin.data / "venv.ready").read_text() == f"0.1.0 {plugin.root.resolve()}\n"


def test_no_python_new_enough_is_said_plainly(tmp_path):
    plugin = make_plugin(tmp_path)
    tools = tmp_path / "tools"  # the POSIX tools the launcher needs, and a Python 3.10
    tools.mkdir()
    for name in (
        "sh",
        "sed",
        "head",
        "cat",
        "dirname",
        "basename",
        "find",
        "mkdir",
        "rm",
        "setsid",
        "sleep",
        "date",
        "mv",
        "tr",
        "tail",
    ):
        found = shutil.which(name, path=BARE_PATH)
        if found:
            (tools / name).symlink_to(found)
    old = tools / "python3"
    old.write_text('#!/bin/sh\necho "Python 3.10.12"\nexit 1\n')  # fails the version check, as 3.10 would
    old.chmod(0o755)
    plugin.hook("SessionStart", event("SessionStart", source="startup"), PATH=str(tools))
    assert wait_for(lambda: (plugin.data / "setup.failed").exists(), 30)
    reason = (plugin.data / "setup.failed").read_text()
    assert "needs Python 3.11 or newer" in reason and "LMM_MCP_PYTHON" in reason
    doc, _ = plugin.hook("SessionStart", event("SessionStart", source="startup"), PATH=str(tools))
    assert "needs Python 3.11 or newer" in doc["hookSpecificOutput"]["additionalContext"]


def test_a_lock_left_by_a_dead_setup_does_not_block_the_next(tmp_path):
    plugin = make_plugin(tmp_path)
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True).stdout.strip()
    (plugin.data / "setup.lock").mkdir(parents=True)
    (plugin.data / "setup.lock" / "pid").write_text(dead + "\n")
    wrapper = tmp_path / "wrapper"
    write_wrapper(wrapper)
    setup = {"LMM_MCP_INSTALL_CMD": INSTALL.format(delay=0, wrapper=shlex.quote(str(wrapper)))}
    plugin.hook("SessionStart", event("SessionStart", source="startup"), **setup)
    assert wait_for(lambda: (plugin.data / "venv.ready").exists(), 30)
    assert installs(plugin) == 1


# ------------------------------------------------------------------------------------------------- slow


@pytest.mark.slow
async def test_real_setup_installs_the_plugin_copy_and_the_hooks_work(tmp_path):
    """A fresh venv, `pip install` of the plugin folder and `lmm-mcp setup`, through this machine's pip index."""
    plugin = make_plugin(tmp_path, package=True)
    (plugin.home / "config.toml").unlink()  # the real embedding model, as the setup fetched it
    files_before = sorted(p.relative_to(plugin.root) for p in plugin.root.rglob("*"))
    doc, _ = plugin.hook("SessionStart", event("SessionStart", source="startup"))
    assert "being set up" in doc["hookSpecificOutput"]["additionalContext"]
    log = plugin.data / "setup.log"
    assert wait_for(lambda: not (plugin.data / "setup.lock").exists(), 900), log.read_text()[-3000:]
    assert (plugin.data / "venv.ready").exists(), log.read_text()[-3000:]
    assert (plugin.home / "models" / "base" / "all-MiniLM-L6-v2").is_dir()  # lmm-mcp setup ran
    assert (
        sorted(p.relative_to(plugin.root) for p in plugin.root.rglob("*")) == files_before
    )  # built elsewhere

    transcript = plugin.claude_dir / "-home-dev-shop" / f"{SHOP_SESSION}.jsonl"
    payload = event("SessionEnd", session_id=SHOP_SESSION, transcript_path=str(transcript), reason="exit")
    assert plugin.hook("SessionEnd", payload)[0] == {}
    assert wait_for(lambda: SHOP_SESSION in stored_sessions(plugin.home / "store.db"), 180)
    prompt = "the checkout test raises KeyError coupon again, what fixed it?"
    doc, _ = plugin.hook("UserPromptSubmit", event("UserPromptSubmit", prompt=prompt))
    assert "order.get('coupon')" in doc["hookSpecificOutput"]["additionalContext"]
    assert await list_tools(plugin.server()) == TOOLS
