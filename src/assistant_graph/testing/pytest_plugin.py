"""Pytest fixtures of assistant-graph, registered as a pytest plugin on install."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from assistant_graph.testing._openai_server import ScriptedOpenAIServer


@pytest.fixture
def scripted_openai_server() -> Iterator[ScriptedOpenAIServer]:
    """A started :class:`ScriptedOpenAIServer` with no scripts, stopped after the test.

    Add scripts in the test with ``server.script(key, ...)``; point ``ChatOpenAI`` (or the
    ``OPENAI_BASE_URL`` environment variable) at ``server.url``.
    """
    with ScriptedOpenAIServer() as server:
        yield server
