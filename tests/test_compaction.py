"""Compacting finished threads keeps only what continuing them needs."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import StateGraph
from langgraph.types import Command

from assistant_graph import (
    AssistantCatalog,
    acompact_thread,
    aopen_checkpointer,
    build_assistant_graph,
    compact_thread,
    open_checkpointer,
    read_artifact,
)
from assistant_graph._thread_guard import ThreadGuard
from assistant_graph.testing import (
    ModelCall,
    ScriptedModels,
    ScriptedOpenAIServer,
    ai,
    call_sub_assistant,
    call_tool,
)

from .test_cli import Cli, example
from .test_cli import cli as cli  # fixture
from .test_cli import server as server  # fixture

CONFIG: RunnableConfig = {"configurable": {"thread_id": "long"}}


def delegate_to_writer(call: ModelCall) -> Any:
    """Resume the writer's conversation if there is one, else open it."""
    results = [m for m in call.messages if isinstance(m, ToolMessage)]
    uid = read_artifact(results[-1])["subgraph_uid"] if results else None  # type: ignore[index]
    if call.messages[-1].type == "tool":
        return "ok"
    return ai(tool_calls=[call_sub_assistant("writer", "more", resume_conversation_uid=uid)])


@pytest.fixture
def connection(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    with sqlite3.connect(tmp_path / "threads.sqlite", check_same_thread=False) as connection:
        yield connection
    connection.close()


def rows(connection: sqlite3.Connection, table: str) -> int:
    return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_a_finished_thread_keeps_one_checkpoint_and_still_resumes_its_sub_conversations(
    team: AssistantCatalog, connection: sqlite3.Connection
) -> None:
    models = ScriptedModels(
        {"proxy": [delegate_to_writer] * 6, "writer": [lambda c: f"part {len(c.messages)}"] * 3}
    )
    graph = build_assistant_graph("proxy", team, model=models, checkpointer=SqliteSaver(connection))
    for turn in range(2):
        graph.invoke({"messages": [("user", f"turn {turn}")]}, CONFIG)
    before = rows(connection, "checkpoints")

    assert compact_thread(graph, CONFIG) is True

    assert before > 10 and rows(connection, "checkpoints") == 1
    assert rows(connection, "writes") == 0
    result = graph.invoke({"messages": [("user", "turn 2")]}, CONFIG)
    third = models.calls("writer")[2]
    assert [m.content for m in third.messages[1:]] == ["more", "part 2", "more", "part 4", "more"]
    assert len(result["messages"]) == 12
    assert len(result["sub_assistant_states"]) == 1


def test_a_thread_waiting_for_input_is_left_alone(connection: sqlite3.Connection) -> None:
    team = AssistantCatalog.from_schemas(
        [{"name": "asker", "description": "d", "instructions": "i", "ask_user": True}]
    )
    models = ScriptedModels(
        {"asker": [ai(tool_calls=[call_tool("ask_user", question="Which?")]), "thanks"]}
    )
    graph = build_assistant_graph("asker", team, model=models, checkpointer=SqliteSaver(connection))
    graph.invoke({"messages": [("user", "go")]}, CONFIG)
    before = rows(connection, "checkpoints")

    assert compact_thread(graph, CONFIG) is False
    assert rows(connection, "checkpoints") == before
    assert graph.invoke(Command(resume="that one"), CONFIG)["messages"][-1].content == "thanks"


async def test_each_function_leaves_the_savers_of_the_other_kind_alone(
    team: AssistantCatalog, connection: sqlite3.Connection, tmp_path: Path
) -> None:
    # compact_thread reads the state with the sync API, which an async saver refuses on
    # its event loop's thread; acompact_thread reads it with the async API, which a sync
    # saver does not have. Each says False and changes nothing.
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "async.sqlite")) as saver:
        graph = build_assistant_graph(
            "writer", team, model=ScriptedModels({"writer": ["hi"]}), checkpointer=saver
        )
        await graph.ainvoke({"messages": [("user", "go")]}, CONFIG)
        before = [c.config async for c in saver.alist(CONFIG)]
        assert compact_thread(graph, CONFIG) is False
        assert [c.config async for c in saver.alist(CONFIG)] == before
    graph = build_assistant_graph(
        "writer",
        team,
        model=ScriptedModels({"writer": ["hi"]}),
        checkpointer=SqliteSaver(connection),
    )
    graph.invoke({"messages": [("user", "go")]}, CONFIG)
    count = rows(connection, "checkpoints")
    assert await acompact_thread(graph, CONFIG, finished=True) is False
    assert count > 1 and rows(connection, "checkpoints") == count


def test_the_cli_compacts_finished_threads_unless_asked_to_keep_history(
    cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    server.script("writer", "one", "two", "three", "four")
    for thread, flags in (("compact", ()), ("history", ("--keep-history",))):
        database = tmp_path / f"{thread}.sqlite"
        for text in ("hi", "again"):
            outcome = cli(
                *example("run", "writer", text, "--thread", thread, "--db", str(database), *flags)
            )
            assert outcome.code == 0, outcome.stderr
        with sqlite3.connect(database) as connection:
            count = rows(connection, "checkpoints")
        connection.close()
        assert (count == 1) is (thread == "compact"), (thread, count)


def test_a_caller_that_knows_the_run_finished_can_skip_the_check(
    team: AssistantCatalog, connection: sqlite3.Connection
) -> None:
    models = ScriptedModels({"writer": ["hi", "again"]})
    graph = build_assistant_graph(
        "writer", team, model=models, checkpointer=SqliteSaver(connection)
    )
    graph.invoke({"messages": [("user", "go")]}, CONFIG)
    latest = graph.get_state(CONFIG).config["configurable"]["checkpoint_id"]
    assert compact_thread(graph, CONFIG, finished=True) is True
    assert graph.get_state(CONFIG).config["configurable"]["checkpoint_id"] == latest
    assert rows(connection, "checkpoints") == 1
    result = graph.invoke({"messages": [("user", "more")]}, CONFIG)
    assert [m.content for m in result["messages"]] == ["go", "hi", "more", "again"]


# --- Every saver with an adapter: the same behaviour through its own storage ----------

SAVERS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=SAVERS)
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    """A saver of each kind that has an adapter, opened as the CLI opens it."""
    if request.param == "memory":
        yield InMemorySaver()
        return
    db = tmp_path / "threads.sqlite" if request.param == "sqlite" else None
    with open_checkpointer(db or request.getfixturevalue("postgres_url")) as opened:
        yield opened


@pytest.fixture
def thread(saver: BaseCheckpointSaver[Any]) -> Iterator[RunnableConfig]:
    """A thread of its own: the Postgres database is shared by the tests (and by runs)."""
    thread_id = f"compaction-{uuid.uuid4()}"
    yield {"configurable": {"thread_id": thread_id}}
    saver.delete_thread(thread_id)


def checkpoints(saver: BaseCheckpointSaver[Any], thread: RunnableConfig, **ns: str) -> list[Any]:
    """The thread's checkpoint tuples, of every namespace unless ``checkpoint_ns`` is given."""
    return list(saver.list({"configurable": {**thread["configurable"], **ns}}))


def test_each_saver_compacts_a_finished_thread_to_its_latest_root_checkpoint(
    team: AssistantCatalog, saver: BaseCheckpointSaver[Any], thread: RunnableConfig
) -> None:
    models = ScriptedModels(
        {"proxy": [delegate_to_writer] * 8, "writer": [lambda c: f"part {len(c.messages)}"] * 4}
    )
    graph = build_assistant_graph("proxy", team, model=models, checkpointer=saver)
    for turn in range(2):
        graph.invoke({"messages": [("user", f"turn {turn}")]}, thread)
    before = graph.get_state(thread)
    history = checkpoints(saver, thread)
    namespaces = {c.config["configurable"]["checkpoint_ns"] for c in history}

    assert compact_thread(graph, thread) is True

    assert len(history) > 10 and len(namespaces) == 3  # the root and two writer runs
    [kept] = checkpoints(saver, thread)
    assert kept.config["configurable"]["checkpoint_ns"] == ""
    assert (
        kept.config["configurable"]["checkpoint_id"]
        == before.config["configurable"]["checkpoint_id"]
    )
    assert kept.parent_config is None and not kept.pending_writes
    after = graph.get_state(thread)
    assert after.values == before.values and not after.next
    # The thread goes on: the writer's conversation is resumed by its uid, from the state.
    result = graph.invoke({"messages": [("user", "turn 2")]}, thread)
    third = models.calls("writer")[2]
    assert [m.content for m in third.messages[1:]] == ["more", "part 2", "more", "part 4", "more"]
    assert len(result["messages"]) == 12
    assert len(result["sub_assistant_states"]) == 1
    # And compacts again, to the new latest checkpoint, and goes on again.
    assert compact_thread(graph, thread) is True
    assert len(checkpoints(saver, thread)) == 1
    graph.invoke({"messages": [("user", "turn 3")]}, thread)
    fourth = models.calls("writer")[3]
    assert [m.content for m in fourth.messages[-3:]] == ["more", "part 6", "more"]


def test_each_saver_leaves_a_thread_waiting_for_input_alone(
    saver: BaseCheckpointSaver[Any], thread: RunnableConfig
) -> None:
    team = AssistantCatalog.from_schemas(
        [{"name": "asker", "description": "d", "instructions": "i", "ask_user": True}]
    )
    models = ScriptedModels(
        {"asker": [ai(tool_calls=[call_tool("ask_user", question="Which?")]), "thanks"]}
    )
    graph = build_assistant_graph("asker", team, model=models, checkpointer=saver)
    graph.invoke({"messages": [("user", "go")]}, thread)
    before = [c.config for c in checkpoints(saver, thread)]

    assert compact_thread(graph, thread) is False

    assert [c.config for c in checkpoints(saver, thread)] == before
    assert graph.invoke(Command(resume="that one"), thread)["messages"][-1].content == "thanks"
    assert compact_thread(graph, thread) is True
    assert len(checkpoints(saver, thread)) == 1


def test_each_saver_keeps_the_pending_writes_of_the_latest_checkpoint(
    saver: BaseCheckpointSaver[Any], thread: RunnableConfig
) -> None:
    # A caller that wrongly says the run finished: the interrupt is a pending write of the
    # latest root checkpoint, and kept with it, so answering still works.
    team = AssistantCatalog.from_schemas(
        [{"name": "asker", "description": "d", "instructions": "i", "ask_user": True}]
    )
    models = ScriptedModels(
        {"asker": [ai(tool_calls=[call_tool("ask_user", question="Which?")]), "thanks"]}
    )
    graph = build_assistant_graph("asker", team, model=models, checkpointer=saver)
    graph.invoke({"messages": [("user", "go")]}, thread)
    [pending] = graph.get_state(thread).interrupts

    assert compact_thread(graph, thread, finished=True) is True

    [kept] = checkpoints(saver, thread)
    assert kept.pending_writes
    assert graph.get_state(thread).interrupts == (pending,)
    assert graph.invoke(Command(resume="that one"), thread)["messages"][-1].content == "thanks"


def test_each_saver_returns_false_for_a_thread_it_does_not_have(
    team: AssistantCatalog, saver: BaseCheckpointSaver[Any], thread: RunnableConfig
) -> None:
    graph = build_assistant_graph(
        "writer", team, model=ScriptedModels({"writer": []}), checkpointer=saver
    )
    assert compact_thread(graph, thread, finished=True) is False


# --- acompact_thread: the same on each async saver, opened as aopen_checkpointer does ----


@pytest.fixture(params=SAVERS)
async def async_saver(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """An async saver of each kind (InMemorySaver is both)."""
    if request.param == "memory":
        yield InMemorySaver()
        return
    db = tmp_path / "threads.sqlite" if request.param == "sqlite" else None
    async with aopen_checkpointer(db or request.getfixturevalue("postgres_url")) as opened:
        yield opened


@pytest.fixture
async def async_thread(async_saver: BaseCheckpointSaver[Any]) -> AsyncIterator[RunnableConfig]:
    """A thread of its own (see ``thread``)."""
    thread_id = f"async-compaction-{uuid.uuid4()}"
    yield {"configurable": {"thread_id": thread_id}}
    await async_saver.adelete_thread(thread_id)


async def acheckpoints(saver: BaseCheckpointSaver[Any], thread: RunnableConfig) -> list[Any]:
    """The thread's checkpoint tuples, of every namespace."""
    return [c async for c in saver.alist(thread)]


def asker() -> tuple[AssistantCatalog, ScriptedModels]:
    """An assistant that asks the person once, then thanks them."""
    team = AssistantCatalog.from_schemas(
        [{"name": "asker", "description": "d", "instructions": "i", "ask_user": True}]
    )
    models = ScriptedModels(
        {"asker": [ai(tool_calls=[call_tool("ask_user", question="Which?")]), "thanks"]}
    )
    return team, models


async def test_each_async_saver_compacts_a_finished_thread_and_the_thread_goes_on(
    team: AssistantCatalog,
    async_saver: BaseCheckpointSaver[Any],
    async_thread: RunnableConfig,
) -> None:
    models = ScriptedModels(
        {"proxy": [delegate_to_writer] * 6, "writer": [lambda c: f"part {len(c.messages)}"] * 3}
    )
    graph = build_assistant_graph("proxy", team, model=models, checkpointer=async_saver)
    for turn in range(2):
        await graph.ainvoke({"messages": [("user", f"turn {turn}")]}, async_thread)
    before = await graph.aget_state(async_thread)
    history = await acheckpoints(async_saver, async_thread)
    namespaces = {c.config["configurable"]["checkpoint_ns"] for c in history}

    assert await acompact_thread(graph, async_thread) is True

    assert len(history) > 10 and len(namespaces) == 3  # the root and two writer runs
    [kept] = await acheckpoints(async_saver, async_thread)
    assert kept.config["configurable"]["checkpoint_ns"] == ""
    assert (
        kept.config["configurable"]["checkpoint_id"]
        == before.config["configurable"]["checkpoint_id"]
    )
    assert kept.parent_config is None and not kept.pending_writes
    after = await graph.aget_state(async_thread)
    assert after.values == before.values and not after.next
    # The thread goes on: the writer's conversation is resumed by its uid, from the state.
    result = await graph.ainvoke({"messages": [("user", "turn 2")]}, async_thread)
    third = models.calls("writer")[2]
    assert [m.content for m in third.messages[1:]] == ["more", "part 2", "more", "part 4", "more"]
    assert len(result["messages"]) == 12
    assert len(result["sub_assistant_states"]) == 1


async def test_each_async_saver_leaves_a_thread_waiting_for_input_alone(
    async_saver: BaseCheckpointSaver[Any], async_thread: RunnableConfig
) -> None:
    team, models = asker()
    graph = build_assistant_graph("asker", team, model=models, checkpointer=async_saver)
    await graph.ainvoke({"messages": [("user", "go")]}, async_thread)
    before = [c.config for c in await acheckpoints(async_saver, async_thread)]

    assert await acompact_thread(graph, async_thread) is False

    assert [c.config for c in await acheckpoints(async_saver, async_thread)] == before
    answered = await graph.ainvoke(Command(resume="that one"), async_thread)
    assert answered["messages"][-1].content == "thanks"
    assert await acompact_thread(graph, async_thread) is True
    assert len(await acheckpoints(async_saver, async_thread)) == 1


async def test_each_async_saver_leaves_a_thread_alone_while_a_run_holds_it(
    team: AssistantCatalog, async_saver: BaseCheckpointSaver[Any], async_thread: RunnableConfig
) -> None:
    # finished=True skips the state check, as the CLI's compaction after its own run
    # does: only the thread guard stands between the compaction and a run started since.
    models = ScriptedModels({"writer": ["hi", "again"]}, latency=0.3)
    graph = build_assistant_graph("writer", team, model=models, checkpointer=async_saver)
    await graph.ainvoke({"messages": [("user", "go")]}, async_thread)
    run = asyncio.create_task(graph.ainvoke({"messages": [("user", "more")]}, async_thread))
    while not (await graph.aget_state(async_thread)).next:  # the run holds the thread
        assert not run.done(), "the run ended before it was seen holding the thread"
        await asyncio.sleep(0.01)

    assert await acompact_thread(graph, async_thread, finished=True) is False

    assert [m.content for m in (await run)["messages"]] == ["go", "hi", "more", "again"]
    assert len(await acheckpoints(async_saver, async_thread)) > 1
    assert await acompact_thread(graph, async_thread, finished=True) is True


class SlowToTake(ThreadGuard):
    """A guard that takes a while to take a thread, and says when it has."""

    taken = threading.Event()

    def try_hold(self, config: RunnableConfig) -> Any:
        time.sleep(0.2)
        held = super().try_hold(config)
        self.taken.set()
        return held


async def test_a_cancelled_async_compaction_gives_the_thread_back(
    team: AssistantCatalog,
) -> None:
    # The thread is taken in a worker thread, which cancelling cannot stop: what it takes
    # after the caller is gone must still be given back, or no run could use the thread.
    saver = InMemorySaver()
    graph = build_assistant_graph(
        "writer", team, model=ScriptedModels({"writer": ["hi", "again"]}), checkpointer=saver
    )
    await graph.ainvoke({"messages": [("user", "go")]}, CONFIG)
    guard = SlowToTake(saver)
    guard.taken.clear()
    graph.thread_guard = guard  # type: ignore[attr-defined]  # a GuardedGraph's
    compaction = asyncio.create_task(acompact_thread(graph, CONFIG, finished=True))
    await asyncio.sleep(0.05)  # the worker is taking the thread

    compaction.cancel()

    with pytest.raises(asyncio.CancelledError):
        await compaction
    assert await asyncio.to_thread(guard.taken.wait, 5)
    deadline = time.monotonic() + 5
    while (held := ThreadGuard(saver).try_hold(CONFIG)) is None:
        assert time.monotonic() < deadline, "the thread was never given back"
        await asyncio.sleep(0.01)
    held.give_back()
    result = await graph.ainvoke({"messages": [("user", "more")]}, CONFIG)
    assert result["messages"][-1].content == "again"


def extend(items: list[str], updates: Sequence[list[str]]) -> list[str]:
    """A DeltaChannel's reducer: it gets the updates of a step as a batch."""
    return [*items, *(item for update in updates for item in update)]


class Counted(TypedDict):
    items: Annotated[list[str], DeltaChannel(extend)]


def test_a_graph_with_a_delta_channel_is_not_compacted(
    saver: BaseCheckpointSaver[Any], thread: RunnableConfig
) -> None:
    # A DeltaChannel rebuilds its value from older checkpoints: keeping only the latest
    # one would empty it (it did, before compact_thread checked).
    builder = StateGraph(Counted)
    builder.add_node("add", lambda state: {"items": ["added"]})
    builder.set_entry_point("add")
    builder.set_finish_point("add")
    graph = builder.compile(checkpointer=saver)
    for turn in range(3):
        graph.invoke({"items": [f"turn {turn}"]}, thread)
    count = len(checkpoints(saver, thread))

    assert compact_thread(graph, thread) is False

    assert len(checkpoints(saver, thread)) == count
    assert graph.get_state(thread).values["items"][-2:] == ["turn 2", "added"]


# --- The SQLite adapter reads SqliteSaver's private tables: their shape is pinned --------


def test_sqlite_saver_storage_still_has_the_columns_the_adapter_relies_on(
    tmp_path: Path,
) -> None:
    """A failure here means SqliteSaver changed its storage: check ``_compact_sqlite``.

    The adapter selects the latest root checkpoint by ``checkpoint_id`` (as ``get_tuple``
    does), deletes the other rows of the thread from both tables by ``thread_id``,
    ``checkpoint_ns`` and ``checkpoint_id``, and clears the kept row's
    ``parent_checkpoint_id``. Any other change of the tables fails this test too, because
    a new column could hold something the adapter then leaves behind or breaks.
    """
    with open_checkpointer(tmp_path / "threads.sqlite", messages_once=False) as saver:
        assert isinstance(saver, SqliteSaver)
        columns = {
            table: [
                (name, kind, pk)
                for _, name, kind, _, _, pk in saver.conn.execute(f"PRAGMA table_info({table})")
            ]
            for table in ("checkpoints", "writes")
        }
        tables = sorted(
            name
            for (name,) in saver.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        )

    assert tables == ["checkpoints", "writes"]
    assert columns == {
        "checkpoints": [
            ("thread_id", "TEXT", 1),
            ("checkpoint_ns", "TEXT", 2),
            ("checkpoint_id", "TEXT", 3),
            ("parent_checkpoint_id", "TEXT", 0),
            ("type", "TEXT", 0),
            ("checkpoint", "BLOB", 0),
            ("metadata", "BLOB", 0),
        ],
        "writes": [
            ("thread_id", "TEXT", 1),
            ("checkpoint_ns", "TEXT", 2),
            ("checkpoint_id", "TEXT", 3),
            ("task_id", "TEXT", 4),
            ("task_path", "TEXT", 0),
            ("idx", "INTEGER", 5),
            ("channel", "TEXT", 0),
            ("type", "TEXT", 0),
            ("value", "BLOB", 0),
        ],
    }


def test_sqlite_compaction_is_one_transaction(
    team: AssistantCatalog, connection: sqlite3.Connection
) -> None:
    models = ScriptedModels({"writer": ["hi"]})
    graph = build_assistant_graph(
        "writer", team, model=models, checkpointer=SqliteSaver(connection)
    )
    graph.invoke({"messages": [("user", "go")]}, CONFIG)
    before = rows(connection, "checkpoints")
    statements: list[str] = []
    connection.set_trace_callback(statements.append)

    assert compact_thread(graph, CONFIG, finished=True) is True

    connection.set_trace_callback(None)
    assert before > 1 and rows(connection, "checkpoints") == 1
    assert [s.split()[0] for s in statements] == [
        "BEGIN",
        "SELECT",
        "DELETE",
        "DELETE",
        "UPDATE",
        "COMMIT",
    ]


async def test_async_sqlite_compaction_is_one_transaction(
    team: AssistantCatalog, tmp_path: Path
) -> None:
    # The adapter's own transaction, on the plain saver (the message store's clean-up is a
    # transaction of its own after it: tests/test_message_store.py).
    async with aopen_checkpointer(tmp_path / "threads.sqlite", messages_once=False) as saver:
        assert isinstance(saver, AsyncSqliteSaver)
        graph = build_assistant_graph(
            "writer", team, model=ScriptedModels({"writer": ["hi"]}), checkpointer=saver
        )
        await graph.ainvoke({"messages": [("user", "go")]}, CONFIG)
        before = len([c async for c in saver.alist(CONFIG)])
        statements: list[str] = []
        await saver.conn.set_trace_callback(statements.append)

        assert await acompact_thread(graph, CONFIG, finished=True) is True

        compaction = list(statements)
        assert before > 1 and len([c async for c in saver.alist(CONFIG)]) == 1
    assert [s.split()[0] for s in compaction] == [
        "BEGIN",
        "SELECT",
        "DELETE",
        "DELETE",
        "UPDATE",
        "COMMIT",
    ]
