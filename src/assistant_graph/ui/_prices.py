"""What model calls cost: a price per million tokens for each model, read from a file.

The page shows a cost next to the tokens of every assistant call when the model of that
assistant has a price. Prices change and differ between accounts, so none is built in:
``ui --prices FILE`` reads them from YAML or JSON such as::

    openai:gpt-4o-mini: {input: 0.15, output: 0.60}
    openai:gpt-4o: {input: 2.50, output: 10.00}

Keys are models as the assistants' ``model:`` (or ``--model``) names them; values are US
dollars per million input (prompt) and output (completion) tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant_graph._catalog import AssistantCatalog

__all__ = ["Price", "model_prices", "read_prices"]

BAD_PRICES = "{file}: {problems}"
UNREADABLE = "cannot read the prices file {file}: {error}"
NOT_A_MAPPING = "{file}: expected a mapping of model names to {{input: ..., output: ...}}"


class Price(BaseModel):
    """A model's price in US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0, description="USD per million input (prompt) tokens.")
    """USD per million input (prompt) tokens."""
    output: float = Field(ge=0, description="USD per million output (completion) tokens.")
    """USD per million output (completion) tokens."""


def read_prices(path: str | Path) -> dict[str, Price]:
    """The prices in a YAML or JSON file (see the module doc).

    Raises:
        ValueError: The file cannot be read or is not a mapping of models to prices;
            the message names the file and the field.
    """
    try:
        data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(UNREADABLE.format(file=path, error=" ".join(str(error).split()))) from None
    if not isinstance(data, Mapping):
        raise ValueError(NOT_A_MAPPING.format(file=path))
    prices: dict[str, Price] = {}
    problems: list[str] = []
    for model, value in data.items():
        try:
            prices[str(model)] = Price.model_validate(value)
        except ValidationError as error:
            problems.extend(
                f"{'.'.join([str(model), *map(str, item['loc'])])}: {item['msg']}"
                for item in error.errors(include_url=False)
            )
    if problems:
        raise ValueError(BAD_PRICES.format(file=path, problems="; ".join(problems)))
    return prices


def model_prices(
    catalog: AssistantCatalog, prices: Mapping[str, Price], override: Any = None
) -> dict[str, dict[str, float]]:
    """The price of each assistant's model, for the page: ``{assistant: {input, output}}``.

    A ``--model`` string replaces every assistant's model; any other override (scripted
    models, a model object) leaves the model names of the YAML files in charge.
    """
    table: dict[str, dict[str, float]] = {}
    for name in catalog:
        model = override if isinstance(override, str) else catalog[name].model
        price = prices.get(str(model)) if model else None
        if price is not None:
            table[name] = price.model_dump()
    return table
