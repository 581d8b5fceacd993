"""A small MCP server for the tests, written with the official ``mcp`` SDK (FastMCP).

Run over stdio (the default) or streamable HTTP on 127.0.0.1::

    python tests/mcp_toolbox_server.py
    python tests/mcp_toolbox_server.py --http PORT [--token-env NAME]

With ``--token-env NAME`` every HTTP request must carry ``Authorization: Bearer <value of
NAME>``; others get 401. The tools cover what the tests need: results (text, structured,
image), a tool error, a crash of the whole server, a hang, and the server's process id.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import os
import sys
from typing import Any

from mcp.server.fastmcp import FastMCP, Image

TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)

server = FastMCP("toolbox", log_level="WARNING")
_calls = {"count": 0}


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def fail(message: str) -> str:
    """Always fails with the message."""
    raise ValueError(message)


@server.tool(structured_output=False)
def picture() -> list[Any]:
    """A one-pixel PNG with a caption."""
    return ["a one-pixel picture", Image(data=TINY_PNG, format="png")]


@server.tool()
def crash() -> str:
    """End the server process at once, in the middle of the call."""
    os._exit(3)


@server.tool()
async def sleep(seconds: float) -> str:
    """Wait that many seconds, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds:g} s"


@server.tool()
def process_id() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def count() -> int:
    """How many times this tool was called in this server process."""
    _calls["count"] += 1
    return _calls["count"]


class _RequireToken:
    """ASGI middleware: 401 unless ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await self.app(scope, receive, send)


def _serve_http(port: int, token_env: str | None) -> None:
    import uvicorn

    app: Any = server.streamable_http_app()
    if token_env:
        app = _RequireToken(app, os.environ[token_env])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    """Serve over stdio, or over HTTP with ``--http PORT``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=None)
    parser.add_argument("--token-env", default=None)
    options = parser.parse_args()
    if options.http is None:
        server.run("stdio")
    else:
        _serve_http(options.http, options.token_env)
    sys.exit(0)


if __name__ == "__main__":
    main()
