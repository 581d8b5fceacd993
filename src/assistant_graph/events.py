"""The nested event stream: what every assistant in the tree is doing, as typed events.

``stream_events`` / ``astream_events`` run a graph with LangGraph streaming
(``subgraphs=True``, modes ``updates``, ``messages`` and ``tasks``) and translate each
chunk into events. LangGraph namespaces are task ids (``tools:<uuid>``); the translator
turns them into assistant paths (``["proxy", "researcher"]``) by watching which tool call
each ``tools`` task runs, so every event names the assistants from the root to the one
that produced it and the tool call that opened that sub-assistant.

The CLI's live tree and its ``--json`` output are renderings of this one stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypedDict

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Interrupt

from assistant_graph.errors import ModelCallError
from assistant_graph.model_calls import RETRY_EVENT
from assistant_graph.subgraph_tool import (
    assistant_name_from_tool_name,
    is_out_of_steps_notice,
    is_sub_assistant_tool_name,
    message_text,
    read_artifact,
)
from assistant_graph.usage import UsageSummary, UsageTable

__all__ = [
    "STREAM_MODES",
    "AgentMessageEvent",
    "AssistantEvent",
    "ErrorEvent",
    "FinalEvent",
    "InputRequestEvent",
    "RetryEvent",
    "SubAssistantEndEvent",
    "SubAssistantStartEvent",
    "TokenEvent",
    "ToolCallEvent",
    "ToolResultEvent",
    "astream_events",
    "stream_events",
]

STREAM_MODES = ("updates", "messages", "tasks", "custom")
"""The LangGraph stream modes the event stream is built from."""

_TOOLS_NODE = "tools"
_AGENT_NODE = "agent"


@dataclass(frozen=True, kw_only=True)
class AssistantEvent:
    """Base of every event: who produced it."""

    type: ClassVar[str] = "event"
    path: tuple[str, ...]
    """The assistant names from the root to the one that produced the event."""
    parent_tool_call_id: str | None = None
    """The id of the tool call that opened this sub-assistant run (None for the root)."""

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data, ``type`` first."""
        data: dict[str, Any] = {"type": self.type}
        for item in dataclasses.fields(self):
            if item.metadata.get("json", True):
                value = getattr(self, item.name)
                data[item.name] = list(value) if isinstance(value, tuple) else value
        return data


@dataclass(frozen=True, kw_only=True)
class AgentMessageEvent(AssistantEvent):
    """An assistant wrote a message (its text; tool calls come as ``tool_call`` events)."""

    type: ClassVar[str] = "agent_message"
    content: str
    """The text of the message."""
    message_id: str | None = None
    """The message id."""


@dataclass(frozen=True, kw_only=True)
class TokenEvent(AssistantEvent):
    """A piece of text an assistant's model is streaming, as it is produced."""

    type: ClassVar[str] = "token"
    text: str
    """The new text."""
    message_id: str | None = None
    """The id of the message being streamed."""


@dataclass(frozen=True, kw_only=True)
class ToolCallEvent(AssistantEvent):
    """An assistant's model called a tool (a sub-assistant tool included)."""

    type: ClassVar[str] = "tool_call"
    name: str
    """The tool name."""
    args: dict[str, Any]
    """The arguments, as the model gave them."""
    id: str
    """The tool call id."""


@dataclass(frozen=True, kw_only=True)
class ToolResultEvent(AssistantEvent):
    """A tool call's result came back to the assistant that made it."""

    type: ClassVar[str] = "tool_result"
    name: str
    """The tool name."""
    id: str
    """The tool call id."""
    content: str
    """The result text the model sees."""
    status: str = "success"
    """``success`` or ``error``."""
    subgraph_uid: str | None = None
    """For sub-assistant calls: the conversation uid."""
    returning_incomplete: bool | None = None
    """For sub-assistant calls: whether the sub-assistant stopped before finishing."""


@dataclass(frozen=True, kw_only=True)
class SubAssistantStartEvent(AssistantEvent):
    """A sub-assistant starts (or resumes) working; ``path`` ends with it."""

    type: ClassVar[str] = "sub_assistant_start"
    assistant: str
    """The sub-assistant's name."""
    message: str = ""
    """The caller's ``message_to_assistant``."""


@dataclass(frozen=True, kw_only=True)
class SubAssistantEndEvent(AssistantEvent):
    """A sub-assistant finished; ``path`` ends with it."""

    type: ClassVar[str] = "sub_assistant_end"
    assistant: str
    """The sub-assistant's name."""
    subgraph_uid: str | None
    """The conversation uid (None if the call was refused before it ran)."""
    returning_incomplete: bool
    """Whether it stopped before finishing."""
    status: str = "success"
    """``success``, or ``error`` if the call was refused or failed."""
    usage: UsageSummary | None = None
    """Tokens its model calls (and its sub-assistants') used."""


@dataclass(frozen=True, kw_only=True)
class RetryEvent(AssistantEvent):
    """A model call failed with a transient error and will be tried again."""

    type: ClassVar[str] = "retry"
    attempt: int
    """The attempt that failed (1 for the first)."""
    max_attempts: int
    """Attempts allowed in all."""
    wait_seconds: float
    """How long until the next attempt."""
    error: str
    """The error of the failed attempt."""


@dataclass(frozen=True, kw_only=True)
class InputRequestEvent(AssistantEvent):
    """An assistant is waiting for the person: a question or a tool-call approval."""

    type: ClassVar[str] = "input_request"
    id: str
    """The request id; answer with ``Command(resume={id: answer})``."""
    kind: str
    """``question`` or ``approval``."""
    question: str
    """The text to show the person."""
    tool: str | None = None
    """For approvals: the tool that would run."""
    args: dict[str, Any] | None = None
    """For approvals: its arguments."""


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(AssistantEvent):
    """The run failed; ``path`` names the assistant where it failed, if known."""

    type: ClassVar[str] = "error"
    message: str
    """What went wrong."""
    error_type: str
    """The exception's class name."""
    exception: BaseException | None = field(
        default=None, compare=False, repr=False, metadata={"json": False}
    )
    """The exception itself (not part of the JSON form)."""


@dataclass(frozen=True, kw_only=True)
class FinalEvent(AssistantEvent):
    """The last event of a run."""

    type: ClassVar[str] = "final"
    content: str
    """The root assistant's last message text."""
    thread_id: str | None
    """The thread the run belongs to (to continue it later)."""
    status: str
    """``completed``, ``incomplete`` (out of steps), ``interrupted`` (waiting for input),
    or ``error``."""
    usage: UsageSummary
    """Tokens used in this run, total, per assistant and per path."""


class _Origin(TypedDict):
    path: tuple[str, ...]
    parent_tool_call_id: str | None


@dataclass(frozen=True)
class _Scope:
    """The assistant whose graph runs in one LangGraph namespace."""

    path: tuple[str, ...]
    parent_tool_call_id: str | None

    def origin(self) -> _Origin:
        """The fields every event of this assistant carries."""
        return _Origin(path=self.path, parent_tool_call_id=self.parent_tool_call_id)


@dataclass
class EventTranslator:
    """Turns LangGraph stream chunks (``subgraphs=True``) into assistant events."""

    root: str
    """The root assistant's name."""
    thread_id: str | None = None
    """The thread id, for the final event."""
    usage: UsageTable = field(default_factory=UsageTable)
    """Token usage seen so far, per path."""
    _scopes: dict[tuple[str, ...], _Scope] = field(default_factory=dict)
    _unannounced: dict[tuple[str, ...], SubAssistantStartEvent] = field(default_factory=dict)
    _started: set[str] = field(default_factory=set)
    _seen_interrupts: set[str] = field(default_factory=set)
    _last_root_text: str = ""
    _root_incomplete: bool = False

    def __post_init__(self) -> None:
        self._scopes[()] = _Scope((self.root,), None)

    def translate(self, namespace: Sequence[str], mode: str, chunk: Any) -> list[AssistantEvent]:
        """The events of one ``(namespace, mode, chunk)`` item of the stream."""
        starts = self._announce(tuple(namespace))
        return [*starts, *self._translate(tuple(namespace), mode, chunk)]

    def _translate(self, namespace: tuple[str, ...], mode: str, chunk: Any) -> list[AssistantEvent]:
        scope = self._scope(namespace)
        if mode == "tasks":
            return self._task(namespace, scope, chunk)
        if mode == "messages":
            return self._token(scope, *chunk)
        if mode == "custom":
            return self._custom(scope, chunk)
        if mode == "updates":
            return [
                event
                for node, update in chunk.items()
                for event in self._update(scope, node, update)
            ]
        return []

    def _announce(self, namespace: tuple[str, ...]) -> list[AssistantEvent]:
        """Start events of sub-assistants whose graph shows its first activity now.

        A sub-assistant starts when its graph does something, not when the tool call is
        dispatched: a call refused before it runs (an approval declined, a bad uid) never
        starts one, and a call resumed after an interrupt starts it once.
        """
        prefixes = (namespace[:length] for length in range(1, len(namespace) + 1))
        starts = [self._unannounced.pop(p) for p in prefixes if p in self._unannounced]
        self._started.update(start.parent_tool_call_id or "" for start in starts)
        return list(starts)

    def final(self) -> FinalEvent:
        """The final event, after the stream ended."""
        if self._seen_interrupts:
            status = "interrupted"
        else:
            status = "incomplete" if self._root_incomplete else "completed"
        return FinalEvent(
            path=(self.root,),
            content=self._last_root_text,
            thread_id=self.thread_id,
            status=status,
            usage=self.usage.summary(),
        )

    def error(self, error: BaseException) -> list[AssistantEvent]:
        """The error event and the final event of a run that raised ``error``."""
        path = error.path if isinstance(error, ModelCallError) else (self.root,)
        failure = ErrorEvent(
            path=tuple(path),
            message=str(error),
            error_type=type(error).__name__,
            exception=error,
        )
        final = dataclasses.replace(self.final(), status="error")
        return [failure, final]

    def _scope(self, namespace: tuple[str, ...]) -> _Scope:
        while namespace not in self._scopes and namespace:
            namespace = namespace[:-1]
        return self._scopes[namespace]

    def _task(
        self, namespace: tuple[str, ...], scope: _Scope, chunk: Mapping[str, Any]
    ) -> list[AssistantEvent]:
        task_input = chunk.get("input")
        if chunk.get("name") != _TOOLS_NODE or not isinstance(task_input, Mapping):
            return []
        call = task_input.get("tool_call") or {}
        if not is_sub_assistant_tool_name(call.get("name", "")):
            return []
        assistant = assistant_name_from_tool_name(call["name"])
        child = _Scope((*scope.path, assistant), call.get("id"))
        child_namespace = (*namespace, f"{_TOOLS_NODE}:{chunk['id']}")
        self._scopes[child_namespace] = child
        self._unannounced[child_namespace] = SubAssistantStartEvent(
            **child.origin(),
            assistant=assistant,
            message=str((call.get("args") or {}).get("message_to_assistant", "")),
        )
        return []

    def _custom(self, scope: _Scope, chunk: Any) -> list[AssistantEvent]:
        if not isinstance(chunk, Mapping) or not chunk.get(RETRY_EVENT):
            return []
        return [
            RetryEvent(
                **scope.origin(),
                attempt=int(chunk["attempt"]),
                max_attempts=int(chunk["max_attempts"]),
                wait_seconds=float(chunk["wait_seconds"]),
                error=str(chunk["error"]),
            )
        ]

    def _token(
        self, scope: _Scope, message: BaseMessage, metadata: Mapping[str, Any]
    ) -> list[AssistantEvent]:
        if not isinstance(message, AIMessageChunk) or metadata.get("langgraph_node") != _AGENT_NODE:
            return []
        text = message_text(message)
        if not text:
            return []
        return [
            TokenEvent(
                path=scope.path,
                parent_tool_call_id=scope.parent_tool_call_id,
                text=text,
                message_id=message.id,
            )
        ]

    def _update(self, scope: _Scope, node: str, update: Any) -> list[AssistantEvent]:
        if node == "__interrupt__":
            return self._interrupts(scope, update)
        events: list[AssistantEvent] = []
        for message in _messages_of(update):
            events.extend(self._message(scope, message))
        return events

    def _message(self, scope: _Scope, message: BaseMessage) -> list[AssistantEvent]:
        common = scope.origin()
        if isinstance(message, ToolMessage):
            return self._tool_result(scope, message)
        if not isinstance(message, AIMessage):
            return []
        self.usage.add(scope.path, message.usage_metadata)
        events: list[AssistantEvent] = []
        text = message_text(message)
        if text:
            events.append(AgentMessageEvent(content=text, message_id=message.id, **common))
        if scope.path == (self.root,):
            self._last_root_text = text or self._last_root_text
            self._root_incomplete = is_out_of_steps_notice(message)
        events.extend(
            ToolCallEvent(name=call["name"], args=dict(call["args"]), id=call["id"] or "", **common)
            for call in message.tool_calls
        )
        return events

    def _tool_result(self, scope: _Scope, message: ToolMessage) -> list[AssistantEvent]:
        common = scope.origin()
        name = message.name or ""
        artifact = read_artifact(message)
        result = ToolResultEvent(
            name=name,
            id=message.tool_call_id,
            content=message_text(message),
            status=message.status,
            subgraph_uid=artifact["subgraph_uid"] if artifact else None,
            returning_incomplete=artifact["returning_incomplete"] if artifact else None,
            **common,
        )
        started = message.tool_call_id in self._started
        if not is_sub_assistant_tool_name(name) or not (artifact or started):
            return [result]
        assistant = assistant_name_from_tool_name(name)
        end = SubAssistantEndEvent(
            path=(*scope.path, assistant),
            parent_tool_call_id=message.tool_call_id,
            assistant=assistant,
            subgraph_uid=artifact["subgraph_uid"] if artifact else None,
            returning_incomplete=bool(artifact and artifact["returning_incomplete"]),
            status="success" if artifact else "error",
            usage=artifact["usage"] if artifact else None,
        )
        return [end, result]

    def _interrupts(self, scope: _Scope, interrupts: Sequence[Interrupt]) -> list[AssistantEvent]:
        events: list[AssistantEvent] = []
        for item in interrupts:
            if item.id in self._seen_interrupts:
                continue
            self._seen_interrupts.add(item.id)
            events.append(_input_request(scope, item))
        return events


def _input_request(scope: _Scope, item: Interrupt) -> InputRequestEvent:
    value: Mapping[str, Any] = (
        item.value if isinstance(item.value, Mapping) else {"question": str(item.value)}
    )
    args = value.get("args")
    path = tuple(value.get("path") or scope.path)
    return InputRequestEvent(
        path=path,
        parent_tool_call_id=None if len(path) == 1 else scope.parent_tool_call_id,
        id=item.id,
        kind=str(value.get("kind", "question")),
        question=str(value.get("question", "")),
        tool=value.get("tool"),
        args=dict(args) if isinstance(args, Mapping) else None,
    )


def _messages_of(update: Any) -> list[BaseMessage]:
    """The messages a node update adds (updates may be dicts, Commands or lists of them)."""
    if isinstance(update, list | tuple):
        return [message for part in update for message in _messages_of(part)]
    if isinstance(update, Command):
        return _messages_of(update.update)
    if isinstance(update, Mapping):
        messages = update.get("messages") or []
        return [
            m
            for m in (messages if isinstance(messages, list) else [messages])
            if isinstance(m, BaseMessage)
        ]
    return []


def _graph_input(input: Any) -> Any:
    if isinstance(input, str):
        return {"messages": [HumanMessage(input)]}
    return input


def _thread_id(config: RunnableConfig | None) -> str | None:
    configurable = (config or {}).get("configurable") or {}
    value = configurable.get("thread_id")
    return None if value is None else str(value)


def stream_events(
    graph: Any, input: Any, config: RunnableConfig | None = None
) -> Iterator[AssistantEvent]:
    """Run ``graph`` and yield the events of every assistant in the tree as they happen.

    Args:
        graph: A graph from :func:`~assistant_graph.build_assistant_graph`.
        input: A user message (``str``), a graph input (``{"messages": [...]}``), or a
            ``Command(resume=...)`` answering pending input requests.
        config: The run config, e.g. ``{"configurable": {"thread_id": "1"}}``.

    Yields:
        Events; the last is always a :class:`FinalEvent`. A failed run yields an
        :class:`ErrorEvent` (carrying the exception) and a final event with status
        ``error`` instead of raising.

    Example:
        >>> for event in stream_events(graph, "How wide is Mars?", config):  # doctest: +SKIP
        ...     print(event.type, " > ".join(event.path))
    """
    translator = EventTranslator(graph.name, _thread_id(config))
    try:
        for namespace, mode, chunk in graph.stream(
            _graph_input(input), config, stream_mode=list(STREAM_MODES), subgraphs=True
        ):
            yield from translator.translate(namespace, mode, chunk)
    except Exception as error:
        yield from translator.error(error)
        return
    yield translator.final()


async def astream_events(
    graph: Any, input: Any, config: RunnableConfig | None = None
) -> AsyncIterator[AssistantEvent]:
    """The async form of :func:`stream_events` (same events, same order)."""
    translator = EventTranslator(graph.name, _thread_id(config))
    try:
        async for namespace, mode, chunk in graph.astream(
            _graph_input(input), config, stream_mode=list(STREAM_MODES), subgraphs=True
        ):
            for event in translator.translate(namespace, mode, chunk):
                yield event
    except Exception as error:
        for event in translator.error(error):
            yield event
        return
    yield translator.final()
