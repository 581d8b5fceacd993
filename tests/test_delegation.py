"""Assistants calling assistants: delegation, artifacts, nesting, parallel calls, resuming."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from assistant_graph import AssistantCatalog, build_assistant_graph, read_artifact
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant, call_tool


def thread(name: str = "t") -> RunnableConfig:
    return {"configurable": {"thread_id": name}}


def tool_messages(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def uid_in(call: ModelCall) -> str:
    """The conversation uid of the last sub-assistant result the model has seen."""
    result = tool_messages(call.messages)[-1]
    artifact = read_artifact(result)
    assert artifact is not None
    return artifact["subgraph_uid"]


def resuming(assistant: str, message: str) -> Callable[[ModelCall], AIMessage]:
    """A scripted reply that sends ``message`` on in the last conversation the model saw."""
    return lambda call: ai(
        tool_calls=[call_sub_assistant(assistant, message, resume_conversation_uid=uid_in(call))]
    )


def test_a_delegated_answer_comes_back_as_content_and_artifact(team: AssistantCatalog) -> None:
    models = ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_sub_assistant("writer", "Say hello.", id="w1")]),
                "The writer says hello.",
            ],
            "writer": ["Hello!"],
        }
    )
    graph = build_assistant_graph("proxy", team, model=models)
    result = graph.invoke({"messages": [HumanMessage("Greet me.")]})

    [writer_call] = models.calls("writer")
    assert [type(m).__name__ for m in writer_call.messages] == ["SystemMessage", "HumanMessage"]
    assert writer_call.messages[0].content == team["writer"].instructions
    assert writer_call.last_message.content == "Say hello."
    assert writer_call.tools == ["word_count"]

    [answer] = tool_messages(result["messages"])
    artifact = read_artifact(answer)
    assert artifact is not None
    uid = artifact["subgraph_uid"]
    assert answer.name == "sub_assistant__writer" and answer.tool_call_id == "w1"
    assert isinstance(answer.content, str)
    assert answer.content.startswith("Hello!\n\n")
    assert f'resume_conversation_uid="{uid}"' in answer.content
    assert artifact["input"] == "Say hello."
    assert [m.content for m in artifact["response_messages"]] == ["Hello!"]
    assert artifact["returning_incomplete"] is False
    assert artifact["assistant"] == "writer"
    state_data = result["sub_assistant_states"][uid]
    assert state_data["assistant"] == "writer"
    assert [m.content for m in state_data["messages"]] == ["Say hello.", "Hello!"]
    # the thread stores the sub-conversation once, in sub_assistant_states, not in the message
    assert artifact["sub_assistant_state_data"] is None
    assert result["messages"][-1].content == "The writer says hello."
    assert models.calls("proxy")[1].tools == ["sub_assistant__researcher", "sub_assistant__writer"]


def test_delegation_nests_three_levels_deep(team: AssistantCatalog) -> None:
    models = ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_sub_assistant("researcher", "Diameter of Mars?")]),
                "6779 km.",
            ],
            "researcher": [
                ai(tool_calls=[call_tool("lookup_fact", topic="mars")]),
                ai(tool_calls=[call_sub_assistant("calculator", "2*3389.5", pass_contexts=[])]),
                "The diameter of Mars is 6779 km.",
            ],
            "calculator": [ai(tool_calls=[call_tool("calculate", expression="2*3389.5")]), "6779"],
        }
    )
    graph = build_assistant_graph("proxy", team, model=models)
    result = graph.invoke({"messages": [HumanMessage("How wide is Mars?")]})

    calculator_turns = models.calls("calculator")
    assert calculator_turns[1].messages[-1].content == "2*3389.5 = 6779"
    researcher_last = models.calls("researcher")[2]
    assert "3389.5 km" in researcher_last.text and "6779" in researcher_last.text
    [answer] = tool_messages(result["messages"])
    artifact = read_artifact(answer)
    assert artifact is not None
    nested = result["sub_assistant_states"][artifact["subgraph_uid"]]["sub_assistant_states"]
    [calc_state] = nested.values()
    assert calc_state["assistant"] == "calculator"
    assert [type(m).__name__ for m in calc_state["messages"]] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert result["messages"][-1].content == "6779 km."


def meeting_team(rendezvous: BaseTool, *names: str) -> AssistantCatalog:
    """boss -> each of ``names``; each sub-assistant has the ``rendezvous`` tool."""
    schemas: list[dict[str, Any]] = [
        {"name": "boss", "description": "d", "instructions": "i", "sub_assistants": list(names)}
    ]
    for name in names:
        schemas.append(
            {
                "name": name,
                "description": "d",
                "instructions": "i",
                "callable": True,
                "tools": ["rendezvous"],
            }
        )
    return AssistantCatalog.from_schemas(schemas, tools=[rendezvous])


class RunWindows:
    """A sub-assistant's script that calls ``rendezvous`` first, then reports what it got.

    Each conversation (named by its message) records the monotonic time of its first and
    last model call: the window in which that sub-assistant ran.
    """

    def __init__(self) -> None:
        self.windows: dict[str, list[float]] = {}

    def __call__(self, call: ModelCall) -> Any:
        task = str(call.messages[1].content)
        self.windows.setdefault(task, []).append(time.monotonic())
        if isinstance(call.last_message, HumanMessage):
            return ai(tool_calls=[call_tool("rendezvous")])
        return f"{task}: rendezvous said {call.last_message.content}"

    def overlap(self, first: str, second: str) -> bool:
        """Whether the two conversations' windows (first to last model call) overlap."""
        (a_start, *_, a_end), (b_start, *_, b_end) = self.windows[first], self.windows[second]
        return a_start < b_end and b_start < a_end


def arrivals(results: list[ToolMessage]) -> list[str]:
    """What the rendezvous told each sub-assistant, as its answer to the caller shows."""
    said: list[str] = []
    for m in results:
        assert isinstance(m.content, str)
        said.append(re.findall(r"rendezvous said (.*)", m.content)[0])
    return sorted(said)


def test_parallel_sub_assistant_calls_in_one_turn_run_concurrently() -> None:
    # A barrier of two only opens when both sub-assistants wait at it at the same time;
    # run one after the other, the first waits out the timeout and both get an error.
    both_running = threading.Barrier(2, timeout=10)

    @tool
    def rendezvous() -> str:
        """Wait until the other sub-assistant is running too."""
        return f"arrived {both_running.wait()} of 2"

    script = RunWindows()
    models = ScriptedModels(
        {
            "boss": [
                ai(tool_calls=[call_sub_assistant("left", "L"), call_sub_assistant("right", "R")]),
                "both done",
            ],
            "left": [script] * 2,
            "right": [script] * 2,
        }
    )
    result = build_assistant_graph(
        "boss", meeting_team(rendezvous, "left", "right"), model=models
    ).invoke({"messages": [HumanMessage("go")]})

    left, right = tool_messages(result["messages"])
    assert isinstance(left.content, str) and isinstance(right.content, str)
    assert left.name == "sub_assistant__left" and left.content.startswith("L: rendezvous said")
    assert right.name == "sub_assistant__right" and right.content.startswith("R: rendezvous said")
    assert arrivals([left, right]) == ["arrived 0 of 2", "arrived 1 of 2"]
    assert script.overlap("L", "R")
    assert len(result["sub_assistant_states"]) == 2


async def test_parallel_calls_also_run_concurrently_when_async() -> None:
    both_running = asyncio.Barrier(2)

    @tool
    async def rendezvous() -> str:
        """Wait until the other call is running too."""
        async with asyncio.timeout(10):  # run one after the other, the first times out
            return f"arrived {await both_running.wait()} of 2"

    script = RunWindows()
    models = ScriptedModels(
        {
            "boss": [
                ai(
                    tool_calls=[
                        call_sub_assistant("writer", "one"),
                        call_sub_assistant("writer", "two"),
                    ]
                ),
                "done",
            ],
            "writer": [script] * 4,
        }
    )
    graph = build_assistant_graph("boss", meeting_team(rendezvous, "writer"), model=models)
    result = await graph.ainvoke({"messages": [HumanMessage("go")]})

    first, second = tool_messages(result["messages"])
    assert isinstance(first.content, str) and isinstance(second.content, str)
    assert first.content.startswith("one: rendezvous said")
    assert second.content.startswith("two: rendezvous said")
    assert arrivals([first, second]) == ["arrived 0 of 2", "arrived 1 of 2"]
    assert script.overlap("one", "two")
    uids = {read_artifact(m)["subgraph_uid"] for m in (first, second)}  # type: ignore[index]
    assert len(uids) == 2 and set(result["sub_assistant_states"]) == uids


def test_a_later_turn_resumes_the_sub_conversation(team: AssistantCatalog) -> None:
    models = ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_sub_assistant("writer", "Draft a title about Mars.")]),
                "Here is a title.",
                resuming("writer", "Shorter please."),
                "Here is a shorter one.",
            ],
            "writer": ["Mars, the red frontier of our dreams", "Red Mars"],
        }
    )
    graph = build_assistant_graph("proxy", team, model=models, checkpointer=InMemorySaver())
    graph.invoke({"messages": [HumanMessage("A title about Mars?")]}, thread())
    result = graph.invoke({"messages": [HumanMessage("Shorter.")]}, thread())

    second = models.calls("writer")[1]
    assert [m.content for m in second.messages[1:]] == [
        "Draft a title about Mars.",
        "Mars, the red frontier of our dreams",
        "Shorter please.",
    ]
    first_result, second_result = tool_messages(result["messages"])
    first_uid = read_artifact(first_result)["subgraph_uid"]  # type: ignore[index]
    assert read_artifact(second_result)["subgraph_uid"] == first_uid  # type: ignore[index]
    assert [m.content for m in result["sub_assistant_states"][first_uid]["messages"]] == [
        "Draft a title about Mars.",
        "Mars, the red frontier of our dreams",
        "Shorter please.",
        "Red Mars",
    ]
    assert len(result["sub_assistant_states"]) == 1


def test_a_sub_conversation_resumes_after_reloading_the_thread_from_sqlite(
    team: AssistantCatalog, tmp_path: Path
) -> None:
    database = tmp_path / "threads.sqlite"
    models = ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_sub_assistant("researcher", "Radius of Mars?")]),
                "3389.5 km.",
                resuming("researcher", "And of the Moon?"),
                "1737.4 km.",
            ],
            "researcher": ["Mars: 3389.5 km.", "Moon: 1737.4 km."],
        }
    )
    with sqlite3.connect(database, check_same_thread=False) as connection:
        graph = build_assistant_graph(
            "proxy", team, model=models, checkpointer=SqliteSaver(connection)
        )
        graph.invoke({"messages": [HumanMessage("Mars radius?")]}, thread("saved"))
    connection.close()

    with sqlite3.connect(database, check_same_thread=False) as connection:
        reloaded = build_assistant_graph(
            "proxy", team, model=models, checkpointer=SqliteSaver(connection)
        )
        result = reloaded.invoke({"messages": [HumanMessage("Moon radius?")]}, thread("saved"))
    connection.close()

    assert [m.content for m in models.calls("researcher")[1].messages[1:]] == [
        "Radius of Mars?",
        "Mars: 3389.5 km.",
        "And of the Moon?",
    ]
    assert result["messages"][-1].content == "1737.4 km."
    reloaded_artifact = read_artifact(tool_messages(result["messages"])[0])
    assert reloaded_artifact is not None
    assert isinstance(reloaded_artifact["response_messages"][0], AIMessage)


def test_forwarded_messages_and_contexts_reach_the_sub_assistant(team: AssistantCatalog) -> None:
    models = ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_sub_assistant("researcher", "Radius of Mars?", id="r1")]),
                ai(
                    tool_calls=[
                        call_sub_assistant(
                            "writer",
                            "Write one sentence.",
                            pass_num_previous_messages=1,
                            pass_contexts=["r1"],
                        )
                    ]
                ),
                "Done.",
            ],
            "researcher": ["3389.5 km"],
            "writer": ["Mars has a radius of 3389.5 km."],
        }
    )
    build_assistant_graph("proxy", team, model=models).invoke(
        {"messages": [HumanMessage("Tell me how big Mars is.")]}
    )
    received = models.calls("writer")[0].last_message.content
    assert isinstance(received, str)
    assert received.startswith("Write one sentence.\n\nPrevious messages of the conversation:\n")
    assert "[user]: Tell me how big Mars is." in received
    assert "[context r1]:\n3389.5 km\n\n(conversation_uid: researcher-" in received


def test_a_sub_assistants_run_starts_at_its_first_model_call(team: AssistantCatalog) -> None:
    # Its caller fixed its limits when it made the call, so it has no ``begin`` step (and
    # with a checkpointer writes one checkpoint fewer); the root's run starts at ``begin``.
    models = ScriptedModels(
        {
            "proxy": [ai(tool_calls=[call_sub_assistant("writer", "Say hello.")]), "Done."],
            "writer": ["Hello!"],
        }
    )
    graph = build_assistant_graph("proxy", team, model=models, checkpointer=InMemorySaver())

    steps = [
        (namespace[0].split(":")[0] if namespace else "root", node)
        for namespace, update in graph.stream(
            {"messages": [HumanMessage("Greet me.")]},
            thread("starts"),
            stream_mode="updates",
            subgraphs=True,
        )
        for node in update
    ]

    assert steps == [
        ("root", "begin"),
        ("root", "agent"),
        ("tools", "agent"),  # the writer: its one model call, nothing before it
        ("root", "tools"),
        ("root", "agent"),
    ]
    state = graph.get_state(thread("starts")).values
    [conversation] = state["sub_assistant_states"].values()
    assert [m.content for m in conversation["messages"]] == ["Say hello.", "Hello!"]


def test_a_sub_conversation_left_with_an_unanswered_call_is_repaired_when_resumed(
    team: AssistantCatalog,
) -> None:
    # A run that started with such a history goes through ``begin``, which answers the call.
    models = ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_sub_assistant("writer", "Draft a title.")]),
                "Here is a title.",
                resuming("writer", "Again."),
                "Here it is again.",
            ],
            "writer": ["Red Mars", "Red Mars again"],
        }
    )
    graph = build_assistant_graph("proxy", team, model=models, checkpointer=InMemorySaver())
    graph.invoke({"messages": [HumanMessage("A title?")]}, thread("stuck"))
    [(uid, data)] = graph.get_state(thread("stuck")).values["sub_assistant_states"].items()
    dangling = AIMessage("Counting.", tool_calls=[call_tool("word_count", text="Red Mars")])
    broken = {**data, "messages": [*data["messages"], dangling]}
    graph.update_state(thread("stuck"), {"sub_assistant_states": {uid: broken}}, as_node="begin")

    graph.invoke({"messages": [HumanMessage("Again?")]}, thread("stuck"))

    seen = models.calls("writer")[1].messages
    [repair] = [m for m in seen if isinstance(m, ToolMessage)]
    assert repair.tool_call_id == dangling.tool_calls[0]["id"]
    assert repair.status == "error" and "no result in the conversation" in str(repair.content)
    assert seen[-1].content == "Again."
