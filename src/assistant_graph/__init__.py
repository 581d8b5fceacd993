"""assistant-graph: assistants described in YAML, compiled into LangGraph graphs.

Every assistant marked ``callable`` becomes a tool ``sub_assistant__<name>`` that runs it
as a recursive subgraph and returns its answer with an artifact to resume the conversation.
"""

from assistant_graph.catalog import AssistantCatalog, load_assistants
from assistant_graph.compaction import compact_thread
from assistant_graph.errors import (
    AssistantConfigError,
    AssistantGraphError,
    CheckpointerError,
    ConfigProblem,
    MissingConfigError,
    MissingSubgraphDataError,
    ModelCallError,
    SubAssistantToolError,
)
from assistant_graph.event_stream import astream_events, stream_events
from assistant_graph.events import (
    AgentMessageEvent,
    AssistantEvent,
    ErrorEvent,
    FinalEvent,
    InputRequestEvent,
    RetryEvent,
    SubAssistantEndEvent,
    SubAssistantStartEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from assistant_graph.graph import (
    AssistantGraphBuilder,
    build_assistant_graph,
    create_sub_assistant_tool,
)
from assistant_graph.human import ASK_USER_TOOL_NAME, Approval, InputRequestPayload, parse_approval
from assistant_graph.model_calls import RetryPolicy
from assistant_graph.models import ModelOverride
from assistant_graph.names import (
    SUB_ASSISTANT_PREFIX,
    assistant_name_from_tool_name,
    tool_name_from_assistant,
    tool_name_from_assistant_name,
)
from assistant_graph.persistence import open_checkpointer
from assistant_graph.schema import AssistantSchema, assistant_json_schema, write_json_schema
from assistant_graph.state import AssistantState, SubAssistantStateData
from assistant_graph.sub_assistant_input import AssistantSubgraphArgs, generate_input_content
from assistant_graph.subgraph_tool import (
    AssistantSubgraphArtifact,
    AssistantSubgraphCallTool,
    SubgraphInfo,
    read_artifact,
)
from assistant_graph.tool_execution import record_sub_conversation
from assistant_graph.usage import TokenUsage, UsageSummary

__all__ = [
    "ASK_USER_TOOL_NAME",
    "SUB_ASSISTANT_PREFIX",
    "AgentMessageEvent",
    "Approval",
    "AssistantCatalog",
    "AssistantConfigError",
    "AssistantEvent",
    "AssistantGraphBuilder",
    "AssistantGraphError",
    "AssistantSchema",
    "AssistantState",
    "AssistantSubgraphArgs",
    "AssistantSubgraphArtifact",
    "AssistantSubgraphCallTool",
    "CheckpointerError",
    "ConfigProblem",
    "ErrorEvent",
    "FinalEvent",
    "InputRequestEvent",
    "InputRequestPayload",
    "MissingConfigError",
    "MissingSubgraphDataError",
    "ModelCallError",
    "ModelOverride",
    "RetryEvent",
    "RetryPolicy",
    "SubAssistantEndEvent",
    "SubAssistantStartEvent",
    "SubAssistantStateData",
    "SubAssistantToolError",
    "SubgraphInfo",
    "TokenEvent",
    "TokenUsage",
    "ToolCallEvent",
    "ToolResultEvent",
    "UsageSummary",
    "assistant_json_schema",
    "assistant_name_from_tool_name",
    "astream_events",
    "build_assistant_graph",
    "compact_thread",
    "create_sub_assistant_tool",
    "generate_input_content",
    "load_assistants",
    "open_checkpointer",
    "parse_approval",
    "read_artifact",
    "record_sub_conversation",
    "stream_events",
    "tool_name_from_assistant",
    "tool_name_from_assistant_name",
    "write_json_schema",
]
