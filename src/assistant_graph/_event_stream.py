"""Streaming a run as assistant events: ``stream_events`` and ``astream_events``.

They run a graph with LangGraph streaming (``subgraphs=True``, the modes in
:data:`STREAM_MODES`) and translate each chunk into the events of
:mod:`assistant_graph.events`. LangGraph namespaces are task ids (``tools:<uuid>``); the
translator (:mod:`assistant_graph._event_translation`) turns them into assistant paths
(``["proxy", "researcher"]``) by watching which tool call each ``tools`` task runs. Sync and
async share the translator; only the iteration differs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig

from assistant_graph._event_translation import EventTranslator
from assistant_graph.events import AssistantEvent

__all__ = ["STREAM_MODES", "astream_events", "stream_events"]

STREAM_MODES = ("updates", "messages", "tasks", "custom")
"""The LangGraph stream modes the event stream is built from."""


def _graph_input(input: Any) -> Any:
    if isinstance(input, str):
        return {"messages": [HumanMessage(input)]}
    return input


def _thread_id(config: RunnableConfig | None) -> str | None:
    configurable = (config or {}).get("configurable") or {}
    value = configurable.get("thread_id")
    return None if value is None else str(value)


def _translator(graph: Any, config: RunnableConfig | None) -> EventTranslator:
    return EventTranslator(graph.name, _thread_id(config))


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
