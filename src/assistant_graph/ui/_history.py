"""The events of a turn that no page watched, told again from the thread's messages.

A turn this server ran is shown from the events it recorded (with their times). A turn run
before it started, or by the CLI, left only the thread: its messages, and in each
sub-assistant tool result the artifact with the exact input, the sub-assistant's own
messages (recursively), the tokens and cost, and the budget that ran out if one did.
:func:`turn_events` turns those into the same events the run streamed, in the same order,
so the page draws one kind of tree; only the times (and so the timeline) are missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from assistant_graph._event_source import Origin, message_events, tool_result_event
from assistant_graph._state import message_text
from assistant_graph._sub_assistant import read_artifact
from assistant_graph._usage import usage_of_messages
from assistant_graph.events import (
    AssistantEvent,
    FinalEvent,
    SubAssistantEndEvent,
    SubAssistantStartEvent,
)

__all__ = ["split_turns", "turn_events"]


def split_turns(messages: Sequence[BaseMessage]) -> list[tuple[HumanMessage, list[BaseMessage]]]:
    """The thread's turns: each person's message with the messages that answered it."""
    turns: list[tuple[HumanMessage, list[BaseMessage]]] = []
    for message in messages:
        if isinstance(message, HumanMessage):
            turns.append((message, []))
        elif turns:
            turns[-1][1].append(message)
    return turns


def turn_events(
    root: str,
    replies: Sequence[BaseMessage],
    *,
    status: str = "completed",
    budget_exhausted: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The events of one turn of assistant ``root``, as the run would have streamed them.

    Args:
        root: The root assistant.
        replies: The messages after the person's message, up to the next one.
        status: How the turn ended (``final`` event), as far as the thread tells.
        budget_exhausted: For an ``incomplete`` turn, the root's budget that ran out (the
            thread's ``budget_exhausted``).
    """
    origin = Origin((root,))
    events = [event.to_dict() for event in _events(origin, replies)]
    content = next(
        (message_text(m) for m in reversed(replies) if isinstance(m, AIMessage) and m.text),
        "",
    )
    final = FinalEvent(
        path=(root,),
        content=content,
        thread_id=None,
        status=status,
        usage=usage_of_messages(root, replies),
        budget_exhausted=dict(budget_exhausted) if budget_exhausted else None,
    )
    return [*events, final.to_dict()]


def _events(origin: Origin, messages: Sequence[BaseMessage]) -> Iterator[AssistantEvent]:
    calls: dict[str, Mapping[str, Any]] = {}
    for message in messages:
        if isinstance(message, AIMessage):
            calls.update({call["id"] or "": call["args"] for call in message.tool_calls})
            yield from message_events(origin, message)
        elif isinstance(message, ToolMessage):
            yield from _sub_assistant_call(origin, message, calls.get(message.tool_call_id, {}))
            yield tool_result_event(origin, message)


def _sub_assistant_call(
    origin: Origin, result: ToolMessage, args: Mapping[str, Any]
) -> Iterator[AssistantEvent]:
    artifact = read_artifact(result)
    if artifact is None:
        return
    assistant = artifact["assistant"]
    child = origin.child(assistant, result.tool_call_id)
    yield SubAssistantStartEvent(
        **child.fields(),
        assistant=assistant,
        message=str(args.get("message_to_assistant", "")),
        input=artifact["input"],
    )
    yield from _events(child, artifact["response_messages"])
    yield SubAssistantEndEvent(
        **child.fields(),
        assistant=assistant,
        subgraph_uid=artifact["subgraph_uid"],
        returning_incomplete=artifact["returning_incomplete"],
        usage=artifact["usage"],
        budget_exhausted=artifact.get("budget_exhausted"),
    )
