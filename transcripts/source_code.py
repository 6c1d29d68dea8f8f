"""What code and tool output say about a project: definitions, manifests, and the commands that run it.

The parsers behind memory extraction's tool facts (`transcripts.tool_use` calls them on what Read, Write, Edit
and Bash carried; `transcripts.conversation` reads what was said). Everything here is a pure function of a
string, so it is cheap to test and never looks at the filesystem:

    definitions("app/billing.py", source)       # -> [Definition("function", "sync_invoice", "session, invoice_id")]
    manifest_facts("/p/package.json", text)      # -> Manifest(...) or None
    command_kind("uv run pytest -x tests/")      # -> ("test", "pytest")
    failure_line(output)                         # -> "KeyError: 'coupon'" or None

Python is parsed with `ast` (a fragment that does not parse falls back to regexes); JS/TS, Go and Rust use
regexes, because a definition line is all we keep and a real parser for each would be a dependency per language.
"""

from __future__ import annotations

import ast
import re
import shlex
import textwrap
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

MAX_DEFS = 40  # per file: a generated 3,000-line module is not 3,000 memories


@dataclass(slots=True)
class Definition:
    kind: str  # function | method | class | interface | type | struct | enum | trait
    name: str  # `Class.method` for methods
    detail: str = ""  # parameters, without annotations or defaults


# ---------------------------------------------------------------------------------------------- definitions

_PY_EXT = (".py", ".pyi")
_JS_EXT = (".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts")
_PY_DEF = re.compile(
    r"^([ \t]*)(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(([^)\n]*)|^([ \t]*)class[ \t]+(\w+)", re.M
)
_JS_DEFS = (
    (
        "function",
        re.compile(
            r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)", re.M
        ),
    ),
    (
        "function",
        re.compile(
            r"^\s*(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=\n]+)?=\s*(?:async\s*)?"
            r"(?:\([^)\n]*\)|[A-Za-z_$][\w$]*)\s*(?::[^=\n]+)?=>",
            re.M,
        ),
    ),
    (
        "class",
        re.compile(r"^\s*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+([A-Za-z_$][\w$]*)", re.M),
    ),
    ("interface", re.compile(r"^\s*(?:export\s+)?interface\s+([A-Za-z_$][\w$]*)", re.M)),
    ("type", re.compile(r"^\s*(?:export\s+)?type\s+([A-Za-z_$][\w$]*)\s*(?:<[^>\n]*>)?\s*=", re.M)),
)
_GO_FUNC = re.compile(r"^func\s+(?:\(\s*\w*\s*\*?\s*(\w+)[^)]*\)\s*)?(\w+)\s*[(\[]", re.M)
_GO_TYPE = re.compile(r"^type\s+(\w+)\s+(struct|interface)\b", re.M)
_RS_FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)", re.M)
_RS_TYPE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(struct|enum|trait)\s+(\w+)", re.M)


def definitions(path: str, code: str) -> list[Definition]:
    """Functions, classes and types that `code` (a whole file or an edited fragment) defines."""
    if path.endswith(_PY_EXT):
        found = _python_ast(code)
        return (found if found is not None else _python_regex(code))[:MAX_DEFS]
    if path.endswith(_JS_EXT):
        hits = sorted((m.start(), kind, m.group(1)) for kind, rx in _JS_DEFS for m in rx.finditer(code))
        return _unique(Definition(kind, name) for _, kind, name in hits)
    if path.endswith(".go"):
        hits = [(m.start(), Definition("method" if m.group(1) else "function", _dotted(m.group(1), m.group(2))))
                for m in _GO_FUNC.finditer(code)]  # fmt: skip
        hits += [(m.start(), Definition(m.group(2), m.group(1))) for m in _GO_TYPE.finditer(code)]
        return _unique(d for _, d in sorted(hits, key=lambda h: h[0]))
    if path.endswith(".rs"):
        hits = [(m.start(), Definition("function", m.group(1))) for m in _RS_FN.finditer(code)]
        hits += [(m.start(), Definition(m.group(1), m.group(2))) for m in _RS_TYPE.finditer(code)]
        return _unique(d for _, d in sorted(hits, key=lambda h: h[0]))
    return []


def _python_ast(code: str) -> list[Definition] | None:
    """Top-level functions and classes with their methods; None when the code does not parse."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):  # an Edit fragment cut mid-block, or a file with a real syntax error
        return None
    out: list[Definition] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out.append(Definition("function", node.name, _params(node.args)))
        elif isinstance(node, ast.ClassDef):
            out.append(Definition("class", node.name, ", ".join(_expr_name(b) for b in node.bases)))
            out.extend(
                Definition("method", f"{node.name}.{item.name}", _params(item.args))
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            )
    return out


def _params(args: ast.arguments) -> str:
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.arg not in ("self", "cls")]
    if args.vararg:
        names.append("*" + args.vararg.arg)
    if args.kwarg:
        names.append("**" + args.kwarg.arg)
    return ", ".join(names)


def _expr_name(node: ast.expr) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # unparse has gaps for odd nodes; a base name is decoration, never worth a failure
        return "?"


def _python_regex(code: str) -> list[Definition]:
    """Line-level fallback: an indented `def` under a less-indented `class` is taken as its method."""
    out: list[Definition] = []
    cls: tuple[int, str] | None = None
    for m in _PY_DEF.finditer(code):
        if m.group(5):  # class
            cls = (len(m.group(4).expandtabs()), m.group(5))
            out.append(Definition("class", m.group(5)))
            continue
        indent = len(m.group(1).expandtabs())
        params = ", ".join(
            p.split(":")[0].split("=")[0].strip()
            for p in m.group(3).split(",")
            if p.strip() and p.split(":")[0].strip() not in ("self", "cls")
        )
        if cls is not None and indent > cls[0]:
            out.append(Definition("method", f"{cls[1]}.{m.group(2)}", params))
        else:
            cls = None if indent == 0 else cls
            out.append(Definition("function", m.group(2), params))
    return out


def _dotted(owner: str | None, name: str) -> str:
    return f"{owner}.{name}" if owner else name


def _unique(defs: Iterable[Definition]) -> list[Definition]:
    seen: set[str] = set()
    out: list[Definition] = []
    for d in defs:
        if d.name not in seen:
            seen.add(d.name)
            out.append(d)
    return out[:MAX_DEFS]


# ---------------------------------------------------------------------------------------------- manifests

MANIFESTS = ("pyproject.toml", "package.json", "Cargo.toml", "go.mod", "Makefile", "requirements.txt")
_LINE_NO = re.compile(r"^ *\d+(?:→|\t)", re.M)  # the Read tool's `cat -n` prefix


@dataclass(slots=True)
class Manifest:
    """What one package file says about the project: its stack, dependencies and commands."""

    kind: str  # the file name: pyproject.toml, package.json, ...
    language: str
    name: str = ""
    dependencies: list[str] = field(default_factory=list)
    commands: dict[str, str] = field(default_factory=dict)  # script or target -> command line
    tools: list[str] = field(default_factory=list)  # configured tools ([tool.ruff], ...) and versions

    def summary(self, max_deps: int = 12) -> str:
        parts = [f"{self.language} project" + (f" `{self.name}`" if self.name else "")]
        if self.tools:
            parts.append("tools: " + ", ".join(self.tools))
        if self.dependencies:
            more = len(self.dependencies) - max_deps
            deps = ", ".join(self.dependencies[:max_deps]) + (f" and {more} more" if more > 0 else "")
            parts.append(f"dependencies: {deps}")
        if self.commands:
            cmds = [f"`{k}` = `{v}`" if v else f"`{k}`" for k, v in list(self.commands.items())[:10]]
            parts.append(("make targets: " if self.kind == "Makefile" else "scripts: ") + ", ".join(cmds))
        return "; ".join(parts)


def strip_line_numbers(text: str) -> str:
    """Read tool output back to file content."""
    return _LINE_NO.sub("", text)


def is_manifest(path: str) -> bool:
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name in MANIFESTS or (name.startswith("requirements") and name.endswith(".txt"))


def manifest_facts(path: str, text: str) -> Manifest | None:
    """Parse a package file (full or, from a partial Read, truncated); None for other files or no facts."""
    if not is_manifest(path):
        return None
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    if name == "pyproject.toml":
        m = _pyproject(text)
    elif name == "package.json":
        m = _package_json(text)
    elif name == "Cargo.toml":
        m = _cargo(text)
    elif name == "go.mod":
        m = _go_mod(text)
    elif name == "Makefile":
        m = _makefile(text)
    else:
        m = Manifest(name, "Python", dependencies=_req_names(text.splitlines()))
    return m if m and (m.name or m.dependencies or m.commands or m.tools) else None


_REQ = re.compile(r"^\s*[\"']?([A-Za-z0-9][A-Za-z0-9_.-]*)")


def _req_names(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        m = _REQ.match(line)
        if m and not line.lstrip().startswith(("#", "-")):
            out.append(m.group(1).lower())
    return list(dict.fromkeys(out))


def _toml(text: str) -> dict | None:
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):
        return None


def _pyproject(text: str) -> Manifest:
    doc = _toml(text)
    if doc is None:  # a partial Read: the name and the dependency lines are still worth having
        dep_lines = re.findall(r"^\s*\"([^\"\n]+)\",?\s*$", text, re.M)
        return Manifest("pyproject.toml", "Python", _toml_name(text), _req_names(dep_lines))
    project = doc.get("project") or doc.get("tool", {}).get("poetry") or {}
    deps = project.get("dependencies") or []
    deps = _req_names(deps) if isinstance(deps, list) else [d.lower() for d in deps if d != "python"]
    tools = sorted(k for k in doc.get("tool", {}) if k != "poetry")
    if isinstance(project.get("requires-python"), str):
        tools.insert(0, f"Python {project['requires-python']}")
    scripts = project.get("scripts") or {}
    return Manifest(
        "pyproject.toml",
        "Python",
        str(project.get("name", "")),
        deps,
        {str(k): str(v) for k, v in scripts.items()},
        tools,
    )


def _package_json(text: str) -> Manifest | None:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    deps = [*(doc.get("dependencies") or {}), *(doc.get("devDependencies") or {})]
    language = (
        "TypeScript" if "typescript" in deps or any(d.startswith("@types/") for d in deps) else "JavaScript"
    )
    scripts = doc.get("scripts") if isinstance(doc.get("scripts"), dict) else {}
    return Manifest(
        "package.json", language, str(doc.get("name", "")), deps, {str(k): str(v) for k, v in scripts.items()}
    )


def _cargo(text: str) -> Manifest:
    doc = _toml(text)
    if doc is None:
        deps = re.findall(r"^([A-Za-z0-9_-]+)\s*=\s*[\"{]", text.split("[dependencies]", 1)[-1], re.M)
        return Manifest("Cargo.toml", "Rust", _toml_name(text), deps)
    package = doc.get("package", {})
    tools = [f"edition {package['edition']}"] if "edition" in package else []
    members = doc.get("workspace", {}).get("members", [])
    if members:
        tools.append("workspace: " + ", ".join(map(str, members[:8])))
    return Manifest(
        "Cargo.toml", "Rust", str(package.get("name", "")), list(doc.get("dependencies", {})), {}, tools
    )


def _toml_name(text: str) -> str:
    m = re.search(r"^name\s*=\s*\"([^\"]+)\"", text, re.M)
    return m.group(1) if m else ""


def _go_mod(text: str) -> Manifest:
    module = re.search(r"^module\s+(\S+)", text, re.M)
    version = re.search(r"^go\s+(\S+)", text, re.M)
    deps = re.findall(r"^\s*(?:require\s+)?([\w.-]+\.[\w.-]+/\S+)\s+v\S+", text, re.M)
    return Manifest(
        "go.mod",
        "Go",
        module.group(1) if module else "",
        deps,
        {},
        [f"Go {version.group(1)}"] if version else [],
    )


_MAKE_TARGET = re.compile(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)[^\n]*\n((?:\t[^\n]*\n?)*)", re.M)


def _makefile(text: str) -> Manifest:
    commands = {}
    for m in _MAKE_TARGET.finditer(text):
        recipe = next((line.strip().lstrip("@-") for line in m.group(2).splitlines() if line.strip()), "")
        commands[m.group(1)] = recipe[:100]
    return Manifest("Makefile", "Make", commands=commands)


# ---------------------------------------------------------------------------------------------- commands

# Tokens that only launch the real tool: `uv run pytest` is pytest.
_LAUNCHERS = {"uv": {"run"}, "poetry": {"run"}, "pdm": {"run"}, "hatch": {"run"}, "pipenv": {"run"}, "rye": {"run"},
              "npx": set(), "bunx": set(), "pnpx": set(), "bundle": {"exec"}, "sudo": set(), "time": set(),
              "env": set(), "nice": set()}  # fmt: skip
_PY_MODULES = {
    "pytest",
    "unittest",
    "mypy",
    "ruff",
    "black",
    "isort",
    "flake8",
    "pylint",
    "build",
    "pip",
    "alembic",
}
_TOOLS = {
    "test": {"pytest", "tox", "nox", "vitest", "jest", "mocha", "playwright", "rspec", "phpunit", "ctest",
             "unittest", "ava"},
    "lint": {"ruff", "mypy", "pyright", "flake8", "pylint", "black", "isort", "eslint", "prettier", "tsc", "biome",
             "golangci-lint", "gofmt", "clippy", "shellcheck", "rubocop"},
    "build": {"webpack", "vite build", "rollup", "esbuild"},
    "run": {"uvicorn", "gunicorn", "flask", "fastapi"},
    "migrate": {"alembic", "prisma", "diesel"},
}  # fmt: skip
_SUB = {  # (tool, subcommand) -> kind for tools that do many things
    "cargo": {"test": "test", "nextest": "test", "build": "build", "run": "run", "clippy": "lint", "fmt": "lint",
              "check": "lint", "bench": "test"},
    "go": {"test": "test", "build": "build", "run": "run", "vet": "lint"},
    "npm": {}, "pnpm": {}, "yarn": {}, "bun": {},
    "make": {},
    "docker": {"build": "build", "compose": "run"},
    "dotnet": {"test": "test", "build": "build", "run": "run"},
    "mvn": {"test": "test", "package": "build", "verify": "test"},
    "gradle": {"test": "test", "build": "build"}, "./gradlew": {"test": "test", "build": "build"},
}  # fmt: skip
_SCRIPT_KINDS = (("test", "test"), ("e2e", "test"), ("lint", "lint"), ("typecheck", "lint"), ("check", "lint"),
                 ("format", "lint"), ("build", "build"), ("dev", "run"), ("start", "run"), ("serve", "run"),
                 ("migrate", "migrate"))  # fmt: skip
_SPLIT = re.compile(r"\s*(?:&&|\|\||;|\|)\s*")


def command_kind(command: str) -> tuple[str, str] | None:
    """(kind, tool) for a command that tests, lints, builds, runs or migrates a project; None otherwise.

    `cd app && uv run pytest -x` -> ("test", "pytest"); `pnpm build` -> ("build", "pnpm build"). Shell
    plumbing (git, ls, grep, cat...) is None: it says nothing about how the project is built.
    """
    for part in _SPLIT.split(command.strip())[:4]:
        found = _part_kind(part)
        if found:
            if found[0] == "test" and re.search(r"(?:^|\s)-{1,2}bench(?:mark)?\b|\bbenchmark", part):
                return "benchmark", found[1]  # `go test -bench`, `pytest --benchmark-only`: not how tests run
            return found
    return None


def _part_kind(part: str) -> tuple[str, str] | None:
    try:
        tokens = shlex.split(part)
    except ValueError:
        tokens = part.split()
    while tokens and ("=" in tokens[0] and not tokens[0].startswith("-")):
        tokens.pop(0)  # FOO=1 pytest
    while tokens and tokens[0] in _LAUNCHERS:
        sub = _LAUNCHERS[tokens[0]]
        tokens = tokens[2:] if len(tokens) > 1 and tokens[1] in sub else tokens[1:]
    if len(tokens) >= 3 and tokens[0].startswith("python") and tokens[1] == "-m":
        tokens = tokens[2:] if tokens[2] in _PY_MODULES else tokens
    if not tokens:
        return None
    tool = tokens[0].rsplit("/", 1)[-1] if not tokens[0].startswith("./") else tokens[0]
    sub = tokens[1] if len(tokens) > 1 else ""
    if tool in ("npm", "pnpm", "yarn", "bun"):
        if sub in ("run", "run-script", "exec", "dlx", "x") and len(tokens) > 2:
            sub, rest = tokens[2], tokens[2:]
        else:
            rest = tokens[1:]
        if sub in ("install", "i", "ci", "add"):
            return ("install", f"{tool} install")
        for key, kind in _SCRIPT_KINDS:
            if sub.startswith(key):
                return (kind, f"{tool} {sub}")
        return _part_kind(" ".join(rest)) if rest and rest[0] != tool else None  # `pnpm vitest run`: a bin
    if tool == "make":
        target = sub if sub and not sub.startswith("-") else ""
        kind = next((k for key, k in _SCRIPT_KINDS if target.startswith(key)), "build")
        return (kind, f"make {target}".strip())
    if tool in _SUB:
        kind = _SUB[tool].get(sub)
        if tool == "docker" and sub == "compose":
            kind = "build" if "build" in tokens else "run" if "up" in tokens else None
        return (kind, f"{tool} {sub}") if kind else None
    if (tool in ("pip", "pip3") and sub == "install") or (tool == "uv" and sub in ("sync", "add", "pip")):
        return ("install", f"{tool} {sub}")
    if tool == "vite" and sub == "build":
        return ("build", "vite build")
    if tool.startswith("python") and "manage.py" in sub:
        action = tokens[2] if len(tokens) > 2 else ""
        kinds = {"test": "test", "runserver": "run", "migrate": "migrate", "makemigrations": "migrate"}
        return (kinds[action], f"manage.py {action}") if action in kinds else None
    for kind, tools in _TOOLS.items():
        if tool in tools:
            return (kind, tool)
    return None


# ---------------------------------------------------------------------------------------------- failures

_FAILED = re.compile(
    r"^(?:FAILED |ERROR |E {2,}\S|Traceback \(most recent call last\)|error(?:\[E\d+\])?:|--- FAIL|FAIL\s|panic:"
    r"|npm ERR!|.*\b[1-9]\d* (?:failed|errors?)\b|test result: FAILED|\s*× )",
    re.M,
)
_ERROR_LINES = (
    re.compile(r"^E {2,}(\S.*)$", re.M),  # pytest's own pick of the exception line
    re.compile(r"^(?:FAILED|ERROR) \S+ - (.+)$", re.M),
    re.compile(r"\b((?:[a-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b:?[^\n]*)"),
    re.compile(r"^(error(?:\[E\d+\])?:[^\n]+)", re.M),
    re.compile(r"^(panic:[^\n]+|thread '[^']*' panicked[^\n]*)", re.M),
    re.compile(r"(?:→|Error:)\s*([^\n]+)"),
)


def looks_failed(output: str) -> bool:
    """Test or build output that reports a failure even though the tool call itself succeeded."""
    return _FAILED.search(output) is not None


def failure_line(output: str) -> str | None:
    """The one line of a failing output that names the error; None when it only says `Exit code 1`."""
    for rx in _ERROR_LINES:
        m = rx.search(output)
        if m:
            line = m.group(1).strip()
            if len(line) > 3:
                return line[:160]
    return None
