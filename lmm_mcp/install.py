"""`lmm-mcp install`: register the MCP server and the three hooks with Claude Code.

    lmm-mcp install                          user scope: ~/.claude.json (mcpServers) and ~/.claude/settings.json
    lmm-mcp install --scope project          <project>/.mcp.json and <project>/.claude/settings.json
    lmm-mcp install --dry-run [--json]       print what would be written; change nothing
    lmm-mcp install --remove                 take our server and hooks out of those files again

`--claude-home DIR` is Claude Code's configuration folder, as `CLAUDE_CONFIG_DIR` names it (default: that
variable, else ~/.claude); with it, the user-scope server goes to `DIR/.claude.json` as Claude Code does then.

The files are merged, never replaced: every existing key, server and hook stays. Our entries are found again by
the server name (`lmm`) and by the hook command (`lmm-mcp … hook <event>`), so a re-run changes nothing, and a
re-run after a move updates the command in place. Each changed file is first copied to `<file>.bak-<time>` and
then written atomically (a temporary file renamed over it); a file that changed on disk while we merged is
read and merged again. A file that is not valid JSON is never touched: install stops with exit status 2.
Claude Code rewrites ~/.claude.json while it runs: install with Claude Code closed, then start it again.

The Claude Code plugin (`/plugin install lmm-mcp@…`) brings the same server and hooks. When Claude Code's
records show it installed or enabled (`<claude home>/plugins/installed_plugins.json`, `enabledPlugins` in the
settings, keyed `lmm-mcp@<marketplace>`), install registers nothing, since every hook would run twice, and says
so; where the settings already hold our hooks too, it names `lmm-mcp install --remove` as the fix.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER_NAME = "lmm"
PLUGIN_NAME = "lmm-mcp"  # the plugin's id is "lmm-mcp@<marketplace>"
HOOKS = {  # event -> (hook subcommand, timeout in seconds)
    "SessionStart": ("session-start", 10),
    "UserPromptSubmit": ("user-prompt", 5),
    "SessionEnd": ("session-end", 5),
}
_OURS = re.compile(r"(?:lmm-mcp|lmm_mcp)\S*\s+hook\s+(session-start|user-prompt|session-end)\b")
RETRIES = 3  # re-merges when a file changes under us


class InstallError(ValueError):
    """A file install must not touch as it is; the message says which and what to do."""


@dataclass
class Planned:
    path: Path
    before: dict[str, Any] | None  # None: the file does not exist
    after: dict[str, Any]
    stamp: tuple[int, int] | None  # (mtime_ns, size) when read

    @property
    def action(self) -> str:
        if self.before is None:
            return "create"
        return "unchanged" if self.before == self.after else "update"


def register(sub, common) -> None:
    p = sub.add_parser(
        "install",
        parents=[common],
        help="register the MCP server and hooks with Claude Code",
        description="Merge the lmm MCP server and the SessionStart, UserPromptSubmit and SessionEnd hooks "
        "into Claude Code's settings (backups, atomic writes, idempotent).",
    )
    p.add_argument("--scope", choices=["user", "project"], default="user", help="default: user")
    p.add_argument("--dry-run", action="store_true", help="print the planned files; write nothing")
    p.add_argument(
        "--claude-home", help="Claude Code's config folder (default: $CLAUDE_CONFIG_DIR or ~/.claude)"
    )
    p.add_argument("--project-dir", help="project root for --scope project (default: the current folder)")
    p.add_argument(
        "--remove", action="store_true", help="remove the lmm server and hooks that install registered"
    )
    p.set_defaults(run=cmd_install)


def cmd_install(cfg, args) -> int:
    targets = target_files(args.scope, args.claude_home, args.project_dir)
    if args.remove:
        merges = [(targets["servers"], remove_server), (targets["settings"], remove_hooks)]
        return _write([(path, merge) for path, merge in merges if path.exists()], args)
    found = plugin_records(_claude_home(args.claude_home), _project_root(args))
    if found:
        return _plugin_present(found, targets, args)
    home = cfg.home.absolute() if args.home else None
    claude_dir = _claude_dir_flag(args)
    server = server_entry(home, claude_dir=claude_dir)
    hooks = hook_commands(_command_prefix(), home=home, claude_dir=claude_dir)
    merges = [
        (targets["servers"], lambda d: merge_server(d, server)),
        (targets["settings"], lambda d: merge_hooks(d, hooks)),
    ]
    return _write(merges, args)


def _write(merges, args) -> int:
    plans = [plan(path, merge) for path, merge in merges]  # every file read and checked before any write
    backups: dict[Path, Path | None] = {}
    if not args.dry_run:
        for i, (_path, merge) in enumerate(merges):
            plans[i], backups[plans[i].path] = apply(plans[i], merge)
    doc = {
        "scope": args.scope,
        "dry_run": args.dry_run,
        "files": [
            {"path": str(p.path), "action": p.action, "backup": _str(backups.get(p.path)), "content": p.after}
            for p in plans
        ],
    }
    if args.json:
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    else:
        print(_summary(plans, backups, args.dry_run))
    sys.stdout.flush()
    return 0


def _plugin_present(found: list[str], targets: dict[str, Path], args) -> int:
    """The plugin brings the server and hooks: register nothing; name what already runs twice, and the fix."""
    already = [
        str(path) for path, doc in ((p, read_json(p)[0]) for p in targets.values()) if doc and _has_ours(doc)
    ]
    lines = [
        f"The lmm-mcp Claude Code plugin is installed ({'; '.join(found)}): it runs the lmm server and the hooks "
        "itself, so install registers nothing (each hook would run twice).",
    ]
    if already:
        lines.append(
            f"These files register them as well, so each hook runs twice now: {', '.join(already)}. "
            f"Remove those with `lmm-mcp install --remove{' --scope project' if args.scope == 'project' else ''}`"
            " (or uninstall the plugin: /plugin uninstall lmm-mcp)."
        )
    else:
        lines.append("To register them here instead, uninstall the plugin first (/plugin uninstall lmm-mcp).")
    if args.json:
        doc = {"scope": args.scope, "dry_run": args.dry_run, "plugin": found, "also_registered_in": already}
        sys.stdout.write(json.dumps({**doc, "files": []}, ensure_ascii=False) + "\n")
    else:
        print("\n".join(lines))
    sys.stdout.flush()
    return 0


def _summary(plans: list[Planned], written: dict[Path, Path | None], dry_run: bool) -> str:
    lines = []
    for p in plans:
        if dry_run:
            verb = {"create": "would create", "update": "would update", "unchanged": "unchanged"}[p.action]
            lines.append(f"{verb}: {p.path}")
            if p.action != "unchanged":
                lines.append(dumps(p.after).rstrip())
        else:
            backup = written.get(p.path)
            verb = {"create": "created", "update": "updated", "unchanged": "unchanged"}[p.action]
            lines.append(f"{verb}: {p.path}" + (f" (backup: {backup})" if backup else ""))
    if not dry_run and any(p.action != "unchanged" for p in plans):
        lines.append("Restart Claude Code to load the change.")
    if not plans:
        lines.append("Nothing to change: no settings file there.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- what we write


def server_entry(
    home: Path | None = None, command: list[str] | None = None, claude_dir: Path | None = None
) -> dict[str, Any]:
    """The stdio server entry: the installed `lmm-mcp serve`, with LMM_HOME when a home was chosen."""
    command = command or _command_prefix()
    args = [*command[1:], "serve"] + (["--claude-dir", str(claude_dir)] if claude_dir else [])
    entry: dict[str, Any] = {"type": "stdio", "command": command[0], "args": args}
    if home is not None:
        entry["env"] = {"LMM_HOME": str(home)}
    return entry


def hook_commands(
    prefix: list[str], *, home: Path | None = None, claude_dir: Path | None = None
) -> dict[str, str]:
    """Event -> shell command line (hooks run through a shell: quote every part)."""
    extra = []
    if home is not None:
        extra += ["--home", str(home)]
    if claude_dir is not None:
        extra += ["--claude-dir", str(claude_dir)]
    return {event: shlex.join([*prefix, "hook", sub, *extra]) for event, (sub, _timeout) in HOOKS.items()}


def hooks_config(commands: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """The `hooks` object of a settings file (or a plugin's hooks/hooks.json) with only our hooks."""
    return {event: [{"hooks": [_hook(event, commands[event])]}] for event in HOOKS}


def example_config(prefix: list[str] | None = None) -> dict[str, Any]:
    """What claude_config_example.json holds: the server entry and the hooks, with `lmm-mcp` on PATH."""
    prefix = prefix or ["lmm-mcp"]
    return {
        "mcpServers": {SERVER_NAME: server_entry(command=prefix)},
        "hooks": hooks_config(hook_commands(prefix)),
    }


def _hook(event: str, command: str) -> dict[str, Any]:
    return {"type": "command", "command": command, "timeout": HOOKS[event][1]}


def _command_prefix() -> list[str]:
    """The installed `lmm-mcp` script of this Python (then any on PATH), else `python -m lmm_mcp`."""
    exe = "lmm-mcp.exe" if os.name == "nt" else "lmm-mcp"
    sibling = Path(sys.executable).parent / exe
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return [str(sibling.absolute())]
    found = shutil.which("lmm-mcp")
    if found:
        return [str(Path(found).absolute())]
    return [sys.executable, "-m", "lmm_mcp"]


def _claude_dir_flag(args) -> Path | None:
    """Hooks must find transcripts where a non-default Claude home keeps them."""
    chosen = args.claude_home or os.environ.get("CLAUDE_CONFIG_DIR")
    if not chosen:
        return None
    home = Path(chosen).expanduser().absolute()
    return None if home == Path.home() / ".claude" else home / "projects"


def _claude_home(flag: str | None) -> Path:
    chosen = flag or os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(chosen).expanduser().absolute() if chosen else Path.home() / ".claude"


def _project_root(args) -> Path | None:
    if args.scope != "project":
        return None
    return Path(args.project_dir or os.getcwd()).expanduser().absolute()


def target_files(scope: str, claude_home: str | None, project_dir: str | None) -> dict[str, Path]:
    if scope == "project":
        root = Path(project_dir or os.getcwd()).expanduser().absolute()
        return {"servers": root / ".mcp.json", "settings": root / ".claude" / "settings.json"}
    chosen = claude_home or os.environ.get("CLAUDE_CONFIG_DIR")
    if chosen:
        home = Path(chosen).expanduser().absolute()
        return {"servers": home / ".claude.json", "settings": home / "settings.json"}
    return {"servers": Path.home() / ".claude.json", "settings": Path.home() / ".claude" / "settings.json"}


# ------------------------------------------------------------------------------------------------ plugin


def plugin_records(claude_home: Path, project: Path | None = None) -> list[str]:
    """Where Claude Code records our plugin as installed or enabled: "<key> in <file>" for each; [] if nowhere.

    `enabledPlugins` (user settings; a project's settings for a project install) maps "name@marketplace" to
    true or false; `plugins/installed_plugins.json` lists installs by the same key (version 2: a list of
    installs per key; version 1: one object). An install that the user settings disable does not count.
    """
    settings = [claude_home / "settings.json"]
    if project is not None:
        settings += [project / ".claude" / "settings.json", project / ".claude" / "settings.local.json"]
    found, disabled = [], set()
    for path in settings:
        for key, on in _ours(_quiet_json(path).get("enabledPlugins")).items():
            if on is True:
                found.append(f"{key} enabled in {path}")
            elif on is False and path == settings[0]:
                disabled.add(key)
    installed = claude_home / "plugins" / "installed_plugins.json"
    for key, entries in _ours(_quiet_json(installed).get("plugins")).items():
        if key not in disabled and entries and not any(r.startswith(f"{key} ") for r in found):
            found.append(f"{key} installed in {installed}")
    return found


def _ours(mapping: Any) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        return {}
    return {k: v for k, v in mapping.items() if isinstance(k, str) and k.split("@")[0] == PLUGIN_NAME}


def _quiet_json(path: Path) -> dict[str, Any]:
    """A file Claude Code owns, for reading only: what cannot be read counts as empty."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _has_ours(doc: dict[str, Any]) -> bool:
    servers = doc.get("mcpServers")
    if isinstance(servers, dict) and SERVER_NAME in servers:
        return True
    return remove_hooks(doc) != doc


# ----------------------------------------------------------------------------------------------- merging


def merge_server(doc: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """`doc` with mcpServers.lmm set to `entry`; every other key and server as it was."""
    out = json.loads(json.dumps(doc))
    servers = out.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise InstallError("its `mcpServers` is not an object: fix it by hand, then run install again")
    servers[SERVER_NAME] = entry
    return out


def merge_hooks(doc: dict[str, Any], commands: dict[str, str]) -> dict[str, Any]:
    """`doc` with our three hooks: kept where present, updated in place if their command moved, else added."""
    out = json.loads(json.dumps(doc))
    hooks = out.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise InstallError("its `hooks` is not an object: fix it by hand, then run install again")
    for event, command in commands.items():
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise InstallError(f"its `hooks.{event}` is not a list: fix it by hand, then run install again")
        ours = [
            h
            for g in groups
            if isinstance(g, dict) and isinstance(g.get("hooks"), list)
            for h in g["hooks"]
            if isinstance(h, dict) and _is_ours(h.get("command"), HOOKS[event][0])
        ]
        if not ours:
            groups.append({"hooks": [_hook(event, command)]})
            continue
        ours[0].update(_hook(event, command))
        for extra in ours[1:]:  # a hand-made duplicate of ours: leave one
            for g in groups:
                if isinstance(g, dict) and isinstance(g.get("hooks"), list) and extra in g["hooks"]:
                    g["hooks"] = [h for h in g["hooks"] if h is not extra]
        hooks[event] = [g for g in groups if not (isinstance(g, dict) and g.get("hooks") == [])]
    return out


def remove_server(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` without mcpServers.lmm; everything else as it was."""
    out = json.loads(json.dumps(doc))
    servers = out.get("mcpServers")
    if isinstance(servers, dict):
        servers.pop(SERVER_NAME, None)
    return out


def remove_hooks(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` without our three hooks; a group or event list left empty by that goes too, nothing else does."""
    out = json.loads(json.dumps(doc))
    hooks = out.get("hooks")
    if not isinstance(hooks, dict):
        return out
    for event, (sub, _timeout) in HOOKS.items():
        groups = hooks.get(event)
        if not isinstance(groups, list):
            continue
        kept = []
        for g in groups:
            if isinstance(g, dict) and isinstance(g.get("hooks"), list):
                left = [
                    h for h in g["hooks"] if not (isinstance(h, dict) and _is_ours(h.get("command"), sub))
                ]
                if not left and g["hooks"]:
                    continue
                g["hooks"] = left
            kept.append(g)
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    return out


def _is_ours(command: Any, sub: str) -> bool:
    if not isinstance(command, str):
        return False
    m = _OURS.search(command)
    return m is not None and m.group(1) == sub


# ----------------------------------------------------------------------------------------------- files


def read_json(path: Path) -> tuple[dict[str, Any] | None, tuple[int, int] | None]:
    """A settings file's object and its (mtime_ns, size); (None, None) if it does not exist."""
    try:
        st = path.stat()
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as e:
        raise InstallError(f"{path}: cannot read it ({e.strerror or e})") from e
    if not raw.strip():
        return {}, (st.st_mtime_ns, st.st_size)  # an empty file holds nothing to keep
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InstallError(
            f"{path} is not valid JSON ({e}); fix it or move it away, then run install again"
        ) from e
    if not isinstance(doc, dict):
        raise InstallError(f"{path} holds a JSON {type(doc).__name__}, not an object; fix it or move it away")
    return doc, (st.st_mtime_ns, st.st_size)


def plan(path: Path, merge) -> Planned:
    before, stamp = read_json(path)
    try:
        after = merge(before or {})
    except InstallError as e:
        raise InstallError(f"{path}: {e}") from None
    return Planned(path, before, after, stamp)


def apply(p: Planned, merge) -> tuple[Planned, Path | None]:
    """Write a planned file (backup first); re-plan if the file changed since it was read."""
    for _ in range(RETRIES):
        if p.action == "unchanged":
            return p, None
        backup = None
        if p.before is not None:
            backup = _backup(p.path)
        if _stamp(p.path) == p.stamp:
            write_atomic(p.path, dumps(p.after))
            return p, backup
        if backup:
            backup.unlink(missing_ok=True)
        p = plan(p.path, merge)  # someone (Claude Code) wrote it meanwhile: merge into the new content
    raise InstallError(f"{p.path} keeps changing while install runs: close Claude Code and run install again")


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def _backup(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.bak-{stamp}-{n}")
    shutil.copy2(path, backup)
    return backup


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename it over: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _str(path: Path | None) -> str | None:
    return str(path) if path else None
