"""Tokens and cost summed per assistant and per path across a tree of assistants.

A cost is known only when every model call in a sum has a known price: one call of a
model with no known price makes the sum's ``cost_usd`` None (shown as "unknown"), never
a smaller number than was really spent. ``priced_cost_usd`` keeps what the priced calls
cost, which is what a ``max_cost_usd`` budget counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from assistant_graph._pricing import cost_of_message

__all__ = [
    "PATH_SEPARATOR",
    "TokenUsage",
    "UsageSummary",
    "UsageTable",
    "call_usage",
    "usage_of_messages",
]

PATH_SEPARATOR = ">"
"""Joins assistant names into the path keys of usage tables, e.g. ``proxy>researcher``."""

_TOKEN_KEYS = ("input_tokens", "output_tokens", "total_tokens")


class TokenUsage(TypedDict):
    """Tokens and cost of one or more model calls."""

    input_tokens: int
    """Prompt tokens."""
    output_tokens: int
    """Completion tokens."""
    total_tokens: int
    """Both."""
    cost_usd: float | None
    """What the calls cost in US dollars; None (unknown) if any of them has no known price."""
    priced_cost_usd: float
    """What the calls with a known price cost (equal to ``cost_usd`` when that is known)."""


class UsageSummary(TypedDict):
    """Usage of a run or a sub-assistant call, whole and split up."""

    total: TokenUsage
    """All model calls together."""
    by_assistant: dict[str, TokenUsage]
    """Per assistant name, wherever in the tree it ran."""
    by_path: dict[str, TokenUsage]
    """Per path from the root (names joined with ``>``)."""


def _zero() -> TokenUsage:
    return TokenUsage(
        input_tokens=0, output_tokens=0, total_tokens=0, cost_usd=0.0, priced_cost_usd=0.0
    )


def _add(into: TokenUsage, usage: Mapping[str, Any]) -> None:
    """Add ``usage`` (a :class:`TokenUsage`, or a model call's usage with ``cost_usd``)."""
    for key in _TOKEN_KEYS:
        into[key] += int(usage.get(key) or 0)  # type: ignore[literal-required]
    cost = usage.get("cost_usd")
    priced = usage.get("priced_cost_usd", cost)
    into["priced_cost_usd"] += float(priced or 0.0)
    current = into["cost_usd"]
    into["cost_usd"] = None if cost is None or current is None else current + float(cost)


def call_usage(usage: Mapping[str, Any], cost: float | None) -> dict[str, Any]:
    """One model call's usage (``usage_metadata``) with its cost, as tables add it."""
    return {**{key: usage.get(key) or 0 for key in _TOKEN_KEYS}, "cost_usd": cost}


@dataclass
class UsageTable:
    """Accumulates usage per path; per assistant and total are derived from it."""

    by_path: dict[tuple[str, ...], TokenUsage] = field(default_factory=dict)
    """Usage per path from the root."""

    def add(self, path: Sequence[str], usage: Mapping[str, Any] | None) -> None:
        """Add usage at ``path``: one model call's (see :func:`call_usage`) or a sum's."""
        if usage:
            _add(self.by_path.setdefault(tuple(path), _zero()), usage)

    def add_messages(self, path: Sequence[str], messages: Iterable[BaseMessage]) -> None:
        """Add the usage of every model call among ``messages`` at ``path``."""
        for message in messages:
            if isinstance(message, AIMessage):
                is_call, cost = cost_of_message(message)
                if is_call:
                    self.add(path, call_usage(message.usage_metadata or {}, cost))

    def merge(self, summary: Mapping[str, Any] | None, prefix: Sequence[str] = ()) -> None:
        """Add a :class:`UsageSummary` whose paths are relative to ``prefix``."""
        for key, usage in (summary or {}).get("by_path", {}).items():
            self.add([*prefix, *key.split(PATH_SEPARATOR)], _with_cost(usage))

    def summary(self) -> UsageSummary:
        """The usage as plain data: total, per assistant, per path."""
        total, by_assistant = _zero(), dict[str, TokenUsage]()
        for path, usage in self.by_path.items():
            _add(total, usage)
            _add(by_assistant.setdefault(path[-1], _zero()), usage)
        by_path = {
            PATH_SEPARATOR.join(path): TokenUsage(**usage) for path, usage in self.by_path.items()
        }
        return UsageSummary(total=total, by_assistant=by_assistant, by_path=by_path)


def _with_cost(usage: Mapping[str, Any]) -> Mapping[str, Any]:
    """A summary entry written before costs were recorded has an unknown cost."""
    return usage if "cost_usd" in usage else {**usage, "cost_usd": None}


def usage_of_messages(
    assistant: str,
    messages: Sequence[BaseMessage],
    *,
    unlisted: Mapping[str, Any] | None = None,
) -> UsageSummary:
    """Usage of one call of ``assistant``: the model calls among ``messages`` plus the
    usage in the artifacts of the sub-assistant calls among them.

    Args:
        assistant: The name the paths of the result start at.
        messages: What the call added to the conversation.
        unlisted: The usage of the assistant's own model calls whose answers are not among
            ``messages`` (its summaries), if any.
    """
    table = UsageTable()
    table.add([assistant], unlisted)
    table.add_messages([assistant], messages)
    for message in messages:
        if isinstance(message, ToolMessage) and isinstance(message.artifact, Mapping):
            table.merge(message.artifact.get("usage"), [assistant])
    return table.summary()
