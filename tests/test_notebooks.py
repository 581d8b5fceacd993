"""The example notebooks as a reader sees them: executed offline (as nbmake does), their
printed output read back. They show the question they ask, each step once, the usage of
the whole thread, pictures that differ, and they leave no file behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import REPO

NOTEBOOKS = REPO / "notebooks"
QUESTIONS = {
    "01_quickstart": "How wide are Mars and Earth, and how much wider is Earth?",
    "02_context_and_resume": "How long does sunlight take to reach Earth?",
    "03_streaming_and_human_in_the_loop": "Write a short note about the size of Mars.",
    "04_image_team": "A futuristic city at twilight, reflected in a calm bay.",
}
SHARED_IMAGE_FOLDER = "assistant-graph-images"
"""The image tools' default folder in the temporary directory, shared by every run."""


@dataclass(frozen=True)
class Executed:
    """What a notebook printed and displayed, and what it left in its temporary directory."""

    text: str
    pngs: list[str]
    left_in_tmp: list[str]


def _execute(name: str, tmp: Path) -> Executed:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)  # type: ignore[no-untyped-call]
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "ASSISTANT_GRAPH_"))
    }
    environment.update(TMPDIR=str(tmp), ASSISTANT_GRAPH_OFFLINE="1")
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
    )
    client.execute(env=environment)
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    return Executed(
        text="".join(_text(output) for output in outputs),
        pngs=[output["data"]["image/png"] for output in outputs if "image/png" in _data(output)],
        left_in_tmp=sorted(path.name for path in tmp.iterdir()),
    )


def _data(output: Any) -> dict[str, Any]:
    return dict(output.get("data") or {})


def _text(output: Any) -> str:
    return str(output.get("text", "")) if output.get("output_type") == "stream" else ""


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Executed]:
    return {name: _execute(name, tmp_path_factory.mktemp(name)) for name in QUESTIONS}


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_each_notebook_shows_the_question_it_asks(executed: dict[str, Executed], name: str) -> None:
    assert f"you: {QUESTIONS[name]}" in " ".join(executed[name].text.split())


def test_a_step_resumed_after_a_question_is_shown_once(executed: dict[str, Executed]) -> None:
    lines = executed["03_streaming_and_human_in_the_loop"].text.splitlines()

    start = "proxy > writer: starts: Write a two-sentence note on the size of Mars."
    assert lines.count(start) == 1
    assert "proxy > writer: continues with the answer" in lines


def test_the_usage_shown_is_the_whole_threads(executed: dict[str, Executed]) -> None:
    text = executed["03_streaming_and_human_in_the_loop"].text

    assert "completed after 3 runs; tokens over the whole thread:" in text
    for assistant in ("proxy", "researcher", "writer", "total"):
        assert f"\n  {assistant:<10} " in text


def test_the_offline_pictures_differ(executed: dict[str, Executed]) -> None:
    pngs = executed["04_image_team"].pngs

    assert len(pngs) == len(set(pngs)) == 3


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_no_notebook_leaves_files_in_the_temporary_directory(
    executed: dict[str, Executed], name: str
) -> None:
    assert SHARED_IMAGE_FOLDER not in executed[name].left_in_tmp
    assert not [e for e in executed[name].left_in_tmp if e.endswith(".png") or "image" in e]
