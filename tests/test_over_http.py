"""The important paths through real ChatOpenAI HTTP calls to the scripted server."""

from __future__ import annotations

import re
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import SecretStr

from assistant_graph import AssistantCatalog, build_assistant_graph, read_artifact
from assistant_graph.testing import (
    ChatRequest,
    ScriptedOpenAIServer,
    ScriptedReply,
    reply,
    route_by_assistant,
    tool_call,
)

UID = re.compile(r"conversation_uid: ([\w-]+);")


def sub(assistant: str, message: str, **args: Any) -> Any:
    return tool_call(f"sub_assistant__{assistant}", message_to_assistant=message, **args)


def resume_last(assistant: str, message: str) -> Any:
    def respond(request: ChatRequest) -> ScriptedReply:
        [uid] = UID.findall(request.tool_results[-1])[-1:]
        return reply(tool_calls=[sub(assistant, message, resume_conversation_uid=uid)])

    return respond


def team_server(server: ScriptedOpenAIServer, team: AssistantCatalog) -> None:
    server.router = route_by_assistant(team)


@pytest.fixture
def http_team(
    team: AssistantCatalog, scripted_openai_server: ScriptedOpenAIServer, monkeypatch: Any
) -> tuple[AssistantCatalog, ScriptedOpenAIServer]:
    """The example team on its own schema models ('openai:gpt-4o-mini'), pointed at the
    scripted server through the standard environment variables."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", scripted_openai_server.url)
    team_server(scripted_openai_server, team)
    return team, scripted_openai_server


def test_three_levels_with_parallel_calls_over_http(
    http_team: tuple[AssistantCatalog, ScriptedOpenAIServer],
) -> None:
    team, server = http_team
    server.script(
        "proxy",
        reply(tool_calls=[sub("researcher", "Diameter of Mars?"), sub("writer", "Say hi.")]),
        "Mars is 6779 km wide.",
    )
    server.script(
        "researcher",
        reply(tool_calls=[tool_call("lookup_fact", topic="mars")]),
        reply(tool_calls=[sub("calculator", "2*3389.5")]),
        "6779 km",
    )
    server.script(
        "calculator", reply(tool_calls=[tool_call("calculate", expression="2*3389.5")]), "6779"
    )
    server.script("writer", "Hi!")

    graph = build_assistant_graph("proxy", team)
    result = graph.invoke({"messages": [HumanMessage("How wide is Mars?")]})

    assert server.errors == []
    assert result["messages"][-1].content == "Mars is 6779 km wide."
    researcher, writer = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert isinstance(researcher.content, str) and isinstance(writer.content, str)
    assert researcher.content.startswith("6779 km") and writer.content.startswith("Hi!")
    calc_requests = server.requests_for("calculator")
    assert calc_requests[0].last_user_message == "2*3389.5"
    assert calc_requests[1].tool_results == ["2*3389.5 = 6779"]
    assert calc_requests[0].tools == ["calculate"]
    proxy_first = server.requests_for("proxy")[0]
    assert proxy_first.tools == ["sub_assistant__researcher", "sub_assistant__writer"]
    properties = proxy_first.raw_tools[0]["function"]["parameters"]["properties"]
    assert sorted(properties) == sorted(
        [
            "message_to_assistant",
            "pass_num_previous_messages",
            "pass_contexts",
            "resume_conversation_uid",
        ]
    )
    assert proxy_first.headers["authorization"] == "Bearer sk-test-not-a-real-key"


async def test_streaming_and_resume_over_http(
    team: AssistantCatalog, scripted_openai_server: ScriptedOpenAIServer
) -> None:
    server = scripted_openai_server
    team_server(server, team)
    server.script(
        "proxy",
        reply(tool_calls=[sub("writer", "Title about Mars.")]),
        "A title.",
        resume_last("writer", "Shorter."),
        "A shorter title.",
    )
    server.script("writer", "Mars, the red frontier", "Red Mars")

    def chat_model(schema: Any) -> ChatOpenAI:
        return ChatOpenAI(
            model="gpt-4o-mini",
            base_url=server.url,
            api_key=SecretStr("sk-test"),
            streaming=True,
            stream_usage=True,
        )

    graph = build_assistant_graph("proxy", team, model=chat_model, checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": "http"}}
    await graph.ainvoke({"messages": [HumanMessage("Title?")]}, config)
    result = await graph.ainvoke({"messages": [HumanMessage("Shorter?")]}, config)

    assert server.errors == []
    assert all(request.stream for request in server.requests)
    resumed = server.requests_for("writer")[1]
    assert [m["role"] for m in resumed.messages] == ["system", "user", "assistant", "user"]
    assert resumed.messages[2]["content"] == "Mars, the red frontier"
    first, second = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert read_artifact(first)["subgraph_uid"] == read_artifact(second)["subgraph_uid"]  # type: ignore[index]
    usage = result["messages"][-1].usage_metadata
    assert usage is not None and usage["output_tokens"] == 3


def test_usage_is_requested_and_counted_when_streaming_from_any_compatible_server(
    http_team: tuple[AssistantCatalog, ScriptedOpenAIServer],
) -> None:
    from assistant_graph import stream_events

    team, server = http_team
    server.script("writer", "Hello there")
    final = list(stream_events(build_assistant_graph("writer", team), "Say hello"))[-1]
    [request] = server.requests
    assert request.stream and request.include_usage
    assert final.usage["by_assistant"]["writer"]["output_tokens"] == 2  # type: ignore[attr-defined]
