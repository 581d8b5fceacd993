"""Each message stored once: a saver wrapper that keeps checkpoints small.

:func:`store_messages_once` wraps a LangGraph saver (``InMemorySaver``, ``SqliteSaver``,
``AsyncSqliteSaver``, ``PostgresSaver``, ``AsyncPostgresSaver``). The saver stores
checkpoints, writes and history as always, but every list of messages in them is a
reference (:mod:`._message_refs`) to rows of one table beside the saver's own
(:mod:`._message_rows`). Each message is written once, when it first appears, so a
thread's storage grows with what its turns add rather than with the square of its length,
with the full history kept: every checkpoint can still be loaded (time travel).

Crash ordering: a checkpoint's (or a write's) rows are written before the saver writes
the checkpoint, and are durable no later than it (SQLite: the same transaction or an
earlier one; PostgreSQL: an earlier transaction). A crash in between leaves rows that
nothing refers to, never a reference without its row; :func:`~assistant_graph.compact_thread`
and ``delete_thread`` remove such rows with the rest.

Reading: the saver returns the checkpoint with references; the wrapper resolves them
from the process's cache of decoded messages, reading only the rows it lacks, in one
query per thread. A value without references (a checkpoint written before, or by the
saver alone) is returned as it is, so threads written without the wrapper keep working
with it. The reverse is not true: a thread written through the wrapper must be read
through it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Collection, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)

from assistant_graph._message_refs import MessageCodec, MissingMessageError, Resolution, Row
from assistant_graph._message_rows import MessageRows, rows_for

__all__ = [
    "MessageStoreSaver",
    "MissingMessageError",
    "base_saver",
    "store_messages_once",
]

UNSUPPORTED = (
    "store_messages_once supports InMemorySaver, SqliteSaver, AsyncSqliteSaver, "
    "PostgresSaver and AsyncPostgresSaver, not {kind}"
)
KNOWN_THREADS = 1000
"""Threads whose stored digests the wrapper remembers (others are written again, which the
store ignores)."""


def store_messages_once(saver: BaseCheckpointSaver[Any]) -> MessageStoreSaver:
    """Wrap ``saver`` so that each message of a thread is stored once.

    Checkpoints refer to the messages they hold instead of copying them: with the full
    history kept, a thread's storage grows linearly instead of quadratically, and a turn
    writes what it adds. :func:`~assistant_graph.open_checkpointer` opens its savers
    this way; use this for a saver you create yourself, and always read its threads
    through the wrapper.

    Args:
        saver: ``InMemorySaver``, ``SqliteSaver``, ``AsyncSqliteSaver``, ``PostgresSaver``
            or ``AsyncPostgresSaver`` (an already wrapped saver is returned as it is).

    Returns:
        The wrapped saver: pass it as ``checkpointer``.

    Raises:
        TypeError: If ``saver`` is of another kind.

    Example:
        >>> from langgraph.checkpoint.memory import InMemorySaver
        >>> saver = store_messages_once(InMemorySaver())
        >>> graph = build_assistant_graph("proxy", catalog, checkpointer=saver)  # doctest: +SKIP
    """
    if isinstance(saver, MessageStoreSaver):
        return saver
    rows = rows_for(saver)
    if rows is None:
        raise TypeError(UNSUPPORTED.format(kind=type(saver).__name__))
    return MessageStoreSaver(saver, rows)


def base_saver(checkpointer: Any) -> Any:
    """The LangGraph saver inside ``checkpointer`` (itself if it is not wrapped)."""
    return checkpointer.saver if isinstance(checkpointer, MessageStoreSaver) else checkpointer


class MessageStoreSaver(BaseCheckpointSaver[Any]):
    """A saver whose checkpoints refer to messages stored once (see the module)."""

    def __init__(
        self,
        saver: BaseCheckpointSaver[Any],
        rows: MessageRows,
        known: OrderedDict[str, set[bytes]] | None = None,
    ) -> None:
        super().__init__(serde=saver.serde)
        self.saver = saver
        """The LangGraph saver that stores the checkpoints."""
        self.rows = rows
        """Where the messages are stored."""
        self._known: OrderedDict[str, set[bytes]] = OrderedDict() if known is None else known
        """Per thread, the digests known to be stored (written or read by this process)."""

    @property
    def config_specs(self) -> list[Any]:
        """The wrapped saver's."""
        return self.saver.config_specs

    def get_next_version(self, current: Any, channel: None) -> Any:
        """The wrapped saver's versions."""
        return self.saver.get_next_version(current, channel)

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> MessageStoreSaver:
        """The wrapped saver's clone with the allowlist, wrapped (sharing the rows)."""
        clone = self.saver.with_allowlist(extra_allowlist)
        return self if clone is self.saver else MessageStoreSaver(clone, self.rows, self._known)

    def setup(self) -> None:
        """Nothing to do: the table is made when first used."""

    # --- encoding: the rows first, then the saver -----------------------------------------

    def _codec(self) -> MessageCodec:
        return MessageCodec(self.saver.serde)

    def _thread_known(self, thread: str) -> set[bytes]:
        known = self._known.get(thread)
        if known is None:
            known = self._known[thread] = set()
            while len(self._known) > KNOWN_THREADS:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(thread)
        return known

    def _encoded_checkpoint(
        self, config: RunnableConfig, checkpoint: Checkpoint, new_versions: ChannelVersions
    ) -> tuple[Checkpoint, dict[bytes, Row]]:
        """The checkpoint with references, and the rows not stored yet. A saver that stores
        only the channels of ``new_versions`` gets the other values as they are."""
        thread = _thread(config)
        rows: dict[bytes, Row] = {}
        stored = self._thread_known(thread)
        codec = self._codec()
        values = {
            channel: codec.encode(value, rows, stored)
            if not self.rows.per_version or channel in new_versions
            else value
            for channel, value in checkpoint["channel_values"].items()
        }
        return {**checkpoint, "channel_values": values}, rows

    def _encoded_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]]
    ) -> tuple[list[tuple[str, Any]], dict[bytes, Row]]:
        thread = _thread(config)
        rows: dict[bytes, Row] = {}
        stored = self._thread_known(thread)
        codec = self._codec()
        encoded = [(channel, codec.encode(value, rows, stored)) for channel, value in writes]
        return encoded, rows

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store the new messages, then the checkpoint referring to them."""
        encoded, rows = self._encoded_checkpoint(config, checkpoint, new_versions)
        self._store(config, rows)
        return self.saver.put(config, encoded, metadata, new_versions)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """:meth:`put`, awaited."""
        encoded, rows = self._encoded_checkpoint(config, checkpoint, new_versions)
        await self._astore(config, rows)
        return await self.saver.aput(config, encoded, metadata, new_versions)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store the new messages, then the writes referring to them."""
        encoded, rows = self._encoded_writes(config, writes)
        self._store(config, rows)
        self.saver.put_writes(config, encoded, task_id, task_path)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """:meth:`put_writes`, awaited."""
        encoded, rows = self._encoded_writes(config, writes)
        await self._astore(config, rows)
        await self.saver.aput_writes(config, encoded, task_id, task_path)

    def _store(self, config: RunnableConfig, rows: dict[bytes, Row]) -> None:
        """Write ``rows``; only then are they known as stored (a concurrent write of the same
        rows is ignored by the store)."""
        if rows:
            self.rows.put(_thread(config), rows)
            self._thread_known(_thread(config)).update(rows)

    async def _astore(self, config: RunnableConfig, rows: dict[bytes, Row]) -> None:
        """:meth:`_store`, awaited."""
        if rows:
            await self.rows.aput(_thread(config), rows)
            self._thread_known(_thread(config)).update(rows)

    # --- decoding -------------------------------------------------------------------------

    def _resolution(self, found: CheckpointTuple, *, cached_lists: bool = True) -> Resolution:
        writes = [value for _, _, value in found.pending_writes or ()]
        values = [found.checkpoint["channel_values"], writes]
        return self._codec().resolution(values, _thread(found.config), cached_lists=cached_lists)

    def _read(self, thread: str, digests: Collection[bytes]) -> dict[bytes, Row]:
        rows = self.rows.get(thread, digests)
        self._thread_known(thread).update(rows)
        return rows

    async def _aread(self, thread: str, digests: Collection[bytes]) -> dict[bytes, Row]:
        rows = await self.rows.aget(thread, digests)
        self._thread_known(thread).update(rows)
        return rows

    def _resolve(self, found: CheckpointTuple | None) -> CheckpointTuple | None:
        """``found`` with its messages read back (from the cache, else the rows)."""
        if found is None:
            return None
        resolution = self._resolution(found)
        while wanted := resolution.wanted():
            resolution.supply(self._read(_thread(found.config), wanted))
        return _resolved(found, resolution)

    async def _aresolve(self, found: CheckpointTuple | None) -> CheckpointTuple | None:
        """:meth:`_resolve`, reading rows without blocking the event loop."""
        if found is None:
            return None
        resolution = self._resolution(found)
        while wanted := resolution.wanted():
            resolution.supply(await self._aread(_thread(found.config), wanted))
        return _resolved(found, resolution)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The saver's checkpoint, its messages read back."""
        return self._resolve(self.saver.get_tuple(config))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """:meth:`get_tuple`, awaited."""
        return await self._aresolve(await self.saver.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """The saver's checkpoints, newest first, their messages read back.

        The saver's list is read whole first: ``SqliteSaver`` holds its lock while its
        generator runs, and reading the rows takes the same lock.
        """
        found_all = list(self.saver.list(config, filter=filter, before=before, limit=limit))
        for found in found_all:
            resolved = self._resolve(found)
            assert resolved is not None
            yield resolved

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """:meth:`list`, awaited."""
        listed = self.saver.alist(config, filter=filter, before=before, limit=limit)
        for found in [item async for item in listed]:  # read whole first, as in list
            resolved = await self._aresolve(found)
            assert resolved is not None
            yield resolved

    # --- deleting -------------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's checkpoints, then its messages."""
        self.saver.delete_thread(thread_id)
        self._known.pop(str(thread_id), None)
        self.rows.delete_thread(str(thread_id))

    async def adelete_thread(self, thread_id: str) -> None:
        """:meth:`delete_thread`, awaited."""
        await self.saver.adelete_thread(thread_id)
        self._known.pop(str(thread_id), None)
        await self.rows.adelete_thread(str(thread_id))

    def drop_unreferenced(self, thread_id: str) -> None:
        """After compaction: delete the messages the kept checkpoint does not refer to."""
        found = self.saver.get_tuple(_root(thread_id))
        keep: set[bytes] = set()
        if found is not None:
            resolution = self._resolution(found, cached_lists=False)
            wanted = resolution.wanted()
            if wanted and resolution.reading_chunks:
                resolution.supply(self.rows.get(thread_id, wanted))
            keep = resolution.digests()
        self._known.pop(thread_id, None)
        self.rows.retain(thread_id, keep)

    async def adrop_unreferenced(self, thread_id: str) -> None:
        """:meth:`drop_unreferenced`, awaited."""
        found = await self.saver.aget_tuple(_root(thread_id))
        keep: set[bytes] = set()
        if found is not None:
            resolution = self._resolution(found, cached_lists=False)
            wanted = resolution.wanted()
            if wanted and resolution.reading_chunks:
                resolution.supply(await self.rows.aget(thread_id, wanted))
            keep = resolution.digests()
        self._known.pop(thread_id, None)
        await self.rows.aretain(thread_id, keep)


def _thread(config: RunnableConfig) -> str:
    return str(config["configurable"]["thread_id"])


def _root(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


def _resolved(found: CheckpointTuple, resolution: Resolution) -> CheckpointTuple:
    if not resolution.references:
        return found
    values, writes = resolution.value()
    pending = zip(found.pending_writes or [], writes, strict=True)
    return found._replace(
        checkpoint={**found.checkpoint, "channel_values": values},
        pending_writes=[(task, channel, value) for (task, channel, _), value in pending],
    )
