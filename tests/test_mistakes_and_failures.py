"""Three kinds of failure: model mistakes become error tool messages, developer mistakes
raise config errors, infrastructure failures raise ModelCallError with the path."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from assistant_graph import (
    AssistantCatalog,
    AssistantConfigError,
    MissingConfigError,
    ModelCallError,
    build_assistant_graph,
    read_artifact,
)
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant, call_tool

from .conftest import AssistantFolder


def results(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def error_seen_by(models: ScriptedModels, assistant: str, call: int = 1) -> ToolMessage:
    message = models.calls(assistant)[call].last_message
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    return message


def run(team: AssistantCatalog, models: ScriptedModels, text: str = "go", **kw: Any) -> Any:
    return build_assistant_graph("proxy", team, model=models, **kw).invoke(
        {"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": "x"}}
    )


def test_an_unknown_conversation_uid_is_an_error_message_and_the_run_goes_on(
    team: AssistantCatalog,
) -> None:
    models = ScriptedModels(
        {
            "proxy": [
                ai(
                    tool_calls=[
                        call_sub_assistant("writer", "more", resume_conversation_uid="nope")
                    ]
                ),
                "Sorry, starting over is needed.",
            ]
        }
    )
    result = run(team, models)
    error = error_seen_by(models, "proxy")
    assert "no conversation with uid 'nope'" in error.content
    assert "resume_conversation_uid=null" in error.content
    assert result["messages"][-1].content == "Sorry, starting over is needed."
    assert models.calls("writer") == []


def test_a_uid_of_another_assistant_is_refused(team: AssistantCatalog) -> None:
    def resume_writer_conversation_with_researcher(call: ModelCall) -> AIMessage:
        uid = read_artifact(results(call.messages)[-1])["subgraph_uid"]  # type: ignore[index]
        return ai(tool_calls=[call_sub_assistant("researcher", "hi", resume_conversation_uid=uid)])

    models = ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_sub_assistant("writer", "draft")]),
                resume_writer_conversation_with_researcher,
                "ok",
            ],
            "writer": ["draft text"],
        }
    )
    run(team, models)
    error = error_seen_by(models, "proxy", 2)
    assert "is with assistant 'writer', not 'researcher'" in error.content
    assert "sub_assistant__writer" in error.content


def test_a_uid_from_another_thread_is_not_found(team: AssistantCatalog) -> None:
    models = ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_sub_assistant("writer", "draft")]),
                "done",
                lambda call: ai(
                    tool_calls=[
                        call_sub_assistant("writer", "more", resume_conversation_uid=seen["uid"])
                    ]
                ),
                "could not",
            ],
            "writer": ["draft text"],
        }
    )
    seen: dict[str, str] = {}
    graph = build_assistant_graph("proxy", team, model=models, checkpointer=InMemorySaver())
    first = graph.invoke({"messages": [HumanMessage("a")]}, {"configurable": {"thread_id": "1"}})
    seen["uid"] = next(iter(first["sub_assistant_states"]))
    graph.invoke({"messages": [HumanMessage("b")]}, {"configurable": {"thread_id": "2"}})
    assert f"no conversation with uid {seen['uid']!r}" in error_seen_by(models, "proxy", 3).content


def test_a_negative_number_of_previous_messages_is_an_error_message(
    team: AssistantCatalog,
) -> None:
    models = ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_sub_assistant("writer", "x", pass_num_previous_messages=-1)]),
                "ok",
            ]
        }
    )
    run(team, models)
    error = error_seen_by(models, "proxy")
    assert "pass_num_previous_messages" in error.content
    assert "greater than or equal to 0" in error.content


def test_a_missing_message_argument_is_an_error_message(team: AssistantCatalog) -> None:
    models = ScriptedModels(
        {"proxy": [ai(tool_calls=[call_tool("sub_assistant__writer", text="hi")]), "ok"]}
    )
    run(team, models)
    assert "message_to_assistant" in error_seen_by(models, "proxy").content


def test_an_unknown_context_id_is_an_error_message(team: AssistantCatalog) -> None:
    models = ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_sub_assistant("writer", "x", pass_contexts=["c404"])]),
                "ok",
            ]
        }
    )
    run(team, models)
    assert "c404" in error_seen_by(models, "proxy").content


def test_a_tool_the_assistant_was_not_given_is_an_error_message(team: AssistantCatalog) -> None:
    models = ScriptedModels(
        {
            "proxy": [
                ai(
                    tool_calls=[
                        call_sub_assistant("calculator", "1+1"),
                        call_tool("calculate", expression="1"),
                    ]
                ),
                "ok",
            ]
        }
    )
    run(team, models)
    first, second = results(models.calls("proxy")[1].messages)
    assert first.status == second.status == "error"
    assert "sub_assistant__calculator is not a valid tool" in first.content
    assert "calculate is not a valid tool" in second.content
    assert models.calls("calculator") == []


def test_malformed_tool_call_arguments_are_an_error_message(team: AssistantCatalog) -> None:
    broken = AIMessage(
        content="",
        invalid_tool_calls=[
            {
                "name": "sub_assistant__writer",
                "args": "{not json",
                "id": "bad1",
                "error": "Expecting property name",
                "type": "invalid_tool_call",
            }
        ],
    )
    models = ScriptedModels({"proxy": [broken, "recovered"]})
    result = run(team, models)
    error = error_seen_by(models, "proxy")
    assert error.tool_call_id == "bad1" and "not valid JSON" in error.content
    assert result["messages"][-1].content == "recovered"


def test_two_calls_resuming_one_conversation_in_one_turn_refuse_the_second(
    team: AssistantCatalog,
) -> None:
    def resume_twice(call: ModelCall) -> AIMessage:
        uid = read_artifact(results(call.messages)[-1])["subgraph_uid"]  # type: ignore[index]
        return ai(
            tool_calls=[
                call_sub_assistant("writer", "longer", resume_conversation_uid=uid),
                call_sub_assistant("writer", "shorter", resume_conversation_uid=uid),
            ]
        )

    models = ScriptedModels(
        {
            "proxy": [ai(tool_calls=[call_sub_assistant("writer", "draft")]), resume_twice, "ok"],
            "writer": ["draft text", "longer draft text"],
        }
    )
    result = run(team, models)
    _, longer, shorter = results(result["messages"])
    assert isinstance(longer.content, str)
    assert longer.status == "success" and longer.content.startswith("longer draft text")
    assert shorter.status == "error"
    assert "already resumes conversation" in shorter.content
    [state] = result["sub_assistant_states"].values()
    assert [m.content for m in state["messages"]] == [
        "draft",
        "draft text",
        "longer",
        "longer draft text",
    ]


def test_nesting_deeper_than_the_limit_is_an_error_message() -> None:
    team = AssistantCatalog.from_schemas(
        [
            {
                "name": "echo",
                "description": "d",
                "instructions": "i",
                "callable": True,
                "sub_assistants": ["echo"],
            }
        ]
    )
    models = ScriptedModels(
        {
            "echo": [lambda _: ai(tool_calls=[call_sub_assistant("echo", "deeper")])] * 3
            + ["bottom"] * 3
        }
    )
    result = build_assistant_graph("echo", team, model=models, max_depth=2).invoke(
        {"messages": [HumanMessage("recurse")]}
    )
    refusal = models.calls("echo")[3].last_message
    assert isinstance(refusal, ToolMessage) and refusal.status == "error"
    assert "at most 2 levels deep and this call would be level 3" in refusal.content
    assert "echo > echo > echo > echo" in refusal.content
    assert result["messages"][-1].content == "bottom"


def test_a_failing_tool_is_an_error_message_and_siblings_keep_their_results() -> None:
    @tool
    def explode() -> str:
        """Fail."""
        raise RuntimeError("disk on fire")

    team = AssistantCatalog.from_schemas(
        [
            {
                "name": "proxy",
                "description": "d",
                "instructions": "i",
                "sub_assistants": ["worker"],
                "tools": ["explode"],
            },
            {"name": "worker", "description": "d", "instructions": "i", "callable": True},
        ],
        tools=[explode],
    )
    models = ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_tool("explode"), call_sub_assistant("worker", "w")]),
                "ok",
            ],
            "worker": ["worked"],
        }
    )
    result = run(team, models)
    failed, worked = results(result["messages"])
    assert failed.status == "error" and "RuntimeError: disk on fire" in failed.content
    assert isinstance(worked.content, str)
    assert worked.status == "success" and worked.content.startswith("worked")


def test_a_failing_model_deep_down_raises_model_call_error_with_its_path(
    team: AssistantCatalog,
) -> None:
    models = ScriptedModels(
        {
            "proxy": [ai(tool_calls=[call_sub_assistant("researcher", "q")])],
            "researcher": [ai(tool_calls=[call_sub_assistant("calculator", "1+1")])],
            "calculator": [],
        }
    )
    with pytest.raises(ModelCallError) as error:
        run(team, models)
    assert error.value.path == ("proxy", "researcher", "calculator")
    assert "proxy > researcher > calculator" in str(error.value)
    assert "ScriptExhaustedError" in str(error.value)


def test_a_real_model_without_an_api_key_is_a_config_error_naming_the_file(
    team: AssistantCatalog,
) -> None:
    with pytest.raises(
        AssistantConfigError,
        match=r"researcher\.yaml: model: cannot create .*: OPENAI_API_KEY is not set",
    ):
        build_assistant_graph("proxy", team)


def test_a_provider_whose_package_is_missing_is_a_config_error(folder: AssistantFolder) -> None:
    folder.add("helper", model="no-such-provider:big-model")
    with pytest.raises(AssistantConfigError, match=r"helper\.yaml: model: cannot create"):
        build_assistant_graph("helper", folder.load())


def test_a_model_override_that_returns_no_chat_model_is_a_type_error(
    team: AssistantCatalog,
) -> None:
    with pytest.raises(TypeError, match="returned str, not a chat model"):
        build_assistant_graph("writer", team, model=lambda schema: "gpt")  # type: ignore[arg-type,return-value]


def test_building_an_unknown_assistant_raises_missing_config_error(
    team: AssistantCatalog,
) -> None:
    with pytest.raises(MissingConfigError):
        build_assistant_graph("planner", team, model=ScriptedModels({}))
