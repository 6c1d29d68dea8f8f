"""One profile memory per project: its stack, commands and changes, rebuilt from its current memories.

    profiles = project_profiles(merged_memories)   # after the cross-session merge (transcripts.extraction)

The profile is what a new session in the project should know first: "Project profile of shop: written in
Python 3.12 (2026-01-05); database PostgreSQL 16 (2026-01-20; before: SQLite); tests run with `uv run
pytest -q` (2026-01-07); …". Every item carries the date of the memory it comes from, and the profile's
sources are those memories' sources, so each item can be traced. It is rebuilt on every merge, from the
facts in force: a superseded fact appears only as the "before" of the one that replaced it.
"""

from __future__ import annotations

from typing import Any

from transcripts.stack import ROLE_TERMS, ROLES
from transcripts.tool_use import project_name, short, slug

PROFILE_CHARS = 1_100  # a profile fits a 300-token recall with room to spare
MAX_SOURCES = 16
MAX_COMMANDS = 5  # a profile names the usual commands; the rest are memories of their own
_ROLE_ORDER = {name: i for i, name in enumerate(ROLES)}


def project_profiles(memories: list) -> list:
    """A `profile` Memory for each project with stack or command facts (`memories` are extraction.Memory)."""
    from transcripts.extraction import Memory, Source

    by_project: dict[str, list] = {}
    for m in memories:
        if m.project and m.category == "project_fact":
            by_project.setdefault(m.project, []).append(m)
    out = []
    for project, facts in sorted(by_project.items()):
        cited, used = _items(facts)
        if not cited:
            continue
        items = [item for item, _ in cited]
        name = project_name(project)
        text = f"Project profile of {name}: " + "; ".join(items)
        if len(text) > PROFILE_CHARS:
            text = text[: PROFILE_CHARS - 1].rsplit("; ", 1)[0] + "; …"
        text += "."
        newest = sorted(used, key=lambda m: m.time, reverse=True)
        sources: list[Source] = []
        for m in newest:
            s = max(m.sources, key=lambda s: s.timestamp or "")
            if s not in sources:
                sources.append(s)
        keywords = [name, *(m.attrs.get("choice") or m.attrs.get("command") or "" for m in newest)]
        out.append(
            Memory(
                "profile",
                text,
                [k for k in dict.fromkeys(keywords) if k][:12],
                0.9,
                sources[:MAX_SOURCES],
                project,
                f"profile:{slug(project)}:profile",
                attrs={
                    "kind": "profile",
                    "items": str(len(items)),
                    "item_sources": _item_sources(cited, text),
                },
            )
        )
    return out


def _item_sources(cited: list[tuple[str, Any]], text: str) -> str:
    """One line per item the text holds: the session and turn it cites, then its words and the words people
    ask for it with (`ROLE_TERMS`), tab-separated. A search that finds the profile names the session of the
    item the query asks about (`lmm_mcp.query`), not the one where the project was first described."""
    lines = []
    for item, m in cited:
        source = m.cited()
        if source is None or item not in text:
            continue
        terms = ROLE_TERMS.get(m.attrs.get("role", ""), "") if m.attrs.get("kind") == "stack" else ""
        lines.append("\t".join([source.session_id, source.uuid, source.timestamp or "", f"{item} {terms}"]))
    return "\n".join(lines)


def _items(facts: list) -> tuple[list[tuple[str, Any]], list]:
    """The profile's items in a stable order (stack by role, then commands, then manifests), each with the
    memory it says, and every memory used (a replaced fact too)."""
    current = [m for m in facts if not m.superseded_by]
    stack = sorted(
        (m for m in current if m.attrs.get("kind") == "stack"),
        key=lambda m: (_ROLE_ORDER.get(m.attrs.get("role", ""), 99), m.time),
    )
    items, used = [], []
    for m in stack:
        role = m.attrs.get("role", "")
        tech = m.attrs.get("choice", "") + (f" {m.attrs['version']}" if m.attrs.get("version") else "")
        tech += f" for {m.attrs['purpose']}" if m.attrs.get("purpose") else ""
        before = [o for o in facts if o.superseded_by == m.key]
        was = f"; before: {', '.join(o.attrs.get('choice', '?') for o in before)}" if before else ""
        since = m.attrs.get("changed_at") or min((s.timestamp or "" for s in m.sources), default="")
        items.append((f"{role} {tech} ({since[:10]}{was})", m))
        used += [m, *before]
    commands = [m for m in current if m.attrs.get("kind") == "command" and m.attrs.get("command")]
    for m in sorted(commands, key=lambda m: -m.salience)[:MAX_COMMANDS]:  # the usual ones, briefly
        kind = m.attrs.get("command_kind", "command")
        items.append((f"{kind}: `{short(m.attrs['command'], 60)}` ({m.time[:10]})", m))
        used.append(m)
    for m in current:
        if m.attrs.get("kind") == "manifest" and m.attrs.get("path"):
            items.append((f"package file {m.attrs['path']} ({m.time[:10]})", m))
            used.append(m)
    return items, used
