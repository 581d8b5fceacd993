"""One run per thread at a time, across processes: the thread guard.

Two runs on one thread at once would both start from the same checkpoint and fork the
thread: one turn lost, or a history with tool calls and no results. LangGraph Server
prevents this with a per-thread policy (``multitask_strategy``); graphs run as a library
or from the CLI get the same guarantee here, from the thread store's own mechanism:

=========================  =================================================================
checkpointer               lock
=========================  =================================================================
PostgreSQL (sync, async)   a session advisory lock, on a connection of its own for the run
SQLite (a file)            an OS file lock next to the database (``<db>.runs/``)
anything else, in memory   a lock in this process
=========================  =================================================================

A guard can also be given a PostgreSQL URL of its own (``locks_url``): its runs then take
the advisory lock there whatever the checkpointer is. That is how graphs compiled without
one are guarded on a server that supplies its own checkpointer (:mod:`assistant_graph.studio`,
``ASSISTANT_GRAPH_THREAD_LOCKS``).

Each lock is held by a process, so the operating system or PostgreSQL releases it when the
process dies: a killed run never leaves its thread locked. Every kind is also locked in
this process first (PostgreSQL advisory locks and file locks are re-entrant within one
session or process).

What happens when a thread is busy is the policy (:data:`IfBusy`): ``reject`` (the default)
raises :class:`~assistant_graph.ThreadBusyError` at once, before any model call or write;
``enqueue`` waits up to a timeout for the other run to finish, then runs. Waiting polls,
so the sync and async paths share one implementation (the async path never blocks its
event loop).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import merge_configs
from langgraph.graph.state import CompiledStateGraph

from assistant_graph._errors import CheckpointerError, ThreadBusyError
from assistant_graph._message_store import base_saver

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "IF_BUSY_KEY",
    "GuardedGraph",
    "IfBusy",
    "ThreadGuard",
    "check_policy",
    "guard_for",
    "remember_sqlite_path",
]

IfBusy: TypeAlias = Literal["reject", "enqueue"]
"""What a run does when another run holds its thread: fail at once, or wait its turn."""

DEFAULT_BUSY_TIMEOUT = 300.0
"""Seconds an ``enqueue`` run waits for the thread before giving up."""

IF_BUSY_KEY = "if_busy"
"""``configurable`` key that sets the policy for one run."""
BUSY_TIMEOUT_KEY = "busy_timeout"
"""``configurable`` key that sets the ``enqueue`` timeout for one run."""

POLICIES: tuple[IfBusy, ...] = ("reject", "enqueue")
"""The policies, as LangGraph Server names them (``multitask_strategy``)."""

POLL_SECONDS = 0.05
"""How often a waiting run tries the lock again."""

RUNS_FOLDER_SUFFIX = ".runs"
"""Suffix of the folder next to a SQLite database that holds its thread lock files."""


@dataclass(frozen=True)
class Holder:
    """Who holds a thread, as far as the lock can tell."""

    since: datetime | None = None
    """When the holding run took the thread."""
    process: int | None = None
    """The holding process id (or PostgreSQL backend pid)."""


class _Lock(Protocol):
    """A cross-process lock on one thread; ``try_acquire`` never blocks."""

    def try_acquire(self) -> bool:
        """Take the lock if it is free."""

    def release(self) -> None:
        """Give the lock back (and free what it used)."""

    def discard(self) -> None:
        """Free what unsuccessful tries used (the lock is not held)."""

    def holder(self) -> Holder:
        """Who holds the lock, as far as it can tell."""


@dataclass
class _ProcessLocks:
    """The in-process half of every guard: one lock per (store, thread)."""

    _locks: dict[tuple[object, str], threading.Lock] = field(default_factory=dict)
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    def get(self, store: object, thread_id: str) -> threading.Lock:
        """The lock of ``thread_id`` in the store with identity ``store``."""
        with self._mutex:
            return self._locks.setdefault((store, thread_id), threading.Lock())


_PROCESS_LOCKS = _ProcessLocks()
_SQLITE_PATHS: weakref.WeakKeyDictionary[Any, Path | None] = weakref.WeakKeyDictionary()
"""The database file of each SQLite saver seen (None: an in-memory database)."""


def remember_sqlite_path(checkpointer: Any, path: Path) -> None:
    """Record the database file of a SQLite saver (the async one cannot tell it)."""
    _SQLITE_PATHS[checkpointer] = path


@dataclass(frozen=True)
class ThreadGuard:
    """Lets one run at a time use a thread of one checkpointer."""

    checkpointer: Any
    """The thread store the guarded graph runs on."""
    if_busy: IfBusy = "reject"
    """The default policy when the thread is busy."""
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    """Seconds ``enqueue`` waits at most."""
    locks_url: str | None = None
    """A PostgreSQL URL whose advisory locks hold the threads, instead of the lock that
    ``checkpointer``'s store gives (for graphs run with a checkpointer they do not own)."""

    @contextmanager
    def hold(self, config: RunnableConfig | None) -> Iterator[None]:
        """Hold the thread named by ``config`` for the block (sync).

        Raises:
            ThreadBusyError: The thread is busy and the policy is ``reject``, or the
                ``enqueue`` timeout passed.
        """
        attempt = self._attempt(config)
        if attempt is None:
            yield
            return
        deadline = attempt.deadline()
        while not attempt.try_take():
            attempt.check(deadline)
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            attempt.give_back()

    @asynccontextmanager
    async def ahold(self, config: RunnableConfig | None) -> AsyncIterator[None]:
        """Hold the thread named by ``config`` for the block (async); see :meth:`hold`."""
        attempt = self._attempt(config)
        if attempt is None:
            yield
            return
        deadline = attempt.deadline()
        while not await _take_in_worker(attempt):
            attempt.check(deadline)
            await asyncio.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            await asyncio.to_thread(attempt.give_back)

    def try_hold(self, config: RunnableConfig) -> _Attempt | None:
        """Take the thread now if it is free (for maintenance such as compaction).

        Returns:
            The attempt to give back when done, or None if the thread is busy.
        """
        attempt = self._attempt(config)
        if attempt is not None and not attempt.try_take():
            attempt.abandon()
            return None
        return attempt

    def _attempt(self, config: RunnableConfig | None) -> _Attempt | None:
        configurable = (config or {}).get("configurable") or {}
        thread_id = configurable.get("thread_id")
        if thread_id is None:
            return None
        policy = check_policy(configurable.get(IF_BUSY_KEY) or self.if_busy)
        timeout = float(configurable.get(BUSY_TIMEOUT_KEY) or self.busy_timeout)
        return _Attempt(str(thread_id), policy, timeout, self.checkpointer, self.locks_url)


@dataclass
class _Attempt:
    """One run's attempt to take a thread: the in-process lock, then the store's lock."""

    thread_id: str
    policy: str
    timeout: float
    checkpointer: Any
    locks_url: str | None = None
    _local: threading.Lock | None = None
    _store: _Lock | None = None

    def deadline(self) -> float:
        """When to give up (a ``reject`` run gives up after its first try)."""
        return time.monotonic() + (self.timeout if self.policy == "enqueue" else 0.0)

    def try_take(self) -> bool:
        """Take both locks, or neither."""
        # Keyed by the lock database, else by the saver itself (two wrappers of one saver
        # guard the same threads).
        local = _PROCESS_LOCKS.get(
            self.locks_url or id(base_saver(self.checkpointer)), self.thread_id
        )
        if not local.acquire(blocking=False):
            return False
        if self._store is None:
            self._store = self._store_lock()
        try:
            taken = self._store.try_acquire()
        except BaseException:
            local.release()
            raise
        if not taken:
            local.release()
            return False
        self._local = local
        return True

    def give_back(self) -> None:
        """Release what :meth:`try_take` took."""
        if self._store is not None:
            self._store.release()
        if self._local is not None:
            self._local.release()
        self._local = self._store = None

    def abandon(self) -> None:
        """Free what unsuccessful tries used."""
        if self._store is not None:
            self._store.discard()
            self._store = None

    def check(self, deadline: float) -> None:
        """Raise :class:`ThreadBusyError` if waiting is over."""
        if time.monotonic() >= deadline:
            store = self._store or self._store_lock()
            holder = store.holder()
            store.discard()
            self._store = None
            waited = self.timeout if self.policy == "enqueue" else None
            raise ThreadBusyError(
                self.thread_id, since=holder.since, process=holder.process, waited=waited
            )

    def _store_lock(self) -> _Lock:
        if self.locks_url is not None:
            return _PostgresLock(self.locks_url, _advisory_key(self.thread_id))
        return _store_lock(self.checkpointer, self.thread_id)


async def _take_in_worker(attempt: _Attempt) -> bool:
    """:meth:`_Attempt.try_take` in a worker thread; a cancelled caller does not leak the
    thread (the worker cannot be stopped, so it gives back what it took when it ends)."""
    work = asyncio.ensure_future(asyncio.to_thread(attempt.try_take))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        work.add_done_callback(
            lambda done: attempt.give_back() if not done.cancelled() and done.result() else None
        )
        raise


def check_policy(policy: Any) -> IfBusy:
    """``policy`` if it is one of :data:`POLICIES`.

    Raises:
        ValueError: Naming the policies, if it is not.
    """
    if policy not in POLICIES:
        raise ValueError(f"if_busy must be one of {', '.join(map(repr, POLICIES))}, not {policy!r}")
    return policy  # type: ignore[no-any-return]  # checked against the Literal's values


class GuardedGraph(CompiledStateGraph[Any, Any, Any, Any]):
    """A compiled graph whose runs hold their thread (:class:`ThreadGuard`).

    ``invoke``/``ainvoke`` and everything built on them run through ``stream``/``astream``,
    so guarding those two guards every way to run it. Reading a thread's state is not
    guarded.
    """

    def __init__(self, *, thread_guard: ThreadGuard, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.thread_guard = thread_guard
        """The guard of this graph's threads."""

    @classmethod
    def around(
        cls, graph: CompiledStateGraph[Any, Any, Any, Any], guard: ThreadGuard
    ) -> GuardedGraph:
        """``graph`` as a guarded graph (the same attributes, as ``graph.copy()`` has)."""
        attributes = {k: v for k, v in vars(graph).items() if k != "__orig_class__"}
        return cls(**attributes, thread_guard=guard)

    def stream(  # type: ignore[override]  # one signature for all of Pregel's overloads
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        """Stream a run (see ``Pregel.stream``) while holding its thread."""
        with self.thread_guard.hold(merge_configs(self.config, config)):
            yield from super().stream(input, config, **kwargs)

    async def astream(  # type: ignore[override]  # as stream
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Stream a run (see ``Pregel.astream``) while holding its thread."""
        async with self.thread_guard.ahold(merge_configs(self.config, config)):
            async for chunk in super().astream(input, config, **kwargs):
                yield chunk


def guard_for(
    checkpointer: Any,
    *,
    if_busy: IfBusy = "reject",
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    locks_url: str | None = None,
) -> ThreadGuard | None:
    """The guard of graphs compiled with ``checkpointer`` (None without one), or of
    graphs whose threads are locked in the PostgreSQL database at ``locks_url``."""
    has_store = checkpointer is not None and checkpointer is not False and checkpointer is not True
    if locks_url is None and not has_store:
        return None
    return ThreadGuard(checkpointer, if_busy, busy_timeout, locks_url)


def _store_lock(checkpointer: Any, thread_id: str) -> _Lock:
    """The cross-process lock of ``thread_id`` in ``checkpointer``'s store."""
    checkpointer = base_saver(checkpointer)
    conninfo = _postgres_conninfo(checkpointer)
    if conninfo is not None:
        return _PostgresLock(conninfo, _advisory_key(thread_id))
    path = _sqlite_path(checkpointer)
    if path is not None:
        digest = hashlib.sha256(thread_id.encode()).hexdigest()[:24]
        return _FileLock(path.with_name(path.name + RUNS_FOLDER_SUFFIX) / f"{digest}.lock")
    return _NoStoreLock()


@dataclass
class _NoStoreLock:
    """For stores that live in this process only: the in-process lock is enough."""

    def try_acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None

    def discard(self) -> None:
        return None

    def holder(self) -> Holder:
        return Holder()


@dataclass
class _FileLock:
    """An OS file lock (``flock``/``LockFileEx`` via ``filelock``), released on exit."""

    path: Path
    _lock: Any = None

    def try_acquire(self) -> bool:
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.path, thread_local=False)  # async runs release in another thread
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        self._lock = lock
        info = {"pid": os.getpid(), "since": datetime.now(UTC).isoformat()}
        self._info_path().write_text(json.dumps(info), encoding="utf-8")
        return True

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def discard(self) -> None:
        return None

    def holder(self) -> Holder:
        try:
            info = json.loads(self._info_path().read_text("utf-8"))
            return Holder(datetime.fromisoformat(info["since"]), int(info["pid"]))
        except (OSError, ValueError, KeyError):
            return Holder()

    def _info_path(self) -> Path:
        return self.path.with_suffix(".json")


LOCK_CONNECTION_FAILED = (
    "cannot open the PostgreSQL connection that holds a thread's run lock (each running "
    "thread holds one; raise max_connections for many runs at once): {error}"
)


@dataclass
class _PostgresLock:
    """A session advisory lock on a connection of its own, closed with the run."""

    conninfo: str
    key: int
    _connection: Any = None

    def try_acquire(self) -> bool:
        import psycopg

        if self._connection is None:  # one session for every try of this attempt
            try:
                self._connection = psycopg.connect(self.conninfo, autocommit=True)
            except psycopg.Error as error:
                # Each running thread holds one connection for its lock: a server out of
                # connections says so here. ``from None``: the cause may carry the password.
                reason = " ".join(str(error).split())
                raise CheckpointerError(LOCK_CONNECTION_FAILED.format(error=reason)) from None
        row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        return bool(row and row[0])

    def release(self) -> None:
        # Unlock before closing: a closed session's locks go only when its server process
        # has noticed, and the next run must find the thread free at once.
        if self._connection is not None:
            try:
                self._connection.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            finally:
                self.discard()

    def discard(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def holder(self) -> Holder:
        import psycopg

        query = (
            "SELECT a.pid, a.backend_start FROM pg_locks l JOIN pg_stat_activity a "
            "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = %s AND l.objid = %s AND l.objsubid = 1"
        )
        high, low = (self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as connection:
                row = connection.execute(query, (high, low)).fetchone()
        except psycopg.Error:
            return Holder()
        return Holder(row[1], int(row[0])) if row else Holder()


def _advisory_key(thread_id: str) -> int:
    """A signed 64-bit advisory lock key for the thread, namespaced to this package."""
    digest = hashlib.sha256(f"assistant-graph thread {thread_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _postgres_conninfo(checkpointer: Any) -> str | None:
    """How to open another session to the database of a PostgreSQL saver, if it is one."""
    module = type(checkpointer).__module__
    if not module.startswith("langgraph.checkpoint.postgres"):
        return None
    from psycopg.conninfo import make_conninfo

    conn = checkpointer.conn
    info = getattr(conn, "info", None)
    if info is not None:  # a connection, sync or async
        return make_conninfo(info.dsn, password=info.password or None)
    conninfo = getattr(conn, "conninfo", None)  # a pool
    kwargs = getattr(conn, "kwargs", None) or {}
    if conninfo is None:
        return None
    secrets = {key: kwargs[key] for key in ("password",) if kwargs.get(key)}
    return make_conninfo(conninfo, **secrets)


def _sqlite_path(checkpointer: Any) -> Path | None:
    """The database file of a SQLite saver (None for an in-memory database), asked of
    its connection once."""
    if checkpointer in _SQLITE_PATHS:
        return _SQLITE_PATHS[checkpointer]
    module = type(checkpointer).__module__
    if not module.startswith("langgraph.checkpoint.sqlite") or module.endswith(".aio"):
        return None
    with checkpointer.lock:
        rows = checkpointer.conn.execute("PRAGMA database_list").fetchall()
    files = [row[2] for row in rows if row[1] == "main" and row[2]]
    path = Path(files[0]) if files else None
    _SQLITE_PATHS[checkpointer] = path
    return path
