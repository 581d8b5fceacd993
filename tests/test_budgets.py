"""Budgets in tokens, money and time, and the cost of every call.

A call of an assistant may spend what its ``budget`` allows and never more than its caller
has left; running out ends it incomplete, with the partial answer and a note saying which
budget ran out, and resuming it continues with a fresh budget. Costs come from the price
table (or the assistant's own price) and are summed per path like tokens.

The important paths go through real ``ChatOpenAI`` calls to the scripted server, which
reports the token usage each test scripts.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from typer.testing import CliRunner

from assistant_graph import (
    AssistantCatalog,
    AssistantConfigError,
    AssistantSchema,
    Budget,
    RetryPolicy,
    astream_events,
    build_assistant_graph,
    read_artifact,
    stream_events,
)
from assistant_graph._summary import SUMMARIZER_INSTRUCTIONS
from assistant_graph.cli import app
from assistant_graph.events import AssistantEvent, FinalEvent, SubAssistantEndEvent
from assistant_graph.testing import (
    ChatRequest,
    ScriptedModels,
    ScriptedOpenAIServer,
    ScriptedReply,
    ScriptedToolCall,
    Usage,
    ai,
    call_sub_assistant,
    call_tool,
    reply,
    route_by_assistant,
    tool_call,
)

from .conftest import AssistantFolder

UID = re.compile(r'resume_conversation_uid="([\w-]+)"')

# List prices in US dollars per million tokens (input, output), as OpenAI publishes them.
GPT_4O_MINI = (0.15, 0.60)
GPT_4O = (2.50, 10.00)


@tool
def jot(text: str) -> str:
    """Write a note down."""
    return f"noted: {text}"


@tool
def slow_jot(text: str) -> str:
    """Write a note down, slowly."""
    time.sleep(1.2)
    return f"noted slowly: {text}"


def sub(assistant: str, message: str, **args: Any) -> ScriptedToolCall:
    return tool_call(f"sub_assistant__{assistant}", message_to_assistant=message, **args)


def resume(assistant: str, message: str) -> Callable[[ChatRequest], ScriptedReply]:
    """A reply that resumes the caller's last conversation with ``assistant``."""

    def answer(request: ChatRequest) -> ScriptedReply:
        uids = UID.findall(" ".join(request.tool_results))
        owned = [uid for uid in uids if uid.startswith(f"{assistant}-")]
        return reply(tool_calls=[sub(assistant, message, resume_conversation_uid=owned[-1])])

    return answer


def cost(usage: tuple[int, int], price: tuple[float, float]) -> float:
    return (usage[0] * price[0] + usage[1] * price[1]) / 1_000_000


@pytest.fixture
def http(
    scripted_openai_server: ScriptedOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> ScriptedOpenAIServer:
    """The scripted server, reached by every ``openai:`` model through the environment.

    ``OPENAI_API_BASE`` (read by langchain-openai itself) rather than the SDK's
    ``OPENAI_BASE_URL``: langchain-openai shares one HTTP client per base URL in the
    process, and a call cut at its deadline leaves a connection in it that belongs to the
    cutting test's event loop; a base URL of each server's own keeps tests apart.
    """
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_API_BASE", scripted_openai_server.url)
    return scripted_openai_server


def team(folder: AssistantFolder, *, lead: Any = None, **worker: Any) -> AssistantCatalog:
    """boss -> lead -> worker; the worker (depth 2) has the ``jot`` tools."""
    folder.add("boss", sub_assistants=["lead"])
    folder.add("lead", callable=True, sub_assistants=["worker"], **(lead or {}))
    folder.add("worker", callable=True, tools=["tests.test_budgets:jot"], **worker)
    return folder.load()


LONG = "mars " * 400
"""Past any summary limit of 200 tokens, however tokens are counted."""


@tool
def long_read() -> str:
    """Read the long report."""
    return f"The report: {LONG}"


def summarizing_team(folder: AssistantFolder, **worker: Any) -> AssistantCatalog:
    """boss -> worker; the worker reads a long report, which makes a summary due."""
    folder.add("boss", sub_assistants=["worker"])
    folder.add(
        "worker",
        callable=True,
        tools=["tests.test_budgets:long_read"],
        summarize_after_tokens=200,
        summary_keep_messages=2,
        **worker,
    )
    return folder.load()


def with_summaries(catalog: AssistantCatalog) -> Callable[[ChatRequest], str]:
    """Route to each assistant's script, and every summary request to ``"summary"``."""
    by_assistant = route_by_assistant(catalog)
    return lambda request: (
        "summary" if request.system_prompt == SUMMARIZER_INSTRUCTIONS else by_assistant(request)
    )


def events_and_state(
    catalog: AssistantCatalog, message: str, mode: str = "sync"
) -> tuple[list[AssistantEvent], dict[str, Any]]:
    """Run the boss on ``message`` (``mode``: sync or async): its events and the thread's
    state afterwards."""
    graph = build_assistant_graph("boss", catalog, checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": "summaries"}}
    if mode == "sync":
        events = list(stream_events(graph, message, config))
    else:

        async def collect() -> list[AssistantEvent]:
            return [event async for event in astream_events(graph, message, config)]

        events = asyncio.run(collect())
    return events, dict(graph.get_state(config).values)


def tool_messages(messages: Sequence[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def lead_conversation(state: Mapping[str, Any]) -> list[BaseMessage]:
    [lead] = [s for s in state["sub_assistant_states"].values() if s["assistant"] == "lead"]
    messages: list[BaseMessage] = lead["messages"]
    return messages


def worker_result(state: Mapping[str, Any]) -> ToolMessage:
    """The lead's last tool result from the worker."""
    return tool_messages(lead_conversation(state))[-1]


def ends(events: Sequence[AssistantEvent], assistant: str) -> list[SubAssistantEndEvent]:
    return [e for e in events if isinstance(e, SubAssistantEndEvent) and e.assistant == assistant]


def run_twice_through_the_worker(
    http: ScriptedOpenAIServer, catalog: AssistantCatalog, *worker_first_turn: Any
) -> tuple[list[AssistantEvent], dict[str, Any], dict[str, Any]]:
    """Turn 1: boss -> lead -> worker, whose replies are ``worker_first_turn``; turn 2: the
    boss resumes the lead, which resumes the worker, which finishes.

    Returns the first turn's events and the state after each turn.
    """
    http.router = route_by_assistant(catalog)
    http.script("boss", reply(tool_calls=[sub("lead", "Find A and B.")]), "Partly done.")
    http.script("lead", reply(tool_calls=[sub("worker", "Find A and B.")]), "Worker stopped.")
    http.script("worker", *worker_first_turn)
    graph = build_assistant_graph("boss", catalog, checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": "budget"}}
    events = list(stream_events(graph, "Find A and B.", config))
    first = dict(graph.get_state(config).values)
    http.script("boss", resume("lead", "Go on."), "All done.")
    http.script("lead", resume("worker", "Go on."), "Worker finished.")
    http.script(
        "worker",
        reply("Found B.", tool_calls=[tool_call("jot", text="B")], usage=Usage(100, 10)),
        reply("Done: A and B.", usage=Usage(100, 10)),
    )
    graph.invoke({"messages": [("user", "Go on.")]}, config)
    return events, first, dict(graph.get_state(config).values)


def assert_stopped_then_resumed(
    events: Sequence[AssistantEvent],
    first: Mapping[str, Any],
    second: Mapping[str, Any],
    *,
    stop: Mapping[str, Any],
    note: str,
    partial: str,
) -> None:
    """The worker stopped incomplete on ``stop`` with ``partial`` and ``note`` for the lead,
    every tool call answered; resumed, it finished on a fresh budget."""
    result = worker_result(first)
    artifact = read_artifact(result)
    assert artifact is not None
    assert artifact["returning_incomplete"] is True
    assert artifact["budget_exhausted"] == stop
    content = str(result.content)
    assert content.startswith(partial)
    assert note in content
    [end] = ends(events, "worker")
    assert end.returning_incomplete and end.budget_exhausted == stop
    conversation = artifact["response_messages"]
    asked = [c["id"] for m in conversation if isinstance(m, AIMessage) for c in m.tool_calls]
    assert sorted(asked, key=str) == sorted(m.tool_call_id for m in tool_messages(conversation))
    resumed = read_artifact(worker_result(second))
    assert resumed is not None and resumed["returning_incomplete"] is False
    assert resumed["subgraph_uid"] == artifact["subgraph_uid"]
    assert str(worker_result(second).content).startswith("Done: A and B.")


class TestEachBudgetRunsOutAtDepthTwo:
    def test_tokens(self, folder: AssistantFolder, http: ScriptedOpenAIServer) -> None:
        catalog = team(folder, budget={"max_tokens": 250})
        events, first, second = run_twice_through_the_worker(
            http,
            catalog,
            reply(tool_calls=[tool_call("jot", text="A")], usage=Usage(100, 20)),
            reply("Found A.", tool_calls=[tool_call("jot", text="B")], usage=Usage(150, 10)),
        )
        assert_stopped_then_resumed(
            events,
            first,
            second,
            stop={"kind": "tokens", "limit": 250, "used": 280},
            partial="Found A.",
            note="[INCOMPLETE] worker stopped before finishing: it used 280 tokens of the 250 "
            "it was allowed.",
        )
        # The tool call the worker asked for with its last tokens was answered, not run.
        [_, not_run] = tool_messages(read_artifact(worker_result(first))["response_messages"])  # type: ignore[index]
        assert not_run.status == "error"
        assert str(not_run.content).startswith("Not run: the token budget of this run")

    def test_cost(self, folder: AssistantFolder, http: ScriptedOpenAIServer) -> None:
        catalog = team(folder, budget={"max_cost_usd": 0.001})
        spent = cost((4000, 1000), GPT_4O_MINI)  # $0.0012
        events, first, second = run_twice_through_the_worker(
            http,
            catalog,
            reply("Found A.", tool_calls=[tool_call("jot", text="A")], usage=Usage(4000, 1000)),
        )
        assert_stopped_then_resumed(
            events,
            first,
            second,
            stop={"kind": "cost", "limit": 0.001, "used": pytest.approx(spent)},
            partial="Found A.",
            note="it used $0.0012 of the $0.0010 it was allowed.",
        )

    @pytest.mark.parametrize("mode", ["sync", "async"])
    def test_time_cuts_a_model_call_at_the_deadline_without_a_retry(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer, mode: str
    ) -> None:
        catalog = team(folder, budget={"max_seconds": 1})
        http.router = route_by_assistant(catalog)
        http.script("boss", reply(tool_calls=[sub("lead", "Find A.")]), "Partly done.")
        http.script("lead", reply(tool_calls=[sub("worker", "Find A.")]), "Worker stopped.")
        http.script(
            "worker",
            reply("Found A.", tool_calls=[tool_call("jot", text="A")]),
            reply("Too late.", delay=4),
        )
        graph = build_assistant_graph("boss", catalog)
        started = time.monotonic()
        if mode == "sync":
            state = graph.invoke({"messages": [("user", "Find A.")]})
        else:
            state = asyncio.run(graph.ainvoke({"messages": [("user", "Find A.")]}))
        elapsed = time.monotonic() - started

        assert elapsed < 3.5  # the 4-second call was cut at the worker's 1-second deadline
        assert len(http.requests_for("worker")) == 2  # and not retried
        artifact = read_artifact(worker_result(state))
        assert artifact is not None and artifact["returning_incomplete"]
        stop = artifact["budget_exhausted"]
        assert stop is not None and stop["kind"] == "time" and stop["limit"] == pytest.approx(1)
        content = str(worker_result(state).content)
        assert content.startswith("Found A.")
        assert re.search(r"it used \d s of the 1 s it was allowed", content)

    def test_time_is_checked_before_the_next_model_call(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        folder.add("boss", sub_assistants=["worker"])
        folder.add(
            "worker",
            callable=True,
            tools=["tests.test_budgets:slow_jot"],
            budget={"max_seconds": 1},
        )
        catalog = folder.load()
        http.router = route_by_assistant(catalog)
        http.script("boss", reply(tool_calls=[sub("worker", "Note A.")]), "Stopped.")
        http.script("worker", reply("Noting A.", tool_calls=[tool_call("slow_jot", text="A")]))

        state = build_assistant_graph("boss", catalog).invoke({"messages": [("user", "Go.")]})

        assert len(http.requests_for("worker")) == 1  # no model call after the deadline
        [result] = tool_messages(state["messages"])
        artifact = read_artifact(result)
        assert artifact is not None and artifact["budget_exhausted"]["kind"] == "time"  # type: ignore[index]
        assert str(result.content).startswith("Noting A.")

    def test_a_retry_never_waits_past_the_deadline(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        folder.add("solo", budget={"max_seconds": 1})
        catalog = folder.load()
        http.router = route_by_assistant(catalog)
        http.script("solo", reply(status=503), "Too late.")
        graph = build_assistant_graph("solo", catalog, retry=RetryPolicy(initial_delay=6, jitter=0))
        started = time.monotonic()

        events = list(stream_events(graph, "Hi."))

        assert time.monotonic() - started < 3.5  # not the 6-second backoff
        assert [e.type for e in events if e.type in ("retry", "error")] == ["retry"]
        final = events[-1]
        assert isinstance(final, FinalEvent) and final.status == "incomplete"
        assert final.budget_exhausted is not None and final.budget_exhausted["kind"] == "time"
        assert len(http.requests) == 1

    def test_a_reply_that_comes_after_the_deadline_runs_none_of_its_tool_calls(
        self, folder: AssistantFolder
    ) -> None:
        # A scripted model has no request timeout, like a client without one: its call
        # is not cut, but its tool calls are not started past the deadline.
        folder.add("boss", sub_assistants=["worker"])
        folder.add("worker", callable=True, tools=["tests.test_budgets:jot"])
        catalog = folder.load()
        models = ScriptedModels(
            {
                "boss": [ai(tool_calls=[call_sub_assistant("worker", "A?")]), "Stopped."],
                "worker": [ai("Noting A.", tool_calls=[call_tool("jot", text="A")])],
            },
            latency=1.2,
        )
        graph = build_assistant_graph("boss", catalog, model=models)
        config: RunnableConfig = {"configurable": {"budget": {"max_seconds": 2}}}

        state = graph.invoke({"messages": [("user", "Go.")]}, config)

        [result] = tool_messages(state["messages"])
        artifact = read_artifact(result)
        assert artifact is not None
        assert artifact["budget_exhausted"]["kind"] == "time"  # type: ignore[index]
        not_run = tool_messages(artifact["response_messages"])
        assert [str(m.content)[:33] for m in not_run] == ["Not run: the time budget of this "]


class TestSummariesAreSpending:
    """A summary (``summarize_after_tokens``) is a model call like any other: it counts
    toward its run's budgets and its caller's usage, and is not made on a spent budget."""

    def test_a_summary_counts_toward_the_token_budget_and_the_callers_usage(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        catalog = summarizing_team(folder, budget={"max_tokens": 1000})
        http.router = with_summaries(catalog)
        http.script("boss", reply(tool_calls=[sub("worker", "Read it.")]), "Stopped.")
        http.script(
            "worker", reply(tool_calls=[tool_call("long_read")], usage=Usage(100, 10)), "Never."
        )
        http.script("summary", reply("It was long.", usage=Usage(900, 50)))

        events, state = events_and_state(catalog, "Go.")

        assert len(http.requests_for("summary")) == 1
        assert len(http.requests_for("worker")) == 1  # 110 + 950 >= 1000: no second call
        [result] = tool_messages(state["messages"])
        artifact = read_artifact(result)
        assert artifact is not None
        assert artifact["budget_exhausted"] == {"kind": "tokens", "limit": 1000, "used": 1060}
        assert artifact["usage"]["total"]["total_tokens"] == 1060
        [end] = ends(events, "worker")
        final = events[-1]
        assert isinstance(final, FinalEvent) and end.usage is not None
        assert end.usage["total"] == final.usage["by_path"]["boss>worker"]

    @pytest.mark.parametrize("mode", ["sync", "async"])
    def test_a_summary_cut_at_the_deadline_ends_the_run_incomplete_not_failed(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer, mode: str
    ) -> None:
        catalog = summarizing_team(folder, budget={"max_seconds": 1})
        http.router = with_summaries(catalog)
        http.script("boss", reply(tool_calls=[sub("worker", "Read it.")]), "Stopped.")
        http.script("worker", reply("Reading.", tool_calls=[tool_call("long_read")]), "Never.")
        http.script("summary", reply("Too late.", delay=4))
        started = time.monotonic()

        events, _ = events_and_state(catalog, "Go.", mode)

        assert time.monotonic() - started < 3.5
        final = events[-1]
        assert isinstance(final, FinalEvent) and final.status == "completed"
        assert not [e for e in events if e.type == "error"]
        [end] = ends(events, "worker")
        assert end.returning_incomplete
        assert end.budget_exhausted is not None and end.budget_exhausted["kind"] == "time"
        assert len(http.requests_for("worker")) == 1

    def test_each_turn_starts_with_nothing_spent_on_summaries(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        folder.add(
            "solo",
            tools=["tests.test_budgets:long_read"],
            budget={"max_tokens": 1000},
            summarize_after_tokens=200,
            summary_keep_messages=2,
        )
        catalog = folder.load()
        http.router = with_summaries(catalog)
        http.script(
            "solo",
            reply(tool_calls=[tool_call("long_read")], usage=Usage(100, 10)),
            reply("Read.", usage=Usage(100, 10)),
            reply(tool_calls=[tool_call("long_read")], usage=Usage(100, 10)),
            reply("Read again.", usage=Usage(100, 10)),
        )
        http.script(
            "summary",
            reply("Long.", usage=Usage(500, 50)),  # turn 1, after the tool's result
            reply("Still long.", usage=Usage(250, 50)),  # turn 2, at its start
            reply("Long twice.", usage=Usage(250, 50)),  # and after the tool's result
        )
        graph = build_assistant_graph("solo", catalog, checkpointer=InMemorySaver())
        config: RunnableConfig = {"configurable": {"thread_id": "turns"}}

        first = list(stream_events(graph, "Read it.", config))[-1]
        second = list(stream_events(graph, "Read it again.", config))[-1]

        # Turn 1: 220 in the model's calls and 550 in a summary; turn 2: 220 and 2 x 300.
        # Each is under the 1000, and would not be if turn 2 still counted turn 1's summary.
        assert len(http.requests_for("summary")) == 3
        assert isinstance(first, FinalEvent) and isinstance(second, FinalEvent)
        assert (first.status, second.status) == ("completed", "completed")
        assert first.usage["total"]["total_tokens"] == 770
        assert second.usage["total"]["total_tokens"] == 820
        assert second.content == "Read again."

    def test_no_summary_is_made_on_a_spent_budget(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        # The lead's budget is spent by its worker's call, whose long answer would make
        # a summary due before the lead's next model call.
        folder.add("boss", sub_assistants=["lead"])
        folder.add(
            "lead",
            callable=True,
            sub_assistants=["worker"],
            budget={"max_tokens": 500},
            summarize_after_tokens=200,
            summary_keep_messages=2,
        )
        folder.add("worker", callable=True)
        catalog = folder.load()
        http.router = with_summaries(catalog)
        http.script("boss", reply(tool_calls=[sub("lead", "Ask.")]), "Stopped.")
        http.script(
            "lead", reply(tool_calls=[sub("worker", "Tell it all.")], usage=Usage(50, 5)), "Never."
        )
        http.script("worker", reply(LONG, usage=Usage(600, 10)))
        http.script("summary", reply("Should not be asked."))

        events, _ = events_and_state(catalog, "Go.")

        assert http.requests_for("summary") == []
        assert len(http.requests_for("lead")) == 1
        [end] = ends(events, "lead")
        assert end.budget_exhausted == {"kind": "tokens", "limit": 500, "used": 665}


class TestACallerCapsItsCallee:
    def test_the_callee_gets_what_the_caller_has_left_and_the_caller_counts_what_it_spent(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        catalog = team(folder, lead={"budget": {"max_tokens": 300}}, budget={"max_tokens": 9999})
        http.router = route_by_assistant(catalog)
        http.script("boss", reply(tool_calls=[sub("lead", "Find A.")]), "Stopped.")
        http.script("lead", reply(tool_calls=[sub("worker", "Find A.")], usage=Usage(200, 50)))
        http.script(
            "worker",
            reply("Found A.", tool_calls=[tool_call("jot", text="A")], usage=Usage(40, 20)),
        )

        state = build_assistant_graph("boss", catalog).invoke({"messages": [("user", "Go.")]})

        from_worker = read_artifact(worker_result(state))
        assert from_worker is not None
        assert from_worker["budget_exhausted"] == {"kind": "tokens", "limit": 50, "used": 60}
        # The lead's 250 tokens plus the worker's 60 used up the lead's 300: it stops
        # without another model call, and its caller is told so.
        assert len(http.requests_for("lead")) == 1
        [from_lead] = tool_messages(state["messages"])
        lead_artifact = read_artifact(from_lead)
        assert lead_artifact is not None
        assert lead_artifact["budget_exhausted"] == {"kind": "tokens", "limit": 300, "used": 310}
        assert "it used 310 tokens of the 300 it was allowed" in str(from_lead.content)

    def test_limits_given_with_a_later_turns_input_fix_that_turns_budget(
        self, folder: AssistantFolder
    ) -> None:
        # ``limits`` is what a caller passes a sub-assistant's run; given to a root thread's
        # later turn, it still starts a new run with those limits, not the last turn's.
        folder.add("solo")
        models = ScriptedModels({"solo": ["One.", "Two."]})
        graph = build_assistant_graph(
            "solo", folder.load(), model=models, checkpointer=InMemorySaver()
        )
        config: RunnableConfig = {"configurable": {"thread_id": "limits"}}
        graph.invoke({"messages": [("user", "First.")]}, config)

        state = graph.invoke(
            {"messages": [("user", "Second.")], "limits": {"max_steps": 1, "max_tokens": 99}},
            config,
        )

        assert state["budget"]["max_steps"] == 1 and state["budget"]["max_tokens"] == 99
        assert state["budget"]["first_message"] == 3  # this turn's, after "First." and "One."
        assert state["limits"] is None

    def test_run_wide_limits_cap_the_root_from_the_config(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        catalog = team(folder)
        http.router = route_by_assistant(catalog)
        http.script("boss", reply("Asking.", tool_calls=[sub("lead", "A?")], usage=Usage(80, 40)))
        graph = build_assistant_graph("boss", catalog, checkpointer=InMemorySaver())
        config: RunnableConfig = {
            "configurable": {"thread_id": "wide", "budget": {"max_tokens": 100}}
        }

        events = list(stream_events(graph, "A?", config))

        final = events[-1]
        assert isinstance(final, FinalEvent) and final.status == "incomplete"
        assert final.budget_exhausted == {"kind": "tokens", "limit": 100, "used": 120}
        assert http.requests_for("lead") == []
        last = graph.get_state(config).values["messages"][-1]
        assert last.content.startswith("I could not finish: I used 120 tokens of the 100")

    def test_a_bad_run_wide_limit_is_an_error_naming_the_key(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        graph = build_assistant_graph("boss", team(folder))
        config: RunnableConfig = {"configurable": {"budget": {"max_tokens": -5, "max_cents": 1}}}

        with pytest.raises(ValueError, match=r"configurable\"\]\[\"budget\"\] is not valid") as e:
            graph.invoke({"messages": [("user", "Hi.")]}, config)

        assert "max_tokens: Input should be greater than or equal to 1" in str(e.value)
        assert "max_cents: Extra inputs are not permitted" in str(e.value)
        assert http.requests == []


def unpriced_worker(folder: AssistantFolder, http: ScriptedOpenAIServer) -> AssistantCatalog:
    """boss (gpt-4o-mini, 2 calls of 1000 + 100 tokens) -> worker on a model the price table
    does not know (1 call of 500 + 50 tokens)."""
    folder.add("boss", sub_assistants=["worker"])
    folder.add("worker", callable=True, model="openai:house-model")
    catalog = folder.load()
    http.router = route_by_assistant(catalog)
    http.script(
        "boss",
        reply(tool_calls=[sub("worker", "A?")], usage=Usage(1000, 100)),
        reply("A.", usage=Usage(1000, 100)),
    )
    http.script("worker", reply("A.", usage=Usage(500, 50)))
    return catalog


class TestCost:
    def test_costs_are_summed_per_path_as_computed_by_hand(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        folder.add("boss", sub_assistants=["lead"])  # gpt-4o-mini
        folder.add("lead", callable=True, sub_assistants=["worker"], model="openai:gpt-4o")
        folder.add(
            "worker",
            callable=True,
            model="openai:house-model",
            model_settings={
                "temperature": 0,
                "price": {"input_per_million_tokens": 1, "output_per_million_tokens": 3},
            },
        )
        catalog = folder.load()
        http.router = route_by_assistant(catalog)
        http.script(
            "boss",
            reply(tool_calls=[sub("lead", "A?")], usage=Usage(1000, 100)),
            reply("A.", usage=Usage(2000, 200)),
        )
        http.script(
            "lead",
            reply(tool_calls=[sub("worker", "A?")], usage=Usage(500, 50)),
            reply("A.", usage=Usage(700, 30)),
        )
        http.script("worker", reply("A.", usage=Usage(10_000, 1_000)))
        graph = build_assistant_graph("boss", catalog, checkpointer=InMemorySaver())

        events = list(stream_events(graph, "A?", {"configurable": {"thread_id": "cost"}}))

        boss = cost((1000, 100), GPT_4O_MINI) + cost((2000, 200), GPT_4O_MINI)
        lead = cost((500, 50), GPT_4O) + cost((700, 30), GPT_4O)
        worker = (10_000 * 1 + 1_000 * 3) / 1_000_000
        final = events[-1]
        assert isinstance(final, FinalEvent)
        by_path = {path: usage["cost_usd"] for path, usage in final.usage["by_path"].items()}
        assert by_path == {
            "boss": pytest.approx(boss),
            "boss>lead": pytest.approx(lead),
            "boss>lead>worker": pytest.approx(worker),
        }
        assert final.usage["total"]["cost_usd"] == pytest.approx(boss + lead + worker)
        [lead_end] = ends(events, "lead")
        assert lead_end.usage is not None
        assert lead_end.usage["total"]["cost_usd"] == pytest.approx(lead + worker)
        assert all("price" not in request.raw for request in http.requests)

    def test_a_model_with_no_known_price_has_an_unknown_cost_not_zero(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        graph = build_assistant_graph(
            "boss", unpriced_worker(folder, http), checkpointer=InMemorySaver()
        )

        events = list(stream_events(graph, "A?", {"configurable": {"thread_id": "unknown"}}))

        final = events[-1]
        assert isinstance(final, FinalEvent)
        worker = final.usage["by_path"]["boss>worker"]
        assert (worker["total_tokens"], worker["cost_usd"]) == (550, None)
        assert final.usage["total"]["total_tokens"] == 2750
        assert final.usage["total"]["cost_usd"] is None
        assert final.usage["total"]["priced_cost_usd"] == pytest.approx(
            2 * cost((1000, 100), GPT_4O_MINI)
        )
        assert final.usage["by_path"]["boss"]["cost_usd"] == pytest.approx(
            2 * cost((1000, 100), GPT_4O_MINI)
        )

    def test_the_cli_prints_cost_next_to_tokens(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        unpriced_worker(folder, http)

        result = CliRunner().invoke(
            app, ["run", "boss", "A?", "--assistants", str(folder.path), "--db", ":memory:"]
        )

        assert result.exit_code == 0, result.output
        lines = result.stderr.splitlines()
        table = lines[lines.index(next(line for line in lines if line.startswith("tokens"))) :]
        assert table[0].split() == ["tokens", "input", "output", "total", "cost"]
        assert table[1].split() == ["boss", "2000", "200", "2200", "$0.000420"]
        assert table[2].split() == ["worker", "500", "50", "550", "cost", "unknown"]
        assert table[3].split() == ["total", "2500", "250", "2750", "cost", "unknown"]
        assert "✓ done (550 tokens, cost unknown, uid worker-" in result.stderr


class TestCliLimits:
    def test_max_tokens_stops_the_run_incomplete_and_says_so(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        catalog = team(folder)
        http.router = route_by_assistant(catalog)
        http.script("boss", reply("Asking.", tool_calls=[sub("lead", "A?")], usage=Usage(80, 40)))

        result = CliRunner().invoke(
            app,
            [
                "run",
                "boss",
                "A?",
                "--assistants",
                str(folder.path),
                "--max-tokens=100",
                "--db=:memory:",
            ],
        )

        assert result.exit_code == 0, result.output
        assert "I could not finish: I used 120 tokens of the 100 this run allowed." in (
            result.stdout
        )
        assert "boss stopped before finishing (it used 120 tokens of the 100 it was allowed)" in (
            result.stderr
        )

    @pytest.mark.parametrize(
        ("flags", "message"),
        [
            (["--max-cost", "0"], "--max-cost must be more than 0, got 0"),
            (["--max-seconds", "-1"], "--max-seconds must be more than 0, got -1"),
            (["--max-tokens", "0"], "'--max-tokens'"),
        ],
    )
    def test_a_limit_that_is_not_positive_is_refused(
        self, folder: AssistantFolder, flags: list[str], message: str
    ) -> None:
        team(folder)
        result = CliRunner().invoke(
            app, ["run", "boss", "A?", "--assistants", str(folder.path), *flags]
        )
        assert result.exit_code == 2
        assert message in result.stderr


class TestBudgetInYaml:
    @pytest.mark.parametrize(
        ("budget", "field", "problem"),
        [
            ({"max_tokens": 0}, "budget.max_tokens", "greater than or equal to 1"),
            ({"max_cost_usd": -1}, "budget.max_cost_usd", "greater than 0"),
            ({"max_seconds": "soon"}, "budget.max_seconds", "valid number"),
            ({"max_cost": 1}, "budget.max_cost", "did you mean 'max_cost_usd'?); budget (in"),
            ({"max_steps": 0}, "budget.max_steps", "greater than or equal to 1"),
            ("lots", "budget", "valid dictionary"),
        ],
    )
    def test_a_bad_budget_is_an_error_naming_file_and_field(
        self, folder: AssistantFolder, budget: Any, field: str, problem: str
    ) -> None:
        folder.add("helper", budget=budget)
        with pytest.raises(AssistantConfigError) as error:
            folder.load()
        [found] = error.value.problems
        assert found.file.endswith("helper.yaml")
        assert found.field == field
        assert problem in found.message

    def test_a_bad_price_is_an_error_naming_the_settings(self, folder: AssistantFolder) -> None:
        folder.add("helper", model_settings={"price": {"input_per_million_tokens": -1}})
        with pytest.raises(AssistantConfigError) as error:
            folder.load()
        [found] = error.value.problems
        assert found.field == "model_settings"
        assert found.message == (
            "Value error, price is not valid: input_per_million_tokens: Input should be greater "
            "than or equal to 0; output_per_million_tokens: Field required"
        )

    def test_the_old_top_level_max_steps_still_works_with_a_deprecation_warning(
        self, folder: AssistantFolder
    ) -> None:
        path = folder.add("helper", max_steps=3)
        with pytest.warns(FutureWarning, match="top-level max_steps is deprecated") as warned:
            catalog = folder.load()
        assert str(path) in str(warned[0].message)
        assert catalog["helper"].budget.max_steps == 3

    def test_max_steps_given_twice_is_an_error(self, folder: AssistantFolder) -> None:
        folder.add("helper", max_steps=3, budget={"max_steps": 4})
        with pytest.raises(AssistantConfigError, match="given both at the top level"):
            folder.load()

    def test_unset_limits_do_not_limit_and_steps_default_to_ten(self) -> None:
        schema = AssistantSchema(name="helper", description="Helps.", instructions="Help.")
        assert schema.budget == Budget(max_steps=10)
        assert json.loads(Budget(max_tokens=5).model_dump_json(exclude_none=True)) == {
            "max_tokens": 5
        }


async def test_async_runs_share_the_budget_rules(
    folder: AssistantFolder, http: ScriptedOpenAIServer
) -> None:
    catalog = team(folder, budget={"max_tokens": 50})
    http.router = route_by_assistant(catalog)
    http.script("boss", reply(tool_calls=[sub("lead", "A?")]), "Stopped.")
    http.script("lead", reply(tool_calls=[sub("worker", "A?")]), "Stopped.")
    http.script(
        "worker", reply("Found A.", tool_calls=[tool_call("jot", text="A")], usage=Usage(40, 20))
    )
    graph = build_assistant_graph("boss", catalog, checkpointer=InMemorySaver())

    events = [e async for e in astream_events(graph, "A?", {"configurable": {"thread_id": "a"}})]

    [end] = ends(events, "worker")
    assert end.budget_exhausted == {"kind": "tokens", "limit": 50, "used": 60}
