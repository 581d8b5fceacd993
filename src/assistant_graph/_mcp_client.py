"""Listing an MCP server's tools, as LangChain tools whose calls go to the run's session.

:func:`list_server_tools` connects once (within the server's ``startupTimeout``) to list
a server's tools and keeps them with the server. Each is ``langchain-mcp-adapters``' own
LangChain tool (argument schema from the MCP tool, text and image results as content
blocks, ``isError`` results as error tool messages), with one interceptor of ours: the
call goes to the session of the run in progress (:mod:`._mcp_runs`) instead of a new
session per call. The adapter's tools are async only; ours run the same coroutine on the
run's loop from sync and async callers alike.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_mcp_adapters.interceptors import MCPToolCallRequest, MCPToolCallResult
from langchain_mcp_adapters.sessions import Connection
from langchain_mcp_adapters.tools import convert_mcp_tool_to_langchain_tool
from mcp.types import Tool as McpToolDefinition

from assistant_graph._mcp_config import TOOLS_KEY, McpConnectError, McpServer, McpSetupError
from assistant_graph._mcp_runs import (
    McpToolFailure,
    active_run,
    amcp_run_scope,
    describe_error,
    mcp_run_scope,
    open_session,
)

__all__ = ["list_server_tools"]


def list_server_tools(server: McpServer) -> tuple[BaseTool, ...]:
    """The server's tools as LangChain tools, listed once and kept with the server.

    Raises:
        McpConnectError: The server cannot be started, reached or listed in time.
    """
    with server.lock:
        if TOOLS_KEY not in server.cache:
            definitions = _run_blocking(lambda: _list_definitions(server))
            server.cache[TOOLS_KEY] = tuple(_tool(server, d) for d in definitions)
        return cast(tuple[BaseTool, ...], server.cache[TOOLS_KEY])


async def _list_definitions(server: McpServer) -> list[McpToolDefinition]:
    try:
        connection = server.connection()
    except McpSetupError as error:
        raise McpConnectError(f"cannot be configured: {error} ({error.field})") from None
    try:
        async with asyncio.timeout(server.config.startup_timeout):
            async with open_session(connection) as session:
                await session.initialize()
                return await _all_pages(session)
    except TimeoutError:
        timeout = server.config.startup_timeout
        problem = f"did not start and list its tools within {timeout:g} s (startupTimeout)"
    except Exception as error:
        problem = f"could not be started or reached: {describe_error(error)}"
    raise McpConnectError(server.redact(problem))


async def _all_pages(session: Any) -> list[McpToolDefinition]:
    definitions: list[McpToolDefinition] = []
    cursor: str | None = None
    while True:
        page = await session.list_tools(cursor=cursor)
        definitions.extend(page.tools)
        cursor = page.nextCursor
        if not cursor:
            return definitions


def _run_blocking(make: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine to completion on a loop of its own (callers may be inside one)."""
    with concurrent.futures.ThreadPoolExecutor(1, "assistant-graph-mcp-list") as executor:
        return executor.submit(lambda: asyncio.run(_awaited(make))).result()


async def _awaited(make: Callable[[], Awaitable[Any]]) -> Any:
    return await make()


def _tool(server: McpServer, definition: McpToolDefinition) -> BaseTool:
    """The adapter's tool for ``definition``, its calls sent to the run's session."""
    adapted = convert_mcp_tool_to_langchain_tool(
        None,
        definition,
        connection=cast(Connection, server.connection_template()),
        tool_interceptors=[_ToRunSession(server)],
        server_name=server.name,
    )
    if not isinstance(adapted, StructuredTool) or adapted.coroutine is None:
        raise TypeError(f"langchain-mcp-adapters returned {type(adapted).__name__}")
    call = adapted.coroutine
    adapter_handler = adapted.handle_tool_error

    def run_sync(**arguments: Any) -> Any:
        with mcp_run_scope() as run:
            return run.run(lambda: call(**arguments))

    async def run_async(**arguments: Any) -> Any:
        async with amcp_run_scope() as run:
            return await run.arun(lambda: call(**arguments))

    def handle(error: ToolException) -> Any:
        if isinstance(error, McpToolFailure):
            return str(error)
        return adapter_handler(error) if callable(adapter_handler) else str(error)

    return adapted.model_copy(
        update={"func": run_sync, "coroutine": run_async, "handle_tool_error": handle}
    )


@dataclass(frozen=True)
class _ToRunSession:
    """The interceptor that sends a call to the session of the run in progress."""

    server: McpServer

    async def __call__(
        self,
        request: MCPToolCallRequest,
        handler: Callable[[MCPToolCallRequest], Awaitable[MCPToolCallResult]],
    ) -> MCPToolCallResult:
        run = active_run()
        if run is None:  # not reached: every call is made inside a run (see _tool)
            return await handler(request)
        return await run.call_tool(self.server, request.name, request.args)
