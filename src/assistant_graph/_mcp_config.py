"""The MCP servers of an assistants folder: ``mcp.json``, in the format desktop clients use.

One file per folder declares every server once, as Claude Desktop, Cursor or VS Code
declare them, so an existing configuration can be pasted in::

    {
      "$schema": "mcp.schema.json",
      "mcpServers": {
        "notes": {"command": "python", "args": ["notes_server.py"]},
        "github": {"url": "https://example.com/mcp",
                   "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"}}
      }
    }

A server with ``command`` runs as a subprocess over stdio; one with ``url`` is reached
over streamable HTTP. ``${VAR}`` (or ``${VAR:-default}``) in any value is read from the
environment when a connection is opened, never earlier: the parsed configuration keeps
the reference, so a secret is never part of the catalog, a checkpoint, an event or an
error (:meth:`McpServer.redact` removes every value a connection used from error text).

Loading checks the file offline: JSON syntax, field names and types, reference syntax.
Connecting is :mod:`._mcp_tools`' job, at graph build time.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
)

from assistant_graph._errors import ConfigProblem

__all__ = [
    "AUTH_TOKEN_ENV",
    "DEFAULT_STARTUP_TIMEOUT",
    "DEFAULT_TOOL_TIMEOUT",
    "MCP_JSON_SCHEMA_FILENAME",
    "MCP_PREFIX",
    "MCP_SERVERS_FILENAME",
    "TOOLS_KEY",
    "HttpServerConfig",
    "McpConnectError",
    "McpServer",
    "McpServersFile",
    "McpSetupError",
    "StdioServerConfig",
    "mcp_json_schema",
    "read_mcp_servers",
    "servers_from_mapping",
    "write_mcp_json_schema",
]

MCP_SERVERS_FILENAME = "mcp.json"
"""The file in an assistants folder that declares its MCP servers."""
MCP_JSON_SCHEMA_FILENAME = "mcp.schema.json"
"""The JSON Schema of that file, written next to it for editors."""
MCP_PREFIX = "mcp:"
"""Tool names in schemas that start with this name MCP tools: ``mcp:<server>[/<tool>]``."""
AUTH_TOKEN_ENV = "ASSISTANT_GRAPH_MCP_TOKEN"
"""The environment variable ``assistant-graph mcp --auth-token`` is read from."""
DEFAULT_STARTUP_TIMEOUT = 30.0
"""Seconds a server may take to start and list its tools."""
DEFAULT_TOOL_TIMEOUT = 60.0
"""Seconds one tool call may take before the model is told it timed out."""
SERVER_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
"""Server names: letters, digits, ``_``, ``.`` and ``-`` (no ``/``, which separates tools)."""
PYTHON_COMMANDS = frozenset({"python", "python3"})
"""Commands that mean the interpreter running assistant-graph (same packages installed)."""
REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4
"""Values shorter than this are not redacted from error text (they would garble it)."""

URL_PATTERN = r"^(https?://|\$\{)\S+$"
"""An http(s) URL, or one that starts with a ``${VAR}`` reference."""
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
NEEDS_COMMAND_OR_URL = (
    "an MCP server needs either 'command' (a subprocess over stdio) or 'url' (streamable HTTP)"
)
BAD_REFERENCE = (
    "malformed environment variable reference in {value!r}: write ${{NAME}} or ${{NAME:-default}}"
)
UNSET_VARIABLE = "environment variable {name} is not set (referenced as ${{{name}}})"
UNKNOWN_KEY = "unknown field{suggestion}; a {kind} server has the fields {fields}"
MALFORMED_JSON = "malformed JSON: {message}"
BAD_URL = "must be an http:// or https:// URL (or start with a ${VAR} reference)"
BAD_SERVER_NAME = "server names may only have letters, digits, '_', '.' and '-'"
NOT_AN_OBJECT = 'expected a JSON object {{"mcpServers": {{...}}}}, got {kind}'


TOOLS_KEY = "tools"
"""Key of a server's listed tools in :attr:`McpServer.cache`."""


class McpConnectError(Exception):
    """A server could not be started, reached, or asked for its tools."""


class McpSetupError(Exception):
    """A connection cannot be described: an environment variable it references is unset."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        """The field of the server's entry, e.g. ``headers.Authorization``."""
        super().__init__(message)


def _no_malformed_references(value: str) -> str:
    if "${" in _REFERENCE.sub("", value):
        raise ValueError(BAD_REFERENCE.format(value=value))
    return value


class _ServerConfig(BaseModel):
    """Settings every server has, whatever its transport."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    startup_timeout: float = Field(
        default=DEFAULT_STARTUP_TIMEOUT,
        alias="startupTimeout",
        gt=0,
        le=600,
        description="Seconds the server may take to start (connect) and list its tools.",
    )
    """Seconds to start the server (or connect to it) and list its tools."""
    tool_timeout: float = Field(
        default=DEFAULT_TOOL_TIMEOUT,
        alias="toolTimeout",
        gt=0,
        le=3600,
        description="Seconds one tool call may take; a slower call becomes an error result.",
    )
    """Seconds one tool call may take before the model is told it timed out."""
    disabled: bool = Field(
        default=False, description="Declared but not to be used (assistants may not list it)."
    )
    """Whether the server is switched off (as desktop clients' ``disabled``)."""

    @field_validator("*", mode="after")
    @classmethod
    def _references_are_well_formed(cls, value: Any) -> Any:
        for text in _strings_in(value):
            _no_malformed_references(text)
        return value


class StdioServerConfig(_ServerConfig):
    """A server started as a subprocess, spoken to over its stdin and stdout."""

    model_config = ConfigDict(title="Stdio MCP server")

    type: Literal["stdio"] = Field(default="stdio", description="The transport (optional).")
    """The transport; optional, ``command`` implies it."""
    command: str = Field(
        min_length=1,
        description="The program to run; 'python' runs the interpreter of assistant-graph.",
    )
    """The program; ``python``/``python3`` mean the interpreter running assistant-graph."""
    args: list[str] = Field(default_factory=list, description="Its arguments.")
    """Its command line arguments."""
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables for it (secrets as ${VAR} references).",
    )
    """Extra environment variables (added to a minimal inherited environment)."""
    cwd: str | None = Field(
        default=None,
        description="Working directory, relative to the folder of mcp.json (default: that folder).",
    )
    """Its working directory, relative to the folder of ``mcp.json`` (default: that folder)."""


class HttpServerConfig(_ServerConfig):
    """A server reached over streamable HTTP."""

    model_config = ConfigDict(title="Streamable HTTP MCP server")

    type: Literal["http", "streamable-http", "streamableHttp"] = Field(
        default="http", description="The transport (optional): streamable HTTP."
    )
    """The transport; optional, ``url`` implies it. (SSE is not supported.)"""
    url: str = Field(
        pattern=URL_PATTERN, description="The endpoint, e.g. http://127.0.0.1:8000/mcp."
    )
    """The endpoint URL."""
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="HTTP headers sent with every request (secrets as ${VAR} references).",
    )
    """HTTP headers for every request, e.g. ``Authorization: Bearer ${TOKEN}``."""


def _transport_of(entry: Any) -> str | None:
    if isinstance(entry, Mapping):
        if "command" in entry:
            return "stdio"
        if "url" in entry:
            return "http"
    return None


ServerConfig = Annotated[
    Annotated[StdioServerConfig, Tag("stdio")] | Annotated[HttpServerConfig, Tag("http")],
    Discriminator(
        _transport_of,
        custom_error_type="mcp_server_kind",
        custom_error_message=NEEDS_COMMAND_OR_URL,
    ),
]
"""One entry of ``mcpServers``: stdio if it has ``command``, streamable HTTP if ``url``."""

ServerName = Annotated[str, StringConstraints(pattern=SERVER_NAME_PATTERN)]


class McpServersFile(BaseModel):
    """``mcp.json``: the MCP servers the assistants of a folder may use."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, title="MCP servers"
    )

    schema_: str | None = Field(default=None, alias="$schema", description="For editors.")
    """The JSON Schema editors check the file with (ignored here)."""
    servers: dict[ServerName, ServerConfig] = Field(
        alias="mcpServers", description="The servers, by name (letters, digits, _ . -)."
    )
    """The servers by name, as desktop MCP clients declare them."""


class McpServer:
    """One declared server: its name, settings, and where it was declared.

    Besides its settings it keeps what connecting has learnt (:attr:`cache`, the listed
    tools) and the values its connections used, to redact them from error text.
    """

    def __init__(
        self,
        name: str,
        config: StdioServerConfig | HttpServerConfig,
        source: str = MCP_SERVERS_FILENAME,
        folder: Path | None = None,
    ) -> None:
        self.name = name
        """The server's name in ``mcpServers``."""
        self.config = config
        """Its settings, ``${VAR}`` references unexpanded."""
        self.source = source
        """The file that declares it."""
        self.folder = folder
        """The folder of that file (relative ``cwd`` and scripts are found from there)."""
        self.cache: dict[str, Any] = {}
        """What has been learnt by connecting (the listed tools)."""
        self.lock = threading.Lock()
        """Held while connecting to list tools, so one build lists a server once."""
        self._secrets: frozenset[str] = frozenset()  # replaced, never changed: thread-safe

    def __repr__(self) -> str:
        return f"McpServer({self.name!r}, {self.describe()!r})"

    @property
    def location(self) -> str:
        """Where the server is declared in its file."""
        return f"mcpServers.{self.name}"

    def describe(self) -> str:
        """The server in one line, without secrets (references stay unexpanded)."""
        config = self.config
        if isinstance(config, StdioServerConfig):
            return f"stdio: {' '.join([config.command, *config.args])}"
        return f"streamable HTTP: {config.url}"

    def connection(self) -> dict[str, Any]:
        """The ``langchain-mcp-adapters`` connection, ``${VAR}`` references expanded.

        Every expanded value, header and environment value is remembered for
        :meth:`redact`.

        Raises:
            McpSetupError: A referenced environment variable is not set.
        """
        config = self.config
        if isinstance(config, StdioServerConfig):
            return {
                "transport": "stdio",
                "command": self._command(self._expand(config.command, "command")),
                "args": [self._expand(arg, f"args[{i}]") for i, arg in enumerate(config.args)],
                "env": self._expand_all(config.env, "env", secret=True) or None,
                "cwd": str(self._cwd(config.cwd)),
            }
        return {
            "transport": "streamable_http",
            "url": self._expand(config.url, "url"),
            "headers": self._expand_all(config.headers, "headers", secret=True) or None,
        }

    def connection_template(self) -> dict[str, Any]:
        """The connection with references unexpanded: for APIs that want one but never
        open it (this package opens every session itself)."""
        config = self.config
        if isinstance(config, StdioServerConfig):
            return {"transport": "stdio", "command": config.command, "args": list(config.args)}
        return {"transport": "streamable_http", "url": config.url}

    def redact(self, text: str) -> str:
        """``text`` without any secret a connection of this server used."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def _expand(self, value: str, where: str, *, secret: bool = False) -> str:
        def variable(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name, default)
            if found is None:
                raise McpSetupError(f"{self.location}.{where}", UNSET_VARIABLE.format(name=name))
            self._remember(found)
            return found

        expanded = _REFERENCE.sub(variable, value)
        if secret:
            self._remember(expanded)
        return expanded

    def _expand_all(self, values: Mapping[str, str], where: str, *, secret: bool) -> dict[str, str]:
        return {
            key: self._expand(value, f"{where}.{key}", secret=secret)
            for key, value in values.items()
        }

    def _remember(self, value: str) -> None:
        if len(value) >= MIN_SECRET_LENGTH and value not in self._secrets:
            self._secrets = self._secrets | {value}

    def _command(self, command: str) -> str:
        return sys.executable if command in PYTHON_COMMANDS else command

    def _cwd(self, cwd: str | None) -> Path:
        base = self.folder or Path.cwd()
        return base if cwd is None else base / self._expand(cwd, "cwd")


def read_mcp_servers(folder: Path) -> tuple[dict[str, McpServer], list[ConfigProblem]]:
    """The servers declared in ``<folder>/mcp.json`` (none if there is no such file).

    Returns:
        The servers by name, and every problem found in the file (with its field).
    """
    path = folder / MCP_SERVERS_FILENAME
    if not path.is_file():
        return {}, []
    source = str(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except UnicodeDecodeError as error:
        return {}, [ConfigProblem(source, "", f"not UTF-8 text: {error}")]
    except json.JSONDecodeError as error:
        message = MALFORMED_JSON.format(message=error.msg)
        return {}, [ConfigProblem(source, "", message, line=error.lineno, column=error.colno)]
    return _parse(data, source, folder)


def servers_from_mapping(
    servers: Mapping[str, Any], *, folder: Path | None = None, source: str = "<mcp_servers>"
) -> tuple[dict[str, McpServer], list[ConfigProblem]]:
    """Servers given in Python, as the ``mcpServers`` mapping of ``mcp.json``."""
    return _parse({"mcpServers": dict(servers)}, source, folder)


def _parse(
    data: Any, source: str, folder: Path | None
) -> tuple[dict[str, McpServer], list[ConfigProblem]]:
    if not isinstance(data, dict):
        return {}, [ConfigProblem(source, "", NOT_AN_OBJECT.format(kind=type(data).__name__))]
    try:
        parsed = McpServersFile.model_validate(data)
    except ValidationError as error:
        return {}, [_problem(source, detail) for detail in error.errors(include_url=False)]
    servers = {
        name: McpServer(name, config, source, folder) for name, config in parsed.servers.items()
    }
    return servers, []


def _problem(source: str, detail: Any) -> ConfigProblem:
    loc = [part for part in detail["loc"] if part not in ("stdio", "http")]
    if loc[:1] == ["servers"]:
        loc[0] = "mcpServers"
    if "[key]" in loc:
        return ConfigProblem(source, _field_path(loc[: loc.index("[key]")]), BAD_SERVER_NAME)
    where = _field_path(loc)
    if detail["type"] == "extra_forbidden":
        return ConfigProblem(source, where, _unknown_key(detail["loc"]))
    if detail["type"] == "string_pattern_mismatch" and loc[-1:] == ["url"]:
        return ConfigProblem(source, where, BAD_URL)
    return ConfigProblem(source, where, " ".join(str(detail["msg"]).split()))


def _unknown_key(loc: Sequence[Any]) -> str:
    kind = "stdio" if "stdio" in loc else "streamable HTTP" if "http" in loc else ""
    model: type[BaseModel] = (
        StdioServerConfig if kind == "stdio" else HttpServerConfig if kind else McpServersFile
    )
    names = [info.alias or name for name, info in model.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    suggestion = f" (did you mean {close[0]!r}?)" if close else ""
    if not kind:
        return f"unknown field{suggestion}; the file has the fields {', '.join(names)}"
    return UNKNOWN_KEY.format(suggestion=suggestion, kind=kind, fields=", ".join(names))


def _field_path(loc: Sequence[Any]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _strings_in(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        yield from (v for v in value.values() if isinstance(v, str))
    elif isinstance(value, list):
        yield from (v for v in value if isinstance(v, str))


def mcp_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``mcp.json``, for editors that check the file."""
    schema = McpServersFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def write_mcp_json_schema(folder: str | Path) -> Path:
    """Write :func:`mcp_json_schema` to ``<folder>/mcp.schema.json``."""
    path = Path(folder) / MCP_JSON_SCHEMA_FILENAME
    path.write_text(json.dumps(mcp_json_schema(), indent=2) + "\n", encoding="utf-8")
    return path
