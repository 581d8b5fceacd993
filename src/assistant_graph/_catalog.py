"""Loading assistants from a folder: ``load_assistants`` and the read-only ``AssistantCatalog``.

Loading happens in named steps: read documents -> parse schemas -> check names unique ->
check references (tools, sub-assistants). Every problem found is collected, and one
:class:`~assistant_graph._errors.AssistantConfigError` lists them all with file and field.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from langchain_core.tools import BaseTool
from pydantic import ValidationError

from assistant_graph._budget import Budget
from assistant_graph._errors import AssistantConfigError, ConfigProblem, MissingConfigError
from assistant_graph._mcp_config import McpServer, read_mcp_servers, servers_from_mapping
from assistant_graph._mcp_tools import covers_approval
from assistant_graph._names import tool_name_from_assistant_name
from assistant_graph._problems import unreadable_problem, validation_problems, yaml_problem
from assistant_graph._schema import AssistantSchema
from assistant_graph._tools import ToolRegistry, UnknownToolError

__all__ = ["DEFAULT_ASSISTANTS_FOLDER", "AssistantCatalog", "load_assistants"]

DEFAULT_ASSISTANTS_FOLDER = "assistants"
"""The folder ``load_assistants`` reads when given none."""

YAML_SUFFIXES = (".yaml", ".yml")
_FIELDS = tuple(AssistantSchema.model_fields)
_NESTED_FIELDS = {"budget": tuple(Budget.model_fields)}


class AssistantCatalog(Mapping[str, AssistantSchema]):
    """Validated assistants by name, with the tools they name resolved. Read-only.

    Asking for a name the catalog lacks raises
    :class:`~assistant_graph._errors.MissingConfigError` (a ``KeyError``).
    """

    def __init__(
        self,
        schemas: Mapping[str, AssistantSchema],
        *,
        sources: Mapping[str, str],
        tools: Mapping[str, tuple[BaseTool, ...]],
        folder: Path | None = None,
    ) -> None:
        self._schemas = dict(schemas)
        self._sources = dict(sources)
        self._tools = dict(tools)
        self.folder = folder
        """The folder the assistants were loaded from, if any."""

    @classmethod
    def from_schemas(
        cls,
        schemas: Iterable[AssistantSchema | Mapping[str, Any]],
        *,
        tools: Iterable[BaseTool | Callable[..., Any]] = (),
        folder: str | Path | None = None,
        mcp_servers: Mapping[str, Any] | None = None,
    ) -> AssistantCatalog:
        """A catalog from schemas given in Python, validated like files.

        Args:
            schemas: Assistant schemas, or dicts with their fields.
            tools: Tools the schemas may name, besides those of ``folder``.
            folder: A folder whose ``tools.py`` supplies tools (no YAML is read), and
                whose ``mcp.json`` declares MCP servers unless ``mcp_servers`` is given.
            mcp_servers: MCP servers as the ``mcpServers`` mapping of ``mcp.json``, for
                ``mcp:<server>`` tool names.

        Raises:
            AssistantConfigError: Listing every problem found.
        """
        documents = [
            _Document(f"<schema {index}>", _as_dict(schema)) for index, schema in enumerate(schemas)
        ]
        folder_path = Path(folder) if folder is not None else None
        servers, problems = _mcp_servers(folder_path, mcp_servers)
        registry = ToolRegistry.build(folder_path, tools, servers)
        return _build_catalog(documents, registry, folder_path, _Findings(problems))

    def __getitem__(self, name: str) -> AssistantSchema:
        try:
            return self._schemas[name]
        except KeyError:
            raise MissingConfigError(name, sorted(self._schemas)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._schemas)

    def __len__(self) -> int:
        return len(self._schemas)

    def __repr__(self) -> str:
        return f"AssistantCatalog({sorted(self._schemas)!r})"

    def source_of(self, name: str) -> str:
        """The file (or description of the source) the assistant ``name`` came from."""
        self[name]
        return self._sources[name]

    def tools_for(self, name: str) -> tuple[BaseTool, ...]:
        """The resolved tools of assistant ``name``, in the order its schema lists them."""
        self[name]
        return self._tools[name]

    def reachable_from(self, name: str) -> list[str]:
        """``name`` and every assistant it can reach through sub-assistant calls, in BFS order."""
        order = [name]
        for current in order:
            order.extend(sub for sub in self[current].sub_assistants if sub not in order)
        return order


def load_assistants(
    path: str | Path = DEFAULT_ASSISTANTS_FOLDER,
    *,
    tools: Iterable[BaseTool | Callable[..., Any]] = (),
) -> AssistantCatalog:
    """Load and validate every ``*.yaml``/``*.yml`` assistant in the folder ``path``.

    The MCP servers that ``mcp:`` tool names use are read from the folder's ``mcp.json``
    and checked offline; building a graph connects to them.

    Args:
        path: The assistants folder (default ``./assistants``).
        tools: Extra tools that schemas may name, besides the folder's ``tools.py``.

    Returns:
        The catalog of assistants by name.

    Raises:
        AssistantConfigError: Listing every problem found, each with file and field:
            malformed YAML, a wrong type, a duplicate name, a sub-assistant that does not
            exist or is not callable, an unknown tool, a bad model string, a malformed
            ``mcp.json`` or an ``mcp:`` name of a server it does not declare.

    Example:
        >>> catalog = load_assistants("assistants")  # doctest: +SKIP
        >>> catalog["proxy"].sub_assistants  # doctest: +SKIP
        ['researcher', 'writer']
    """
    folder = Path(path)
    if not folder.is_dir():
        raise AssistantConfigError.single(str(folder), "", "assistants folder not found")
    found = _Findings()
    documents = _read_documents(folder, found)
    servers, server_problems = read_mcp_servers(folder)
    found.problems.extend(server_problems)
    registry = ToolRegistry.build(folder, tools, servers)
    return _build_catalog(documents, registry, folder, found)


@dataclass(frozen=True)
class _Document:
    source: str
    data: Any


@dataclass
class _Findings:
    """What loading has found wrong so far."""

    problems: list[ConfigProblem] = field(default_factory=list)
    """Every problem, in the order found."""
    broken: set[str] = field(default_factory=set)
    """Names of assistants whose file exists but failed to parse or validate: references
    to them are not reported again (the file's own problem is the root cause)."""

    def add_broken(self, document: _Document) -> None:
        """Remember the assistant of a broken document: its ``name``, else the file stem."""
        name = document.data.get("name") if isinstance(document.data, dict) else None
        self.broken.add(name if isinstance(name, str) else Path(document.source).stem)


def _read_documents(folder: Path, found: _Findings) -> list[_Document]:
    files = sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
    documents: list[_Document] = []
    if not files:
        found.problems.append(
            ConfigProblem(str(folder), "", "no assistant YAML files (*.yaml, *.yml)")
        )
    for file in files:
        document = _read_document(file, found)
        if document is not None:
            documents.append(document)
    return documents


def _read_document(file: Path, found: _Findings) -> _Document | None:
    try:
        text = file.read_text("utf-8")
    except UnicodeDecodeError as error:
        found.problems.append(unreadable_problem(str(file), error))
        found.add_broken(_Document(str(file), None))
        return None
    try:
        return _Document(str(file), yaml.safe_load(text))
    except yaml.YAMLError as error:
        found.problems.append(yaml_problem(str(file), text, error))
        found.add_broken(_Document(str(file), None))
        return None


def _build_catalog(
    documents: Sequence[_Document],
    registry: ToolRegistry,
    folder: Path | None,
    found: _Findings | None = None,
) -> AssistantCatalog:
    found = found or _Findings()
    parsed = _parse_schemas(documents, found)
    unique = _unique_by_name(parsed, found.problems)
    _check_sub_assistants(unique, found)
    _check_approvals(unique, found.problems)
    tools = _resolve_tools(unique, registry, found.problems)
    if found.problems:
        raise AssistantConfigError(found.problems)
    return AssistantCatalog(
        {name: schema for name, (_, schema) in unique.items()},
        sources={name: source for name, (source, _) in unique.items()},
        tools=tools,
        folder=folder,
    )


def _parse_schemas(
    documents: Sequence[_Document], found: _Findings
) -> list[tuple[str, AssistantSchema]]:
    parsed = []
    for document in documents:
        if not isinstance(document.data, dict):
            kind = "empty" if document.data is None else type(document.data).__name__
            found.problems.append(
                ConfigProblem(document.source, "", f"expected a mapping of fields, got {kind}")
            )
            found.add_broken(document)
            continue
        try:
            parsed.append((document.source, _validate(document)))
        except ValidationError as error:
            found.problems.extend(
                validation_problems(document.source, error, _FIELDS, _NESTED_FIELDS)
            )
            found.add_broken(document)
    return parsed


def _validate(document: _Document) -> AssistantSchema:
    """The document's schema; a deprecation it uses is warned about naming its file."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        schema = AssistantSchema.model_validate(document.data)
    for warning in caught:
        warnings.warn(f"{document.source}: {warning.message}", warning.category, stacklevel=4)
    return schema


def _unique_by_name(
    parsed: Sequence[tuple[str, AssistantSchema]], problems: list[ConfigProblem]
) -> dict[str, tuple[str, AssistantSchema]]:
    unique: dict[str, tuple[str, AssistantSchema]] = {}
    for source, schema in parsed:
        if schema.name in unique:
            first = unique[schema.name][0]
            problems.append(
                ConfigProblem(source, "name", f"duplicate name {schema.name!r} (also in {first})")
            )
            continue
        unique[schema.name] = (source, schema)
    return unique


def _check_sub_assistants(
    schemas: Mapping[str, tuple[str, AssistantSchema]], found: _Findings
) -> None:
    problems = found.problems
    for source, schema in schemas.values():
        for index, sub in enumerate(schema.sub_assistants):
            field = f"sub_assistants[{index}]"
            if sub in found.broken and sub not in schemas:
                continue  # its own file's problem is already reported
            if sub not in schemas:
                problems.append(ConfigProblem(source, field, f"no assistant named {sub!r}"))
            elif not schemas[sub][1].callable:
                problems.append(
                    ConfigProblem(
                        source, field, f"assistant {sub!r} is not callable (set callable: true)"
                    )
                )


def _check_approvals(
    schemas: Mapping[str, tuple[str, AssistantSchema]], problems: list[ConfigProblem]
) -> None:
    for source, schema in schemas.values():
        offered = {*schema.tools, *map(tool_name_from_assistant_name, schema.sub_assistants)}
        for index, name in enumerate(schema.require_approval):
            if name not in offered and not covers_approval(schema.tools, name):
                problems.append(
                    ConfigProblem(
                        source,
                        f"require_approval[{index}]",
                        f"{name!r} is not one of this assistant's tools "
                        f"({', '.join(sorted(offered)) or 'it has none'})",
                    )
                )


def _resolve_tools(
    schemas: Mapping[str, tuple[str, AssistantSchema]],
    registry: ToolRegistry,
    problems: list[ConfigProblem],
) -> dict[str, tuple[BaseTool, ...]]:
    resolved: dict[str, tuple[BaseTool, ...]] = {}
    for name, (source, schema) in schemas.items():
        tools = []
        for index, tool_name in enumerate(schema.tools):
            try:
                tools.append(registry.resolve(tool_name))
            except UnknownToolError as error:
                problems.append(ConfigProblem(source, f"tools[{index}]", str(error)))
        resolved[name] = tuple(tools)
    return resolved


def _mcp_servers(
    folder: Path | None, declared: Mapping[str, Any] | None
) -> tuple[dict[str, McpServer], list[ConfigProblem]]:
    if declared is not None:
        return servers_from_mapping(declared, folder=folder)
    return read_mcp_servers(folder) if folder is not None else ({}, [])


def _as_dict(schema: AssistantSchema | Mapping[str, Any]) -> Any:
    if isinstance(schema, AssistantSchema):
        return schema.model_dump()
    return dict(schema) if isinstance(schema, Mapping) else schema
