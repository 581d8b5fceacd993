"""Before a run: every chat model it needs is created, so nothing is written for a run
that cannot start.

Compiling a graph creates the models of every assistant it can reach; a missing API key
or a bad ``--model`` would only surface then, after the thread store was opened (and a
SQLite file made). :func:`prepare_models` creates them first, root first, and turns a
failure into an error that names the assistant that was run, the file (or option) that
holds the problem, and how to fix it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from langchain_core.language_models import BaseChatModel

from assistant_graph._catalog import AssistantCatalog
from assistant_graph._errors import AssistantConfigError
from assistant_graph._models import ModelOverride, needs_api_key, resolve_chat_model
from assistant_graph._schema import AssistantSchema
from assistant_graph.cli._failures import CliFailure, Note
from assistant_graph.cli._hints import MODEL_ENV

__all__ = ["prepare_models"]

CANNOT_RUN = "cannot run {name}: {problem}"
SUB_ASSISTANT = "its sub-assistant {assistant} ({problem})"
OVERRIDE = "{option} {spec!r}: {message}"
KEY_FIX = (
    Note("to fix it, do one of these:"),
    Note("  export OPENAI_API_KEY=sk-...        # use OpenAI"),
    Note("  export OPENAI_BASE_URL=http://localhost:11434/v1 OPENAI_API_KEY=anything"),
    Note("                                      # or a local OpenAI-compatible server (Ollama,"),
    Note("                                      # vLLM, llama.cpp, LM Studio); add --model"),
    Note("                                      # openai:NAME, see 'Using a local model server'"),
    Note("                                      # in the README"),
    Note("  assistant-graph demo                # or try the example team without a key"),
    Note("  assistant-graph chat proxy --demo   # (scripted: no model is called)"),
)
MODEL_FIX = (
    Note("to fix it, give the model as provider:model, e.g. --model openai:gpt-4o-mini,"),
    Note("or try the example team without a model: assistant-graph chat proxy --demo"),
)


def prepare_models(catalog: AssistantCatalog, name: str, override: ModelOverride) -> ModelOverride:
    """The models of ``name`` and every assistant it can reach, created now.

    Returns an override for ``build_assistant_graph`` that hands out the models made
    here (or ``override`` itself if it is already a model or a function of the schema).

    Raises:
        CliFailure: A model cannot be created (no API key, unknown provider, missing
            integration package), naming ``name``, the file or option and the fix.
    """
    if override is not None and not isinstance(override, str):
        return override
    models: dict[str, BaseChatModel] = {}
    for assistant in catalog.reachable_from(name):
        source = catalog.source_of(assistant)
        try:
            models[assistant] = resolve_chat_model(catalog[assistant], override, source=source)
        except AssistantConfigError as error:
            raise _failure(name, assistant, override, error) from error
    return _handing_out(models)


def _handing_out(models: dict[str, BaseChatModel]) -> Callable[[AssistantSchema], BaseChatModel]:
    def model_of(schema: AssistantSchema) -> BaseChatModel:
        return models[schema.name]

    return model_of


def _failure(
    name: str, assistant: str, override: str | None, error: AssistantConfigError
) -> CliFailure:
    problem = error.problems[0]
    if override is not None:
        option = MODEL_ENV if os.environ.get(MODEL_ENV) == override else "--model"
        text = OVERRIDE.format(option=option, spec=override, message=problem.message)
    elif assistant != name:
        text = SUB_ASSISTANT.format(assistant=assistant, problem=problem.headline)
    else:
        text = problem.headline
    fix: tuple[Note, ...] = MODEL_FIX if override is not None else ()
    if needs_api_key(error.__cause__ or error):
        fix = KEY_FIX
    return CliFailure([CANNOT_RUN.format(name=name, problem=text), *fix])
