"""The nested event stream: every assistant's activity, with paths, as it happens."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver

from assistant_graph import (
    AssistantCatalog,
    ModelCallError,
    RetryPolicy,
    astream_events,
    build_assistant_graph,
    stream_events,
)
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
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant, call_tool

CONFIG: RunnableConfig = {"configurable": {"thread_id": "events"}}


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


class TestEveryEventNamesItsCall:
    """Every event, of every type and at every depth, says which assistant produced it
    (``path``) and which tool call opened that assistant's run (``parent_tool_call_id``),
    so parallel calls of the same assistant can be told apart."""

    @staticmethod
    def team() -> AssistantCatalog:
        """proxy -> researcher (twice, in parallel) -> asker, which may ask the person."""
        return AssistantCatalog.from_schemas(
            [
                {"name": "proxy", "description": "d", "instructions": "i"}
                | {"sub_assistants": ["researcher"]},
                {"name": "researcher", "description": "d", "instructions": "i"}
                | {"callable": True, "sub_assistants": ["asker"], "tools": [_LOOKUP]},
                {"name": "asker", "description": "d", "instructions": "i"}
                | {"callable": True, "ask_user": True},
            ]
        )

    @staticmethod
    def proxy_fans_out() -> list[Any]:
        return [
            ai(
                tool_calls=[
                    call_sub_assistant("researcher", "topic A", id="P1"),
                    call_sub_assistant("researcher", "topic B", id="P2"),
                ]
            ),
            "both done",
        ]

    @staticmethod
    def researcher(call: ModelCall) -> AIMessage:
        """Asks the asker once (ids RA/RB by topic), then answers; B also fails a tool."""
        topic = "A" if "topic A" in call.text else "B"
        if not any(isinstance(m, ToolMessage) for m in call.messages):
            calls = [call_sub_assistant("asker", f"ask about {topic}", id=f"R{topic}")]
            if topic == "B":
                calls.append(call_tool("lookup_fact", id="RB-bad"))  # missing argument
            return ai(tool_calls=calls)
        return ai(f"researched {topic}")

    def assert_names_its_call(self, events: list[AssistantEvent]) -> None:
        # Keyed like the lookup below, whose parent_tool_call_id is typed str | None.
        calls: dict[tuple[tuple[str, ...], str | None], ToolCallEvent] = {
            (e.path, e.id): e for e in events if isinstance(e, ToolCallEvent)
        }
        for event in events:
            assert event.path[0] == "proxy", event
            if len(event.path) == 1:
                assert event.parent_tool_call_id is None, event
                continue
            opener = calls.get((event.path[:-1], event.parent_tool_call_id))
            assert opener is not None, f"{event} names no tool call of its caller"
            assert opener.name == f"sub_assistant__{event.path[-1]}", event

    def test_in_a_three_level_run_with_parallel_calls_and_a_failing_tool(self) -> None:
        models = ScriptedModels(
            {
                "proxy": self.proxy_fans_out(),
                "researcher": [self.researcher] * 4,
                "asker": [lambda call: ai(f"answer to {call.last_message.content}")] * 2,
            }
        )
        graph = build_assistant_graph("proxy", self.team(), model=models)
        events = list(stream_events(graph, "go"))
        self.assert_names_its_call(events)
        types = {event.type for event in events}
        assert {"token", "agent_message", "tool_call", "tool_result"} <= types
        assert {"sub_assistant_start", "sub_assistant_end", "final"} <= types
        ends = {(e.path, e.parent_tool_call_id) for e in events if e.type == "sub_assistant_end"}
        assert ends == {
            (("proxy", "researcher"), "P1"),
            (("proxy", "researcher"), "P2"),
            (("proxy", "researcher", "asker"), "RA"),
            (("proxy", "researcher", "asker"), "RB"),
        }
        [failed] = [e for e in events if isinstance(e, ToolResultEvent) and e.id == "RB-bad"]
        assert failed.status == "error"
        assert (failed.path, failed.parent_tool_call_id) == (("proxy", "researcher"), "P2")

    def test_input_requests_of_two_parallel_callers_name_their_calls(self) -> None:
        models = ScriptedModels(
            {
                "proxy": self.proxy_fans_out(),
                "researcher": [self.researcher] * 4,
                "asker": [
                    lambda call: ai(tool_calls=[call_tool("ask_user", question=call.text[-1:])])
                ]
                * 2,
            }
        )
        graph = build_assistant_graph(
            "proxy", self.team(), model=models, checkpointer=InMemorySaver()
        )
        events = list(stream_events(graph, "go", CONFIG))
        self.assert_names_its_call(events)
        requests = [e for e in events if isinstance(e, InputRequestEvent)]
        assert sorted((r.parent_tool_call_id, r.question) for r in requests) == [
            ("RA", "A"),
            ("RB", "B"),
        ]
        pending = {item.id for item in graph.get_state(CONFIG).interrupts}
        assert {r.id for r in requests} == pending
        assert events[-1].status == "interrupted"  # type: ignore[attr-defined]

    def test_retries_and_the_failure_of_one_of_two_parallel_calls_name_that_call(self) -> None:
        attempts: dict[str, int] = {}

        def flaky_then_broken(call: ModelCall) -> AIMessage:
            topic = "A" if "topic A" in call.text else "B"
            attempts[topic] = attempts.get(topic, 0) + 1
            if topic == "B" and attempts[topic] == 1:
                raise _RateLimitError("slow down")
            if topic == "B":
                raise ValueError("the model server broke")
            return ai(f"researched {topic}")

        models = ScriptedModels(
            {"proxy": self.proxy_fans_out(), "researcher": [flaky_then_broken] * 3}
        )
        graph = build_assistant_graph(
            "proxy", self.team(), model=models, retry=RetryPolicy(initial_delay=0, jitter=0)
        )
        events = list(stream_events(graph, "go"))
        self.assert_names_its_call(events)
        [retry] = [e for e in events if isinstance(e, RetryEvent)]
        assert (retry.path, retry.parent_tool_call_id) == (("proxy", "researcher"), "P2")
        error, final = events[-2:]
        assert isinstance(error, ErrorEvent) and isinstance(final, FinalEvent)
        assert (error.path, error.parent_tool_call_id) == (("proxy", "researcher"), "P2")
        assert error.to_dict()["parent_tool_call_id"] == "P2"
        assert isinstance(error.exception, ModelCallError)
        assert error.exception.parent_tool_call_id == "P2"
        assert final.status == "error"


_LOOKUP = "tests.test_events:lookup_fact"


def lookup_fact(topic: str) -> str:
    """Look a topic up."""
    return f"a fact about {topic}"


class _RateLimitError(Exception):
    """A transient failure (retried, like a 429)."""
