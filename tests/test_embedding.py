"""The sub-assistant tool inside LangGraph graphs that this package did not build."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain.agents import create_agent
from langchain_core.messages import AnyMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition

from assistant_graph import AssistantCatalog, create_sub_assistant_tool, read_artifact
from assistant_graph._state import SubAssistantStateData, merge_sub_assistant_states
from assistant_graph.testing import (
    ModelCall,
    ScriptedChatModel,
    ScriptedModels,
    ai,
    call_sub_assistant,
)


def test_the_tool_works_in_a_langchain_create_agent(team: AssistantCatalog) -> None:
    models = ScriptedModels({"writer": ["A haiku about Mars."]})
    writer = create_sub_assistant_tool("writer", team, model=models)
    outer = ScriptedChatModel.of(
        [
            ai(tool_calls=[call_sub_assistant("writer", "A haiku.", pass_num_previous_messages=1)]),
            "Here it is.",
        ]
    )
    agent = create_agent(outer, tools=[writer])
    result = agent.invoke({"messages": [HumanMessage("Write about Mars.")]})

    [answer] = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    artifact = read_artifact(answer)
    assert artifact is not None and answer.status == "success"
    state_data = artifact["sub_assistant_state_data"]  # nobody recorded it: it stays here
    assert state_data is not None
    assert [m.content for m in state_data["messages"]][-1] == "A haiku about Mars."
    assert isinstance(answer.content, str)
    assert answer.content.startswith("A haiku about Mars.")
    assert artifact["input"] == (
        "A haiku.\n\nPrevious messages of the conversation:\n[user]: Write about Mars."
    )
    assert result["messages"][-1].content == "Here it is."


class OwnState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    sub_assistant_states: Annotated[dict[str, SubAssistantStateData], merge_sub_assistant_states]


def test_a_hand_built_graph_can_resume_sub_conversations(team: AssistantCatalog) -> None:
    def resume(call: ModelCall) -> Any:
        [result] = [m for m in call.messages if isinstance(m, ToolMessage)][-1:]
        uid = read_artifact(result)["subgraph_uid"]  # type: ignore[index]
        return ai(
            tool_calls=[call_sub_assistant("writer", "Shorter.", resume_conversation_uid=uid)]
        )

    outer = ScriptedChatModel.of(
        [ai(tool_calls=[call_sub_assistant("writer", "A title.")]), "ok", resume, "ok"]
    )
    models = ScriptedModels({"writer": ["Long title", "Title"]})
    writer = create_sub_assistant_tool("writer", team, model=models)
    bound = outer.bind_tools([writer])

    builder = StateGraph(OwnState)
    builder.add_node("model", lambda state: {"messages": [bound.invoke(state["messages"])]})
    builder.add_node(
        "tools",
        ToolNode(
            [writer],
            wrap_tool_call=lambda request, execute: writer.record_sub_conversation(
                execute(request)
            ),
        ),
    )
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition, ["tools", END])
    builder.add_edge("tools", "model")
    graph = builder.compile(checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": "own"}}

    graph.invoke({"messages": [HumanMessage("title?")]}, config)
    result = graph.invoke({"messages": [HumanMessage("shorter?")]}, config)

    assert [m.content for m in models.calls("writer")[1].messages[1:]] == [
        "A title.",
        "Long title",
        "Shorter.",
    ]
    [state] = result["sub_assistant_states"].values()
    assert [m.content for m in state["messages"]][-1] == "Title"
