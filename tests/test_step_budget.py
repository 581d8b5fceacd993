"""Step budgets: runs stop incomplete, never with GraphRecursionError, and can be resumed."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver

from assistant_graph import AssistantCatalog, build_assistant_graph, read_artifact
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant, call_tool

CONFIG: RunnableConfig = {"configurable": {"thread_id": "budget"}}


def catalog(proxy_steps: int = 8, researcher_steps: int = 6, calculator_steps: int = 2) -> Any:
    return AssistantCatalog.from_schemas(
        [
            {
                "name": "proxy",
                "description": "d",
                "instructions": "i",
                "sub_assistants": ["researcher"],
                "budget": {"max_steps": proxy_steps},
            },
            {
                "name": "researcher",
                "description": "d",
                "instructions": "i",
                "callable": True,
                "sub_assistants": ["calculator"],
                "budget": {"max_steps": researcher_steps},
            },
            {
                "name": "calculator",
                "description": "d",
                "instructions": "i",
                "callable": True,
                "tools": ["tests.test_step_budget:noop"],
                "budget": {"max_steps": calculator_steps},
            },
        ]
    )


def noop() -> str:
    """Do nothing."""
    return "nothing done"


def assert_every_tool_call_answered(messages: list[BaseMessage]) -> None:
    asked = [c["id"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    answered = [m.tool_call_id for m in messages if isinstance(m, ToolMessage)]
    # key=str: a ToolCall's id is typed str | None; a None would still fail the comparison.
    assert sorted(asked, key=str) == sorted(answered)


def last_uid(call: ModelCall) -> str:
    results = [m for m in call.messages if isinstance(m, ToolMessage)]
    artifact = read_artifact(results[-1])
    assert artifact is not None
    return artifact["subgraph_uid"]


def test_a_root_that_runs_out_of_steps_ends_with_an_incomplete_message() -> None:
    team = catalog(proxy_steps=30)
    looping = [lambda _: ai(tool_calls=[call_sub_assistant("researcher", "again")])] * 30
    models = ScriptedModels({"proxy": looping, "researcher": ["ok"] * 30})
    result = build_assistant_graph("proxy", team, model=models).invoke(
        {"messages": [HumanMessage("loop")]}
    )
    assert len(models.calls("proxy")) == 30  # more supersteps than LangGraph's default limit
    assert result["incomplete"] is True
    assert result["messages"][-1].content.startswith("I could not finish: I used all 30")
    assert result["messages"][-2].content.startswith("Not run: the step budget")
    assert_every_tool_call_answered(result["messages"])


def test_budget_exhaustion_at_depth_two_returns_incomplete_then_resume_completes() -> None:
    team = catalog(calculator_steps=2)
    models = ScriptedModels(
        {
            "proxy": [ai(tool_calls=[call_sub_assistant("researcher", "compute")]), "partial"],
            "researcher": [
                ai(tool_calls=[call_sub_assistant("calculator", "2+2")]),
                lambda call: ai(
                    tool_calls=[
                        call_sub_assistant(
                            "calculator", "continue", resume_conversation_uid=last_uid(call)
                        )
                    ]
                ),
                "It is 4.",
            ],
            "calculator": [
                ai("Working on it.", tool_calls=[call_tool("noop")]),
                ai(tool_calls=[call_tool("noop")]),
                "4",
            ],
        }
    )
    result = build_assistant_graph("proxy", team, model=models).invoke(
        {"messages": [HumanMessage("2+2?")]}
    )

    first_calc_result = [
        m for m in models.calls("researcher")[1].messages if isinstance(m, ToolMessage)
    ][-1]
    artifact = read_artifact(first_calc_result)
    assert artifact is not None
    assert artifact["returning_incomplete"] is True
    assert isinstance(first_calc_result.content, str)
    assert first_calc_result.content.startswith("Working on it.\n\n[INCOMPLETE] calculator")
    assert f'resume_conversation_uid="{artifact["subgraph_uid"]}"' in first_calc_result.content
    researcher_state = next(iter(result["sub_assistant_states"].values()))
    calc_state = researcher_state["sub_assistant_states"][artifact["subgraph_uid"]]
    assert_every_tool_call_answered(calc_state["messages"])

    resumed = models.calls("calculator")[2]
    assert [type(m).__name__ for m in resumed.messages[1:]] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
        "HumanMessage",
    ]
    assert resumed.last_message.content == "continue"
    final_researcher = read_artifact(
        next(m for m in result["messages"] if isinstance(m, ToolMessage))
    )
    assert final_researcher is not None
    assert final_researcher["returning_incomplete"] is False
    assert calc_state["incomplete"] is False
    assert calc_state["messages"][-1].content == "4"


def test_a_sub_assistant_gets_no_more_model_calls_than_its_caller_has_left() -> None:
    team = catalog(proxy_steps=2, researcher_steps=6)
    models = ScriptedModels(
        {
            "proxy": [ai(tool_calls=[call_sub_assistant("researcher", "dig")]), "done"],
            "researcher": [
                lambda _: ai("Digging.", tool_calls=[call_sub_assistant("calculator", "x")])
            ]
            * 6,
        }
    )
    result = build_assistant_graph("proxy", team, model=models).invoke(
        {"messages": [HumanMessage("go")]}
    )
    assert len(models.calls("researcher")) == 1
    assert models.calls("calculator") == []
    artifact = read_artifact(next(m for m in result["messages"] if isinstance(m, ToolMessage)))
    assert artifact is not None and artifact["returning_incomplete"] is True


def test_each_turn_of_a_thread_gets_a_fresh_budget() -> None:
    team = catalog(proxy_steps=2)
    models = ScriptedModels({"proxy": ["one", "two", "three"]})
    graph = build_assistant_graph("proxy", team, model=models, checkpointer=InMemorySaver())
    for text in ("a", "b", "c"):
        result = graph.invoke({"messages": [HumanMessage(text)]}, CONFIG)
        assert result["steps_remaining"] == 1
        assert result["incomplete"] is False
    assert [m.content for m in result["messages"]] == ["a", "one", "b", "two", "c", "three"]


def digging_researcher() -> list[Any]:
    return [lambda _: ai("Digging.", tool_calls=[call_sub_assistant("calculator", "x")])] * 6


@pytest.mark.parametrize(
    ("proxy_steps", "budget"),
    [(2, "the one model call"), (4, "all 3 model calls"), (8, "all 6 model calls")],
)
def test_incomplete_notes_state_the_budget_the_call_had(proxy_steps: int, budget: str) -> None:
    team = catalog(proxy_steps=proxy_steps, researcher_steps=6, calculator_steps=1)
    models = ScriptedModels(
        {
            "proxy": [ai(tool_calls=[call_sub_assistant("researcher", "dig")]), "done"],
            "researcher": digging_researcher(),
            "calculator": ["1"] * 6,
        }
    )
    result = build_assistant_graph("proxy", team, model=models).invoke(
        {"messages": [HumanMessage("go")]}
    )
    # The proxy spent one call before calling; the researcher gets at most what is left.
    assert len(models.calls("researcher")) == min(6, proxy_steps - 1)
    result_message = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert f"[INCOMPLETE] researcher stopped before finishing: it used {budget} it was" in (
        result_message.content
    )
    [researcher_state] = result["sub_assistant_states"].values()
    assert researcher_state["messages"][-1].content.startswith(
        f"I could not finish: I used {budget} this run allowed."
    )
