"""Where stored messages live: one table beside each saver's own, one adapter per saver.

The table ``assistant_graph_messages (thread_id, hash, type, data)`` holds the rows of
:mod:`._message_refs` (messages and chunks), each once per thread, in the same database
as the checkpoints: the same SQLite file, the same PostgreSQL database, or a dict for
``InMemorySaver``. Every adapter writes a checkpoint's rows so that they are durable no
later than the checkpoint itself (see :class:`._message_store.MessageStoreSaver`):

``SqliteSaver``, ``AsyncSqliteSaver``
    On the saver's own connection, holding its lock, without committing: the saver's
    ``put`` that follows commits them with the checkpoint (or an earlier commit of
    another task does).
``PostgresSaver``, ``AsyncPostgresSaver``
    On the saver's connection (or one of its pool), in a transaction of their own,
    committed before the saver writes the checkpoint.
``InMemorySaver``
    A dict of the adapter (nothing survives the process anyway).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from langgraph.checkpoint.memory import InMemorySaver

from assistant_graph._message_refs import Row

__all__ = ["TABLE", "MessageRows", "rows_for"]

TABLE = "assistant_graph_messages"
SYNC_ON_LOOP = (
    "synchronous calls to an async saver's stored messages are only allowed from another "
    "thread than its event loop's; use the async methods there"
)
BATCH = 500
"""Digests per ``IN (...)`` query (SQLite allows 32,766 parameters; keep statements small)."""

_SQLITE_SETUP = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (thread_id TEXT NOT NULL, hash BLOB NOT NULL, "
    "type TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (thread_id, hash)) WITHOUT ROWID"
)
_SQLITE_INSERT = f"INSERT OR IGNORE INTO {TABLE} (thread_id, hash, type, data) VALUES (?, ?, ?, ?)"
_SQLITE_SELECT = f"SELECT hash, type, data FROM {TABLE} WHERE thread_id = ? AND hash IN ({{}})"
_SQLITE_ALL = f"SELECT hash FROM {TABLE} WHERE thread_id = ?"
_SQLITE_DELETE = f"DELETE FROM {TABLE} WHERE thread_id = ?"
_SQLITE_DELETE_SOME = f"DELETE FROM {TABLE} WHERE thread_id = ? AND hash = ?"
_PG_SETUP = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (thread_id TEXT NOT NULL, hash BYTEA NOT NULL, "
    "type TEXT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (thread_id, hash))"
)
_PG_INSERT = (
    f"INSERT INTO {TABLE} (thread_id, hash, type, data) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT DO NOTHING"
)
_PG_SELECT = f"SELECT hash, type, data FROM {TABLE} WHERE thread_id = %s AND hash = ANY(%s)"
_PG_ALL = f"SELECT hash FROM {TABLE} WHERE thread_id = %s"
_PG_DELETE = f"DELETE FROM {TABLE} WHERE thread_id = %s"
_PG_DELETE_SOME = f"DELETE FROM {TABLE} WHERE thread_id = %s AND hash = ANY(%s)"


class MessageRows(Protocol):
    """The stored rows of one saver's threads."""

    per_version: bool
    """Whether the saver stores only the channels a checkpoint changed (``InMemorySaver``,
    PostgreSQL), so that the others need no encoding; ``SqliteSaver`` stores them all."""

    def put(self, thread: str, rows: Mapping[bytes, Row]) -> None:
        """Store ``rows`` (those already stored are left as they are)."""

    def get(self, thread: str, digests: Collection[bytes]) -> dict[bytes, Row]:
        """The rows of ``digests`` that are stored."""

    def stored_digests(self, thread: str) -> set[bytes]:
        """The digests of every row of the thread."""

    def retain(self, thread: str, keep: Collection[bytes]) -> None:
        """Delete the thread's rows whose digest is not in ``keep``."""

    def delete_thread(self, thread: str) -> None:
        """Delete every row of the thread."""

    async def aput(self, thread: str, rows: Mapping[bytes, Row]) -> None:
        """:meth:`put`, awaited."""

    async def aget(self, thread: str, digests: Collection[bytes]) -> dict[bytes, Row]:
        """:meth:`get`, awaited."""

    async def astored_digests(self, thread: str) -> set[bytes]:
        """:meth:`stored_digests`, awaited."""

    async def aretain(self, thread: str, keep: Collection[bytes]) -> None:
        """:meth:`retain`, awaited."""

    async def adelete_thread(self, thread: str) -> None:
        """:meth:`delete_thread`, awaited."""


def rows_for(saver: Any) -> MessageRows | None:
    """The adapter of ``saver``'s kind, or None if messages cannot be stored beside it."""
    if isinstance(saver, InMemorySaver):
        return _MemoryRows()
    module = type(saver).__module__
    if module == "langgraph.checkpoint.sqlite":
        return _SqliteRows(saver)
    if module == "langgraph.checkpoint.sqlite.aio":
        return _AsyncSqliteRows(saver)
    if module == "langgraph.checkpoint.postgres":
        return _PostgresRows(saver)
    if module == "langgraph.checkpoint.postgres.aio":
        return _AsyncPostgresRows(saver)
    return None


def _batches(digests: Collection[bytes]) -> Iterator[list[bytes]]:
    ordered = list(digests)
    for start in range(0, len(ordered), BATCH):
        yield ordered[start : start + BATCH]


@dataclass
class _MemoryRows:
    """Rows in a dict, for ``InMemorySaver``."""

    threads: dict[str, dict[bytes, Row]] = field(default_factory=dict)
    per_version: bool = True

    def put(self, thread: str, rows: Mapping[bytes, Row]) -> None:
        stored = self.threads.setdefault(thread, {})
        for digest, row in rows.items():
            stored.setdefault(digest, row)

    def get(self, thread: str, digests: Collection[bytes]) -> dict[bytes, Row]:
        stored = self.threads.get(thread, {})
        return {d: stored[d] for d in digests if d in stored}

    def stored_digests(self, thread: str) -> set[bytes]:
        return set(self.threads.get(thread, {}))

    def retain(self, thread: str, keep: Collection[bytes]) -> None:
        stored = self.threads.get(thread, {})
        for digest in [d for d in stored if d not in keep]:
            del stored[digest]

    def delete_thread(self, thread: str) -> None:
        self.threads.pop(thread, None)

    def stored_bytes(self, thread: str) -> int:
        """Bytes of the thread's rows (digests and data), for the benchmarks."""
        return sum(len(d) + len(row[1]) for d, row in self.threads.get(thread, {}).items())

    async def aput(self, thread: str, rows: Mapping[bytes, Row]) -> None:
        self.put(thread, rows)

    async def aget(self, thread: str, digests: Collection[bytes]) -> dict[bytes, Row]:
        return self.get(thread, digests)

    async def astored_digests(self, thread: str) -> set[bytes]:
        return self.stored_digests(thread)

    async def aretain(self, thread: str, keep: Collection[bytes]) -> None:
        self.retain(thread, keep)

    async def adelete_thread(self, thread: str) -> None:
        self.delete_thread(thread)


class _SyncOnLoop:
    """The sync methods of an async saver's adapter: its coroutines on the saver's loop,
    from another thread (as the async savers' own sync methods do)."""

    saver: Any

    def _wait(self, coroutine: Any) -> Any:
        try:
            on_loop = asyncio.get_running_loop() is self.saver.loop
        except RuntimeError:  # no loop in this thread
            on_loop = False
        if on_loop:
            coroutine.close()
            raise asyncio.InvalidStateError(SYNC_ON_LOOP)
        return asyncio.run_coroutine_threadsafe(coroutine, self.saver.loop).result()

    def put(self, thread: str, rows: Mapping[bytes, Row]) -> None:
        self._wait(self.aput(thread, rows))  # type: ignore[attr-defined]

    def get(self, thread: str, digests: Collection[bytes]) -> dict[bytes, Row]:
        found: dict[bytes, Row] = self._wait(self.aget(thread, digests))  # type: ignore[attr-defined]
        return found

    def stored_digests(self, thread: str) -> set[bytes]:
        found: set[bytes] = self._wait(self.astored_digests(thread))  # type: ignore[attr-defined]
        return found

    def retain(self, thread: str, keep: Collection[bytes]) -> None:
        self._wait(self.aretain(thread, keep))  # type: ignore[attr-defined]

    def delete_thread(self, thread: str) -> None:
        self._wait(self.adelete_thread(thread))  # type: ignore[attr-defined]


class _SyncOnly:
    """The async methods of a sync saver's adapter: the sync ones in a worker thread."""

    async def aput(self, thread: str, rows: Mapping[bytes, Row]) -> None:
        await asyncio.to_thread(self.put, thread, rows)  # type: ignore[attr-defined]

    async def aget(self, thread: str, digests: Collection[bytes]) -> dict[bytes, Row]:
        found: dict[bytes, Row] = await asyncio.to_thread(self.get, thread, digests)  # type: ignore[attr-defined]
        return found

    async def astored_digests(self, thread: str) -> set[bytes]:
        found: set[bytes] = await asyncio.to_thread(self.stored_digests, thread)  # type: ignore[attr-defined]
        return found

    async def aretain(self, thread: str, keep: Collection[bytes]) -> None:
        await asyncio.to_thread(self.retain, thread, keep)  # type: ignore[attr-defined]

    async def adelete_thread(self, thread: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread)  # type: ignore[attr-defined]


@dataclass
class _SqliteRows(_SyncOnly):
    """Rows on a ``SqliteSaver``'s connection, committed by the saver's next commit."""

    saver: Any
    ready: bool = False
    per_version: bool = False

    def _setup(self) -> None:
        """Make the table (holding the saver's lock)."""
        if not self.ready:
            self.saver.conn.execute(_SQLITE_SETUP)
            self.saver.conn.commit()
            self.ready = True

    def put(self, thread: str, rows: Mapping[bytes, Row]) -> None:
        with self.saver.lock:
            self._setup()
            values = [(thread, d, row[0], row[1]) for d, row in rows.items()]
            self.saver.conn.executemany(_SQLITE_INSERT, values)

    def get(self, thread: str, digests: Collection[bytes]) -> dict[bytes, Row]:
        found: dict[bytes, Row] = {}
        with self.saver.lock:
            self._setup()
            for batch in _batches(digests):
                query = _SQLITE_SELECT.format(", ".join("?" * len(batch)))
                for digest, kind, data in self.saver.conn.execute(query, (thread, *batch)):
                    found[bytes(digest)] = (kind, bytes(data))
        return found

    def stored_digests(self, thread: str) -> set[bytes]:
        with self.saver.lock:
            self._setup()
            return {bytes(d) for (d,) in self.saver.conn.execute(_SQLITE_ALL, (thread,))}

    def retain(self, thread: str, keep: Collection[bytes]) -> None:
        stored = self.stored_digests(thread)
        with self.saver.lock:
            dropped = [(thread, d) for d in stored if d not in keep]
            self.saver.conn.executemany(_SQLITE_DELETE_SOME, dropped)
            self.saver.conn.commit()

    def delete_thread(self, thread: str) -> None:
        with self.saver.lock:
            self._setup()
            self.saver.conn.execute(_SQLITE_DELETE, (thread,))
            self.saver.conn.commit()


@dataclass
class _AsyncSqliteRows(_SyncOnLoop):
    """Rows on an ``AsyncSqliteSaver``'s aiosqlite connection, committed by the saver."""

    saver: Any
    ready: bool = False
    per_version: bool = False

    async def _setup(self) -> None:
        if not self.ready:
            await self.saver.conn.execute(_SQLITE_SETUP)
            await self.saver.conn.commit()
            self.ready = True

    async def aput(self, thread: str, rows: Mapping[bytes, Row]) -> None:
        async with self.saver.lock:
            await self._setup()
            values = [(thread, d, row[0], row[1]) for d, row in rows.items()]
            await self.saver.conn.executemany(_SQLITE_INSERT, values)

    async def aget(self, thread: str, digests: Collection[bytes]) -> dict[bytes, Row]:
        found: dict[bytes, Row] = {}
        async with self.saver.lock:
            await self._setup()
            for batch in _batches(digests):
                query = _SQLITE_SELECT.format(", ".join("?" * len(batch)))
                async with self.saver.conn.execute(query, (thread, *batch)) as cursor:
                    for digest, kind, data in await cursor.fetchall():
                        found[bytes(digest)] = (kind, bytes(data))
        return found

    async def astored_digests(self, thread: str) -> set[bytes]:
        async with self.saver.lock:
            await self._setup()
            async with self.saver.conn.execute(_SQLITE_ALL, (thread,)) as cursor:
                return {bytes(d) for (d,) in await cursor.fetchall()}

    async def aretain(self, thread: str, keep: Collection[bytes]) -> None:
        stored = await self.astored_digests(thread)
        async with self.saver.lock:
            dropped = [(thread, d) for d in stored if d not in keep]
            await self.saver.conn.executemany(_SQLITE_DELETE_SOME, dropped)
            await self.saver.conn.commit()

    async def adelete_thread(self, thread: str) -> None:
        async with self.saver.lock:
            await self._setup()
            await self.saver.conn.execute(_SQLITE_DELETE, (thread,))
            await self.saver.conn.commit()


@contextmanager
def _pg_connection(conn: Any) -> Iterator[Any]:
    """The saver's connection, or one of its pool."""
    if hasattr(conn, "getconn"):  # a ConnectionPool
        with conn.connection() as connection:
            yield connection
    else:
        yield conn


@dataclass
class _PostgresRows(_SyncOnly):
    """Rows in PostgreSQL, each write committed before the saver's own."""

    saver: Any
    ready: bool = False
    per_version: bool = True

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        from psycopg.rows import tuple_row

        with (
            self.saver.lock,
            _pg_connection(self.saver.conn) as conn,
            conn.transaction(),
            conn.cursor(row_factory=tuple_row) as cursor,
        ):
            if not self.ready:
                _pg_setup(cursor)
                self.ready = True
            yield cursor

    def put(self, thread: str, rows: Mapping[bytes, Row]) -> None:
        with self._cursor() as cursor:
            cursor.executemany(_PG_INSERT, [(thread, d, r[0], r[1]) for d, r in rows.items()])

    def get(self, thread: str, digests: Collection[bytes]) -> dict[bytes, Row]:
        with self._cursor() as cursor:
            cursor.execute(_PG_SELECT, (thread, list(digests)))
            return {bytes(d): (kind, bytes(data)) for d, kind, data in cursor.fetchall()}

    def stored_digests(self, thread: str) -> set[bytes]:
        with self._cursor() as cursor:
            cursor.execute(_PG_ALL, (thread,))
            return {bytes(d) for (d,) in cursor.fetchall()}

    def retain(self, thread: str, keep: Collection[bytes]) -> None:
        dropped = [d for d in self.stored_digests(thread) if d not in keep]
        with self._cursor() as cursor:
            cursor.execute(_PG_DELETE_SOME, (thread, dropped))

    def delete_thread(self, thread: str) -> None:
        with self._cursor() as cursor:
            cursor.execute(_PG_DELETE, (thread,))


def _pg_setup(cursor: Any) -> None:
    """Make the table; another process making it at the same moment is no error."""
    from psycopg import errors

    try:
        with cursor.connection.transaction():
            cursor.execute(_PG_SETUP)
    except (errors.UniqueViolation, errors.DuplicateTable):
        pass


async def _apg_setup(cursor: Any) -> None:
    from psycopg import errors

    try:
        async with cursor.connection.transaction():
            await cursor.execute(_PG_SETUP)
    except (errors.UniqueViolation, errors.DuplicateTable):
        pass


@dataclass
class _AsyncPostgresRows(_SyncOnLoop):
    """Rows in PostgreSQL through an ``AsyncPostgresSaver``'s connection."""

    saver: Any
    ready: bool = False
    per_version: bool = True

    async def _run(self, statement: str, params: Any, many: bool = False) -> list[Any]:
        from psycopg.rows import tuple_row

        conn = self.saver.conn
        async with self.saver.lock:
            if hasattr(conn, "getconn"):
                async with conn.connection() as connection:
                    return await self._on(connection, statement, params, many, tuple_row)
            return await self._on(conn, statement, params, many, tuple_row)

    async def _on(
        self, conn: Any, statement: str, params: Any, many: bool, row_factory: Any
    ) -> list[Any]:
        async with conn.transaction(), conn.cursor(row_factory=row_factory) as cursor:
            if not self.ready:
                await _apg_setup(cursor)
                self.ready = True
            if many:
                await cursor.executemany(statement, params)
                return []
            await cursor.execute(statement, params)
            return await cursor.fetchall() if cursor.description else []

    async def aput(self, thread: str, rows: Mapping[bytes, Row]) -> None:
        values = [(thread, d, r[0], r[1]) for d, r in rows.items()]
        await self._run(_PG_INSERT, values, many=True)

    async def aget(self, thread: str, digests: Collection[bytes]) -> dict[bytes, Row]:
        found = await self._run(_PG_SELECT, (thread, list(digests)))
        return {bytes(d): (kind, bytes(data)) for d, kind, data in found}

    async def astored_digests(self, thread: str) -> set[bytes]:
        return {bytes(d) for (d,) in await self._run(_PG_ALL, (thread,))}

    async def aretain(self, thread: str, keep: Collection[bytes]) -> None:
        dropped = [d for d in await self.astored_digests(thread) if d not in keep]
        await self._run(_PG_DELETE_SOME, (thread, dropped))

    async def adelete_thread(self, thread: str) -> None:
        await self._run(_PG_DELETE, (thread,))
