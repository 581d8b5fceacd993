"""The public API is explicit: one import gives every factory and every error."""

from __future__ import annotations

import inspect
import pkgutil

import assistant_graph
import assistant_graph._errors
import assistant_graph.testing


def _isort_key(name: str) -> tuple[int, str]:
    """Constants first, then classes, then functions (the order ruff keeps ``__all__`` in)."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_all_is_sorted_and_every_name_exists() -> None:
    for module in (assistant_graph, assistant_graph.testing):
        assert module.__all__ == sorted(module.__all__, key=_isort_key)
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == []


def test_every_public_error_is_exported_and_shares_one_root() -> None:
    errors = {
        name
        for name, value in vars(assistant_graph._errors).items()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == "assistant_graph._errors"
    }
    assert errors <= set(assistant_graph.__all__)
    for name in errors:
        assert issubclass(getattr(assistant_graph, name), assistant_graph.AssistantGraphError)


def test_the_main_entry_points_are_exported() -> None:
    for name in (
        "load_assistants",
        "build_assistant_graph",
        "create_sub_assistant_tool",
        "AssistantSchema",
        "AssistantSubgraphArgs",
        "AssistantSubgraphArtifact",
        "AssistantSubgraphCallTool",
        "tool_name_from_assistant_name",
        "assistant_name_from_tool_name",
    ):
        assert name in assistant_graph.__all__


def test_public_functions_have_docstrings() -> None:
    undocumented = [
        name
        for name in assistant_graph.__all__
        if callable(getattr(assistant_graph, name))
        and not inspect.getdoc(getattr(assistant_graph, name))
    ]
    assert undocumented == []


PUBLIC_MODULES = {"events", "testing", "studio", "examples", "cli", "mcp_server", "ui"}
"""Modules users import by name: event classes, testing support, LangGraph Server graphs
(``langgraph.json``), the offline examples (notebooks), the command line, serving
assistants as MCP tools, and the web page (an ASGI app to mount)."""


def test_every_other_module_is_marked_internal() -> None:
    modules = {info.name for info in pkgutil.iter_modules(assistant_graph.__path__)}
    assert {name for name in modules if not name.startswith("_")} == PUBLIC_MODULES


def test_the_top_level_api_is_small() -> None:
    # 26 after the restructure; each name since was added on purpose (ThreadBusyError,
    # aopen_checkpointer, acompact_thread, Budget, store_messages_once). Raise it the same way.
    assert len(assistant_graph.__all__) <= 31
