"""Where the example team lives: inside the package, so ``demo`` runs from any directory.

The assistants of the README, the demo, the notebooks and ``langgraph.json`` are package
data of :mod:`assistant_graph.examples` (``examples/assistants/``); the repository's
``assistants/`` folder is a link to that one folder, so there is a single copy.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["EXAMPLE_ASSISTANTS", "example_assistants"]

EXAMPLE_ASSISTANTS = Path(__file__).resolve().parent / "examples" / "assistants"
"""The example team's folder (proxy, researcher, calculator, writer; ``image_team/``)."""

NOT_INSTALLED = "the example assistants {folder} are missing from this installation"


def example_assistants(team: str = "") -> Path:
    """The example team's folder, or the folder of another team inside it (``image_team``).

    Raises:
        FileNotFoundError: If the folder is missing (a broken installation).
    """
    folder = EXAMPLE_ASSISTANTS / team
    if not folder.is_dir():
        raise FileNotFoundError(NOT_INSTALLED.format(folder=folder))
    return folder
