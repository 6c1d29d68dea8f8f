"""The architecture as tests: which package may import which, what a hook process loads, one composition root,
and functions short enough to read.

    transcripts  <-  trainer  <-  lmm_mcp          (an arrow points at what may be imported)

- `transcripts` (a transcript becomes memories) imports neither `trainer` nor `lmm_mcp`;
- `trainer` never imports `lmm_mcp`, so it runs alone on a GPU box;
- inside `lmm_mcp`, the store side (`store`, `queries`, `turns`) imports none of the parts built on it, and only
  the CLI imports the server, the demo and the sample scenario;
- a hook process (a new process on every prompt) imports no torch, transformers, peft or sample data;
- the parts are built from the config in `lmm_mcp/app.py` only, and SQL stays in the store-side modules.

Every import statement counts, also those inside functions: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("transcripts", "trainer", "lmm_mcp")
MAX_FUNCTION_LINES = 120

# (importer prefix, imported prefix, why). A module matches a prefix when it is the prefix or lies under it.
FORBIDDEN = [
    ("transcripts", "trainer", "transcripts is the lowest layer"),
    ("transcripts", "lmm_mcp", "transcripts is the lowest layer"),
    ("trainer", "lmm_mcp", "trainer never imports the product: it runs alone on a GPU box"),
    *[
        (low, high, "the store side is below the parts built on it")
        for low in ("lmm_mcp.store", "lmm_mcp.queries", "lmm_mcp.turns")
        for high in ("lmm_mcp.app", "lmm_mcp.recall", "lmm_mcp.server", "lmm_mcp.tools", "lmm_mcp.cli")
    ],
]
# Modules that only the named importers may import.
ONLY_FROM = {
    "lmm_mcp.server": ("lmm_mcp.cli",),
    "lmm_mcp.tools": ("lmm_mcp.server",),
    "lmm_mcp.samples.scenario": ("lmm_mcp.demo", "lmm_mcp.samples.build"),
}
# The modules that speak SQL: the store side, and the writers and the ranker that own their statements.
SQL_MODULES = {
    "lmm_mcp.store",
    "lmm_mcp.queries",
    "lmm_mcp.turns",
    "lmm_mcp.ingest",
    "lmm_mcp.memories",
    "lmm_mcp.embed",
    "lmm_mcp.retrieval",
    "lmm_mcp.privacy",  # forget: deletes a session everywhere it lives, in one transaction
    "lmm_mcp.backup",  # export, import and rebuild: a home's store as a whole
    "lmm_mcp.sources",  # get_source: a cited record and its neighbours, read side
}
# Constructors of the parts: called in the composition root only (the defining module may name them).
PARTS = ("Ingester", "Embedder", "Retriever", "Recaller", "Jobs", "StoreHistory")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str) -> set[str]:
    """Every module an import statement in `source` names, relative imports resolved against `module`."""
    found: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: level 1 is this package, 2 its parent...
                parts = package.split(".")
                anchor = parts[: max(0, len(parts) - node.level + 1)]
                base = ".".join(p for p in [*anchor, base] if p)
            found.add(base)
            found.update(
                f"{base}.{a.name}" if base else a.name for a in node.names
            )  # `from lmm_mcp import demo` names a module
    return found


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(module: str, source: str) -> list[str]:
    out = []
    for imported in sorted(imports_of(source, module)):
        for low, high, why in FORBIDDEN:
            if _under(module, low) and _under(imported, high):
                out.append(f"{module} imports {imported}: {why}")
        for guarded, allowed in ONLY_FROM.items():
            if (
                _under(imported, guarded)
                and module != guarded
                and not any(_under(module, a) for a in allowed)
            ):
                out.append(f"{module} imports {imported}: only {', '.join(allowed)} may")
    return out


def _sources() -> list[tuple[str, Path]]:
    return [(_module_name(p), p) for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]


def test_no_module_imports_across_a_layer():
    found = [v for module, path in _sources() for v in violations(module, path.read_text(encoding="utf-8"))]
    assert found == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("trainer.pairs", "def f():\n    from lmm_mcp.store import connect\n"),
        ("transcripts.parse", "import trainer.models\n"),
        ("lmm_mcp.queries", "from lmm_mcp.recall import Recaller\n"),
        ("lmm_mcp.hooks", "from lmm_mcp import server\n"),
        ("lmm_mcp.cli", "from lmm_mcp.samples.scenario import API\n"),
        ("trainer.train", "from .. import lmm_mcp\n"),
    ],
)
def test_the_checker_catches_a_forbidden_import(module, source):
    assert violations(module, source), f"{source!r} in {module} should be refused"


def test_the_checker_allows_the_layering():
    assert (
        violations("lmm_mcp.ingest", "from transcripts.parse import Turn\nfrom trainer import options\n")
        == []
    )
    assert violations("trainer.pairs", "from transcripts.extraction import Memory\n") == []


def test_parts_are_built_in_the_composition_root_only():
    """The embedder, retriever, recaller, jobs and ingest are constructed in lmm_mcp/app.py and nowhere else."""
    found = []
    for module, path in _sources():
        if not module.startswith("lmm_mcp") or module == "lmm_mcp.app":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in PARTS:
                    found.append(f"{module}:{node.lineno} builds {name}")
    assert found == []


def test_sql_stays_on_the_store_side():
    """Hooks, server, tools, demo, CLI and recall ask `lmm_mcp.queries`; they write no SQL of their own."""
    found = []
    for module, path in _sources():
        if not module.startswith("lmm_mcp") or module in SQL_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("execute", "executemany"):
                found.append(f"{module}:{node.lineno}")
    assert found == []


def test_no_function_is_longer_than_the_limit():
    long = []
    for module, path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if node.end_lineno - start + 1 > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {node.end_lineno - start + 1} lines")
    assert long == []


HOOK_PROBE = """
import io, json, sys
from lmm_mcp import cli
sys.stdin = io.TextIOWrapper(io.BytesIO(json.dumps(PAYLOAD).encode()))
code = cli.main(["hook", EVENT, "--home", HOME])
heavy = ("torch", "transformers", "peft", "accelerate", "lmm_mcp.samples.scenario", "lmm_mcp.server")
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}), file=sys.stderr)
"""


@pytest.mark.parametrize("event", ["session-start", "user-prompt", "session-end"])
def test_a_hook_process_loads_no_model_code_and_no_sample_data(event, tmp_path, embedded_home):
    home, claude, project = embedded_home
    transcript = next(claude.rglob("*.jsonl"))
    payload = {
        "session_id": "new-session",
        "cwd": project,
        "prompt": "how do we run the tests and which database did we choose",
        "transcript_path": str(transcript),
        "source": "startup",
        "reason": "exit",
    }
    code = (
        HOOK_PROBE.replace("PAYLOAD", repr(payload))
        .replace("EVENT", repr(event))
        .replace("HOME", repr(str(home)))
    )
    env = {**os.environ, "LMM_CLAUDE_DIR": str(claude), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    report = json.loads(out.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "loaded": []}
    printed = json.loads(out.stdout)
    if event == "user-prompt":  # it did the work, on a store with vectors, without loading a model
        assert "additionalContext" in printed["hookSpecificOutput"]


@pytest.fixture(scope="module")
def embedded_home(tmp_path_factory):
    """The bundled samples ingested and embedded (vectors present: the hook must still not load a model)."""
    from lmm_mcp.app import App
    from lmm_mcp.config import Config
    from lmm_mcp.samples import samples_path

    root = tmp_path_factory.mktemp("hooks")
    claude = root / "projects"
    import shutil

    shutil.copytree(samples_path(), claude)
    cfg = Config.load(root / "home", claude)
    with App.open(cfg) as app:
        report = app.ingest()
        assert report.chunks_embedded > 0 and report.embed_error is None
        project = app.conn.execute("SELECT path FROM projects ORDER BY id LIMIT 1").fetchone()[0]
    return cfg.home, claude, project
