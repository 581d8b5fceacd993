"""MCP tools in assistant schemas: ``mcp:<server>`` and ``mcp:<server>/<tool>``.

Loading resolves such a name offline to an :class:`McpToolReference` (the server must be
declared in ``mcp.json`` and not disabled, and the ``mcp`` extra installed). Building a
graph connects: each referenced server is started (or reached) once, its tools are listed
within its ``startupTimeout`` and kept with the server, and every reference becomes the
LangChain tools it names (:func:`connect_mcp_tools`). A server that cannot start, or a
tool it does not have, is an :class:`~assistant_graph.AssistantConfigError` naming the
assistant, the server and the field.

Nothing here imports the MCP SDK: :mod:`._mcp_client` and :mod:`._mcp_runs`, which do,
are imported when a graph that uses MCP is built, so the package works without the
``mcp`` extra.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool, ToolException
from pydantic import ConfigDict

from assistant_graph._errors import AssistantConfigError, ConfigProblem
from assistant_graph._mcp_config import MCP_PREFIX, TOOLS_KEY, McpConnectError, McpServer
from assistant_graph._schema import AssistantSchema

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

    from assistant_graph._catalog import AssistantCatalog

__all__ = [
    "McpToolReference",
    "catalog_uses_mcp",
    "check_mcp_connections",
    "connect_mcp_tools",
    "covers_approval",
    "is_mcp_reference",
    "mcp_reference",
    "uses_mcp",
    "with_mcp_sessions",
]

UNKNOWN_SERVER = (
    "unknown MCP server {server!r} in {name!r}: declare it under mcpServers in {file} "
    "(declared: {known})"
)
DISABLED_SERVER = 'MCP server {server!r} is disabled in {file} ("disabled": true)'
MALFORMED_REFERENCE = "{name!r} is not 'mcp:<server>' or 'mcp:<server>/<tool>'"
NOT_CONNECTED = (
    "{name!r} names MCP tools, which are connected when a graph is built "
    "(build_assistant_graph); this placeholder cannot run"
)
CANNOT_LIST = "assistant {assistant!r}: MCP server {server!r} ({file}) {problem}"
NO_SUCH_TOOL = (
    "assistant {assistant!r}: MCP server {server!r} has no tool {tool!r} (it has: {names})"
)
TWO_TOOLS_NAMED = (
    "assistant {assistant!r} would get two tools named {name!r} (from {first} and {second}); "
    "list only the tools it needs, as mcp:<server>/<tool>"
)
MISSING_EXTRA = (
    "{name!r} names MCP tools, which need the optional dependencies: "
    "pip install 'assistant-graph[mcp]'"
)
MCP_PACKAGES = ("mcp", "langchain_mcp_adapters")


class McpToolReference(BaseTool):
    """``mcp:<server>`` or ``mcp:<server>/<tool>`` as a schema lists it, before connecting.

    It stands in the catalog where the tools will be, so that the catalog's tools line
    up with the schema's ``tools``; building a graph replaces it.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    server: McpServer
    """The server it names."""
    tool: str | None = None
    """The tool it names, or None for every tool of the server."""

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        raise ToolException(NOT_CONNECTED.format(name=self.name))

    def resolve(self) -> tuple[BaseTool, ...]:
        """The LangChain tools it names (connecting to list them once).

        Raises:
            McpConnectError: The server cannot be started or reached in time.
            LookupError: The server has no such tool.
        """
        from assistant_graph._mcp_client import list_server_tools

        listed = list_server_tools(self.server)
        if self.tool is None:
            return listed
        for tool in listed:
            if tool.name == self.tool:
                return (tool,)
        names = ", ".join(tool.name for tool in listed) or "none"
        raise LookupError(self.tool, names)


def is_mcp_reference(name: str) -> bool:
    """Whether a tool name in a schema names MCP tools."""
    return name.startswith(MCP_PREFIX)


def mcp_reference(name: str, servers: Mapping[str, McpServer], file: str) -> McpToolReference:
    """The reference ``name`` (``mcp:<server>[/<tool>]``) makes to ``servers``.

    Raises:
        LookupError: With the message to report: a malformed name, an unknown or
            disabled server.
    """
    server_name, _, tool = name.removeprefix(MCP_PREFIX).partition("/")
    if not server_name or (tool == "" and name.endswith("/")) or "/" in tool:
        raise LookupError(MALFORMED_REFERENCE.format(name=name))
    if not all(importlib.util.find_spec(package) for package in MCP_PACKAGES):
        raise LookupError(MISSING_EXTRA.format(name=name))
    server = servers.get(server_name)
    if server is None:
        known = ", ".join(sorted(servers)) or "none"
        raise LookupError(
            UNKNOWN_SERVER.format(server=server_name, name=name, file=file, known=known)
        )
    if server.config.disabled:
        raise LookupError(DISABLED_SERVER.format(server=server_name, file=server.source))
    description = f"MCP tools of server {server_name!r} ({server.describe()})"
    return McpToolReference(name=name, description=description, server=server, tool=tool or None)


def covers_approval(tools: Sequence[str], approval: str) -> bool:
    """Whether ``require_approval`` may list ``approval`` (``mcp:<server>/<tool>``)
    because the schema's ``tools`` list the whole server (``mcp:<server>``)."""
    return is_mcp_reference(approval) and approval.partition("/")[0] in tools


def uses_mcp(tools: Iterable[BaseTool]) -> bool:
    """Whether any of ``tools`` is an MCP reference."""
    return any(isinstance(tool, McpToolReference) for tool in tools)


def catalog_uses_mcp(catalog: AssistantCatalog) -> bool:
    """Whether any assistant of ``catalog`` lists MCP tools."""
    return any(uses_mcp(catalog.tools_for(name)) for name in catalog)


def with_mcp_sessions(
    graph: CompiledStateGraph[Any, Any, Any, Any],
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """``graph`` as one whose runs open MCP sessions on demand and close them at the end."""
    from assistant_graph._mcp_runs import with_run_sessions

    return with_run_sessions(graph)


def connect_mcp_tools(
    schema: AssistantSchema, source: str, tools: Sequence[BaseTool], approvals: Collection[str]
) -> tuple[list[BaseTool], set[str]]:
    """Replace the MCP references among an assistant's tools by the tools they name.

    Args:
        schema: The assistant.
        source: Its file, for errors.
        tools: Its tools; the first ``len(schema.tools)`` line up with ``schema.tools``.
        approvals: Tool names whose calls need approval; ``mcp:`` names among them become
            the names of the tools they stand for.

    Returns:
        The tools, and the approval names as the model calls the tools.

    Raises:
        AssistantConfigError: A server cannot be reached, a named tool does not exist, or
            two tools would have one name; each problem names the assistant and field.
    """
    if not uses_mcp(tools):
        return list(tools), set(approvals)
    connection = _Connection(schema, source)
    connected = connection.tools(tools)
    names = connection.approvals(approvals)
    connection.check_unique(connected)
    if connection.problems:
        raise AssistantConfigError(connection.problems)
    return connected, names


def check_mcp_connections(
    schemas: Iterable[tuple[AssistantSchema, str, Sequence[BaseTool]]],
) -> tuple[list[ConfigProblem], dict[str, int]]:
    """Connect as building every graph would, and report instead of raising.

    Args:
        schemas: Each assistant with its file and its (catalog) tools.

    Returns:
        Every problem found, and the number of tools of each server that answered.
    """
    problems: list[ConfigProblem] = []
    counts: dict[str, int] = {}
    for schema, source, tools in schemas:
        approvals = [name for name in schema.require_approval if is_mcp_reference(name)]
        try:
            connect_mcp_tools(schema, source, tools, approvals)
        except AssistantConfigError as error:
            problems.extend(p for p in error.problems if p not in problems)
        for tool in tools:
            if isinstance(tool, McpToolReference) and TOOLS_KEY in tool.server.cache:
                counts[tool.server.name] = len(tool.server.cache[TOOLS_KEY])
    return problems, counts


@dataclass
class _Connection:
    """Connecting one assistant's MCP references, collecting what goes wrong."""

    schema: AssistantSchema
    source: str
    problems: list[ConfigProblem] = field(default_factory=list)
    by_reference: dict[str, tuple[BaseTool, ...]] = field(default_factory=dict)
    servers: dict[str, McpServer] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    """Servers that could not be listed, with the problem (reported once per field)."""

    def tools(self, tools: Sequence[BaseTool]) -> list[BaseTool]:
        connected: list[BaseTool] = []
        for index, tool in enumerate(tools):
            if not isinstance(tool, McpToolReference):
                connected.append(tool)
                continue
            self.servers[tool.server.name] = tool.server
            selected = self._resolve(tool, f"tools[{index}]")
            self.by_reference[tool.name] = selected
            connected.extend(selected)
        return connected

    def approvals(self, approvals: Collection[str]) -> set[str]:
        names = {name for name in approvals if not is_mcp_reference(name)}
        for name in approvals:
            if not is_mcp_reference(name):
                continue
            if name in self.by_reference:
                names.update(tool.name for tool in self.by_reference[name])
                continue
            server_name, _, tool = name.removeprefix(MCP_PREFIX).partition("/")
            server = self.servers.get(server_name)
            if server is not None and tool and server_name not in self.failed:
                reference = McpToolReference(name=name, description=name, server=server, tool=tool)
                names.update(t.name for t in self._resolve(reference, self._approval_field(name)))
        return names

    def check_unique(self, tools: Sequence[BaseTool]) -> None:
        origin: dict[str, str] = {}
        for tool in tools:
            here = _origin_of(tool, self.by_reference)
            if tool.name in origin:
                self.problems.append(
                    ConfigProblem(
                        self.source,
                        "tools",
                        TWO_TOOLS_NAMED.format(
                            assistant=self.schema.name,
                            name=tool.name,
                            first=origin[tool.name],
                            second=here,
                        ),
                    )
                )
            origin.setdefault(tool.name, here)

    def _resolve(self, reference: McpToolReference, where: str) -> tuple[BaseTool, ...]:
        server = reference.server
        try:
            return reference.resolve()
        except McpConnectError as error:
            problem = self.failed.setdefault(server.name, str(error))
            message = CANNOT_LIST.format(
                assistant=self.schema.name, server=server.name, file=server.source, problem=problem
            )
            self.problems.append(ConfigProblem(self.source, where, message))
        except LookupError as error:
            tool, names = error.args
            message = NO_SUCH_TOOL.format(
                assistant=self.schema.name, server=server.name, tool=tool, names=names
            )
            self.problems.append(ConfigProblem(self.source, where, message))
        return ()

    def _approval_field(self, name: str) -> str:
        return f"require_approval[{self.schema.require_approval.index(name)}]"


def _origin_of(tool: BaseTool, by_reference: Mapping[str, tuple[BaseTool, ...]]) -> str:
    for reference, tools in by_reference.items():
        if any(t is tool for t in tools):
            return reference
    return "tools.py or the loader"
