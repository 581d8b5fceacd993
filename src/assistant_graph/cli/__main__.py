"""``python -m assistant_graph.cli``: the same as the ``assistant-graph`` command."""

from assistant_graph.cli._app import main

main()
