"""The MCP sessions of one run: opened on first use, shared, closed when the run ends.

A graph whose assistants use MCP tools is compiled as :class:`McpSessionGraph` (or
:class:`McpSessionGuardedGraph` with a thread guard): its ``stream``/``astream``, which
every way of running a graph goes through, open an :class:`McpRun` for the run and close
it afterwards, whether the run completes, fails, is interrupted for input or stopped with
Ctrl-C. Sub-assistants run inside the root's run and share its sessions.

The MCP SDK's sessions are asyncio objects bound to the loop that opened them, while a
graph runs its tools on worker threads (sync runs) or on the caller's loop (async runs).
So each run owns one event loop on a thread of its own, started on the first MCP call,
and every session call is made there: sync and async tool calls share one implementation
and only differ in how they wait (:meth:`McpRun.run` / :meth:`McpRun.arun`). A session is
opened and closed in one task (:class:`_Link`), as anyio's cancel scopes require, and
closing a stdio session ends its subprocess (the SDK terminates its process group).

A call that fails because the server died or the connection broke becomes an
:class:`McpToolFailure` (an error tool message) and drops the session; the next call opens
a new one (a server found dead before a call was sent is restarted for that call). A call
slower than the server's ``toolTimeout`` is given up on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import sys
import threading
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

import anyio
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import ToolException
from langchain_mcp_adapters.sessions import Connection, create_session
from langgraph.graph.state import CompiledStateGraph
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import McpError
from mcp.types import CONNECTION_CLOSED, CallToolResult

from assistant_graph._mcp_config import McpServer, McpSetupError
from assistant_graph._thread_guard import GuardedGraph

__all__ = [
    "McpRun",
    "McpSessionGraph",
    "McpSessionGuardedGraph",
    "McpToolFailure",
    "active_run",
    "amcp_run_scope",
    "describe_error",
    "mcp_run_scope",
    "open_session",
    "with_run_sessions",
]

T = TypeVar("T")

CLOSE_TIMEOUT = 10.0
"""Seconds closing one session may take (a stdio server gets 2 s to exit, then is
terminated, then killed, by the SDK) before its task is cancelled."""
LOOP_THREAD_NAME = "assistant-graph-mcp"

TIMED_OUT = (
    "Error: the MCP tool {tool!r} of server {server!r} did not answer within {seconds:g} s "
    "(toolTimeout in {source}) and was given up on. Try again, or differently."
)
SERVER_FAILED = (
    "Error: the MCP server {server!r} failed during this call ({cause}); the call may not "
    "have run. The next call of its tools connects again."
)
CANNOT_CONNECT = (
    "Error: the MCP server {server!r} could not be started or reached ({cause}). The next "
    "call of its tools tries again."
)
TOOL_REFUSED = "Error: the MCP server {server!r} refused the call: {cause}"
RUN_OVER = "this run's MCP sessions are closed"
STOPPED = "Error: the run was stopped (Ctrl-C) during this MCP call."
_UNSENT = (anyio.ClosedResourceError, anyio.BrokenResourceError)
"""Errors of a session whose connection had already closed: the request was not sent."""

_ACTIVE: ContextVar[McpRun | None] = ContextVar("assistant_graph_mcp_run", default=None)


class McpToolFailure(ToolException):
    """A call of an MCP tool that failed for a reason the model should hear about."""


def active_run() -> McpRun | None:
    """The MCP run the calling code belongs to, if any."""
    run = _ACTIVE.get()
    return None if run is None or run.closed else run


@contextmanager
def mcp_run_scope() -> Iterator[McpRun]:
    """The run in progress, or a new one for the block, closed at its end (sync)."""
    active = active_run()
    if active is not None:
        yield active
        return
    run = McpRun()
    token = _ACTIVE.set(run)
    try:
        with _stop_calls_on_ctrl_c(run):
            yield run
    finally:
        _forget(token)
        run.close()


@contextmanager
def _stop_calls_on_ctrl_c(run: McpRun) -> Iterator[None]:
    """During a sync run in the main thread, Ctrl-C first ends the MCP calls in flight.

    A sync run waits for its running tool calls before the ``KeyboardInterrupt`` leaves
    it, so a long MCP call would hold Ctrl-C up until its ``toolTimeout``. Python's own
    handler is chained: the interrupt is raised as always, just without that wait.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    def stop_then_interrupt(signum: int, frame: FrameType | None) -> None:
        run.interrupt()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, stop_then_interrupt)
    try:
        yield
    finally:
        with suppress(ValueError):  # a generator finalized on another thread cannot
            signal.signal(signal.SIGINT, signal.default_int_handler)


@asynccontextmanager
async def amcp_run_scope() -> AsyncIterator[McpRun]:
    """The run in progress, or a new one for the block, closed at its end (async)."""
    active = active_run()
    if active is not None:
        yield active
        return
    run = McpRun()
    token = _ACTIVE.set(run)
    try:
        yield run
    finally:
        _forget(token)
        await run.aclose()


def _forget(token: Any) -> None:
    try:
        _ACTIVE.reset(token)
    except ValueError:  # a generator finished in another context than it started in
        _ACTIVE.set(None)


class McpRun:
    """The MCP sessions of one run, on an event loop of their own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._links: dict[tuple[str, str], _Link] = {}
        self._opening: dict[tuple[str, str], asyncio.Lock] = {}
        self._calls: set[asyncio.Task[Any]] = set()
        self.closed = False
        """Whether the run has ended (no calls are taken any more)."""

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` on the run's loop and wait for it (sync).

        Raises:
            McpToolFailure: The run was stopped (Ctrl-C) while it ran.
        """
        try:
            return self._submit(make).result()
        except concurrent.futures.CancelledError:
            raise McpToolFailure(STOPPED) from None

    async def arun(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` on the run's loop and await it (async)."""
        return await asyncio.wrap_future(self._submit(make))

    async def call_tool(
        self, server: McpServer, tool: str, arguments: dict[str, Any]
    ) -> CallToolResult:
        """Call ``tool`` of ``server`` in this run's session with it (on the run's loop).

        Raises:
            McpToolFailure: The server cannot be reached, failed during the call, refused
                it, or did not answer within its ``toolTimeout``.
        """
        link = await self._link(server)
        failure = await _call(link, server, tool, arguments)
        if isinstance(failure, _UNSENT):  # the server ended while idle: start it again
            await self._drop(server, link)
            link = await self._link(server)
            failure = await _call(link, server, tool, arguments)
        if isinstance(failure, CallToolResult):
            return failure
        if isinstance(failure, McpError) and failure.error.code != CONNECTION_CLOSED:
            cause = server.redact(failure.error.message)
            raise McpToolFailure(TOOL_REFUSED.format(server=server.name, cause=cause))
        await self._drop(server, link)
        cause = server.redact(describe_error(failure))
        raise McpToolFailure(SERVER_FAILED.format(server=server.name, cause=cause))

    def close(self) -> None:
        """Close every session and stop the loop (sync; waits for subprocesses to end)."""
        loop, thread = self._stop_taking_calls()
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close_links(), loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()

    async def aclose(self) -> None:
        """Close every session and stop the loop (async)."""
        loop, thread = self._stop_taking_calls()
        if loop is None or thread is None:
            return
        try:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._close_links(), loop))
        finally:
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.to_thread(thread.join)

    def _stop_taking_calls(
        self,
    ) -> tuple[asyncio.AbstractEventLoop | None, threading.Thread | None]:
        with self._lock:
            self.closed = True
            return self._loop, self._thread

    def _submit(self, make: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(self._within(make), self._started_loop())

    def interrupt(self) -> None:
        """End every call in flight at once (from a signal handler: nothing blocks)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._cancel_calls)

    def _cancel_calls(self) -> None:
        for task in list(self._calls):
            task.cancel()

    async def _within(self, make: Callable[[], Awaitable[T]]) -> T:
        _ACTIVE.set(self)  # this task's own context: MCP calls made by make() find the run
        task = asyncio.current_task()
        if task is None:  # not reached: this always runs as a task of the run's loop
            return await make()
        self._calls.add(task)
        try:
            return await make()
        finally:
            self._calls.discard(task)

    def _started_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self.closed:
                raise McpToolFailure(RUN_OVER)
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=_serve, args=(loop,), name=LOOP_THREAD_NAME, daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _link(self, server: McpServer) -> _Link:
        key = (server.source, server.name)
        async with self._opening.setdefault(key, asyncio.Lock()):
            link = self._links.get(key)
            if link is None or link.finished():
                link = await _Link.open(server)
                self._links[key] = link
            return link

    async def _drop(self, server: McpServer, link: _Link) -> None:
        key = (server.source, server.name)
        if self._links.get(key) is link:
            del self._links[key]
        await link.close()

    async def _close_links(self) -> None:
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)


@dataclass
class _Link:
    """One open session, held by a task of its own from opening to closing."""

    session: ClientSession
    stop: asyncio.Event
    task: asyncio.Task[None]

    @classmethod
    async def open(cls, server: McpServer) -> _Link:
        """Start (or connect to) the server and initialize a session with it.

        Raises:
            McpToolFailure: It cannot be started, reached or initialized in time.
        """
        try:
            connection = server.connection()
        except McpSetupError as error:
            raise McpToolFailure(CANNOT_CONNECT.format(server=server.name, cause=error)) from None
        ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        task = asyncio.create_task(_hold(connection, ready, stop))
        try:
            async with asyncio.timeout(server.config.startup_timeout):
                session = await asyncio.shield(ready)
        except Exception as error:
            await _end(stop, task)
            if ready.done() and not ready.cancelled():
                ready.exception()  # retrieved: reported below, not logged by asyncio
            cause = server.redact(_startup_problem(error, server))
            raise McpToolFailure(CANNOT_CONNECT.format(server=server.name, cause=cause)) from None
        return cls(session, stop, task)

    def finished(self) -> bool:
        """Whether the session has ended on its own (its server is gone)."""
        return self.task.done()

    async def close(self) -> None:
        """End the session (and a stdio server's process)."""
        await _end(self.stop, self.task)


async def _end(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    """Let the task holding a session leave it; cancel the task if that hangs."""
    stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), CLOSE_TIMEOUT)
    except TimeoutError:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    except Exception:  # the session had already failed; it is closed either way
        return


async def _hold(
    connection: dict[str, Any], ready: asyncio.Future[ClientSession], stop: asyncio.Event
) -> None:
    try:
        async with open_session(connection) as session:
            await session.initialize()
            ready.set_result(session)
            await stop.wait()
    except Exception as error:
        if not ready.done():
            ready.set_exception(error)


@asynccontextmanager
async def open_session(connection: dict[str, Any]) -> AsyncIterator[ClientSession]:
    """A session with the server (not initialized): ``langchain-mcp-adapters`` opens
    HTTP ones; stdio ones are opened here, so that the server's stderr goes to a real
    file even where ``sys.stderr`` is not one (Jupyter)."""
    if connection["transport"] != "stdio":
        async with create_session(cast(Connection, connection)) as session:
            yield session
        return
    parameters = StdioServerParameters(
        command=connection["command"],
        args=connection["args"],
        env=connection.get("env"),
        cwd=connection.get("cwd"),
    )
    async with (
        stdio_client(parameters, errlog=_errlog()) as (read, write),
        ClientSession(read, write) as session,
    ):
        yield session


def _errlog() -> TextIO:
    """Where a stdio server's stderr goes: ours, if it is a file; else the process's."""
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None and stream.fileno() >= 0:
                return stream
        except (AttributeError, OSError, ValueError):
            continue
    return _DEVNULL.open()


@dataclass
class _DevNull:
    """``os.devnull``, opened once if ever needed."""

    file: TextIO | None = None

    def open(self) -> TextIO:
        if self.file is None:
            self.file = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115  # kept open
        return self.file


_DEVNULL = _DevNull()


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _call(
    link: _Link, server: McpServer, tool: str, arguments: dict[str, Any]
) -> CallToolResult | BaseException:
    """One call in ``link``'s session: its result, or why there is none.

    Raises:
        McpToolFailure: The call did not answer within the server's ``toolTimeout``.
    """
    call = asyncio.ensure_future(link.session.call_tool(tool, arguments))
    try:
        await asyncio.wait(
            {call, link.task}, timeout=server.config.tool_timeout, return_when=FIRST_COMPLETED
        )
    finally:
        if not call.done():
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
    if call.cancelled():
        if not link.finished():
            raise McpToolFailure(_timed_out(server, tool))
        return ConnectionError("the connection closed")  # its session ended under it
    return call.exception() or call.result()


def _timed_out(server: McpServer, tool: str) -> str:
    seconds = server.config.tool_timeout
    return TIMED_OUT.format(tool=tool, server=server.name, seconds=seconds, source=server.source)


def _startup_problem(error: BaseException, server: McpServer) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {server.config.startup_timeout:g} s (startupTimeout)"
    return describe_error(error)


def describe_error(error: BaseException) -> str:
    """An exception in one line, the innermost cause of an exception group first."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, McpError):
        return error.error.message
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


if TYPE_CHECKING:
    _GraphBase = CompiledStateGraph[Any, Any, Any, Any]
else:
    _GraphBase = object


class _OpensMcpSessions(_GraphBase):
    """Runs hold an :class:`McpRun` (``invoke`` and the rest go through these two)."""

    def stream(  # type: ignore[override]  # one signature for all of Pregel's overloads
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        """Stream a run (see ``Pregel.stream``) with this run's MCP sessions."""
        with mcp_run_scope():
            yield from super().stream(input, config, **kwargs)

    async def astream(  # type: ignore[override]  # as stream
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Stream a run (see ``Pregel.astream``) with this run's MCP sessions."""
        async with amcp_run_scope():
            async for chunk in super().astream(input, config, **kwargs):
                yield chunk


class McpSessionGraph(_OpensMcpSessions, CompiledStateGraph[Any, Any, Any, Any]):
    """A compiled graph whose runs open MCP sessions on demand and close them at the end."""


class McpSessionGuardedGraph(_OpensMcpSessions, GuardedGraph):
    """A :class:`McpSessionGraph` whose runs also hold their thread (thread guard)."""


def with_run_sessions(
    graph: CompiledStateGraph[Any, Any, Any, Any],
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """``graph`` as one whose runs open and close their MCP sessions."""
    cls = McpSessionGuardedGraph if isinstance(graph, GuardedGraph) else McpSessionGraph
    attributes = {k: v for k, v in vars(graph).items() if k != "__orig_class__"}
    return cls(**attributes)
