"""The memory browser's pages: a Starlette app over one `App`, rendered on the server with Jinja2.

    app = create_app(App.open(cfg), token)      # every request passes lmm_mcp.ui.guard first

Pages: `/` projects and their sessions by day; `/session/<key>` a transcript's turns; `/memories` the memories
with their sources and what superseded them; `/memory?key=` one memory, with the form that corrects or
forgets it (`lmm_mcp.edits`); `/search?q=` search as `lmm-mcp search` does it (`lmm_mcp.query.find`), with
each hit's BM25 and vector rank; `/versions` the adapter versions, their evaluation and loss curve; `/job` the
retrain job's progress.

No JavaScript: tool calls fold with <details>, the job page refreshes itself with a meta tag. Handlers are
async and do their SQLite work inline, so one connection is used by one thread (the event loop's) only.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from lmm_mcp import edits, queries
from lmm_mcp.app import App
from lmm_mcp.query import find
from lmm_mcp.retrieval import RetrievalError
from lmm_mcp.ui import reads
from lmm_mcp.ui.guard import CSRF_FIELD, Guard, same_token

TEMPLATES = Path(__file__).parent / "templates"
SEARCH_K = 20
MEMORY_LIMIT = 500  # memories listed on one page


def create_app(app: App, token: str) -> Starlette:
    """The browser over `app`'s store; `token` guards every route (lmm_mcp.ui.guard)."""
    templates = Jinja2Templates(directory=TEMPLATES)  # autoescape is on for .html
    templates.env.filters["q"] = lambda value: quote(str(value or ""), safe="")
    pages = Pages(app, templates, token)

    @contextlib.asynccontextmanager
    async def lifespan(_web: Starlette) -> AsyncIterator[None]:
        yield
        app.close()

    routes = [
        Route("/", pages.index),
        Route("/session/{key:path}", pages.session),
        Route("/memories", pages.memories),
        Route("/memory", pages.memory, methods=["GET", "POST"]),
        Route("/search", pages.search),
        Route("/versions", pages.versions),
        Route("/versions/{name}/loss.png", pages.loss_curve),
        Route("/job", pages.job),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard, token=token)], lifespan=lifespan)


class Pages:
    """One handler per page; each reads what it shows and renders its template."""

    def __init__(self, app: App, templates: Jinja2Templates, token: str):
        self.app = app
        self.templates = templates
        self.token = token

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("title", name.removesuffix(".html"))
        return self.templates.TemplateResponse(
            request, name, {"csrf": self.token, "csrf_field": CSRF_FIELD, **context}, status_code=status
        )

    async def index(self, request: Request) -> Response:
        conn = self.app.conn
        return self.render(
            request,
            "index.html",
            title="projects",
            projects=reads.projects(conn),
            counts=queries.memory_counts(conn),
            last_ingest=queries.last_ingest(conn),
        )

    async def session(self, request: Request) -> Response:
        conn, key = self.app.conn, request.path_params["key"]
        head = reads.session(conn, key)
        if head is None:
            raise HTTPException(404, f"no session {key!r} in the store")
        page = _int(request.query_params.get("page"), 0)
        turn = request.query_params.get("turn")
        at = reads.turn_index(conn, key, turn) if turn else None
        if at is not None:
            page = at // reads.PAGE_TURNS
        rows = reads.turns(conn, key, page * reads.PAGE_TURNS)
        pages = max(1, -(-head["turns"] // reads.PAGE_TURNS))
        return self.render(
            request, "session.html", title=head["label"], s=head, turns=rows, page=page, pages=pages
        )

    async def memories(self, request: Request) -> Response:
        conn, params = self.app.conn, request.query_params
        project, category = params.get("project") or None, params.get("category") or None
        everything = params.get("all") == "1"
        found = queries.list_memories(
            conn, projects=[project] if project else None, category=category, include_superseded=everything
        )
        return self.render(
            request,
            "memories.html",
            title="memories",
            memories=found[:MEMORY_LIMIT],
            total=len(found),
            project=project or "",
            category=category or "",
            everything=everything,
            projects=[p for p, _name in queries.projects(conn)],
            categories=reads.categories(conn),
            known=reads.session_keys(conn, sorted({s["session_id"] for m in found for s in m["sources"]})),
            edits=edits.edits(conn),
        )

    async def memory(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._edit(request)
        conn, key = self.app.conn, request.query_params.get("key", "")
        found = reads.memory(conn, key)
        edit = edits.edit_of(conn, key)
        if found is None and edit is None:
            raise HTTPException(404, f"no memory {key!r}")
        known = reads.session_keys(conn, sorted({s["session_id"] for s in (found or {}).get("sources", [])}))
        done = request.query_params.get("done")
        return self.render(
            request, "memory.html", title=key, key=key, m=found, edit=edit, known=known, done=done
        )

    async def _edit(self, request: Request) -> Response:
        form = await request.form()
        if not same_token(str(form.get(CSRF_FIELD) or ""), self.token):
            raise HTTPException(403, "refused: the form did not come from this browser's page")
        key, action = str(form.get("key") or ""), str(form.get("action") or "")
        cfg = self.app.cfg
        try:
            if action == "correct":
                edits.correct_memory(self.app.conn, key, str(form.get("text") or ""), cfg=cfg)
            elif action == "forget":
                edits.forget_memory(self.app.conn, key, cfg=cfg)
            elif action == "undo":
                edits.undo_edit(self.app.conn, key)
            else:
                raise edits.EditError(f"unknown action {action!r}: correct, forget or undo")
            edits.embed_edited(self.app)
        except edits.EditError as e:
            found = reads.memory(self.app.conn, key)
            edit = edits.edit_of(self.app.conn, key)
            return self.render(
                request, "memory.html", 400, title=key, key=key, m=found, edit=edit, known=set(), error=str(e)
            )
        return RedirectResponse(f"/memory?key={quote(key, safe='')}&done={action}", status_code=303)

    async def search(self, request: Request) -> Response:
        text, project = request.query_params.get("q", "").strip(), request.query_params.get("project") or None
        hits, error = [], None
        if text:
            try:
                hits = find(self.app.retriever(), self.app.conn, text, k=SEARCH_K, project=project)
            except RetrievalError as e:
                error = str(e)
        return self.render(
            request,
            "search.html",
            title=f"search: {text}" if text else "search",
            q=text,
            project=project or "",
            hits=hits,
            error=error,
            projects=[p for p, _name in queries.projects(self.app.conn)],
            fusion=self.app.retriever().fusion,
        )

    async def versions(self, request: Request) -> Response:
        from lmm_mcp.ui.models import version_rows

        return self.render(
            request, "versions.html", title="adapter versions", versions=version_rows(self.app.cfg)
        )

    async def loss_curve(self, request: Request) -> Response:
        from lmm_mcp.ui.models import loss_plot

        found = loss_plot(self.app.cfg, request.path_params["name"])
        if found is None:
            raise HTTPException(404, "this version has no loss curve")
        return FileResponse(found, media_type="image/png")

    async def job(self, request: Request) -> Response:
        from lmm_mcp.jobs import JobError

        try:
            job, error = self.app.jobs().get(), None
        except JobError as e:
            job, error = None, str(e)
        return self.render(request, "job.html", title="retrain job", job=job, error=error)


def _int(value: str | None, default: int) -> int:
    try:
        return max(0, int(value)) if value is not None else default
    except ValueError:
        return default
