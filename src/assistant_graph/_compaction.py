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
"""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.pregel import Pregel

__all__ = ["compact_thread"]

_LATEST = (
    "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' "
    "ORDER BY checkpoint_id DESC LIMIT 1"
)
_DELETE_HISTORY = (
    "DELETE FROM {table} WHERE thread_id = ? AND (checkpoint_ns != '' OR checkpoint_id != ?)"
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
        Whether the thread was compacted: False if its run has not finished (something is
        pending: input requests, or steps of a run that failed or was killed), or if the
        checkpointer is not the synchronous SQLite one. (``InMemorySaver`` and the async
        and Postgres savers are not compacted: their history grows with the square of a
        thread's length too, in memory or in the database.)
    """
    checkpointer = graph.checkpointer
    if not isinstance(checkpointer, SqliteSaver):
        return False
    if not finished:
        state = graph.get_state(config)
        if state.next or state.interrupts:
            return False
    thread_id = str(config["configurable"]["thread_id"])
    with checkpointer.lock, checkpointer.conn:
        row = checkpointer.conn.execute(_LATEST, (thread_id,)).fetchone()
        if row is None:
            return False
        for table in ("writes", "checkpoints"):
            checkpointer.conn.execute(_DELETE_HISTORY.format(table=table), (thread_id, row[0]))
    return True
