"""The checkpointers the long-thread benchmarks run on, and what each one stores.

``SqliteSaver`` (a file of its own per thread run), ``InMemorySaver``, and
``PostgresSaver`` when ``ASSISTANT_GRAPH_TEST_POSTGRES`` names a server (the database is
shared, so every thread gets a unique id and is deleted afterwards). Stored bytes are the
serialized payload of the threads measured, uncompressed: for SQLite the checkpoint,
metadata and writes columns, for PostgreSQL the blob, write, checkpoint and metadata
columns (JSONB as text), in memory the byte strings the saver keeps; plus the rows of
``assistant_graph``'s message store when a saver keeps messages there.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

__all__ = ["POSTGRES_ENV", "SaverKind", "Store", "open_store", "saver_kinds"]

SaverKind = Literal["sqlite", "memory", "postgres"]
POSTGRES_ENV = "ASSISTANT_GRAPH_TEST_POSTGRES"
"""The environment variable naming a PostgreSQL server for the benchmarks (and tests)."""
POSTGRES_MISSING = f"PostgresSaver skipped: {POSTGRES_ENV} is not set"

_SQLITE_BYTES = (
    "SELECT coalesce(sum(length(checkpoint) + length(metadata)), 0) FROM checkpoints "
    "WHERE thread_id = ?",
    "SELECT coalesce(sum(length(value)), 0) FROM writes WHERE thread_id = ?",
)
_POSTGRES_BYTES = (
    "SELECT coalesce(sum(octet_length(checkpoint::text) + octet_length(metadata::text)), 0) "
    "FROM checkpoints WHERE thread_id = %s",
    "SELECT coalesce(sum(octet_length(blob)), 0) FROM checkpoint_blobs WHERE thread_id = %s",
    "SELECT coalesce(sum(octet_length(blob)), 0) FROM checkpoint_writes WHERE thread_id = %s",
)
_MESSAGE_STORE_BYTES = (
    "SELECT coalesce(sum(length(data)), 0) FROM assistant_graph_messages WHERE thread_id = ?"
)


def saver_kinds() -> tuple[SaverKind, ...]:
    """The savers to measure: SQLite and memory, and PostgreSQL when a server is set."""
    kinds: tuple[SaverKind, ...] = ("sqlite", "memory")
    return (*kinds, "postgres") if os.environ.get(POSTGRES_ENV) else kinds


@dataclass
class Store:
    """An open checkpointer of one kind, and how to measure what it holds."""

    kind: SaverKind
    """Which saver."""
    saver: BaseCheckpointSaver[Any]
    """The checkpointer (possibly wrapped, see ``wrap`` of :func:`open_store`)."""
    base: BaseCheckpointSaver[Any]
    """The LangGraph saver itself."""
    path: Path | None = None
    """The SQLite file."""
    threads: list[str] = field(default_factory=list)
    """Thread ids handed out by :meth:`thread_id`."""

    def thread_id(self, name: str) -> str:
        """``name``, made unique in PostgreSQL (its database is shared between runs)."""
        thread = f"{name}-{uuid.uuid4().hex[:8]}" if self.kind == "postgres" else name
        self.threads.append(thread)
        return thread

    def stored_bytes(self, threads: Sequence[str]) -> int:
        """Serialized payload bytes of ``threads`` (and their message-store rows)."""
        if self.kind == "memory":
            return _memory_bytes(self.base, threads) + _message_rows_bytes(self.saver, threads)
        if self.kind == "sqlite":
            connection: sqlite3.Connection = self.base.conn  # type: ignore[attr-defined]
            queries = [*_SQLITE_BYTES]
            if _has_table(connection, "assistant_graph_messages"):
                queries.append(_MESSAGE_STORE_BYTES)
            return sum(
                connection.execute(query, (thread,)).fetchone()[0]
                for query in queries
                for thread in threads
            )
        return _postgres_bytes(self.base, threads)

    def file_bytes(self) -> int | None:
        """The SQLite file's size after folding in its write-ahead log (None otherwise)."""
        if self.path is None:
            return None
        self.base.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[attr-defined]
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists())


def _has_table(connection: sqlite3.Connection, name: str) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return connection.execute(query, (name,)).fetchone() is not None


def _payload_bytes(value: Any) -> int:
    """Bytes of every serialized payload held in nested dicts, tuples and lists."""
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, Mapping):
        return sum(_payload_bytes(item) for item in value.values())
    if isinstance(value, tuple | list):
        return sum(_payload_bytes(item) for item in value)
    return 0


def _memory_bytes(saver: Any, threads: Sequence[str]) -> int:
    wanted = set(threads)
    total = sum(_payload_bytes(saver.storage[thread]) for thread in wanted)
    for part in (saver.writes, saver.blobs):
        total += sum(_payload_bytes(v) for key, v in part.items() if key[0] in wanted)
    return total


def _message_rows_bytes(saver: Any, threads: Sequence[str]) -> int:
    """Bytes in an in-memory message store (a saver without one has none)."""
    measure = getattr(saver, "stored_message_bytes", None)
    return sum(measure(thread) for thread in threads) if measure else 0


def _postgres_bytes(saver: Any, threads: Sequence[str]) -> int:
    queries = [*_POSTGRES_BYTES]
    with saver._cursor() as cursor:
        cursor.execute("SELECT to_regclass('assistant_graph_messages') IS NOT NULL AS found")
        if cursor.fetchone()["found"]:
            queries.append(_MESSAGE_STORE_BYTES.replace("?", "%s"))
        total = 0
        for query in queries:
            for thread in threads:
                cursor.execute(query, (thread,))
                total += next(iter(cursor.fetchone().values()))
    return int(total)


@contextmanager
def open_store(kind: SaverKind, folder: Path, name: str, wrap: Any = None) -> Iterator[Store]:
    """Open a saver of ``kind`` (for SQLite the file ``name``.sqlite in ``folder``, left
    there for the caller to reopen or remove).

    ``wrap`` (a function of the saver) wraps it, e.g. in ``assistant_graph``'s message
    store; the threads handed out are deleted from PostgreSQL at the end.
    """
    if kind == "memory":
        memory = InMemorySaver()
        yield Store(kind, wrap(memory) if wrap else memory, memory)
        return
    if kind == "sqlite":
        path = folder / f"{name}.sqlite"
        connection = sqlite3.connect(path, check_same_thread=False)
        try:
            saver = SqliteSaver(connection)
            saver.setup()
            store = Store(kind, wrap(saver) if wrap else saver, saver, path)
            if wrap:
                store.saver.setup()  # type: ignore[attr-defined]
            yield store
        finally:
            connection.close()
        return
    with _postgres(wrap) as store:
        yield store


@contextmanager
def _postgres(wrap: Any) -> Iterator[Store]:
    from langgraph.checkpoint.postgres import PostgresSaver

    url = os.environ[POSTGRES_ENV]
    with PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
        store = Store("postgres", wrap(saver) if wrap else saver, saver)
        if wrap:
            store.saver.setup()  # type: ignore[attr-defined]
        try:
            yield store
        finally:
            for thread in store.threads:
                store.saver.delete_thread(thread)
