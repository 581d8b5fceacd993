"""What every example notebook needs: offline or not, where the examples are, events as text."""

from __future__ import annotations

import json
import os
from pathlib import Path

from assistant_graph._catalog import DEFAULT_ASSISTANTS_FOLDER
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

__all__ = ["OFFLINE_ENV", "example_folder", "format_event", "offline_mode"]

OFFLINE_ENV = "ASSISTANT_GRAPH_OFFLINE"
"""Set to ``1`` to run the examples offline even when ``OPENAI_API_KEY`` is set."""
_UNDER_PYTEST = "PYTEST_CURRENT_TEST"
"""Set by pytest while a test runs, and inherited by the kernel nbmake starts."""
_NOT_FOUND = (
    "cannot find the example assistants folder {name!r}; run the notebooks from a "
    "checkout of the repository (looked in: {places})"
)
_TEXT_LIMIT = 120
_REPOSITORY = Path(__file__).resolve().parents[3]


def offline_mode() -> bool:
    """Whether the examples run on scripted models instead of the real ones.

    Offline when ``OPENAI_API_KEY`` is not set, when ``ASSISTANT_GRAPH_OFFLINE=1``, and
    always under pytest (the test run executes the notebooks and never reaches a network).
    """
    if os.environ.get(OFFLINE_ENV) == "1" or _UNDER_PYTEST in os.environ:
        return True
    return not os.environ.get("OPENAI_API_KEY")


def example_folder(team: str = "") -> Path:
    """The example assistants folder ``assistants/`` (or a team folder inside it).

    Looked for in the repository checkout this package is installed from, then in the
    working directory and its parent (notebooks run from ``notebooks/``).

    Raises:
        FileNotFoundError: If no such folder exists there.
    """
    bases = [_REPOSITORY, Path.cwd(), Path.cwd().parent]
    places = [base / DEFAULT_ASSISTANTS_FOLDER / team for base in bases]
    for place in places:
        if place.is_dir():
            return place
    raise FileNotFoundError(
        _NOT_FOUND.format(name=team or DEFAULT_ASSISTANTS_FOLDER, places=places)
    )


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


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _TEXT_LIMIT else line[: _TEXT_LIMIT - 3] + "..."
