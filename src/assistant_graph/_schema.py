"""`AssistantSchema`: what a user writes to describe one assistant (one YAML file each)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from assistant_graph._budget import DEFAULT_MAX_STEPS, Budget
from assistant_graph._names import SUB_ASSISTANT_PREFIX
from assistant_graph._pricing import PRICE_SETTING, PriceOverride
from assistant_graph._problems import one_line
from assistant_graph._typed_results import OutputStrategy, check_output_schema

__all__ = [
    "ASSISTANT_NAME_PATTERN",
    "JSON_SCHEMA_FILENAME",
    "MODEL_SPEC_PATTERN",
    "AssistantSchema",
    "assistant_json_schema",
    "write_json_schema",
]

ASSISTANT_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
"""Assistant names: lower-case letters, digits and underscores, starting with a letter."""

MODEL_SPEC_PATTERN = r"^[a-z][a-z0-9_-]*:\S+$"
"""Model strings as ``init_chat_model`` takes them: ``provider:model``."""

JSON_SCHEMA_FILENAME = "assistant.schema.json"
"""Name of the JSON Schema file written next to the assistant YAML files."""

MAX_STEPS_MOVED = (
    "assistant {name!r}: the top-level max_steps is deprecated; write it in the budget "
    "instead (budget: {{max_steps: {steps}}})"
)
MAX_STEPS_TWICE = (
    "max_steps is given both at the top level (deprecated) and in budget; keep only "
    "budget.max_steps"
)


class AssistantSchema(BaseModel):
    """One assistant: its instructions, model, tools and the assistants it may call.

    Example (``assistants/researcher.yaml``)::

        name: researcher
        description: Finds facts in the team's notes.
        instructions: You look things up and answer briefly.
        model: openai:gpt-4o-mini
        tools: [lookup_fact]
        sub_assistants: [calculator]
        callable: true
    """

    model_config = ConfigDict(extra="forbid", frozen=True, title="Assistant")

    name: str = Field(
        pattern=ASSISTANT_NAME_PATTERN,
        max_length=64 - len(SUB_ASSISTANT_PREFIX),
        description="Unique name of the assistant ([a-z][a-z0-9_]*).",
    )
    """Unique name; callers see it in the tool name ``sub_assistant__<name>``."""

    description: str = Field(
        min_length=1,
        description="What the assistant does; callers see it as the tool description.",
    )
    """What the assistant does and when to call it; the tool description callers see."""

    instructions: str = Field(min_length=1, description="The system prompt of the assistant.")
    """The system prompt."""

    model: str = Field(
        default="openai:gpt-4o-mini",
        description="Chat model as 'provider:model', as LangChain's init_chat_model takes it.",
        examples=["openai:gpt-4o-mini", "anthropic:claude-sonnet-4-5", "ollama:llama3.1"],
    )
    """Chat model as ``provider:model`` (e.g. ``openai:gpt-4o-mini``)."""

    model_settings: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Keyword arguments for the chat model, e.g. temperature; and 'price' "
            "({input_per_million_tokens, output_per_million_tokens, "
            "cached_input_per_million_tokens}, USD) for a model the price table does not know."
        ),
    )
    """Extra keyword arguments for the chat model (``temperature``, ``max_tokens``...), and
    ``price``: the model's price in USD per million tokens, for a model the price table does
    not know (see :mod:`assistant_graph._pricing`); it is not passed to the model."""

    tools: list[str] = Field(
        default_factory=list,
        description=(
            "Names of tools: a LangChain tool defined in tools.py in the assistants folder, "
            "an import string 'package.module:attribute', or the tools of an MCP server "
            "declared in mcp.json: 'mcp:<server>' (all of them) or 'mcp:<server>/<tool>'."
        ),
    )
    """Tool names: a tool in the folder's ``tools.py``, an import string ``pkg.mod:attr``,
    or MCP tools ``mcp:<server>`` / ``mcp:<server>/<tool>`` (servers in ``mcp.json``)."""

    sub_assistants: list[str] = Field(
        default_factory=list,
        description="Names of callable assistants this assistant may call.",
    )
    """Names of callable assistants this one may call, each as ``sub_assistant__<name>``."""

    callable: bool = Field(default=False, description="Whether other assistants may call this one.")
    """Whether other assistants may list this one in their ``sub_assistants``."""

    budget: Budget = Field(
        default_factory=lambda: Budget(max_steps=DEFAULT_MAX_STEPS),
        description=(
            "What one call of this assistant may spend: max_steps (model calls, default "
            f"{DEFAULT_MAX_STEPS}), max_tokens, max_cost_usd, max_seconds. A call never gets "
            "more than its caller has left; running out ends it incomplete and resumable."
        ),
    )
    """What one call of this assistant may spend (see :class:`~assistant_graph.Budget`);
    ``max_steps`` is always set (default 10)."""

    max_steps: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        deprecated="write budget: {max_steps: N} instead",
        description="Deprecated: write budget.max_steps instead.",
    )
    """Deprecated: the value moves to ``budget.max_steps`` (a ``FutureWarning`` says so)."""

    ask_user: bool = Field(
        default=False,
        description="Give the assistant the built-in ask_user tool to ask the person a question.",
    )
    """Whether the assistant may ask the person a question (built-in ``ask_user`` tool).
    Needs a checkpointer: the run pauses until the answer is given."""

    require_approval: list[str] = Field(
        default_factory=list,
        description=(
            f"Tools (from tools, or {SUB_ASSISTANT_PREFIX}<name>) that need the person's approval "
            "before each call runs."
        ),
    )
    """Tool names whose every call waits for the person's approval (needs a checkpointer)."""

    max_result_chars: int | None = Field(
        default=None,
        ge=100,
        description=(
            "Cap on the characters of this assistant's answer that go back into a caller's "
            "context; the full answer stays in the artifact."
        ),
    )
    """When called as a sub-assistant, at most this many characters of the answer go back
    to the caller's model; the full answer stays in the artifact."""

    summarize_after_tokens: int | None = Field(
        default=None,
        ge=200,
        description=(
            "When the messages not yet summarized exceed this many tokens, the assistant "
            "condenses the older ones into a summary with its own model before its next "
            "model call. The thread keeps every message. null never summarizes."
        ),
    )
    """Summarize older messages once the part of the conversation the model sees verbatim
    grows past this many tokens (see :mod:`assistant_graph._summary`); None never does."""

    summary_keep_messages: int = Field(
        default=6,
        ge=1,
        le=200,
        description=(
            "How many of the most recent messages are always passed to the model verbatim, "
            "never summarized."
        ),
    )
    """How many of the most recent messages a summary never covers (a few more are kept
    when needed so a tool call and its results stay together)."""

    output_schema: dict[str, Any] | str | None = Field(
        default=None,
        description=(
            "The shape of the final answer: an inline JSON Schema of an object, or an import "
            "string 'package.module:Model' of a pydantic model. The answer is produced with "
            "structured output, validated, and given to callers as JSON. null: a text answer."
        ),
        examples=[
            {"type": "object", "properties": {"km": {"type": "number"}}, "required": ["km"]},
            "my_package.results:PlanetFacts",
        ],
    )
    """The shape of the assistant's final answer (its typed result): an inline JSON Schema
    of an object, or ``package.module:Model`` naming a pydantic model; None answers in text.
    See :mod:`assistant_graph._typed_results`."""

    output_strategy: OutputStrategy = Field(
        default="auto",
        description=(
            "How the typed answer is produced: 'provider' (the model's native JSON-schema "
            "mode), 'tool' (a final_result tool call), or 'auto' (provider for "
            "OpenAI-compatible models without tools, tool otherwise). Needs output_schema."
        ),
    )
    """How the typed result is produced: the provider's JSON-schema mode, a ``final_result``
    tool call, or ``auto`` (provider on OpenAI-compatible chat models when the assistant
    has no tools, tool otherwise; see :mod:`assistant_graph._typed_results`)."""

    @model_validator(mode="before")
    @classmethod
    def _budget_has_the_steps(cls, data: Any) -> Any:
        """Move a deprecated top-level ``max_steps`` into ``budget``; default the steps."""
        if not isinstance(data, dict):
            return data
        raw_budget = data.get("budget")
        if isinstance(raw_budget, Budget):
            raw_budget = raw_budget.model_dump(exclude_none=True)
        if raw_budget is not None and not isinstance(raw_budget, dict):
            return data  # pydantic names the type error
        budget = dict(raw_budget or {})
        legacy = data.get("max_steps")
        if _is_step_count(legacy):
            if budget.get("max_steps") is not None:
                raise ValueError(MAX_STEPS_TWICE)
            warnings.warn(
                MAX_STEPS_MOVED.format(name=data.get("name"), steps=legacy),
                FutureWarning,
                stacklevel=2,
            )
            budget["max_steps"] = legacy
        if budget.get("max_steps") is None:
            budget["max_steps"] = DEFAULT_MAX_STEPS
        return {**data, "budget": budget}

    @field_validator("model")
    @classmethod
    def _model_is_provider_and_name(cls, value: str) -> str:
        if not re.match(MODEL_SPEC_PATTERN, value):
            raise ValueError(
                f"model {value!r} is not of the form 'provider:model' (e.g. 'openai:gpt-4o-mini')"
            )
        return value

    @field_validator("tools", "sub_assistants", "require_approval")
    @classmethod
    def _no_repeats(cls, values: list[str]) -> list[str]:
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(repeated)}")
        return values

    @field_validator("output_schema", mode="before")
    @classmethod
    def _output_schema_is_usable(cls, value: Any) -> Any:
        return check_output_schema(value)

    @field_validator("output_strategy")
    @classmethod
    def _strategy_needs_a_schema(cls, value: str, info: ValidationInfo) -> str:
        if value != "auto" and info.data.get("output_schema", ...) is None:
            raise ValueError(f"output_strategy {value!r} has no effect without output_schema")
        return value

    @field_validator("model_settings")
    @classmethod
    def _price_is_valid(cls, settings: dict[str, Any]) -> dict[str, Any]:
        if settings.get(PRICE_SETTING) is None:
            return settings
        try:
            PriceOverride.model_validate(settings[PRICE_SETTING])
        except ValidationError as error:
            problems = one_line(error, whole=PRICE_SETTING)
            raise ValueError(f"{PRICE_SETTING} is not valid: {problems}") from None
        return settings

    @property
    def max_model_calls(self) -> int:
        """Model calls one call of this assistant may make (``budget.max_steps``)."""
        return self.budget.max_steps or DEFAULT_MAX_STEPS

    @property
    def provider(self) -> str:
        """The provider part of :attr:`model` (e.g. ``openai``)."""
        return self.model.split(":", 1)[0]


def _is_step_count(value: Any) -> bool:
    """Whether a deprecated top-level ``max_steps`` is valid, so it can move into the
    budget (an invalid one stays where it was written, and its error names it there)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1000


def assistant_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`AssistantSchema`, for editors that validate the YAML."""
    schema = AssistantSchema.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def write_json_schema(folder: str | Path) -> Path:
    """Write :func:`assistant_json_schema` to ``<folder>/assistant.schema.json``."""
    path = Path(folder) / JSON_SCHEMA_FILENAME
    path.write_text(json.dumps(assistant_json_schema(), indent=2) + "\n", encoding="utf-8")
    return path
