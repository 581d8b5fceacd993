"""The page's HTTP interface: a Starlette app of a few JSON routes, one event stream per
thread (server-sent events), and the page's files.

====================================  ===================================================
``GET  /``                            the page (its CSRF token in a ``<meta>``)
``GET  /static/...``                  its script and style (package data)
``GET  /api/config``                  the assistants, demo suggestions
``GET  /api/threads``                 the thread list, newest first
``POST /api/threads``                 ``{"assistant", "message"}``: start a thread
``GET  /api/threads/{id}``            one thread: status, pending requests, turns
``GET  /api/threads/{id}/stream``     its state, then its events as they come (SSE)
``POST /api/threads/{id}/messages``   ``{"message"}``: the person's next message
``POST /api/threads/{id}/answers``    ``{"answers": {"<request id>": answer}}``
``POST /api/threads/{id}/retry``      continue the failed run
``GET  /api/threads/{id}/conversations/{uid}``  a sub-conversation's transcript
====================================  ===================================================

Every body sent passes the secret filter of :mod:`._security`; errors are
``{"error": "..."}`` with a 4xx status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from assistant_graph.ui._runs import KEEPALIVE, Runs, UiError
from assistant_graph.ui._security import Guard, redact_secrets

__all__ = ["build_app"]

CSRF_PLACEHOLDER = "{{csrf_token}}"
BAD_JSON = "the body must be a JSON object"
FIELD_MISSING = "{field!r} must be a {kind}"

Handler = Callable[[Request], Awaitable[Response]]


def build_app(runs: Runs, guard_token: str | None, options: Mapping[str, Any]) -> Guard:
    """The app serving ``runs``, behind the :class:`~._security.Guard`; ``options`` are
    what ``/api/config`` tells the page besides the assistants (demo, suggestions)."""
    routes = _Routes(runs, dict(options))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await runs.close()

    app = Starlette(
        routes=[
            Route("/", routes.page),
            Route("/api/config", routes.config),
            Route("/api/threads", routes.threads, methods=["GET", "POST"]),
            Route("/api/threads/{thread_id}", routes.thread),
            Route("/api/threads/{thread_id}/stream", routes.stream),
            Route("/api/threads/{thread_id}/messages", routes.message, methods=["POST"]),
            Route("/api/threads/{thread_id}/answers", routes.answers, methods=["POST"]),
            Route("/api/threads/{thread_id}/retry", routes.retry, methods=["POST"]),
            Route("/api/threads/{thread_id}/conversations/{uid}", routes.conversation),
            Mount("/static", StaticFiles(packages=[("assistant_graph.ui", "static")])),
        ],
        lifespan=lifespan,
        exception_handlers={UiError: _refused},
    )
    guard = Guard(app, guard_token)
    routes.csrf_token = guard.csrf_token
    return guard


class _Routes:
    """The route handlers (thin: :class:`Runs` does the work)."""

    def __init__(self, runs: Runs, options: dict[str, Any]) -> None:
        self.runs = runs
        self.options = options
        self.csrf_token = ""
        self._page = files("assistant_graph.ui").joinpath("static/index.html").read_text("utf-8")

    async def page(self, request: Request) -> Response:
        return HTMLResponse(self._page.replace(CSRF_PLACEHOLDER, self.csrf_token))

    async def config(self, request: Request) -> Response:
        catalog = self.runs.settings.catalog
        assistants = [
            {
                "name": name,
                "description": " ".join(catalog[name].description.split()),
                "callable": catalog[name].callable,
            }
            for name in catalog
        ]
        return _json({"assistants": assistants, **self.options})

    async def threads(self, request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            thread_id = await self.runs.start_thread(
                _text(body, "assistant"), _text(body, "message")
            )
            return _json({"thread_id": thread_id}, status=202)
        return _json({"threads": await self.runs.threads()})

    async def thread(self, request: Request) -> Response:
        return _json(await self.runs.thread(request.path_params["thread_id"]))

    async def message(self, request: Request) -> Response:
        body = await _body(request)
        await self.runs.send(request.path_params["thread_id"], _text(body, "message"))
        return _json({"started": True}, status=202)

    async def answers(self, request: Request) -> Response:
        body = await _body(request)
        answers = body.get("answers")
        if not isinstance(answers, dict):
            raise UiError(400, FIELD_MISSING.format(field="answers", kind="JSON object"))
        await self.runs.answer(request.path_params["thread_id"], answers)
        return _json({"started": True}, status=202)

    async def retry(self, request: Request) -> Response:
        await _body(request)
        await self.runs.retry(request.path_params["thread_id"])
        return _json({"started": True}, status=202)

    async def conversation(self, request: Request) -> Response:
        params = request.path_params
        return _json(await self.runs.conversation(params["thread_id"], params["uid"]))

    async def stream(self, request: Request) -> Response:
        thread_id = request.path_params["thread_id"]
        await self.runs.thread(thread_id)  # an unknown thread is a 404, not an empty stream
        return StreamingResponse(
            _server_sent(self.runs.watch(thread_id)),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )


async def _refused(request: Request, error: Exception) -> Response:
    """A refusal (:class:`UiError`) as ``{"error": ...}`` with its status."""
    assert isinstance(error, UiError)
    return _json({"error": error.message}, status=error.status)


async def _server_sent(messages: AsyncIterator[tuple[str, Any]]) -> AsyncIterator[str]:
    """Messages as server-sent events; ``keepalive`` as a comment."""
    async for kind, data in messages:
        if kind == KEEPALIVE:
            yield ": keep-alive\n\n"
        else:
            yield f"event: {kind}\ndata: {_dumps(data)}\n\n"


def _dumps(data: Any) -> str:
    """JSON with every secret masked (one line, as SSE data needs)."""
    return redact_secrets(json.dumps(data, ensure_ascii=False, default=str))


def _json(data: Any, status: int = 200) -> Response:
    return Response(_dumps(data), status_code=status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise UiError(400, BAD_JSON)
    return body


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise UiError(400, FIELD_MISSING.format(field=name, kind="string"))
    return value
