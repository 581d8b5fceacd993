"""Budgets: how much one call of an assistant may spend, in model calls, tokens, money and time.

Every rule about budgets lives here:

* an assistant's :class:`Budget` (its YAML ``budget``) gives ``max_steps`` (model calls),
  ``max_tokens`` (input + output, its sub-assistants' included), ``max_cost_usd`` and
  ``max_seconds`` (wall time of one call); any but ``max_steps`` may be unset;
* a run's limits (:class:`RunBudget`, set at its start by :func:`run_budget`) are its
  assistant's budget capped by what its caller has left of each (:func:`callee_limits`),
  or, for the root, by the run-wide limits in ``configurable["budget"]``
  (:func:`run_wide_limits`); a resumed conversation starts afresh;
* each model call spends one step (:func:`spend_step`); what a run spent in tokens and
  money is read from its own messages (its model calls and its sub-assistants' artifacts:
  :func:`spending`), so it is never stored twice;
* limits are checked at safe points, before a model call and before tool calls start
  (:func:`exhausted`); a running model call is not cut, except that its client's timeout
  stops at the run's deadline (:func:`seconds_left`);
* a run that cannot go on ends incomplete: every open tool call gets a result
  (:func:`not_run_results`) and a notice says which budget ran out
  (:func:`out_of_budget_notice`), so the history stays valid for chat APIs and the run
  can be continued;
* a caller sees that its callee stopped early through :func:`incomplete_note`;
* a typed assistant (``output_schema``) whose last answer did not match its schema
  spent a step on it: both notes name the validation errors (:func:`invalid_result_text`);
* LangGraph's recursion limit is set so that the budget, not the limit, ends a run
  (:func:`recursion_limit_for`).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant_graph._problems import one_line
from assistant_graph._usage import usage_of_messages

__all__ = [
    "BUDGET_CONFIG_KEY",
    "DEFAULT_MAX_STEPS",
    "OUT_OF_BUDGET_MARKER",
    "Budget",
    "BudgetLimits",
    "Exhaustion",
    "OutOfTime",
    "RunBudget",
    "Spending",
    "callee_limits",
    "exhausted",
    "incomplete_note",
    "invalid_result_text",
    "is_out_of_budget_notice",
    "not_run_results",
    "out_of_budget_notice",
    "out_of_steps",
    "out_of_time",
    "recursion_limit_for",
    "run_budget",
    "run_wide_limits",
    "seconds_left",
    "spend_step",
    "spending",
]

DEFAULT_MAX_STEPS = 10
"""Model calls one call of an assistant may make when its schema does not say."""

BUDGET_CONFIG_KEY = "budget"
"""``config["configurable"]`` key of the run-wide limits (a :class:`Budget` as a dict)."""

OUT_OF_BUDGET_MARKER = "assistant_graph_out_of_steps"
"""``response_metadata`` key of the AI message that says a run stopped incomplete (the
name is kept from when steps were the only budget, so older threads still read)."""

BudgetKind = Literal["steps", "tokens", "cost", "time"]
"""Which budget ran out."""
_BUDGET_NOUNS: dict[str, str] = {"steps": "step", "tokens": "token", "cost": "cost", "time": "time"}

NOT_RUN_TEXT = (
    "Not run: the {kind} budget of this run was used up before this tool call could be made."
)
OUT_OF_BUDGET_TEXT = (
    "I could not finish: I used {budget} this run allowed.{why} "
    "Ask me to continue to pick up where I stopped."
)
INCOMPLETE_NOTE = (
    "[INCOMPLETE] {assistant} stopped before finishing: it used {budget} it was allowed.{why} "
    'To let it continue, call {tool} again with resume_conversation_uid="{uid}".'
)
INVALID_RESULT_TEXT = " Its last answer did not match its output schema: {problems}."
""":func:`incomplete_note`'s statement of why a typed result was not accepted."""
OWN_INVALID_RESULT_TEXT = " My last answer did not match the required output schema: {problems}."
""":func:`out_of_budget_notice`'s statement of why a typed result was not accepted."""
BAD_RUN_WIDE_LIMITS = 'config["configurable"]["budget"] is not valid: {problems}'


class Budget(BaseModel):
    """What one call of an assistant may spend (an assistant's ``budget`` in its YAML), or,
    given in ``config["configurable"]["budget"]``, what a whole run may spend.

    Unset limits do not limit. A call never gets more than its caller has left of each.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description=f"Model calls one call may make (default {DEFAULT_MAX_STEPS}).",
    )
    """Model calls one call of the assistant may make (None: 10 for an assistant, no limit
    for a run)."""
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Input + output tokens one call may use, its sub-assistants' included.",
    )
    """Input plus output tokens one call may use, including its sub-assistants'."""
    max_cost_usd: float | None = Field(
        default=None,
        gt=0,
        description=(
            "US dollars one call may spend, its sub-assistants' included (calls of models "
            "with no known price count tokens only)."
        ),
    )
    """US dollars one call may spend, including its sub-assistants' (calls of models with
    no known price do not count toward it; see :mod:`assistant_graph._pricing`)."""
    max_seconds: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Wall time of one call in seconds, time waiting for a person's answer included; "
            "also bounds a single model call through the client's timeout."
        ),
    )
    """Wall time of one call, in seconds, including time spent waiting for a person."""


class BudgetLimits(TypedDict, total=False):
    """What a caller lets one call spend at most (graph input, consumed at the run's start)."""

    max_steps: int | None
    """Model calls."""
    max_tokens: int | None
    """Tokens."""
    max_cost_usd: float | None
    """US dollars."""
    deadline: float | None
    """``time.time()`` by which the call must end."""


class RunBudget(TypedDict):
    """The limits of one run, fixed at its start (graph state)."""

    max_steps: int
    """Model calls the run may make."""
    max_tokens: int | None
    """Tokens the run may use, its sub-assistants' included."""
    max_cost_usd: float | None
    """US dollars the run may spend, its sub-assistants' included."""
    started_at: float
    """``time.time()`` when the run started."""
    deadline: float | None
    """``time.time()`` by which the run must end."""
    first_message: int
    """Index in ``messages`` of the first message this run added: what it spent is read
    from the messages from here on."""


@dataclass(frozen=True)
class Spending:
    """What a run has spent so far, its sub-assistants included."""

    tokens: int
    """Input plus output tokens."""
    cost_usd: float
    """US dollars spent on calls with a known price."""


@dataclass(frozen=True)
class Exhaustion:
    """A budget that ran out: which, its limit and what was used."""

    kind: BudgetKind
    """Which budget."""
    limit: float
    """The limit the run had."""
    used: float
    """What it used."""

    def to_dict(self) -> dict[str, Any]:
        """As plain data, for the graph state and events."""
        return {"kind": self.kind, "limit": self.limit, "used": self.used}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Exhaustion:
        """From :meth:`to_dict`'s data."""
        return cls(data["kind"], float(data["limit"]), float(data["used"]))

    def phrase(self) -> str:
        """What was used, as the notes say it: "all 6 model calls", "12,034 tokens of the
        10,000", "$0.0123 of the $0.0100", "61 s of the 60 s"."""
        if self.kind == "steps":
            steps = int(self.limit)
            return "the one model call" if steps == 1 else f"all {steps} model calls"
        if self.kind == "tokens":
            return f"{int(self.used):,} tokens of the {int(self.limit):,}"
        if self.kind == "cost":
            return f"${self.used:.4f} of the ${self.limit:.4f}"
        return f"{self.used:.0f} s of the {self.limit:g} s"


class OutOfTime(Exception):
    """A model call could not be made or finished before the run's deadline."""


def _smaller(*limits: float | None) -> float | None:
    present = [limit for limit in limits if limit is not None]
    return min(present) if present else None


def run_wide_limits(config: RunnableConfig | None, now: float) -> BudgetLimits:
    """The limits a root run gets from ``config["configurable"]["budget"]``.

    Raises:
        ValueError: If the limits are not a valid :class:`Budget`, naming the fields.
    """
    raw = ((config or {}).get("configurable") or {}).get(BUDGET_CONFIG_KEY)
    if raw is None:
        return BudgetLimits()
    try:
        budget = raw if isinstance(raw, Budget) else Budget.model_validate(raw)
    except ValidationError as error:
        problems = one_line(error, whole=BUDGET_CONFIG_KEY)
        raise ValueError(BAD_RUN_WIDE_LIMITS.format(problems=problems)) from None
    seconds = budget.max_seconds
    return BudgetLimits(
        max_steps=budget.max_steps,
        max_tokens=budget.max_tokens,
        max_cost_usd=budget.max_cost_usd,
        deadline=None if seconds is None else now + seconds,
    )


def run_budget(
    budget: Budget, limits: BudgetLimits, *, first_message: int, now: float
) -> RunBudget:
    """The limits of a run of an assistant with ``budget``, capped by ``limits``."""
    own_deadline = None if budget.max_seconds is None else now + budget.max_seconds
    steps = _smaller(budget.max_steps or DEFAULT_MAX_STEPS, limits.get("max_steps"))
    tokens = _smaller(budget.max_tokens, limits.get("max_tokens"))
    return RunBudget(
        max_steps=int(steps or DEFAULT_MAX_STEPS),
        max_tokens=None if tokens is None else int(tokens),
        max_cost_usd=_smaller(budget.max_cost_usd, limits.get("max_cost_usd")),
        started_at=now,
        deadline=_smaller(own_deadline, limits.get("deadline")),
        first_message=first_message,
    )


def spending(state: Mapping[str, Any]) -> Spending:
    """What the current run has spent: its model calls, its summaries and its
    sub-assistants' calls."""
    budget = state.get("budget")
    start = budget["first_message"] if budget else len(state["messages"])
    summaries = state.get("summary_usage")
    total = usage_of_messages("_", state["messages"][start:], unlisted=summaries)["total"]
    return Spending(total["total_tokens"], total["priced_cost_usd"])


def callee_limits(
    budget: Budget,
    caller_steps_remaining: int | None,
    caller: Mapping[str, Any] | None = None,
) -> BudgetLimits:
    """The limits of a sub-assistant call: never more than its caller has left of each.

    A call always gets at least one model call, so that it can answer at all: the caller
    made this call with its own last step, and has none left to spend on a retry.

    Args:
        budget: The sub-assistant's own budget.
        caller_steps_remaining: Model calls the caller has left (None: no limit).
        caller: The caller's state (``budget`` and ``messages``), if it has a budget.
    """
    steps = budget.max_steps or DEFAULT_MAX_STEPS
    if caller_steps_remaining is not None:
        steps = max(1, min(steps, caller_steps_remaining))
    limits = BudgetLimits(max_steps=steps)
    caller_budget = (caller or {}).get("budget")
    if not caller or not caller_budget:
        return limits
    spent = spending(caller)
    tokens, cost = caller_budget["max_tokens"], caller_budget["max_cost_usd"]
    limits["max_tokens"] = None if tokens is None else max(1, tokens - spent.tokens)
    limits["max_cost_usd"] = None if cost is None else max(0.0, cost - spent.cost_usd)
    limits["deadline"] = caller_budget["deadline"]
    return limits


def spend_step(state: Mapping[str, Any]) -> int:
    """The steps left after one more model call."""
    return int(state.get("steps_remaining", 1)) - 1


def out_of_steps(state: Mapping[str, Any]) -> bool:
    """Whether the run has no model call left for the results of the tools it asked for."""
    return int(state.get("steps_remaining", 0)) <= 0


def exhausted(
    state: Mapping[str, Any], *, now: float | None = None, steps: bool = False
) -> Exhaustion | None:
    """The budget of the current run that has run out (time, tokens, cost, and with
    ``steps`` model calls), or None if the run may go on."""
    budget: RunBudget | None = state.get("budget")
    if steps and out_of_steps(state):
        limit = budget["max_steps"] if budget else DEFAULT_MAX_STEPS
        return Exhaustion("steps", limit, limit)
    if not budget:
        return None
    now = time.time() if now is None else now
    deadline = budget["deadline"]
    if deadline is not None and now >= deadline:
        return Exhaustion("time", deadline - budget["started_at"], now - budget["started_at"])
    if budget["max_tokens"] is None and budget["max_cost_usd"] is None:
        return None
    spent = spending(state)
    if budget["max_tokens"] is not None and spent.tokens >= budget["max_tokens"]:
        return Exhaustion("tokens", budget["max_tokens"], spent.tokens)
    if budget["max_cost_usd"] is not None and spent.cost_usd >= budget["max_cost_usd"]:
        return Exhaustion("cost", budget["max_cost_usd"], spent.cost_usd)
    return None


def out_of_time(state: Mapping[str, Any], now: float | None = None) -> Exhaustion:
    """The time budget of the current run, as spent (a model call was cut at its deadline)."""
    budget: RunBudget | None = state.get("budget")
    now = time.time() if now is None else now
    if not budget:
        return Exhaustion("time", 0.0, 0.0)
    deadline = budget["deadline"] if budget["deadline"] is not None else now
    return Exhaustion("time", deadline - budget["started_at"], now - budget["started_at"])


def seconds_left(state: Mapping[str, Any], now: float | None = None) -> float | None:
    """Seconds until the run's deadline (None: no deadline)."""
    budget: RunBudget | None = state.get("budget")
    if not budget or budget["deadline"] is None:
        return None
    return budget["deadline"] - (time.time() if now is None else now)


def not_run_results(
    response: AIMessage | None,
    answered: Collection[str | None] = (),
    kind: BudgetKind = "steps",
) -> list[BaseMessage]:
    """An error result for every tool call of ``response`` that will not run because the
    ``kind`` budget ran out (those whose ids are in ``answered`` already have a result)."""
    text = NOT_RUN_TEXT.format(kind=_BUDGET_NOUNS[kind])
    return [
        ToolMessage(content=text, tool_call_id=call["id"], name=call["name"], status="error")
        for call in (response.tool_calls if response else [])
        if call["id"] not in answered
    ]


def invalid_result_text(problems: Sequence[str], *, own: bool = False) -> str:
    """The sentence naming why the last typed answer was not accepted ("" if it was)."""
    if not problems:
        return ""
    template = OWN_INVALID_RESULT_TEXT if own else INVALID_RESULT_TEXT
    return template.format(problems="; ".join(problems))


def out_of_budget_notice(stop: Exhaustion, problems: Sequence[str] = ()) -> AIMessage:
    """The AI message that ends a run whose ``stop`` budget ran out, naming the validation
    errors of its last typed answer if there are any."""
    why = invalid_result_text(problems, own=True)
    return AIMessage(
        content=OUT_OF_BUDGET_TEXT.format(budget=stop.phrase(), why=why),
        response_metadata={OUT_OF_BUDGET_MARKER: stop.to_dict()},
    )


def is_out_of_budget_notice(message: BaseMessage) -> bool:
    """Whether ``message`` is the notice that a run stopped with a budget spent."""
    return bool(message.response_metadata.get(OUT_OF_BUDGET_MARKER))


def incomplete_note(
    *, assistant: str, stop: Exhaustion, tool: str, uid: str, problems: Sequence[str] = ()
) -> str:
    """What a caller is told when its sub-assistant stopped because its ``stop`` budget
    ran out (and why its last typed answer was not accepted, if it spent steps on that)."""
    return INCOMPLETE_NOTE.format(
        assistant=assistant,
        budget=stop.phrase(),
        why=invalid_result_text(problems),
        tool=tool,
        uid=uid,
    )


def recursion_limit_for(max_model_calls: int, *, summarizes: bool = False) -> int:
    """A LangGraph recursion limit that a run of that many model calls never reaches.

    Each model call takes at most two supersteps (model, tools), or three when the
    assistant summarizes long conversations (a ``summarize`` step before the model call).
    """
    return (3 if summarizes else 2) * max_model_calls + 10
