"""Translating LangGraph stream chunks into assistant events.

LangGraph namespaces its ``subgraphs=True`` stream by task ids (``tools:<uuid>``).
:class:`EventTranslator` turns them into assistant paths (``["proxy", "researcher"]``) by
watching which sub-assistant tool call each ``tools`` task runs, and turns every
``(namespace, mode, chunk)`` item into the typed events of :mod:`assistant_graph.events`:
messages, tokens, tool calls and results, sub-assistant starts and ends, retries, input
requests, and the final event with the run's token usage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langgraph.types import Command, Interrupt

from assistant_graph._errors import ModelCallError
from assistant_graph._model_calls import RETRY_EVENT, USAGE_EVENT
from assistant_graph._names import assistant_name_from_tool_name, is_sub_assistant_tool_name
from assistant_graph._state import message_text
from assistant_graph._subgraph_tool import is_out_of_steps_notice, read_artifact
from assistant_graph._usage import UsageTable
from assistant_graph.events import (
    AgentMessageEvent,
    AssistantEvent,
    ErrorEvent,
    FinalEvent,
    InputRequestEvent,
    RetryEvent,
    SubAssistantEndEvent,
    SubAssistantStartEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)

__all__ = ["EventTranslator"]

_TOOLS_NODE = "tools"
_AGENT_NODE = "agent"


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
        if isinstance(chunk, Mapping) and chunk.get(USAGE_EVENT):
            self.usage.add(scope.path, chunk.get("usage"))
            return []
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
