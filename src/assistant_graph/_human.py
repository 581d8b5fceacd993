"""Human in the loop, at any depth: the ``ask_user`` tool and approval of tool calls.

Both pause the run with LangGraph's ``interrupt`` (so they need a checkpointer). The
interrupt value is an :class:`InputRequestPayload` that names the assistant path; the
caller answers with ``Command(resume=...)`` (one value, or a dict of values by interrupt
id to answer several pending requests at once) and the run continues where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool, InjectedToolCallId, tool
from langgraph.errors import GraphInterrupt
from langgraph.prebuilt import InjectedState
from langgraph.types import interrupt

from assistant_graph._event_source import Origin, emit
from assistant_graph.events import InputRequestEvent

__all__ = [
    "ASK_USER_TOOL_NAME",
    "Approval",
    "InputRequestPayload",
    "ask_user_tool",
    "parse_approval",
    "request_approval",
]

ASK_USER_TOOL_NAME = "ask_user"
"""Name of the built-in tool an assistant with ``ask_user: true`` gets."""

APPROVAL_QUESTION = "Allow {assistant} to call {tool} with {args}?"
ASK_USER_DESCRIPTION = (
    "Ask the person you are working for a question and wait for the answer. Use it when you "
    "cannot go on without information or a decision only they have."
)
REJECTED_TEXT = "The person did not approve this call to {tool}{reason}. Do not retry it; "
REJECTED_TEXT += "continue without it or ask what to do instead."
_YES = frozenset({"yes", "y", "ok", "approve", "approved", "allow", "true"})
"""The closed set of texts that approve a tool call (ASCII, compared lower-cased and stripped)."""


class InputRequestPayload(TypedDict):
    """The value of an interrupt raised to ask the person something."""

    kind: Literal["question", "approval"]
    """A free question (``ask_user``) or a yes/no approval of a tool call."""
    question: str
    """The text to show the person."""
    path: list[str]
    """The assistant names from the root to the one asking."""
    tool_call_id: str
    """The id of the tool call that asks (``ask_user``) or that waits for approval."""
    parent_tool_call_id: NotRequired[str | None]
    """The id of the caller's tool call that opened the asking assistant's run (None for
    the root; absent in requests made before it was recorded)."""
    tool: str | None
    """For approvals: the tool that would run."""
    args: dict[str, Any] | None
    """For approvals: the arguments it would run with."""


@dataclass(frozen=True)
class Approval:
    """The person's decision on a tool call."""

    approved: bool
    """Whether the call may run."""
    reason: str | None = None
    """Why not (or any remark), passed on to the model."""


def ask_user_tool() -> BaseTool:
    """The built-in ``ask_user`` tool: asks the person and returns the answer."""

    @tool(ASK_USER_TOOL_NAME, description=ASK_USER_DESCRIPTION)
    def ask_user(
        question: str,
        tool_call_id: Annotated[str, InjectedToolCallId],
        assistant_path: Annotated[list[str] | None, InjectedState("assistant_path")] = None,
        parent_tool_call_id: Annotated[str | None, InjectedState("parent_tool_call_id")] = None,
    ) -> str:
        payload = InputRequestPayload(
            kind="question",
            question=question,
            path=list(assistant_path or []),
            tool_call_id=tool_call_id,
            parent_tool_call_id=parent_tool_call_id,
            tool=None,
            args=None,
        )
        origin = Origin(tuple(assistant_path or ()), parent_tool_call_id)
        return _answer_text(_ask(payload, origin))

    return ask_user


def request_approval(call: ToolCall, origin: Origin) -> Approval:
    """Pause until the person approves or rejects ``call`` (via ``interrupt``).

    Args:
        call: The tool call waiting for approval.
        origin: The assistant that made it.
    """
    args = {key: value for key, value in call["args"].items()}
    path = list(origin.path)
    payload = InputRequestPayload(
        kind="approval",
        question=APPROVAL_QUESTION.format(
            assistant=" > ".join(path) or "the assistant",
            tool=call["name"],
            args=json.dumps(args, ensure_ascii=False, default=str),
        ),
        path=path,
        tool_call_id=call["id"] or "",
        parent_tool_call_id=origin.parent_tool_call_id,
        tool=call["name"],
        args=args,
    )
    return parse_approval(_ask(payload, origin))


def _ask(payload: InputRequestPayload, origin: Origin) -> Any:
    """Pause the run with ``payload`` until the person answers; the answer.

    The ``input_request`` event is emitted here, when the run really pauses: ``interrupt``
    raises the first time and returns the answer when the step runs again on resume.
    """
    try:
        return interrupt(payload)
    except GraphInterrupt as pause:
        for request in pause.args[0] if pause.args else ():
            emit(_input_request_event(payload, origin, request.id))
        raise


def _input_request_event(
    payload: InputRequestPayload, origin: Origin, request_id: str
) -> InputRequestEvent:
    return InputRequestEvent(
        **origin.fields(),
        id=request_id,
        kind=payload["kind"],
        question=payload["question"],
        tool=payload["tool"],
        args=payload["args"],
    )


def parse_approval(answer: Any) -> Approval:
    """Read a resume value as an approval; only a closed set of answers approves.

    Approving answers are exactly:

    - ``True``;
    - the texts ``"yes"``, ``"y"``, ``"ok"``, ``"approve"``, ``"approved"``, ``"allow"``
      and ``"true"``, in any ASCII letter case, surrounding whitespace ignored;
    - a mapping whose ``"approved"`` is one of the above (``{"approved": true}``,
      ``{"approved": "yes"}``); its ``"reason"``, if any, is passed on as a remark.

    Everything else rejects: ``False``, any other text (which becomes the reason the model
    is told, e.g. ``"no, she is on holiday"``; ``"no"``, ``"false"`` and ``"yes please"``
    reject too), a mapping whose ``"approved"`` is anything else (``false``, ``"no"``,
    ``"false"``, ``0``, ``1``, missing; its ``"reason"`` is the reason), and any other
    value without a reason: ``None``, numbers (``1`` as much as ``0``), lists.
    """
    if isinstance(answer, Mapping):
        value, reason = answer.get("approved"), answer.get("reason")
        approved = not isinstance(value, Mapping) and parse_approval(value).approved
        return Approval(approved, str(reason) if reason else None)
    if answer is True:
        return Approval(True)
    if not isinstance(answer, str):
        return Approval(False)
    text = answer.strip()
    if text.isascii() and text.lower() in _YES:
        return Approval(True)
    return Approval(False, text or None)


def rejection_message(call: ToolCall, approval: Approval) -> ToolMessage:
    """The tool result that tells the model its call was not approved."""
    reason = f": {approval.reason}" if approval.reason else ""
    return ToolMessage(
        content=REJECTED_TEXT.format(tool=call["name"], reason=reason),
        tool_call_id=call["id"] or "",
        name=call["name"],
        status="error",
    )


def _answer_text(answer: Any) -> str:
    if isinstance(answer, str):
        return answer
    return json.dumps(answer, ensure_ascii=False, default=str)
