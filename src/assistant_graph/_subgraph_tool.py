"""The sub-assistant tool: calling another assistant as a recursive subgraph.

Every callable assistant becomes a tool ``sub_assistant__<name>`` (the naming rule is in
:mod:`assistant_graph._names`). The model sees four arguments of
:class:`~assistant_graph._sub_assistant_input.AssistantSubgraphArgs`; the caller's messages,
step budget, summary, sub-conversations and path are injected from the caller's graph state
and hidden from it. Calling the tool runs the sub-assistant's graph with the caller's config,
so callbacks, streaming and the checkpointer reach inside at any depth, and returns the
answer as content plus an :class:`AssistantSubgraphArtifact`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict

from langchain_core.callbacks import (
    AsyncCallbackManagerForToolRun,
    CallbackManagerForToolRun,
)
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import patch_config
from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field, ValidationError

from assistant_graph._errors import MissingSubgraphDataError, SubAssistantToolError
from assistant_graph._names import (
    SUB_ASSISTANT_PREFIX,
    SUBGRAPH_TOOL_TAG,
    assistant_name_from_tool_name,
    is_sub_assistant_tool_name,
    tool_name_from_assistant,
    tool_name_from_assistant_name,
)
from assistant_graph._schema import AssistantSchema
from assistant_graph._state import SubAssistantStateData, coerce_messages, message_text
from assistant_graph._sub_assistant_input import AssistantSubgraphArgs, generate_input_content
from assistant_graph._usage import UsageSummary, usage_of_messages

# The tool-name rules, the tool's arguments and ``message_text`` moved to their own modules;
# they stay importable from here, as they were.
__all__ = [
    "DEFAULT_MAX_DEPTH",
    "SUBGRAPH_TOOL_TAG",
    "SUB_ASSISTANT_PREFIX",
    "AssistantSubgraphArgs",
    "AssistantSubgraphArtifact",
    "AssistantSubgraphCallTool",
    "SubgraphInfo",
    "SubgraphProvider",
    "assistant_name_from_tool_name",
    "generate_input_content",
    "is_sub_assistant_tool_name",
    "message_text",
    "read_artifact",
    "tool_name_from_assistant",
    "tool_name_from_assistant_name",
]

DEFAULT_MAX_DEPTH = 5
"""How many levels of sub-assistant calls may nest below the root assistant."""

OUT_OF_STEPS_MARKER = "assistant_graph_out_of_steps"
"""``response_metadata`` key of the AI message that says a run stopped incomplete."""

# Texts the models see. Each is defined once, here.
RESULT_UID_NOTE = (
    "(conversation_uid: {uid}; to continue this conversation with {assistant}, "
    'call {tool} again with resume_conversation_uid="{uid}".)'
)
RESULT_INCOMPLETE_NOTE = (
    "[INCOMPLETE] {assistant} stopped before finishing: it used all {steps} model calls it "
    'was allowed. To let it continue, call {tool} again with resume_conversation_uid="{uid}".'
)
RESULT_CUT_NOTE = (
    "\n[... cut: the answer has {total} characters and only the first {shown} are shown here. "
    'To get the rest, call {tool} again with resume_conversation_uid="{uid}" and ask for it.]'
)
NO_ANSWER = "(no answer yet)"
ERROR_UNKNOWN_UID = (
    "there is no conversation with uid {uid!r} to resume in this conversation{known}. "
    "Pass resume_conversation_uid=null to start a new conversation."
)
ERROR_UID_OF_OTHER_ASSISTANT = (
    "conversation {uid!r} is with assistant {owner!r}, not {assistant!r}; "
    "resume it with {owner_tool} or start a new conversation with resume_conversation_uid=null."
)
ERROR_TOO_DEEP = (
    "cannot call {assistant}: sub-assistant calls may nest at most {max_depth} levels deep "
    "and this call would be level {depth} (path: {path}). Answer with what you have instead."
)


class AssistantSubgraphArtifact(TypedDict):
    """The artifact of a sub-assistant tool result."""

    input: str
    """The user message generated for the sub-assistant."""
    response_messages: list[BaseMessage]
    """Everything the sub-assistant added to its conversation in this call."""
    returning_incomplete: bool
    """Whether the sub-assistant stopped before finishing (out of steps)."""
    sub_assistant_state_data: SubAssistantStateData | None
    """What is needed to resume the conversation later. The caller's graph moves it into
    ``sub_assistant_states[uid]``, so the tool message it keeps in its thread carries None
    here: the sub-conversation is stored once, not once per call (see
    :func:`~assistant_graph._tool_execution.record_sub_conversation`)."""
    subgraph_uid: str
    """The conversation uid, to pass back as ``resume_conversation_uid``."""
    assistant: str
    """The name of the sub-assistant."""
    usage: UsageSummary
    """Tokens used by this call: the sub-assistant's model calls and those of its own
    sub-assistants, per assistant and per path (paths start at this sub-assistant)."""


@dataclass(frozen=True)
class SubgraphInfo:
    """The sub-conversation a call continues (empty for a new conversation)."""

    subgraph_uid: str
    """The conversation uid."""
    previous_messages: list[BaseMessage]
    """The conversation so far."""
    summary_of_conversation: str | None
    """The sub-assistant's summary of it."""
    sub_assistant_states: dict[str, SubAssistantStateData]
    """The sub-conversations the sub-assistant opened within it."""
    summarized_message_count: int = 0
    """How many leading ``previous_messages`` the summary covers."""


class SubgraphProvider(Protocol):
    """Gives the compiled graph of an assistant, to run as a subgraph."""

    def subgraph(self, name: str) -> Runnable[Any, Any]:
        """The graph of assistant ``name``, compiled to inherit the caller's checkpointer."""
        ...


@dataclass(frozen=True)
class _PreparedCall:
    """A sub-assistant call ready to run: the graph input and the config to run it with."""

    graph_input: dict[str, Any]
    config: RunnableConfig
    input_message: HumanMessage
    uid: str

    @property
    def input_count(self) -> int:
        """How many messages the sub-conversation holds before this call's response.

        The response is found by position, not by message id: when a call re-runs after
        an interrupt, the subgraph resumes its saved state and the new input is ignored.
        """
        return len(self.graph_input["messages"])


class AssistantSubgraphCallTool(BaseTool):
    """Calls one assistant of a catalog as a subgraph of the calling assistant's graph.

    Invoke it with a full tool call (``{"type": "tool_call", "id": ..., "args": ...}``), as
    LangGraph's ``ToolNode`` does; the hidden arguments come from the caller's state.
    """

    name: str = Field(description="Name of the tool: sub_assistant__<assistant name>.")
    """The tool name the model calls; must be ``sub_assistant__<assistant_config_id>``."""
    description: str = Field(
        description="What the sub-assistant does and how to use it (the tool description)."
    )
    """The sub-assistant's description, as the calling model sees it."""
    args_schema: type[BaseModel] = AssistantSubgraphArgs
    """The arguments (four visible to the model, the rest injected)."""
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    """The tool returns the answer as content and an :class:`AssistantSubgraphArtifact`."""
    tags: list[str] | None = Field(default_factory=lambda: [SUBGRAPH_TOOL_TAG])
    """Tags of the tool's callback runs."""
    handle_tool_error: bool = True
    """Model mistakes (``SubAssistantToolError``) become error tool messages."""
    handle_validation_error: bool | str | Callable[[Any], str] | None = Field(
        default_factory=lambda: _describe_validation_error
    )
    """Invalid arguments from the model become error tool messages naming the fields."""

    assistant_config_id: str
    """The sub-assistant's name in the catalog."""
    assistant_schema: AssistantSchema
    """The sub-assistant's schema."""
    graphs: Any
    """A :class:`SubgraphProvider` that gives the sub-assistant's compiled graph."""
    max_depth: int = DEFAULT_MAX_DEPTH
    """How many levels of sub-assistant calls may nest below the root."""

    def _run(
        self,
        message_to_assistant: str,
        config: RunnableConfig,
        run_manager: CallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> tuple[str, AssistantSubgraphArtifact]:
        call = self._prepare(message_to_assistant, kwargs, config)
        output = self.graphs.subgraph(self.assistant_config_id).invoke(
            call.graph_input, call.config
        )
        return self._finish(call, output)

    async def _arun(
        self,
        message_to_assistant: str,
        config: RunnableConfig,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> tuple[str, AssistantSubgraphArtifact]:
        call = self._prepare(message_to_assistant, kwargs, config)
        output = await self.graphs.subgraph(self.assistant_config_id).ainvoke(
            call.graph_input, call.config
        )
        return self._finish(call, output)

    def _prepare(
        self, message: str, kwargs: Mapping[str, Any], config: RunnableConfig
    ) -> _PreparedCall:
        args = AssistantSubgraphArgs.model_construct(message_to_assistant=message, **kwargs)
        path = [*args.parent_assistant_path, self.assistant_config_id]
        self._check_depth(path)
        info = self._subgraph_info(args)
        input_message = HumanMessage(content=generate_input_content(args), id=str(uuid.uuid4()))
        budget = self.assistant_schema.max_steps
        if args.parent_steps_remaining is not None:
            budget = max(1, min(budget, args.parent_steps_remaining))
        graph_input = {
            "messages": [*info.previous_messages, input_message],
            "summary_of_conversation": info.summary_of_conversation,
            "summarized_message_count": info.summarized_message_count,
            "sub_assistant_states": info.sub_assistant_states,
            "step_limit": budget,
            "assistant_path": path,
            "conversation_uid": info.subgraph_uid,
            "parent_tool_call_id": args.tool_call_id,
        }
        metadata = {"assistant_path": path, "parent_tool_call_id": args.tool_call_id}
        summarizes = self.assistant_schema.summarize_after_tokens is not None
        limit = recursion_limit_for(budget, summarizes=summarizes)
        sub_config = patch_config(config, recursion_limit=limit)
        sub_config["metadata"] = {**sub_config.get("metadata", {}), **metadata}
        return _PreparedCall(graph_input, sub_config, input_message, info.subgraph_uid)

    def _check_depth(self, path: Sequence[str]) -> None:
        depth = len(path) - 1
        if depth > self.max_depth:
            raise SubAssistantToolError(
                ERROR_TOO_DEEP.format(
                    assistant=self.assistant_config_id,
                    max_depth=self.max_depth,
                    depth=depth,
                    path=" > ".join(path),
                )
            )

    def _subgraph_info(self, args: AssistantSubgraphArgs) -> SubgraphInfo:
        uid = args.resume_conversation_uid
        if uid is None:
            return SubgraphInfo(_new_uid(self.assistant_config_id), [], None, {})
        states = args.sub_assistant_states or {}
        data = states.get(uid)
        if data is None:
            known = [
                key
                for key, value in states.items()
                if value["assistant"] == self.assistant_config_id
            ]
            known_text = (
                f" (conversations with this assistant: {', '.join(known)})" if known else ""
            )
            raise MissingSubgraphDataError(ERROR_UNKNOWN_UID.format(uid=uid, known=known_text))
        if data["assistant"] != self.assistant_config_id:
            raise MissingSubgraphDataError(
                ERROR_UID_OF_OTHER_ASSISTANT.format(
                    uid=uid,
                    owner=data["assistant"],
                    assistant=self.assistant_config_id,
                    owner_tool=tool_name_from_assistant_name(data["assistant"]),
                )
            )
        return SubgraphInfo(
            subgraph_uid=uid,
            previous_messages=coerce_messages(data["messages"]),
            summary_of_conversation=data.get("summary_of_conversation"),
            sub_assistant_states=dict(data.get("sub_assistant_states") or {}),
            summarized_message_count=data.get("summarized_message_count") or 0,
        )

    def _finish(
        self, call: _PreparedCall, output: Mapping[str, Any]
    ) -> tuple[str, AssistantSubgraphArtifact]:
        messages = coerce_messages(output["messages"])
        response = messages[call.input_count :]
        uid = output.get("conversation_uid") or call.uid
        incomplete = bool(output.get("incomplete"))
        state_data = SubAssistantStateData(
            assistant=self.assistant_config_id,
            messages=messages,
            summary_of_conversation=output.get("summary_of_conversation"),
            summarized_message_count=output.get("summarized_message_count") or 0,
            sub_assistant_states=dict(output.get("sub_assistant_states") or {}),
            incomplete=incomplete,
        )
        artifact = AssistantSubgraphArtifact(
            input=message_text(call.input_message),
            response_messages=response,
            returning_incomplete=incomplete,
            sub_assistant_state_data=state_data,
            subgraph_uid=uid,
            assistant=self.assistant_config_id,
            usage=usage_of_messages(self.assistant_config_id, response, _nested_usage(response)),
        )
        return self._content(response, uid, incomplete), artifact

    def _content(self, response: Sequence[BaseMessage], uid: str, incomplete: bool) -> str:
        answer = final_answer(response) or NO_ANSWER
        notes = dict(assistant=self.assistant_config_id, tool=self.name, uid=uid)
        cap = self.assistant_schema.max_result_chars
        if cap is not None and len(answer) > cap:
            answer = answer[:cap] + RESULT_CUT_NOTE.format(total=len(answer), shown=cap, **notes)
        if incomplete:
            note = RESULT_INCOMPLETE_NOTE.format(steps=self.assistant_schema.max_steps, **notes)
        else:
            note = RESULT_UID_NOTE.format(**notes)
        return f"{answer}\n\n{note}"


def final_answer(messages: Sequence[BaseMessage]) -> str:
    """The text of the last AI message the model wrote (not a stop notice) with any text."""
    for message in reversed(messages):
        if isinstance(message, AIMessage) and not is_out_of_steps_notice(message):
            text = message_text(message).strip()
            if text:
                return text
    return ""


def is_out_of_steps_notice(message: BaseMessage) -> bool:
    """Whether ``message`` is the notice that a run stopped out of steps."""
    return bool(message.response_metadata.get(OUT_OF_STEPS_MARKER))


def recursion_limit_for(max_model_calls: int, *, summarizes: bool = False) -> int:
    """A LangGraph recursion limit that a run of that many model calls never reaches.

    Each model call takes at most two supersteps (model, tools), or three when the
    assistant summarizes long conversations (a ``summarize`` step before the model call).
    """
    return (3 if summarizes else 2) * max_model_calls + 10


def read_artifact(message: BaseMessage) -> AssistantSubgraphArtifact | None:
    """The sub-assistant artifact of a tool message, or None if it is not one.

    Accepts artifacts read back from a checkpoint, whose messages may be plain dicts.
    """
    artifact = getattr(message, "artifact", None)
    if not isinstance(artifact, Mapping) or "subgraph_uid" not in artifact:
        return None
    assistant = str(artifact.get("assistant") or "")
    return AssistantSubgraphArtifact(
        input=artifact["input"],
        response_messages=coerce_messages(artifact.get("response_messages") or []),
        returning_incomplete=bool(artifact["returning_incomplete"]),
        sub_assistant_state_data=_state_data(artifact.get("sub_assistant_state_data")),
        subgraph_uid=artifact["subgraph_uid"],
        assistant=assistant,
        usage=artifact.get("usage") or usage_of_messages(assistant, [], []),
    )


def _state_data(data: Mapping[str, Any] | None) -> SubAssistantStateData | None:
    if data is None:
        return None
    restored = dict(data)
    restored["messages"] = coerce_messages(restored.get("messages") or [])
    state_data: SubAssistantStateData = SubAssistantStateData(**restored)  # type: ignore[typeddict-item]
    return state_data


def _nested_usage(messages: Sequence[BaseMessage]) -> list[Mapping[str, Any] | None]:
    """The usage summaries in the sub-assistant artifacts among ``messages``."""
    return [
        message.artifact.get("usage")
        for message in messages
        if isinstance(message, ToolMessage) and isinstance(message.artifact, Mapping)
    ]


def _new_uid(assistant: str) -> str:
    return f"{assistant}-{uuid.uuid4().hex[:8]}"


def _describe_validation_error(error: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
        for detail in error.errors(include_url=False)
    )
    return f"Invalid arguments: {problems}. Fix them and call the tool again."
