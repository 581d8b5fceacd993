"""Running an assistant's tool calls: one task per call, errors the model can act on.

Built on LangGraph's ``ToolNode`` (which injects state and turns unknown tools, invalid
arguments and tool exceptions into error tool messages). Each call is sent to the node
on its own (``Send("tools", [call])``), so parallel calls run as parallel tasks and
interrupts raised in several of them surface and resume together; the node reads the
caller's state itself, so nothing but the call is written to the checkpoint. One wrapper
around every call

- asks the person to approve calls of the tools the schema lists in ``require_approval``
  (a rejection becomes the tool result, and the run goes on),
- records each sub-assistant result's conversation in ``sub_assistant_states`` in the same
  update that adds its tool message, so the two are checkpointed together, and
- announces every result as a ``tool_result`` event.

Exceptions of tools the model can act on become error tool messages here (the one place
that does it for every tool; the sub-assistant tool reports its own mistakes the same
way). This package's errors are never turned into tool messages: infrastructure failures
(:class:`~assistant_graph.ModelCallError`) and configuration errors end the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from assistant_graph._errors import AssistantGraphError
from assistant_graph._event_source import Origin, publish_messages
from assistant_graph._human import rejection_message, request_approval
from assistant_graph._sub_assistant import record_sub_conversation

__all__ = ["build_tool_node"]

ERROR_TOOL_FAILED = "Error: {error}\nPlease fix your mistakes."

ToolResult = ToolMessage | Command[Any]


def build_tool_node(
    tools: Sequence[BaseTool], *, assistant: str, require_approval: Collection[str] = ()
) -> ToolNode:
    """The ``tools`` node: runs the tool calls sent to it, each as its own task.

    Args:
        tools: The assistant's tools, sub-assistant tools included.
        assistant: The assistant's name (its path when the state has none).
        require_approval: Names of tools whose calls wait for the person's approval.
    """
    gate = _ToolCallGate(assistant, frozenset(require_approval))
    return ToolNode(
        list(tools),
        handle_tool_errors=_tool_error_message,
        wrap_tool_call=gate.wrap,
        awrap_tool_call=gate.awrap,
    )


@dataclass(frozen=True)
class _ToolCallGate:
    """What happens around every tool call: approval before it, recording after it."""

    assistant: str
    """The assistant whose tools these are."""
    require_approval: frozenset[str]
    """Tools whose calls need the person's approval."""

    def wrap(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolResult]
    ) -> ToolResult:
        """Run one tool call (sync)."""
        refusal = self._refusal(request)
        result = refusal if refusal is not None else record_sub_conversation(execute(request))
        return self._announced(request, result)

    async def awrap(
        self,
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        """Run one tool call (async)."""
        refusal = self._refusal(request)
        if refusal is None:
            return self._announced(request, record_sub_conversation(await execute(request)))
        return self._announced(request, refusal)

    def _refusal(self, request: ToolCallRequest) -> ToolMessage | None:
        """The result to give instead of running the call (not approved), or None to run it."""
        if request.tool_call["name"] not in self.require_approval:
            return None
        approval = request_approval(request.tool_call, self._origin(request))
        return None if approval.approved else rejection_message(request.tool_call, approval)

    def _announced(self, request: ToolCallRequest, result: ToolResult) -> ToolResult:
        publish_messages(self._origin(request), _messages_of(result))
        return result

    def _origin(self, request: ToolCallRequest) -> Origin:
        state = request.state if isinstance(request.state, Mapping) else {}
        return Origin.of(state, self.assistant)


def _messages_of(result: ToolResult) -> list[ToolMessage]:
    """The tool messages a result adds (a ``Command`` carries them in its update)."""
    if isinstance(result, ToolMessage):
        return [result]
    update = result.update if isinstance(result.update, Mapping) else {}
    messages = update.get("messages") or []
    return [m for m in messages if isinstance(m, ToolMessage)]


def _tool_error_message(error: Exception) -> str:
    """Tool failures the model can act on become text; this package's errors propagate."""
    if isinstance(error, AssistantGraphError):
        raise error
    return ERROR_TOOL_FAILED.format(error=f"{type(error).__name__}: {error}")
