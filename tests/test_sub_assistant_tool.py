"""The sub-assistant tool's names, model-visible arguments, and the input it generates."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Send

from assistant_graph import (
    SUB_ASSISTANT_PREFIX,
    AssistantCatalog,
    AssistantSubgraphArgs,
    SubAssistantToolError,
    assistant_name_from_tool_name,
    build_assistant_graph,
    create_sub_assistant_tool,
    tool_name_from_assistant,
    tool_name_from_assistant_name,
)
from assistant_graph._sub_assistant import generate_input_content
from assistant_graph.testing import ScriptedModels, ai, call_sub_assistant

CONVERSATION = [
    HumanMessage("What is the radius of Mars?"),
    AIMessage("", tool_calls=[{"name": "lookup_fact", "args": {"topic": "mars"}, "id": "c1"}]),
    ToolMessage("Mars' mean radius is 3389.5 km.", tool_call_id="c1"),
    AIMessage("It is 3389.5 km."),
    SystemMessage("Be brief."),
    HumanMessage("And its diameter?"),
    AIMessage("", tool_calls=[{"name": "calculate", "args": {"e": "2*3389.5"}, "id": "c2"}]),
    ToolMessage("2*3389.5 = 6779", tool_call_id="c2"),
]


def args(**fields: object) -> AssistantSubgraphArgs:
    return AssistantSubgraphArgs.model_validate(
        {"message_to_assistant": "Do it.", "tool_call_id": "t", **fields}
    )


def test_tool_names_are_the_prefix_plus_the_assistant_name(team: AssistantCatalog) -> None:
    assert SUB_ASSISTANT_PREFIX == "sub_assistant__"
    assert tool_name_from_assistant_name("writer") == "sub_assistant__writer"
    assert tool_name_from_assistant(team["writer"]) == "sub_assistant__writer"
    assert assistant_name_from_tool_name("sub_assistant__writer") == "writer"


@pytest.mark.parametrize("name", ["writer", "sub_assistant__", "assistant__writer"])
def test_a_name_without_the_prefix_is_not_a_sub_assistant_tool(name: str) -> None:
    with pytest.raises(ValueError, match="not a sub-assistant tool name"):
        assistant_name_from_tool_name(name)


def test_the_model_sees_exactly_four_arguments(team: AssistantCatalog) -> None:
    tool = create_sub_assistant_tool("writer", team, model=ScriptedModels({}))
    function = convert_to_openai_tool(tool)["function"]
    assert function["name"] == "sub_assistant__writer"
    assert function["description"] == team["writer"].description
    properties = function["parameters"]["properties"]
    assert list(properties) == [
        "message_to_assistant",
        "pass_num_previous_messages",
        "pass_contexts",
        "resume_conversation_uid",
    ]
    assert function["parameters"]["required"] == ["message_to_assistant"]
    assert properties["pass_num_previous_messages"]["minimum"] == 0
    assert tool.response_format == "content_and_artifact"
    assert tool.tags == ["assistant_subgraph"]
    assert tool.assistant_config_id == "writer"


def test_the_input_is_the_message_alone_when_nothing_is_forwarded() -> None:
    assert generate_input_content(args(parent_conv_messages=CONVERSATION)) == "Do it."


def test_exactly_n_previous_user_and_assistant_messages_are_forwarded() -> None:
    content = generate_input_content(
        args(parent_conv_messages=CONVERSATION, pass_num_previous_messages=2)
    )
    assert content == (
        "Do it.\n\n"
        "Previous messages of the conversation:\n"
        "[assistant]: It is 3389.5 km.\n"
        "[user]: And its diameter?"
    )


def test_asking_for_more_previous_messages_than_exist_forwards_all_of_them() -> None:
    content = generate_input_content(
        args(parent_conv_messages=CONVERSATION, pass_num_previous_messages=50)
    )
    assert content.count("\n[") == 3
    assert "Be brief" not in content and "lookup_fact" not in content


def test_chosen_contexts_are_forwarded_by_call_id_in_the_order_asked() -> None:
    content = generate_input_content(
        args(parent_conv_messages=CONVERSATION, pass_contexts=["c2", "c1"])
    )
    assert content == (
        "Do it.\n\n"
        "Context from earlier tool results:\n\n"
        "[context c2]:\n2*3389.5 = 6779\n\n"
        "[context c1]:\nMars' mean radius is 3389.5 km."
    )


def test_the_callers_summary_comes_last() -> None:
    content = generate_input_content(
        args(
            parent_conv_messages=CONVERSATION,
            pass_num_previous_messages=1,
            pass_contexts=["c2"],
            parent_summary_of_conversation="The user studies Mars.",
        )
    )
    sections = content.split("\n\n")
    assert sections[0] == "Do it."
    assert sections[1].startswith("Previous messages")
    assert sections[2].startswith("Context from")
    assert sections[-1] == "Summary of the conversation so far:\nThe user studies Mars."


def test_an_unknown_context_id_is_an_error_the_model_can_fix() -> None:
    with pytest.raises(SubAssistantToolError, match=r"c9.*Known ids: c1, c2"):
        generate_input_content(args(parent_conv_messages=CONVERSATION, pass_contexts=["c9"]))


def test_input_can_be_generated_from_a_plain_dict() -> None:
    content = generate_input_content(
        {
            "message_to_assistant": "Hi.",
            "parent_conv_messages": CONVERSATION[:1],
            "pass_num_previous_messages": 1,
        }
    )
    assert content.endswith("[user]: What is the radius of Mars?")


class TestWhatACallsTaskCarries:
    """Each tool call's task input is checkpointed, so it carries the call and nothing else:
    the tools step reads the caller's state itself when it runs."""

    def test_a_checkpointed_tool_task_is_the_tool_call_alone(self, team: AssistantCatalog) -> None:
        models = ScriptedModels(
            {
                "proxy": [
                    ai(tool_calls=[call_sub_assistant("writer", "Draft.", id="w1")]),
                    ai(
                        tool_calls=[
                            call_sub_assistant("writer", "Again.", id="w2", pass_contexts=["w1"])
                        ]
                    ),
                    "done",
                ],
                "writer": ["draft " * 200, "again"],
            }
        )
        saver = InMemorySaver()
        graph = build_assistant_graph("proxy", team, model=models, checkpointer=saver)
        config: RunnableConfig = {"configurable": {"thread_id": "payload"}}
        graph.invoke({"messages": [HumanMessage("Write.")]}, config)
        sends = [
            value
            for checkpoint in saver.list(config)
            for _, _, value in checkpoint.pending_writes or []
            if isinstance(value, Send)
        ]
        assert {send.node for send in sends} == {"tools"}
        assert sorted(send.arg[0]["id"] for send in sends) == ["w1", "w2"]
        for send in sends:
            [call] = send.arg
            assert set(call) <= {"name", "args", "id", "type"}
