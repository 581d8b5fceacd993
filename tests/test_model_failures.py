"""Model failures over real HTTP: transient ones retried visibly, persistent ones reported
with the assistant path, and the thread kept so the run can be finished later."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import SecretStr

from assistant_graph import (
    AssistantCatalog,
    ModelCallError,
    RetryPolicy,
    build_assistant_graph,
    stream_events,
)
from assistant_graph.events import ErrorEvent, FinalEvent, RetryEvent
from assistant_graph.testing import ScriptedOpenAIServer, reply, route_by_assistant, tool_call

FAST = RetryPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.05, jitter=0)
CONFIG: RunnableConfig = {"configurable": {"thread_id": "faults"}}


def sub(assistant: str, message: str) -> Any:
    return tool_call(f"sub_assistant__{assistant}", message_to_assistant=message)


@pytest.fixture
def server(
    team: AssistantCatalog, scripted_openai_server: ScriptedOpenAIServer
) -> ScriptedOpenAIServer:
    scripted_openai_server.router = route_by_assistant(team)
    return scripted_openai_server


def graph_on(server: ScriptedOpenAIServer, team: AssistantCatalog, **chat: Any) -> Any:
    def model(schema: Any) -> ChatOpenAI:
        return ChatOpenAI(
            model="gpt-4o-mini",
            base_url=server.url,
            api_key=SecretStr("sk-test"),
            max_retries=0,
            streaming=True,
            **chat,
        )

    return build_assistant_graph(
        "proxy", team, model=model, checkpointer=InMemorySaver(), retry=FAST
    )


def test_rate_limits_and_unavailability_are_retried_and_visible(
    server: ScriptedOpenAIServer, team: AssistantCatalog
) -> None:
    server.script("proxy", reply(tool_calls=[sub("writer", "hi")]), "done")
    server.script("writer", "hello")
    server.fail_next(status=429, times=1, key="writer")
    server.fail_next(status=503, times=1, key="writer")

    events = list(stream_events(graph_on(server, team), "greet", CONFIG))

    retries = [e for e in events if isinstance(e, RetryEvent)]
    assert [(r.path, r.attempt) for r in retries] == [
        (("proxy", "writer"), 1),
        (("proxy", "writer"), 2),
    ]
    assert "429" in retries[0].error and "503" in retries[1].error
    assert retries[0].max_attempts == 3
    assert len(server.requests_for("writer")) == 3
    final = events[-1]
    assert isinstance(final, FinalEvent) and final.status == "completed"
    assert final.content == "done"


def test_a_persistent_server_error_names_the_path_and_the_thread_can_finish_later(
    server: ScriptedOpenAIServer, team: AssistantCatalog
) -> None:
    server.script(
        "proxy", reply(tool_calls=[sub("researcher", "radius?"), sub("writer", "hi")]), "all done"
    )
    server.script("writer", "hello")
    server.script(
        "researcher", reply(status=500), reply(status=500), reply(status=500), "3389.5 km"
    )
    graph = graph_on(server, team)

    events = list(stream_events(graph, "work", CONFIG))

    error, final = events[-2:]
    assert isinstance(error, ErrorEvent) and isinstance(final, FinalEvent)
    assert error.path == ("proxy", "researcher")
    assert "failed after 3 attempts" in error.message and "500" in error.message
    assert isinstance(error.exception, ModelCallError)
    assert final.status == "error"
    assert len(server.requests_for("writer")) == 1

    resumed = list(stream_events(graph, None, CONFIG))  # continue the same thread

    assert resumed[-1].status == "completed" and resumed[-1].content == "all done"  # type: ignore[attr-defined]
    assert len(server.requests_for("writer")) == 1, "the finished sibling is not run again"
    assert len(server.requests_for("researcher")) == 4


def test_a_bad_request_is_not_retried(server: ScriptedOpenAIServer, team: AssistantCatalog) -> None:
    server.script("proxy", reply(status=400))
    events = list(stream_events(graph_on(server, team), "x", CONFIG))
    assert [e.type for e in events] == ["error", "final"]
    assert len(server.requests) == 1
    assert "400" in events[0].message  # type: ignore[attr-defined]


def test_a_dropped_stream_is_retried(server: ScriptedOpenAIServer, team: AssistantCatalog) -> None:
    server.script("proxy", reply("never finished sentence", drop_after_chunks=1), "whole answer")
    events = list(stream_events(graph_on(server, team), "x", CONFIG))
    assert [e.type for e in events if e.type in ("retry", "final")] == ["retry", "final"]
    assert events[-1].content == "whole answer"  # type: ignore[attr-defined]


def test_a_timeout_that_persists_ends_the_run_with_the_cause(
    server: ScriptedOpenAIServer, team: AssistantCatalog
) -> None:
    server.script("proxy", *[reply("slow", delay=1.0)] * 3)
    events = list(stream_events(graph_on(server, team, timeout=0.1), "x", CONFIG))
    error = events[-2]
    assert isinstance(error, ErrorEvent) and error.path == ("proxy",)
    assert "Timeout" in error.message
    assert len([e for e in events if isinstance(e, RetryEvent)]) == 2


class _StatusError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_StatusError(429), True),
        (_StatusError(503), True),
        (_StatusError(400), False),
        (_StatusError(401), False),
        (TimeoutError(), True),
        (ConnectionRefusedError(), True),
        (ValueError("bad json"), False),
    ],
)
def test_which_failures_are_transient(error: Exception, transient: bool) -> None:
    from assistant_graph._model_calls import is_transient

    assert is_transient(error) is transient
