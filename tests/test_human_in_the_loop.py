"""Asking the person and approving tool calls, at any depth, resumed without redoing work."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from assistant_graph import AssistantCatalog, build_assistant_graph, stream_events
from assistant_graph._human import parse_approval
from assistant_graph.events import FinalEvent, InputRequestEvent
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant, call_tool

CONFIG: RunnableConfig = {"configurable": {"thread_id": "hitl"}}
sent_emails: list[str] = []


@tool
def send_email(to: str) -> str:
    """Send an email."""
    sent_emails.append(to)
    return f"sent to {to}"


def team_with_a_curious_leaf() -> AssistantCatalog:
    """boss -> mid -> (leaf asks the person, other does not)."""
    return AssistantCatalog.from_schemas(
        [
            {"name": "boss", "description": "d", "instructions": "i", "sub_assistants": ["mid"]},
            {
                "name": "mid",
                "description": "d",
                "instructions": "i",
                "callable": True,
                "sub_assistants": ["leaf", "other"],
            },
            {
                "name": "leaf",
                "description": "d",
                "instructions": "i",
                "callable": True,
                "ask_user": True,
                "tools": ["send_email"],
                "require_approval": ["send_email"],
            },
            {"name": "other", "description": "d", "instructions": "i", "callable": True},
        ],
        tools=[send_email],
    )


def ask(question: str) -> Any:
    return ai(tool_calls=[call_tool("ask_user", question=question)])


def echo_answer(call: ModelCall) -> str:
    return f"the person said {call.last_message.content}"


def requests(events: list[Any]) -> list[InputRequestEvent]:
    return [event for event in events if isinstance(event, InputRequestEvent)]


def test_a_question_at_depth_two_is_answered_and_nothing_is_redone() -> None:
    models = ScriptedModels(
        {
            "boss": [ai(tool_calls=[call_sub_assistant("mid", "go")]), "boss done"],
            "mid": [ai(tool_calls=[call_sub_assistant("leaf", "ask")]), "mid done"],
            "leaf": [ask("Which planet?"), echo_answer],
        }
    )
    graph = build_assistant_graph(
        "boss", team_with_a_curious_leaf(), model=models, checkpointer=InMemorySaver()
    )
    first = list(stream_events(graph, "start", CONFIG))
    [request] = requests(first)
    assert request.path == ("boss", "mid", "leaf")
    assert request.kind == "question" and request.question == "Which planet?"
    assert first[-1].status == "interrupted"  # type: ignore[attr-defined]
    calls_before = {name: len(models.calls(name)) for name in ("boss", "mid", "leaf")}
    assert calls_before == {"boss": 1, "mid": 1, "leaf": 1}

    second = list(stream_events(graph, Command(resume={request.id: "Mars"}), CONFIG))

    assert {name: len(models.calls(name)) for name in ("boss", "mid", "leaf")} == {
        "boss": 2,
        "mid": 2,
        "leaf": 2,
    }
    leaf_resumed = models.calls("leaf")[1]
    assert isinstance(leaf_resumed.last_message, ToolMessage)
    assert leaf_resumed.last_message.content == "Mars"
    assert [m.content for m in leaf_resumed.messages[1:2]] == ["ask"]  # kept its context
    final = second[-1]
    assert isinstance(final, FinalEvent) and final.content == "boss done"
    assert final.status == "completed"


def test_two_parallel_sub_assistants_asking_are_answered_by_one_resume() -> None:
    models = ScriptedModels(
        {
            "boss": [ai(tool_calls=[call_sub_assistant("mid", "go")]), "boss done"],
            "mid": [
                ai(
                    tool_calls=[
                        call_sub_assistant("leaf", "first"),
                        call_sub_assistant("leaf", "second"),
                        call_sub_assistant("other", "third"),
                    ]
                ),
                "mid done",
            ],
            "leaf": [lambda call: ask(f"about {call.last_message.content}?")] * 2
            + [echo_answer] * 2,
            "other": ["other done"],
        }
    )
    graph = build_assistant_graph(
        "boss", team_with_a_curious_leaf(), model=models, checkpointer=InMemorySaver()
    )
    pending = requests(list(stream_events(graph, "start", CONFIG)))
    assert sorted(r.question for r in pending) == ["about first?", "about second?"]
    assert {r.path for r in pending} == {("boss", "mid", "leaf")}
    assert len({r.parent_tool_call_id for r in pending}) == 2

    answers = {r.id: r.question.upper() for r in pending}
    events = list(stream_events(graph, Command(resume=answers), CONFIG))

    assert events[-1].status == "completed"  # type: ignore[attr-defined]
    assert len(models.calls("other")) == 1  # the sibling that finished is not run again
    answered = sorted(str(c.last_message.content) for c in models.calls("leaf")[2:])
    assert answered == ["ABOUT FIRST?", "ABOUT SECOND?"]


def test_an_approved_call_runs() -> None:
    sent_emails.clear()
    models = ScriptedModels(
        {"leaf": [ai(tool_calls=[call_tool("send_email", to="ada@example.org")]), "sent"]}
    )
    graph = build_assistant_graph(
        "leaf", team_with_a_curious_leaf(), model=models, checkpointer=InMemorySaver()
    )
    [request] = requests(list(stream_events(graph, "email Ada", CONFIG)))
    assert request.kind == "approval" and request.tool == "send_email"
    assert request.args == {"to": "ada@example.org"}
    assert "send_email" in request.question and sent_emails == []

    list(stream_events(graph, Command(resume="yes"), CONFIG))
    assert sent_emails == ["ada@example.org"]
    assert models.calls("leaf")[1].last_message.content == "sent to ada@example.org"


def test_a_rejected_call_is_told_to_the_model_and_the_run_goes_on() -> None:
    sent_emails.clear()
    models = ScriptedModels(
        {"leaf": [ai(tool_calls=[call_tool("send_email", to="ada@example.org")]), "ok, not sent"]}
    )
    graph = build_assistant_graph(
        "leaf", team_with_a_curious_leaf(), model=models, checkpointer=InMemorySaver()
    )
    list(stream_events(graph, "email Ada", CONFIG))
    events = list(stream_events(graph, Command(resume="no, she is on holiday"), CONFIG))
    assert sent_emails == []
    rejection = models.calls("leaf")[1].last_message
    assert isinstance(rejection, ToolMessage) and rejection.status == "error"
    assert "did not approve this call to send_email: no, she is on holiday" in rejection.content
    assert events[-1].content == "ok, not sent"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("answer", "approved", "reason"),
    [
        (True, True, None),
        ("Yes", True, None),
        ({"approved": True}, True, None),
        (False, False, None),
        ("no", False, "no"),
        ({"approved": False, "reason": "too late"}, False, "too late"),
    ],
)
def test_approval_answers_are_read_leniently(
    answer: Any, approved: bool, reason: str | None
) -> None:
    decision = parse_approval(answer)
    assert (decision.approved, decision.reason) == (approved, reason)


def test_approval_of_a_tool_the_assistant_lacks_is_a_config_error() -> None:
    from assistant_graph import AssistantConfigError

    with pytest.raises(AssistantConfigError, match=r"require_approval\[0\]: 'rm_rf' is not one"):
        AssistantCatalog.from_schemas(
            [{"name": "a", "description": "d", "instructions": "i", "require_approval": ["rm_rf"]}]
        )


def test_a_sub_assistant_call_waiting_for_approval_starts_only_once_approved() -> None:
    def delegate(_: ModelCall) -> Any:
        return ai(tool_calls=[call_sub_assistant("worker", "work")])

    team = AssistantCatalog.from_schemas(
        [
            {
                "name": "boss",
                "description": "d",
                "instructions": "i",
                "sub_assistants": ["worker"],
                "require_approval": ["sub_assistant__worker"],
            },
            {"name": "worker", "description": "d", "instructions": "i", "callable": True},
        ]
    )
    models = ScriptedModels(
        {
            "boss": [delegate, "declined", delegate, "done"],
            "worker": ["worked"],
        }
    )
    graph = build_assistant_graph("boss", team, model=models, checkpointer=InMemorySaver())

    def kinds(events: list[Any]) -> list[str]:
        return [
            e.type
            for e in events
            if e.type.startswith("sub_assistant") or e.type == "input_request"
        ]

    assert kinds(list(stream_events(graph, "go", CONFIG))) == ["input_request"]
    assert kinds(list(stream_events(graph, Command(resume="no"), CONFIG))) == []
    assert kinds(list(stream_events(graph, "go again", CONFIG))) == ["input_request"]
    approved = list(stream_events(graph, Command(resume="yes"), CONFIG))
    assert kinds(approved) == ["sub_assistant_start", "sub_assistant_end"]
    assert models.calls("worker")[0].last_message.content == "work"
