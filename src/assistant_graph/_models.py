"""Resolving the chat model of an assistant: its schema's ``provider:model``, or an override."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel

from assistant_graph._errors import AssistantConfigError
from assistant_graph._pricing import Pricer, split_price_setting
from assistant_graph._schema import AssistantSchema

__all__ = ["ModelOverride", "needs_api_key", "resolve_chat_model"]

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


CANNOT_CREATE = "cannot create chat model {spec!r}: {reason}"
MISSING_API_KEY = (
    "OPENAI_API_KEY is not set (for a local OpenAI-compatible server, set OPENAI_BASE_URL "
    "and any OPENAI_API_KEY)"
)
NO_PROVIDER = "it names no provider; write it as provider:model, e.g. openai:gpt-4o-mini"
UNKNOWN_PROVIDER = (
    "unknown provider {provider!r}; write it as provider:model, e.g. openai:gpt-4o-mini "
    "(providers other than openai need their langchain package installed)"
)
_UNKNOWN_PROVIDER_ERRORS = ("Unable to infer model provider", "Unsupported model_provider")


def needs_api_key(error: BaseException) -> bool:
    """Whether creating a chat model failed because no OpenAI API key is set."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return "OpenAIError" in names and "OPENAI_API_KEY" in str(error)


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
    own_settings, _ = split_price_setting(schema.model_settings)
    settings = {**PROVIDER_DEFAULTS.get(spec.split(":", 1)[0], {}), **own_settings}
    try:
        chat_model: BaseChatModel = init_chat_model(spec, **settings)
    except Exception as error:
        reason = _reason(spec, error)
        raise AssistantConfigError.single(
            source, "model", CANNOT_CREATE.format(spec=spec, reason=reason)
        ) from error
    return chat_model


def _reason(spec: str, error: BaseException) -> str:
    """Why a chat model could not be created, in a line (not the provider's whole list)."""
    if needs_api_key(error):
        return MISSING_API_KEY
    text = str(error)
    if any(marker in text for marker in _UNKNOWN_PROVIDER_ERRORS):
        provider, colon, _ = spec.partition(":")
        return UNKNOWN_PROVIDER.format(provider=provider) if colon else NO_PROVIDER
    first_paragraph = text.strip().split("\n\n")[0]
    return " ".join(f"{type(error).__name__}: {first_paragraph}".split())


def pricer_for(schema: AssistantSchema, override: ModelOverride = None) -> Pricer:
    """Prices the model calls of ``schema``'s assistant: by the ``provider:model`` it runs
    on (a string override, else its own ``model``) and its ``model_settings.price``. A
    response naming the model that answered is priced by that name."""
    spec = override if isinstance(override, str) else schema.model
    return Pricer.of(spec, schema.model_settings)


def accepts_request_timeout(chat_model: BaseChatModel) -> bool:
    """Whether ``chat_model`` takes a per-request ``timeout`` (OpenAI-compatible clients):
    how a run's deadline bounds a single model call."""
    from langchain_openai import AzureChatOpenAI, ChatOpenAI

    return isinstance(chat_model, ChatOpenAI | AzureChatOpenAI)
