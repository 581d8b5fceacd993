"""The ``assistant-graph`` command line: run, chat, list, validate, graph and demo.

``main`` is the console script; ``app`` is the typer application (for ``CliRunner``).
"""

from assistant_graph.cli._app import app, main

__all__ = ["app", "main"]
