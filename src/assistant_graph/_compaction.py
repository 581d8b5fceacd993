"""Compacting a finished thread: keeping its latest checkpoint, dropping the history.

LangGraph writes a checkpoint after every step, and each holds the whole state, so the
stored history of a thread grows with the square of its length (measured in
``benchmarks/``: 118 MB after 80 turns of delegation on SQLite). Resuming needs only the
latest checkpoint of the root graph once a run has finished: sub-assistant conversations
live in its state (``sub_assistant_states``), so the checkpoints of finished sub-assistant
runs are history too. :func:`compact_thread` deletes all of it, which keeps storage linear
in the thread's length, at the price of LangGraph's time travel to earlier steps.

It refuses a thread that a run holds (see :mod:`._thread_guard`) and a thread whose run
has not finished (waiting for input, failed or killed mid-run): that run's pending writes
and sub-assistant checkpoints are exactly what continuing it needs.
:func:`acompact_thread` is the async twin, for the async savers: the decision is the same
code, only reading the state, taking the thread and deleting are awaited.

Each kind of saver has one small adapter, chosen by the saver's type:

``PostgresSaver``, ``AsyncPostgresSaver`` (``langgraph-checkpoint-postgres`` 3.2 or later)
    Their public ``prune(strategy="keep_latest")`` (``aprune``), in one transaction per
    thread on one snapshot. It keeps the latest checkpoint of *each* namespace, with that
    checkpoint's pending writes and the blobs it references; it deletes the older
    checkpoints *with their writes* and the blobs no kept checkpoint references, and
    clears the kept one's parent link. Sub-graph namespaces do not keep one checkpoint
    each: the namespace of a sub-graph *call* (``node:task_id``, as every sub-assistant
    run is) is deleted whole once the root checkpoint the call started from is not the
    one kept, so a finished thread of ours keeps exactly one checkpoint. Only a
    ``checkpointer=True`` sub-graph (a namespace without a task id) keeps its latest.
    Earlier releases have no ``prune`` (the base class's raises ``NotImplementedError``):
    their threads are not compacted.
``InMemorySaver`` (both functions)
    Public APIs only: the latest root checkpoint is read (``get_tuple``), the thread
    deleted (``delete_thread``) and the checkpoint put back without a parent (``put``),
    with its pending writes (``put_writes``). Between the delete and the put the thread
    does not exist, but there is no crash window to worry about: a crash loses the
    whole in-memory store anyway. Nothing of it waits, so the async twin runs the same
    function.
``SqliteSaver``, ``AsyncSqliteSaver``
    They have no public way to delete part of a thread, so this one adapter deletes rows
    from their tables, in one ``BEGIN IMMEDIATE`` transaction (the same statements on
    the async saver's aiosqlite connection). ``tests/test_compaction.py`` checks the
    columns it relies on against a real SqliteSaver database, so a change of the
    saver's storage fails a test rather than corrupting threads.
Any other saver
    ``ShallowPostgresSaver`` (which keeps one checkpoint anyway), third-party savers,
    and a saver of the other kind (an async saver given to :func:`compact_thread`, a sync
    one to :func:`acompact_thread`) are not compacted: the function returns False and
    changes nothing.

A saver opened with :func:`~assistant_graph.store_messages_once` (as
``open_checkpointer`` opens them) is compacted by the adapter of the saver inside it; then
the thread's stored messages that the kept checkpoint and its pending writes do not refer
to are deleted, in a transaction of their own (a crash in between leaves rows nothing
refers to, which the next compaction removes).

Unlike Postgres, the SQLite and in-memory adapters keep nothing outside the root
namespace, so they suit graphs whose sub-graphs inherit the checkpointer per call (all of
ours), not a graph with a ``checkpointer=True`` sub-graph. A graph with a ``DeltaChannel``
is never compacted: such a channel rebuilds its value from older checkpoints, and would
come back empty.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.pregel import Pregel
from langgraph.types import StateSnapshot

from assistant_graph._message_store import MessageStoreSaver
from assistant_graph._thread_guard import ThreadGuard, guard_for

__all__ = ["acompact_thread", "compact_thread"]

_Adapter = Callable[[Any, str], bool]
"""Compacts the thread (by id) of a saver; False if the thread has no checkpoint."""
_AsyncAdapter = Callable[[Any, str], Awaitable[bool]]
"""The same, for a saver whose I/O is awaited."""

# The columns these statements use are checked by tests/test_compaction.py.
_SQLITE_LATEST = (
    "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' "
    "ORDER BY checkpoint_id DESC LIMIT 1"
)
_SQLITE_DELETE_HISTORY = tuple(
    f"DELETE FROM {table} WHERE thread_id = ? AND (checkpoint_ns != '' OR checkpoint_id != ?)"
    for table in ("writes", "checkpoints")
)
_SQLITE_FORGET_PARENT = (
    "UPDATE checkpoints SET parent_checkpoint_id = NULL "
    "WHERE thread_id = ? AND checkpoint_ns = '' AND checkpoint_id = ?"
)


def compact_thread(
    graph: Pregel[Any, Any, Any, Any], config: RunnableConfig, *, finished: bool = False
) -> bool:
    """Delete every checkpoint of a finished thread but the latest of its root graph.

    Args:
        graph: The graph the thread belongs to, compiled with its checkpointer.
        config: Names the thread (``{"configurable": {"thread_id": ...}}``).
        finished: The caller knows the thread's last run finished (e.g. its event stream
            ended with status ``completed`` or ``incomplete``); skips loading the thread's
            state to check that nothing is pending.

    Returns:
        Whether the thread was compacted: False if a run holds the thread (see
        :mod:`._thread_guard`; it is compacted while no run can start), if its run has
        not finished (something is pending: input requests, or steps of a run that failed
        or was killed), if it has no checkpoint, if the graph has a ``DeltaChannel``, or
        if the checkpointer is not ``InMemorySaver``, ``SqliteSaver`` or
        ``PostgresSaver`` (an async saver's threads are compacted by
        :func:`acompact_thread`).

    Example:
        >>> graph.invoke({"messages": [("user", "Hi")]}, config)  # doctest: +SKIP
        >>> compact_thread(graph, config)  # doctest: +SKIP
        True
    """
    adapter = _sync_adapter(graph.checkpointer)
    if adapter is None or _rebuilds_values_from_history(graph):
        return False
    with _holding(_guard_of(graph), config) as held:
        if not held or (not finished and _unfinished(graph.get_state(config))):
            return False
        return adapter(graph.checkpointer, _thread_id(config))


async def acompact_thread(
    graph: Pregel[Any, Any, Any, Any], config: RunnableConfig, *, finished: bool = False
) -> bool:
    """The async twin of :func:`compact_thread`, for the async savers.

    The same decision, with the state read, the thread taken and the rows deleted
    without blocking the event loop. It compacts the threads of ``InMemorySaver``,
    ``AsyncSqliteSaver`` and ``AsyncPostgresSaver``; for a sync saver it returns False.

    Example:
        >>> async with aopen_checkpointer("threads.sqlite") as saver:  # doctest: +SKIP
        ...     graph = build_assistant_graph("proxy", catalog, checkpointer=saver)
        ...     await graph.ainvoke({"messages": [("user", "Hi")]}, config)
        ...     await acompact_thread(graph, config)
        True
    """
    adapter = _async_adapter(graph.checkpointer)
    if adapter is None or _rebuilds_values_from_history(graph):
        return False
    async with _aholding(_guard_of(graph), config) as held:
        if not held or (not finished and _unfinished(await graph.aget_state(config))):
            return False
        return await adapter(graph.checkpointer, _thread_id(config))


# --- The decision, shared by both: which saver, the thread taken, nothing pending ------


def _sync_adapter(checkpointer: object) -> _Adapter | None:
    """The adapter that compacts threads of this saver, or None if there is none."""
    if isinstance(checkpointer, MessageStoreSaver):
        inner = _sync_adapter(checkpointer.saver)
        return None if inner is None else partial(_compact_with_messages, inner)
    if isinstance(checkpointer, InMemorySaver):
        return _compact_in_memory
    if isinstance(checkpointer, SqliteSaver):
        return _compact_sqlite
    postgres = _postgres_saver("langgraph.checkpoint.postgres", "PostgresSaver")
    return _compact_postgres if postgres and isinstance(checkpointer, postgres) else None


def _async_adapter(checkpointer: object) -> _AsyncAdapter | None:
    """The adapter that compacts threads of this async saver, or None if there is none."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    if isinstance(checkpointer, MessageStoreSaver):
        inner = _async_adapter(checkpointer.saver)
        return None if inner is None else partial(_acompact_with_messages, inner)
    if isinstance(checkpointer, InMemorySaver):
        return _acompact_in_memory
    if isinstance(checkpointer, AsyncSqliteSaver):
        return _acompact_sqlite
    postgres = _postgres_saver("langgraph.checkpoint.postgres.aio", "AsyncPostgresSaver")
    return _acompact_postgres if postgres and isinstance(checkpointer, postgres) else None


def _postgres_saver(module: str, name: str) -> type | None:
    """A saver class of the optional extra ``postgres``, or None if it is not installed."""
    try:
        # Imported only here: the extra ``postgres`` is optional.
        saver: type = getattr(importlib.import_module(module), name)
    except ImportError:
        return None
    return saver


def _rebuilds_values_from_history(graph: Pregel[Any, Any, Any, Any]) -> bool:
    """Whether a channel of the graph needs older checkpoints to rebuild its value."""
    try:
        from langgraph.channels import DeltaChannel
    except ImportError:  # LangGraph releases before DeltaChannel existed
        return False
    return any(isinstance(channel, DeltaChannel) for channel in graph.channels.values())


def _unfinished(state: StateSnapshot) -> bool:
    """Whether the thread's last run left something to continue (input requests, or the
    steps of a run that failed or was killed)."""
    return bool(state.next or state.interrupts)


def _guard_of(graph: Pregel[Any, Any, Any, Any]) -> ThreadGuard | None:
    """The guard the graph's runs take their thread with (one for its saver if the graph
    was compiled elsewhere)."""
    guard: ThreadGuard | None = getattr(graph, "thread_guard", None)
    return guard or guard_for(graph.checkpointer)


class _Held(Protocol):
    """A thread taken by :meth:`ThreadGuard.try_hold`."""

    def give_back(self) -> None:
        """Let runs use the thread again."""


@contextmanager
def _holding(guard: ThreadGuard | None, config: RunnableConfig) -> Iterator[bool]:
    """Take the thread now if no run holds it; yields whether it was (or needs no
    taking: a graph without a checkpointer), and gives it back after the block."""
    held = guard.try_hold(config) if guard is not None else None
    try:
        yield guard is None or held is not None
    finally:
        if held is not None:
            held.give_back()


@asynccontextmanager
async def _aholding(guard: ThreadGuard | None, config: RunnableConfig) -> AsyncIterator[bool]:
    """:func:`_holding` without blocking the event loop (a PostgreSQL lock connects)."""
    held = await _atry_hold(guard, config) if guard is not None else None
    try:
        yield guard is None or held is not None
    finally:
        if held is not None:
            await asyncio.to_thread(held.give_back)


async def _atry_hold(guard: ThreadGuard, config: RunnableConfig) -> _Held | None:
    """``guard.try_hold`` in a worker thread. A worker cannot be stopped: if the caller is
    cancelled meanwhile, what the worker takes is given back when it is done, or the
    thread would stay taken for as long as the process lives."""
    taking = asyncio.ensure_future(asyncio.to_thread(guard.try_hold, config))
    try:
        return await asyncio.shield(taking)
    except asyncio.CancelledError:
        taking.add_done_callback(_give_back_if_taken)
        raise


def _give_back_if_taken(taking: asyncio.Future[Any]) -> None:
    if not taking.cancelled() and taking.exception() is None:
        held = taking.result()
        if held is not None:
            held.give_back()


def _thread_id(config: RunnableConfig) -> str:
    return str(config["configurable"]["thread_id"])


def _root(thread_id: str) -> RunnableConfig:
    """The config naming the root graph's namespace of a thread."""
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


# --- The adapters: one per kind of saver, sync and async ----------------------------


def _compact_with_messages(adapter: _Adapter, saver: MessageStoreSaver, thread_id: str) -> bool:
    """Compact the wrapped saver's thread, then drop the messages nothing refers to now."""
    compacted = adapter(saver.saver, thread_id)
    if compacted:
        saver.drop_unreferenced(thread_id)
    return compacted


async def _acompact_with_messages(
    adapter: _AsyncAdapter, saver: MessageStoreSaver, thread_id: str
) -> bool:
    """:func:`_compact_with_messages`, awaited."""
    compacted = await adapter(saver.saver, thread_id)
    if compacted:
        await saver.adrop_unreferenced(thread_id)
    return compacted


def _compact_postgres(saver: Any, thread_id: str) -> bool:
    """``PostgresSaver.prune``, which keeps the latest checkpoint of each namespace."""
    if saver.get_tuple(_root(thread_id)) is None:
        return False
    try:
        saver.prune([thread_id], strategy="keep_latest")
    except NotImplementedError:
        # Releases before 3.2 inherit BaseCheckpointSaver.prune, which only raises; 3.2
        # raises for a thread with a DeltaChannel. Either way nothing was deleted.
        return False
    return True


async def _acompact_postgres(saver: Any, thread_id: str) -> bool:
    """``AsyncPostgresSaver.aprune``: :func:`_compact_postgres`, awaited."""
    if await saver.aget_tuple(_root(thread_id)) is None:
        return False
    try:
        await saver.aprune([thread_id], strategy="keep_latest")
    except NotImplementedError:  # as in _compact_postgres
        return False
    return True


def _compact_in_memory(saver: BaseCheckpointSaver[Any], thread_id: str) -> bool:
    """Delete the thread and put its latest root checkpoint back, through public APIs."""
    latest = saver.get_tuple(_root(thread_id))
    if latest is None:
        return False
    saver.delete_thread(thread_id)
    # No checkpoint_id in the config: the checkpoint goes back without a parent. All its
    # channels count as new, so every value is stored again.
    kept = saver.put(
        _root(thread_id),
        latest.checkpoint,
        latest.metadata,
        latest.checkpoint["channel_versions"],
    )
    # Normally none once a run has finished; put back per task, in their order.
    by_task: dict[str, list[tuple[str, Any]]] = {}
    for task_id, channel, value in latest.pending_writes or ():
        by_task.setdefault(task_id, []).append((channel, value))
    for task_id, writes in by_task.items():
        saver.put_writes(kept, writes, task_id)
    return True


async def _acompact_in_memory(saver: BaseCheckpointSaver[Any], thread_id: str) -> bool:
    """:func:`_compact_in_memory` itself: an in-memory saver never waits."""
    return _compact_in_memory(saver, thread_id)


def _compact_sqlite(saver: SqliteSaver, thread_id: str) -> bool:
    """Delete the history rows from SqliteSaver's tables (it has no public way to)."""
    connection = saver.conn
    # The saver's lock keeps this process's runs out; the SQLite transaction the others.
    with saver.lock, connection:
        saver.setup()
        # IMMEDIATE: take the write lock before reading which checkpoint is the latest, so
        # no other connection can add a newer one that the deletes would then remove.
        # (A connection in autocommit=False mode is always in a transaction already.)
        if not connection.in_transaction:
            connection.execute("BEGIN IMMEDIATE")
        row = connection.execute(_SQLITE_LATEST, (thread_id,)).fetchone()
        if row is None:
            return False
        for statement in (*_SQLITE_DELETE_HISTORY, _SQLITE_FORGET_PARENT):
            connection.execute(statement, (thread_id, row[0]))
    return True


async def _acompact_sqlite(saver: Any, thread_id: str) -> bool:
    """:func:`_compact_sqlite` on ``AsyncSqliteSaver``'s aiosqlite connection."""
    connection = saver.conn
    await saver.setup()  # before the lock: setup takes it too
    async with saver.lock:
        if not connection.in_transaction:  # IMMEDIATE, as in _compact_sqlite
            await connection.execute("BEGIN IMMEDIATE")
        try:
            async with connection.execute(_SQLITE_LATEST, (thread_id,)) as cursor:
                row = await cursor.fetchone()
            for statement in (*_SQLITE_DELETE_HISTORY, _SQLITE_FORGET_PARENT):
                if row is not None:
                    await connection.execute(statement, (thread_id, row[0]))
        except BaseException:
            await connection.rollback()
            raise
        await connection.commit()
    return row is not None
