"""assistant-graph: assistants described in YAML, compiled into LangGraph graphs.

Every assistant marked ``callable`` becomes a tool ``sub_assistant__<name>`` that runs it
as a recursive subgraph and returns its answer with an artifact to resume the conversation.

The public API is what this module exports; the event classes live in
:mod:`assistant_graph.events` and testing support in :mod:`assistant_graph.testing`.
Modules whose names start with ``_`` are internal.
"""

from assistant_graph._budget import Budget
from assistant_graph._catalog import AssistantCatalog, load_assistants
from assistant_graph._compaction import acompact_thread, compact_thread
from assistant_graph._errors import (
    AssistantConfigError,
    AssistantGraphError,
    CheckpointerError,
    MissingConfigError,
    MissingSubgraphDataError,
    ModelCallError,
    SubAssistantToolError,
    ThreadBusyError,
)
from assistant_graph._event_stream import astream_events, stream_events
from assistant_graph._graph import build_assistant_graph, create_sub_assistant_tool
from assistant_graph._message_store import store_messages_once
from assistant_graph._model_calls import RetryPolicy
from assistant_graph._names import (
    SUB_ASSISTANT_PREFIX,
    assistant_name_from_tool_name,
    tool_name_from_assistant,
    tool_name_from_assistant_name,
)
from assistant_graph._persistence import aopen_checkpointer, open_checkpointer
from assistant_graph._schema import AssistantSchema
from assistant_graph._state import AssistantState
from assistant_graph._sub_assistant import (
    AssistantSubgraphArgs,
    AssistantSubgraphArtifact,
    AssistantSubgraphCallTool,
    read_artifact,
)

__all__ = [
    "SUB_ASSISTANT_PREFIX",
    "AssistantCatalog",
    "AssistantConfigError",
    "AssistantGraphError",
    "AssistantSchema",
    "AssistantState",
    "AssistantSubgraphArgs",
    "AssistantSubgraphArtifact",
    "AssistantSubgraphCallTool",
    "Budget",
    "CheckpointerError",
    "MissingConfigError",
    "MissingSubgraphDataError",
    "ModelCallError",
    "RetryPolicy",
    "SubAssistantToolError",
    "ThreadBusyError",
    "acompact_thread",
    "aopen_checkpointer",
    "assistant_name_from_tool_name",
    "astream_events",
    "build_assistant_graph",
    "compact_thread",
    "create_sub_assistant_tool",
    "load_assistants",
    "open_checkpointer",
    "read_artifact",
    "store_messages_once",
    "stream_events",
    "tool_name_from_assistant",
    "tool_name_from_assistant_name",
]
