"""Testing support: a scripted chat model and a scripted OpenAI-compatible server.

Users test their own assistants offline with these, exactly as this project does.
"""

from assistant_graph.testing.scripted_model import (
    ModelCall,
    Reply,
    ScriptedChatModel,
    ScriptedModels,
    ScriptExhaustedError,
    ai,
    call_sub_assistant,
    call_tool,
)

__all__ = [
    "ModelCall",
    "Reply",
    "ScriptExhaustedError",
    "ScriptedChatModel",
    "ScriptedModels",
    "ai",
    "call_sub_assistant",
    "call_tool",
]
