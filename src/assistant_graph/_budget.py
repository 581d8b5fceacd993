"""The step budget: how many model calls one call of an assistant may make.

Every rule about the budget lives here:

* a run starts with its schema's ``max_steps``, or less when its caller has fewer steps
  left (:func:`run_budget`, :func:`callee_limit`); a resumed conversation starts afresh;
* each model call spends one step (:func:`spend_step`);
* a model reply asking for tools when no step is left ends the run (:func:`out_of_steps`),
  closing every open tool call (:func:`not_run_results`) and adding a notice
  (:func:`out_of_steps_notice`) that says how many model calls the run had, so the
  history stays valid for chat APIs and the run can be continued;
* a caller sees that its callee stopped early through :func:`incomplete_note`;
* a typed assistant (``output_schema``) whose last answer did not match its schema
  spent a step on it: both notes name the validation errors (:func:`invalid_result_text`);
* LangGraph's recursion limit is set so that the budget, not the limit, ends a run
  (:func:`recursion_limit_for`).

Token, cost and time budgets belong here too when they come.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

__all__ = [
    "DEFAULT_MAX_STEPS",
    "OUT_OF_STEPS_MARKER",
    "callee_limit",
    "incomplete_note",
    "invalid_result_text",
    "is_out_of_steps_notice",
    "not_run_results",
    "out_of_steps",
    "out_of_steps_notice",
    "recursion_limit_for",
    "run_budget",
    "spend_step",
]

DEFAULT_MAX_STEPS = 10
"""Model calls one call of an assistant may make when its schema does not say."""

OUT_OF_STEPS_MARKER = "assistant_graph_out_of_steps"
"""``response_metadata`` key of the AI message that says a run stopped incomplete."""

NOT_RUN_TEXT = (
    "Not run: the step budget of this run was used up before this tool call could be made."
)
OUT_OF_STEPS_TEXT = (
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
""":func:`out_of_steps_notice`'s statement of why a typed result was not accepted."""


def run_budget(max_steps: int, limit: int | None) -> int:
    """The model calls a run may make: its schema's ``max_steps``, capped by ``limit``."""
    return max_steps if limit is None else min(limit, max_steps)


def callee_limit(max_steps: int, caller_steps_remaining: int | None) -> int:
    """The budget of a sub-assistant call: never more than its caller has left.

    A call always gets at least one model call, so that it can answer at all: the caller
    made this call with its own last step, and has none left to spend on a retry.
    """
    if caller_steps_remaining is None:
        return max_steps
    return max(1, min(max_steps, caller_steps_remaining))


def spend_step(state: Mapping[str, Any]) -> int:
    """The steps left after one more model call."""
    return int(state.get("steps_remaining", 1)) - 1


def out_of_steps(state: Mapping[str, Any]) -> bool:
    """Whether the run has no model call left for the results of the tools it asked for."""
    return int(state.get("steps_remaining", 0)) <= 0


def not_run_results(
    response: AIMessage | None, answered: Collection[str | None] = ()
) -> list[BaseMessage]:
    """An error result for every tool call of ``response`` that will not run (those whose
    ids are in ``answered`` already have a result)."""
    return [
        ToolMessage(
            content=NOT_RUN_TEXT, tool_call_id=call["id"], name=call["name"], status="error"
        )
        for call in (response.tool_calls if response else [])
        if call["id"] not in answered
    ]


def _budget_text(steps: int) -> str:
    """The budget as the notes state it: "all 6 model calls", "the one model call"."""
    return "the one model call" if steps == 1 else f"all {steps} model calls"


def invalid_result_text(problems: Sequence[str], *, own: bool = False) -> str:
    """The sentence naming why the last typed answer was not accepted ("" if it was)."""
    if not problems:
        return ""
    template = OWN_INVALID_RESULT_TEXT if own else INVALID_RESULT_TEXT
    return template.format(problems="; ".join(problems))


def out_of_steps_notice(steps: int, problems: Sequence[str] = ()) -> AIMessage:
    """The AI message that ends a run which used all ``steps`` model calls it had, naming
    the validation errors of its last typed answer if there are any."""
    why = invalid_result_text(problems, own=True)
    return AIMessage(
        content=OUT_OF_STEPS_TEXT.format(budget=_budget_text(steps), why=why),
        response_metadata={OUT_OF_STEPS_MARKER: True},
    )


def is_out_of_steps_notice(message: BaseMessage) -> bool:
    """Whether ``message`` is the notice that a run stopped out of steps."""
    return bool(message.response_metadata.get(OUT_OF_STEPS_MARKER))


def incomplete_note(
    *, assistant: str, steps: int, tool: str, uid: str, problems: Sequence[str] = ()
) -> str:
    """What a caller is told when its sub-assistant used all ``steps`` it had (and why its
    last typed answer was not accepted, if that is what it spent them on)."""
    return INCOMPLETE_NOTE.format(
        assistant=assistant,
        budget=_budget_text(steps),
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
