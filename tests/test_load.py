"""Many threads at once: every one completes, and every history belongs to its thread alone."""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from assistant_graph import (
    AssistantCatalog,
    aopen_checkpointer,
    build_assistant_graph,
    load_assistants,
)
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant

from .conftest import EXAMPLE_ASSISTANTS

THREADS = 200
PROCESSES = 4
THREADS_PER_PROCESS = 40
RUNS_AT_ONCE_PER_PROCESS = 16
"""Every running thread holds a PostgreSQL connection of its own (the thread guard's
advisory lock): 4 x 40 runs at once would need 164 connections, and a server allows 100
unless configured otherwise ("too many clients already")."""


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


async def run_all(
    graph: Any, indexes: Iterable[int] = range(THREADS), prefix: str = "t", at_once: int = THREADS
) -> None:
    """One run per index, ``at_once`` at a time, each on thread ``<prefix><index>``."""
    gate = asyncio.Semaphore(at_once)

    async def one(index: int) -> None:
        config = {"configurable": {"thread_id": f"{prefix}{index}"}}
        async with gate:
            await graph.ainvoke({"messages": [("user", f"work for thread-{index}")]}, config)

    await asyncio.gather(*(one(index) for index in indexes))


async def check_isolation(
    graph: Any, indexes: Iterable[int] = range(THREADS), prefix: str = "t"
) -> None:
    for index in indexes:
        state = await graph.aget_state({"configurable": {"thread_id": f"{prefix}{index}"}})
        messages = state.values["messages"]
        assert messages[-1].content == f"done thread-{index}"
        assert len(messages) == 5
        assert len(state.values["sub_assistant_states"]) == 2
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


def run_threads_in_a_process(url: str, prefix: str, indexes: list[int], start: Any) -> None:
    """One process of the Postgres load test: its threads, many at once, on its own saver."""

    async def main() -> None:
        async with aopen_checkpointer(url) as saver:
            team = load_assistants(EXAMPLE_ASSISTANTS)
            graph = build_assistant_graph("proxy", team, model=team_models(), checkpointer=saver)
            start.wait(timeout=60)
            await run_all(graph, indexes, prefix, RUNS_AT_ONCE_PER_PROCESS)

    asyncio.run(main())


@pytest.mark.postgres
async def test_many_threads_from_several_processes_on_postgres(
    team: AssistantCatalog, postgres_url: str
) -> None:
    prefix = f"load-{uuid.uuid4().hex[:12]}-"
    indexes = range(PROCESSES * THREADS_PER_PROCESS)
    processes = multiprocessing.get_context("forkserver")
    # Forked from a server that has imported the package already (if this starts it).
    processes.set_forkserver_preload(["assistant_graph", "tests.test_load"])
    start = processes.Barrier(PROCESSES)
    workers = [
        processes.Process(
            target=run_threads_in_a_process,
            args=(
                postgres_url,
                prefix,
                list(indexes[n::PROCESSES]),  # interleaved: neighbours in other processes
                start,
            ),
        )
        for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            await asyncio.to_thread(worker.join, 120)
            assert worker.exitcode == 0
        async with aopen_checkpointer(postgres_url) as saver:
            graph = build_assistant_graph(
                "proxy", team, model=ScriptedModels({}), checkpointer=saver
            )
            await check_isolation(graph, indexes, prefix)
    finally:
        for worker in workers:
            worker.kill()
        async with aopen_checkpointer(postgres_url) as saver:
            for index in indexes:
                await saver.adelete_thread(f"{prefix}{index}")
