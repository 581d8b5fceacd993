"""What a sub-assistant receives: the tool's arguments and the one message built from them.

The calling model fills four arguments of :class:`AssistantSubgraphArgs`: its message to
the sub-assistant, how many previous messages to forward, which tool results to forward
as contexts, and whether to resume an earlier conversation. The rest are injected from
the caller's graph state. :func:`generate_input_content` turns them into the single user
message the sub-assistant sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import InjectedToolCallId
from langgraph.prebuilt import InjectedState
from pydantic import BaseModel, ConfigDict, Field

from assistant_graph._errors import SubAssistantToolError
from assistant_graph._state import coerce_messages, message_text

__all__ = ["AssistantSubgraphArgs", "generate_input_content", "payload_state"]

# Texts the models see. Each is defined once, here.
INPUT_PREVIOUS_MESSAGES = "Previous messages of the conversation:"
INPUT_CONTEXTS = "Context from earlier tool results:"
INPUT_SUMMARY = "Summary of the conversation so far:"
ERROR_UNKNOWN_CONTEXT = (
    "pass_contexts names tool call ids with no tool result in this conversation: {missing}. "
    "Known ids: {known}."
)


class AssistantSubgraphArgs(BaseModel):
    """Arguments of every sub-assistant tool.

    The model sees only the first four; the rest are injected from the caller's graph
    state (``InjectedState``) and the tool call id, and are hidden from the model.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    message_to_assistant: str = Field(
        description=(
            "Message to pass as latest message to the sub-assistant. E.g., instructions on "
            "what the sub-assistant should do, including relevant information (that isn't "
            "passed via previous messages/contexts)."
        )
    )
    """Instructions for the sub-assistant, with what it needs that is not passed otherwise."""

    pass_num_previous_messages: int = Field(
        default=0,
        ge=0,
        description=(
            "Number of previous messages from the current conversation to pass to the "
            "sub-assistant, counting the current user message. (This includes only "
            "user/assistant messages, not tool calls, tool responses or system messages.)"
        ),
    )
    """How many of the caller's most recent user/assistant messages to forward."""

    pass_contexts: list[str] = Field(
        default_factory=list,
        description=(
            "The call_ids of any contexts (i.e. tool responses) in the current conversation "
            "to pass on to the sub-assistant."
        ),
    )
    """Tool call ids whose tool results are forwarded."""

    resume_conversation_uid: str | None = Field(
        default=None,
        description=(
            "The uid of an earlier conversation with this sub-assistant to continue (if the "
            "current request is relevant to that previous call). null starts a new "
            "conversation."
        ),
    )
    """Continue an earlier conversation with the same sub-assistant instead of a new one."""

    parent_conv_messages: Annotated[list[AnyMessage], InjectedState("messages")] = Field(
        default_factory=list
    )
    """Injected: the caller's conversation."""

    parent_steps_remaining: Annotated[int | None, InjectedState("steps_remaining")] = None
    """Injected: model calls the caller has left; the sub-assistant gets no more."""

    parent_summary_of_conversation: Annotated[
        str | None, InjectedState("summary_of_conversation")
    ] = None
    """Injected: the caller's summary of its conversation, forwarded if present."""

    sub_assistant_states: Annotated[dict[str, Any], InjectedState("sub_assistant_states")] = Field(
        default_factory=dict
    )
    """Injected: the sub-conversations the caller has opened, by uid."""

    parent_assistant_path: Annotated[list[str], InjectedState("assistant_path")] = Field(
        default_factory=list
    )
    """Injected: the assistant names from the root to the caller."""

    tool_call_id: Annotated[str, InjectedToolCallId]
    """Injected: the id of the tool call that opens this sub-assistant run."""


def generate_input_content(tool_input: AssistantSubgraphArgs | Mapping[str, Any]) -> str:
    """The one user message a sub-assistant receives from its caller.

    In order: the caller's message; the forwarded previous messages, each labelled with
    its role; the forwarded contexts, each labelled with its call id; the caller's
    summary of the conversation, if it has one.

    Raises:
        SubAssistantToolError: If ``pass_contexts`` names a call id with no tool result.
    """
    args = (
        tool_input
        if isinstance(tool_input, AssistantSubgraphArgs)
        else AssistantSubgraphArgs.model_validate({"tool_call_id": "", **tool_input})
    )
    messages = coerce_messages(args.parent_conv_messages)
    sections = [args.message_to_assistant]
    previous = _previous_messages(messages, args.pass_num_previous_messages)
    if previous:
        lines = [f"[{_role_label(message)}]: {message_text(message)}" for message in previous]
        sections.append("\n".join([INPUT_PREVIOUS_MESSAGES, *lines]))
    contexts = _contexts(messages, args.pass_contexts)
    if contexts:
        blocks = [f"[context {call_id}]:\n{text}" for call_id, text in contexts]
        sections.append("\n\n".join([INPUT_CONTEXTS, *blocks]))
    if args.parent_summary_of_conversation:
        sections.append(f"{INPUT_SUMMARY}\n{args.parent_summary_of_conversation}")
    return "\n\n".join(sections)


def _previous_messages(messages: Sequence[BaseMessage], count: int) -> list[BaseMessage]:
    if count <= 0:
        return []
    conversational: list[BaseMessage] = [
        message
        for message in messages
        if isinstance(message, HumanMessage | AIMessage) and message_text(message).strip()
    ]
    return list(conversational[-count:])


def _role_label(message: BaseMessage) -> str:
    return "user" if isinstance(message, HumanMessage) else "assistant"


def _contexts(messages: Sequence[BaseMessage], call_ids: Sequence[str]) -> list[tuple[str, str]]:
    if not call_ids:
        return []
    results = {m.tool_call_id: message_text(m) for m in messages if isinstance(m, ToolMessage)}
    missing = [call_id for call_id in call_ids if call_id not in results]
    if missing:
        raise SubAssistantToolError(
            ERROR_UNKNOWN_CONTEXT.format(
                missing=", ".join(missing), known=", ".join(results) or "none"
            )
        )
    return [(call_id, results[call_id]) for call_id in call_ids]


def payload_state(state: Mapping[str, Any], call: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the caller's state that one sub-assistant tool call needs.

    Each tool call runs as its own task, and its input (state included) is written to the
    checkpoint; a full copy per call made every delegation cost the size of the whole
    thread. A sub-assistant call needs only: the messages it forwards
    (``pass_num_previous_messages`` and ``pass_contexts``, the latter without artifacts),
    the model message that made the call (to spot two calls resuming one conversation),
    and the conversation it resumes. When the arguments are not valid, or name a context
    or uid that does not exist, the full state is kept so the error message can list what
    does exist.
    """
    args = call.get("args") or {}
    count = args.get("pass_num_previous_messages", 0)
    contexts = args.get("pass_contexts", [])
    uid = args.get("resume_conversation_uid")
    states = state.get("sub_assistant_states") or {}
    well_formed = (
        isinstance(count, int)
        and count >= 0
        and isinstance(contexts, list)
        and all(isinstance(c, str) for c in contexts)
        and (uid is None or (isinstance(uid, str) and uid in states))
    )
    if not well_formed:
        return dict(state)
    messages = list(state.get("messages") or [])
    kept = _forwarded(messages, count, set(contexts), call.get("id"))
    if kept is None:
        return dict(state)
    trimmed = {k: v for k, v in state.items() if k not in ("messages", "sub_assistant_states")}
    return {**trimmed, "messages": kept, "sub_assistant_states": {uid: states[uid]} if uid else {}}


def _forwarded(
    messages: Sequence[BaseMessage], count: int, contexts: set[str], call_id: str | None
) -> list[BaseMessage] | None:
    """The messages a call forwards, in order; None if a context id has no tool result."""
    previous = {id(m) for m in _previous_messages(messages, count)}
    found: set[str] = set()
    kept: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, ToolMessage) and message.tool_call_id in contexts:
            found.add(message.tool_call_id)
            kept.append(message.model_copy(update={"artifact": None}))
        elif id(message) in previous or (
            isinstance(message, AIMessage) and any(c["id"] == call_id for c in message.tool_calls)
        ):
            kept.append(message)
    return kept if found == contexts else None
