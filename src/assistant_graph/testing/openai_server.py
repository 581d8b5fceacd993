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

__all__ = [
    "ChatRequest",
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

import base64
import contextlib
import dataclasses
import json
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias

_HOST = "127.0.0.1"
_API_PREFIX = "/v1"
_CHAT_PATH = "/v1/chat/completions"
_IMAGES_PATH = "/v1/images/generations"
_MODELS_PATH = "/v1/models"
_THREAD_NAME = "scripted-openai-server"
_CREATED = 1_700_000_000
"""Fixed `created` timestamp, so that responses are deterministic."""
_RETRY_AFTER_MS = "10"
_ARGUMENT_PIECE_CHARS = 8
"""Streamed tool-call arguments are cut into pieces of this many characters."""
_JSON_CONTENT_TYPE = "application/json"
_SSE_CONTENT_TYPE = "text/event-stream"
_SSE_DONE = b"data: [DONE]\n\n"
_MALFORMED_JSON = b'{"id": "chatcmpl-malformed", "choices": [{"message": '
_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SYSTEM_ROLES = ("system", "developer")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
_SCRIPTED_FAILURE = "Scripted failure: status {status} (request #{number} for route key {key!r})."
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
_NO_MARKER = "No marker of {markers} occurs in the system prompt {prompt!r}."
_BAD_BODY = "Request body is not a JSON object: {error}"
_UNKNOWN_ENDPOINT = "Unknown endpoint {method} {path}; the scripted server answers {known}."
_HANDLER_CRASHED = "The scripted server failed while answering a request: {error!r}"


@dataclass(frozen=True)
class Usage:
    """Token counts reported for one reply."""

    prompt_tokens: int
    """Tokens the request's messages count for."""
    completion_tokens: int
    """Tokens the reply counts for."""

    @property
    def total_tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens

    def to_json(self) -> dict[str, int]:
        """The `usage` object of an OpenAI response."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class ScriptedToolCall:
    """One tool call in a scripted assistant message."""

    name: str
    """Name of the tool to call."""
    args: dict[str, Any] = field(default_factory=dict)
    """Arguments; sent as a JSON string in `function.arguments`."""
    id: str | None = None
    """Tool-call id; `None` gives `call_<n>`, numbered in the order the server answers."""

    @property
    def arguments(self) -> str:
        """The arguments as the JSON string OpenAI sends."""
        return json.dumps(self.args)


@dataclass(frozen=True)
class ScriptedReply:
    """What the server answers to one chat request, faults included."""

    content: str = ""
    """Text of the assistant message (sent as `null` when empty and there are tool calls)."""
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    """Tool calls of the assistant message, in order; several make parallel calls."""
    usage: Usage | None = None
    """Reported usage; `None` counts whitespace-separated words of request and reply."""
    status: int = 200
    """HTTP status; anything but 200 answers an OpenAI-style error body instead."""
    delay: float = 0.0
    """Seconds to wait before answering."""
    malformed: bool = False
    """Answer a body that is not valid JSON, or a stream with an event that is not."""
    drop_after_chunks: int | None = None
    """When streaming, close the connection after this many chunks, without `[DONE]`."""

    def __post_init__(self) -> None:
        """Reject values no HTTP answer can carry."""
        if not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status (100-599), got {self.status}")
        if self.delay < 0:
            raise ValueError(f"delay must be zero or more seconds, got {self.delay}")
        if self.drop_after_chunks is not None and self.drop_after_chunks < 0:
            raise ValueError(
                f"drop_after_chunks must be zero or more, got {self.drop_after_chunks}"
            )

    @property
    def finish_reason(self) -> str:
        """`"tool_calls"` when the reply calls tools, else `"stop"`."""
        return "tool_calls" if self.tool_calls else "stop"


def reply(
    content: str = "",
    *,
    tool_calls: Sequence[ScriptedToolCall] | None = None,
    usage: Usage | None = None,
    status: int = 200,
    delay: float = 0.0,
    malformed: bool = False,
    drop_after_chunks: int | None = None,
) -> ScriptedReply:
    """Build a `ScriptedReply`; see its fields for the meaning of each argument.

    Example:
        `reply("Let me look.", tool_calls=[tool_call("search", query="otters")])`
    """
    return ScriptedReply(
        content=content,
        tool_calls=list(tool_calls or ()),
        usage=usage,
        status=status,
        delay=delay,
        malformed=malformed,
        drop_after_chunks=drop_after_chunks,
    )


def tool_call(name: str, /, **args: Any) -> ScriptedToolCall:
    """Build a `ScriptedToolCall` of tool `name` with keyword arguments `args`."""
    return ScriptedToolCall(name=name, args=args)


def _text_of(content: Any) -> str:
    """The text of a message's `content`: a string, `None`, or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = (part.get("text", "") for part in content if isinstance(part, dict))
        return "\n".join(part for part in parts if isinstance(part, str) and part)
    return ""


@dataclass(frozen=True)
class ChatRequest:
    """One chat-completion request the server received, as parsed from its JSON body."""

    model: str
    """The `model` field."""
    messages: list[dict[str, Any]]
    """The messages, exactly as sent."""
    tools: list[str]
    """Names of the tools offered, in order."""
    raw_tools: list[dict[str, Any]]
    """The `tools` field, exactly as sent."""
    stream: bool
    """Whether the client asked for server-sent events."""
    raw: dict[str, Any]
    """The whole JSON body."""
    headers: dict[str, str]
    """HTTP headers, names lower-cased."""
    route_key: str = ""
    """Key of the script that answered, as computed by the router ("" if routing failed)."""

    @classmethod
    def from_body(cls, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
        """Parse a request body; fields the client left out get empty values."""
        raw_tools = list(body.get("tools") or [])
        return cls(
            model=str(body.get("model", "")),
            messages=list(body.get("messages") or []),
            tools=[tool.get("function", {}).get("name", "") for tool in raw_tools],
            raw_tools=raw_tools,
            stream=bool(body.get("stream")),
            raw=body,
            headers={name.lower(): value for name, value in headers.items()},
        )

    @property
    def system_prompt(self) -> str:
        """Text of the first system or developer message, or ""."""
        for message in self.messages:
            if message.get("role") in _SYSTEM_ROLES:
                return _text_of(message.get("content"))
        return ""

    @property
    def last_user_message(self) -> str:
        """Text of the last user message, or ""."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""

    @property
    def tool_results(self) -> list[str]:
        """Text of every tool message, in order."""
        return [_text_of(m.get("content")) for m in self.messages if m.get("role") == "tool"]

    @property
    def include_usage(self) -> bool:
        """Whether a streaming client asked for a final usage chunk."""
        options = self.raw.get("stream_options") or {}
        return bool(options.get("include_usage"))


@dataclass(frozen=True)
class ImageRequest:
    """One image-generation request the server received."""

    model: str
    """The `model` field ("" if absent)."""
    prompt: str
    """The `prompt` field."""
    raw: dict[str, Any]
    """The whole JSON body."""
    headers: dict[str, str]
    """HTTP headers, names lower-cased."""


Responder: TypeAlias = Callable[[ChatRequest], ScriptedReply | str]
"""A script written as a function: computes the reply to each request."""
Script: TypeAlias = Sequence[ScriptedReply | str | Responder] | Responder
"""Replies consumed in order (a `str` is a text reply, a function answers one request),
or one `Responder` for every request."""
Router: TypeAlias = Callable[[ChatRequest], str]
"""Computes the route key, which picks the script, of a request."""


def _route_by_model(request: ChatRequest) -> str:
    """The default router: the request's `model` field."""
    return request.model


def route_by_system_prompt(mapping: Mapping[str, str]) -> Router:
    """Route each request by the marker that occurs in its system prompt.

    Useful when every assistant uses the same model name. A request whose system prompt
    contains none of the markers fails with HTTP 500 and an entry in `server.errors`.

    Args:
        mapping: Route key for each marker; the first marker (in order) found wins.

    Example:
        `route_by_system_prompt({"You are the planner": "planner", "You write": "writer"})`
    """
    markers = dict(mapping)

    def route(request: ChatRequest) -> str:
        prompt = request.system_prompt
        for marker, key in markers.items():
            if marker in prompt:
                return key
        raise LookupError(_NO_MARKER.format(markers=list(markers), prompt=prompt))

    return route


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


@dataclass(frozen=True)
class _Failure:
    """An error answer decided by the server rather than by a script."""

    status: int
    message: str
    should_retry: bool = True


def _as_reply(item: ScriptedReply | str) -> ScriptedReply:
    return ScriptedReply(content=item) if isinstance(item, str) else item


def _word_count(text: str) -> int:
    return len(text.split())


def _default_usage(request: ChatRequest, answer: ScriptedReply) -> Usage:
    """Deterministic usage: whitespace-separated words of request and reply."""
    prompt = sum(_word_count(_text_of(m.get("content"))) for m in request.messages)
    calls = (f"{call.name} {call.arguments}" for call in answer.tool_calls)
    completion = _word_count(answer.content) + sum(_word_count(text) for text in calls)
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _error_body(status: int, message: str) -> dict[str, Any]:
    """An OpenAI-style error body."""
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    error_type = _ERROR_TYPES.get(status, default_type)
    return {"error": {"message": message, "type": error_type, "param": None, "code": error_type}}


def _tool_call_json(call: ScriptedToolCall) -> dict[str, Any]:
    function = {"name": call.name, "arguments": call.arguments}
    return {"id": call.id, "type": "function", "function": function}


def _completion_body(answer: ScriptedReply, request: ChatRequest, cid: str) -> dict[str, Any]:
    """A `chat.completion` object for a non-streaming request."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.content or (None if answer.tool_calls else ""),
        "refusal": None,
    }
    if answer.tool_calls:
        message["tool_calls"] = [_tool_call_json(call) for call in answer.tool_calls]
    choice = {"index": 0, "message": message, "finish_reason": answer.finish_reason}
    return {
        "id": cid,
        "object": "chat.completion",
        "created": _CREATED,
        "model": request.model,
        "choices": [{**choice, "logprobs": None}],
        "usage": answer.usage.to_json() if answer.usage else None,
        "system_fingerprint": None,
    }


def _tool_call_deltas(index: int, call: ScriptedToolCall) -> Iterator[dict[str, Any]]:
    """Deltas of one tool call, cut the way OpenAI streams them."""
    head = {"name": call.name, "arguments": ""}
    yield {"tool_calls": [{"index": index, "id": call.id, "type": "function", "function": head}]}
    arguments = call.arguments
    for start in range(0, len(arguments), _ARGUMENT_PIECE_CHARS):
        piece = arguments[start : start + _ARGUMENT_PIECE_CHARS]
        yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}


def _stream_chunks(answer: ScriptedReply, request: ChatRequest, cid: str) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects of a streamed reply, in order."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": word} for word in _WORD_BOUNDARY.split(answer.content) if word]
    for index, call in enumerate(answer.tool_calls):
        deltas += _tool_call_deltas(index, call)
    finish: list[str | None] = [None] * len(deltas) + [answer.finish_reason]
    deltas.append({})
    base = {"id": cid, "object": "chat.completion.chunk", "created": _CREATED}
    chunks = [
        {**base, "model": request.model, "choices": [_chunk_choice(delta, reason)]}
        for delta, reason in zip(deltas, finish, strict=True)
    ]
    if request.include_usage and answer.usage:
        chunks.append(
            {**base, "model": request.model, "choices": [], "usage": answer.usage.to_json()}
        )
    return chunks


def _chunk_choice(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def tiny_png_bytes(
    width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (46, 125, 50)
) -> bytes:
    """A valid PNG of one solid colour (8x8 green by default), built with the stdlib only."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    row = b"\x00" + bytes(rgb) * width  # filter type 0, then the pixels
    pixels = zlib.compress(row * height)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def _image_body(request: ImageRequest) -> dict[str, Any]:
    """An images response with `n` copies of `tiny_png_bytes()`, base64-encoded."""
    image = base64.b64encode(tiny_png_bytes()).decode("ascii")
    count = int(request.raw.get("n") or 1)
    data = [{"b64_json": image, "revised_prompt": request.prompt} for _ in range(count)]
    return {"created": _CREATED, "data": data}


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
        self._errors: list[str] = []
        self._tool_calls_named = 0
        self._httpd: _HTTPServer | None = None
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
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # keeps stop() fast
            name=f"{_THREAD_NAME}-{self.port}",
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
        return f"http://{_HOST}:{self.port}{_API_PREFIX}"

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

    def _fail(self, message: str) -> _Failure:
        """Record a problem the test should hear about and answer it with HTTP 500."""
        with self._lock:
            self._errors.append(message)
        return _Failure(status=500, message=message, should_retry=False)

    def _decide_chat(
        self, body: dict[str, Any], headers: Mapping[str, str]
    ) -> tuple[ChatRequest, int, ScriptedReply | _Failure]:
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
                message = _SCRIPTED_FAILURE.format(status=status, number=number, key=key)
                return request, number, _Failure(status=status, message=message)
            item = self._next_item(key)
        if callable(item):
            item = self._call_responder(item, request)
        if isinstance(item, _Failure):
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

    def _next_item(self, key: str) -> ScriptedReply | str | Responder | _Failure:
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
    ) -> ScriptedReply | str | _Failure:
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

    def _record_image(self, request: ImageRequest) -> None:
        with self._lock:
            self._image_requests.append(request)

    def _models_body(self) -> dict[str, Any]:
        with self._lock:
            keys = sorted(self._scripts)
        models = [
            {"id": k, "object": "model", "created": _CREATED, "owned_by": "scripted"} for k in keys
        ]
        return {"object": "list", "data": models}


class _HTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that tracks its connections, so `stop()` can end and join them.

    `ThreadingHTTPServer` joins only non-daemon request threads on close, and a request
    thread waits on its keep-alive connection for as long as the client keeps it pooled
    (langchain-openai caches its HTTP clients), so the server shuts those connections down
    itself and joins their threads.
    """

    daemon_threads = True  # a server a test forgot to stop must not block interpreter exit

    def __init__(self, owner: ScriptedOpenAIServer) -> None:
        self.owner = owner
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__((_HOST, 0), _Handler)

    def server_bind(self) -> None:
        """Bind without `HTTPServer`'s reverse DNS lookup of the host name."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = _HOST, int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve one connection in its own daemon thread, and remember both."""
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"{_THREAD_NAME}-{self.server_port}-connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open connection and join the threads that served them."""
        with self._connections_lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record unexpected failures; a client that hung up is no failure of the script."""
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            self.owner._fail(_HANDLER_CRASHED.format(error=error))


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into calls on the owning `ScriptedOpenAIServer`, and back."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the OpenAI SDK expects
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: tests read `server.requests`, not stderr."""

    def do_GET(self) -> None:
        """Answer `GET /v1/models`."""
        if self._path() == _MODELS_PATH:
            self._send_json(200, self.server.owner._models_body())
        else:
            self._send_unknown_endpoint()

    def do_POST(self) -> None:
        """Answer chat completions and image generations."""
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self._path()
        if path not in (_CHAT_PATH, _IMAGES_PATH):
            self._send_unknown_endpoint()
            return
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError(f"expected an object, got {type(body).__name__}")
        except ValueError as error:
            failure = self.server.owner._fail(_BAD_BODY.format(error=error))
            self._send_error(dataclasses.replace(failure, status=400))
            return
        if path == _CHAT_PATH:
            self._answer_chat(body)
        else:
            self._answer_image(body)

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def _answer_chat(self, body: dict[str, Any]) -> None:
        owner = self.server.owner
        request, number, answer = owner._decide_chat(body, dict(self.headers.items()))
        if isinstance(answer, _Failure):
            self._send_error(answer)
            return
        time.sleep(answer.delay)
        completion_id = f"chatcmpl-scripted-{number}"
        if answer.status != 200:
            key = request.route_key
            message = _SCRIPTED_FAILURE.format(status=answer.status, number=number, key=key)
            self._send_error(_Failure(status=answer.status, message=message))
        elif request.stream:
            self._send_stream(answer, request, completion_id)
        elif answer.malformed:
            self._send_bytes(200, _MALFORMED_JSON, _JSON_CONTENT_TYPE)
        else:
            self._send_json(200, _completion_body(answer, request, completion_id))

    def _answer_image(self, body: dict[str, Any]) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = ImageRequest(
            model=str(body.get("model", "")),
            prompt=str(body.get("prompt", "")),
            raw=body,
            headers=headers,
        )
        self.server.owner._record_image(request)
        self._send_json(200, _image_body(request))

    def _send_unknown_endpoint(self) -> None:
        known = f"POST {_CHAT_PATH}, POST {_IMAGES_PATH}, GET {_MODELS_PATH}"
        message = _UNKNOWN_ENDPOINT.format(method=self.command, path=self.path, known=known)
        failure = self.server.owner._fail(message)
        self._send_error(dataclasses.replace(failure, status=404))

    def _send_error(self, failure: _Failure) -> None:
        headers = [("retry-after-ms", _RETRY_AFTER_MS)]
        if not failure.should_retry:
            headers.append(("x-should-retry", "false"))
        self._send_json(failure.status, _error_body(failure.status, failure.message), headers)

    def _send_json(
        self, status: int, payload: dict[str, Any], headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), _JSON_CONTENT_TYPE, headers)

    def _send_bytes(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_stream(self, answer: ScriptedReply, request: ChatRequest, cid: str) -> None:
        """Send the reply as server-sent events, in HTTP chunked transfer encoding."""
        events = [
            b"data: " + json.dumps(c).encode() + b"\n\n"
            for c in _stream_chunks(answer, request, cid)
        ]
        if answer.malformed:
            events.insert(1, b"data: " + _MALFORMED_JSON + b"\n\n")
        self.send_response(200)
        self.send_header("Content-Type", _SSE_CONTENT_TYPE)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        limit = answer.drop_after_chunks
        for event in events if limit is None else events[:limit]:
            self._write_chunk(event)
        if limit is not None:
            # Closing without the terminating empty chunk makes the client see a broken body.
            self.close_connection = True
            return
        self._write_chunk(_SSE_DONE)
        self.wfile.write(b"0\r\n\r\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
