"""Many threads at once: every one completes, and every history belongs to its thread alone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from assistant_graph import AssistantCatalog, build_assistant_graph
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant

THREADS = 200


def marker_of(call: ModelCall) -> str:
    """The thread marker ("thread-17") in the last message the model received."""
    text = str(call.last_message.content)
    return next(word for word in text.split() if word.startswith("thread-"))


def delegate(call: ModelCall) -> Any:
    marker = marker_of(call)
    return ai(
        tool_calls=[
            call_sub_assistant("researcher", f"facts for {marker}"),
            call_sub_assistant("writer", f"text for {marker}"),
        ]
    )


def team_models() -> ScriptedModels:
    """Replies are functions of what each model received: calls of different threads
    interleave, so no reply may depend on its position in the script."""

    def researcher(call: ModelCall) -> Any:
        if call.messages[-1].type == "tool":
            return f"researched {marker_of_conversation(call.messages)}"
        return ai(tool_calls=[call_sub_assistant("calculator", f"sum for {marker_of(call)}")])

    def proxy(call: ModelCall) -> Any:
        if call.messages[-1].type == "tool":
            return f"done {marker_of_conversation(call.messages)}"
        return delegate(call)

    return ScriptedModels(
        {
            "proxy": [proxy] * (2 * THREADS),
            "researcher": [researcher] * (2 * THREADS),
            "calculator": [lambda c: f"computed {marker_of(c)}"] * THREADS,
            "writer": [lambda c: f"wrote {marker_of(c)}"] * THREADS,
        }
    )


def marker_of_conversation(messages: list[BaseMessage]) -> str:
    for message in messages:
        for word in str(message.content).split():
            if word.startswith("thread-"):
                return word
    raise AssertionError("no marker")


async def run_all(graph: Any) -> None:
    async def one(index: int) -> None:
        config = {"configurable": {"thread_id": f"t{index}"}}
        await graph.ainvoke({"messages": [("user", f"work for thread-{index}")]}, config)

    await asyncio.gather(*(one(index) for index in range(THREADS)))


async def check_isolation(graph: Any) -> None:
    for index in range(THREADS):
        state = await graph.aget_state({"configurable": {"thread_id": f"t{index}"}})
        messages = state.values["messages"]
        assert messages[-1].content == f"done thread-{index}"
        assert len(messages) == 5
        texts = " ".join(str(m.content) for m in messages)
        markers = {w.rstrip(".,") for w in texts.split() if w.startswith("thread-")}
        assert markers == {f"thread-{index}"}
        for conversation in state.values["sub_assistant_states"].values():
            words = " ".join(str(m.content) for m in conversation["messages"]).split()
            assert {w for w in words if w.startswith("thread-")} == {f"thread-{index}"}


async def test_many_concurrent_threads_in_memory(team: AssistantCatalog) -> None:
    graph = build_assistant_graph("proxy", team, model=team_models(), checkpointer=InMemorySaver())
    await run_all(graph)
    await check_isolation(graph)


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # aiosqlite's worker thread at teardown
async def test_many_concurrent_threads_on_sqlite(team: AssistantCatalog, tmp_path: Path) -> None:
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "load.sqlite")) as saver:
        graph = build_assistant_graph("proxy", team, model=team_models(), checkpointer=saver)
        await run_all(graph)
        await check_isolation(graph)
