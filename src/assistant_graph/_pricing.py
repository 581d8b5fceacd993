"""What a model call cost, in US dollars: a maintained price table, or the user's own price.

Prices come from pydantic's `genai-prices <https://pypi.org/project/genai-prices/>`_
package: a price table kept up to date by the pydantic team (and used by pydantic-ai and
Logfire), shipped with the package so nothing is fetched at run time, matched by provider
and model name (dated snapshots such as ``gpt-4o-mini-2024-07-18`` included), with
cached-input prices and price changes over time. A model it does not know has an unknown
cost (None), never a cost of 0. A private deployment gives its own price in the
assistant's ``model_settings``::

    model_settings:
      price: {input_per_million_tokens: 0.5, output_per_million_tokens: 1.5}

:class:`Pricer` prices one assistant's model calls; :func:`mark_cost` writes a call's cost
into its AI message (``response_metadata``), where usage tables read it back
(:func:`cost_of_message`), so a cost is computed once, where the call is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "COST_KEY",
    "PRICE_SETTING",
    "CallCost",
    "PriceOverride",
    "Pricer",
    "cost_of_message",
    "mark_cost",
    "split_price_setting",
]

PRICE_SETTING = "price"
"""The ``model_settings`` key of a price override (removed before the model is created)."""

COST_KEY = "assistant_graph_cost_usd"
"""``response_metadata`` key of an AI message's cost in US dollars (None: unknown price)."""

_PROVIDER_IDS = {
    "azure_openai": "azure",
    "google_genai": "google",
    "google_vertexai": "google",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "mistralai": "mistral",
    "together": "together",
    "fireworks": "fireworks",
}
"""LangChain provider names whose genai-prices provider id differs."""


class PriceOverride(BaseModel):
    """A model's price, for models the price table does not know (private deployments)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_million_tokens: float = Field(ge=0, description="USD per million input tokens.")
    """US dollars per million input (prompt) tokens."""
    output_per_million_tokens: float = Field(ge=0, description="USD per million output tokens.")
    """US dollars per million output (completion) tokens."""
    cached_input_per_million_tokens: float | None = Field(
        default=None, ge=0, description="USD per million cached input tokens (default: input)."
    )
    """US dollars per million input tokens read from the provider's cache (default: the
    input price)."""


def split_price_setting(
    settings: Mapping[str, Any],
) -> tuple[dict[str, Any], PriceOverride | None]:
    """``model_settings`` without the price override, and the override (validated)."""
    rest = {key: value for key, value in settings.items() if key != PRICE_SETTING}
    raw = settings.get(PRICE_SETTING)
    return rest, None if raw is None else PriceOverride.model_validate(raw)


@dataclass(frozen=True)
class CallCost:
    """The tokens of one model call, as the cost is computed from them."""

    input_tokens: int
    """Prompt tokens, cached ones included."""
    output_tokens: int
    """Completion tokens."""
    cached_input_tokens: int = 0
    """Prompt tokens read from the provider's cache."""

    @classmethod
    def of(cls, usage: Mapping[str, Any]) -> CallCost:
        """The tokens of an ``AIMessage.usage_metadata``."""
        details = usage.get("input_token_details") or {}
        return cls(
            int(usage.get("input_tokens") or 0),
            int(usage.get("output_tokens") or 0),
            int(details.get("cache_read") or 0),
        )


@dataclass(frozen=True)
class Pricer:
    """Prices the model calls of one assistant."""

    provider: str
    """The LangChain provider of the model (``openai``, ``anthropic``...)."""
    model: str
    """The model name, used when a response does not say which model answered."""
    override: PriceOverride | None = None
    """The assistant's own price, used instead of the table."""

    @classmethod
    def of(cls, spec: str, settings: Mapping[str, Any]) -> Pricer:
        """The pricer of a ``provider:model`` spec with its ``model_settings``."""
        provider, _, model = spec.partition(":")
        return cls(provider, model, split_price_setting(settings)[1])

    def cost(self, usage: Mapping[str, Any] | None, model_name: str | None = None) -> float | None:
        """The cost in US dollars of a call with ``usage`` (``usage_metadata``) made to
        ``model_name`` (default: :attr:`model`); None if the price is unknown."""
        if not usage:
            return None
        tokens = CallCost.of(usage)
        if self.override is not None:
            return _priced(tokens, self.override)
        return _table_cost(tokens, self.provider, model_name or self.model)


def _priced(tokens: CallCost, price: PriceOverride) -> float:
    cached_price = price.cached_input_per_million_tokens
    if cached_price is None:
        cached_price = price.input_per_million_tokens
    uncached = tokens.input_tokens - tokens.cached_input_tokens
    dollars = (
        uncached * price.input_per_million_tokens
        + tokens.cached_input_tokens * cached_price
        + tokens.output_tokens * price.output_per_million_tokens
    )
    return dollars / 1_000_000


def _table_cost(tokens: CallCost, provider: str, model: str) -> float | None:
    from genai_prices import Usage, calc_price  # imported when first needed: ~50 ms

    usage = Usage(
        input_tokens=tokens.input_tokens,
        output_tokens=tokens.output_tokens,
        cache_read_tokens=tokens.cached_input_tokens or None,
    )
    provider_id = _provider_id(provider)
    try:
        return float(calc_price(usage, model, provider_id=provider_id).total_price)
    except LookupError:
        return None


@lru_cache(maxsize=64)
def _provider_id(provider: str) -> str | None:
    """The genai-prices id of a LangChain provider, or None to match by model name alone
    (a provider the table does not list, e.g. a local server)."""
    from genai_prices.data_snapshot import get_snapshot

    provider_id = _PROVIDER_IDS.get(provider, provider)
    known = {listed.id for listed in get_snapshot().providers}
    return provider_id if provider_id in known else None


def mark_cost(response: BaseMessage, pricer: Pricer | None) -> float | None:
    """Write the cost of the model call that produced ``response`` into its metadata.

    Every AI message a model call returns is marked, with None when the price is
    unknown, so usage tables can tell a call of unknown cost from a message that was
    not a model call (a notice written by the graph). Returns the cost.
    """
    if not isinstance(response, AIMessage) or pricer is None:
        return None
    model_name = response.response_metadata.get("model_name")
    cost = pricer.cost(response.usage_metadata, model_name if isinstance(model_name, str) else None)
    response.response_metadata[COST_KEY] = cost
    return cost


def cost_of_message(message: AIMessage) -> tuple[bool, float | None]:
    """Whether ``message`` came from a model call, and its cost (None: unknown)."""
    if COST_KEY in message.response_metadata:
        value = message.response_metadata[COST_KEY]
        return True, None if value is None else float(value)
    return bool(message.usage_metadata), None
