"""Where threads are kept: ``open_checkpointer`` opens a LangGraph checkpointer by name.

One string picks the store, so the CLI's ``--db`` and a program use the same words:

=============================  ===============================================
``None``                       the default SQLite file, :func:`default_database_path`
                               (its folder is made if missing)
``":memory:"``                 ``InMemorySaver`` (gone when the process ends)
``postgresql://...``           ``PostgresSaver`` (optional extra ``postgres``);
                               ``postgres://`` works too
``sqlite:///PATH``             ``SqliteSaver`` on ``PATH`` (as SQLAlchemy writes it:
                               ``sqlite:////abs/path`` is absolute)
a path                         ``SqliteSaver`` on that file; its folder must exist
=============================  ===============================================

Any other ``scheme://`` string raises :class:`CheckpointerError` naming the accepted
forms, rather than becoming a folder named after the URL.

Each saver is opened with :func:`~assistant_graph.store_messages_once` unless
``messages_once=False``: checkpoints refer to each message, stored once, in a table beside
the saver's own.

The checkpointer is closed on every way out of the ``with`` block, so SQLite folds its
write-ahead log (``-wal`` file) back into the database file and Postgres connections
are returned. :func:`aopen_checkpointer` is the async twin (``AsyncSqliteSaver``,
``AsyncPostgresSaver``), for ``ainvoke`` and ``astream_events``; both read ``db`` the
same way.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from assistant_graph._errors import CheckpointerError
from assistant_graph._message_store import store_messages_once
from assistant_graph._thread_guard import remember_sqlite_path

__all__ = [
    "APP_NAME",
    "DATABASE_FILENAME",
    "MEMORY",
    "POSTGRES_SCHEMES",
    "SQLITE_URL_PREFIX",
    "CheckpointerError",
    "aopen_checkpointer",
    "check_database",
    "default_database_path",
    "describe_database",
    "is_memory",
    "open_checkpointer",
]

APP_NAME = "assistant-graph"
"""The application name under which the per-user data folder is found."""

DATABASE_FILENAME = "threads.sqlite"
"""Name of the default SQLite file in the per-user data folder."""

MEMORY = ":memory:"
"""The ``db`` value that keeps threads in memory only."""

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
"""URL prefixes that select the Postgres checkpointer."""

SQLITE_URL_PREFIX = "sqlite:///"
"""URL prefix of a SQLite file (``sqlite:///relative.db``, ``sqlite:////abs/path.db``)."""

ACCEPTED_FORMS = (
    "a SQLite file path, sqlite:///PATH, a postgresql:// (or postgres://) URL, or :memory:"
)
UNSUPPORTED_URL = "cannot keep threads in {db}: {scheme}:// is not supported; give " + (
    ACCEPTED_FORMS
)
MISSING_FOLDER = (
    "cannot create the SQLite database {path}: the folder {folder} does not exist "
    "(create it first, or give another path)"
)
POSTGRES_EXTRA_MISSING = (
    "a postgresql:// database needs the optional extra 'postgres': "
    "pip install 'assistant-graph[postgres]'"
)
SQLITE_BUSY_SECONDS = 30.0
"""How long opening a SQLite file waits for other processes using it."""
SQLITE_OPEN_FAILED = "cannot open the SQLite database {path}: {error}"
POSTGRES_OPEN_FAILED = "cannot open the Postgres database {url}: {error}"
NOT_A_FILE = "cannot use {path} as a SQLite database: it is a folder"


def default_database_path() -> Path:
    """The SQLite file threads are kept in when no ``db`` is given.

    It is ``threads.sqlite`` in the per-user data folder of ``assistant-graph`` (by
    ``platformdirs``: ``~/.local/share/assistant-graph`` on Linux, honouring
    ``XDG_DATA_HOME``; ``~/Library/Application Support/assistant-graph`` on macOS;
    ``%LOCALAPPDATA%\\assistant-graph`` on Windows), so a thread can be continued from
    any working directory.
    """
    return platformdirs.user_data_path(APP_NAME) / DATABASE_FILENAME


@dataclass(frozen=True)
class _Store:
    """What a ``db`` string names."""

    kind: Literal["memory", "postgres", "sqlite"]
    url: str = ""
    """The Postgres URL."""
    path: Path | None = None
    """The SQLite file."""
    default: bool = False
    """Whether it is the default file, whose folder is made when missing."""


def _store(db: str | Path | None) -> _Store:
    """Read ``db``; raises :class:`CheckpointerError` for a URL of another kind."""
    if db is None:
        return _Store("sqlite", path=default_database_path(), default=True)
    text = str(db)
    if text.lower().startswith(SQLITE_URL_PREFIX) and len(text) > len(SQLITE_URL_PREFIX):
        return _sqlite_or_memory(text[len(SQLITE_URL_PREFIX) :])
    if _is_postgres(text):
        return _Store("postgres", url=text)
    scheme = _SCHEME.match(text)
    if scheme:
        raise CheckpointerError(UNSUPPORTED_URL.format(db=_redact(text), scheme=scheme[1]))
    return _sqlite_or_memory(text)


def _sqlite_or_memory(text: str) -> _Store:
    if text == MEMORY:
        return _Store("memory")
    return _Store("sqlite", path=Path(text).expanduser())


def check_database(db: str | Path | None) -> None:
    """Check ``db`` without opening or creating anything: a form this module reads, and
    for a SQLite file (other than the default one) a path in a folder that exists.

    Raises:
        CheckpointerError: Naming what is wrong and the accepted forms.
    """
    store = _store(db)
    if store.kind == "sqlite" and not store.default:
        _sqlite_path(store)


def describe_database(db: str | Path | None) -> str:
    """``db`` as it is safe to show: the file path, or the URL without its password."""
    if db is None:
        return str(default_database_path())
    text = str(db)
    return _redact(text) if _is_postgres(text) else text


def is_memory(db: str | Path | None) -> bool:
    """Whether ``db`` keeps threads in memory only (they end with the process)."""
    return db is not None and str(db) in (MEMORY, SQLITE_URL_PREFIX + MEMORY)


@contextmanager
def open_checkpointer(
    db: str | Path | None = None, *, messages_once: bool = True
) -> Iterator[BaseCheckpointSaver[Any]]:
    """Open the checkpointer named by ``db`` and close it when the block ends.

    Args:
        db: None for the default SQLite file (:func:`default_database_path`),
            ``":memory:"`` for an in-memory store, a ``postgresql://`` (or
            ``postgres://``) URL for Postgres (needs the extra ``postgres``), or a SQLite
            file: its path or ``sqlite:///PATH``. The folder of a SQLite file must exist
            (only the default one is made).
        messages_once: Store each message of a thread once, checkpoints referring to it
            (:func:`~assistant_graph.store_messages_once`): storage grows linearly with
            a thread's length, with the full history kept. False opens the plain
            LangGraph saver (whose threads any LangGraph program can read).

    Yields:
        The checkpointer, set up (tables made) and ready for ``build_assistant_graph``.

    Raises:
        CheckpointerError: If the store cannot be opened; the message never shows a
            password.

    Example:
        >>> with open_checkpointer("threads.sqlite") as saver:  # doctest: +SKIP
        ...     graph = build_assistant_graph("proxy", catalog, checkpointer=saver)
        ...     graph.invoke({"messages": [("user", "Hi")]}, {"configurable": {"thread_id": "1"}})
    """
    store = _store(db)
    wrap = store_messages_once if messages_once else _plain
    if store.kind == "memory":
        yield wrap(InMemorySaver())
    elif store.kind == "postgres":
        with _open_postgres(store.url) as saver:
            yield wrap(saver)
    else:
        with _open_sqlite(_sqlite_path(store)) as saver:
            yield wrap(saver)


@asynccontextmanager
async def aopen_checkpointer(
    db: str | Path | None = None, *, messages_once: bool = True
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The async twin of :func:`open_checkpointer`: the same ``db`` values, async savers.

    Raises:
        CheckpointerError: If the store cannot be opened; the message never shows a
            password.

    Example:
        >>> async with aopen_checkpointer("threads.sqlite") as saver:  # doctest: +SKIP
        ...     graph = build_assistant_graph("proxy", catalog, checkpointer=saver)
        ...     async for event in astream_events(graph, "Hi", config): ...
    """
    store = _store(db)
    wrap = store_messages_once if messages_once else _plain
    if store.kind == "memory":
        yield wrap(InMemorySaver())
    elif store.kind == "postgres":
        async with _aopen_postgres(store.url) as saver:
            yield wrap(saver)
    else:
        async with _aopen_sqlite(_sqlite_path(store)) as saver:
            yield wrap(saver)


@asynccontextmanager
async def _aopen_sqlite(path: Path) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncExitStack() as stack:
        try:
            saver = await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(path)))
            await _aset_up_sqlite(saver)
        except (OSError, sqlite3.Error) as error:
            raise CheckpointerError(SQLITE_OPEN_FAILED.format(path=path, error=error)) from error
        remember_sqlite_path(saver, path.resolve())
        yield saver


@asynccontextmanager
async def _aopen_postgres(url: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    try:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError as error:
        raise CheckpointerError(POSTGRES_EXTRA_MISSING) from error
    async with AsyncExitStack() as stack:
        try:
            saver = await stack.enter_async_context(AsyncPostgresSaver.from_conn_string(url))
            await saver.setup()
        except Exception as error:
            # ``from None``: the cause could carry the connection string.
            message = POSTGRES_OPEN_FAILED.format(url=_redact(url), error=_oneline(error, url))
            raise CheckpointerError(message) from None
        yield saver


def _plain(saver: BaseCheckpointSaver[Any]) -> BaseCheckpointSaver[Any]:
    return saver


def _sqlite_path(store: _Store) -> Path:
    """The SQLite file of ``store``, checked: not a folder, in a folder that exists (the
    default file's folder is made)."""
    path = store.path
    assert path is not None, "a SQLite store always has a path"
    if path.is_dir():
        raise CheckpointerError(NOT_A_FILE.format(path=path))
    if store.default:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CheckpointerError(SQLITE_OPEN_FAILED.format(path=path, error=error)) from error
    elif not path.parent.is_dir():
        raise CheckpointerError(MISSING_FOLDER.format(path=path, folder=path.parent))
    return path


@contextmanager
def _open_sqlite(path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    try:
        # check_same_thread=False is safe: SqliteSaver serialises access with a lock, and
        # parallel tool calls write from worker threads.
        connection = sqlite3.connect(path, check_same_thread=False, timeout=SQLITE_BUSY_SECONDS)
    except (OSError, sqlite3.Error) as error:
        raise CheckpointerError(SQLITE_OPEN_FAILED.format(path=path, error=error)) from error
    with closing(connection):
        saver = SqliteSaver(connection)
        try:
            _set_up_sqlite(saver)
        except sqlite3.Error as error:
            raise CheckpointerError(SQLITE_OPEN_FAILED.format(path=path, error=error)) from error
        yield saver


async def _aset_up_sqlite(saver: Any) -> None:
    """The async form of :func:`_set_up_sqlite`."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            await saver.setup()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.05)


def _set_up_sqlite(saver: Any) -> None:
    """``saver.setup()``, tried again while another process sets the same file up.

    Switching a new file to WAL mode needs it alone, and SQLite answers "database is
    locked" at once rather than waiting when another process does the same.
    """
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            saver.setup()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


@contextmanager
def _open_postgres(url: str) -> Iterator[BaseCheckpointSaver[Any]]:
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
    except ImportError as error:
        raise CheckpointerError(POSTGRES_EXTRA_MISSING) from error
    with ExitStack() as stack:
        try:
            saver = stack.enter_context(PostgresSaver.from_conn_string(url))
            saver.setup()
        except Exception as error:
            # ``from None``: the cause could carry the connection string.
            message = POSTGRES_OPEN_FAILED.format(url=_redact(url), error=_oneline(error, url))
            raise CheckpointerError(message) from None
        yield saver


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def _is_postgres(text: str) -> bool:
    return text.lower().startswith(POSTGRES_SCHEMES)


def _redact(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def _oneline(error: BaseException, secret_source: str) -> str:
    """The error as one line, with any password of ``secret_source`` masked."""
    text = " ".join(str(error).split())
    password = urlsplit(secret_source).password
    return text.replace(password, "***") if password else text
