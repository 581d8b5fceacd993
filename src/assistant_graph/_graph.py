"""Compiling an assistant into a LangGraph state graph: ``build_assistant_graph``.

The graph of one assistant::

    START -> begin -> agent --(no tool calls)--> END
                        |  \\--(tool calls, out of steps)--> out_of_steps -> END
                        \\--(one Send per tool call)--> tools -> agent

With ``summarize_after_tokens`` set, a ``summarize`` node runs before model calls (at a
run's start when due, after ``tools`` always) and folds older messages into the summary.

``begin`` sets this run's budget (:mod:`._budget`); a sub-assistant's run skips it, since
its caller fixed the budget when it made the call (``route_start``). ``agent`` checks the
budget and calls the model bound to the assistant's tools and sub-assistant tools, or, with
a budget spent, ends the run incomplete instead; ``tools`` runs each tool call as its own
task, so parallel sub-assistant calls run concurrently and interrupts raised in several of
them surface and resume together; ``out_of_steps`` (named when steps were the only budget)
closes unanswered tool calls of a run whose budget ran out and ends it with an AI message
saying it is incomplete and why (never a ``GraphRecursionError``).

A typed assistant (``output_schema``) has its model bound to structured output, and
``agent`` judges every answer (:mod:`._typed_results`): a valid one ends the run with its
``structured_response``; an invalid one goes back to the model (``agent`` again) with the
validation errors, or to ``out_of_steps`` when no step is left.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    RemoveMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send

from assistant_graph import _budget
from assistant_graph._catalog import AssistantCatalog
from assistant_graph._event_source import (
    Origin,
    answering_config,
    publish_messages,
    quiet_config,
)
from assistant_graph._human import ask_user_tool
from assistant_graph._mcp_tools import catalog_uses_mcp, connect_mcp_tools, with_mcp_sessions
from assistant_graph._model_calls import ModelCaller, RetryPolicy
from assistant_graph._models import (
    ModelOverride,
    accepts_request_timeout,
    pricer_for,
    resolve_chat_model,
)
from assistant_graph._names import tool_name_from_assistant_name
from assistant_graph._pricing import Pricer
from assistant_graph._schema import AssistantSchema
from assistant_graph._state import AssistantState, answer_dangling_tool_calls
from assistant_graph._sub_assistant import DEFAULT_MAX_DEPTH, AssistantSubgraphCallTool
from assistant_graph._summary import (
    SummaryRequest,
    needs_summary,
    summary_request,
    unsummarized_messages,
)
from assistant_graph._thread_guard import (
    DEFAULT_BUSY_TIMEOUT,
    GuardedGraph,
    IfBusy,
    check_policy,
    guard_for,
)
from assistant_graph._tool_execution import build_tool_node
from assistant_graph._tool_images import with_tool_images_as_user_message
from assistant_graph._typed_results import TypedOutput, describe_result, typed_output
from assistant_graph._usage import usage_of_messages

__all__ = ["AssistantGraphBuilder", "build_assistant_graph", "create_sub_assistant_tool"]

SUMMARY_PROMPT = "Summary of the earlier conversation:\n{summary}"

MAX_CONCURRENCY = 64
"""Tasks a superstep may run at once. LangGraph's default thread pool for sync runs has
min(32, CPUs + 4) workers (6 on 2 CPUs), so 8 parallel sub-assistant calls took 1.35x one
call; waiting on models is I/O, not CPU, so a larger pool costs nothing."""

NODE_BEGIN = "begin"
NODE_AGENT = "agent"
NODE_TOOLS = "tools"
NODE_OUT_OF_STEPS = "out_of_steps"
NODE_SUMMARIZE = "summarize"


@dataclass
class AssistantGraphBuilder:
    """Compiles the assistants of a catalog into graphs that call each other as subgraphs.

    Sub-assistant graphs are compiled once, without a checkpointer, so that they run
    under the caller's checkpointer in their own namespace; cycles between assistants are
    fine because a sub-assistant's graph is looked up when it is called.
    """

    catalog: AssistantCatalog
    """The assistants."""
    model: ModelOverride = None
    """Replaces every schema's model (see :data:`~assistant_graph._models.ModelOverride`)."""
    max_depth: int = DEFAULT_MAX_DEPTH
    """How many levels of sub-assistant calls may nest below the root."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """How transient model failures (429, 5xx, timeouts) are retried."""
    if_busy: IfBusy = "reject"
    """What a run on a thread that another run holds does (see :mod:`._thread_guard`)."""
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    """Seconds an ``enqueue`` run waits for its thread."""
    thread_locks: str | None = None
    """A PostgreSQL URL: root graphs hold their threads by advisory locks there, also
    when compiled without a checkpointer (a server that supplies its own)."""
    _subgraphs: dict[str, CompiledStateGraph[Any, Any, Any, Any]] = field(
        default_factory=dict, init=False, repr=False
    )

    def graph(
        self, name: str, *, checkpointer: BaseCheckpointSaver[Any] | bool | None = None
    ) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The graph of assistant ``name`` as a root, compiled with ``checkpointer``.

        Every assistant it can reach is compiled now, so configuration and model errors
        surface here rather than in the middle of a run.
        """
        for reachable in self.catalog.reachable_from(name)[1:]:
            self.subgraph(reachable)
        return self._compile(name, checkpointer, locks_url=self.thread_locks)

    def subgraph(self, name: str) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The graph of assistant ``name``, compiled to inherit its caller's checkpointer."""
        if name not in self._subgraphs:
            self._subgraphs[name] = self._compile(name, None)
        return self._subgraphs[name]

    def sub_assistant_tool(self, name: str) -> AssistantSubgraphCallTool:
        """The tool ``sub_assistant__<name>`` that calls assistant ``name``."""
        schema = self.catalog[name]
        return AssistantSubgraphCallTool(
            name=tool_name_from_assistant_name(name),
            description=describe_result(schema),
            assistant_config_id=name,
            assistant_schema=schema,
            graphs=self,
            max_depth=self.max_depth,
        )

    def _compile(
        self,
        name: str,
        checkpointer: BaseCheckpointSaver[Any] | bool | None,
        locks_url: str | None = None,
    ) -> CompiledStateGraph[Any, Any, Any, Any]:
        schema = self.catalog[name]
        tools, approvals = connect_mcp_tools(
            schema, self.catalog.source_of(name), self._tools_of(schema), self._approvals_of(schema)
        )
        source = self.catalog.source_of(name)
        chat_model = resolve_chat_model(schema, self.model, source=source)
        output = typed_output(schema, chat_model, tools, source=source)
        builder = _wire(
            schema,
            _bind(chat_model, tools, output),
            tools,
            approvals,
            summary_model=chat_model,
            calls=_ModelCalls(
                self.retry, pricer_for(schema, self.model), accepts_request_timeout(chat_model)
            ),
            output=output,
        )
        compiled = builder.compile(checkpointer=checkpointer, name=name)
        limit = _budget.recursion_limit_for(
            schema.max_model_calls, summarizes=schema.summarize_after_tokens is not None
        )
        configured = compiled.with_config(recursion_limit=limit, max_concurrency=MAX_CONCURRENCY)
        guard = guard_for(
            checkpointer, if_busy=self.if_busy, busy_timeout=self.busy_timeout, locks_url=locks_url
        )
        graph = configured if guard is None else GuardedGraph.around(configured, guard)
        return with_mcp_sessions(graph) if catalog_uses_mcp(self.catalog) else graph

    def _tools_of(self, schema: AssistantSchema) -> list[BaseTool]:
        """The schema's tools, then ``ask_user`` if enabled, then its sub-assistant tools."""
        tools = list(self.catalog.tools_for(schema.name))
        if schema.ask_user:
            tools.append(ask_user_tool())
        return [*tools, *map(self.sub_assistant_tool, schema.sub_assistants)]

    def _approvals_of(self, schema: AssistantSchema) -> set[str]:
        """Tool names (as the model calls them) whose calls need the person's approval."""
        listed = set(schema.require_approval)
        resolved = zip(schema.tools, self.catalog.tools_for(schema.name), strict=True)
        return {tool.name for written, tool in resolved if written in listed} | (
            listed - set(schema.tools)
        )


def build_assistant_graph(
    name: str,
    catalog: AssistantCatalog,
    *,
    model: ModelOverride = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    retry: RetryPolicy | None = None,
    if_busy: IfBusy = "reject",
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    thread_locks: str | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile assistant ``name`` of ``catalog`` into a LangGraph graph.

    The graph is a Runnable: invoke or stream it with ``{"messages": [...]}`` in any
    LangChain or LangGraph app. Its callable sub-assistants are tools named
    ``sub_assistant__<name>`` that run as recursive subgraphs.

    Args:
        name: The assistant to run.
        catalog: The assistants it may call (see :func:`~assistant_graph.load_assistants`).
        model: Replaces every assistant's model: a chat model, a ``provider:model`` string,
            or a function of the schema returning a chat model.
        checkpointer: Persists threads (e.g. ``InMemorySaver()``); sub-assistants run
            under it too. None compiles without one (LangGraph Server supplies its own).
        max_depth: How many levels of sub-assistant calls may nest below ``name``.
        retry: How transient model failures are retried (default: 4 attempts with
            exponential backoff); each retry shows in the event stream.
        if_busy: With a checkpointer, one run per thread runs at a time, across
            processes. A run on a thread that another run holds raises
            :class:`~assistant_graph.ThreadBusyError` at once (``"reject"``), or waits
            its turn (``"enqueue"``). A run can choose with
            ``configurable.if_busy``.
        busy_timeout: Seconds an ``enqueue`` run waits at most
            (``configurable.busy_timeout`` per run).
        thread_locks: A PostgreSQL URL (``postgresql://...``): runs hold their thread by
            an advisory lock in that database, as with a PostgreSQL checkpointer, also
            without a checkpointer of the graph's own (a server that supplies one).

    Returns:
        The compiled graph.

    Raises:
        MissingConfigError: If the catalog has no assistant ``name``.
        AssistantConfigError: If a reachable assistant's model cannot be created.
        ValueError: If ``if_busy`` is not one of the policies.

    Example:
        >>> from langgraph.checkpoint.memory import InMemorySaver
        >>> catalog = load_assistants("assistants")  # doctest: +SKIP
        >>> graph = build_assistant_graph("proxy", catalog, checkpointer=InMemorySaver())
        >>> config = {"configurable": {"thread_id": "1"}}  # doctest: +SKIP
        >>> graph.invoke({"messages": [("user", "What is 6 x 7?")]}, config)  # doctest: +SKIP
    """
    builder = AssistantGraphBuilder(
        catalog,
        model=model,
        max_depth=max_depth,
        retry=retry or RetryPolicy(),
        if_busy=check_policy(if_busy),
        busy_timeout=busy_timeout,
        thread_locks=thread_locks,
    )
    return builder.graph(name, checkpointer=checkpointer)


def create_sub_assistant_tool(
    name: str,
    catalog: AssistantCatalog,
    *,
    model: ModelOverride = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    retry: RetryPolicy | None = None,
) -> AssistantSubgraphCallTool:
    """The tool ``sub_assistant__<name>``, for use in a graph not built by this package.

    Put it in a ``ToolNode`` (or ``create_agent``); it reads ``messages`` and, when the
    state has them, ``summary_of_conversation``, ``steps_remaining``, ``budget``,
    ``sub_assistant_states`` and ``assistant_path``. To resume sub-conversations, give
    the state a ``sub_assistant_states`` key and record results with
    :func:`~assistant_graph._tool_execution.record_sub_conversation`.
    """
    builder = AssistantGraphBuilder(
        catalog, model=model, max_depth=max_depth, retry=retry or RetryPolicy()
    )
    for reachable in catalog.reachable_from(name):
        builder.subgraph(reachable)
    return builder.sub_assistant_tool(name)


def _bind(
    chat_model: BaseChatModel, tools: Sequence[BaseTool], output: TypedOutput | None = None
) -> Runnable[LanguageModelInput, BaseMessage]:
    if output is not None:
        return output.bind(chat_model, tools)
    return chat_model.bind_tools(tools) if tools else chat_model


def _wire(
    schema: AssistantSchema,
    model: Runnable[LanguageModelInput, BaseMessage],
    tools: Sequence[BaseTool],
    require_approval: set[str],
    *,
    summary_model: Runnable[LanguageModelInput, BaseMessage] | None = None,
    calls: _ModelCalls | None = None,
    output: TypedOutput | None = None,
) -> StateGraph[Any, Any, Any, Any]:
    summarizes = schema.summarize_after_tokens is not None
    steps = _AssistantSteps(
        schema, model, summary_model if summarizes else None, calls or _ModelCalls(), output
    )
    builder = StateGraph(AssistantState)
    builder.add_node(NODE_BEGIN, steps.begin)
    builder.add_node(NODE_AGENT, RunnableLambda(steps.call_model, afunc=steps.acall_model))
    builder.add_node(NODE_OUT_OF_STEPS, steps.out_of_steps)
    destinations = [END, NODE_OUT_OF_STEPS, NODE_AGENT]
    before_model = NODE_AGENT
    if steps.summary_model is not None:
        before_model = _wire_summary(builder, steps)
        destinations.append(NODE_SUMMARIZE)
    else:
        builder.add_edge(NODE_BEGIN, NODE_AGENT)
    first_steps = [NODE_BEGIN, NODE_AGENT]
    if steps.summary_model is not None:
        first_steps.append(NODE_SUMMARIZE)
    builder.add_conditional_edges(START, steps.route_start, first_steps)
    if tools:
        builder.add_node(
            NODE_TOOLS,
            build_tool_node(tools, assistant=schema.name, require_approval=require_approval),
        )
        builder.add_edge(NODE_TOOLS, before_model)
        destinations.append(NODE_TOOLS)
    builder.add_conditional_edges(NODE_AGENT, steps.route_after_model, destinations)
    builder.add_edge(NODE_OUT_OF_STEPS, END)
    return builder


def _wire_summary(builder: StateGraph[Any, Any, Any, Any], steps: _AssistantSteps) -> str:
    """Add ``summarize``, which folds older messages into the summary before a model call.

    After ``begin`` (and a retry after invalid tool calls or an invalid typed answer) it
    runs only when a summary is due. After ``tools`` it always runs, doing nothing when
    none is due: parallel tool tasks would each judge a conditional edge on their own part
    of the state, and could start ``summarize`` and ``agent`` together. Returns the node
    to go to after ``tools``.
    """
    builder.add_node(NODE_SUMMARIZE, RunnableLambda(steps.summarize, afunc=steps.asummarize))
    builder.add_conditional_edges(NODE_BEGIN, steps.route_to_model, [NODE_SUMMARIZE, NODE_AGENT])
    builder.add_edge(NODE_SUMMARIZE, NODE_AGENT)
    return NODE_SUMMARIZE


@dataclass(frozen=True)
class _ModelCalls:
    """How an assistant's model calls are made: retried, priced, bounded in time."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """How transient model failures are retried."""
    pricer: Pricer | None = None
    """Prices each call (None: costs are not recorded)."""
    request_timeout: bool = False
    """Whether the model takes a per-request timeout (bounds a call by the deadline)."""


@dataclass(frozen=True)
class _AssistantSteps:
    """The node functions of one assistant's graph."""

    schema: AssistantSchema
    model: Runnable[LanguageModelInput, BaseMessage]
    summary_model: Runnable[LanguageModelInput, BaseMessage] | None = None
    """The assistant's chat model without tools, if it summarizes long conversations."""
    calls: _ModelCalls = field(default_factory=_ModelCalls)
    """How model calls are retried, priced and bounded in time."""
    output: TypedOutput | None = None
    """How the assistant gives its typed result, if it has an ``output_schema``."""

    def route_start(self, state: AssistantState) -> str:
        """Where a run starts: at ``begin``, unless its caller started it (a sub-assistant
        call gives the run its limits, fixed when it was made), then at its first model
        call."""
        if _started_by_caller(state):
            return self.route_to_model(state)
        return NODE_BEGIN

    def begin(self, state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        """Start a run: its budget, the assistant path, a clear incomplete flag, and a
        history in which every earlier tool call has a result."""
        now = time.time()
        limits = state.get("limits") or _budget.run_wide_limits(config, now)
        repaired = answer_dangling_tool_calls(state["messages"])
        messages = state["messages"] if repaired is None else repaired
        budget = _budget.run_budget(
            self.schema.budget, limits, first_message=len(messages), now=now
        )
        update: dict[str, Any] = {
            "steps_remaining": budget["max_steps"],
            "budget": budget,
            "limits": None,
            "budget_exhausted": None,
            "summary_usage": None,
            "assistant_path": state.get("assistant_path") or [self.schema.name],
            "incomplete": False,
        }
        if self.output is not None:
            update.update(structured_response=None, output_problems=[])
        if repaired is not None:
            update["messages"] = [RemoveMessage(id=REMOVE_ALL_MESSAGES), *repaired]
        return update

    def call_model(self, state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        """One model call (sync), unless a budget of the run is spent."""
        if stop := _budget.exhausted(state):
            return self._stop(state, stop)
        caller = self._caller(state)
        try:
            response = caller.invoke(
                self.model, self._prompt(state), answering_config(config, caller.origin)
            )
        except _budget.OutOfTime:
            return self._stop(state, _budget.out_of_time(state))
        return self._after_model(state, response)

    async def acall_model(self, state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        """One model call (async), unless a budget of the run is spent."""
        if stop := _budget.exhausted(state):
            return self._stop(state, stop)
        caller = self._caller(state)
        try:
            response = await caller.ainvoke(
                self.model, self._prompt(state), answering_config(config, caller.origin)
            )
        except _budget.OutOfTime:
            return self._stop(state, _budget.out_of_time(state))
        return self._after_model(state, response)

    def summarize(self, state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        """Fold older messages into the summary if one is due (sync). Not a step: it does
        not count against ``max_steps``, but its tokens and cost count like any call's."""
        request = self._summary_due(state)
        if request is None or self.summary_model is None:
            return {}
        try:
            response = self._caller(state).invoke(
                self.summary_model, request.prompt, quiet_config(config)
            )
        except _budget.OutOfTime:
            return {}  # the model call that follows ends the run at its deadline
        return self._after_summary(state, request, response)

    async def asummarize(self, state: AssistantState, config: RunnableConfig) -> dict[str, Any]:
        """Fold older messages into the summary if one is due (async); not a step either."""
        request = self._summary_due(state)
        if request is None or self.summary_model is None:
            return {}
        try:
            response = await self._caller(state).ainvoke(
                self.summary_model, request.prompt, quiet_config(config)
            )
        except _budget.OutOfTime:
            return {}
        return self._after_summary(state, request, response)

    def _summary_due(self, state: AssistantState) -> SummaryRequest | None:
        """The summary to make now: none if none is due, or if a budget of the run is
        spent (the model call that follows then ends the run without it)."""
        request = summary_request(state, self.schema)
        if request is None or _budget.exhausted(state):  # spending is read only when due
            return None
        return request

    @staticmethod
    def _after_summary(
        state: AssistantState, request: SummaryRequest, response: BaseMessage
    ) -> dict[str, Any]:
        """The summary, and its call added to what the run's summaries spent."""
        spent = usage_of_messages("_", [response], unlisted=state.get("summary_usage"))
        return {**request.update(response), "summary_usage": spent["total"]}

    def _caller(self, state: AssistantState) -> ModelCaller:
        """Model calls of this run: retried when transient, else ModelCallError with the
        path; priced; bounded by the run's deadline."""
        budget = state.get("budget")
        return ModelCaller(
            Origin.of(state, self.schema.name),
            self.calls.retry,
            self.calls.pricer,
            deadline=budget["deadline"] if budget else None,
            request_timeout=self.calls.request_timeout,
        )

    def _prompt(self, state: AssistantState) -> list[BaseMessage]:
        prompt: list[BaseMessage] = [SystemMessage(content=self.schema.instructions)]
        if summary := state.get("summary_of_conversation"):
            prompt.append(SystemMessage(content=SUMMARY_PROMPT.format(summary=summary)))
        return [*prompt, *with_tool_images_as_user_message(unsummarized_messages(state))]

    def _after_model(self, state: AssistantState, response: BaseMessage) -> dict[str, Any]:
        messages: list[BaseMessage] = [response]
        if isinstance(response, AIMessage):
            messages.extend(_invalid_tool_call_results(response))
        update: dict[str, Any] = {"steps_remaining": _budget.spend_step(state)}
        if self.output is not None:
            verdict = self.output.check(response)
            messages.extend(verdict.messages)
            update["structured_response"] = verdict.structured_response
            update["output_problems"] = list(verdict.problems)
        publish_messages(Origin.of(state, self.schema.name), messages)
        return {"messages": messages, **update}

    def route_after_model(self, state: AssistantState) -> str | list[Send]:
        """Where to go after a model call: end, run the tool calls, retry, or stop."""
        response = _last_ai_message(state["messages"])
        calls = _unanswered_calls(state["messages"], response)
        invalid = response.invalid_tool_calls if response else []
        rejected = bool(state.get("output_problems"))
        if state.get("incomplete") or (not calls and not invalid and not rejected):
            return END
        if _budget.exhausted(state, steps=True):
            return NODE_OUT_OF_STEPS
        if not calls:
            return self.route_to_model(state)
        # The tools node reads the state itself: a task carries nothing but its call.
        return [Send(NODE_TOOLS, [call]) for call in calls]

    def route_to_model(self, state: AssistantState) -> str:
        """Before a model call: summarize first if the conversation has grown too long."""
        if self.summary_model is not None and needs_summary(state, self.schema):
            return NODE_SUMMARIZE
        return NODE_AGENT

    def out_of_steps(self, state: AssistantState) -> dict[str, Any]:
        """End the run incomplete because a budget ran out, first answering every tool
        call left without a result."""
        # Routed here because a budget is spent; state and deadline have not moved back since.
        stop = _budget.exhausted(state, steps=True) or _budget.out_of_time(state)
        response = _last_ai_message(state["messages"])
        answered = _answered_ids(state["messages"], response)
        return self._stop(state, stop, _budget.not_run_results(response, answered, stop.kind))

    def _stop(
        self, state: AssistantState, stop: _budget.Exhaustion, closing: Sequence[BaseMessage] = ()
    ) -> dict[str, Any]:
        """End the run incomplete: ``closing`` results, then a notice of what ran out."""
        problems = state.get("output_problems") or []
        messages = [*closing, _budget.out_of_budget_notice(stop, problems)]
        publish_messages(Origin.of(state, self.schema.name), messages)
        return {"messages": messages, "incomplete": True, "budget_exhausted": stop.to_dict()}


def _invalid_tool_call_results(response: AIMessage) -> list[ToolMessage]:
    return [
        ToolMessage(
            content=(
                f"Error: the arguments of this call to {call.get('name')!r} are not valid "
                f"JSON ({call.get('error') or 'could not be parsed'}). Call it again with a "
                "JSON object of arguments."
            ),
            tool_call_id=call.get("id") or "",
            name=call.get("name") or "",
            status="error",
        )
        for call in response.invalid_tool_calls
    ]


def _last_ai_message(messages: Sequence[BaseMessage]) -> AIMessage | None:
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            return message
    return None


def _answered_ids(messages: Sequence[BaseMessage], response: AIMessage | None) -> set[str]:
    """Ids of ``response``'s tool calls answered in the same step (a typed assistant's
    ``final_result`` calls are answered where they are judged)."""
    if response is None:
        return set()
    answered: set[str] = set()
    for message in reversed(messages):
        if message is response:
            break
        if isinstance(message, ToolMessage):
            answered.add(message.tool_call_id)
    return answered


def _unanswered_calls(
    messages: Sequence[BaseMessage], response: AIMessage | None
) -> list[ToolCall]:
    """The tool calls of ``response`` that still need to run."""
    if response is None:
        return []
    answered = _answered_ids(messages, response)
    return [call for call in response.tool_calls if call["id"] not in answered]


def _started_by_caller(state: AssistantState) -> bool:
    """Whether the input started the run: a caller's limits, with the run's budget fixed
    for the messages as given, and no tool call in them left without a result.

    A caller runs its sub-assistant in a checkpoint namespace of the call's own, so the
    run's state is fresh: none of what ``begin`` resets (``incomplete``,
    ``budget_exhausted``, ``summary_usage``, a typed result) is there to reset.
    """
    budget = state.get("budget")
    return (
        state.get("limits") is not None
        and budget is not None
        and budget["first_message"] == len(state["messages"])
        and answer_dangling_tool_calls(state["messages"]) is None
    )
