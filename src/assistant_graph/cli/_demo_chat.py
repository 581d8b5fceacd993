"""``chat --demo``: the example team on scripted models that answer whatever is typed.

For trying the command line without an API key or a model server. No model is called:
the proxy hands each message to the researcher, the researcher looks it up with its real
``lookup_fact`` tool and answers with what it found, and the proxy relays that. Every
turn shows delegation and a tool call in the live tree, on a thread that can be
continued like any other.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from assistant_graph._state import message_text
from assistant_graph._sub_assistant import final_answer, read_artifact
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant, call_tool

__all__ = ["DEMO_CHAT_BANNER", "DEMO_CHAT_TEAM", "demo_chat_models"]

DEMO_CHAT_TEAM = ("proxy", "researcher")
"""The assistants the scripted chat needs (the example team has them)."""
DEMO_CHAT_BANNER = (
    "This is a scripted demo chat: no model is called. The proxy hands each message to the "
    "researcher, who looks it up with lookup_fact (try: How wide is Mars?). For real "
    "answers set OPENAI_API_KEY, or OPENAI_BASE_URL for a local model server."
)
RELAY = "The researcher found: {answer}"
HANDING_ON = "I'll ask the researcher."
REPLIES_PER_ASSISTANT = 10_000
"""How many model calls the scripted chat answers (each by the same function)."""


def demo_chat_models() -> ScriptedModels:
    """Scripted models of the proxy and the researcher that answer any message."""
    replies = {"proxy": _proxy, "researcher": _researcher}
    return ScriptedModels(
        {name: [reply] * REPLIES_PER_ASSISTANT for name, reply in replies.items()}
    )


def _proxy(call: ModelCall) -> AIMessage:
    """A new message goes to the researcher; the researcher's answer goes to the person."""
    last = call.last_message
    if isinstance(last, ToolMessage):
        artifact = read_artifact(last)
        answer = final_answer(artifact["response_messages"]) if artifact else message_text(last)
        return ai(RELAY.format(answer=answer))
    return ai(HANDING_ON, tool_calls=[call_sub_assistant("researcher", _text(call))])


def _researcher(call: ModelCall) -> AIMessage:
    """Look the question up; answer with what the tool found."""
    last = call.last_message
    if isinstance(last, ToolMessage):
        return ai(message_text(last))
    return ai(tool_calls=[call_tool("lookup_fact", topic=_text(call))])


def _text(call: ModelCall) -> str:
    """The latest user message's text, on one line."""
    users = [m for m in call.messages if isinstance(m, HumanMessage)]
    return " ".join(message_text(users[-1]).split()) if users else ""
