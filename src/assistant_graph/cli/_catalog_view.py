"""Static views of a catalog: the ``list`` table and the ``graph`` Mermaid flowchart."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from assistant_graph._catalog import AssistantCatalog
from assistant_graph._human import ASK_USER_TOOL_NAME
from assistant_graph._names import tool_name_from_assistant_name

__all__ = ["AssistantRow", "assistant_rows", "assistants_table", "mermaid_flowchart", "plain_list"]

NONE = "-"
CALLABLE = "callable"
LIST_COLUMNS = ("assistant", "callable", "tools", "sub-assistants", "description")
MERMAID_HEADER = "flowchart TD"
MERMAID_INDENT = "    "
NEEDS_APPROVAL = "needs approval"
TOOL_CLASS = "classDef tool fill:#eef,stroke:#88a,stroke-dasharray: 3 3"
ROOT_CLASS = "classDef root stroke-width:3px"


@dataclass(frozen=True)
class AssistantRow:
    """What ``list`` shows about one assistant."""

    name: str
    """The assistant's name."""
    description: str
    """What it does."""
    callable: bool
    """Whether other assistants may call it."""
    tools: tuple[str, ...]
    """Its tool names, as the model sees them (``ask_user`` included when enabled)."""
    sub_assistants: tuple[str, ...]
    """The assistants it may call."""


def assistant_rows(catalog: AssistantCatalog) -> list[AssistantRow]:
    """One row per assistant, sorted by name."""
    return [
        AssistantRow(
            name=name,
            description=" ".join(catalog[name].description.split()),
            callable=catalog[name].callable,
            tools=_tool_names(catalog, name),
            sub_assistants=tuple(catalog[name].sub_assistants),
        )
        for name in sorted(catalog)
    ]


def assistants_table(rows: list[AssistantRow]) -> Table:
    """The rows as a ``rich`` table, for a terminal."""
    table = Table(*LIST_COLUMNS, show_lines=False)
    for row in rows:
        table.add_row(
            row.name,
            "yes" if row.callable else "no",
            ", ".join(row.tools) or NONE,
            ", ".join(row.sub_assistants) or NONE,
            row.description,
        )
    return table


def plain_list(rows: list[AssistantRow]) -> list[str]:
    """The rows as plain lines: a name line, then indented details."""
    lines = []
    for row in rows:
        lines.append(f"{row.name}{f' ({CALLABLE})' if row.callable else ''}")
        lines.append(f"  {row.description}")
        lines.append(f"  tools: {', '.join(row.tools) or NONE}")
        lines.append(f"  sub-assistants: {', '.join(row.sub_assistants) or NONE}")
    return lines


def mermaid_flowchart(catalog: AssistantCatalog, name: str) -> str:
    """A Mermaid ``flowchart TD`` of ``name`` and everything it can reach.

    Assistants are boxes, sub-assistant calls are arrows between them, and each
    assistant's tools are leaf nodes (dashed); calls that need the person's approval
    are labelled.

    Raises:
        MissingConfigError: If the catalog has no assistant ``name``.
    """
    lines = [MERMAID_HEADER]
    for assistant in catalog.reachable_from(name):
        lines.append(f'{assistant}["{_label(assistant)}"]')
        lines.extend(_edges(catalog, assistant))
    lines.extend([TOOL_CLASS, ROOT_CLASS, f"class {name} root"])
    return "\n".join([lines[0], *(MERMAID_INDENT + line for line in lines[1:])]) + "\n"


def _edges(catalog: AssistantCatalog, assistant: str) -> list[str]:
    schema = catalog[assistant]
    approval = _needs_approval(catalog, assistant)
    edges = []
    for sub in schema.sub_assistants:
        label = f"|{NEEDS_APPROVAL}|" if tool_name_from_assistant_name(sub) in approval else ""
        edges.append(f"{assistant} -->{label} {sub}")
    for tool in _tool_names(catalog, assistant):
        node = f"{assistant}__tool__{_node_id(tool)}"
        label = f"|{NEEDS_APPROVAL}|" if tool in approval else ""
        edges.append(f'{assistant} -.->{label} {node}(["{_label(tool)}"]):::tool')
    return edges


def _needs_approval(catalog: AssistantCatalog, name: str) -> set[str]:
    """Tool names (as the model calls them) whose calls wait for the person's approval."""
    listed = set(catalog[name].require_approval)
    written = zip(catalog[name].tools, catalog.tools_for(name), strict=True)
    return listed | {tool.name for entry, tool in written if entry in listed}


def _tool_names(catalog: AssistantCatalog, name: str) -> tuple[str, ...]:
    names = tuple(tool.name for tool in catalog.tools_for(name))
    return (*names, ASK_USER_TOOL_NAME) if catalog[name].ask_user else names


def _node_id(text: str) -> str:
    return "".join(char if char.isalnum() or char == "_" else "_" for char in text)


def _label(text: str) -> str:
    return text.replace('"', "#quot;")
