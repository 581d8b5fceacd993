"""The graph state of an assistant, its reducers, and reading messages back from checkpoints.

:func:`coerce_messages` turns checkpointed values into messages again; :func:`message_text`
reads a message's text whatever the shape of its content.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, NotRequired, TypedDict

from langchain_core.load import load
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    ToolMessage,
    convert_to_messages,
)
from langgraph.graph.message import add_messages

from assistant_graph._budget import BudgetLimits, RunBudget
from assistant_graph._usage import TokenUsage

__all__ = [
    "DANGLING_CALL_TEXT",
    "AssistantState",
    "SubAssistantStateData",
    "answer_dangling_tool_calls",
    "coerce_messages",
    "merge_sub_assistant_states",
    "message_text",
]


DANGLING_CALL_TEXT = (
    "Not run: this tool call has no result in the conversation (the run that made it "
    "stopped before its tools ran, or another program wrote to the conversation at the same "
    "time). Call it again if you still need it."
)
"""The result given to a tool call found without one when a run starts."""


class SubAssistantStateData(TypedDict):
    """Everything needed to continue one sub-conversation later."""

    assistant: str
    """Name of the sub-assistant the conversation is with."""
    messages: list[BaseMessage]
    """The whole sub-conversation so far, as the sub-assistant saw and wrote it."""
    summary_of_conversation: str | None
    """The sub-assistant's own summary of its conversation, if it made one."""
    summarized_message_count: NotRequired[int]
    """How many leading ``messages`` the summary covers (0 or absent: none)."""
    sub_assistant_states: dict[str, SubAssistantStateData]
    """The sub-conversations the sub-assistant itself opened, so they can be resumed too."""
    incomplete: bool
    """Whether the sub-assistant stopped before finishing the last request."""


def merge_sub_assistant_states(
    current: Mapping[str, SubAssistantStateData] | None,
    update: Mapping[str, SubAssistantStateData] | None,
) -> dict[str, SubAssistantStateData]:
    """Reducer: later writes of a uid replace earlier ones; other uids are kept."""
    return {**(current or {}), **(update or {})}


class AssistantState(TypedDict):
    """The state of one assistant's graph (a thread, for the root assistant)."""

    messages: Annotated[list[AnyMessage], add_messages]
    """The conversation: user, assistant and tool messages (never the system prompt)."""
    summary_of_conversation: NotRequired[str | None]
    """A summary of the older part of the conversation, passed on to sub-assistants."""
    summarized_message_count: NotRequired[int]
    """How many leading messages of ``messages`` ``summary_of_conversation`` covers; the
    model sees the summary instead of them."""
    summary_usage: NotRequired[TokenUsage | None]
    """Tokens and cost of the summaries made in the current run (None: none yet). Their
    answers are not messages, so this is what the run's budget and usage add to its
    messages' model calls."""
    sub_assistant_states: NotRequired[
        Annotated[dict[str, SubAssistantStateData], merge_sub_assistant_states]
    ]
    """The sub-conversations this assistant has opened, by conversation uid."""
    steps_remaining: NotRequired[int]
    """Model calls this run may still make (set at the start of every run)."""
    budget: NotRequired[RunBudget | None]
    """This run's limits (its assistant's ``budget`` capped by its caller's, or by the
    run-wide limits), set at its start; what it spent is read from its messages."""
    limits: NotRequired[BudgetLimits | None]
    """Input only: what the caller lets this run spend at most; consumed at the start."""
    budget_exhausted: NotRequired[dict[str, Any] | None]
    """Which budget ended the last run early (``{"kind", "limit", "used"}``), if one did."""
    assistant_path: NotRequired[list[str]]
    """Assistant names from the root to this one, e.g. ``["proxy", "researcher"]``."""
    conversation_uid: NotRequired[str | None]
    """The uid under which the caller keeps this conversation (sub-assistants only)."""
    parent_tool_call_id: NotRequired[str | None]
    """The id of the caller's tool call that opened this run (sub-assistants only)."""
    incomplete: NotRequired[bool]
    """Whether the last run stopped (a budget ran out) before the assistant finished."""
    structured_response: NotRequired[Any]
    """Typed assistants (``output_schema``): the last run's result, validated, as JSON data;
    None until a valid one is given (and for a run that stopped incomplete)."""
    output_problems: NotRequired[list[str]]
    """Typed assistants: why the last answer was not accepted as the result (validation
    errors); empty once an answer is accepted or when the last reply was no answer."""


def coerce_messages(values: Iterable[Any]) -> list[BaseMessage]:
    """Messages from values that may be messages, serialized messages or plain dicts.

    ``ToolMessage.artifact`` contents come back as plain dicts after a checkpoint reload;
    code reading artifacts or sub-conversation data uses this to get messages again.
    """
    messages: list[BaseMessage] = []
    for value in values:
        if isinstance(value, BaseMessage):
            messages.append(value)
        elif isinstance(value, Mapping) and value.get("lc") == 1:
            messages.append(load(dict(value)))
        else:
            messages.extend(convert_to_messages([value]))
    return messages


def message_text(message: BaseMessage) -> str:
    """The text of a message, whatever the shape of its content."""
    return message.text if isinstance(message.text, str) else str(message.content)


def answer_dangling_tool_calls(messages: Sequence[BaseMessage]) -> list[BaseMessage] | None:
    """The conversation with a result after every tool call that has none, or None if
    every call has one.

    Chat APIs reject a history with a tool call and no result before the next message (an
    older version, another tool, or a crash can leave one); each such call gets an error
    result saying what happened, right after its message, so the thread is never stuck.
    """
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    if not any(
        call["id"] not in answered
        for m in messages
        if isinstance(m, AIMessage)
        for call in m.tool_calls
    ):
        return None
    repaired: list[BaseMessage] = []
    pending: list[BaseMessage] = []
    for message in messages:
        if not isinstance(message, ToolMessage):
            repaired.extend(pending)
            pending = []
        repaired.append(message)
        if isinstance(message, AIMessage):
            pending = [
                ToolMessage(
                    DANGLING_CALL_TEXT, tool_call_id=call["id"], name=call["name"], status="error"
                )
                for call in message.tool_calls
                if call["id"] not in answered
            ]
    return [*repaired, *pending]
