"""Testing support: a scripted chat model and a scripted OpenAI-compatible server.

Users test their own assistants offline with these, exactly as this project does.
"""

from assistant_graph.testing._openai_scripts import (
    ChatRequest,
    ImageRequest,
    ScriptedReply,
    ScriptedToolCall,
    Usage,
    reply,
    route_by_assistant,
    route_by_system_prompt,
    structured_reply,
    tiny_png_bytes,
    tool_call,
)
from assistant_graph.testing._openai_server import ScriptedOpenAIServer
from assistant_graph.testing._scripted_model import (
    ModelCall,
    Reply,
    ScriptedChatModel,
    ScriptedModels,
    ScriptExhaustedError,
    ai,
    call_sub_assistant,
    call_tool,
    structured_ai,
)

__all__ = [
    "ChatRequest",
    "ImageRequest",
    "ModelCall",
    "Reply",
    "ScriptExhaustedError",
    "ScriptedChatModel",
    "ScriptedModels",
    "ScriptedOpenAIServer",
    "ScriptedReply",
    "ScriptedToolCall",
    "Usage",
    "ai",
    "call_sub_assistant",
    "call_tool",
    "reply",
    "route_by_assistant",
    "route_by_system_prompt",
    "structured_ai",
    "structured_reply",
    "tiny_png_bytes",
    "tool_call",
]
