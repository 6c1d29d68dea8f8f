"""Who may talk to the memory browser: the person holding the token, through 127.0.0.1, from its own pages.

The server binds 127.0.0.1 only, but any web page the user opens can still send requests there. So every
request must carry the random token: in the URL the first time (`?token=`; the answer sets it as an HttpOnly,
SameSite=Strict cookie and redirects to the same URL without it, so it leaves the address bar and history)
and in the cookie after. A Host header other than 127.0.0.1 or localhost is refused, so a DNS-rebound name
cannot reach it either, and every POST must echo the token in a form field (CSRF). Answers are never cached,
never framed, send no referrer, and may load nothing from elsewhere.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "lmm_ui_token"  # + "_<port>": cookies ignore ports, and two browsers of two homes may be open
CSRF_FIELD = "csrf"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self' 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def new_token() -> str:
    return secrets.token_urlsafe(32)


def host_allowed(host: str) -> bool:
    """Is a Host header 127.0.0.1 or localhost, with or without a port?"""
    name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    return name in LOCAL_HOSTS and (not port or port.isdigit())


def same_token(given: str | None, token: str) -> bool:
    return bool(given) and secrets.compare_digest(given.encode(), token.encode())


class Guard:
    """ASGI middleware: the checks above on every HTTP request, and the security headers on every answer."""

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self._refusal(Request(scope))
        if refused is not None:
            await _with_headers(refused)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend((k.lower().encode(), v.encode()) for k, v in HEADERS.items())
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        """The answer that stops this request, or None to let it through."""
        if not host_allowed(request.headers.get("host", "")):
            return PlainTextResponse(
                "refused: open the browser at 127.0.0.1 (the URL lmm-mcp ui printed)", 403
            )
        given = request.query_params.get("token")
        if given is not None:
            if not same_token(given, self.token):
                return PlainTextResponse("refused: wrong token; use the URL lmm-mcp ui printed", 403)
            rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            path = "/" + request.url.path.lstrip("/")  # never '//host': a redirect must stay on this server
            target = path + (f"?{rest}" if rest else "")
            answer = RedirectResponse(target, status_code=303)
            answer.set_cookie(cookie_name(request), self.token, httponly=True, samesite="strict", path="/")
            return answer
        if not same_token(request.cookies.get(cookie_name(request)), self.token):
            return PlainTextResponse(
                "refused: this page needs the token; use the URL lmm-mcp ui printed", 403
            )
        return None


def cookie_name(request: Request) -> str:
    """The token's cookie for this server: one per port, so a second `lmm-mcp ui` (another home) open in the
    same browser does not overwrite the first one's."""
    server = request.scope.get("server") or ("", 0)
    return f"{COOKIE}_{server[1]}"


def _with_headers(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response
