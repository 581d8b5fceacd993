"""Resolving the chat model of an assistant: its schema's ``provider:model``, or an override."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel

from assistant_graph._errors import AssistantConfigError
from assistant_graph._schema import AssistantSchema

__all__ = ["ModelOverride", "resolve_chat_model"]

ModelOverride: TypeAlias = BaseChatModel | str | Callable[[AssistantSchema], BaseChatModel] | None
"""What ``model=`` accepts: a chat model for every assistant, a ``provider:model`` string
for every assistant, a function of the schema (e.g. to script each assistant separately in
tests), or None to use each schema's own ``model``."""


PROVIDER_DEFAULTS: dict[str, dict[str, Any]] = {
    "openai": {"max_retries": 0, "stream_usage": True},
    "azure_openai": {"max_retries": 0, "stream_usage": True},
}
"""Settings given to chat models of these providers unless ``model_settings`` says
otherwise. Client-side retries are off: assistant-graph retries transient failures itself
(see ``model_calls``), visibly. Streamed usage is requested from every OpenAI-compatible
server (langchain-openai asks only api.openai.com by default), so token usage is counted
on local servers too."""


def resolve_chat_model(
    schema: AssistantSchema, override: ModelOverride = None, *, source: str = "<schema>"
) -> BaseChatModel:
    """The chat model ``schema`` runs on.

    Args:
        schema: The assistant.
        override: Replaces the schema's model (see :data:`ModelOverride`).
        source: Where the schema came from, for error messages.

    Raises:
        AssistantConfigError: If the model cannot be created (unknown provider, missing
            integration package, missing API key), naming the file and the ``model`` field.
    """
    if isinstance(override, BaseChatModel):
        return override
    if override is not None and not isinstance(override, str):
        model = override(schema)
        if not isinstance(model, BaseChatModel):
            raise TypeError(
                f"the model override returned {type(model).__name__}, not a chat model, "
                f"for assistant {schema.name!r}"
            )
        return model
    spec = override or schema.model
    settings = {**PROVIDER_DEFAULTS.get(spec.split(":", 1)[0], {}), **schema.model_settings}
    try:
        chat_model: BaseChatModel = init_chat_model(spec, **settings)
    except Exception as error:
        raise AssistantConfigError.single(
            source, "model", f"cannot create chat model {spec!r}: {_oneline(error)}"
        ) from error
    return chat_model


def _oneline(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())
