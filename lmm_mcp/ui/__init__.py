"""The memory browser: `lmm-mcp ui` serves a local web page over the store.

    lmm-mcp ui [--port 0] [--no-open]     # prints http://127.0.0.1:PORT/?token=...; Ctrl-C stops it

It shows projects and their sessions, a session's turns, the memories with their sources and supersession
history, hybrid search with each hit's BM25 and vector rank, the adapter versions with their evaluation and
loss curve, and the retrain job; a wrong memory can be corrected or forgotten there (`lmm_mcp.edits`). The
server listens on 127.0.0.1 only and every request needs the token printed with the URL (`lmm_mcp.ui.guard`).
Starlette, uvicorn and Jinja2 come with the MCP SDK; importing this package loads none of them.
"""

from __future__ import annotations

import socket
import sys
import threading
import webbrowser
from typing import Any

HOST = "127.0.0.1"


def register(sub: Any, common: Any) -> None:
    p = sub.add_parser(
        "ui",
        parents=[common],
        help="browse and correct your memories in a local web page",
        description="Serve the memory browser on 127.0.0.1; the URL it prints carries the access token.",
    )
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: any free one)")
    p.add_argument("--no-open", action="store_true", help="print the URL but do not open a browser")
    p.set_defaults(run=cmd_ui)


def cmd_ui(cfg: Any, args: Any) -> int:
    import uvicorn

    from lmm_mcp.app import App
    from lmm_mcp.ui.app import create_app
    from lmm_mcp.ui.guard import new_token

    token = new_token()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(
        socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
    )  # a port just left in TIME_WAIT, not in use
    try:
        listener.bind((HOST, args.port))  # bound here, so port 0 is known before the URL is printed
    except OSError as e:
        listener.close()
        raise ValueError(
            f"cannot listen on {HOST}:{args.port} ({e.strerror}): pass another --port, or 0"
        ) from e
    url = f"http://{HOST}:{listener.getsockname()[1]}/?token={token}"
    web = create_app(App.open(cfg), token)
    server = uvicorn.Server(uvicorn.Config(web, log_level="warning", access_log=False, lifespan="on"))
    print(url, flush=True)
    print("memory browser running; Ctrl-C stops it", file=sys.stderr, flush=True)
    if not args.no_open:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    server.run(sockets=[listener])
    return 0
