"""What happened in the sample sessions: the authored content behind `lmm_mcp/samples/projects/`.

Three projects of one developer over February 2026, four sessions each, interleaved in time:

- tasklane-api (`/home/dev/code/tasklane-api`): a FastAPI + SQLAlchemy task tracker tested with pytest, run
  with uv. Chooses SQLite, then switches the database to PostgreSQL; a timezone bug in the overdue query; Alembic
  migrations with a mistyped revision; a pasted (fake) API key.
- pulse-dashboard (`/home/dev/code/pulse-dashboard`): a React + TypeScript metrics dashboard, pnpm and Vitest.
  Picks Recharts, then switches the charts to visx; a crash on empty series; a needless useEffect.
- logsift (`/home/dev/code/logsift`): a Rust CLI that filters JSON log lines. clap and anyhow, a borrow-checker
  error in `--follow`, a file-watching change that did not work on macOS, thiserror for the library errors.

Every session says things the rule-based extractor (`transcripts.extraction`) recognises: preferences ("always",
"never", "don't", "I prefer"), decisions ("let's go with X for the Y", later "switch the Y from X to Z"),
corrections ("no, ...", "I said ...", "that didn't work"), failing commands fixed by an edit and rerun, package
files read, commands that pass, and files written that define functions and classes. One preference (small
commits, conventional commit messages) is stated in all three projects. The key in tasklane-api's third
session is fake and shows redaction.

`python -m lmm_mcp.samples.build` writes the transcripts from this file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lmm_mcp.samples.build import Session

API = "/home/dev/code/tasklane-api"
DASH = "/home/dev/code/pulse-dashboard"
CLI = "/home/dev/code/logsift"
COMMITS = "I prefer small commits with conventional commit messages like feat:, fix: and chore:"


@dataclass(frozen=True)
class Spec:
    cwd: str
    start: str  # ISO-8601 UTC
    branch: str
    title: str
    script: Callable[[Session], None]
    version: str = "2.1.42"  # Claude Code version the records carry


# ============================================================================================ tasklane-api

API_PYPROJECT = """\
[project]
name = "tasklane-api"
version = "0.1.0"
description = "A small task tracker API."
requires-python = ">=3.12"
dependencies = [
    "fastapi>=0.115",
    "sqlalchemy>=2.0",
    "pydantic>=2.9",
    "uvicorn[standard]>=0.32",
]

[dependency-groups]
dev = ["pytest>=8.3", "httpx>=0.28", "ruff>=0.8"]

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.ruff]
line-length = 100
"""

API_DB = '''\
"""Database engine and the per-request session."""

import os
from collections.abc import Iterator

from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

DATABASE_URL = os.environ.get("TASKLANE_DATABASE_URL", "sqlite:///./tasklane.db")

engine = create_engine(DATABASE_URL, connect_args={"check_same_thread": False})
SessionLocal = sessionmaker(bind=engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


def get_session() -> Iterator[Session]:
    """One session per request; FastAPI closes it when the response is sent."""
    with SessionLocal() as session:
        yield session
'''

API_MODELS = '''\
"""ORM models: projects and their tasks."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tasklane.db import Base


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    tasks: Mapped[list["Task"]] = relationship(back_populates="project", cascade="all, delete-orphan")


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    title: Mapped[str] = mapped_column(String(200))
    done: Mapped[bool] = mapped_column(default=False)
    project: Mapped[Project] = relationship(back_populates="tasks")
'''

API_SCHEMAS = '''\
"""Request and response bodies."""

from pydantic import BaseModel, ConfigDict, Field


class TaskIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    title: str
    done: bool
'''

API_MAIN = '''\
"""The HTTP API."""

from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from tasklane.db import Base, engine, get_session
from tasklane.models import Project, Task
from tasklane.schemas import TaskIn, TaskOut

app = FastAPI(title="tasklane")
Base.metadata.create_all(engine)


@app.post("/projects/{project_id}/tasks", response_model=TaskOut, status_code=201)
def create_task(project_id: int, body: TaskIn, session: Session = Depends(get_session)) -> Task:
    project = session.get(Project, project_id)
    if project is None:
        raise HTTPException(404, "no such project")
    task = Task(project=project, title=body.title)
    session.add(task)
    session.commit()
    return task


@app.get("/projects/{project_id}/tasks", response_model=list[TaskOut])
def list_tasks(project_id: int, session: Session = Depends(get_session)) -> list[Task]:
    return list(session.scalars(select(Task).where(Task.project_id == project_id)))
'''

API_TEST_TASKS = """\
from fastapi.testclient import TestClient

from tasklane.db import SessionLocal
from tasklane.main import app
from tasklane.models import Project

client = TestClient(app)


def make_project(name: str) -> int:
    with SessionLocal() as session:
        project = Project(name=name)
        session.add(project)
        session.commit()
        return project.id


def test_create_task():
    pid = make_project("inbox")
    res = client.post(f"/projects/{pid}/tasks", json={"title": "write the README"})
    assert res.status_code == 201
    assert res.json()["title"] == "write the README"


def test_create_task_unknown_project():
    assert client.post("/projects/999/tasks", json={"title": "x"}).status_code == 404


def test_empty_title_rejected():
    pid = make_project("errands")
    assert client.post(f"/projects/{pid}/tasks", json={"title": ""}).status_code == 422


def test_list_tasks():
    pid = make_project("garden")
    client.post(f"/projects/{pid}/tasks", json={"title": "water the tomatoes"})
    titles = [t["title"] for t in client.get(f"/projects/{pid}/tasks").json()]
    assert titles == ["water the tomatoes"]
"""

API_QUERIES = '''\
"""Queries the route handlers share; handlers stay thin and call these."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tasklane.models import Task


def overdue_tasks(session: Session, now: datetime) -> Sequence[Task]:
    """Open tasks whose due date has passed, oldest first."""
    stmt = (
        select(Task)
        .where(Task.done.is_(False), Task.due_date.is_not(None), Task.due_date < now)
        .order_by(Task.due_date)
    )
    return session.scalars(stmt).all()


def tasks_for_project(session: Session, project_id: int) -> Sequence[Task]:
    return session.scalars(select(Task).where(Task.project_id == project_id).order_by(Task.id)).all()
'''

API_TEST_OVERDUE_WITH_FIXTURE = """\
from datetime import UTC, datetime, timedelta

import pytest

from tasklane.db import SessionLocal
from tasklane.models import Project, Task
from tasklane.queries import overdue_tasks


@pytest.fixture
def db_session():
    with SessionLocal() as session:
        yield session
        session.rollback()


def test_overdue_lists_past_due(db_session):
    now = datetime.now(UTC)
    project = Project(name="overdue-a", tasks=[Task(title="late", due_date=now - timedelta(days=1))])
    db_session.add(project)
    db_session.flush()
    assert [t.title for t in overdue_tasks(db_session, now)] == ["late"]


def test_overdue_excludes_done(db_session):
    now = datetime.now(UTC)
    done = Task(title="finished", done=True, due_date=now - timedelta(days=2))
    db_session.add(Project(name="overdue-b", tasks=[done]))
    db_session.flush()
    assert overdue_tasks(db_session, now) == []


def test_overdue_ignores_undated(db_session):
    db_session.add(Project(name="overdue-c", tasks=[Task(title="someday")]))
    db_session.flush()
    assert overdue_tasks(db_session, datetime.now(UTC)) == []
"""

API_CONFTEST = '''\
"""Fixtures shared by every test module."""

import pytest
from fastapi.testclient import TestClient

from tasklane.db import SessionLocal
from tasklane.main import app


@pytest.fixture
def db_session():
    """A session whose changes are rolled back after the test."""
    with SessionLocal() as session:
        yield session
        session.rollback()


@pytest.fixture
def client():
    return TestClient(app)
'''

PYTEST_OVERDUE_FAIL = """\
============================= test session starts ==============================
platform linux -- Python 3.12.8, pytest-8.3.4, pluggy-1.5.0
rootdir: /home/dev/code/tasklane-api
configfile: pyproject.toml
collected 7 items

tests/test_overdue.py .F.                                                [ 42%]
tests/test_tasks.py ....                                                 [100%]

=================================== FAILURES ===================================
__________________________ test_overdue_excludes_done __________________________

db_session = <sqlalchemy.orm.session.Session object at 0x7f1c2a3b9d50>

    def test_overdue_excludes_done(db_session):
        now = datetime.now(UTC)
        done = Task(title="finished", done=True, due_date=now - timedelta(days=2))
        db_session.add(Project(name="overdue-b", tasks=[done]))
        db_session.flush()
>       assert overdue_tasks(db_session, now) == []

tests/test_overdue.py:21:
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _
tasklane/queries.py:18: in overdue_tasks
    return session.scalars(stmt).all()
E   TypeError: can't compare offset-naive and offset-aware datetimes

=========================== short test summary info ============================
FAILED tests/test_overdue.py::test_overdue_excludes_done - TypeError: can't compare offset-naive and offset-aware datetimes
========================= 1 failed, 6 passed in 0.64s =========================="""


def api_1(s: Session) -> None:
    s.user(
        "Let's start the tasklane API: a small task tracker with projects and tasks. "
        "Let's go with FastAPI for the web framework. "
        "Let's use SQLAlchemy 2.0 for the ORM, with typed Mapped[] models. "
        "Let's go with SQLite for the database for now, it keeps local setup trivial. "
        "We use uv, not pip. Always add type hints to new functions."
    )
    s.read("pyproject.toml", API_PYPROJECT, say="I'll check what the project already declares.")
    s.write(
        "tasklane/db.py",
        API_DB,
        say="The dependencies are there. I'll start with the engine and a request-scoped session.",
    )
    s.write("tasklane/models.py", API_MODELS)
    s.write("tasklane/schemas.py", API_SCHEMAS)
    s.write("tasklane/main.py", API_MAIN)
    s.write("tests/test_tasks.py", API_TEST_TASKS, say="Now a first set of API tests.")
    s.bash(
        "uv run pytest -q",
        "....                                                                     [100%]\n4 passed in 0.52s",
    )
    s.say(
        "The API is scaffolded: `tasklane/db.py` (engine, `get_session`), `tasklane/models.py` (`Project`, "
        "`Task`), `tasklane/schemas.py` and `tasklane/main.py` with `create_task` and `list_tasks`. "
        "`uv run pytest -q` passes (4 tests)."
    )
    s.user("Never commit .env files or the local tasklane.db; add them to .gitignore.")
    s.edit(
        ".gitignore",
        "__pycache__/\n.venv/",
        "__pycache__/\n.venv/\n.env\ntasklane.db",
        say="Adding both to .gitignore.",
    )
    s.say("Done: `.env` and `tasklane.db` are ignored.")
    s.user(f"Commit this. In all my projects {COMMITS}.")
    s.bash(
        'git add -A && git commit -m "feat: scaffold tasks API with FastAPI and SQLAlchemy"',
        "[main 4c1e9a2] feat: scaffold tasks API with FastAPI and SQLAlchemy\n"
        " 7 files changed, 142 insertions(+)",
    )
    s.say("Committed as `feat: scaffold tasks API with FastAPI and SQLAlchemy`.")


def api_2(s: Session) -> None:
    s.user(
        "Add due dates to tasks and an endpoint that lists overdue tasks. "
        "Please keep the route handlers thin and put the query logic in tasklane/queries.py."
    )
    s.edit(
        "tasklane/models.py",
        "    done: Mapped[bool] = mapped_column(default=False)",
        "    done: Mapped[bool] = mapped_column(default=False)\n"
        "    due_date: Mapped[datetime | None] = mapped_column(DateTime)",
        say="First the column on `Task`.",
    )
    s.write("tasklane/queries.py", API_QUERIES)
    s.edit(
        "tasklane/main.py",
        '@app.get("/projects/{project_id}/tasks", response_model=list[TaskOut])',
        '@app.get("/tasks/overdue", response_model=list[TaskOut])\n'
        "def list_overdue(session: Session = Depends(get_session)) -> list[Task]:\n"
        "    return list(overdue_tasks(session, datetime.now(UTC)))\n\n\n"
        '@app.get("/projects/{project_id}/tasks", response_model=list[TaskOut])',
    )
    s.write(
        "tests/test_overdue.py",
        API_TEST_OVERDUE_WITH_FIXTURE,
        say="And tests for the overdue query, with a rolled-back `db_session` fixture.",
    )
    s.say(
        "Added `due_date`, `overdue_tasks` and `tasks_for_project` in `tasklane/queries.py`, the "
        "`GET /tasks/overdue` route, and tests in `tests/test_overdue.py` with their own `db_session` fixture."
    )
    s.user(
        "No, shared fixtures go in tests/conftest.py, not in the test module. "
        "The tasks tests will want the same db_session."
    )
    s.write("tests/conftest.py", API_CONFTEST, say="Moving the fixture to `tests/conftest.py`.")
    s.edit(
        "tests/test_overdue.py",
        "@pytest.fixture\ndef db_session():\n    with SessionLocal() as session:\n"
        "        yield session\n        session.rollback()\n\n\n",
        "",
    )
    s.bash("uv run pytest -q", PYTEST_OVERDUE_FAIL, error=True, say="Running the suite.")
    s.edit(
        "tasklane/models.py",
        "    due_date: Mapped[datetime | None] = mapped_column(DateTime)",
        "    due_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))",
        say=(
            "SQLite hands back naive datetimes for a plain `DateTime` column while the test compares with an "
            "aware `datetime.now(UTC)`. I'll make the column timezone-aware so both sides are UTC."
        ),
    )
    s.bash(
        "uv run pytest -q",
        ".......                                                                  [100%]\n7 passed in 0.58s",
    )
    s.bash("uv run ruff check .", "All checks passed!")
    s.say(
        "Fixed: `due_date` is now `DateTime(timezone=True)`, so `overdue_tasks` compares aware datetimes. "
        "All 7 tests pass and ruff is clean."
    )
    s.user("Good. Don't use datetime.utcnow anywhere; it is deprecated, use datetime.now(UTC).")
    s.bash("grep -rn utcnow tasklane tests || true", "")
    s.say("There is no `utcnow` in the code; everything uses `datetime.now(UTC)`.")


API_MIGRATION_DUE = '''\
"""task due dates

Revision ID: 7b91e4d2c3a8
Revises: 3f2a1c9d7e0
"""

import sqlalchemy as sa
from alembic import op

revision = "7b91e4d2c3a8"
down_revision = "3f2a1c9d7e0"


def upgrade() -> None:
    op.add_column("tasks", sa.Column("due_date", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_tasks_due_date", "tasks", ["due_date"])


def downgrade() -> None:
    op.drop_index("ix_tasks_due_date", table_name="tasks")
    op.drop_column("tasks", "due_date")
'''

ALEMBIC_FAIL = """\
INFO  [alembic.runtime.migration] Context impl SQLiteImpl.
INFO  [alembic.runtime.migration] Will assume non-transactional DDL.
ERROR [alembic.util.messaging] Can't locate revision identified by '3f2a1c9d7e0'
  FAILED: Can't locate revision identified by '3f2a1c9d7e0'"""


def api_3(s: Session) -> None:
    s.user(
        "Let's use Alembic for migrations, so nothing calls create_all at import time. "
        "The staging smoke test will need an API key: "
        "ANTHROPIC_API_KEY=sk-ant-api03-FAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKE-DEMOONLY0000, "
        "never hardcode it in the repo."
    )
    s.say(
        "I'll install Alembic with `pip install alembic`, run `alembic init migrations` and generate the "
        "initial revision from the models; the key stays in the environment only."
    )
    s.user("No, I said we use uv, not pip: run uv add alembic.")
    s.bash(
        "uv add alembic",
        "Resolved 31 packages in 412ms\nPrepared 2 packages in 187ms\nInstalled 2 packages in 9ms\n"
        " + alembic==1.14.1\n + mako==1.3.8",
    )
    s.bash(
        "uv run alembic init migrations",
        "  Creating directory '/home/dev/code/tasklane-api/migrations' ...  done\n"
        "  Generating /home/dev/code/tasklane-api/alembic.ini ...  done",
    )
    s.edit(
        "migrations/env.py",
        "target_metadata = None",
        "from tasklane import models  # noqa: F401  (registers the tables)\n"
        "from tasklane.db import DATABASE_URL, Base\n\n"
        'config.set_main_option("sqlalchemy.url", DATABASE_URL)\n'
        "target_metadata = Base.metadata",
        say="Pointing Alembic at our metadata and `TASKLANE_DATABASE_URL`.",
    )
    s.bash(
        "uv run alembic revision --autogenerate -m 'initial tables'",
        "INFO  [alembic.autogenerate.compare] Detected added table 'projects'\n"
        "INFO  [alembic.autogenerate.compare] Detected added table 'tasks'\n"
        "  Generating /home/dev/code/tasklane-api/migrations/versions/3f2a1c9d7e01_initial_tables.py ...  done",
    )
    s.write("migrations/versions/7b91e4d2c3a8_task_due_dates.py", API_MIGRATION_DUE)
    s.bash("uv run alembic upgrade head", ALEMBIC_FAIL, error=True)
    s.edit(
        "migrations/versions/7b91e4d2c3a8_task_due_dates.py",
        'down_revision = "3f2a1c9d7e0"',
        'down_revision = "3f2a1c9d7e01"',
        say="The `down_revision` lost its last character when I typed it; the initial revision is `3f2a1c9d7e01`.",
    )
    s.bash(
        "uv run alembic upgrade head",
        "INFO  [alembic.runtime.migration] Running upgrade  -> 3f2a1c9d7e01, initial tables\n"
        "INFO  [alembic.runtime.migration] Running upgrade 3f2a1c9d7e01 -> 7b91e4d2c3a8, task due dates",
    )
    s.edit(
        "tasklane/main.py",
        'app = FastAPI(title="tasklane")\nBase.metadata.create_all(engine)',
        'app = FastAPI(title="tasklane")',
        say="Now the app no longer creates tables at import time.",
    )
    s.bash(
        "uv run pytest -q",
        ".......                                                                  [100%]\n7 passed in 0.61s",
    )
    s.say(
        "Alembic manages the schema now: `uv run alembic upgrade head` applies `3f2a1c9d7e01` (initial tables) "
        "and `7b91e4d2c3a8` (due dates). The smoke-test key is read from `ANTHROPIC_API_KEY` at runtime and is "
        "not in the repository."
    )


PG_FAIL = """\
============================= test session starts ==============================
collected 9 items

tests/test_overdue.py EEE                                                [ 33%]
tests/test_tasks.py FFFF..                                               [100%]

==================================== ERRORS ====================================
________________ ERROR at setup of test_overdue_lists_past_due _________________
E   sqlalchemy.exc.ProgrammingError: (psycopg.errors.UndefinedTable) relation "projects" does not exist
E   LINE 1: INSERT INTO projects (name) VALUES (%(name)s::VARCHAR) RETURNING projects.id
=========================== short test summary info ============================
ERROR tests/test_overdue.py::test_overdue_lists_past_due - sqlalchemy.exc.ProgrammingError: (psycopg.errors.UndefinedTable) relation "projects" does not exist
FAILED tests/test_tasks.py::test_create_task - sqlalchemy.exc.ProgrammingError: (psycopg.errors.UndefinedTable) relation "projects" does not exist
==================== 4 failed, 2 passed, 3 errors in 1.12s ====================="""

API_PYPROJECT_2 = API_PYPROJECT.replace(
    '    "uvicorn[standard]>=0.32",\n', '    "uvicorn[standard]>=0.32",\n    "alembic>=1.14",\n'
)


def api_4(s: Session) -> None:
    s.user(
        "Concurrent writes keep failing with 'database is locked' on staging. "
        "Let's switch the database from SQLite to PostgreSQL. "
        "Use psycopg 3 rather than psycopg2 for the driver."
    )
    s.read("pyproject.toml", API_PYPROJECT_2, say="Checking the current dependencies.")
    s.bash(
        'uv add "psycopg[binary]>=3.2"',
        "Resolved 33 packages in 388ms\nInstalled 2 packages in 14ms\n + psycopg==3.2.3\n + psycopg-binary==3.2.3",
    )
    s.edit(
        "tasklane/db.py",
        'DATABASE_URL = os.environ.get("TASKLANE_DATABASE_URL", "sqlite:///./tasklane.db")\n\n'
        'engine = create_engine(DATABASE_URL, connect_args={"check_same_thread": False})',
        'DATABASE_URL = os.environ.get(\n    "TASKLANE_DATABASE_URL", "postgresql+psycopg://tasklane@localhost/tasklane"\n)\n\n'
        "engine = create_engine(DATABASE_URL, pool_pre_ping=True)",
        say="Switching the default URL to PostgreSQL through psycopg 3 and dropping the SQLite-only connect args.",
    )
    s.bash("createdb tasklane_test", "")
    s.bash(
        "TASKLANE_DATABASE_URL=postgresql+psycopg://tasklane@localhost/tasklane_test uv run pytest -q",
        PG_FAIL,
        error=True,
    )
    s.edit(
        "tests/conftest.py",
        '"""Fixtures shared by every test module."""\n\nimport pytest',
        '"""Fixtures shared by every test module."""\n\nimport pytest\n\nfrom tasklane.db import Base, engine\n\n\n'
        '@pytest.fixture(scope="session", autouse=True)\n'
        "def schema():\n"
        '    """The tables, created once per test run (migrations are tested separately)."""\n'
        "    Base.metadata.create_all(engine)\n"
        "    yield\n"
        "    Base.metadata.drop_all(engine)",
        say=(
            "Nothing creates the tables on an empty PostgreSQL database now that `create_all` is gone from "
            "`main.py`. A session-scoped fixture in `tests/conftest.py` will create and drop them."
        ),
    )
    s.bash(
        "TASKLANE_DATABASE_URL=postgresql+psycopg://tasklane@localhost/tasklane_test uv run pytest -q",
        ".........                                                                [100%]\n9 passed in 1.08s",
    )
    s.say(
        "tasklane-api now runs on PostgreSQL through psycopg 3: `tasklane/db.py` defaults to "
        "`postgresql+psycopg://tasklane@localhost/tasklane`, and the test suite passes against `tasklane_test`."
    )
    s.user("Make sure to run the tests against Postgres in CI too.")
    s.edit(
        ".github/workflows/ci.yml",
        "    runs-on: ubuntu-latest\n    steps:",
        "    runs-on: ubuntu-latest\n    services:\n      postgres:\n        image: postgres:16\n"
        "        env:\n          POSTGRES_USER: tasklane\n          POSTGRES_DB: tasklane_test\n"
        "          POSTGRES_HOST_AUTH_METHOD: trust\n        ports: ['5432:5432']\n    steps:",
        say="Adding a postgres:16 service to the CI job.",
    )
    s.bash("uv run ruff check .", "All checks passed!")
    s.say("CI now starts PostgreSQL 16 and runs `uv run pytest -q` against `tasklane_test`.")


# ============================================================================================ pulse-dashboard

DASH_PACKAGE = """\
{
  "name": "pulse-dashboard",
  "private": true,
  "version": "0.1.0",
  "type": "module",
  "scripts": {
    "dev": "vite",
    "build": "tsc -b && vite build",
    "test": "vitest run",
    "lint": "eslint .",
    "typecheck": "tsc --noEmit"
  },
  "dependencies": {
    "react": "^19.0.0",
    "react-dom": "^19.0.0",
    "recharts": "^2.15.0"
  },
  "devDependencies": {
    "@testing-library/react": "^16.1.0",
    "@types/react": "^19.0.2",
    "@vitejs/plugin-react": "^4.3.4",
    "eslint": "^9.17.0",
    "jsdom": "^25.0.1",
    "typescript": "~5.7.2",
    "vite": "^6.0.5",
    "vitest": "^2.1.8"
  }
}
"""

DASH_CLIENT = """\
export type Range = "1h" | "24h" | "7d";

export interface MetricPoint {
  ts: number;
  value: number;
}

export interface MetricSeries {
  name: string;
  unit: string;
  points: MetricPoint[];
}

export async function fetchMetrics(name: string, range: Range): Promise<MetricSeries> {
  const res = await fetch(`/api/metrics/${encodeURIComponent(name)}?range=${range}`);
  if (!res.ok) {
    throw new Error(`metrics ${name}: HTTP ${res.status}`);
  }
  return (await res.json()) as MetricSeries;
}
"""

DASH_CHART = """\
import { Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { MetricPoint, MetricSeries } from "../api/client";

export interface MetricChartProps {
  series: MetricSeries | undefined;
  height?: number;
}

const toRow = (p: MetricPoint) => ({ time: new Date(p.ts).toLocaleTimeString(), value: p.value });

export function MetricChart({ series, height = 240 }: MetricChartProps) {
  const rows = series.points.map(toRow);
  if (rows.length === 0) {
    return <p className="text-sm text-slate-500">No data for this range.</p>;
  }
  return (
    <ResponsiveContainer width="100%" height={height}>
      <LineChart data={rows}>
        <XAxis dataKey="time" />
        <YAxis unit={series?.unit} />
        <Tooltip />
        <Line type="monotone" dataKey="value" dot={false} />
      </LineChart>
    </ResponsiveContainer>
  );
}
"""

DASH_CHART_TEST = """\
import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { MetricChart } from "./MetricChart";

const series = { name: "cpu", unit: "%", points: [{ ts: 0, value: 12 }, { ts: 60_000, value: 18 }] };

describe("MetricChart", () => {
  it("renders a chart when there are points", () => {
    const { container } = render(<MetricChart series={series} />);
    expect(container.querySelector(".recharts-responsive-container")).not.toBeNull();
  });

  it("renders an empty state when there are no points", () => {
    render(<MetricChart series={undefined} />);
    expect(screen.getByText("No data for this range.")).toBeDefined();
  });

  it("shows the unit on the axis", () => {
    render(<MetricChart series={series} height={120} />);
  });
});
"""

VITEST_CHART_FAIL = """\
 RUN  v2.1.8 /home/dev/code/pulse-dashboard

 ❯ src/components/MetricChart.test.tsx (3 tests | 1 failed) 38ms
   × MetricChart > renders an empty state when there are no points 9ms
     → Cannot read properties of undefined (reading 'points')

⎯⎯⎯⎯⎯⎯⎯ Failed Tests 1 ⎯⎯⎯⎯⎯⎯⎯

 FAIL  src/components/MetricChart.test.tsx > MetricChart > renders an empty state when there are no points
TypeError: Cannot read properties of undefined (reading 'points')
 ❯ MetricChart src/components/MetricChart.tsx:12:23

 Test Files  1 failed (1)
      Tests  1 failed | 2 passed (3)
   Start at  14:21:07
   Duration  1.21s"""

VITEST_PASS = """\
 RUN  v2.1.8 /home/dev/code/pulse-dashboard

 ✓ src/components/MetricChart.test.tsx (3 tests) 41ms{more}

 Test Files  {files} passed ({files})
      Tests  {tests} passed ({tests})
   Duration  1.{ms}s"""


def vitest_pass(files: int, tests: int, more: str = "") -> str:
    return VITEST_PASS.format(files=files, tests=tests, more=more, ms=files * 7 + tests)


def dash_1(s: Session) -> None:
    s.user(
        "Set up the pulse dashboard: React + TypeScript with Vite, a line chart per metric. "
        "We use pnpm, never npm or yarn. "
        "Let's use Vitest for the unit tests. "
        "Let's go with Recharts for the charts."
    )
    s.read("package.json", DASH_PACKAGE, say="Let me look at the package manifest first.")
    s.write("src/api/client.ts", DASH_CLIENT, say="A typed client for the metrics endpoint.")
    s.write("src/components/MetricChart.tsx", DASH_CHART)
    s.write("src/components/MetricChart.test.tsx", DASH_CHART_TEST)
    s.bash("pnpm vitest run", VITEST_CHART_FAIL, error=True)
    s.edit(
        "src/components/MetricChart.tsx",
        "  const rows = series.points.map(toRow);",
        "  const rows = (series?.points ?? []).map(toRow);",
        say="The chart dereferences `series` before the query has loaded. Guarding it.",
    )
    s.bash("pnpm vitest run", vitest_pass(1, 3))
    s.bash("pnpm lint", "\n> pulse-dashboard@0.1.0 lint /home/dev/code/pulse-dashboard\n> eslint .\n")
    s.bash(
        "pnpm typecheck",
        "\n> pulse-dashboard@0.1.0 typecheck /home/dev/code/pulse-dashboard\n> tsc --noEmit\n",
    )
    s.say(
        "The dashboard has `fetchMetrics` in `src/api/client.ts` and a Recharts `MetricChart` that shows an "
        "empty state while data is missing. Tests, lint and typecheck pass."
    )
    s.user("Always use named exports for components, no default exports.")
    s.say("Understood: `MetricChart` is already a named export, and new components will be too.")


DASH_USE_METRICS = """\
import { useQuery } from "@tanstack/react-query";
import { fetchMetrics, type Range } from "../api/client";

export const METRICS_REFRESH_MS = 30_000;

export function useMetrics(name: string, range: Range) {
  return useQuery({
    queryKey: ["metrics", name, range],
    queryFn: () => fetchMetrics(name, range),
    refetchInterval: METRICS_REFRESH_MS,
  });
}
"""

DASH_USE_METRICS_TEST = """\
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { renderHook, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { useMetrics } from "./useMetrics";

const wrapper = ({ children }: { children: React.ReactNode }) => (
  <QueryClientProvider client={new QueryClient()}>{children}</QueryClientProvider>
);

afterEach(() => vi.restoreAllMocks());

describe("useMetrics", () => {
  it("loads a series", async () => {
    vi.spyOn(globalThis, "fetch").mockResolvedValue(
      new Response(JSON.stringify({ name: "cpu", unit: "%", points: [] })),
    );
    const { result } = renderHook(() => useMetrics("cpu", "1h"), { wrapper });
    await waitFor(() => expect(result.current.data?.name).toBe("cpu"));
  });
});
"""


def dash_2(s: Session) -> None:
    s.user(
        "Add a hook that polls the metrics endpoint every 30 seconds. "
        "Let's go with TanStack Query for data fetching."
    )
    s.bash(
        "pnpm add @tanstack/react-query",
        "Packages: +2\n++\nProgress: resolved 312, reused 301, downloaded 2, added 2, done\n\n"
        "dependencies:\n+ @tanstack/react-query 5.62.8",
    )
    s.write("src/hooks/useMetrics.ts", DASH_USE_METRICS, say="The hook wraps `useQuery` with a 30 s refetch.")
    s.write("src/hooks/useMetrics.test.tsx", DASH_USE_METRICS_TEST)
    s.edit(
        "src/App.tsx",
        'export function App() {\n  const [range, setRange] = useState<Range>("1h");',
        'export function App() {\n  const [range, setRange] = useState<Range>("1h");\n'
        '  const cpu = useMetrics("cpu", range);\n\n'
        "  useEffect(() => {\n    const onFocus = () => cpu.refetch();\n"
        '    window.addEventListener("focus", onFocus);\n'
        '    return () => window.removeEventListener("focus", onFocus);\n  }, [cpu]);',
    )
    s.say(
        "I've added `useMetrics` in `src/hooks/useMetrics.ts` and wired it into `App` with a `useEffect` "
        "that refetches when the window regains focus."
    )
    s.user(
        "No, don't add a useEffect for that; TanStack Query already refetches on window focus. Take it out."
    )
    s.edit(
        "src/App.tsx",
        '  const cpu = useMetrics("cpu", range);\n\n'
        "  useEffect(() => {\n    const onFocus = () => cpu.refetch();\n"
        '    window.addEventListener("focus", onFocus);\n'
        '    return () => window.removeEventListener("focus", onFocus);\n  }, [cpu]);',
        '  const cpu = useMetrics("cpu", range);',
        say="Removing the effect; `refetchOnWindowFocus` is on by default.",
    )
    s.bash("pnpm vitest run", vitest_pass(2, 4, "\n ✓ src/hooks/useMetrics.test.tsx (1 test) 57ms"))
    s.bash(
        "pnpm build",
        "\n> pulse-dashboard@0.1.0 build /home/dev/code/pulse-dashboard\n> tsc -b && vite build\n\n"
        "vite v6.0.7 building for production...\n✓ 702 modules transformed.\n"
        "dist/index.html                   0.46 kB │ gzip:   0.30 kB\n"
        "dist/assets/index-B3k9x1Qe.js   612.40 kB │ gzip: 183.72 kB\n✓ built in 2.91s",
    )
    s.say("Done: the effect is gone, tests pass and the production build succeeds.")
    s.user("I prefer Tailwind utility classes over CSS modules in this repo.")
    s.say("Noted: Tailwind utilities rather than CSS modules for styling here.")


DASH_PACKAGE_2 = DASH_PACKAGE.replace(
    '    "react": "^19.0.0",', '    "@tanstack/react-query": "^5.62.8",\n    "react": "^19.0.0",'
)

DASH_LINE_CHART = """\
import { AxisBottom, AxisLeft } from "@visx/axis";
import { scaleLinear, scaleTime } from "@visx/scale";
import { LinePath } from "@visx/shape";
import type { MetricPoint } from "../api/client";

export interface LineChartProps {
  points: MetricPoint[];
  width: number;
  height: number;
  unit?: string;
}

const MARGIN = { top: 8, right: 8, bottom: 24, left: 40 };

export function LineChart({ points, width, height, unit }: LineChartProps) {
  const x = scaleTime({
    domain: [new Date(points[0].ts), new Date(points[points.length - 1].ts)],
    range: [MARGIN.left, width - MARGIN.right],
  });
  const y = scaleLinear({
    domain: [0, Math.max(...points.map((p) => p.value))],
    range: [height - MARGIN.bottom, MARGIN.top],
    nice: true,
  });
  return (
    <svg width={width} height={height} role="img" aria-label={`line chart (${unit ?? ""})`}>
      <LinePath data={points} x={(p) => x(new Date(p.ts))} y={(p) => y(p.value)} stroke="currentColor" />
      <AxisBottom top={height - MARGIN.bottom} scale={x} numTicks={5} />
      <AxisLeft left={MARGIN.left} scale={y} numTicks={4} />
    </svg>
  );
}
"""

TSC_FAIL = """\

> pulse-dashboard@0.1.0 typecheck /home/dev/code/pulse-dashboard
> tsc --noEmit

src/components/MetricChart.tsx(1,10): error TS2305: Module '"@visx/shape"' has no exported member 'LineChart'.

Found 1 error in src/components/MetricChart.tsx:1
 ELIFECYCLE  Command failed with exit code 2."""


def dash_3(s: Session) -> None:
    s.user(
        "The chart bundle is huge: Recharts alone is 180 kB gzipped. "
        "Let's switch the charts from Recharts to visx; we only need line and bar charts."
    )
    s.read("package.json", DASH_PACKAGE_2)
    s.bash(
        "pnpm remove recharts",
        "Packages: -34\n------\nProgress: resolved 280, reused 270, downloaded 0, added 0, done\n\n"
        "dependencies:\n- recharts 2.15.0",
    )
    s.bash(
        "pnpm add @visx/shape @visx/scale @visx/axis",
        "Packages: +19\n+++++\nProgress: resolved 299, reused 280, downloaded 19, added 19, done\n\n"
        "dependencies:\n+ @visx/axis 3.12.0\n+ @visx/scale 3.12.0\n+ @visx/shape 3.12.0",
    )
    s.write(
        "src/components/LineChart.tsx", DASH_LINE_CHART, say="A small visx line chart to replace Recharts'."
    )
    s.edit(
        "src/components/MetricChart.tsx",
        'import { Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";',
        'import { LineChart } from "@visx/shape";',
    )
    s.bash("pnpm typecheck", TSC_FAIL, error=True)
    s.edit(
        "src/components/MetricChart.tsx",
        'import { LineChart } from "@visx/shape";',
        'import { LineChart } from "./LineChart";',
        say="`LineChart` is our own component, not a visx export; importing it from `./LineChart`.",
    )
    s.bash(
        "pnpm typecheck",
        "\n> pulse-dashboard@0.1.0 typecheck /home/dev/code/pulse-dashboard\n> tsc --noEmit\n",
    )
    s.bash("pnpm vitest run", vitest_pass(2, 4, "\n ✓ src/hooks/useMetrics.test.tsx (1 test) 52ms"))
    s.bash(
        "pnpm build",
        "\n> pulse-dashboard@0.1.0 build /home/dev/code/pulse-dashboard\n> tsc -b && vite build\n\n"
        "vite v6.0.7 building for production...\n✓ 431 modules transformed.\n"
        "dist/index.html                   0.46 kB │ gzip:  0.30 kB\n"
        "dist/assets/index-Cx81mQ2d.js   241.18 kB │ gzip: 77.04 kB\n✓ built in 1.87s",
    )
    s.say(
        "Charts now use visx (`src/components/LineChart.tsx`); Recharts is removed and the bundle went from "
        "184 kB to 77 kB gzipped. Typecheck, tests and build pass."
    )
    s.user("Nice. Don't leave console.log calls in committed code.")
    s.bash("grep -rn 'console.log' src || true", "")
    s.say("There are none in `src/`.")


DASH_CSV = """\
import type { MetricPoint } from "../api/client";

const escape = (v: string) => (/[",\\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);

export function toCsv(name: string, points: MetricPoint[]): string {
  const lines = ["metric,timestamp,value"];
  for (const p of points) {
    lines.push([escape(name), new Date(p.ts).toISOString(), String(p.value)].join(","));
  }
  return lines.join("\\n");
}

export function downloadCsv(filename: string, csv: string): void {
  const url = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  a.click();
  URL.revokeObjectURL(url);
}
"""

DASH_CSV_TEST = """\
import { describe, expect, it } from "vitest";
import { toCsv } from "./csv";

describe("toCsv", () => {
  it("writes a header and one line per point, ending with a newline", () => {
    expect(toCsv("cpu", [{ ts: 0, value: 1.5 }])).toBe(
      "metric,timestamp,value\\ncpu,1970-01-01T00:00:00.000Z,1.5\\n",
    );
  });

  it("quotes names with commas", () => {
    expect(toCsv("a,b", [])).toBe("metric,timestamp,value\\n");
  });
});
"""

VITEST_CSV_FAIL = """\
 RUN  v2.1.8 /home/dev/code/pulse-dashboard

 ❯ src/lib/csv.test.ts (2 tests | 2 failed) 12ms
   × toCsv > writes a header and one line per point, ending with a newline 7ms
     → expected 'metric,timestamp,value\\ncpu,1970-01…' to be 'metric,timestamp,value\\ncpu,1970-01…' // Object.is equality

 FAIL  src/lib/csv.test.ts > toCsv > writes a header and one line per point, ending with a newline
AssertionError: expected 'metric,timestamp,value\\ncpu,1970-01…' to be 'metric,timestamp,value\\ncpu,1970-01…' // Object.is equality

- Expected
+ Received

  metric,timestamp,value
  cpu,1970-01-01T00:00:00.000Z,1.5
-

 ❯ src/lib/csv.test.ts:6:53

 Test Files  1 failed (1)
      Tests  2 failed (2)"""


def dash_4(s: Session) -> None:
    s.user(
        "Add a CSV export of the visible metrics, client-side, behind an Export button. "
        "Files should end with a newline."
    )
    s.write("src/lib/csv.ts", DASH_CSV, say="A CSV writer and a download helper in `src/lib/csv.ts`.")
    s.write("src/lib/csv.test.ts", DASH_CSV_TEST)
    s.bash("pnpm vitest run src/lib/csv.test.ts", VITEST_CSV_FAIL, error=True)
    s.edit(
        "src/lib/csv.ts",
        '  return lines.join("\\n");',
        '  return lines.join("\\n") + "\\n";',
        say="The output lacks the trailing newline the test expects.",
    )
    s.bash(
        "pnpm vitest run src/lib/csv.test.ts",
        " RUN  v2.1.8 /home/dev/code/pulse-dashboard\n\n ✓ src/lib/csv.test.ts (2 tests) 6ms\n\n"
        " Test Files  1 passed (1)\n      Tests  2 passed (2)",
    )
    s.edit(
        "src/App.tsx",
        "      <MetricChart series={cpu.data} />",
        "      <MetricChart series={cpu.data} />\n"
        '      <button type="button" className="rounded border px-2 py-1 text-sm"\n'
        '        onClick={() => downloadCsv("cpu.csv", toCsv("cpu", cpu.data?.points ?? []))}>\n'
        "        Export CSV\n      </button>",
    )
    s.bash(
        "pnpm vitest run",
        vitest_pass(
            3, 6, "\n ✓ src/hooks/useMetrics.test.tsx (1 test) 49ms\n ✓ src/lib/csv.test.ts (2 tests) 6ms"
        ),
    )
    s.say("CSV export is in: `toCsv` and `downloadCsv` in `src/lib/csv.ts`, an Export CSV button in `App`.")
    s.user(f"Commit it. As in all my projects, {COMMITS}.")
    s.bash(
        'git add -A && git commit -m "feat: export visible metrics as CSV"',
        "[main 9d2f71b] feat: export visible metrics as CSV\n 4 files changed, 61 insertions(+), 1 deletion(-)",
    )
    s.say("Committed as `feat: export visible metrics as CSV`.")


# ============================================================================================ logsift

CLI_CARGO = """\
[package]
name = "logsift"
version = "0.1.0"
edition = "2021"
description = "Filter JSON log lines by level and time range"

[dependencies]
anyhow = "1.0"
chrono = { version = "0.4", features = ["serde"] }
clap = { version = "4.5", features = ["derive"] }
serde = { version = "1.0", features = ["derive"] }
serde_json = "1.0"
"""

CLI_MAIN = """\
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

mod filter;

use filter::{Filter, Level};

/// Filter JSON log lines by level and time range.
#[derive(Parser, Debug)]
#[command(name = "logsift", version)]
struct Cli {
    /// Log file to read (stdin when absent)
    path: Option<PathBuf>,
    /// Lowest level to keep
    #[arg(short, long, value_enum, default_value = "info")]
    level: Level,
    /// Only lines at or after this RFC 3339 time
    #[arg(long)]
    since: Option<String>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let filter = Filter::new(cli.level, cli.since.as_deref())?;
    let reader: Box<dyn BufRead> = match &cli.path {
        Some(p) => Box::new(BufReader::new(
            File::open(p).with_context(|| format!("opening {}", p.display()))?,
        )),
        None => Box::new(BufReader::new(io::stdin())),
    };
    run(reader, &filter)
}

fn run(reader: impl BufRead, filter: &Filter) -> Result<()> {
    for line in reader.lines() {
        let line = line?;
        if filter.matches(&line) {
            println!("{line}");
        }
    }
    Ok(())
}
"""

CLI_FILTER = """\
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Deserialize)]
struct Record {
    level: Level,
    #[serde(default)]
    ts: Option<DateTime<Utc>>,
}

pub struct Filter {
    level: Level,
    since: Option<DateTime<Utc>>,
}

impl Filter {
    pub fn new(level: Level, since: Option<&str>) -> Result<Self> {
        let since = since
            .map(|s| DateTime::parse_from_rfc3339(s).context("--since wants an RFC 3339 time"))
            .transpose()?
            .map(|t| t.with_timezone(&Utc));
        Ok(Self { level, since })
    }

    /// True when the line is a JSON record at or above the level and not before `since`.
    pub fn matches(&self, line: &str) -> bool {
        let Ok(record) = serde_json::from_str::<Record>(line) else {
            return false;
        };
        record.level >= self.level && self.since.map_or(true, |s| record.ts.is_some_and(|t| t >= s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(level: Level) -> Filter {
        Filter::new(level, None).unwrap()
    }

    #[test]
    fn keeps_lines_at_or_above_level() {
        assert!(filter(Level::Warn).matches(r#"{"level":"error","msg":"disk full"}"#));
    }

    #[test]
    fn drops_lines_below_level() {
        assert!(!filter(Level::Warn).matches(r#"{"level":"info","msg":"started"}"#));
    }

    #[test]
    fn drops_non_json_lines() {
        assert!(!filter(Level::Trace).matches("plain text"));
    }

    #[test]
    fn since_drops_older_lines() {
        let f = Filter::new(Level::Trace, Some("2026-02-01T00:00:00Z")).unwrap();
        assert!(!f.matches(r#"{"level":"info","ts":"2026-01-31T23:59:59Z"}"#));
    }

    #[test]
    fn bad_since_is_an_error() {
        assert!(Filter::new(Level::Info, Some("yesterday")).is_err());
    }
}
"""


def cargo_test_ok(n: int, secs: str = "0.00") -> str:
    names = [
        "filter::tests::bad_since_is_an_error",
        "filter::tests::drops_lines_below_level",
        "filter::tests::drops_non_json_lines",
        "filter::tests::keeps_lines_at_or_above_level",
        "filter::tests::since_drops_older_lines",
        "follow::tests::picks_up_appended_lines",
        "follow::tests::survives_truncation",
    ][:n]
    body = "\n".join(f"test {name} ... ok" for name in names)
    return (
        "   Compiling logsift v0.1.0 (/home/dev/code/logsift)\n"
        "    Finished `test` profile [unoptimized + debuginfo] target(s) in 3.87s\n"
        "     Running unittests src/main.rs (target/debug/deps/logsift-5c1f0e9a2b7d4e31)\n\n"
        f"running {n} tests\n{body}\n\n"
        f"test result: ok. {n} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in {secs}s"
    )


def cli_1(s: Session) -> None:
    s.user(
        "Start logsift, a CLI that filters JSON log lines by level and time range. "
        "Let's use clap for argument parsing, with the derive API. "
        "Let's go with anyhow for error handling. "
        "Never use unwrap() outside tests; return errors with context instead."
    )
    s.read("Cargo.toml", CLI_CARGO, say="`cargo new` already ran; checking the manifest.")
    s.write(
        "src/main.rs", CLI_MAIN, say="The CLI: a clap `Cli` struct and a `run` loop over the input lines."
    )
    s.write("src/filter.rs", CLI_FILTER, say="The filter with its unit tests.")
    s.bash(
        "cargo build",
        "   Compiling logsift v0.1.0 (/home/dev/code/logsift)\n"
        "    Finished `dev` profile [unoptimized + debuginfo] target(s) in 4.21s",
    )
    s.bash("cargo test", cargo_test_ok(5))
    s.bash(
        "cargo clippy -- -D warnings",
        "    Checking logsift v0.1.0 (/home/dev/code/logsift)\n"
        "    Finished `dev` profile [unoptimized + debuginfo] target(s) in 0.92s",
    )
    s.say(
        "logsift builds: `src/main.rs` parses `--level` and `--since` with clap, `src/filter.rs` has `Filter` "
        "and `Level`. `cargo test` (5 tests) and `cargo clippy -- -D warnings` pass."
    )
    s.user("Always run cargo fmt and cargo clippy before you call something done.")
    s.bash("cargo fmt --check", "")
    s.say("`cargo fmt --check` is clean too.")


CLI_FOLLOW = """\
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::filter::Filter;

const POLL: Duration = Duration::from_millis(250);

/// Print the matching lines appended to `path`, like `tail -f`.
pub fn follow(path: &Path, filter: &Filter) -> Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::End(0))?;
    let mut buf = String::new();
    loop {
        let n = reader.read_line(&mut buf)?;
        if n == 0 {
            thread::sleep(POLL);
            continue;
        }
        let line = buf.trim_end();
        buf.clear();
        if filter.matches(line) {
            println!("{line}");
        }
    }
}
"""

CARGO_BORROW_FAIL = """\
   Compiling logsift v0.1.0 (/home/dev/code/logsift)
error[E0502]: cannot borrow `buf` as mutable because it is also borrowed as immutable
  --> src/follow.rs:25:9
   |
24 |         let line = buf.trim_end();
   |                    --- immutable borrow occurs here
25 |         buf.clear();
   |         ^^^^^^^^^^^ mutable borrow occurs here
26 |         if filter.matches(line) {
   |                           ---- immutable borrow later used here

For more information about this error, try `rustc --explain E0502`.
error: could not compile `logsift` (bin "logsift" test) due to 1 previous error"""


def cli_2(s: Session) -> None:
    s.user("Add a --follow flag that keeps reading the file as it grows, like tail -f.")
    s.write("src/follow.rs", CLI_FOLLOW, say="A polling follower in `src/follow.rs`.")
    s.edit(
        "src/main.rs",
        "    #[arg(long)]\n    since: Option<String>,\n}",
        "    #[arg(long)]\n    since: Option<String>,\n    /// Keep reading as the file grows\n"
        '    #[arg(short, long, requires = "path")]\n    follow: bool,\n}',
    )
    s.bash("cargo test", CARGO_BORROW_FAIL, error=True)
    s.edit(
        "src/follow.rs",
        "        let line = buf.trim_end();\n        buf.clear();\n        if filter.matches(line) {",
        "        let line = buf.trim_end().to_owned();\n        buf.clear();\n        if filter.matches(&line) {",
        say="`line` borrows `buf` while `buf.clear()` needs it mutably; copying the line out first.",
    )
    s.bash("cargo test", cargo_test_ok(5))
    s.say(
        "`--follow` works by polling every 250 ms. It wakes up four times a second even when nothing changes; "
        "the notify crate would use inotify on Linux and FSEvents on macOS instead. I'd go with notify."
    )
    s.user("Yes, let's go with that for file watching.")
    s.edit(
        "Cargo.toml",
        'clap = { version = "4.5", features = ["derive"] }',
        'clap = { version = "4.5", features = ["derive"] }\nnotify = "7.0"',
    )
    s.edit(
        "src/follow.rs",
        "    loop {\n        let n = reader.read_line(&mut buf)?;\n        if n == 0 {\n"
        "            thread::sleep(POLL);\n            continue;\n        }",
        "    let (tx, rx) = std::sync::mpsc::channel();\n"
        "    let mut watcher = notify::recommended_watcher(tx)?;\n"
        "    watcher.watch(path, notify::RecursiveMode::NonRecursive)?;\n"
        "    loop {\n        let n = reader.read_line(&mut buf)?;\n        if n == 0 {\n"
        "            rx.recv()??;\n            continue;\n        }",
        say="Blocking on notify events instead of sleeping.",
    )
    s.bash("cargo test", cargo_test_ok(5))
    s.say("`--follow` now waits for notify events; tests pass.")
    s.user("That didn't work on my Mac: it prints nothing after the first appended line.")
    s.edit(
        "src/follow.rs",
        "            rx.recv()??;\n            continue;",
        "            // FSEvents coalesces writes: one event can stand for many lines, so drain to EOF\n"
        "            // before waiting again, and wake up every POLL in case an event was dropped.\n"
        "            let _ = rx.recv_timeout(POLL);\n            continue;",
        say=(
            "On macOS FSEvents can coalesce several appends into one event, and the loop waited for a new event "
            "before reading the rest. I'll keep reading to EOF and also wake up every 250 ms."
        ),
    )
    s.bash("cargo test", cargo_test_ok(7, "0.31"))
    s.bash(
        "cargo clippy -- -D warnings",
        "    Checking logsift v0.1.0 (/home/dev/code/logsift)\n"
        "    Finished `dev` profile [unoptimized + debuginfo] target(s) in 1.04s",
    )
    s.say("Fixed: the follower drains to EOF after each event and falls back to a 250 ms timeout.")


CLI_ERROR = """\
use thiserror::Error;

/// Errors of the filtering library; the binary wraps them with anyhow context.
#[derive(Debug, Error)]
pub enum FilterError {
    #[error("--since wants an RFC 3339 time, got {0:?}")]
    BadSince(String),
    #[error("unknown output format {0:?} (expected json or text)")]
    BadFormat(String),
}
"""

CLIPPY_FAIL = """\
    Checking logsift v0.1.0 (/home/dev/code/logsift)
error: redundant clone
  --> src/filter.rs:44:31
   |
44 |         let wanted = self.level.clone();
   |                               ^^^^^^^^ help: remove this
   |
   = help: for further information visit https://rust-lang.github.io/rust-clippy/master/index.html#redundant_clone
   = note: `-D clippy::redundant-clone` implied by `-D warnings`

error: could not compile `logsift` (bin "logsift") due to 1 previous error"""


def cli_3(s: Session) -> None:
    s.user(
        "Now that filter.rs is a library module, let's switch error handling from anyhow to thiserror in "
        "src/filter.rs; keep anyhow in main.rs. "
        "Also add an output format. I prefer one --format json|text flag over separate --json and --text flags."
    )
    s.edit(
        "Cargo.toml",
        'serde_json = "1.0"',
        'serde_json = "1.0"\nthiserror = "2.0"',
        say="Adding thiserror.",
    )
    s.write("src/error.rs", CLI_ERROR)
    s.edit(
        "src/filter.rs",
        "    pub fn new(level: Level, since: Option<&str>) -> Result<Self> {\n"
        "        let since = since\n"
        '            .map(|s| DateTime::parse_from_rfc3339(s).context("--since wants an RFC 3339 time"))',
        "    pub fn new(level: Level, since: Option<&str>) -> Result<Self, FilterError> {\n"
        "        let since = since\n"
        "            .map(|s| DateTime::parse_from_rfc3339(s).map_err(|_| FilterError::BadSince(s.into())))",
    )
    s.edit(
        "src/filter.rs",
        "        record.level >= self.level && self.since.map_or(true, |s| record.ts.is_some_and(|t| t >= s))",
        "        let wanted = self.level.clone();\n"
        "        record.level >= wanted && self.since.map_or(true, |s| record.ts.is_some_and(|t| t >= s))",
    )
    s.edit(
        "src/main.rs",
        '    #[arg(short, long, requires = "path")]\n    follow: bool,\n}',
        '    #[arg(short, long, requires = "path")]\n    follow: bool,\n'
        '    /// Output format\n    #[arg(long, value_enum, default_value = "text")]\n    format: Format,\n}\n\n'
        "#[derive(Clone, Copy, Debug, clap::ValueEnum)]\nenum Format {\n    Json,\n    Text,\n}",
        say="One `--format` flag with a `Format` value enum.",
    )
    s.bash("cargo clippy -- -D warnings", CLIPPY_FAIL, error=True)
    s.edit(
        "src/filter.rs",
        "        let wanted = self.level.clone();\n        record.level >= wanted",
        "        record.level >= self.level",
        say="`Level` is `Copy`; dropping the clone.",
    )
    s.bash(
        "cargo clippy -- -D warnings",
        "    Checking logsift v0.1.0 (/home/dev/code/logsift)\n"
        "    Finished `dev` profile [unoptimized + debuginfo] target(s) in 0.88s",
    )
    s.bash("cargo test", cargo_test_ok(7, "0.29"))
    s.bash("cargo fmt --check", "")
    s.say(
        "`src/filter.rs` returns `FilterError` (thiserror, in `src/error.rs`); `main.rs` keeps anyhow. "
        "`--format json|text` selects the output. Clippy, fmt and the 7 tests pass."
    )


CLI_CHANGELOG = """\
# Changelog

## 0.2.0 - 2026-02-28

- `--follow` keeps reading a growing file (notify; drains to EOF on macOS).
- `--format json|text` selects the output format.
- Library errors are typed (`FilterError`, thiserror); the binary adds context with anyhow.

## 0.1.0 - 2026-02-05

- Filter JSON log lines by `--level` and `--since`.
"""


def cli_4(s: Session) -> None:
    s.user(
        "Prepare the v0.2.0 release: bump the version in Cargo.toml and add a CHANGELOG.md entry. "
        f"Reminder: in all my projects {COMMITS}."
    )
    s.edit("Cargo.toml", 'version = "0.1.0"', 'version = "0.2.0"', say="Bumping the version.")
    s.write("CHANGELOG.md", CLI_CHANGELOG)
    s.bash(
        "cargo build --release",
        "   Compiling logsift v0.2.0 (/home/dev/code/logsift)\n"
        "    Finished `release` profile [optimized] target(s) in 21.40s",
    )
    s.bash("cargo test", cargo_test_ok(7, "0.30"))
    s.bash(
        'git add -A && git commit -m "chore: release v0.2.0"',
        "[main 1a7c03e] chore: release v0.2.0\n 3 files changed, 15 insertions(+), 2 deletions(-)",
    )
    s.say("Released locally: version 0.2.0, changelog written, committed as `chore: release v0.2.0`.")
    s.user("Tag it as v0.2.0 too.")
    s.bash("git tag -a v0.2.0 -m 'logsift 0.2.0'", "")
    s.say("Tagged `v0.2.0`.")


# ============================================================================================ the sessions

SESSIONS = [
    Spec(
        API,
        "2026-02-02T09:12:00Z",
        "main",
        "Scaffold tasklane API (FastAPI, SQLAlchemy, SQLite)",
        api_1,
        "2.1.31",
    ),
    Spec(
        DASH,
        "2026-02-03T14:05:00Z",
        "main",
        "Pulse dashboard setup with Recharts and Vitest",
        dash_1,
        "2.1.31",
    ),
    Spec(CLI, "2026-02-05T19:40:00Z", "main", "logsift: clap CLI filtering JSON logs", cli_1, "2.1.34"),
    Spec(
        API, "2026-02-09T10:02:00Z", "feat/due-dates", "Due dates and overdue tasks endpoint", api_2, "2.1.37"
    ),
    Spec(DASH, "2026-02-11T15:20:00Z", "feat/polling", "Poll metrics with TanStack Query", dash_2, "2.1.37"),
    Spec(CLI, "2026-02-13T20:15:00Z", "feat/follow", "--follow with notify, macOS fix", cli_2, "2.1.40"),
    Spec(API, "2026-02-17T09:30:00Z", "feat/alembic", "Alembic migrations", api_3, "2.1.42"),
    Spec(DASH, "2026-02-19T13:45:00Z", "perf/visx", "Replace Recharts with visx", dash_3, "2.1.42"),
    Spec(CLI, "2026-02-21T11:10:00Z", "feat/format", "thiserror and --format", cli_3, "2.1.45"),
    Spec(API, "2026-02-24T09:05:00Z", "feat/postgres", "Move tasklane to PostgreSQL", api_4, "2.1.47"),
    Spec(DASH, "2026-02-26T16:00:00Z", "feat/csv-export", "CSV export", dash_4, "2.1.47"),
    Spec(CLI, "2026-02-28T10:30:00Z", "main", "Release logsift v0.2.0", cli_4, "2.1.50"),
]
