"""Token usage summed per assistant and per path across a tree of assistants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langchain_core.messages import AIMessage, BaseMessage

__all__ = ["PATH_SEPARATOR", "TokenUsage", "UsageSummary", "UsageTable", "usage_of_messages"]

PATH_SEPARATOR = ">"
"""Joins assistant names into the path keys of usage tables, e.g. ``proxy>researcher``."""


class TokenUsage(TypedDict):
    """Tokens of one or more model calls."""

    input_tokens: int
    """Prompt tokens."""
    output_tokens: int
    """Completion tokens."""
    total_tokens: int
    """Both."""


class UsageSummary(TypedDict):
    """Usage of a run or a sub-assistant call, whole and split up."""

    total: TokenUsage
    """All model calls together."""
    by_assistant: dict[str, TokenUsage]
    """Per assistant name, wherever in the tree it ran."""
    by_path: dict[str, TokenUsage]
    """Per path from the root (names joined with ``>``)."""


def _zero() -> TokenUsage:
    return TokenUsage(input_tokens=0, output_tokens=0, total_tokens=0)


def _add(into: TokenUsage, usage: Mapping[str, Any]) -> None:
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        into[key] += int(usage.get(key) or 0)  # type: ignore[literal-required]


@dataclass
class UsageTable:
    """Accumulates token usage per path; per assistant and total are derived from it."""

    by_path: dict[tuple[str, ...], TokenUsage] = field(default_factory=dict)
    """Usage per path from the root."""

    def add(self, path: Sequence[str], usage: Mapping[str, Any] | None) -> None:
        """Add one model call's usage (``AIMessage.usage_metadata``) at ``path``."""
        if usage:
            _add(self.by_path.setdefault(tuple(path), _zero()), usage)

    def add_messages(self, path: Sequence[str], messages: Iterable[BaseMessage]) -> None:
        """Add the usage of every AI message in ``messages`` at ``path``."""
        for message in messages:
            if isinstance(message, AIMessage):
                self.add(path, message.usage_metadata)

    def merge(self, summary: Mapping[str, Any] | None, prefix: Sequence[str] = ()) -> None:
        """Add a :class:`UsageSummary` whose paths are relative to ``prefix``."""
        for key, usage in (summary or {}).get("by_path", {}).items():
            self.add([*prefix, *key.split(PATH_SEPARATOR)], usage)

    def summary(self) -> UsageSummary:
        """The usage as plain data: total, per assistant, per path."""
        total, by_assistant = _zero(), dict[str, TokenUsage]()
        for path, usage in self.by_path.items():
            _add(total, usage)
            _add(by_assistant.setdefault(path[-1], _zero()), usage)
        by_path = {PATH_SEPARATOR.join(path): dict(usage) for path, usage in self.by_path.items()}
        return UsageSummary(total=total, by_assistant=by_assistant, by_path=by_path)  # type: ignore[typeddict-item]


def usage_of_messages(
    assistant: str, messages: Sequence[BaseMessage], nested: Iterable[Mapping[str, Any] | None]
) -> UsageSummary:
    """Usage of one call of ``assistant``: its own AI messages plus its sub-calls' usage.

    Paths in the result start at ``assistant``.
    """
    table = UsageTable()
    table.add_messages([assistant], messages)
    for summary in nested:
        table.merge(summary, [assistant])
    return table.summary()
