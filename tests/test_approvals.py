"""An approval must be an approval: the answers that let a tool call run are a closed set.

Approving answers are exactly ``True``; the texts ``yes``, ``y``, ``ok``, ``approve``,
``approved``, ``allow`` and ``true`` in any ASCII letter case, surrounding whitespace
ignored; and a mapping whose ``"approved"`` is one of those. Everything else rejects:
other text (told to the model as the reason), ``False``, ``None``, numbers (``1`` too),
lists, and mappings whose ``"approved"`` is anything else (their ``"reason"`` is told).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from assistant_graph import AssistantCatalog, build_assistant_graph, stream_events
from assistant_graph._human import parse_approval
from assistant_graph.events import InputRequestEvent
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_tool

APPROVING_WORDS = ("yes", "y", "ok", "approve", "approved", "allow", "true")
"""The approving texts, as the README and ``parse_approval`` list them."""


def is_approving_by_spec(answer: Any) -> bool:
    """The specification, written independently of the implementation."""
    if isinstance(answer, dict):
        return not isinstance(answer.get("approved"), dict) and is_approving_by_spec(
            answer.get("approved")
        )
    if answer is True:
        return True
    if not isinstance(answer, str):
        return False
    words = "|".join(map(re.escape, APPROVING_WORDS))
    # re.ASCII with IGNORECASE folds only A-Z/a-z, so "K" (Kelvin sign) is no "k".
    return re.fullmatch(words, answer.strip(), re.IGNORECASE | re.ASCII) is not None


APPROVE, REJECT = True, False


@pytest.mark.parametrize(
    ("answer", "approved", "reason"),
    [
        # approving: True, the seven words in any case with surrounding whitespace
        pytest.param(True, APPROVE, None, id="True"),
        pytest.param("yes", APPROVE, None, id="yes"),
        pytest.param("y", APPROVE, None, id="y"),
        pytest.param("ok", APPROVE, None, id="ok"),
        pytest.param("OK ", APPROVE, None, id="OK-trailing-space"),
        pytest.param("approve", APPROVE, None, id="approve"),
        pytest.param("Approved", APPROVE, None, id="Approved"),
        pytest.param("allow", APPROVE, None, id="allow"),
        pytest.param("true", APPROVE, None, id="true"),
        pytest.param("\t YES\n", APPROVE, None, id="YES-in-whitespace"),
        # approving mappings: "approved" is True or an approving word
        pytest.param({"approved": True}, APPROVE, None, id="approved-true"),
        pytest.param({"approved": "yes"}, APPROVE, None, id="approved-yes"),
        pytest.param({"approved": " Ok "}, APPROVE, None, id="approved-Ok"),
        pytest.param({"approved": True, "reason": "fine"}, APPROVE, "fine", id="remark-kept"),
        # rejecting text: the stripped text is the reason
        pytest.param("no", REJECT, "no", id="no"),
        pytest.param("false", REJECT, "false", id="false"),
        pytest.param("yes please", REJECT, "yes please", id="yes-please"),
        pytest.param("  not now \n", REJECT, "not now", id="text-stripped"),
        pytest.param("no, she is on holiday", REJECT, "no, she is on holiday", id="reason"),
        pytest.param("o\u212a", REJECT, "o\u212a", id="OK-with-Kelvin-sign"),
        pytest.param("", REJECT, None, id="empty"),
        pytest.param("   ", REJECT, None, id="blank"),
        # rejecting non-text values: no reason
        pytest.param(False, REJECT, None, id="False"),
        pytest.param(None, REJECT, None, id="None"),
        pytest.param(1, REJECT, None, id="1"),
        pytest.param(0, REJECT, None, id="0"),
        pytest.param(1.0, REJECT, None, id="1.0"),
        pytest.param([], REJECT, None, id="empty-list"),
        pytest.param(["yes"], REJECT, None, id="list-of-yes"),
        # rejecting mappings: their "reason" is the reason
        pytest.param({}, REJECT, None, id="empty-mapping"),
        pytest.param({"approved": "no"}, REJECT, None, id="approved-no"),
        pytest.param({"approved": "false"}, REJECT, None, id="approved-false-text"),
        pytest.param({"approved": 0}, REJECT, None, id="approved-0"),
        pytest.param({"approved": 1}, REJECT, None, id="approved-1"),
        pytest.param({"approved": None}, REJECT, None, id="approved-None"),
        pytest.param({"approved": ["yes"]}, REJECT, None, id="approved-list"),
        pytest.param({"approved": {"approved": True}}, REJECT, None, id="approved-nested"),
        pytest.param({"approve": True}, REJECT, None, id="misspelt-key"),
        pytest.param(
            {"approved": False, "reason": "too late"}, REJECT, "too late", id="approved-False"
        ),
        pytest.param(
            {"approved": "no", "reason": "too dear"}, REJECT, "too dear", id="no-with-reason"
        ),
        pytest.param({"reason": "fine"}, REJECT, "fine", id="reason-without-approved"),
    ],
)
def test_an_answer_approves_only_if_it_is_in_the_closed_set(
    answer: Any, approved: bool, reason: str | None
) -> None:
    decision = parse_approval(answer)
    assert (decision.approved, decision.reason) == (approved, reason)
    assert decision.approved is approved  # a real bool, not a truthy value


approving_texts = st.builds(
    lambda word, upper, before, after: (
        before + "".join(c.upper() if u else c for c, u in zip(word, upper, strict=False)) + after
    ),
    st.sampled_from(APPROVING_WORDS),
    st.lists(st.booleans(), min_size=8, max_size=8),
    st.sampled_from(["", " ", "\t", "\n "]),
    st.sampled_from(["", " ", "\r\n", "  "]),
)
"""The approving words in random letter case with random surrounding whitespace."""
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | approving_texts
    | st.sampled_from(["no", "false", "0", "1", "yes please", "nope", "o\u212a", ""])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["approved", "reason"]) | st.text(max_size=6), inner, max_size=3
        )
    ),
    max_leaves=8,
)


@given(answer=json_values)
def test_any_json_value_approves_exactly_when_the_specification_says_so(answer: Any) -> None:
    assert parse_approval(answer).approved is is_approving_by_spec(answer)


@given(answer=json_values)
def test_an_answer_wrapped_as_approved_approves_exactly_when_it_would_alone(answer: Any) -> None:
    alone = parse_approval(answer).approved and not isinstance(answer, dict)
    assert parse_approval({"approved": answer}).approved is alone


@given(text=approving_texts)
def test_each_approving_word_approves_in_any_case_and_whitespace(text: str) -> None:
    assert parse_approval(text).approved is True
    assert parse_approval({"approved": text}).approved is True


@given(text=st.text(max_size=40))
def test_a_rejecting_text_is_told_to_the_model_as_the_reason(text: str) -> None:
    decision = parse_approval(text)
    if not is_approving_by_spec(text):
        assert (decision.approved, decision.reason) == (False, text.strip() or None)


# -- through the graph: the tool really does not run -------------------------------------


def mailer_graph(sent: list[str], models: ScriptedModels) -> Any:
    """One assistant whose ``send_email`` calls wait for the person's approval."""

    @tool
    def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    catalog = AssistantCatalog.from_schemas(
        [
            {
                "name": "mailer",
                "description": "d",
                "instructions": "i",
                "tools": ["send_email"],
                "require_approval": ["send_email"],
            }
        ],
        tools=[send_email],
    )
    return build_assistant_graph("mailer", catalog, model=models, checkpointer=InMemorySaver())


def told(call: ModelCall) -> str:
    """The model's last reply: repeats the tool result it was given."""
    return f"told: {call.last_message.content}"


def run_until_approval(answer: Any, *, by_id: bool) -> tuple[list[str], ScriptedModels]:
    """Ask to email Ada, answer the approval request with ``answer``; what was sent."""
    sent: list[str] = []
    models = ScriptedModels(
        {"mailer": [ai(tool_calls=[call_tool("send_email", to="ada@example.org")]), told]}
    )
    graph = mailer_graph(sent, models)
    config: RunnableConfig = {"configurable": {"thread_id": "approval"}}
    first = list(stream_events(graph, "email Ada", config))
    [request] = [event for event in first if isinstance(event, InputRequestEvent)]
    assert request.kind == "approval" and sent == []
    resume = {request.id: answer} if by_id else answer
    events = list(stream_events(graph, Command(resume=resume), config))
    assert events[-1].status == "completed"  # type: ignore[attr-defined]
    return sent, models


@pytest.mark.parametrize("by_id", [False, True], ids=["one-value", "by-request-id"])
@pytest.mark.parametrize(
    "answer",
    [{"approved": "no"}, {"approved": "false"}, {"approved": 1}, "false", 1],
    ids=["approved-no", "approved-false", "approved-1", "false", "1"],
)
def test_a_call_answered_with_a_non_approving_value_does_not_run(answer: Any, by_id: bool) -> None:
    sent, models = run_until_approval(answer, by_id=by_id)

    assert sent == []
    told_model = models.calls("mailer")[1].last_message
    assert isinstance(told_model, ToolMessage) and told_model.status == "error"
    assert "did not approve this call to send_email" in told_model.content


@pytest.mark.parametrize("by_id", [False, True], ids=["one-value", "by-request-id"])
def test_a_call_answered_with_approved_yes_runs(by_id: bool) -> None:
    sent, models = run_until_approval({"approved": "yes"}, by_id=by_id)

    assert sent == ["ada@example.org"]
    assert models.calls("mailer")[1].last_message.content == "sent to ada@example.org"
