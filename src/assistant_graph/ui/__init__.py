"""A local web page to watch and steer assistants: ``create_app`` (``assistant-graph ui``).

The page lists the threads of a thread store (the CLI's), draws each turn as a live
delegation tree (every sub-assistant call with its input, uid, tokens, cost, tool calls
and results) and a timeline, lets the person answer questions and approvals, several at
once, and continue a failed run. Runs happen in this process; the page follows them over
server-sent events carrying the events of ``assistant-graph run --json``.

It is an ASGI app (Starlette; the optional extra ``ui``), so it can also be mounted in an
application of your own.

Example:
    ```python
    import uvicorn

    from assistant_graph.ui import create_app

    app = create_app("assistants", db="threads.sqlite")
    uvicorn.run(app, host="127.0.0.1", port=8765)
    ```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from assistant_graph._catalog import DEFAULT_ASSISTANTS_FOLDER, AssistantCatalog, load_assistants
from assistant_graph._model_calls import RetryPolicy
from assistant_graph._models import ModelOverride
from assistant_graph._persistence import MEMORY
from assistant_graph.ui._app import build_app
from assistant_graph.ui._demo import DEMO_RETRY, DEMO_SUGGESTIONS, demo_catalog, demo_models
from assistant_graph.ui._runs import Runs, UiSettings
from assistant_graph.ui._security import TOKEN_ENV, Guard, check_exposure

__all__ = ["TOKEN_ENV", "check_exposure", "create_app"]


def create_app(
    assistants: AssistantCatalog | str | Path | None = None,
    *,
    db: str | Path | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    model: ModelOverride = None,
    token: str | None = None,
    demo: bool = False,
    keep_history: bool = False,
    retry: RetryPolicy | None = None,
) -> Guard:
    """The web app (ASGI) that shows and runs ``assistants``.

    Args:
        assistants: An assistants folder (default ``assistants``) or a loaded catalog.
        db: Where threads are kept, as the CLI's ``--db``: a SQLite file (default: the
            CLI's per-user file), ``sqlite:///PATH``, a ``postgresql://`` URL, or
            ``:memory:``. Opened on first use and closed when the app shuts down.
        checkpointer: An open async checkpointer (from
            :func:`~assistant_graph.aopen_checkpointer`) to use instead of ``db``; you
            close it. Give one when the app is mounted in another app, whose lifespan
            does not reach this one.
        model: Replaces every assistant's model (a ``provider:model`` string, a chat
            model, or a function of the schema), as ``--model`` does.
        token: An access token every request must carry (needed to listen beyond
            loopback; see :func:`check_exposure`). Without one only requests addressed
            to a loopback name (``localhost``, ``127.0.0.1``) are served.
        demo: Serve the example team on scripted models (no model is called): the
            ``ui --demo`` page. ``assistants`` and ``model`` are then not used, and
            ``db`` defaults to ``:memory:``.
        keep_history: Keep every checkpoint instead of compacting finished threads.
        retry: How transient model failures are retried (default: as
            :func:`~assistant_graph.build_assistant_graph` does; the demo retries once).

    Raises:
        AssistantConfigError: The assistants folder is missing or invalid.
    """
    if demo:
        catalog, model = demo_catalog(), demo_models()
        db = MEMORY if db is None and checkpointer is None else db
    elif isinstance(assistants, AssistantCatalog):
        catalog = assistants
    else:
        catalog = load_assistants(assistants or DEFAULT_ASSISTANTS_FOLDER)
    settings = UiSettings(
        catalog,
        db=None if db is None else str(db),
        checkpointer=checkpointer,
        model=model,
        keep_history=keep_history,
        retry=DEMO_RETRY if demo and retry is None else retry,
    )
    options = {"demo": demo, "suggestions": list(DEMO_SUGGESTIONS) if demo else []}
    return build_app(Runs(settings), token, options)
