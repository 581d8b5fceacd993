"""Compacting a finished thread: keeping its latest checkpoint, dropping the history.

LangGraph writes a checkpoint after every step, and each holds the whole state, so the
stored history of a thread grows with the square of its length (measured in
``benchmarks/``: 118 MB after 80 turns of delegation on SQLite). Resuming needs only the
latest checkpoint of the root graph once a run has finished: sub-assistant conversations
live in its state (``sub_assistant_states``), so the checkpoints of finished sub-assistant
runs are history too. :func:`compact_thread` deletes all of it, which keeps storage linear
in the thread's length, at the price of LangGraph's time travel to earlier steps.

It refuses to touch a thread whose run has not finished (waiting for input, failed or
killed mid-run): that run's pending writes and sub-assistant checkpoints are exactly what
continuing it needs.

Each kind of saver has one small adapter, chosen by the saver's type:

``PostgresSaver`` (sync, ``langgraph-checkpoint-postgres`` 3.2 or later)
    Its public ``prune(strategy="keep_latest")``, in one transaction per thread on one
    snapshot. It keeps the latest checkpoint of *each* namespace, with that checkpoint's
    pending writes and the blobs it references; it deletes the older checkpoints *with
    their writes* and the blobs no kept checkpoint references, and clears the kept one's
    parent link. Sub-graph namespaces do not keep one checkpoint each: the namespace of a
    sub-graph *call* (``node:task_id``, as every sub-assistant run is) is deleted whole
    once the root checkpoint the call started from is not the one kept, so a finished
    thread of ours keeps exactly one checkpoint. Only a ``checkpointer=True`` sub-graph
    (a namespace without a task id) keeps its latest. Earlier releases have no ``prune``
    (the base class's raises ``NotImplementedError``): their threads are not compacted.
``InMemorySaver``
    Public APIs only: the latest root checkpoint is read (``get_tuple``), the thread
    deleted (``delete_thread``) and the checkpoint put back without a parent (``put``),
    with its pending writes (``put_writes``). Between the delete and the put the thread
    does not exist, but there is no crash window to worry about: a crash loses the
    whole in-memory store anyway.
``SqliteSaver``
    It has no public way to delete part of a thread, so this one adapter deletes rows
    from its tables, in one ``BEGIN IMMEDIATE`` transaction. ``tests/test_compaction.py``
    checks the columns it relies on against a real SqliteSaver database, so a change of
    the saver's storage fails a test rather than corrupting threads.
Any other saver
    The async savers, ``ShallowPostgresSaver`` (which keeps one checkpoint anyway) and
    third-party savers are not compacted: :func:`compact_thread` returns False and
    changes nothing.

Unlike Postgres, the SQLite and in-memory adapters keep nothing outside the root
namespace, so they suit graphs whose sub-graphs inherit the checkpointer per call (all of
ours), not a graph with a ``checkpointer=True`` sub-graph. A graph with a ``DeltaChannel``
is never compacted: such a channel rebuilds its value from older checkpoints, and would
come back empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.pregel import Pregel

from assistant_graph._thread_guard import guard_for

__all__ = ["compact_thread"]

_Adapter = Callable[[Any, str], bool]
"""Compacts the thread (by id) of a saver; False if the thread has no checkpoint."""

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
        not finished (something is
        pending: input requests, or steps of a run that failed or was killed), if it has
        no checkpoint, if the graph has a ``DeltaChannel``, or if the checkpointer is not
        ``InMemorySaver``, ``SqliteSaver`` or ``PostgresSaver`` (the async savers, for
        one, are not compacted: their history keeps growing with the square of a thread's
        length).
    """
    adapter = _adapter_for(graph.checkpointer)
    if adapter is None or _rebuilds_values_from_history(graph):
        return False
    guard = getattr(graph, "thread_guard", None) or guard_for(graph.checkpointer)
    held = guard.try_hold(config) if guard is not None else None
    if guard is not None and held is None:
        return False  # a run holds the thread: its history is not finished
    try:
        if not finished:
            state = graph.get_state(config)
            if state.next or state.interrupts:
                return False
        return adapter(graph.checkpointer, str(config["configurable"]["thread_id"]))
    finally:
        if held is not None:
            held.give_back()


def _adapter_for(checkpointer: object) -> _Adapter | None:
    """The adapter that compacts threads of this saver, or None if there is none."""
    if isinstance(checkpointer, InMemorySaver):
        return _compact_in_memory
    if isinstance(checkpointer, SqliteSaver):
        return _compact_sqlite
    try:
        # Imported only here: the extra ``postgres`` is optional.
        from langgraph.checkpoint.postgres import PostgresSaver
    except ImportError:
        return None
    return _compact_postgres if isinstance(checkpointer, PostgresSaver) else None


def _rebuilds_values_from_history(graph: Pregel[Any, Any, Any, Any]) -> bool:
    """Whether a channel of the graph needs older checkpoints to rebuild its value."""
    try:
        from langgraph.channels import DeltaChannel
    except ImportError:  # LangGraph releases before DeltaChannel existed
        return False
    return any(isinstance(channel, DeltaChannel) for channel in graph.channels.values())


def _root(thread_id: str) -> RunnableConfig:
    """The config naming the root graph's namespace of a thread."""
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


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
