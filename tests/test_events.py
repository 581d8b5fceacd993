"""The nested event stream: every assistant's activity, with paths, as it happens."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from assistant_graph import AssistantCatalog, astream_events, build_assistant_graph, stream_events
from assistant_graph.events import (
    AgentMessageEvent,
    AssistantEvent,
    ErrorEvent,
    FinalEvent,
    SubAssistantEndEvent,
    SubAssistantStartEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from assistant_graph.testing import ScriptedModels, ai, call_sub_assistant, call_tool

CONFIG = {"configurable": {"thread_id": "events"}}


def three_level_team() -> ScriptedModels:
    """proxy -> (researcher -> calculator) in parallel with proxy -> writer."""
    return ScriptedModels(
        {
            "proxy": [
                ai(
                    tool_calls=[
                        call_sub_assistant("researcher", "Diameter of Mars?", id="P1"),
                        call_sub_assistant("writer", "Say hi.", id="P2"),
                    ]
                ),
                "Mars is 6779 km wide.",
            ],
            "researcher": [
                ai(tool_calls=[call_sub_assistant("calculator", "2*3389.5", id="R1")]),
                "6779 km",
            ],
            "calculator": [
                ai(tool_calls=[call_tool("calculate", expression="2*3389.5", id="K1")]),
                "6779",
            ],
            "writer": ["Hello there"],
        }
    )


def summary(events: list[AssistantEvent]) -> list[tuple[str, str, str | None]]:
    """(type, path, parent tool call) of every event except tokens."""
    return [
        (event.type, ">".join(event.path), event.parent_tool_call_id)
        for event in events
        if not isinstance(event, TokenEvent)
    ]


EXPECTED_BY_PATH = {
    "proxy": [
        ("tool_call", "proxy", None),
        ("tool_call", "proxy", None),
        ("tool_result", "proxy", None),
        ("tool_result", "proxy", None),
        ("agent_message", "proxy", None),
        ("final", "proxy", None),
    ],
    "proxy>researcher": [
        ("sub_assistant_start", "proxy>researcher", "P1"),
        ("tool_call", "proxy>researcher", "P1"),
        ("tool_result", "proxy>researcher", "P1"),
        ("agent_message", "proxy>researcher", "P1"),
        ("sub_assistant_end", "proxy>researcher", "P1"),
    ],
    "proxy>researcher>calculator": [
        ("sub_assistant_start", "proxy>researcher>calculator", "R1"),
        ("tool_call", "proxy>researcher>calculator", "R1"),
        ("tool_result", "proxy>researcher>calculator", "R1"),
        ("agent_message", "proxy>researcher>calculator", "R1"),
        ("sub_assistant_end", "proxy>researcher>calculator", "R1"),
    ],
    "proxy>writer": [
        ("sub_assistant_start", "proxy>writer", "P2"),
        ("agent_message", "proxy>writer", "P2"),
        ("sub_assistant_end", "proxy>writer", "P2"),
    ],
}


def by_path(events: list[AssistantEvent]) -> dict[str, list[tuple[str, str, str | None]]]:
    grouped: dict[str, list[tuple[str, str, str | None]]] = {}
    for item in summary(events):
        grouped.setdefault(item[1], []).append(item)
    return grouped


def assert_three_level_run(events: list[AssistantEvent]) -> None:
    # Parallel branches interleave, but each assistant's own events come in this order.
    assert by_path(events) == EXPECTED_BY_PATH
    assert isinstance(events[-1], FinalEvent)
    assert events[-1].content == "Mars is 6779 km wide."
    assert events[-1].status == "completed" and events[-1].thread_id == "events"
    position = {id(event): index for index, event in enumerate(events)}
    starts = {e.path: position[id(e)] for e in events if isinstance(e, SubAssistantStartEvent)}
    ends = {e.path: position[id(e)] for e in events if isinstance(e, SubAssistantEndEvent)}
    assert starts[("proxy", "researcher")] < starts[("proxy", "researcher", "calculator")]
    assert ends[("proxy", "researcher", "calculator")] < ends[("proxy", "researcher")]
    results = {e.id: e for e in events if isinstance(e, ToolResultEvent)}
    assert results["P1"].subgraph_uid is not None and results["P1"].returning_incomplete is False
    assert results["K1"].content == "2*3389.5 = 6779" and results["K1"].subgraph_uid is None


def test_a_three_level_run_with_parallel_calls_streams_every_assistant(
    team: AssistantCatalog,
) -> None:
    graph = build_assistant_graph(
        "proxy", team, model=three_level_team(), checkpointer=InMemorySaver()
    )
    assert_three_level_run(list(stream_events(graph, "How wide is Mars?", CONFIG)))


async def test_the_async_stream_yields_the_same_events(team: AssistantCatalog) -> None:
    graph = build_assistant_graph(
        "proxy", team, model=three_level_team(), checkpointer=InMemorySaver()
    )
    events = [event async for event in astream_events(graph, "How wide is Mars?", CONFIG)]
    assert_three_level_run(events)


def test_tokens_from_depth_two_arrive_before_that_sub_assistant_ends(
    team: AssistantCatalog,
) -> None:
    graph = build_assistant_graph("proxy", team, model=three_level_team())
    events = list(stream_events(graph, "How wide is Mars?"))
    calculator = ("proxy", "researcher", "calculator")
    tokens = [i for i, e in enumerate(events) if isinstance(e, TokenEvent) and e.path == calculator]
    [end] = [
        i
        for i, e in enumerate(events)
        if isinstance(e, SubAssistantEndEvent) and e.path == calculator
    ]
    assert tokens and max(tokens) < end
    assert (
        "".join(e.text for e in events if isinstance(e, TokenEvent) and e.path == calculator)
        == "6779"
    )


def test_events_serialize_to_json_ready_dicts(team: AssistantCatalog) -> None:
    graph = build_assistant_graph("proxy", team, model=three_level_team())
    events = list(stream_events(graph, "How wide is Mars?"))
    call = next(e for e in events if isinstance(e, ToolCallEvent) and e.id == "R1")
    assert call.to_dict() == {
        "type": "tool_call",
        "path": ["proxy", "researcher"],
        "parent_tool_call_id": "P1",
        "name": "sub_assistant__calculator",
        "args": {"message_to_assistant": "2*3389.5"},
        "id": "R1",
    }
    message = next(e for e in events if isinstance(e, AgentMessageEvent))
    assert set(message.to_dict()) == {
        "type",
        "path",
        "parent_tool_call_id",
        "content",
        "message_id",
    }


def test_a_failed_run_ends_with_an_error_event_naming_the_path(team: AssistantCatalog) -> None:
    models = ScriptedModels(
        {"proxy": [ai(tool_calls=[call_sub_assistant("researcher", "q")])], "researcher": []}
    )
    events = list(stream_events(build_assistant_graph("proxy", team, model=models), "go"))
    error, final = events[-2:]
    assert isinstance(error, ErrorEvent) and isinstance(final, FinalEvent)
    assert error.path == ("proxy", "researcher")
    assert error.error_type == "ModelCallError" and "ScriptExhaustedError" in error.message
    assert "exception" not in error.to_dict()
    assert final.status == "error"


def test_a_root_out_of_steps_ends_incomplete(team: AssistantCatalog) -> None:
    looping = [lambda _: ai(tool_calls=[call_tool("lookup_fact", topic="mars")])] * 6
    researcher = ScriptedModels({"researcher": looping})
    events = list(stream_events(build_assistant_graph("researcher", team, model=researcher), "x"))
    final = events[-1]
    assert isinstance(final, FinalEvent) and final.status == "incomplete"


@pytest.mark.parametrize("input", ["Hi", {"messages": [("user", "Hi")]}])
def test_input_may_be_text_or_a_graph_input(team: AssistantCatalog, input: Any) -> None:
    models = ScriptedModels({"writer": ["Hello"]})
    events = list(stream_events(build_assistant_graph("writer", team, model=models), input))
    assert models.calls("writer")[0].last_message.content == "Hi"
    assert events[-1].content == "Hello"  # type: ignore[attr-defined]
