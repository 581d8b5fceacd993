"""``assistant-graph ui``: the local web page (:mod:`assistant_graph.ui`), served by uvicorn.

It listens on loopback unless told otherwise, and anywhere else only with an access token
(``--token`` or ``ASSISTANT_GRAPH_UI_TOKEN``). Its starlette and uvicorn come with the
optional extra ``ui``; without them the command says which extra to install.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant_graph._models import ModelOverride
from assistant_graph.cli._failures import CliFailure

__all__ = ["MISSING_EXTRA", "UiServeSettings", "serve_ui"]

MISSING_EXTRA = "the web page needs the optional extra 'ui': pip install 'assistant-graph[ui]'"
OPEN = "assistant-graph ui: open {url} (Ctrl-C stops it){demo}"
DEMO_NOTE = "; demo: the example team on scripted models, no model is called"
TOKEN_PLACEHOLDER = "?token=<your token>"


@dataclass(frozen=True)
class UiServeSettings:
    """What the command line says about the page."""

    assistants: Path
    """The assistants folder (not used with ``demo``)."""
    db: str | None = None
    """Where threads are kept."""
    model: ModelOverride = None
    """Replaces every assistant's model."""
    host: str = "127.0.0.1"
    """The address to listen on."""
    port: int = 8765
    """The port."""
    token: str | None = None
    """The access token (needed beyond loopback)."""
    demo: bool = False
    """Serve the example team on scripted models."""
    keep_history: bool = False
    """Keep every checkpoint."""


def serve_ui(settings: UiServeSettings) -> None:
    """Build the app and serve it until stopped.

    Raises:
        CliFailure: The ``ui`` extra is missing, or the address needs a token.
        AssistantConfigError: The assistants folder is missing or invalid.
    """
    try:
        import uvicorn

        from assistant_graph.ui import check_exposure, create_app
    except ImportError:
        raise CliFailure(MISSING_EXTRA) from None
    try:
        check_exposure(settings.host, settings.token)
        app = create_app(
            settings.assistants,
            db=settings.db,
            model=settings.model,
            token=settings.token,
            demo=settings.demo,
            keep_history=settings.keep_history,
        )
    except ValueError as error:
        raise CliFailure(str(error)) from None
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host}:{settings.port}/" + (TOKEN_PLACEHOLDER if settings.token else "")
    print(OPEN.format(url=url, demo=DEMO_NOTE if settings.demo else ""), flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
