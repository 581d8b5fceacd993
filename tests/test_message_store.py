"""Each message stored once: checkpoints refer to messages kept in a table beside the
saver's, on every saver we support, with the history, old threads, compaction and
crash ordering intact."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from assistant_graph import (
    AssistantCatalog,
    CheckpointerError,
    ThreadBusyError,
    acompact_thread,
    aopen_checkpointer,
    build_assistant_graph,
    compact_thread,
    open_checkpointer,
    read_artifact,
    store_messages_once,
)
from assistant_graph._message_refs import MessageCodec, clear_caches, is_reference
from assistant_graph._message_store import MessageStoreSaver, base_saver
from assistant_graph._thread_guard import guard_for
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant

DURABLE = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""Stores something of which survives a crash."""
SAVERS = ["memory", *DURABLE]


def delegate_to_writer(call: ModelCall) -> Any:
    """Resume the writer's conversation if there is one, else open it; then answer."""
    results = [m for m in call.messages if isinstance(m, ToolMessage)]
    if call.messages[-1].type == "tool":
        return "ok"
    uid = read_artifact(results[-1])["subgraph_uid"] if results else None  # type: ignore[index]
    return ai(tool_calls=[call_sub_assistant("writer", "more", resume_conversation_uid=uid)])


def models(turns: int) -> ScriptedModels:
    return ScriptedModels(
        {
            "proxy": [delegate_to_writer] * (2 * turns),
            "writer": [lambda c: f"part {len(c.messages)}"] * turns,
        }
    )


@pytest.fixture(params=SAVERS)
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStoreSaver]:
    """A wrapped saver of each kind, opened as the CLI opens it (memory: wrapped here)."""
    if request.param == "memory":
        yield store_messages_once(InMemorySaver())
        return
    db = tmp_path / "threads.sqlite" if request.param == "sqlite" else None
    with open_checkpointer(db or request.getfixturevalue("postgres_url")) as opened:
        assert isinstance(opened, MessageStoreSaver)
        yield opened


@pytest.fixture
def thread(saver: MessageStoreSaver) -> Iterator[RunnableConfig]:
    """A thread of its own (the PostgreSQL database is shared by the tests)."""
    thread_id = f"store-{uuid.uuid4().hex[:12]}"
    yield {"configurable": {"thread_id": thread_id}}
    saver.delete_thread(thread_id)


def run_turns(graph: Any, thread: RunnableConfig, turns: range) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for turn in turns:
        result = graph.invoke({"messages": [("user", f"turn {turn}")]}, thread)
    return result


def thread_id(thread: RunnableConfig) -> str:
    return str(thread["configurable"]["thread_id"])


def shape(values: dict[str, Any]) -> list[Any]:
    """The messages of a state and of its sub-conversations, by type, id and content
    (artifacts come back from any saver as plain data, so messages are not compared whole)."""

    def of(messages: Any) -> list[tuple[str, Any, Any]]:
        return [(m.type, m.id, m.content) for m in messages]

    subs = values.get("sub_assistant_states") or {}
    return [of(values["messages"]), {uid: of(sub["messages"]) for uid, sub in subs.items()}]


def test_each_message_is_stored_once_and_every_checkpoint_refers_to_it(
    team: AssistantCatalog, saver: MessageStoreSaver, thread: RunnableConfig
) -> None:
    graph = build_assistant_graph("proxy", team, model=models(3), checkpointer=saver)
    result = run_turns(graph, thread, range(3))

    [writer] = result["sub_assistant_states"].values()
    assert len(result["messages"]) == 12 and len(writer["messages"]) == 6
    # One row per distinct message of the thread, whatever the number of checkpoints.
    assert len(saver.rows.stored_digests(thread_id(thread))) == 12 + 6
    raw = list(saver.saver.list(thread))
    assert len(raw) > 20
    for checkpoint in raw:
        messages = checkpoint.checkpoint["channel_values"].get("messages")
        assert messages is None or is_reference(messages)
    # Read back from the rows alone (a new process has none of them cached).
    clear_caches()
    assert shape(graph.get_state(thread).values) == shape(result)


def test_stored_bytes_grow_linearly_with_the_turns(team: AssistantCatalog, tmp_path: Path) -> None:
    def stored(db: Path, wrapped: bool, turns: int) -> float:
        with open_checkpointer(db, messages_once=wrapped) as saver:
            graph = build_assistant_graph("proxy", team, model=models(turns), checkpointer=saver)
            config: RunnableConfig = {"configurable": {"thread_id": "t"}}
            run_turns(graph, config, range(turns // 2))
            half = _payload(db)
            run_turns(graph, config, range(turns // 2, turns))
            return _payload(db) / half

    # Bytes after 16 turns over bytes after 8: about 2 when each turn stores what it adds,
    # about 4 when every checkpoint copies the conversation (LangGraph's own saver).
    assert stored(tmp_path / "once.sqlite", True, 16) < 2.4
    assert stored(tmp_path / "plain.sqlite", False, 16) > 3.0


def _payload(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master")}
        total = connection.execute(
            "SELECT sum(length(checkpoint) + length(metadata)) FROM checkpoints"
        ).fetchone()[0]
        total += connection.execute("SELECT sum(length(value)) FROM writes").fetchone()[0]
        if "assistant_graph_messages" in tables:
            total += connection.execute(
                "SELECT sum(length(hash) + length(data)) FROM assistant_graph_messages"
            ).fetchone()[0]
    connection.close()
    return int(total)


def test_time_travel_forks_the_thread_from_an_earlier_checkpoint(
    team: AssistantCatalog, saver: MessageStoreSaver, thread: RunnableConfig
) -> None:
    scripted = models(3)
    graph = build_assistant_graph("proxy", team, model=scripted, checkpointer=saver)
    run_turns(graph, thread, range(2))
    history = list(graph.get_state_history(thread))
    shapes = {s.config["configurable"]["checkpoint_id"]: shape(s.values) for s in history[:-1]}
    after_first = next(s for s in history if len(s.values["messages"]) == 4 and not s.next)
    clear_caches()

    forked = graph.invoke({"messages": [("user", "instead")]}, after_first.config)

    assert shape(forked)[0][:4] == shape(after_first.values)[0]
    assert forked["messages"][4].content == "instead" and len(forked["messages"]) == 8
    # The writer resumed the conversation as it was after the first turn.
    third = scripted.calls("writer")[2]
    assert [m.content for m in third.messages[1:]] == ["more", "part 2", "more"]
    # Every checkpoint of the history still loads, each with the messages it had.
    clear_caches()
    again = {
        s.config["configurable"]["checkpoint_id"]: shape(s.values)
        for s in graph.get_state_history(thread)
        if s.config["configurable"]["checkpoint_id"] in shapes
    }
    assert again == shapes and len(shapes) > 10


def test_threads_written_without_the_store_are_read_and_continued_with_it(
    team: AssistantCatalog, tmp_path: Path
) -> None:
    db = tmp_path / "threads.sqlite"
    config: RunnableConfig = {"configurable": {"thread_id": "old"}}
    scripted = models(2)
    with open_checkpointer(db, messages_once=False) as plain:
        graph = build_assistant_graph("proxy", team, model=scripted, checkpointer=plain)
        before = run_turns(graph, config, range(1))
    with open_checkpointer(db) as saver:
        graph = build_assistant_graph("proxy", team, model=scripted, checkpointer=saver)
        assert shape(graph.get_state(config).values) == shape(before)
        after = run_turns(graph, config, range(1, 2))
        clear_caches()
        assert shape(graph.get_state(config).values) == shape(after)
        assert len(after["messages"]) == 8
        third = scripted.calls("writer")[1]
        assert [m.content for m in third.messages[1:]] == ["more", "part 2", "more"]
        kinds = {
            is_reference(c.checkpoint["channel_values"].get("messages"))
            for c in base_saver(saver).list(config)
            if c.checkpoint["channel_values"].get("messages")
        }
        assert kinds == {True, False}  # old checkpoints as they were, new ones refer


def test_compaction_keeps_the_rows_the_kept_checkpoint_refers_to_and_no_others(
    team: AssistantCatalog, saver: MessageStoreSaver, thread: RunnableConfig
) -> None:
    graph = build_assistant_graph("proxy", team, model=models(3), checkpointer=saver)
    result = run_turns(graph, thread, range(2))
    # A crash between writing rows and the checkpoint leaves rows nothing refers to (on
    # SQLite they are committed by the next checkpoint's transaction).
    saver.rows.put(thread_id(thread), {b"\x01" * 16: ("msgpack", b"\x90")})
    graph.invoke({"messages": [("user", "turn 2")]}, thread)
    stored = saver.rows.stored_digests(thread_id(thread))
    assert b"\x01" * 16 in stored

    assert compact_thread(graph, thread) is True

    kept = saver.rows.stored_digests(thread_id(thread))
    assert b"\x01" * 16 not in kept
    assert len(kept) == 12 + 6  # each message of the latest state, once
    clear_caches()
    values = graph.get_state(thread).values
    assert len(values["messages"]) == 12
    assert shape(values)[0][:8] == shape(result)[0]


def test_a_checkpoint_whose_rows_are_gone_is_an_error_naming_the_thread(
    team: AssistantCatalog, saver: MessageStoreSaver, thread: RunnableConfig
) -> None:
    graph = build_assistant_graph("proxy", team, model=models(1), checkpointer=saver)
    run_turns(graph, thread, range(1))
    saver.rows.delete_thread(thread_id(thread))
    clear_caches()
    with pytest.raises(CheckpointerError, match=thread_id(thread)):
        graph.get_state(thread)


@pytest.mark.parametrize("saver", DURABLE, indirect=True)
def test_rows_are_committed_no_later_than_the_checkpoint_that_refers_to_them(
    team: AssistantCatalog, saver: MessageStoreSaver, thread: RunnableConfig, tmp_path: Path
) -> None:
    committed = _committed_digests(saver, tmp_path)
    checked: list[int] = []
    real_put = saver.saver.put

    def put_then_check(config: Any, checkpoint: Any, *args: Any) -> Any:
        saved = real_put(config, checkpoint, *args)
        # What another connection sees right after the checkpoint is committed.
        rows = committed(thread_id(thread))
        for value in checkpoint["channel_values"].values():
            for digest in _digests(value):
                assert digest in rows
        checked.append(1)
        return saved

    saver.saver.put = put_then_check  # type: ignore[method-assign,assignment]
    graph = build_assistant_graph("proxy", team, model=models(2), checkpointer=saver)
    run_turns(graph, thread, range(2))
    assert len(checked) > 10


def _digests(value: Any) -> Iterator[bytes]:
    """The digests a reference names directly (its chunks and its tail)."""
    if is_reference(value):
        yield from (bytes(d) for d in (*value["chunks"], *value["tail"]))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _digests(item)


def _committed_digests(saver: MessageStoreSaver, tmp_path: Path) -> Callable[[str], set[bytes]]:
    """Reads the digests of a thread through a connection of its own."""
    base: Any = saver.saver
    if base.__class__.__module__.startswith("langgraph.checkpoint.sqlite"):
        [(_, _, path)] = base.conn.execute("PRAGMA database_list").fetchall()

        def read_sqlite(thread: str) -> set[bytes]:
            with sqlite3.connect(path) as other:
                tables = {name for (name,) in other.execute("SELECT name FROM sqlite_master")}
                query = "SELECT hash FROM assistant_graph_messages WHERE thread_id = ?"
                found = set()
                if "assistant_graph_messages" in tables:  # made with the first rows
                    found = {bytes(d) for (d,) in other.execute(query, (thread,))}
            other.close()
            return found

        return read_sqlite
    import psycopg

    dsn = base.conn.info.dsn

    def read_postgres(thread: str) -> set[bytes]:
        with psycopg.connect(dsn) as other:
            query = "SELECT hash FROM assistant_graph_messages WHERE thread_id = %s"
            return {bytes(d) for (d,) in other.execute(query, (thread,))}

    return read_postgres


@pytest.fixture(params=SAVERS)
async def async_saver(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MessageStoreSaver]:
    """A wrapped async saver of each kind (InMemorySaver is both)."""
    if request.param == "memory":
        yield store_messages_once(InMemorySaver())
        return
    db = tmp_path / "threads.sqlite" if request.param == "sqlite" else None
    async with aopen_checkpointer(db or request.getfixturevalue("postgres_url")) as opened:
        assert isinstance(opened, MessageStoreSaver)
        yield opened


async def test_async_savers_store_each_message_once_and_compact(
    team: AssistantCatalog, async_saver: MessageStoreSaver
) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": f"async-{uuid.uuid4().hex[:12]}"}}
    graph = build_assistant_graph("proxy", team, model=models(3), checkpointer=async_saver)
    for turn in range(2):
        result = await graph.ainvoke({"messages": [("user", f"turn {turn}")]}, config)
    assert len(await async_saver.rows.astored_digests(thread_id(config))) == 8 + 4
    clear_caches()
    assert shape((await graph.aget_state(config)).values) == shape(result)

    assert await acompact_thread(graph, config) is True

    clear_caches()
    assert shape((await graph.aget_state(config)).values) == shape(result)
    after = await graph.ainvoke({"messages": [("user", "turn 2")]}, config)
    assert len(after["messages"]) == 12
    await async_saver.adelete_thread(thread_id(config))
    assert await async_saver.rows.astored_digests(thread_id(config)) == set()


def test_two_wrappers_of_one_saver_guard_the_same_threads(team: AssistantCatalog) -> None:
    saver = InMemorySaver()
    config: RunnableConfig = {"configurable": {"thread_id": "shared"}}
    held = guard_for(store_messages_once(saver)).try_hold(config)  # type: ignore[union-attr]
    assert held is not None
    graph = build_assistant_graph(
        "writer",
        team,
        model=ScriptedModels({"writer": ["hi"]}),
        checkpointer=store_messages_once(saver),
    )
    try:
        with pytest.raises(ThreadBusyError):
            graph.invoke({"messages": [("user", "go")]}, config)
    finally:
        held.give_back()
    assert graph.invoke({"messages": [("user", "go")]}, config)["messages"][-1].content == "hi"


def test_a_message_given_its_id_after_it_was_written_is_stored_with_its_id() -> None:
    # add_messages gives a node's new messages their ids in place, after the write that
    # carried them was stored: the checkpoint after it must refer to the message with its id.
    codec = MessageCodec(JsonPlusSerializer())
    message = ToolMessage("result", tool_call_id="call-1")
    codec.encode({"messages": [message]}, {})
    message.id = "given-later"
    rows: dict[bytes, Any] = {}
    reference = codec.encode([message], rows)
    clear_caches()
    resolution = codec.resolution(reference, "thread")
    while resolution.wanted():
        resolution.supply(rows)
    assert [m.id for m in resolution.value()] == ["given-later"]


async def test_sync_calls_of_an_async_store_on_its_loop_fail_instead_of_hanging(
    tmp_path: Path,
) -> None:
    async with aopen_checkpointer(tmp_path / "threads.sqlite") as saver:
        assert isinstance(saver, MessageStoreSaver)
        with pytest.raises(asyncio.InvalidStateError, match="another thread"):
            saver.rows.put("thread", {b"\x02" * 16: ("msgpack", b"\x90")})
        # From another thread it works, as the saver's own sync methods do.
        await asyncio.to_thread(saver.rows.put, "thread", {b"\x02" * 16: ("msgpack", b"\x90")})
        assert await saver.rows.astored_digests("thread") == {b"\x02" * 16}
