"""MCP on the command line: ``assistant-graph mcp`` (serve) and ``validate --connect``.

``mcp`` serves the folder's callable assistants (or those named with ``--only``) as MCP
tools with :mod:`assistant_graph.mcp_server`, over stdio or streamable HTTP; HTTP listens
on loopback unless told otherwise, and anywhere else only with an auth token.
``validate --connect`` starts (or reaches) every MCP server the assistants use and checks
that the tools they name exist, as building their graphs would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from assistant_graph._catalog import AssistantCatalog, load_assistants
from assistant_graph._errors import AssistantConfigError
from assistant_graph._mcp_config import AUTH_TOKEN_ENV
from assistant_graph._mcp_tools import McpToolReference, check_mcp_connections
from assistant_graph._models import ModelOverride
from assistant_graph._persistence import open_checkpointer
from assistant_graph.cli._failures import CliFailure

__all__ = [
    "AuthTokenOption",
    "ConnectOption",
    "HostOption",
    "McpServeSettings",
    "OnlyOption",
    "PortOption",
    "Transport",
    "TransportOption",
    "connect_mcp_servers",
    "serve_assistants",
]

SERVER_LINE = "MCP server {name}: {count} tool(s)"
NOTHING_TO_CONNECT = "no assistant uses MCP tools"
MISSING_EXTRA = (
    "serving over MCP needs the optional dependencies: pip install 'assistant-graph[mcp]'"
)


class Transport(StrEnum):
    """How ``assistant-graph mcp`` talks to its clients."""

    stdio = "stdio"
    streamable_http = "streamable-http"


TransportOption = Annotated[
    Transport,
    typer.Option(
        "--transport",
        help="stdio (the client starts this command) or streamable-http (clients connect "
        "to http://HOST:PORT/mcp).",
        case_sensitive=False,
    ),
]
HostOption = Annotated[
    str,
    typer.Option(
        "--host",
        help="Streamable HTTP: the address to listen on (any other than loopback needs "
        "--auth-token).",
    ),
]
PortOption = Annotated[
    int, typer.Option("--port", min=1, max=65535, help="Streamable HTTP: the port.")
]
OnlyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--only",
        metavar="NAME",
        help="Serve only these assistants (repeat, or separate with commas); callable or "
        "not. Default: every callable assistant.",
    ),
]
AuthTokenOption = Annotated[
    str | None,
    typer.Option(
        "--auth-token",
        envvar=AUTH_TOKEN_ENV,
        show_envvar=True,
        help="Streamable HTTP: clients must send 'Authorization: Bearer <token>'.",
    ),
]
ConnectOption = Annotated[
    bool,
    typer.Option(
        "--connect",
        help="Also start (or reach) every MCP server the assistants use, and check that "
        "the tools they name exist.",
    ),
]


@dataclass(frozen=True)
class McpServeSettings:
    """What the command line says about serving assistants over MCP."""

    assistants: Path
    """The assistants folder."""
    transport: Transport = Transport.stdio
    """stdio or streamable HTTP."""
    host: str = "127.0.0.1"
    """Where HTTP listens."""
    port: int = 8000
    """The HTTP port."""
    only: list[str] = field(default_factory=list)
    """The assistants to serve; empty: every callable one."""
    db: str | None = None
    """Where conversations are kept (see :func:`~assistant_graph.open_checkpointer`)."""
    model: ModelOverride = None
    """Replaces every assistant's model."""
    keep_history: bool = False
    """Keep every checkpoint of finished conversations."""
    auth_token: str | None = None
    """The bearer token HTTP clients must send."""


def serve_assistants(settings: McpServeSettings) -> None:
    """Load the assistants, open the thread store and serve until stopped.

    Raises:
        CliFailure: The ``mcp`` extra is missing, or HTTP would listen beyond loopback
            without a token.
        AssistantConfigError: The folder is invalid, or a served graph cannot be built.
        MissingConfigError: ``--only`` names an assistant that does not exist.
    """
    try:
        from assistant_graph.mcp_server import check_exposure, create_mcp_server, serve_mcp
    except ImportError:
        raise CliFailure(MISSING_EXTRA) from None
    if settings.transport is Transport.streamable_http:
        try:
            check_exposure(settings.host, settings.auth_token)
        except ValueError as error:
            raise CliFailure(str(error)) from None
    catalog = load_assistants(settings.assistants)
    names = [name for entry in settings.only for name in entry.split(",") if name.strip()]
    for name in names:
        catalog[name.strip()]  # unknown names fail before anything starts
    with open_checkpointer(settings.db) as saver:
        server = create_mcp_server(
            catalog,
            checkpointer=saver,
            assistants=[name.strip() for name in names] or None,
            model=settings.model,
            keep_history=settings.keep_history,
            host=settings.host,
            port=settings.port,
        )
        try:
            serve_mcp(
                server,
                transport="stdio" if settings.transport is Transport.stdio else "streamable-http",
                host=settings.host,
                port=settings.port,
                auth_token=settings.auth_token,
            )
        except ValueError as error:
            raise CliFailure(str(error)) from None


def connect_mcp_servers(catalog: AssistantCatalog) -> list[str]:
    """Connect to every MCP server the assistants use; one line per server that answered.

    Raises:
        AssistantConfigError: Every problem found (a server that cannot start, a tool it
            does not have), each with the assistant's file and field.
    """
    problems, counts = check_mcp_connections(
        (catalog[name], catalog.source_of(name), catalog.tools_for(name)) for name in catalog
    )
    if problems:
        raise AssistantConfigError(problems)
    used = any(
        isinstance(tool, McpToolReference) for name in catalog for tool in catalog.tools_for(name)
    )
    if not used:
        return [NOTHING_TO_CONNECT]
    return [SERVER_LINE.format(name=name, count=count) for name, count in sorted(counts.items())]
