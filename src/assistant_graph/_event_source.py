"""Writing events where things happen, on LangGraph's ``custom`` stream.

The code that does something announces it here: the model-call step its messages
(:func:`publish_messages`), the tools step each result, the sub-assistant call its start
and end, the model caller its retries, usage and failures, the human-in-the-loop tools
their input requests. Each event carries its :class:`Origin` (the assistant path and the
tool call that opened that sub-assistant), taken from the state of the graph that emits
it, so nothing downstream has to reconstruct who did what from LangGraph's task ids.

Tokens come from LangGraph's own ``messages`` stream: a model call that answers is made
with its origin in the run metadata (:func:`answering_config`), which LangGraph hands on
with each streamed chunk (:func:`token_origin`); other model calls (summaries) are not
streamed (:func:`quiet_config`).

On the stream an event is ``event.to_dict()`` with ``"source": "assistant_graph"``
(:data:`SOURCE_KEY`), so LangGraph Server clients see the same events as
:func:`~assistant_graph.stream_events`. Outside a graph run (a tool invoked on its own)
nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.constants import TAG_NOSTREAM

from assistant_graph._state import message_text
from assistant_graph._usage import call_usage
from assistant_graph.events import (
    AgentMessageEvent,
    AssistantEvent,
    ToolCallEvent,
    ToolResultEvent,
)

__all__ = [
    "SOURCE",
    "SOURCE_KEY",
    "USAGE_SOURCE",
    "Origin",
    "answering_config",
    "emit",
    "message_events",
    "publish_messages",
    "quiet_config",
    "report_usage",
    "token_origin",
    "tool_result_event",
]

SOURCE_KEY = "source"
"""Key that marks this package's chunks on the ``custom`` stream."""
SOURCE = "assistant_graph"
"""The value of :data:`SOURCE_KEY` in them."""
USAGE_SOURCE = "assistant_graph/usage"
""":data:`SOURCE_KEY` value of the internal record of one model call's token usage (not an
event, so clients that keep ``source == "assistant_graph"`` get events only)."""
TOKEN_ORIGIN_KEY = "assistant_graph_origin"
"""Run-metadata key with the origin of a model call whose tokens are streamed."""


@dataclass(frozen=True)
class Origin:
    """Who produces an event: the fields every event carries."""

    path: tuple[str, ...]
    """The assistant names from the root to the one acting."""
    parent_tool_call_id: str | None = None
    """The caller's tool call that opened this sub-assistant run (None for the root)."""

    @classmethod
    def of(cls, state: Mapping[str, Any], name: str) -> Origin:
        """The origin of assistant ``name`` running with graph state ``state``."""
        path = tuple(state.get("assistant_path") or (name,))
        return cls(path, state.get("parent_tool_call_id"))

    def child(self, assistant: str, tool_call_id: str | None) -> Origin:
        """The origin of sub-assistant ``assistant`` opened by ``tool_call_id``."""
        return Origin((*self.path, assistant), tool_call_id)

    def fields(self) -> dict[str, Any]:
        """The keyword arguments every event class takes for its origin."""
        return {"path": self.path, "parent_tool_call_id": self.parent_tool_call_id}


def _write(source: str, data: dict[str, Any]) -> None:
    try:
        writer = get_stream_writer()
    except RuntimeError:  # not inside a graph run: nobody is listening
        return
    writer({SOURCE_KEY: source, **data})


def emit(event: AssistantEvent) -> None:
    """Write ``event`` on the custom stream of the graph run this code is part of."""
    _write(SOURCE, event.to_dict())


def report_usage(origin: Origin, usage: Mapping[str, Any] | None, cost: float | None) -> None:
    """Record the token usage and cost (None: unknown) of one model call made by
    ``origin``'s assistant."""
    if usage:
        _write(USAGE_SOURCE, {**origin.fields(), "usage": call_usage(usage, cost)})


def publish_messages(origin: Origin, messages: Iterable[BaseMessage]) -> None:
    """Announce messages an assistant adds to its conversation: its own text and tool
    calls, and the results of tool calls."""
    for message in messages:
        for event in message_events(origin, message):
            emit(event)


def message_events(origin: Origin, message: BaseMessage) -> Sequence[AssistantEvent]:
    """The events that announce ``message``, added to the conversation of ``origin``'s
    assistant: its text and tool calls, or a tool result (none for other messages)."""
    if isinstance(message, ToolMessage):
        return [tool_result_event(origin, message)]
    if not isinstance(message, AIMessage):
        return []
    events: list[AssistantEvent] = []
    text = message_text(message)
    if text:
        events.append(AgentMessageEvent(**origin.fields(), content=text, message_id=message.id))
    events.extend(
        ToolCallEvent(
            **origin.fields(), name=call["name"], args=dict(call["args"]), id=call["id"] or ""
        )
        for call in message.tool_calls
    )
    return events


def tool_result_event(origin: Origin, message: ToolMessage) -> ToolResultEvent:
    """The event of a tool result, with the conversation uid of sub-assistant results."""
    artifact = message.artifact if isinstance(message.artifact, Mapping) else {}
    uid = artifact.get("subgraph_uid")
    return ToolResultEvent(
        **origin.fields(),
        name=message.name or "",
        id=message.tool_call_id,
        content=message_text(message),
        status=message.status,
        subgraph_uid=uid,
        returning_incomplete=bool(artifact.get("returning_incomplete")) if uid else None,
    )


def answering_config(config: RunnableConfig, origin: Origin) -> RunnableConfig:
    """``config`` for a model call whose streamed tokens belong to ``origin``'s assistant."""
    metadata = {**(config.get("metadata") or {}), TOKEN_ORIGIN_KEY: origin.fields()}
    return {**config, "metadata": metadata}


def quiet_config(config: RunnableConfig) -> RunnableConfig:
    """``config`` for a model call whose tokens are not streamed (a summary)."""
    return {**config, "tags": [*(config.get("tags") or []), TAG_NOSTREAM]}


def token_origin(metadata: Mapping[str, Any]) -> Origin | None:
    """The origin of a streamed chunk made by :func:`answering_config`, else None."""
    fields = metadata.get(TOKEN_ORIGIN_KEY)
    if not isinstance(fields, Mapping):
        return None
    return Origin(tuple(fields.get("path") or ()), fields.get("parent_tool_call_id"))
