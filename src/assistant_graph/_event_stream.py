"""Streaming a run as assistant events: ``stream_events`` and ``astream_events``.

The events are written where things happen (:mod:`._event_source`), on LangGraph's
``custom`` stream; this module runs the graph with ``subgraphs=True`` and

* decodes those events (:meth:`~assistant_graph.events.AssistantEvent.from_dict`),
* turns the ``messages`` stream's chunks of answering model calls into ``token`` events,
* sums the token usage records per path, and
* ends with the ``final`` event: the root assistant's last text, the status (waiting for
  input, out of steps, completed, failed), the usage, and a typed root's result.

It knows nothing of LangGraph task ids or node names: every event says who produced it.
Sync and async share the translator; only the iteration differs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

from assistant_graph._errors import ModelCallError
from assistant_graph._event_source import SOURCE, SOURCE_KEY, USAGE_SOURCE, token_origin
from assistant_graph._state import message_text
from assistant_graph._usage import UsageTable
from assistant_graph.events import (
    AgentMessageEvent,
    AssistantEvent,
    ErrorEvent,
    FinalEvent,
    InputRequestEvent,
    TokenEvent,
)

__all__ = ["STREAM_MODES", "EventTranslator", "astream_events", "stream_events"]

STREAM_MODES = ("custom", "messages", "values")
"""The LangGraph stream modes the event stream is built from: our events, the streamed
tokens, and the root's state (whether it stopped incomplete, its typed result)."""


@dataclass
class EventTranslator:
    """Turns LangGraph stream items (``subgraphs=True``) into assistant events."""

    root: str
    """The root assistant's name."""
    thread_id: str | None = None
    """The thread id, for the final event."""
    usage: UsageTable = field(default_factory=UsageTable)
    """Token usage seen so far, per path."""
    _last_root_text: str = ""
    _interrupted: bool = False
    _incomplete: bool = False
    _budget_exhausted: dict[str, Any] | None = None
    _structured_response: Any = None
    _error: ErrorEvent | None = None

    def translate(self, namespace: Sequence[str], mode: str, chunk: Any) -> list[AssistantEvent]:
        """The events of one ``(namespace, mode, chunk)`` item of the stream."""
        if mode == "custom":
            return self._custom(chunk)
        if mode == "messages":
            return self._token(*chunk)
        if mode == "values" and not namespace and isinstance(chunk, Mapping):
            self._incomplete = bool(chunk.get("incomplete"))
            self._budget_exhausted = chunk.get("budget_exhausted") if self._incomplete else None
            self._structured_response = chunk.get("structured_response")
        return []

    def final(self) -> FinalEvent:
        """The final event, after the stream ended."""
        if self._interrupted:
            status = "interrupted"
        else:
            status = "incomplete" if self._incomplete else "completed"
        return FinalEvent(
            path=(self.root,),
            content=self._last_root_text,
            thread_id=self.thread_id,
            status=status,
            usage=self.usage.summary(),
            structured_response=self._structured_response,
            budget_exhausted=None if status != "incomplete" else self._budget_exhausted,
        )

    def error(self, error: BaseException) -> list[AssistantEvent]:
        """The error event and the final event of a run that raised ``error``.

        A model call that failed announced where (its ``error`` event); that event is
        given here, with the exception attached. Any other exception is the root's.
        """
        failure = self._error if isinstance(error, ModelCallError) else None
        if failure is None and isinstance(error, ModelCallError):
            failure = ErrorEvent(
                path=error.path,
                parent_tool_call_id=error.parent_tool_call_id,
                message="",
                error_type="",
            )
        if failure is None:
            failure = ErrorEvent(path=(self.root,), message="", error_type="")
        failure = dataclasses.replace(
            failure, error_type=type(error).__name__, message=str(error), exception=error
        )
        return [failure, dataclasses.replace(self.final(), status="error")]

    def _custom(self, chunk: Any) -> list[AssistantEvent]:
        source = chunk.get(SOURCE_KEY) if isinstance(chunk, Mapping) else None
        if source == USAGE_SOURCE:
            self.usage.add(chunk.get("path") or (self.root,), chunk.get("usage"))
            return []
        if source != SOURCE:
            return []
        return self._seen(AssistantEvent.from_dict(chunk))

    def _seen(self, event: AssistantEvent) -> list[AssistantEvent]:
        """Note what the final event needs; hold back a failure until the run ends."""
        if isinstance(event, ErrorEvent):
            self._error = self._error or event
            return []
        if isinstance(event, InputRequestEvent):
            self._interrupted = True
        elif isinstance(event, AgentMessageEvent) and event.path == (self.root,):
            self._last_root_text = event.content
        return [event]

    def _token(self, message: BaseMessage, metadata: Mapping[str, Any]) -> list[AssistantEvent]:
        origin = token_origin(metadata) if isinstance(message, AIMessageChunk) else None
        text = message_text(message) if origin is not None else ""
        if origin is None or not text:
            return []
        return [TokenEvent(**origin.fields(), text=text, message_id=message.id)]


def _graph_input(input: Any) -> Any:
    if isinstance(input, str):
        return {"messages": [HumanMessage(input)]}
    return input


def _translator(graph: Any, config: RunnableConfig | None) -> EventTranslator:
    configurable = (config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    return EventTranslator(graph.name, None if thread_id is None else str(thread_id))


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
        Events (:mod:`assistant_graph.events`); the last is always a
        :class:`~assistant_graph.events.FinalEvent`. A failed run yields an
        :class:`~assistant_graph.events.ErrorEvent` (carrying the exception) and a final
        event with status ``error`` instead of raising.

    Example:
        >>> for event in stream_events(graph, "How wide is Mars?", config):  # doctest: +SKIP
        ...     print(event.type, " > ".join(event.path))
    """
    translator = _translator(graph, config)
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
    translator = _translator(graph, config)
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
