"""One sub-assistant call, whole: from the caller's tool call to the recorded conversation.

Every callable assistant is offered to its callers as a tool ``sub_assistant__<name>``
(:class:`AssistantSubgraphCallTool`; the naming rule is in :mod:`._names`). One call goes
through these steps, in this order, all in this module:

1. **Arguments.** :class:`AssistantSubgraphArgs`: the four the model fills, validated by
   pydantic (an invalid call becomes an error tool message naming the fields), and what
   the caller's graph state contributes, injected by LangGraph and hidden from the model:
   its messages, steps left, summary, sub-conversations and assistant path.
2. **Checks against the caller's state.** :func:`check_call`: depth, forwarded context ids
   that exist, a resumable uid of this assistant, and no second call of the same turn
   resuming the same uid. A failed check is a :class:`SubAssistantToolError`, which the
   tool returns as an error tool message the model can act on.
3. **Input.** :func:`generate_input_content` builds the one user message the sub-assistant
   receives; the resumed conversation (if any) comes before it; its budget is capped by
   what the caller has left of each limit (:func:`._budget.callee_limits`).
4. **Run.** The sub-assistant's compiled graph runs with the caller's config, so callbacks,
   streaming and the checkpointer reach inside at any depth. ``sub_assistant_start`` and
   ``sub_assistant_end`` are emitted here, where the run starts and ends.
5. **Output.** The answer as content (with the uid to resume it, a note when it stopped
   incomplete or was cut), and an :class:`AssistantSubgraphArtifact`. A typed
   sub-assistant's answer is its ``structured_response`` as JSON text (see
   :mod:`._typed_results`).
6. **Recording.** :func:`record_sub_conversation` moves the conversation from the artifact
   into the caller's ``sub_assistant_states[uid]``, in the same update as the tool message.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Protocol, TypedDict, runtime_checkable

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import patch_config
from langchain_core.tools import BaseTool, InjectedToolCallId
from langgraph.errors import GraphBubbleUp
from langgraph.prebuilt import InjectedState
from langgraph.types import Command
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant_graph import _budget
from assistant_graph._errors import MissingSubgraphDataError, SubAssistantToolError
from assistant_graph._event_source import Origin, emit
from assistant_graph._names import (
    SUBGRAPH_TOOL_TAG,
    is_sub_assistant_tool_name,
    tool_name_from_assistant_name,
)
from assistant_graph._problems import one_line
from assistant_graph._schema import AssistantSchema
from assistant_graph._state import SubAssistantStateData, coerce_messages, message_text
from assistant_graph._typed_results import is_output_feedback, result_text
from assistant_graph._usage import UsageSummary, usage_of_messages
from assistant_graph.events import SubAssistantEndEvent, SubAssistantStartEvent

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "AssistantSubgraphArgs",
    "AssistantSubgraphArtifact",
    "AssistantSubgraphCallTool",
    "SubgraphInfo",
    "SubgraphProvider",
    "check_call",
    "final_answer",
    "generate_input_content",
    "read_artifact",
    "record_sub_conversation",
]

DEFAULT_MAX_DEPTH = 5
"""How many levels of sub-assistant calls may nest below the root assistant."""

# Texts the models see. Each is defined once, here.
INPUT_PREVIOUS_MESSAGES = "Previous messages of the conversation:"
INPUT_CONTEXTS = "Context from earlier tool results:"
INPUT_SUMMARY = "Summary of the conversation so far:"
RESULT_UID_NOTE = (
    "(conversation_uid: {uid}; to continue this conversation with {assistant}, "
    'call {tool} again with resume_conversation_uid="{uid}".)'
)
RESULT_CUT_NOTE = (
    "\n[... cut: the answer has {total} characters and only the first {shown} are shown here. "
    'To get the rest, call {tool} again with resume_conversation_uid="{uid}" and ask for it.]'
)
NO_ANSWER = "(no answer yet)"
ERROR_UNKNOWN_CONTEXT = (
    "pass_contexts names tool call ids with no tool result in this conversation: {missing}. "
    "Known ids: {known}."
)
ERROR_UNKNOWN_UID = (
    "there is no conversation with uid {uid!r} to resume in this conversation{known}. "
    "Pass resume_conversation_uid=null to start a new conversation."
)
ERROR_UID_OF_OTHER_ASSISTANT = (
    "conversation {uid!r} is with assistant {owner!r}, not {assistant!r}; "
    "resume it with {owner_tool} or start a new conversation with resume_conversation_uid=null."
)
ERROR_DUPLICATE_RESUME = (
    "Error: another call in this same turn already resumes conversation {uid!r}; a "
    "conversation can only be continued by one call at a time. Wait for that result, then "
    "resume again if needed."
)
ERROR_TOO_DEEP = (
    "cannot call {assistant}: sub-assistant calls may nest at most {max_depth} levels deep "
    "and this call would be level {depth} (path: {path}). Answer with what you have instead."
)
ERROR_INVALID_ARGUMENTS = "Invalid arguments: {problems}. Fix them and call the tool again."


# 1. Arguments ----------------------------------------------------------------------------


class AssistantSubgraphArgs(BaseModel):
    """Arguments of every sub-assistant tool.

    The model sees only the first four; the rest are injected from the caller's graph
    state (``InjectedState``) and the tool call id, and are hidden from the model. They
    are the one list of what a caller passes to the sub-assistants it calls.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    message_to_assistant: str = Field(
        description=(
            "Message to pass as latest message to the sub-assistant. E.g., instructions on "
            "what the sub-assistant should do, including relevant information (that isn't "
            "passed via previous messages/contexts)."
        )
    )
    """Instructions for the sub-assistant, with what it needs that is not passed otherwise."""

    pass_num_previous_messages: int = Field(
        default=0,
        ge=0,
        description=(
            "Number of previous messages from the current conversation to pass to the "
            "sub-assistant, counting the current user message. (This includes only "
            "user/assistant messages, not tool calls, tool responses or system messages.)"
        ),
    )
    """How many of the caller's most recent user/assistant messages to forward."""

    pass_contexts: list[str] = Field(
        default_factory=list,
        description=(
            "The call_ids of any contexts (i.e. tool responses) in the current conversation "
            "to pass on to the sub-assistant."
        ),
    )
    """Tool call ids whose tool results are forwarded."""

    resume_conversation_uid: str | None = Field(
        default=None,
        description=(
            "The uid of an earlier conversation with this sub-assistant to continue (if the "
            "current request is relevant to that previous call). null starts a new "
            "conversation."
        ),
    )
    """Continue an earlier conversation with the same sub-assistant instead of a new one."""

    parent_conv_messages: Annotated[list[AnyMessage], InjectedState("messages")] = Field(
        default_factory=list
    )
    """Injected: the caller's conversation."""

    parent_steps_remaining: Annotated[int | None, InjectedState("steps_remaining")] = None
    """Injected: model calls the caller has left; the sub-assistant gets no more."""

    parent_budget: Annotated[dict[str, Any] | None, InjectedState("budget")] = None
    """Injected: the caller's run limits; the sub-assistant gets no more than is left."""

    parent_summary_of_conversation: Annotated[
        str | None, InjectedState("summary_of_conversation")
    ] = None
    """Injected: the caller's summary of its conversation, forwarded if present."""

    sub_assistant_states: Annotated[dict[str, Any], InjectedState("sub_assistant_states")] = Field(
        default_factory=dict
    )
    """Injected: the sub-conversations the caller has opened, by uid."""

    parent_assistant_path: Annotated[list[str], InjectedState("assistant_path")] = Field(
        default_factory=list
    )
    """Injected: the assistant names from the root to the caller."""

    parent_tool_call_id: Annotated[str | None, InjectedState("parent_tool_call_id")] = None
    """Injected: the tool call that opened the caller (None for the root)."""

    tool_call_id: Annotated[str, InjectedToolCallId]
    """Injected: the id of the tool call that opens this sub-assistant run."""


class AssistantSubgraphArtifact(TypedDict):
    """The artifact of a sub-assistant tool result."""

    input: str
    """The user message generated for the sub-assistant."""
    response_messages: list[BaseMessage]
    """Everything the sub-assistant added to its conversation in this call."""
    returning_incomplete: bool
    """Whether the sub-assistant stopped before finishing (a budget ran out)."""
    budget_exhausted: NotRequired[dict[str, Any] | None]
    """Which budget ran out (``{"kind": "steps"|"tokens"|"cost"|"time", "limit", "used"}``),
    if the sub-assistant stopped incomplete."""
    sub_assistant_state_data: SubAssistantStateData | None
    """What is needed to resume the conversation later. The caller's graph moves it into
    ``sub_assistant_states[uid]`` (:func:`record_sub_conversation`), so the tool message it
    keeps in its thread carries None here: the sub-conversation is stored once, not once
    per call."""
    subgraph_uid: str
    """The conversation uid, to pass back as ``resume_conversation_uid``."""
    assistant: str
    """The name of the sub-assistant."""
    usage: UsageSummary
    """Tokens and cost of this call: the sub-assistant's model calls and those of its own
    sub-assistants, per assistant and per path (paths start at this sub-assistant)."""
    structured_response: Any
    """A typed sub-assistant's result (``output_schema``), validated, as JSON data; None
    for an untyped one, or when it stopped before giving a valid result."""


# 2. Checks against the caller's state ----------------------------------------------------


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


def check_call(args: AssistantSubgraphArgs, *, assistant: str, max_depth: int) -> SubgraphInfo:
    """Check a call of ``assistant`` against its caller's state; the conversation it continues.

    Raises:
        SubAssistantToolError: If the call would nest deeper than ``max_depth``, forwards a
            context id with no tool result, or resumes the same uid as an earlier call of
            the same turn.
        MissingSubgraphDataError: If the uid to resume is unknown or another assistant's.
    """
    _check_depth([*args.parent_assistant_path, assistant], assistant, max_depth)
    _contexts(coerce_messages(args.parent_conv_messages), args.pass_contexts)
    uid = args.resume_conversation_uid
    if uid is None:
        return SubgraphInfo(f"{assistant}-{uuid.uuid4().hex[:8]}", [], None, {})
    _check_single_resume(args.parent_conv_messages, args.tool_call_id, uid)
    return _resumable(args.sub_assistant_states or {}, uid, assistant)


def _check_depth(path: Sequence[str], assistant: str, max_depth: int) -> None:
    depth = len(path) - 1
    if depth > max_depth:
        raise SubAssistantToolError(
            ERROR_TOO_DEEP.format(
                assistant=assistant, max_depth=max_depth, depth=depth, path=" > ".join(path)
            )
        )


def _check_single_resume(messages: Sequence[Any], call_id: str, uid: str) -> None:
    """Refuse a call if an earlier call in the same model message resumes ``uid`` too."""
    for earlier in _calls_before(coerce_messages(messages), call_id):
        if is_sub_assistant_tool_name(earlier["name"]) and (
            earlier["args"].get("resume_conversation_uid") == uid
        ):
            raise SubAssistantToolError(ERROR_DUPLICATE_RESUME.format(uid=uid))


def _calls_before(messages: Sequence[BaseMessage], call_id: str) -> list[dict[str, Any]]:
    """The tool calls made before ``call_id`` in the model message that made it."""
    for message in reversed(messages):
        if isinstance(message, AIMessage) and any(c["id"] == call_id for c in message.tool_calls):
            ids = [c["id"] for c in message.tool_calls]
            return [dict(c) for c in message.tool_calls[: ids.index(call_id)]]
    return []


def _resumable(states: Mapping[str, Any], uid: str, assistant: str) -> SubgraphInfo:
    data = states.get(uid)
    if data is None:
        known = [key for key, value in states.items() if value["assistant"] == assistant]
        known_text = f" (conversations with this assistant: {', '.join(known)})" if known else ""
        raise MissingSubgraphDataError(ERROR_UNKNOWN_UID.format(uid=uid, known=known_text))
    if data["assistant"] != assistant:
        raise MissingSubgraphDataError(
            ERROR_UID_OF_OTHER_ASSISTANT.format(
                uid=uid,
                owner=data["assistant"],
                assistant=assistant,
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


# 3. Input ---------------------------------------------------------------------------------


def generate_input_content(tool_input: AssistantSubgraphArgs | Mapping[str, Any]) -> str:
    """The one user message a sub-assistant receives from its caller.

    In order: the caller's message; the forwarded previous messages, each labelled with
    its role; the forwarded contexts, each labelled with its call id; the caller's
    summary of the conversation, if it has one.

    Raises:
        SubAssistantToolError: If ``pass_contexts`` names a call id with no tool result.
    """
    args = (
        tool_input
        if isinstance(tool_input, AssistantSubgraphArgs)
        else AssistantSubgraphArgs.model_validate({"tool_call_id": "", **tool_input})
    )
    messages = coerce_messages(args.parent_conv_messages)
    sections = [args.message_to_assistant]
    previous = _previous_messages(messages, args.pass_num_previous_messages)
    if previous:
        lines = [f"[{_role_label(message)}]: {message_text(message)}" for message in previous]
        sections.append("\n".join([INPUT_PREVIOUS_MESSAGES, *lines]))
    contexts = _contexts(messages, args.pass_contexts)
    if contexts:
        blocks = [f"[context {call_id}]:\n{text}" for call_id, text in contexts]
        sections.append("\n\n".join([INPUT_CONTEXTS, *blocks]))
    if args.parent_summary_of_conversation:
        sections.append(f"{INPUT_SUMMARY}\n{args.parent_summary_of_conversation}")
    return "\n\n".join(sections)


def _previous_messages(messages: Sequence[BaseMessage], count: int) -> list[BaseMessage]:
    if count <= 0:
        return []
    conversational: list[BaseMessage] = [
        message
        for message in messages
        if isinstance(message, HumanMessage | AIMessage)
        and message_text(message).strip()
        and not is_output_feedback(message)
    ]
    return list(conversational[-count:])


def _role_label(message: BaseMessage) -> str:
    return "user" if isinstance(message, HumanMessage) else "assistant"


def _contexts(messages: Sequence[BaseMessage], call_ids: Sequence[str]) -> list[tuple[str, str]]:
    if not call_ids:
        return []
    results = {m.tool_call_id: message_text(m) for m in messages if isinstance(m, ToolMessage)}
    missing = [call_id for call_id in call_ids if call_id not in results]
    if missing:
        raise SubAssistantToolError(
            ERROR_UNKNOWN_CONTEXT.format(
                missing=", ".join(missing), known=", ".join(results) or "none"
            )
        )
    return [(call_id, results[call_id]) for call_id in call_ids]


@dataclass(frozen=True)
class _PreparedCall:
    """A checked call ready to run: the sub-assistant's input and the config to run it with."""

    graph_input: dict[str, Any]
    """The sub-assistant graph's input: its conversation so far plus the new message."""
    config: RunnableConfig
    """The caller's config with the sub-assistant's recursion limit and origin."""
    input_message: HumanMessage
    """The message generated for the sub-assistant."""
    uid: str
    """The conversation uid."""
    origin: Origin
    """The sub-assistant's path and the tool call that opened it."""

    @property
    def input_count(self) -> int:
        """How many messages the sub-conversation holds before this call's response.

        The response is found by position, not by message id: when a call re-runs after
        an interrupt, the subgraph resumes its saved state and the new input is ignored.
        """
        return len(self.graph_input["messages"])


def _prepare(
    args: AssistantSubgraphArgs,
    info: SubgraphInfo,
    schema: AssistantSchema,
    config: RunnableConfig,
) -> _PreparedCall:
    caller = Origin(tuple(args.parent_assistant_path), args.parent_tool_call_id)
    origin = caller.child(schema.name, args.tool_call_id)
    input_message = HumanMessage(content=generate_input_content(args), id=str(uuid.uuid4()))
    caller_state = {
        "budget": args.parent_budget,
        "messages": coerce_messages(args.parent_conv_messages),
    }
    limits = _budget.callee_limits(schema.budget, args.parent_steps_remaining, caller_state)
    messages = [*info.previous_messages, input_message]
    # The run starts here, with its limits fixed: its graph skips its own ``begin`` step.
    budget = _budget.run_budget(schema.budget, limits, first_message=len(messages), now=time.time())
    graph_input = {
        "messages": messages,
        "summary_of_conversation": info.summary_of_conversation,
        "summarized_message_count": info.summarized_message_count,
        "sub_assistant_states": info.sub_assistant_states,
        "limits": limits,
        "budget": budget,
        "steps_remaining": budget["max_steps"],
        "assistant_path": list(origin.path),
        "conversation_uid": info.subgraph_uid,
        "parent_tool_call_id": args.tool_call_id,
    }
    limit = _budget.recursion_limit_for(
        limits.get("max_steps") or schema.max_model_calls,
        summarizes=schema.summarize_after_tokens is not None,
    )
    sub_config = patch_config(config, recursion_limit=limit)
    sub_config["metadata"] = {
        **sub_config.get("metadata", {}),
        "assistant_path": list(origin.path),
        "parent_tool_call_id": args.tool_call_id,
    }
    return _PreparedCall(graph_input, sub_config, input_message, info.subgraph_uid, origin)


# 4. Run -----------------------------------------------------------------------------------


@runtime_checkable
class SubgraphProvider(Protocol):
    """Gives the compiled graph of an assistant, to run as a subgraph."""

    def subgraph(self, name: str) -> Runnable[Any, Any]:
        """The graph of assistant ``name``, compiled to inherit the caller's checkpointer."""
        ...


class AssistantSubgraphCallTool(BaseTool):
    """Calls one assistant of a catalog as a subgraph of the calling assistant's graph.

    Invoke it with a full tool call (``{"type": "tool_call", "id": ..., "args": ...}``), as
    LangGraph's ``ToolNode`` does; the hidden arguments come from the caller's state.
    Mistakes the model can fix (invalid arguments, an unknown uid or context id) come back
    as error tool messages, wherever the tool runs.
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
    graphs: SubgraphProvider
    """Gives the sub-assistant's compiled graph (looked up at call time, so cycles work)."""
    max_depth: int = DEFAULT_MAX_DEPTH
    """How many levels of sub-assistant calls may nest below the root."""

    def _run(
        self,
        message_to_assistant: str,
        config: RunnableConfig,
        run_manager: CallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> tuple[str, AssistantSubgraphArtifact]:
        call = self._start(message_to_assistant, kwargs, config)
        try:
            output = self._graph().invoke(call.graph_input, call.config)
        except Exception as error:
            self._announce_failure(call, error)
            raise
        return self._finish(call, output)

    async def _arun(
        self,
        message_to_assistant: str,
        config: RunnableConfig,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
        **kwargs: Any,
    ) -> tuple[str, AssistantSubgraphArtifact]:
        call = self._start(message_to_assistant, kwargs, config)
        try:
            output = await self._graph().ainvoke(call.graph_input, call.config)
        except Exception as error:
            self._announce_failure(call, error)
            raise
        return self._finish(call, output)

    def _graph(self) -> Runnable[Any, Any]:
        return self.graphs.subgraph(self.assistant_config_id)

    def _start(
        self, message: str, kwargs: Mapping[str, Any], config: RunnableConfig
    ) -> _PreparedCall:
        """Check the call, build its input, and announce that the sub-assistant starts."""
        args = AssistantSubgraphArgs.model_construct(message_to_assistant=message, **kwargs)
        info = check_call(args, assistant=self.assistant_config_id, max_depth=self.max_depth)
        call = _prepare(args, info, self.assistant_schema, config)
        emit(
            SubAssistantStartEvent(
                **call.origin.fields(),
                assistant=self.assistant_config_id,
                message=message,
                input=message_text(call.input_message),
            )
        )
        return call

    def _announce_failure(self, call: _PreparedCall, error: Exception) -> None:
        """Announce that the sub-assistant's run failed (an interrupt is not a failure)."""
        if not isinstance(error, GraphBubbleUp):
            emit(
                SubAssistantEndEvent(
                    **call.origin.fields(),
                    assistant=self.assistant_config_id,
                    subgraph_uid=call.uid,
                    returning_incomplete=False,
                    status="error",
                )
            )

    # 5. Output ----------------------------------------------------------------------------

    def _finish(
        self, call: _PreparedCall, output: Mapping[str, Any]
    ) -> tuple[str, AssistantSubgraphArtifact]:
        messages = coerce_messages(output["messages"])
        response = messages[call.input_count :]
        uid = output.get("conversation_uid") or call.uid
        incomplete = bool(output.get("incomplete"))
        structured = output.get("structured_response")
        stop = output.get("budget_exhausted") if incomplete else None
        artifact = AssistantSubgraphArtifact(
            input=message_text(call.input_message),
            response_messages=response,
            returning_incomplete=incomplete,
            budget_exhausted=stop,
            sub_assistant_state_data=SubAssistantStateData(
                assistant=self.assistant_config_id,
                messages=messages,
                summary_of_conversation=output.get("summary_of_conversation"),
                summarized_message_count=output.get("summarized_message_count") or 0,
                sub_assistant_states=dict(output.get("sub_assistant_states") or {}),
                incomplete=incomplete,
            ),
            subgraph_uid=uid,
            assistant=self.assistant_config_id,
            usage=usage_of_messages(
                self.assistant_config_id, response, unlisted=output.get("summary_usage")
            ),
            structured_response=structured,
        )
        emit(
            SubAssistantEndEvent(
                **call.origin.fields(),
                assistant=self.assistant_config_id,
                subgraph_uid=uid,
                returning_incomplete=incomplete,
                usage=artifact["usage"],
                budget_exhausted=stop,
            )
        )
        answer = final_answer(response) if structured is None else result_text(structured)
        if not incomplete:
            return self._content(answer, uid), artifact
        steps = self.assistant_schema.max_model_calls
        exhaustion = _budget.Exhaustion.from_dict(
            stop or {"kind": "steps", "limit": steps, "used": steps}
        )
        problems = output.get("output_problems") or []
        return self._content(answer, uid, exhaustion, problems), artifact

    def _steps_spent(self, output: Mapping[str, Any]) -> dict[str, Any]:
        """The steps budget as spent, for a run that did not say which budget ran out."""
        steps = (output.get("budget") or {}).get(
            "max_steps"
        ) or self.assistant_schema.max_model_calls
        return {"kind": "steps", "limit": steps, "used": steps}

    def _content(
        self,
        answer: str,
        uid: str,
        stop: _budget.Exhaustion | None = None,
        problems: Sequence[str] = (),
    ) -> str:
        """The answer, cut to ``max_result_chars``, then the uid note or (when its ``stop``
        budget ran out) the incomplete note, naming ``problems`` of a typed answer."""
        answer = answer or NO_ANSWER
        notes = dict(assistant=self.assistant_config_id, tool=self.name, uid=uid)
        cap = self.assistant_schema.max_result_chars
        if cap is not None and len(answer) > cap:
            answer = answer[:cap] + RESULT_CUT_NOTE.format(total=len(answer), shown=cap, **notes)
        if stop is not None:
            note = _budget.incomplete_note(stop=stop, problems=problems, **notes)
            return f"{answer}\n\n{note}"
        return f"{answer}\n\n{RESULT_UID_NOTE.format(**notes)}"

    @staticmethod
    def record_sub_conversation(result: ToolMessage | Command[Any]) -> ToolMessage | Command[Any]:
        """See :func:`record_sub_conversation` (for graphs this package did not build)."""
        return record_sub_conversation(result)


def final_answer(messages: Sequence[BaseMessage]) -> str:
    """The text of the last AI message the model wrote (not a stop notice) with any text."""
    for message in reversed(messages):
        if isinstance(message, AIMessage) and not _budget.is_out_of_budget_notice(message):
            text = message_text(message).strip()
            if text:
                return text
    return ""


def _describe_validation_error(error: ValidationError) -> str:
    return ERROR_INVALID_ARGUMENTS.format(problems=one_line(error))


# 6. Recording -----------------------------------------------------------------------------


def record_sub_conversation(result: ToolMessage | Command[Any]) -> ToolMessage | Command[Any]:
    """Turn a sub-assistant tool message into an update that also stores its conversation.

    The conversation moves from the artifact into ``sub_assistant_states[uid]``: the tool
    message kept in the thread carries ``sub_assistant_state_data=None``, so each
    sub-conversation is stored once rather than copied into every call's artifact (which
    made a thread's state, and every checkpoint of it, grow with the square of its turns).
    Other results pass through unchanged. In a graph not built by this package, use it in
    a ``ToolNode``'s ``wrap_tool_call`` (as ``AssistantSubgraphCallTool.record_sub_conversation``)
    to make sub-conversations resumable there.
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
        usage=artifact.get("usage") or usage_of_messages(assistant, []),
        budget_exhausted=artifact.get("budget_exhausted"),
        structured_response=artifact.get("structured_response"),
    )


def _state_data(data: Mapping[str, Any] | None) -> SubAssistantStateData | None:
    if data is None:
        return None
    restored = dict(data)
    restored["messages"] = coerce_messages(restored.get("messages") or [])
    state_data: SubAssistantStateData = SubAssistantStateData(**restored)  # type: ignore[typeddict-item]
    return state_data
