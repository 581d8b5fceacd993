"""Threads stay whole under concurrent use: one run per thread at a time, across processes,
and a history that ends in unanswered tool calls is repaired before the next run."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver

from assistant_graph import (
    AssistantCatalog,
    ThreadBusyError,
    build_assistant_graph,
    open_checkpointer,
)
from assistant_graph._thread_guard import IfBusy
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_tool

SOLO = AssistantCatalog.from_schemas(
    [
        {
            "name": "solo",
            "description": "Answers.",
            "instructions": "Answer.",
            "budget": {"max_steps": 3},
        }
    ]
)


def echo(call: ModelCall) -> str:
    """A reply that names the message it answers, so turns can be told apart."""
    return f"reply to {call.last_message.content}"


def config(thread: str, **configurable: Any) -> RunnableConfig:
    return {"configurable": {"thread_id": thread, **configurable}}


def history(db: str, thread: str) -> list[BaseMessage]:
    with open_checkpointer(db) as saver:
        graph = build_assistant_graph("solo", SOLO, model=ScriptedModels({}), checkpointer=saver)
        return list(graph.get_state(config(thread)).values.get("messages", []))


def assert_valid(messages: list[BaseMessage]) -> None:
    """Every tool call is answered before the next non-tool message, as chat APIs require."""
    open_calls: set[str] = set()
    for message in messages:
        if isinstance(message, ToolMessage):
            open_calls.discard(message.tool_call_id)
            continue
        assert not open_calls, f"unanswered tool calls {open_calls} before {message!r}"
        if isinstance(message, AIMessage):
            open_calls = {call["id"] or "" for call in message.tool_calls}
    assert not open_calls


def assert_whole_turns(messages: list[BaseMessage], texts: list[str]) -> None:
    """The thread holds exactly these turns, each question followed by its own answer."""
    assert [m.content for m in messages] == [
        part for text in texts for part in (text, f"reply to {text}")
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A thread store shared by processes: a SQLite file, or the test PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "threads.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="module")
def processes() -> Iterator[ForkServerContext]:
    """Worker processes forked from a server that has imported the package already."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["assistant_graph", "tests.test_threads"])
    yield context


def one_turn(
    db: str, thread: str, text: str, if_busy: IfBusy, latency: float, start: Any, out: Any
) -> None:
    """Run one turn in a process of its own; report (text, outcome, model calls made)."""
    models = ScriptedModels({"solo": [echo]}, latency=latency)
    with open_checkpointer(db) as saver:
        graph = build_assistant_graph(
            "solo", SOLO, model=models, checkpointer=saver, if_busy=if_busy, busy_timeout=30
        )
        start.wait()
        try:
            graph.invoke({"messages": [HumanMessage(text)]}, config(thread))
            outcome = "done"
        except ThreadBusyError:
            outcome = "busy"
    out.put((text, outcome, len(models.calls("solo"))))


def race(
    processes: ForkServerContext, db: str, thread: str, texts: list[str], if_busy: IfBusy
) -> list[tuple[str, str, int]]:
    """Start one turn per text in processes of their own, all at the same moment."""
    start, out = processes.Barrier(len(texts)), processes.Queue()
    workers = [
        processes.Process(target=one_turn, args=(db, thread, text, if_busy, 0.2, start, out))
        for text in texts
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    return sorted(results)


class TestTwoRunsOnOneThread:
    """Two runs started on one thread at the same moment, from two processes, 20 times."""

    ROUNDS = 20

    def test_reject_refuses_the_second_before_any_model_call(
        self, processes: ForkServerContext, db: str
    ) -> None:
        thread = f"race-reject-{os.getpid()}-{time.monotonic_ns()}"
        kept: list[str] = []
        for round_ in range(self.ROUNDS):
            texts = [f"a{round_}", f"b{round_}"]
            results = race(processes, db, thread, texts, "reject")
            done = [text for text, outcome, _ in results if outcome == "done"]
            assert len(done) >= 1
            for _, outcome, calls in results:
                assert calls == (1 if outcome == "done" else 0)
            kept.extend(sorted(done))  # two sequential runs only if the first finished first
            messages = history(db, thread)
            assert_valid(messages)
            questions = [str(m.content) for m in messages[::2]]
            assert sorted(questions) == sorted(kept)
            assert_whole_turns(messages, questions)

    def test_enqueue_runs_both_one_after_the_other(
        self, processes: ForkServerContext, db: str
    ) -> None:
        thread = f"race-enqueue-{os.getpid()}-{time.monotonic_ns()}"
        order: list[str] = []
        for round_ in range(self.ROUNDS):
            results = race(processes, db, thread, [f"a{round_}", f"b{round_}"], "enqueue")
            assert [(outcome, calls) for _, outcome, calls in results] == [("done", 1)] * 2
            messages = history(db, thread)
            assert_valid(messages)
            order.extend(str(m.content) for m in messages[len(order) * 2 :: 2])
            assert_whole_turns(messages, order)
        assert len(order) == 2 * self.ROUNDS


def hold_thread(db: str, thread: str, started: Any) -> None:
    """A run that holds its thread for 30 s; ``started`` is set once it holds it."""

    def slow(call: ModelCall) -> str:
        started.set()  # the model call runs inside the run, which holds the thread
        time.sleep(30)
        return "slow reply"

    models = ScriptedModels({"solo": [slow]})
    with open_checkpointer(db) as saver:
        graph = build_assistant_graph("solo", SOLO, model=models, checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("slow")]}, config(thread))


def test_a_refusal_says_since_when_and_which_process_holds_the_thread(
    processes: ForkServerContext, db: str
) -> None:
    thread = f"holder-{time.monotonic_ns()}"
    started = processes.Event()
    holder = processes.Process(target=hold_thread, args=(db, thread, started))
    holder.start()
    try:
        assert started.wait(30)
        models = ScriptedModels({"solo": [echo]})
        with open_checkpointer(db) as saver:
            graph = build_assistant_graph("solo", SOLO, model=models, checkpointer=saver)
            with pytest.raises(ThreadBusyError) as refused:
                graph.invoke({"messages": [HumanMessage("now")]}, config(thread))
        error = refused.value
        assert error.thread_id == thread and error.since is not None
        assert f"a run is in progress on thread {thread!r}" in str(error)
        assert "--if-busy wait" in str(error)
        assert models.calls("solo") == []  # refused before any model call
    finally:
        holder.kill()
        holder.join()


def test_a_killed_run_never_leaves_its_thread_locked(processes: ForkServerContext, db: str) -> None:
    thread = f"killed-{time.monotonic_ns()}"
    started = processes.Event()
    holder = processes.Process(target=hold_thread, args=(db, thread, started))
    holder.start()
    assert started.wait(30)
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    models = ScriptedModels({"solo": [echo]})
    with open_checkpointer(db) as saver:
        graph = build_assistant_graph("solo", SOLO, model=models, checkpointer=saver)
        result = graph.invoke({"messages": [HumanMessage("after")]}, config(thread))
    assert result["messages"][-1].content == "reply to after"
    assert_valid(result["messages"])


class TestInOneProcess:
    """Runs in threads or tasks of one process share the guarantee (any checkpointer)."""

    @pytest.fixture(params=[":memory:", "sqlite"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> str:
        return request.param if request.param == ":memory:" else str(tmp_path / "t.sqlite")

    def test_a_second_run_is_refused_and_writes_nothing(self, store: str) -> None:
        models = ScriptedModels({"solo": [echo] * 2}, latency=0.5)
        with open_checkpointer(store) as saver:
            graph = build_assistant_graph("solo", SOLO, model=models, checkpointer=saver)
            first = threading.Thread(
                target=graph.invoke, args=({"messages": [HumanMessage("one")]}, config("t"))
            )
            first.start()
            time.sleep(0.2)
            with pytest.raises(ThreadBusyError, match="a run is in progress on thread 't'"):
                graph.invoke({"messages": [HumanMessage("two")]}, config("t"))
            first.join()
            assert [call.last_message.content for call in models.calls("solo")] == ["one"]
            assert_whole_turns(graph.get_state(config("t")).values["messages"], ["one"])

    def test_enqueue_waits_its_turn(self, store: str) -> None:
        models = ScriptedModels({"solo": [echo] * 2}, latency=0.3)
        with open_checkpointer(store) as saver:
            graph = build_assistant_graph(
                "solo", SOLO, model=models, checkpointer=saver, if_busy="enqueue"
            )
            first = threading.Thread(
                target=graph.invoke, args=({"messages": [HumanMessage("one")]}, config("t"))
            )
            first.start()
            time.sleep(0.1)
            graph.invoke({"messages": [HumanMessage("two")]}, config("t"))
            first.join()
            assert_whole_turns(graph.get_state(config("t")).values["messages"], ["one", "two"])

    def test_a_run_may_choose_its_policy_and_a_timeout(self) -> None:
        models = ScriptedModels({"solo": [echo] * 2}, latency=0.6)
        with open_checkpointer(":memory:") as saver:
            graph = build_assistant_graph("solo", SOLO, model=models, checkpointer=saver)
            first = threading.Thread(
                target=graph.invoke, args=({"messages": [HumanMessage("one")]}, config("t"))
            )
            first.start()
            time.sleep(0.1)
            waiting = config("t", if_busy="enqueue", busy_timeout=0.2)
            with pytest.raises(ThreadBusyError, match=r"waited 0\.2 s"):
                graph.invoke({"messages": [HumanMessage("two")]}, waiting)
            first.join()
            assert len(models.calls("solo")) == 1

    async def test_async_runs_are_guarded_too(self) -> None:
        models = ScriptedModels({"solo": [echo] * 2}, latency=0.3)
        with open_checkpointer(":memory:") as saver:
            graph = build_assistant_graph("solo", SOLO, model=models, checkpointer=saver)
            outcomes = await asyncio.gather(
                graph.ainvoke({"messages": [HumanMessage("one")]}, config("t")),
                graph.ainvoke({"messages": [HumanMessage("two")]}, config("t")),
                return_exceptions=True,
            )
        assert sum(isinstance(outcome, ThreadBusyError) for outcome in outcomes) == 1
        assert len(models.calls("solo")) == 1

    def test_other_threads_run_side_by_side(self) -> None:
        models = ScriptedModels({"solo": [echo] * 2}, latency=0.3)
        with open_checkpointer(":memory:") as saver:
            graph = build_assistant_graph("solo", SOLO, model=models, checkpointer=saver)
            first = threading.Thread(
                target=graph.invoke, args=({"messages": [HumanMessage("one")]}, config("a"))
            )
            first.start()
            graph.invoke({"messages": [HumanMessage("two")]}, config("b"))
            first.join()
        assert len(models.calls("solo")) == 2

    def test_an_unknown_policy_names_the_policies(self) -> None:
        with pytest.raises(ValueError, match=r"if_busy must be one of 'reject', 'enqueue'"):
            build_assistant_graph("solo", SOLO, if_busy="later")  # type: ignore[arg-type]


def test_a_thread_left_with_unanswered_tool_calls_is_repaired_before_the_next_run() -> None:
    """A history written by an older version, another program or a crash: an assistant
    message with tool calls and no results, followed by the next user message."""
    models = ScriptedModels({"solo": [echo]})
    with open_checkpointer(":memory:") as saver:
        graph = build_assistant_graph("solo", SOLO, model=models, checkpointer=saver)
        broken = [
            HumanMessage("look it up"),
            ai(tool_calls=[call_tool("lookup", id="c1", topic="x"), call_tool("f", id="c2")]),
            ToolMessage("found", tool_call_id="c1"),
            HumanMessage("hello?"),
        ]
        graph.update_state(config("stuck"), {"messages": broken}, as_node="begin")
        result = graph.invoke({"messages": [HumanMessage("again")]}, config("stuck"))
    seen = models.calls("solo")[0].messages[1:]
    assert [type(m).__name__ for m in seen] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "ToolMessage",
        "HumanMessage",
        "HumanMessage",
    ]
    repaired = seen[3]
    assert isinstance(repaired, ToolMessage) and repaired.tool_call_id == "c2"
    assert isinstance(repaired.content, str)
    assert repaired.status == "error" and repaired.content.startswith("Not run: this tool call")
    assert_valid(result["messages"])
    assert result["messages"][-1].content == "reply to again"


class TestAsyncSavers:
    """``aopen_checkpointer`` opens the async savers, guarded the same way."""

    @pytest.fixture(params=["sqlite", "postgres"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> str:
        if request.param == "sqlite":
            return str(tmp_path / "threads.sqlite")
        url: str = request.getfixturevalue("postgres_url")
        return url

    async def test_a_thread_streamed_async_continues_in_a_later_session(self, store: str) -> None:
        from assistant_graph import aopen_checkpointer, astream_events

        thread = f"async-{time.monotonic_ns()}"
        for text in ("one", "two"):
            models = ScriptedModels({"solo": [echo]})
            async with aopen_checkpointer(store) as saver:
                graph = build_assistant_graph("solo", SOLO, model=models, checkpointer=saver)
                events = [e async for e in astream_events(graph, text, config(thread))]
                assert events[-1].content == f"reply to {text}"  # type: ignore[attr-defined]
        async with aopen_checkpointer(store) as saver:
            graph = build_assistant_graph(
                "solo", SOLO, model=ScriptedModels({}), checkpointer=saver
            )
            state = await graph.aget_state(config(thread))
        assert_whole_turns(state.values["messages"], ["one", "two"])

    async def test_two_async_runs_on_one_thread_from_two_processes_are_serialized(
        self, store: str, processes: ForkServerContext
    ) -> None:
        from assistant_graph import aopen_checkpointer

        thread = f"async-busy-{time.monotonic_ns()}"
        started = processes.Event()
        holder = processes.Process(target=hold_thread, args=(store, thread, started))
        holder.start()
        try:
            assert started.wait(30)
            models = ScriptedModels({"solo": [echo]})
            async with aopen_checkpointer(store) as saver:
                graph = build_assistant_graph("solo", SOLO, model=models, checkpointer=saver)
                with pytest.raises(ThreadBusyError):
                    await graph.ainvoke({"messages": [HumanMessage("x")]}, config(thread))
            assert models.calls("solo") == []
        finally:
            holder.kill()
            holder.join()


def test_thread_locks_guard_a_graph_without_a_checkpointer_in_a_copy_with_one(
    processes: ForkServerContext, postgres_url: str
) -> None:
    """``thread_locks`` (what ``ASSISTANT_GRAPH_THREAD_LOCKS`` gives served graphs): the
    advisory lock of a PostgreSQL checkpointer's guard, kept in the copy with a
    checkpointer of its own that a server runs (Aegra: ``graph.copy(update=...)``)."""
    thread = f"thread-locks-{time.monotonic_ns()}"
    models = ScriptedModels({"solo": [echo]})
    graph = build_assistant_graph("solo", SOLO, model=models, thread_locks=postgres_url)
    served = graph.copy(update={"checkpointer": InMemorySaver(), "store": None})
    started = processes.Event()
    holder = processes.Process(target=hold_thread, args=(postgres_url, thread, started))
    holder.start()
    try:
        assert started.wait(30)
        with pytest.raises(ThreadBusyError, match=f"a run is in progress on thread '{thread}'"):
            served.invoke({"messages": [HumanMessage("busy")]}, config(thread))
        assert models.calls("solo") == []
        assert served.get_state(config(thread)).values == {}  # nothing written
    finally:
        holder.kill()
        holder.join()
    waits = config(thread, if_busy="enqueue", busy_timeout=10)  # the killed session's lock goes
    result = served.invoke({"messages": [HumanMessage("after")]}, waits)
    assert [m.content for m in result["messages"]] == ["after", "reply to after"]


def test_a_thread_is_not_compacted_while_another_process_runs_on_it(
    processes: ForkServerContext, db: str
) -> None:
    from assistant_graph import compact_thread

    thread = f"compact-busy-{time.monotonic_ns()}"
    with open_checkpointer(db) as saver:
        graph = build_assistant_graph(
            "solo", SOLO, model=ScriptedModels({"solo": [echo]}), checkpointer=saver
        )
        graph.invoke({"messages": [HumanMessage("first")]}, config(thread))
    started = processes.Event()
    holder = processes.Process(target=hold_thread, args=(db, thread, started))
    holder.start()
    try:
        assert started.wait(30)
        with open_checkpointer(db) as saver:
            graph = build_assistant_graph(
                "solo", SOLO, model=ScriptedModels({}), checkpointer=saver
            )
            assert compact_thread(graph, config(thread), finished=True) is False
    finally:
        holder.kill()
        holder.join()


async def test_a_run_cancelled_while_taking_its_thread_does_not_keep_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from assistant_graph._thread_guard import ThreadGuard, _Attempt

    take = _Attempt.try_take

    def slow_take(attempt: _Attempt) -> bool:
        time.sleep(0.3)  # the worker takes the thread after its caller was cancelled
        return take(attempt)

    monkeypatch.setattr(_Attempt, "try_take", slow_take)
    guard = ThreadGuard(object())

    async def hold() -> None:
        async with guard.ahold(config("c")):
            await asyncio.sleep(10)

    task = asyncio.create_task(hold())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.5)
    monkeypatch.setattr(_Attempt, "try_take", take)
    held = guard.try_hold(config("c"))
    assert held is not None, "the cancelled run kept the thread"
    held.give_back()
