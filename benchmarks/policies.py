"""Scripted models that answer by rule, so a benchmark can run any number of times.

``ScriptedChatModel`` takes its replies from a ``script`` object with a
``next_reply(messages, tools)`` method. The package's own script is a finite list that
records every call (right for tests, a growing list in a benchmark); the policies here
compute each reply from the conversation instead and keep nothing, so the model costs
the same on the first run and the thousandth. Every framework measured gets the same
policy class, so model cost is identical across columns.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from langchain_core.messages import AIMessage, BaseMessage, ToolCall, ToolMessage

from assistant_graph import AssistantCatalog
from assistant_graph.testing import ScriptedChatModel, call_sub_assistant, call_tool

__all__ = [
    "ANSWER",
    "DelegateOnce",
    "chain_catalog",
    "deepagents_task_call",
    "fan_out_catalog",
    "langchain_tool_call",
    "last_uid",
    "level_name",
    "scripted",
    "sub_assistant_call",
]

ANSWER = "Done: the part you asked for is finished."
"""What every policy answers once its work is done."""
TASK = "Do your part of the work and report back."
"""The message every delegation sends."""

_UID = re.compile(r"conversation_uid: ([\w-]+);")
_ids = itertools.count(1)

CallMaker = Callable[[Sequence[BaseMessage]], list[ToolCall]]
"""Makes the tool calls of a delegating reply from the conversation so far."""


@dataclass(frozen=True)
class DelegateOnce:
    """Answers a new request with tool calls, and the tool results with ``answer``.

    With ``calls=None`` it answers at once (a leaf, or a run without delegation).
    """

    calls: CallMaker | None = None
    """The tool calls to make for a new request (None: answer directly)."""
    answer: str = ANSWER
    """The final answer."""

    def next_reply(self, messages: Sequence[BaseMessage], tools: Sequence[str]) -> AIMessage:
        """The reply to ``messages`` (the ``ScriptedChatModel`` script protocol)."""
        if self.calls is None or isinstance(messages[-1], ToolMessage):
            return AIMessage(content=self.answer)
        return AIMessage(content="", tool_calls=self.calls(messages))


def scripted(policy: DelegateOnce, *, latency: float = 0.0) -> ScriptedChatModel:
    """A scripted chat model answering by ``policy``, each call taking ``latency`` s."""
    return ScriptedChatModel(script=policy, latency=latency)


def level_name(level: int) -> str:
    """Name of the assistant at ``level`` of a delegation chain (0 is the root)."""
    return f"level{level}"


def sub_assistant_call(assistant: str, **args: object) -> ToolCall:
    """A call of this library's ``sub_assistant__<assistant>`` tool."""
    return call_sub_assistant(assistant, TASK, **args)  # type: ignore[arg-type]


def langchain_tool_call(tool_name: str) -> ToolCall:
    """A call of a hand-written ``@tool`` that runs a sub-agent."""
    return call_tool(tool_name, id=f"lc_{next(_ids)}", request=TASK)


def deepagents_task_call(subagent: str) -> ToolCall:
    """A call of deepagents' ``task`` tool."""
    return call_tool("task", id=f"da_{next(_ids)}", description=TASK, subagent_type=subagent)


def last_uid(messages: Sequence[BaseMessage]) -> str | None:
    """The conversation uid in the last sub-assistant result, read from its text.

    Read from the content (which the model sees), not the artifact, so it works with
    every storage variant, including those that slim the artifact down.
    """
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            found = _UID.findall(str(message.content))
            if found:
                return found[-1]
    return None


def chain_catalog(depth: int) -> AssistantCatalog:
    """Assistants ``level0`` .. ``level<depth>``, each able to call the next one."""
    schemas = [
        {
            "name": level_name(level),
            "description": f"Handles level {level} of the work.",
            "instructions": f"You handle level {level}. Delegate the rest when you can.",
            "sub_assistants": [level_name(level + 1)] if level < depth else [],
            "callable": level > 0,
        }
        for level in range(depth + 1)
    ]
    return AssistantCatalog.from_schemas(schemas)


def fan_out_catalog() -> AssistantCatalog:
    """A ``boss`` that may call ``worker`` (any number of times in one turn)."""
    return AssistantCatalog.from_schemas(
        [
            {
                "name": "boss",
                "description": "Splits the work.",
                "instructions": "You split the work between workers.",
                "sub_assistants": ["worker"],
                "budget": {"max_steps": 4},
            },
            {
                "name": "worker",
                "description": "Does one piece of the work.",
                "instructions": "You do one piece of the work.",
                "callable": True,
            },
        ]
    )
