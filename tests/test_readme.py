"""The README's offline examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

from assistant_graph import build_assistant_graph, load_assistants

from .conftest import EXAMPLE_ASSISTANTS

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of the README section with this heading."""
    text = README.read_text("utf-8")
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start : end if end > 0 else None], re.S)


def test_the_testing_example_runs_offline() -> None:
    [example] = python_blocks("Testing your assistants offline")
    namespace = {
        "catalog": load_assistants(EXAMPLE_ASSISTANTS),
        "build_assistant_graph": build_assistant_graph,
    }
    exec(compile(example, "README.md", "exec"), namespace)  # the example asserts its result
    assert namespace["graph"] is not None


def test_the_quick_start_commands_are_the_ones_ci_runs() -> None:
    text = README.read_text("utf-8")
    ci = (README.parent / ".ci" / "run").read_text("utf-8")
    assert "pip install -e '.[test]' && .venv/bin/pytest" in text
    assert "pip install --quiet -e '.[test]' && .venv/bin/pytest" in ci
    assert ".venv/bin/pip install -e . && .venv/bin/assistant-graph demo" in text
