"""Sub-assistant tool names: the one place that says how an assistant's tool is named.

Every callable assistant is offered to its callers as a tool ``sub_assistant__<name>``.
The graph builder, the tools node, the event stream, the CLI and the scripted models all
turn assistant names into tool names, and back, with these functions, so the rule lives
here alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant_graph._schema import AssistantSchema

__all__ = [
    "SUBGRAPH_TOOL_TAG",
    "SUB_ASSISTANT_PREFIX",
    "assistant_name_from_tool_name",
    "is_sub_assistant_tool_name",
    "tool_name_from_assistant",
    "tool_name_from_assistant_name",
]

SUB_ASSISTANT_PREFIX = "sub_assistant__"
"""Prefix of every sub-assistant tool name: ``sub_assistant__<assistant name>``."""

SUBGRAPH_TOOL_TAG = "assistant_subgraph"
"""Tag carried by every sub-assistant tool (and so by its callback runs)."""


def tool_name_from_assistant_name(assistant_name: str) -> str:
    """The tool name under which the assistant ``assistant_name`` can be called."""
    return f"{SUB_ASSISTANT_PREFIX}{assistant_name}"


def tool_name_from_assistant(assistant: AssistantSchema) -> str:
    """The tool name under which ``assistant`` can be called."""
    return tool_name_from_assistant_name(assistant.name)


def is_sub_assistant_tool_name(tool_name: str) -> bool:
    """Whether ``tool_name`` names a sub-assistant tool."""
    return tool_name.startswith(SUB_ASSISTANT_PREFIX) and len(tool_name) > len(SUB_ASSISTANT_PREFIX)


def assistant_name_from_tool_name(tool_name: str) -> str:
    """The assistant a sub-assistant tool name calls.

    Raises:
        ValueError: If ``tool_name`` is not a sub-assistant tool name.
    """
    if not is_sub_assistant_tool_name(tool_name):
        raise ValueError(
            f"{tool_name!r} is not a sub-assistant tool name ({SUB_ASSISTANT_PREFIX}*)"
        )
    return tool_name.removeprefix(SUB_ASSISTANT_PREFIX)
