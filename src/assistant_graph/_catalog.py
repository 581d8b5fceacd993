"""Loading assistants from a folder: ``load_assistants`` and the read-only ``AssistantCatalog``.

Loading happens in named steps: read documents -> parse schemas -> check names unique ->
check references (tools, sub-assistants). Every problem found is collected, and one
:class:`~assistant_graph._errors.AssistantConfigError` lists them all with file and field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from langchain_core.tools import BaseTool
from pydantic import ValidationError

from assistant_graph._errors import AssistantConfigError, ConfigProblem, MissingConfigError
from assistant_graph._names import tool_name_from_assistant_name
from assistant_graph._schema import AssistantSchema
from assistant_graph._tools import ToolRegistry, UnknownToolError

__all__ = ["DEFAULT_ASSISTANTS_FOLDER", "AssistantCatalog", "load_assistants"]

DEFAULT_ASSISTANTS_FOLDER = "assistants"
"""The folder ``load_assistants`` reads when given none."""

YAML_SUFFIXES = (".yaml", ".yml")


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
    ) -> AssistantCatalog:
        """A catalog from schemas given in Python, validated like files.

        Args:
            schemas: Assistant schemas, or dicts with their fields.
            tools: Tools the schemas may name, besides those of ``folder``.
            folder: A folder whose ``tools.py`` supplies tools (no YAML is read).

        Raises:
            AssistantConfigError: Listing every problem found.
        """
        documents = [
            _Document(f"<schema {index}>", _as_dict(schema)) for index, schema in enumerate(schemas)
        ]
        folder_path = Path(folder) if folder is not None else None
        return _build_catalog(documents, ToolRegistry.build(folder_path, tools), folder_path)

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

    Args:
        path: The assistants folder (default ``./assistants``).
        tools: Extra tools that schemas may name, besides the folder's ``tools.py``.

    Returns:
        The catalog of assistants by name.

    Raises:
        AssistantConfigError: Listing every problem found, each with file and field:
            malformed YAML, a wrong type, a duplicate name, a sub-assistant that does not
            exist or is not callable, an unknown tool, a bad model string.

    Example:
        >>> catalog = load_assistants("assistants")  # doctest: +SKIP
        >>> catalog["proxy"].sub_assistants  # doctest: +SKIP
        ['researcher', 'writer']
    """
    folder = Path(path)
    if not folder.is_dir():
        raise AssistantConfigError.single(str(folder), "", "assistants folder not found")
    documents, problems = _read_documents(folder)
    return _build_catalog(documents, ToolRegistry.build(folder, tools), folder, problems)


@dataclass(frozen=True)
class _Document:
    source: str
    data: Any


def _read_documents(folder: Path) -> tuple[list[_Document], list[ConfigProblem]]:
    files = sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
    documents: list[_Document] = []
    problems: list[ConfigProblem] = []
    if not files:
        problems.append(ConfigProblem(str(folder), "", "no assistant YAML files (*.yaml, *.yml)"))
    for file in files:
        try:
            documents.append(_Document(str(file), yaml.safe_load(file.read_text("utf-8"))))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            problems.append(ConfigProblem(str(file), "", f"malformed YAML: {_oneline(error)}"))
    return documents, problems


def _build_catalog(
    documents: Sequence[_Document],
    registry: ToolRegistry,
    folder: Path | None,
    problems: Sequence[ConfigProblem] = (),
) -> AssistantCatalog:
    found = list(problems)
    parsed = _parse_schemas(documents, found)
    unique = _unique_by_name(parsed, found)
    _check_sub_assistants(unique, found)
    _check_approvals(unique, found)
    tools = _resolve_tools(unique, registry, found)
    if found:
        raise AssistantConfigError(found)
    return AssistantCatalog(
        {name: schema for name, (_, schema) in unique.items()},
        sources={name: source for name, (source, _) in unique.items()},
        tools=tools,
        folder=folder,
    )


def _parse_schemas(
    documents: Sequence[_Document], problems: list[ConfigProblem]
) -> list[tuple[str, AssistantSchema]]:
    parsed = []
    for document in documents:
        if not isinstance(document.data, dict):
            kind = "empty" if document.data is None else type(document.data).__name__
            problems.append(
                ConfigProblem(document.source, "", f"expected a mapping of fields, got {kind}")
            )
            continue
        try:
            parsed.append((document.source, AssistantSchema.model_validate(document.data)))
        except ValidationError as error:
            problems.extend(_validation_problems(document.source, error))
    return parsed


def _validation_problems(source: str, error: ValidationError) -> list[ConfigProblem]:
    return [
        ConfigProblem(source, _field_path(detail["loc"]) or "", _oneline(detail["msg"]))
        for detail in error.errors(include_url=False)
    ]


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


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
    schemas: Mapping[str, tuple[str, AssistantSchema]], problems: list[ConfigProblem]
) -> None:
    for source, schema in schemas.values():
        for index, sub in enumerate(schema.sub_assistants):
            field = f"sub_assistants[{index}]"
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
            if name not in offered:
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


def _as_dict(schema: AssistantSchema | Mapping[str, Any]) -> Any:
    if isinstance(schema, AssistantSchema):
        return schema.model_dump()
    return dict(schema) if isinstance(schema, Mapping) else schema


def _oneline(value: object) -> str:
    return " ".join(str(value).split())
