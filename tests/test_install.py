"""`lmm-mcp install` in a real process against temporary Claude homes; the plugin files in the repository."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import orjson

from lmm_mcp import hooks, install

REPO = Path(__file__).resolve().parents[1]
EVENTS = {"SessionStart": "session-start", "UserPromptSubmit": "user-prompt", "SessionEnd": "session-end"}

SETTINGS = {
    "theme": "dark",
    "permissions": {"allow": ["Bash(npm test:*)"]},
    "hooks": {
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
        "SessionStart": [
            {"matcher": "startup", "hooks": [{"type": "command", "command": "other-tool start"}]}
        ],
    },
}
CLAUDE_JSON = {
    "numStartups": 42,
    "mcpServers": {"github": {"type": "stdio", "command": "gh-mcp", "args": [], "env": {"TOKEN": "x"}}},
    "projects": {"/home/me/app": {"allowedTools": []}},
}


def run(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lmm_mcp", "install", *args],
        capture_output=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def claude_home(tmp_path: Path) -> Path:
    home = tmp_path / "claude"
    home.mkdir()
    (home / "settings.json").write_text(json.dumps(SETTINGS, indent=4))
    (home / ".claude.json").write_text(json.dumps(CLAUDE_JSON))
    return home


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def ours(settings: dict, event: str) -> list[dict]:
    return [
        h
        for g in settings["hooks"][event]
        for h in g["hooks"]
        if f"hook {EVENTS[event]}" in h["command"] and "lmm" in h["command"]
    ]


def assert_merged(settings: dict, servers: dict) -> None:
    assert settings["theme"] == "dark" and settings["permissions"] == SETTINGS["permissions"]
    assert settings["hooks"]["Stop"] == SETTINGS["hooks"]["Stop"]
    assert settings["hooks"]["SessionStart"][0] == SETTINGS["hooks"]["SessionStart"][0]  # theirs first, kept
    for event in EVENTS:
        assert len(ours(settings, event)) == 1
    assert servers["numStartups"] == 42 and servers["projects"] == CLAUDE_JSON["projects"]
    assert servers["mcpServers"]["github"] == CLAUDE_JSON["mcpServers"]["github"]
    assert "serve" in servers["mcpServers"]["lmm"]["args"]


def test_dry_run_merges_without_losing_keys_and_writes_nothing(tmp_path):
    home = claude_home(tmp_path)
    before = snapshot(tmp_path)
    proc = run("--claude-home", str(home), "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    [line] = proc.stdout.decode().splitlines()
    doc = orjson.loads(line)
    assert doc["dry_run"] is True and doc["scope"] == "user"
    files = {Path(f["path"]).name: f for f in doc["files"]}
    assert {f["action"] for f in files.values()} == {"update"}
    assert all(f["backup"] is None for f in files.values())
    assert_merged(files["settings.json"]["content"], files[".claude.json"]["content"])
    assert snapshot(tmp_path) == before  # not a byte changed, no backup, no temp file

    text = run("--claude-home", str(home), "--dry-run")
    assert text.returncode == 0 and "would update" in text.stdout.decode()
    assert snapshot(tmp_path) == before


def test_install_is_idempotent_and_backs_up_what_it_changes(tmp_path):
    home = claude_home(tmp_path)
    lmm_home = tmp_path / "lmm home"  # a space: commands must be quoted for the shell
    first = run("--claude-home", str(home), "--home", str(lmm_home), "--json")
    assert first.returncode == 0, first.stderr.decode()
    settings = json.loads((home / "settings.json").read_text())
    servers = json.loads((home / ".claude.json").read_text())
    assert_merged(settings, servers)
    assert servers["mcpServers"]["lmm"]["env"] == {"LMM_HOME": str(lmm_home)}
    assert servers["mcpServers"]["lmm"]["args"][-3:] == ["serve", "--claude-dir", str(home / "projects")]
    command = ours(settings, "SessionStart")[0]["command"]
    assert shlex.split(command)[-4:] == ["--home", str(lmm_home), "--claude-dir", str(home / "projects")]
    backups = sorted(p.name for p in home.glob("*.bak-*"))
    assert len(backups) == 2
    assert json.loads((home / backups[0]).read_text()) == CLAUDE_JSON  # .claude.json.bak-… sorts first
    assert json.loads((home / backups[1]).read_text()) == SETTINGS

    after_first = snapshot(home)
    again = run("--claude-home", str(home), "--home", str(lmm_home), "--json")
    assert again.returncode == 0
    assert {f["action"] for f in orjson.loads(again.stdout)["files"]} == {"unchanged"}
    assert snapshot(home) == after_first  # no rewrite, no new backup

    # The installed hook command runs through a shell as Claude Code runs it.
    proc = subprocess.run(
        command, shell=True, input=b'{"cwd": "/nowhere", "session_id": "s"}', capture_output=True, timeout=60
    )
    assert proc.returncode == 0 and json.loads(proc.stdout) == {}


def test_a_moved_installation_updates_its_hooks_in_place(tmp_path):
    home = tmp_path / "claude"
    home.mkdir()
    old = {
        "hooks": {
            "SessionStart": [
                {"hooks": [{"type": "command", "command": "/old/venv/bin/lmm-mcp hook session-start"}]}
            ],
            "SessionEnd": [
                {"hooks": [{"type": "command", "command": "other-tool end"}]},
                {"hooks": [{"type": "command", "command": "/old/venv/bin/lmm-mcp hook session-end"}]},
            ],
        }
    }
    (home / "settings.json").write_text(json.dumps(old))
    assert run("--claude-home", str(home)).returncode == 0
    hooks_now = json.loads((home / "settings.json").read_text())["hooks"]
    assert (
        len(hooks_now["SessionStart"]) == 1
        and "/old/" not in hooks_now["SessionStart"][0]["hooks"][0]["command"]
    )
    assert hooks_now["SessionEnd"][0] == old["hooks"]["SessionEnd"][0]  # order and the other tool kept
    assert len(hooks_now["SessionEnd"]) == 2 and "/old/" not in json.dumps(hooks_now)


def test_invalid_json_is_refused_and_left_alone(tmp_path):
    home = claude_home(tmp_path)
    (home / "settings.json").write_text('{"theme": "dark",}')  # a trailing comma
    before = snapshot(tmp_path)
    proc = run("--claude-home", str(home))
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "settings.json is not valid JSON" in err and "Traceback" not in err
    assert snapshot(tmp_path) == before  # the valid .claude.json was not written either

    (home / "settings.json").write_text('{"hooks": []}')
    proc = run("--claude-home", str(home))
    assert proc.returncode == 2 and "`hooks` is not an object" in proc.stderr.decode()


def test_project_scope_writes_mcp_json_and_project_settings(tmp_path):
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude" / "settings.json").write_text('{"model": "opus"}')
    proc = run("--scope", "project", "--project-dir", str(project), "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    actions = {Path(f["path"]).name: f["action"] for f in orjson.loads(proc.stdout)["files"]}
    assert actions == {".mcp.json": "create", "settings.json": "update"}
    servers = json.loads((project / ".mcp.json").read_text())
    assert list(servers) == ["mcpServers"] and servers["mcpServers"]["lmm"]["args"][-1] == "serve"
    settings = json.loads((project / ".claude" / "settings.json").read_text())
    assert settings["model"] == "opus" and all(len(ours(settings, e)) == 1 for e in EVENTS)
    # defaults to the current folder
    other = tmp_path / "other"
    other.mkdir()
    assert run("--scope", "project", cwd=other).returncode == 0
    assert (other / ".mcp.json").exists() and (other / ".claude" / "settings.json").exists()


def test_merge_functions_keep_everything_else():
    merged = install.merge_hooks(SETTINGS, install.hook_commands(["lmm-mcp"]))
    assert merged["hooks"]["Stop"] == SETTINGS["hooks"]["Stop"]
    assert install.merge_hooks(merged, install.hook_commands(["lmm-mcp"])) == merged
    assert SETTINGS["hooks"].get("UserPromptSubmit") is None  # the input is not modified


# ------------------------------------------------------------------------------------------------ plugin


def _load(path: str) -> dict:
    return json.loads((REPO / path).read_text())


def test_plugin_manifest_and_marketplace():
    manifest = _load(".claude-plugin/plugin.json")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert manifest["name"] == "lmm-mcp" and manifest["version"] == project["version"]
    assert isinstance(manifest["description"], str) and 0 < len(manifest["description"]) < 200
    assert manifest["author"]["name"] and manifest["license"] == "MIT"
    assert manifest["repository"] == project["urls"]["Repository"]
    license_text = (REPO / "LICENSE").read_text()
    assert license_text.startswith("MIT License") and "Copyright (c) 2026 the lmm-mcp authors" in license_text
    market = _load(".claude-plugin/marketplace.json")
    assert market["owner"]["name"] and [p["name"] for p in market["plugins"]] == ["lmm-mcp"]
    [entry] = market["plugins"]
    assert (REPO / entry["source"] / ".claude-plugin" / "plugin.json").exists()
    assert "pip install" not in json.dumps(market)  # the package is not published
    assert f"/plugin install lmm-mcp@{market['name']}" in entry["description"]
    assert entry["version"] == manifest["version"]


def test_plugin_mcp_and_hooks_call_the_launcher_in_the_plugin():
    launcher = "${CLAUDE_PLUGIN_ROOT}/bin/lmm-mcp"
    assert os.access(REPO / "bin" / "lmm-mcp", os.X_OK)
    servers = _load(".mcp.json")["mcpServers"]
    assert servers == {"lmm": {"type": "stdio", "command": launcher, "args": ["serve"]}}

    config = _load("hooks/hooks.json")
    assert set(config) <= {"description", "hooks"}
    assert set(config["hooks"]) == set(EVENTS)
    for event, groups in config["hooks"].items():
        assert isinstance(groups, list) and groups
        for group in groups:
            assert set(group) <= {"matcher", "hooks"}
            for h in group["hooks"]:
                assert h["type"] == "command" and h["timeout"] == install.HOOKS[event][1]
                assert h["command"].startswith(f'"{launcher}" ')  # quoted: a plugin root may hold spaces
                argv = shlex.split(h["command"])
                assert argv == [launcher, "hook", EVENTS[event]]
                assert hooks.EVENTS[argv[2]] == event


def test_example_config_is_what_install_writes():
    example = _load("claude_config_example.json")
    assert example == install.example_config()
    plugin_hooks = _load("hooks/hooks.json")["hooks"]
    for event, groups in example["hooks"].items():  # the same hooks as the plugin's, from lmm-mcp on PATH
        [[ours]], [[theirs]] = [g["hooks"] for g in groups], [g["hooks"] for g in plugin_hooks[event]]
        assert ours["timeout"] == theirs["timeout"]
        assert shlex.split(ours["command"])[1:] == shlex.split(theirs["command"])[1:]
    assert example["mcpServers"]["lmm"]["args"] == _load(".mcp.json")["mcpServers"]["lmm"]["args"]


# ------------------------------------------------------------------------------- install beside the plugin


def with_plugin(home: Path, *, enabled: bool | None = True, installed: bool = True) -> None:
    """Claude Code's records of `/plugin install lmm-mcp@lmm-mcp` (installed_plugins.json v2, enabledPlugins)."""
    if installed:
        record = {
            "scope": "user",
            "installPath": str(home / "plugins" / "cache" / "lmm-mcp" / "lmm-mcp" / "0.1.0"),
            "version": "0.1.0",
            "installedAt": "2026-11-30T10:00:00.000Z",
            "lastUpdated": "2026-11-30T10:00:00.000Z",
        }
        other = {**record, "installPath": "/elsewhere"}
        doc = {"version": 2, "plugins": {"lmm-mcp@lmm-mcp": [record], "lmm-mcp-extras@x": [other]}}
        (home / "plugins").mkdir(exist_ok=True)
        (home / "plugins" / "installed_plugins.json").write_text(json.dumps(doc))
    if enabled is not None:
        settings = json.loads((home / "settings.json").read_text())
        settings["enabledPlugins"] = {"lmm-mcp@lmm-mcp": enabled, "other@x": True}
        (home / "settings.json").write_text(json.dumps(settings, indent=4))


def test_install_registers_nothing_where_the_plugin_is_installed(tmp_path):
    for enabled, installed in ((True, True), (None, True), (True, False)):
        (tmp_path / f"{enabled}-{installed}").mkdir()
        home = claude_home(tmp_path / f"{enabled}-{installed}")
        with_plugin(home, enabled=enabled, installed=installed)
        before = snapshot(home)
        proc = run("--claude-home", str(home))
        assert proc.returncode == 0, proc.stderr.decode()
        out = proc.stdout.decode()
        assert "plugin is installed" in out and "lmm-mcp@lmm-mcp" in out and "registers nothing" in out
        assert "--remove" not in out
        assert snapshot(home) == before  # no hook, no server, no backup
        doc = orjson.loads(run("--claude-home", str(home), "--json").stdout)
        assert doc["plugin"] and doc["files"] == [] and doc["also_registered_in"] == []


def test_a_disabled_plugin_does_not_stop_install(tmp_path):
    home = claude_home(tmp_path)
    with_plugin(home, enabled=False)
    assert run("--claude-home", str(home)).returncode == 0
    settings = json.loads((home / "settings.json").read_text())
    assert all(len(ours(settings, e)) == 1 for e in EVENTS)


def test_hooks_registered_before_the_plugin_are_named_and_removed_with_remove(tmp_path):
    home = claude_home(tmp_path)
    assert run("--claude-home", str(home)).returncode == 0  # the hooks and server, registered the old way
    with_plugin(home)
    before = snapshot(home)
    proc = run("--claude-home", str(home))
    assert proc.returncode == 0
    out = proc.stdout.decode()
    assert "each hook runs twice" in out and "lmm-mcp install --remove" in out
    assert str(home / "settings.json") in out and str(home / ".claude.json") in out
    assert snapshot(home) == before

    proc = run("--claude-home", str(home), "--remove")
    assert proc.returncode == 0, proc.stderr.decode()
    settings = json.loads((home / "settings.json").read_text())
    servers = json.loads((home / ".claude.json").read_text())
    assert not any(ours(settings, e) for e in EVENTS if e in settings["hooks"])
    assert "UserPromptSubmit" not in settings["hooks"] and "SessionEnd" not in settings["hooks"]
    assert settings["hooks"]["SessionStart"] == SETTINGS["hooks"]["SessionStart"]  # theirs kept
    assert settings["hooks"]["Stop"] == SETTINGS["hooks"]["Stop"] and settings["enabledPlugins"]
    assert "lmm" not in servers["mcpServers"] and servers["mcpServers"]["github"]
    assert servers["numStartups"] == 42
    proc = run("--claude-home", str(home))
    assert proc.returncode == 0 and "--remove" not in proc.stdout.decode()  # once is enough
    again = snapshot(home)
    assert run("--claude-home", str(home), "--remove").returncode == 0
    assert snapshot(home) == again  # nothing left to remove: nothing written


def test_remove_without_settings_files_writes_nothing(tmp_path):
    home = tmp_path / "claude"
    home.mkdir()
    proc = run("--claude-home", str(home), "--remove")
    assert proc.returncode == 0 and "Nothing to change" in proc.stdout.decode()
    assert list(home.iterdir()) == []
