"""The events of a turn that no page watched, told again from the thread's messages.

A turn this server ran is shown from the events it recorded (with their times). A turn run
before it started, or by the CLI, left only the thread: its messages, and in each
sub-assistant tool result the artifact with the exact input, the sub-assistant's own
messages (recursively), the tokens and cost, and the budget that ran out if one did.
:func:`turn_events` turns those into the same events the run streamed, in the same order,
so the page draws one kind of tree; only the times (and so the timeline) are missing.

A turn waiting for the person also gets its pending requests, at the sub-assistant call
that asked. The asking sub-assistant's own messages so far are in its run's checkpoint,
not yet in the thread's messages, so they are not told; nor are the calls between it and
the root when it asks from two or more levels down (the page then shows the request at a
node of its own, named by its path).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from assistant_graph._event_source import Origin, message_events, tool_result_event
from assistant_graph._names import assistant_name_from_tool_name, is_sub_assistant_tool_name
from assistant_graph._state import message_text
from assistant_graph._sub_assistant import read_artifact
from assistant_graph._usage import usage_of_messages
from assistant_graph.events import (
    AssistantEvent,
    FinalEvent,
    InputRequestEvent,
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
    pending: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The events of one turn of assistant ``root``, as the run would have streamed them.

    Args:
        root: The root assistant.
        replies: The messages after the person's message, up to the next one.
        status: How the turn ended (``final`` event), as far as the thread tells.
        budget_exhausted: For an ``incomplete`` turn, the root's budget that ran out (the
            thread's ``budget_exhausted``).
        pending: For a turn waiting for the person, its requests (as ``pending_view``
            gives them).
    """
    origin = Origin((root,))
    events = [event.to_dict() for event in _events(origin, replies)]
    events += [event.to_dict() for event in _requests(root, replies, pending)]
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


def _requests(
    root: str, replies: Sequence[BaseMessage], pending: Sequence[Mapping[str, Any]]
) -> Iterator[InputRequestEvent]:
    """The ``input_request`` events of the pending requests, each from the call that asked."""
    open_calls = _open_sub_assistant_calls(replies)
    for request in pending:
        path = tuple(request.get("path") or (root,))
        parent = request.get("parent_tool_call_id")
        if parent is None and len(path) == 2:  # asked before the parent's id was recorded
            opened = [call_id for call_id, name in open_calls if name == path[1]]
            parent = opened[0] if len(opened) == 1 else None
        yield InputRequestEvent(
            path=path,
            parent_tool_call_id=parent,
            id=str(request["id"]),
            kind=str(request.get("kind") or "question"),
            question=str(request.get("question") or ""),
            tool=request.get("tool"),
            args=request.get("args"),
        )


def _open_sub_assistant_calls(messages: Sequence[BaseMessage]) -> list[tuple[str, str]]:
    """The root's sub-assistant calls with no result yet: (tool call id, assistant name)."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    return [
        (call["id"], assistant_name_from_tool_name(call["name"]))
        for message in messages
        if isinstance(message, AIMessage)
        for call in message.tool_calls
        if call["id"] and call["id"] not in answered and is_sub_assistant_tool_name(call["name"])
    ]
