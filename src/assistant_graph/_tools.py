"""Resolving the tool names written in assistant schemas to LangChain tools.

A name resolves, in this order, to a tool passed by the caller of the Python API, a
LangChain tool defined in ``tools.py`` inside the assistants folder (by the tool's
name), or an import string ``package.module:attribute``. ``mcp:<server>[/<tool>]`` names
tools of a server declared in the folder's ``mcp.json`` (see :mod:`._mcp_tools`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool

from assistant_graph._errors import AssistantConfigError
from assistant_graph._mcp_config import MCP_SERVERS_FILENAME, McpServer
from assistant_graph._mcp_tools import is_mcp_reference, mcp_reference

__all__ = ["TOOLS_MODULE_FILENAME", "ToolRegistry", "UnknownToolError", "load_folder_tools"]

TOOLS_MODULE_FILENAME = "tools.py"
"""The module in an assistants folder whose LangChain tools schemas may name."""


class UnknownToolError(LookupError):
    """A tool name that resolves to nothing; the catalog reports it with file and field."""


@dataclass(frozen=True)
class ToolRegistry:
    """The tools schemas can name: caller-supplied, folder ``tools.py``, import strings."""

    folder_tools: Mapping[str, BaseTool] = field(default_factory=dict)
    """Tools found in the assistants folder's ``tools.py``, by tool name."""
    extra_tools: Mapping[str, BaseTool] = field(default_factory=dict)
    """Tools given by the caller of the Python API, by tool name; these win on a clash."""
    mcp_servers: Mapping[str, McpServer] = field(default_factory=dict)
    """The MCP servers ``mcp:<server>`` names may use, by name (from ``mcp.json``)."""

    @classmethod
    def build(
        cls,
        folder: Path | None,
        extra_tools: Iterable[BaseTool | Callable[..., Any]] = (),
        mcp_servers: Mapping[str, McpServer] | None = None,
    ) -> ToolRegistry:
        """Collect the folder's tools (if it has a ``tools.py``), the extra tools and the
        MCP servers."""
        folder_tools = load_folder_tools(folder) if folder is not None else {}
        extra = {tool.name: tool for tool in map(_as_base_tool, extra_tools)}
        return cls(folder_tools=folder_tools, extra_tools=extra, mcp_servers=mcp_servers or {})

    def resolve(self, name: str) -> BaseTool:
        """The tool a schema means by ``name``.

        Raises:
            UnknownToolError: If nothing of that name exists or it is not a tool.
        """
        if is_mcp_reference(name):
            try:
                return mcp_reference(name, self.mcp_servers, MCP_SERVERS_FILENAME)
            except LookupError as error:
                raise UnknownToolError(str(error)) from None
        if name in self.extra_tools:
            return self.extra_tools[name]
        if name in self.folder_tools:
            return self.folder_tools[name]
        if ":" in name:
            return _import_tool(name)
        known = sorted({*self.extra_tools, *self.folder_tools})
        raise UnknownToolError(
            f"unknown tool {name!r}: not defined in {TOOLS_MODULE_FILENAME} of the assistants "
            f"folder, not given to the loader, and not an import string 'package.module:attr' "
            f"(known tools: {', '.join(known) or 'none'})"
        )


def load_folder_tools(folder: Path) -> dict[str, BaseTool]:
    """The LangChain tools defined at module level in ``<folder>/tools.py``, by tool name.

    Raises:
        AssistantConfigError: If ``tools.py`` cannot be imported.
    """
    path = folder / TOOLS_MODULE_FILENAME
    if not path.is_file():
        return {}
    module = _import_file(path)
    return {value.name: value for value in vars(module).values() if isinstance(value, BaseTool)}


def _import_file(path: Path) -> ModuleType:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"assistant_graph_folder_tools_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise AssistantConfigError.single(str(path), "", "cannot be imported as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        raise AssistantConfigError.single(
            str(path), "", f"importing it failed: {type(error).__name__}: {error}"
        ) from error
    return module


def _import_tool(import_string: str) -> BaseTool:
    module_name, _, attribute = import_string.partition(":")
    if not module_name or not attribute:
        raise UnknownToolError(f"import string {import_string!r} is not 'package.module:attr'")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise UnknownToolError(
            f"cannot import module {module_name!r} for tool {import_string!r}: {error}"
        ) from error
    try:
        value = getattr(module, attribute)
    except AttributeError:
        raise UnknownToolError(f"module {module_name!r} has no attribute {attribute!r}") from None
    try:
        return _as_base_tool(value)
    except TypeError as error:
        raise UnknownToolError(f"{import_string!r} {error}") from None


def _as_base_tool(value: BaseTool | Callable[..., Any]) -> BaseTool:
    if isinstance(value, BaseTool):
        return value
    if callable(value):
        return as_tool(value)
    raise TypeError(f"is a {type(value).__name__}, not a LangChain tool or a function")
