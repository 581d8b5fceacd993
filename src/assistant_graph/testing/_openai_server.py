"""A scripted OpenAI-compatible HTTP server for tests.

`ScriptedOpenAIServer` listens on 127.0.0.1 (a free port) in a background thread and answers
`POST /v1/chat/completions` (JSON and server-sent events, tool calls included),
`POST /v1/images/generations` and `GET /v1/models` from scripts written by the test. Any
OpenAI client, such as langchain-openai's `ChatOpenAI(base_url=server.url, ...)`, talks to it
unchanged, so a test exercises the real client: streaming, tool-call deltas, retries, errors.

Error responses carry `retry-after-ms`, so a client's retries take milliseconds instead of
the SDK's back-off of seconds; an answer that a script cannot give (no script, script used
up, router failure) also says `x-should-retry: false`, because retrying a test bug only
repeats it. Each such problem is recorded in `server.errors`.

The values a test writes and reads (`reply`, `tool_call`, `ChatRequest`, ...) are defined
in `assistant_graph.testing._openai_scripts` and importable from here too.

Example:
    ```python
    from langchain_openai import ChatOpenAI

    scripts = {"planner": [reply(tool_calls=[tool_call("search", query="otters")]), "Done."]}
    with ScriptedOpenAIServer(scripts) as server:
        model = ChatOpenAI(model="planner", base_url=server.url, api_key="test", max_retries=0)
        assert model.invoke("Find otters").tool_calls[0]["name"] == "search"
        assert model.invoke("Thanks").content == "Done."
        assert server.errors == []
    ```
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from assistant_graph.testing._openai_http import (
    HOST,
    SCRIPTED_FAILURE,
    THREAD_NAME,
    Failure,
    ScriptedHTTPServer,
)
from assistant_graph.testing._openai_scripts import (
    ChatRequest,
    ImageRequest,
    Responder,
    Router,
    Script,
    ScriptedReply,
    ScriptedToolCall,
    Usage,
    reply,
    route_by_system_prompt,
    tiny_png_bytes,
    tool_call,
)
from assistant_graph.testing._openai_wire import CREATED, text_of

# Everything but the server is re-exported from `openai_scripts`, where it now lives.
__all__ = [
    "ChatRequest",
    "ImageMaker",
    "ImageRequest",
    "Responder",
    "Router",
    "Script",
    "ScriptedOpenAIServer",
    "ScriptedReply",
    "ScriptedToolCall",
    "Usage",
    "reply",
    "route_by_system_prompt",
    "tiny_png_bytes",
    "tool_call",
]

_API_PREFIX = "/v1"
_NO_SCRIPT = (
    "No script for route key {key!r} (request #{count} for that key). "
    "Known keys: {known}. Add one with server.script({key!r}, ...)."
)
_SCRIPT_EXHAUSTED = (
    "Script for route key {key!r} ran out: it had {length} replies and this is "
    "request #{count} for that key."
)
_RESPONDER_FAILED = "Script for route key {key!r} {problem}."
_ROUTER_FAILED = "Router failed on request #{number}: {error!r}"


def _route_by_model(request: ChatRequest) -> str:
    """The default router: the request's `model` field."""
    return request.model


ImageMaker: TypeAlias = Callable[[str], bytes]
"""Draws the PNG for an image request's prompt (see `ScriptedOpenAIServer.image_maker`)."""


@dataclass
class _ScriptState:
    """A script and how far it has been consumed."""

    replies: deque[ScriptedReply | str | Responder]
    length: int
    responder: Responder | None = None


@dataclass
class _Fault:
    """Pending `fail_next` failures."""

    status: int
    remaining: int
    key: str | None


def _as_reply(item: ScriptedReply | str) -> ScriptedReply:
    return ScriptedReply(content=item) if isinstance(item, str) else item


def _word_count(text: str) -> int:
    return len(text.split())


def _default_usage(request: ChatRequest, answer: ScriptedReply) -> Usage:
    """Deterministic usage: whitespace-separated words of request and reply."""
    prompt = sum(_word_count(text_of(m.get("content"))) for m in request.messages)
    calls = (f"{call.name} {call.arguments}" for call in answer.tool_calls)
    completion = _word_count(answer.content) + sum(_word_count(text) for text in calls)
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


class ScriptedOpenAIServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1 that answers from scripts.

    A router computes each chat request's route key (by default its `model` field); the
    key picks a script; the script gives the reply. Every request is recorded, in order,
    and every answer a script could not give is recorded in `errors`.

    Args:
        scripts: A script for each route key: replies consumed in order (a `str` is a
            text reply) or a `Responder` called with each request.
        router: Computes the route key of a request; see `route_by_system_prompt`.

    Example:
        ```python
        with ScriptedOpenAIServer({"gpt-test": ["Hi!"]}) as server:
            model = ChatOpenAI(model="gpt-test", base_url=server.url, api_key="test")
            assert model.invoke("Hello").content == "Hi!"
        ```
    """

    def __init__(
        self, scripts: Mapping[str, Script] | None = None, *, router: Router | None = None
    ) -> None:
        self._router = router or _route_by_model
        self._lock = threading.RLock()
        self._scripts: dict[str, _ScriptState] = {}
        self._per_key: Counter[str] = Counter()
        self._faults: list[_Fault] = []
        self._requests: list[ChatRequest] = []
        self._image_requests: list[ImageRequest] = []
        self._image_maker: ImageMaker | None = None
        self._errors: list[str] = []
        self._tool_calls_named = 0
        self._httpd: ScriptedHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for key, script in (scripts or {}).items():
            self._set_script(key, script)

    @property
    def router(self) -> Router:
        """Computes the script key of a request (default: the request's ``model``)."""
        return self._router

    @router.setter
    def router(self, router: Router) -> None:
        with self._lock:
            self._router = router

    def __enter__(self) -> ScriptedOpenAIServer:
        """Start the server and return it."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

    def start(self) -> ScriptedOpenAIServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread; returns `self`."""
        if self._httpd is not None:
            raise RuntimeError("The scripted OpenAI server is already running.")
        self._httpd = ScriptedHTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # keeps stop() fast
            name=f"{THREAD_NAME}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and join every thread; safe to repeat."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._httpd = self._thread = None
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        thread.join()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._httpd is None:
            raise RuntimeError("The scripted OpenAI server is not running; call start().")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL for OpenAI clients, such as `http://127.0.0.1:PORT/v1`."""
        return f"http://{HOST}:{self.port}{_API_PREFIX}"

    @property
    def requests(self) -> list[ChatRequest]:
        """Every chat request received, in order of arrival (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def image_requests(self) -> list[ImageRequest]:
        """Every image-generation request received, in order of arrival (a copy)."""
        with self._lock:
            return list(self._image_requests)

    @property
    def errors(self) -> list[str]:
        """What went wrong on the server side (no script, script used up, ...), in order."""
        with self._lock:
            return list(self._errors)

    def requests_for(self, key: str) -> list[ChatRequest]:
        """The chat requests routed to `key`, in order."""
        return [request for request in self.requests if request.route_key == key]

    def script(self, key: str, *replies: ScriptedReply | str | Responder) -> None:
        """Add or replace the script of route key `key`.

        Args:
            key: The route key.
            *replies: Replies consumed in order (a `str` is a text reply), or a single
                `Responder` that computes each reply.
        """
        only = replies[0] if len(replies) == 1 else None
        self._set_script(key, only if callable(only) else replies)

    def fail_next(self, status: int = 503, times: int = 1, key: str | None = None) -> None:
        """Answer the next `times` chat requests with HTTP `status`, before any script.

        A failed request does not consume a reply of the script.

        Args:
            status: HTTP status of the error answers.
            times: How many requests fail.
            key: Only requests routed to this key fail; `None` means any request.
        """
        if times < 1 or not 400 <= status <= 599:
            raise ValueError(
                f"fail_next needs times >= 1 and a 4xx/5xx status, got {times}, {status}"
            )
        with self._lock:
            self._faults.append(_Fault(status=status, remaining=times, key=key))

    def _set_script(self, key: str, script: Script | Sequence[object]) -> None:
        if callable(script):
            state = _ScriptState(replies=deque(), length=0, responder=script)
        else:
            given = [script] if isinstance(script, str | ScriptedReply) else list(script)
            items = [
                item for item in given if isinstance(item, str | ScriptedReply) or callable(item)
            ]
            if len(items) != len(given):
                raise TypeError(
                    f"Script items must be ScriptedReply, str or a function, got {given!r}"
                )
            state = _ScriptState(replies=deque(items), length=len(items))
        with self._lock:
            self._scripts[key] = state

    def _fail(self, message: str) -> Failure:
        """Record a problem the test should hear about and answer it with HTTP 500."""
        with self._lock:
            self._errors.append(message)
        return Failure(status=500, message=message, should_retry=False)

    def _decide_chat(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> tuple[ChatRequest, int, ScriptedReply | Failure]:
        """Record a chat request and decide its answer; returns it with its 1-based number."""
        request = ChatRequest.from_body(body, headers)
        try:
            key, routing_error = self._router(request), None
        except Exception as error:
            key, routing_error = "", error
        request = dataclasses.replace(request, route_key=key)
        with self._lock:
            self._requests.append(request)
            number = len(self._requests)
            if routing_error is not None:
                failure = _ROUTER_FAILED.format(number=number, error=routing_error)
                return request, number, self._fail(failure)
            self._per_key[key] += 1
            if status := self._take_fault(key):
                message = SCRIPTED_FAILURE.format(status=status, number=number, key=key)
                return request, number, Failure(status=status, message=message)
            item = self._next_item(key)
        if callable(item):
            item = self._call_responder(item, request)
        if isinstance(item, Failure):
            return request, number, item
        return request, number, self._complete(_as_reply(item), request)

    def _take_fault(self, key: str) -> int | None:
        """Use up one pending `fail_next` failure that applies to `key`; its status."""
        for fault in self._faults:
            if fault.key is None or fault.key == key:
                fault.remaining -= 1
                if not fault.remaining:
                    self._faults.remove(fault)
                return fault.status
        return None

    def _next_item(self, key: str) -> ScriptedReply | str | Responder | Failure:
        """The next reply of `key`'s script, its responder, or why there is none."""
        state = self._scripts.get(key)
        count = self._per_key[key]
        if state is None:
            known = sorted(self._scripts)
            return self._fail(_NO_SCRIPT.format(key=key, count=count, known=known))
        if state.responder is not None:
            return state.responder
        if not state.replies:
            return self._fail(_SCRIPT_EXHAUSTED.format(key=key, length=state.length, count=count))
        return state.replies.popleft()

    def _call_responder(
        self, responder: Responder, request: ChatRequest
    ) -> ScriptedReply | str | Failure:
        key = request.route_key
        try:
            result = responder(request)
        except Exception as error:
            return self._fail(_RESPONDER_FAILED.format(key=key, problem=f"raised {error!r}"))
        if not isinstance(result, ScriptedReply | str):
            problem = f"returned {result!r}, not a ScriptedReply or str"
            return self._fail(_RESPONDER_FAILED.format(key=key, problem=problem))
        return result

    def _complete(self, answer: ScriptedReply, request: ChatRequest) -> ScriptedReply:
        """Fill in tool-call ids and usage that the script left out."""
        if answer.status != 200:
            return answer
        calls = []
        with self._lock:
            for call in answer.tool_calls:
                if call.id is None:
                    self._tool_calls_named += 1
                    call = dataclasses.replace(call, id=f"call_{self._tool_calls_named}")
                calls.append(call)
        usage = answer.usage or _default_usage(request, answer)
        return dataclasses.replace(answer, tool_calls=calls, usage=usage)

    @property
    def image_maker(self) -> ImageMaker | None:
        """Draws the PNG answered to an image request, from its prompt (default: None,
        a small solid square, :func:`tiny_png_bytes`)."""
        return self._image_maker

    @image_maker.setter
    def image_maker(self, maker: ImageMaker | None) -> None:
        with self._lock:
            self._image_maker = maker

    def _record_image(self, request: ImageRequest) -> bytes:
        """Record an image request; returns the PNG to answer it with."""
        with self._lock:
            self._image_requests.append(request)
            maker = self._image_maker
        return maker(request.prompt) if maker is not None else tiny_png_bytes()

    def _models_body(self) -> dict[str, Any]:
        with self._lock:
            keys = sorted(self._scripts)
        models = [
            {"id": k, "object": "model", "created": CREATED, "owned_by": "scripted"} for k in keys
        ]
        return {"object": "list", "data": models}
