"""The assistants as graphs for LangGraph Server and LangGraph Studio (``langgraph dev``).

``langgraph.json`` names graphs by import string; this module provides them:

* one graph per assistant of the assistants folder, under the assistant's own name
  (``"proxy": "assistant_graph.studio:proxy"``), registered when the module is imported;
* :func:`make_graph`, one generic graph whose assistant is chosen per run by
  ``configurable.assistant_name``: in Studio, create a LangGraph *assistant* of this graph
  with that configuration for each of ours.

Every graph is a factory taking the run's ``RunnableConfig`` (LangGraph Server calls it
for each run and each read of a thread). It compiles the graph WITHOUT a checkpointer,
because the server supplies persistence, and in a worker thread, because ``langgraph
dev`` forbids blocking calls in its event loop. Compiled graphs are cached until a YAML
file of the assistants folder changes.

Models come from each schema, so ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` in the
server's environment steer them. Imported by LangGraph Server (``LANGSERVE_GRAPHS`` set),
this module compiles the generic graph's default assistant once (:func:`warm_up`), so
that the server's first load of it is quick: LangGraph Server logs a graph load over
250 ms as an error, and the first compile imports the model client and loads TLS
certificates (about a second). Without ``OPENAI_API_KEY`` that compile fails quietly,
the server still starts, and a run then fails with an
:class:`~assistant_graph._errors.AssistantConfigError` that names the missing key.

Environment:
    ASSISTANT_GRAPH_ASSISTANTS: The assistants folder (default: ``assistants/`` of the
        repository checkout this package is installed from, else ``./assistants``).
    ASSISTANT_GRAPH_MODEL: A ``provider:model`` that replaces every assistant's model.
    ASSISTANT_GRAPH_THREAD_LOCKS: A PostgreSQL URL (``postgresql://...``; usually the
        server's own database). Set, every run holds its thread by an advisory lock there
        (the thread guard of :mod:`assistant_graph._thread_guard`, policy ``reject``), so
        that a second run on a busy thread fails at once with
        :class:`~assistant_graph.ThreadBusyError` before it reads or writes the thread:
        for servers that do not apply ``multitask_strategy`` themselves (Aegra 0.11).

Per run (``configurable``):
    assistant_name: The assistant the generic graph runs (default: the first assistant,
        by name, that no other may call, i.e. a root such as ``proxy``).
    model: A ``provider:model`` that replaces every assistant's model in this run.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from assistant_graph._catalog import (
    DEFAULT_ASSISTANTS_FOLDER,
    YAML_SUFFIXES,
    AssistantCatalog,
    load_assistants,
)
from assistant_graph._errors import AssistantConfigError, MissingConfigError
from assistant_graph._graph import build_assistant_graph

__all__ = [
    "ASSISTANTS_FOLDER_ENV",
    "ASSISTANT_NAME_KEY",
    "GRAPH_NAMES",
    "MODEL_ENV",
    "MODEL_KEY",
    "THREAD_LOCKS_ENV",
    "GraphFactory",
    "assistants_folder",
    "build_studio_graph",
    "graph_factory",
    "make_graph",
    "thread_locks_url",
    "warm_up",
]

ASSISTANTS_FOLDER_ENV = "ASSISTANT_GRAPH_ASSISTANTS"
"""Environment variable naming the assistants folder."""
MODEL_ENV = "ASSISTANT_GRAPH_MODEL"
"""Environment variable with a ``provider:model`` that replaces every assistant's model."""
THREAD_LOCKS_ENV = "ASSISTANT_GRAPH_THREAD_LOCKS"
"""Environment variable with the PostgreSQL URL whose advisory locks guard served threads."""
LOCKS_URL_SCHEMES = ("postgresql", "postgres")
BAD_LOCKS_URL = (
    "{variable} must be a PostgreSQL URL, postgresql://USER:PASSWORD@HOST:PORT/DATABASE, "
    "not one of scheme {scheme!r}"
)
ASSISTANT_NAME_KEY = "assistant_name"
"""The ``configurable`` key that picks the assistant of the generic graph."""
MODEL_KEY = "model"
"""The ``configurable`` key with a ``provider:model`` that replaces every model in a run."""
SERVER_ENV = "LANGSERVE_GRAPHS"
"""Set by LangGraph Server (and ``langgraph dev``) to the graphs it serves."""

NAME_CLASH = (
    "assistant {name!r} cannot be served as assistant_graph.studio:{name}, a name this "
    "module already uses; rename the assistant or serve it through the generic graph "
    "(assistant_graph.studio:make_graph with configurable.assistant_name)"
)

CompiledGraph: TypeAlias = CompiledStateGraph[Any, Any, Any, Any]
GraphFactory: TypeAlias = Callable[[RunnableConfig], Awaitable[CompiledGraph]]
"""What ``langgraph.json`` points at: an async function of the run config returning a graph."""

_REPOSITORY = Path(__file__).resolve().parents[2]


def assistants_folder() -> Path:
    """The assistants folder the served graphs are loaded from.

    ``$ASSISTANT_GRAPH_ASSISTANTS`` if set (relative to the working directory), else the
    ``assistants/`` folder of the repository checkout this package is installed from
    (editable installs, ``langgraph build`` images), else ``./assistants``.
    """
    configured = os.environ.get(ASSISTANTS_FOLDER_ENV)
    if configured:
        return Path(configured).resolve()
    checkout = _REPOSITORY / DEFAULT_ASSISTANTS_FOLDER
    if checkout.is_dir() and (_REPOSITORY / "pyproject.toml").is_file():
        return checkout
    return Path(DEFAULT_ASSISTANTS_FOLDER).resolve()


def build_studio_graph(
    name: str | None = None,
    config: RunnableConfig | None = None,
    *,
    folder: str | Path | None = None,
) -> CompiledGraph:
    """Compile an assistant of the folder for LangGraph Server: no checkpointer, cached.

    Args:
        name: The assistant; None takes ``configurable.assistant_name`` of ``config``, or
            else the default root assistant of the folder.
        config: The run config; its ``configurable.model`` replaces every model.
        folder: The assistants folder (default: :func:`assistants_folder`).

    Raises:
        AssistantConfigError: If the folder is invalid or a model cannot be created (for
            instance ``OPENAI_API_KEY`` is not set).
        MissingConfigError: If the folder has no assistant of that name.
        ValueError: If ``$ASSISTANT_GRAPH_THREAD_LOCKS`` is not a PostgreSQL URL.

    Example:
        >>> graph = build_studio_graph("proxy")  # doctest: +SKIP
        >>> graph.checkpointer is None  # doctest: +SKIP
        True
    """
    path = Path(folder).resolve() if folder is not None else assistants_folder()
    configurable = (config or {}).get("configurable") or {}
    model = configurable.get(MODEL_KEY) or os.environ.get(MODEL_ENV) or None
    chosen = name or configurable.get(ASSISTANT_NAME_KEY) or None
    return _compiled(str(path), chosen, model, thread_locks_url(), _fingerprint(path))


def graph_factory(name: str | None = None, *, folder: str | Path | None = None) -> GraphFactory:
    """A graph factory for ``langgraph.json``: assistant ``name`` (None: chosen per run).

    Example:
        >>> image_team = graph_factory("user_proxy", folder="assistants/image_team")
    """

    async def graph(config: RunnableConfig) -> CompiledGraph:
        return await asyncio.to_thread(build_studio_graph, name, config, folder=folder)

    graph.__name__ = graph.__qualname__ = name or "make_graph"
    graph.__doc__ = (
        f"The graph of assistant {name!r}, for LangGraph Server."
        if name
        else "The graph of the assistant named by configurable.assistant_name."
    )
    return graph


make_graph: GraphFactory = graph_factory()
"""The generic graph: runs the assistant named by ``configurable.assistant_name``."""


def thread_locks_url() -> str | None:
    """``$ASSISTANT_GRAPH_THREAD_LOCKS``: where served runs lock their threads (None: unset).

    Raises:
        ValueError: If it is set to something other than a PostgreSQL URL (the message
            names the variable and the scheme, never the URL, which may hold a password).
    """
    url = os.environ.get(THREAD_LOCKS_ENV) or None
    if url is not None and urlsplit(url).scheme not in LOCKS_URL_SCHEMES:
        scheme = urlsplit(url).scheme if "://" in url else ""
        raise ValueError(BAD_LOCKS_URL.format(variable=THREAD_LOCKS_ENV, scheme=scheme))
    return url


@functools.lru_cache(maxsize=32)
def _compiled(
    folder: str,
    name: str | None,
    model: str | None,
    thread_locks: str | None,
    fingerprint: tuple[Any, ...],
) -> CompiledGraph:
    """Compile once per folder content, assistant, model and lock database
    (``fingerprint`` keys the cache)."""
    catalog = load_assistants(folder)
    root = name or _default_root(catalog)
    return build_assistant_graph(root, catalog, model=model, thread_locks=thread_locks)


def _default_root(catalog: AssistantCatalog) -> str:
    """The first assistant by name that no other may call, else the first by name."""
    names = sorted(catalog)
    roots = [name for name in names if not catalog[name].callable]
    return (roots or names)[0]


def _fingerprint(folder: Path) -> tuple[Any, ...]:
    """Names, sizes and modification times of the folder's YAML files, so that an edited
    assistant is compiled again at its next run. (``tools.py`` is imported once per
    process; ``langgraph dev`` restarts by itself when it changes.)"""
    if not folder.is_dir():
        return ()
    files = sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def _register_named_graphs(namespace: dict[str, Any]) -> tuple[str, ...]:
    """Put a graph factory for every assistant of the folder into this module's namespace.

    An absent folder registers nothing (the generic graph then explains what is missing);
    an invalid one raises, so that ``langgraph dev`` stops at start with every problem.
    """
    folder = assistants_folder()
    if not folder.is_dir():
        return ()
    catalog = load_assistants(folder)
    for name in catalog:
        if name in namespace:
            raise AssistantConfigError.single(
                catalog.source_of(name), "name", NAME_CLASH.format(name=name)
            )
        namespace[name] = graph_factory(name, folder=folder)
    return tuple(catalog)


def warm_up() -> bool:
    """Compile the generic graph's default assistant now, if it can be; returns whether
    it was (it cannot without a valid folder or the models' API key)."""
    folder = assistants_folder()
    if not folder.is_dir():
        return False
    try:
        build_studio_graph(None)
    except (AssistantConfigError, MissingConfigError):
        return False
    return True


GRAPH_NAMES: tuple[str, ...] = _register_named_graphs(globals())
"""The assistants served under their own name, e.g. ``("calculator", "proxy", ...)``."""
if os.environ.get(SERVER_ENV):  # only a server pays for it, not every import
    warm_up()
