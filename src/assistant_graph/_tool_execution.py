"""Running an assistant's tool calls: one task per call, errors the model can act on.

Built on LangGraph's ``ToolNode`` (which injects state and turns unknown tools, invalid
arguments and tool exceptions into error tool messages), with one wrapper that

- asks the person to approve calls of the tools the schema lists in ``require_approval``
  (a rejection becomes the tool result, and the run goes on),
- refuses a second call in the same model turn that resumes the same conversation uid, and
- records each sub-assistant result's conversation in ``sub_assistant_states`` in the same
  update that adds its tool message, so the two are checkpointed together.

Infrastructure failures (:class:`~assistant_graph._errors.ModelCallError`) and
configuration errors are not turned into tool messages: they end the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from assistant_graph._errors import AssistantGraphError, SubAssistantToolError
from assistant_graph._human import rejection_message, request_approval
from assistant_graph._subgraph_tool import AssistantSubgraphCallTool

__all__ = ["build_tool_node", "record_sub_conversation"]

ERROR_DUPLICATE_RESUME = (
    "Error: another call in this same turn already resumes conversation {uid!r}; a "
    "conversation can only be continued by one call at a time. Wait for that result, then "
    "resume again if needed."
)
ERROR_TOOL_FAILED = "Error: {error}\nPlease fix your mistakes."

ToolResult = ToolMessage | Command[Any]


def build_tool_node(
    tools: Sequence[BaseTool], *, require_approval: Collection[str] = ()
) -> ToolNode:
    """The ``tools`` node: runs one tool call (sent to it with ``Send``) per task.

    Args:
        tools: The assistant's tools, sub-assistant tools included.
        require_approval: Names of tools whose calls wait for the person's approval.
    """
    gate = _ToolCallGate(frozenset(require_approval))
    return ToolNode(
        list(tools),
        handle_tool_errors=_tool_error_message,
        wrap_tool_call=gate.wrap,
        awrap_tool_call=gate.awrap,
    )


def record_sub_conversation(result: ToolResult) -> ToolResult:
    """Turn a sub-assistant tool message into an update that also stores its conversation.

    The conversation moves from the artifact into ``sub_assistant_states[uid]``: the tool
    message kept in the thread carries ``sub_assistant_state_data=None``, so each
    sub-conversation is stored once rather than copied into every call's artifact (which
    made a thread's state, and every checkpoint of it, grow with the square of its turns).
    Other results pass through unchanged. Use it as (part of) a ``ToolNode``
    ``wrap_tool_call`` in graphs not built by this package to make sub-conversations
    resumable there.
    """
    if not isinstance(result, ToolMessage) or not isinstance(result.artifact, Mapping):
        return result
    data = result.artifact.get("sub_assistant_state_data")
    if "subgraph_uid" not in result.artifact or data is None:
        return result
    kept = result.model_copy(
        update={"artifact": {**result.artifact, "sub_assistant_state_data": None}}
    )
    update = {result.artifact["subgraph_uid"]: data}
    return Command(update={"messages": [kept], "sub_assistant_states": update})


@dataclass(frozen=True)
class _ToolCallGate:
    """What happens around every tool call: checks before it, recording after it."""

    require_approval: frozenset[str]

    def wrap(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolResult]
    ) -> ToolResult:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        return record_sub_conversation(execute(request))

    async def awrap(
        self,
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        return record_sub_conversation(await execute(request))

    def _refusal(self, request: ToolCallRequest) -> ToolMessage | None:
        """A result to give instead of running the call, or None to run it."""
        refusal = _refuse_duplicate_resume(request)
        if refusal is not None or request.tool_call["name"] not in self.require_approval:
            return refusal
        state = request.state if isinstance(request.state, dict) else {}
        approval = request_approval(request.tool_call, list(state.get("assistant_path") or []))
        return None if approval.approved else rejection_message(request.tool_call, approval)


def _refuse_duplicate_resume(request: ToolCallRequest) -> ToolMessage | None:
    """An error result if an earlier call of the same turn resumes the same uid."""
    if not isinstance(request.tool, AssistantSubgraphCallTool):
        return None
    call = request.tool_call
    uid = call["args"].get("resume_conversation_uid")
    if not uid:
        return None
    for earlier in _calls_of_turn(request.state, call["id"]):
        if earlier["name"].startswith("sub_assistant__") and (
            earlier["args"].get("resume_conversation_uid") == uid
        ):
            return ToolMessage(
                content=ERROR_DUPLICATE_RESUME.format(uid=uid),
                tool_call_id=call["id"] or "",
                name=call["name"],
                status="error",
            )
    return None


def _calls_of_turn(state: Any, call_id: str | None) -> list[dict[str, Any]]:
    """The tool calls made before ``call_id`` in the model message that made it."""
    messages = state.get("messages", []) if isinstance(state, dict) else []
    for message in reversed(messages):
        if isinstance(message, AIMessage) and any(c["id"] == call_id for c in message.tool_calls):
            ids = [c["id"] for c in message.tool_calls]
            return [dict(c) for c in message.tool_calls[: ids.index(call_id)]]
    return []


def _tool_error_message(error: Exception) -> str:
    """Tool failures the model can act on become text; infrastructure errors propagate."""
    if isinstance(error, AssistantGraphError) and not isinstance(error, SubAssistantToolError):
        raise error
    return ERROR_TOOL_FAILED.format(error=f"{type(error).__name__}: {error}")
