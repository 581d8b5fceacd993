"""What every example notebook needs: offline or not, where the examples are, events as text."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from assistant_graph._example_team import example_assistants
from assistant_graph._usage import UsageSummary, UsageTable
from assistant_graph.events import (
    AgentMessageEvent,
    AssistantEvent,
    ErrorEvent,
    FinalEvent,
    InputRequestEvent,
    SubAssistantEndEvent,
    SubAssistantStartEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)

__all__ = [
    "OFFLINE_ENV",
    "EventPrinter",
    "example_folder",
    "format_event",
    "offline_mode",
    "thread_usage",
]

OFFLINE_ENV = "ASSISTANT_GRAPH_OFFLINE"
"""Set to ``1`` to run the examples offline even when ``OPENAI_API_KEY`` is set."""
_UNDER_PYTEST = "PYTEST_CURRENT_TEST"
"""Set by pytest while a test runs, and inherited by the kernel nbmake starts."""
_TEXT_LIMIT = 120


def offline_mode() -> bool:
    """Whether the examples run on scripted models instead of the real ones.

    Offline when ``OPENAI_API_KEY`` is not set, when ``ASSISTANT_GRAPH_OFFLINE=1``, and
    always under pytest (the test run executes the notebooks and never reaches a network).
    """
    if os.environ.get(OFFLINE_ENV) == "1" or _UNDER_PYTEST in os.environ:
        return True
    return not os.environ.get("OPENAI_API_KEY")


def example_folder(team: str = "") -> Path:
    """The example assistants folder (or a team folder inside it, e.g. ``image_team``).

    It ships inside the package (:data:`~assistant_graph._example_team.EXAMPLE_ASSISTANTS`;
    the repository's ``assistants/`` links to it), so the notebooks run from anywhere.

    Raises:
        FileNotFoundError: If no such folder exists there.
    """
    return example_assistants(team)


def format_event(event: AssistantEvent) -> str:
    """One line describing an event, for printing a run as it happens (tokens excluded:
    print ``event.text`` of :class:`TokenEvent` as it comes instead)."""
    where = " > ".join(event.path)
    match event:
        case TokenEvent():
            return event.text
        case SubAssistantStartEvent():
            return f"{where}: starts: {_short(event.message)}"
        case SubAssistantEndEvent():
            return f"{where}: done (conversation {event.subgraph_uid})"
        case ToolCallEvent():
            return f"{where}: calls {event.name} {_short(json.dumps(event.args))}"
        case ToolResultEvent():
            return f"{where}: {event.name} returned {_short(event.content)}"
        case AgentMessageEvent():
            return f"{where}: says {_short(event.content)}"
        case InputRequestEvent():
            return f"{where}: asks the person ({event.kind}): {event.question}"
        case ErrorEvent():
            return f"{where}: error {event.error_type}: {event.message}"
        case FinalEvent():
            return f"final ({event.status}): {_short(event.content)}"
        case _:
            return f"{where}: {event.type}"


class EventPrinter:
    """Lines for the events of the runs of one thread, each step once.

    A run resumed after a question re-enters the sub-assistant that asked it, which
    announces its start again; the printer says it continues instead.
    """

    def __init__(self) -> None:
        self._started: set[str | None] = set()

    def line(self, event: AssistantEvent) -> str:
        """The line for ``event`` (see :func:`format_event`)."""
        if isinstance(event, SubAssistantStartEvent):
            if event.parent_tool_call_id in self._started:
                return f"{' > '.join(event.path)}: continues with the answer"
            self._started.add(event.parent_tool_call_id)
        return format_event(event)


def thread_usage(finals: Iterable[FinalEvent]) -> UsageSummary:
    """The token usage of a whole thread: the sum of its runs' final events."""
    table = UsageTable()
    for final in finals:
        table.merge(final.usage)
    return table.summary()


def usage_table(usage: UsageSummary) -> str:
    """Tokens and cost per assistant and in total, as the CLI prints them after a run."""
    from assistant_graph.cli._render import format_usage

    return "\n".join(format_usage(usage))


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _TEXT_LIMIT else line[: _TEXT_LIMIT - 3] + "..."
