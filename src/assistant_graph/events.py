"""The events of the nested event stream: one frozen dataclass per type.

Every event names the assistants from the root to the one that produced it (``path``) and
the tool call that opened that sub-assistant (``parent_tool_call_id``). They are produced
by :func:`~assistant_graph._event_stream.stream_events` and rendered by the CLI's live tree
and its ``--json`` output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from assistant_graph._usage import UsageSummary

__all__ = [
    "AgentMessageEvent",
    "AssistantEvent",
    "ErrorEvent",
    "FinalEvent",
    "InputRequestEvent",
    "RetryEvent",
    "SubAssistantEndEvent",
    "SubAssistantStartEvent",
    "TokenEvent",
    "ToolCallEvent",
    "ToolResultEvent",
]


@dataclass(frozen=True, kw_only=True)
class AssistantEvent:
    """Base of every event: who produced it."""

    type: ClassVar[str] = "event"
    path: tuple[str, ...]
    """The assistant names from the root to the one that produced the event."""
    parent_tool_call_id: str | None = None
    """The id of the tool call that opened this sub-assistant run (None for the root)."""

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> AssistantEvent:
        """The event whose :meth:`to_dict` is ``data`` (unknown keys are ignored).

        Raises:
            ValueError: If ``data["type"]`` is not an event type.
        """
        cls = _EVENT_TYPES.get(str(data.get("type")))
        if cls is None:
            raise ValueError(f"not an assistant event type: {data.get('type')!r}")
        names = {item.name for item in dataclasses.fields(cls) if item.init}
        values = {key: value for key, value in data.items() if key in names}
        values["path"] = tuple(values.get("path") or ())
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data, ``type`` first."""
        data: dict[str, Any] = {"type": self.type}
        for item in dataclasses.fields(self):
            if item.metadata.get("json", True):
                value = getattr(self, item.name)
                data[item.name] = list(value) if isinstance(value, tuple) else value
        return data


@dataclass(frozen=True, kw_only=True)
class AgentMessageEvent(AssistantEvent):
    """An assistant wrote a message (its text; tool calls come as ``tool_call`` events)."""

    type: ClassVar[str] = "agent_message"
    content: str
    """The text of the message."""
    message_id: str | None = None
    """The message id."""


@dataclass(frozen=True, kw_only=True)
class TokenEvent(AssistantEvent):
    """A piece of text an assistant's model is streaming, as it is produced."""

    type: ClassVar[str] = "token"
    text: str
    """The new text."""
    message_id: str | None = None
    """The id of the message being streamed."""


@dataclass(frozen=True, kw_only=True)
class ToolCallEvent(AssistantEvent):
    """An assistant's model called a tool (a sub-assistant tool included)."""

    type: ClassVar[str] = "tool_call"
    name: str
    """The tool name."""
    args: dict[str, Any]
    """The arguments, as the model gave them."""
    id: str
    """The tool call id."""


@dataclass(frozen=True, kw_only=True)
class ToolResultEvent(AssistantEvent):
    """A tool call's result came back to the assistant that made it."""

    type: ClassVar[str] = "tool_result"
    name: str
    """The tool name."""
    id: str
    """The tool call id."""
    content: str
    """The result text the model sees."""
    status: str = "success"
    """``success`` or ``error``."""
    subgraph_uid: str | None = None
    """For sub-assistant calls: the conversation uid."""
    returning_incomplete: bool | None = None
    """For sub-assistant calls: whether the sub-assistant stopped before finishing."""


@dataclass(frozen=True, kw_only=True)
class SubAssistantStartEvent(AssistantEvent):
    """A sub-assistant starts (or resumes) working; ``path`` ends with it."""

    type: ClassVar[str] = "sub_assistant_start"
    assistant: str
    """The sub-assistant's name."""
    message: str = ""
    """The caller's ``message_to_assistant``."""
    input: str = ""
    """The whole message the sub-assistant received: the caller's message, then the
    forwarded previous messages, the forwarded contexts by call id, and the caller's
    summary (see :func:`~assistant_graph._sub_assistant.generate_input_content`)."""


@dataclass(frozen=True, kw_only=True)
class SubAssistantEndEvent(AssistantEvent):
    """A sub-assistant finished; ``path`` ends with it."""

    type: ClassVar[str] = "sub_assistant_end"
    assistant: str
    """The sub-assistant's name."""
    subgraph_uid: str | None
    """The conversation uid (None if the call was refused before it ran)."""
    returning_incomplete: bool
    """Whether it stopped before finishing."""
    status: str = "success"
    """``success``, or ``error`` if the call was refused or failed."""
    usage: UsageSummary | None = None
    """Tokens and cost of its model calls (and its sub-assistants')."""
    budget_exhausted: dict[str, Any] | None = None
    """If it stopped incomplete: which budget ran out (``kind``: steps, tokens, cost or
    time), its ``limit`` and what was ``used``."""


@dataclass(frozen=True, kw_only=True)
class RetryEvent(AssistantEvent):
    """A model call failed with a transient error and will be tried again."""

    type: ClassVar[str] = "retry"
    attempt: int
    """The attempt that failed (1 for the first)."""
    max_attempts: int
    """Attempts allowed in all."""
    wait_seconds: float
    """How long until the next attempt."""
    error: str
    """The error of the failed attempt."""


@dataclass(frozen=True, kw_only=True)
class InputRequestEvent(AssistantEvent):
    """An assistant is waiting for the person: a question or a tool-call approval."""

    type: ClassVar[str] = "input_request"
    id: str
    """The request id; answer with ``Command(resume={id: answer})``."""
    kind: str
    """``question`` or ``approval``."""
    question: str
    """The text to show the person."""
    tool: str | None = None
    """For approvals: the tool that would run."""
    args: dict[str, Any] | None = None
    """For approvals: its arguments."""


@dataclass(frozen=True, kw_only=True)
class ErrorEvent(AssistantEvent):
    """The run failed; ``path`` names the assistant where it failed, if known."""

    type: ClassVar[str] = "error"
    message: str
    """What went wrong."""
    error_type: str
    """The exception's class name."""
    exception: BaseException | None = field(
        default=None, compare=False, repr=False, metadata={"json": False}
    )
    """The exception itself (not part of the JSON form)."""


@dataclass(frozen=True, kw_only=True)
class FinalEvent(AssistantEvent):
    """The last event of a run."""

    type: ClassVar[str] = "final"
    content: str
    """The root assistant's last message text."""
    thread_id: str | None
    """The thread the run belongs to (to continue it later)."""
    status: str
    """``completed``, ``incomplete`` (a budget ran out), ``interrupted`` (waiting for
    input), or ``error``."""
    usage: UsageSummary
    """Tokens and cost of this run, total, per assistant and per path (a cost of None is
    unknown: some model call had no known price)."""
    budget_exhausted: dict[str, Any] | None = None
    """For an ``incomplete`` run: which budget ran out (``kind``, ``limit``, ``used``)."""
    structured_response: Any = None
    """A typed root assistant's result (``output_schema``), validated, as JSON data; None
    for an untyped one or a run that ended without a valid result."""


_EVENT_TYPES: dict[str, type[AssistantEvent]] = {
    cls.type: cls
    for cls in (
        AgentMessageEvent,
        TokenEvent,
        ToolCallEvent,
        ToolResultEvent,
        SubAssistantStartEvent,
        SubAssistantEndEvent,
        RetryEvent,
        InputRequestEvent,
        ErrorEvent,
        FinalEvent,
    )
}
