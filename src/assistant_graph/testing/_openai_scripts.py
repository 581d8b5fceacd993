"""What a test writes and reads with the scripted OpenAI server.

A test writes scripts: :class:`ScriptedReply` values (built with :func:`reply` and
:func:`tool_call`), plain strings, or :data:`Responder` functions that compute a reply,
and optionally a :data:`Router` such as :func:`route_by_system_prompt` that picks the
script of each request. It reads back what the server received: :class:`ChatRequest` and
:class:`ImageRequest`. The server that plays the scripts is in
:mod:`assistant_graph.testing._openai_server`.

Example:
    ```python
    def echo(request: ChatRequest) -> str:
        return f"You said: {request.last_user_message}"

    scripts = {
        "planner": [reply(tool_calls=[tool_call("search", query="otters")]), "Done."],
        "echo": echo,
    }
    ```
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from assistant_graph._schema import AssistantSchema
from assistant_graph._typed_results import OUTPUT_TOOL_NAME
from assistant_graph.testing._openai_wire import text_of, tiny_png_bytes

# `tiny_png_bytes` is built with the other wire bytes; tests compare images with it, so it
# is public here.
__all__ = [
    "ChatRequest",
    "ImageRequest",
    "Responder",
    "Router",
    "Script",
    "ScriptedReply",
    "ScriptedToolCall",
    "Usage",
    "reply",
    "route_by_assistant",
    "route_by_system_prompt",
    "structured_reply",
    "tiny_png_bytes",
    "tool_call",
]

_SYSTEM_ROLES = ("system", "developer")
_NO_MARKER = "No marker of {markers} occurs in the system prompt {prompt!r}."


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


def structured_reply(data: Mapping[str, Any]) -> Responder:
    """A typed result `data`, in the form the request asks for (a script item).

    A request with a `json_schema` `response_format` (provider strategy) gets `data` as
    JSON text; a request offering the `final_result` tool (tool strategy) gets a call of
    it with `data` as arguments. Invalid data is sent as it is, to script mistakes.

    Example:
        `server.script("researcher", structured_reply({"planet": "Mars", "km": 6779}))`
    """
    values = dict(data)

    def respond(request: ChatRequest) -> ScriptedReply:
        if request.json_schema is None and OUTPUT_TOOL_NAME in request.tools:
            return ScriptedReply(tool_calls=[ScriptedToolCall(OUTPUT_TOOL_NAME, values)])
        return ScriptedReply(content=json.dumps(values))

    return respond


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
    response_format: dict[str, Any] | None = None
    """The `response_format` field (structured output), exactly as sent; None if absent."""
    tool_choice: Any = None
    """The `tool_choice` field (e.g. `"required"`), exactly as sent; None if absent."""

    @classmethod
    def from_body(cls, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
        """Parse a request body; fields the client left out get empty values."""
        raw_tools = list(body.get("tools") or [])
        response_format = body.get("response_format")
        return cls(
            model=str(body.get("model", "")),
            messages=list(body.get("messages") or []),
            tools=[tool.get("function", {}).get("name", "") for tool in raw_tools],
            raw_tools=raw_tools,
            stream=bool(body.get("stream")),
            raw=body,
            headers={name.lower(): value for name, value in headers.items()},
            response_format=response_format if isinstance(response_format, dict) else None,
            tool_choice=body.get("tool_choice"),
        )

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The JSON Schema a `response_format` of type `json_schema` asks the answer to
        match (native structured output), else None."""
        if not self.response_format or self.response_format.get("type") != "json_schema":
            return None
        schema = (self.response_format.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else None

    @property
    def system_prompt(self) -> str:
        """Text of the first system or developer message, or ""."""
        for message in self.messages:
            if message.get("role") in _SYSTEM_ROLES:
                return text_of(message.get("content"))
        return ""

    @property
    def last_user_message(self) -> str:
        """Text of the last user message, or ""."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return text_of(message.get("content"))
        return ""

    @property
    def tool_results(self) -> list[str]:
        """Text of every tool message, in order."""
        return [text_of(m.get("content")) for m in self.messages if m.get("role") == "tool"]

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


def route_by_assistant(assistants: Mapping[str, AssistantSchema]) -> Router:
    """Route each request to the assistant whose instructions are its system prompt.

    Pass a catalog: a request from the researcher's model gets the ``"researcher"`` script,
    whatever model name every assistant uses.
    """
    by_length = sorted(assistants.items(), key=lambda item: -len(item[1].instructions))
    return route_by_system_prompt({schema.instructions.strip(): name for name, schema in by_length})
