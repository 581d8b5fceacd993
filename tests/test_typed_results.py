"""Typed results: an assistant with ``output_schema`` answers with validated data.

Through real ``ChatOpenAI`` calls to the scripted server (native JSON-schema mode and the
``final_result`` tool), and on scripted models for the retry and budget rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel
from typer.testing import CliRunner

from assistant_graph import (
    AssistantCatalog,
    AssistantConfigError,
    astream_events,
    build_assistant_graph,
    read_artifact,
    stream_events,
)
from assistant_graph.cli import app
from assistant_graph.events import FinalEvent
from assistant_graph.testing import (
    ModelCall,
    ScriptedModels,
    ScriptedOpenAIServer,
    ScriptedToolCall,
    ai,
    call_sub_assistant,
    call_tool,
    reply,
    route_by_assistant,
    structured_ai,
    structured_reply,
    tool_call,
)

from .conftest import AssistantFolder

PLANET: dict[str, Any] = {
    "type": "object",
    "properties": {"planet": {"type": "string"}, "km": {"type": "number"}},
    "required": ["planet", "km"],
    "additionalProperties": False,
}
MARS: dict[str, Any] = {"planet": "Mars", "km": 6779}
MARS_JSON = '{"planet": "Mars", "km": 6779}'
COMPACT_PLANET = (
    '{"type":"object","properties":{"planet":{"type":"string"},"km":{"type":"number"}},'
    '"required":["planet","km"],"additionalProperties":false}'
)
UID = re.compile(r'resume_conversation_uid="([\w-]+)"')
CONFIG: RunnableConfig = {"configurable": {"thread_id": "typed"}}


class PlanetFacts(BaseModel):
    """Facts about one planet."""

    planet: str
    km: float
    moons: list[str] = []


def sub(assistant: str, message: str, **args: Any) -> ScriptedToolCall:
    return tool_call(f"sub_assistant__{assistant}", message_to_assistant=message, **args)


def typed_team(folder: AssistantFolder, **finder: Any) -> AssistantCatalog:
    """proxy -> researcher -> finder; the finder (depth 2) answers with PLANET data."""
    folder.add("proxy", sub_assistants=["researcher"])
    folder.add("researcher", callable=True, sub_assistants=["finder"])
    folder.add("finder", callable=True, **{"output_schema": PLANET, **finder})
    return folder.load()


def pair(folder: AssistantFolder, **finder: Any) -> AssistantCatalog:
    """proxy -> finder, the finder typed."""
    folder.add("proxy", sub_assistants=["finder"])
    folder.add("finder", callable=True, **{"output_schema": PLANET, **finder})
    return folder.load()


@pytest.fixture
def http(
    scripted_openai_server: ScriptedOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> ScriptedOpenAIServer:
    """The scripted server, reached by every ``openai:`` model through the environment."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", scripted_openai_server.url)
    return scripted_openai_server


def tool_messages(messages: Sequence[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


def conversation(state: Mapping[str, Any], *path: str) -> list[BaseMessage]:
    """The messages of the sub-conversation reached through ``path`` (assistant names)."""
    for assistant in path:
        [state] = [s for s in state["sub_assistant_states"].values() if s["assistant"] == assistant]
    messages: list[BaseMessage] = state["messages"]
    return messages


def assert_every_tool_call_answered_once(messages: Sequence[BaseMessage]) -> None:
    asked = [c["id"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    answered = [m.tool_call_id for m in messages if isinstance(m, ToolMessage)]
    assert sorted(asked, key=str) == sorted(answered)


def resume_finder(message: str) -> Any:
    """A proxy reply that resumes its last conversation with the finder."""

    def answer(call: ModelCall) -> AIMessage:
        [uid] = UID.findall(str(call.last_message.content))
        return ai(tool_calls=[call_sub_assistant("finder", message, resume_conversation_uid=uid)])

    return answer


class TestOverHttp:
    def test_a_typed_assistant_two_levels_down_answers_in_native_json_schema_mode(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        team = typed_team(folder)
        http.router = route_by_assistant(team)
        http.script("proxy", reply(tool_calls=[sub("researcher", "Mars?")]), "6779 km.")
        http.script("researcher", reply(tool_calls=[sub("finder", "Diameter of Mars?")]), "Done.")
        http.script("finder", json.dumps(MARS, indent=2))  # callers get it as compact JSON

        result = build_assistant_graph("proxy", team).invoke({"messages": [("user", "Mars?")]})

        assert http.errors == []
        [finder] = http.requests_for("finder")
        assert finder.response_format is not None
        assert finder.response_format["type"] == "json_schema"
        assert finder.response_format["json_schema"]["name"] == "final_result"
        assert finder.json_schema == PLANET
        assert finder.tools == []
        researcher_first, researcher_second = http.requests_for("researcher")
        assert researcher_first.response_format is None
        description = researcher_first.raw_tools[0]["function"]["description"]
        assert description == (
            f"The finder assistant.\n\nReturns JSON matching this JSON Schema: {COMPACT_PLANET}"
        )
        assert researcher_second.tool_results[0].startswith(
            f"{MARS_JSON}\n\n(conversation_uid: finder-"
        )
        [from_finder] = tool_messages(conversation(result, "researcher"))
        artifact = read_artifact(from_finder)
        assert artifact is not None and artifact["structured_response"] == MARS

    def test_a_typed_assistant_two_levels_down_answers_with_the_output_tool(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        team = typed_team(folder, output_strategy="tool")
        http.router = route_by_assistant(team)
        http.script("proxy", reply(tool_calls=[sub("researcher", "Mars?")]), "6779 km.")
        http.script("researcher", reply(tool_calls=[sub("finder", "Diameter of Mars?")]), "Done.")
        http.script("finder", reply(tool_calls=[tool_call("final_result", **MARS)]))
        graph = build_assistant_graph("proxy", team, checkpointer=InMemorySaver())

        events = list(stream_events(graph, "Mars?", CONFIG))  # streamed: tool-call deltas

        assert http.errors == []
        [finder] = http.requests_for("finder")
        assert (finder.tools, finder.tool_choice, finder.response_format) == (
            ["final_result"],
            "required",
            None,
        )
        parameters = finder.raw_tools[0]["function"]["parameters"]
        assert parameters["properties"] == PLANET["properties"]
        assert finder.stream
        result = [
            e for e in events if e.type == "tool_result" and e.path == ("proxy", "researcher")
        ]
        assert [e.content.split("\n\n")[0] for e in result] == [MARS_JSON]  # type: ignore[attr-defined]
        state = graph.get_state(CONFIG).values
        messages = conversation(state, "researcher", "finder")
        assert [type(m) for m in messages] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
        call, answered, closing = messages[1:]
        assert isinstance(call, AIMessage) and isinstance(answered, ToolMessage)
        assert answered.tool_call_id == call.tool_calls[0]["id"]
        assert answered.status == "success"
        assert closing.content == MARS_JSON

    @pytest.mark.parametrize(
        ("strategy", "native"), [("auto", False), ("provider", True), ("tool", False)]
    )
    def test_auto_asks_an_openai_model_with_tools_for_the_output_tool(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer, strategy: str, native: bool
    ) -> None:
        folder.add("writer", callable=True)
        chosen = {} if strategy == "auto" else {"output_strategy": strategy}
        folder.add("finder", sub_assistants=["writer"], output_schema=PLANET, **chosen)
        team = folder.load()
        http.router = route_by_assistant(team)
        http.script("finder", structured_reply(MARS))

        result = build_assistant_graph("finder", team).invoke({"messages": [("user", "Mars?")]})

        [request] = http.requests
        assert result["structured_response"] == MARS
        assert (request.json_schema is not None) is native
        if native:  # langchain-openai makes every tool strict next to a json_schema
            assert request.tools == ["sub_assistant__writer"]
            assert request.raw_tools[0]["function"]["strict"] is True
        else:
            assert request.tools == ["sub_assistant__writer", "final_result"]
            assert request.tool_choice == "required"


class TestInvalidAnswers:
    @pytest.mark.parametrize("strategy", ["provider", "tool"])
    def test_an_invalid_answer_goes_back_with_the_errors_and_a_valid_one_is_the_result(
        self, folder: AssistantFolder, strategy: str
    ) -> None:
        team = pair(folder, output_strategy=strategy, budget={"max_steps": 2})
        models = ScriptedModels(
            {
                "proxy": [ai(tool_calls=[call_sub_assistant("finder", "Mars?")]), "6779 km."],
                "finder": [structured_ai({"planet": "Mars", "km": "wide"}), structured_ai(MARS)],
            }
        )

        result = build_assistant_graph("proxy", team, model=models).invoke(
            {"messages": [("user", "Mars?")]}
        )

        first, second = models.calls("finder")
        if strategy == "provider":
            assert first.response_format is not None and first.tools == []
            assert isinstance(second.last_message, HumanMessage)
        else:
            assert (first.response_format, first.tools, first.tool_choice) == (
                None,
                ["final_result"],
                "any",
            )
            assert isinstance(second.last_message, ToolMessage)
            assert second.last_message.status == "error"
        assert "at $.km: 'wide' is not of type 'number'" in str(second.last_message.content)
        [delegation] = tool_messages(result["messages"])
        assert str(delegation.content).startswith(f"{MARS_JSON}\n\n(conversation_uid: ")
        artifact = read_artifact(delegation)
        assert artifact is not None
        assert (artifact["structured_response"], artifact["returning_incomplete"]) == (MARS, False)

    def test_still_invalid_when_the_steps_are_spent_is_incomplete_and_resumes_to_a_result(
        self, folder: AssistantFolder
    ) -> None:
        team = pair(folder, budget={"max_steps": 2})
        models = ScriptedModels(
            {
                "proxy": [
                    ai(tool_calls=[call_sub_assistant("finder", "Mars?")]),
                    resume_finder("Try again."),
                    "6779 km.",
                ],
                "finder": [
                    structured_ai({"planet": "Mars"}),
                    structured_ai({"planet": "Mars", "km": "far"}),
                    structured_ai(MARS),
                ],
            }
        )
        graph = build_assistant_graph("proxy", team, model=models, checkpointer=InMemorySaver())

        result = graph.invoke({"messages": [("user", "Mars?")]}, CONFIG)

        stopped, resumed = tool_messages(result["messages"])
        assert (
            "[INCOMPLETE] finder stopped before finishing: it used all 2 model calls it was "
            "allowed. Its last answer did not match its output schema: at $.km: 'far' is not of "
            "type 'number'. To let it continue"
        ) in str(stopped.content)
        stopped_artifact, resumed_artifact = map(read_artifact, (stopped, resumed))
        assert stopped_artifact is not None and resumed_artifact is not None
        assert stopped_artifact["returning_incomplete"] is True
        assert stopped_artifact["structured_response"] is None
        notice = stopped_artifact["response_messages"][-1]
        assert "My last answer did not match the required output schema: at $.km" in str(
            notice.content
        )
        assert resumed_artifact["subgraph_uid"] == stopped_artifact["subgraph_uid"]
        assert (
            resumed_artifact["structured_response"],
            resumed_artifact["returning_incomplete"],
        ) == (
            MARS,
            False,
        )
        assert str(resumed.content).startswith(MARS_JSON)
        assert_every_tool_call_answered_once(conversation(result, "finder"))
        first_retry = models.calls("finder")[1].last_message
        assert "at $: 'km' is a required property" in str(first_retry.content)
        assert "Try again." in str(models.calls("finder")[2].last_message.content)

    def test_the_feedback_on_an_invalid_answer_is_not_forwarded_as_the_users_words(
        self, folder: AssistantFolder
    ) -> None:
        folder.add("writer", callable=True)
        folder.add(
            "finder", sub_assistants=["writer"], output_schema=PLANET, output_strategy="provider"
        )
        team = folder.load()
        ask_writer = call_sub_assistant("writer", "Write it up.", pass_num_previous_messages=3)
        models = ScriptedModels(
            {
                "finder": ['{"planet": "Mars"}', ai(tool_calls=[ask_writer]), MARS_JSON],
                "writer": ["Mars is 6779 km wide."],
            }
        )

        result = build_assistant_graph("finder", team, model=models).invoke(
            {"messages": [("user", "Mars?")]}
        )

        assert result["structured_response"] == MARS
        first = models.calls("finder")[0]
        assert first.tools == ["sub_assistant__writer"] and first.response_format is not None
        assert first.response_format["json_schema"]["name"] == "final_result"
        assert "not accepted" in str(models.calls("finder")[1].last_message.content)
        [writer] = models.calls("writer")
        assert str(writer.last_message.content) == (
            "Write it up.\n\nPrevious messages of the conversation:\n[user]: Mars?\n"
            '[assistant]: {"planet": "Mars"}'
        )

    def test_a_result_given_with_other_tool_calls_is_refused_and_the_others_run(
        self, folder: AssistantFolder
    ) -> None:
        folder.write(
            "tools.py",
            "from langchain_core.tools import tool\n\n\n"
            "@tool\ndef measure(planet: str) -> str:\n"
            '    """Measure a planet."""\n'
            '    return "6779 km"\n',
        )
        team = pair(folder, tools=["measure"], output_strategy="tool")
        early = ai(
            tool_calls=[call_tool("measure", planet="Mars"), call_tool("final_result", **MARS)]
        )
        models = ScriptedModels({"finder": [early, structured_ai(MARS)]})

        result = build_assistant_graph("finder", team, model=models).invoke(
            {"messages": [("user", "Mars?")]}
        )

        refused, measured, accepted = tool_messages(result["messages"])
        assert (refused.name, refused.status) == ("final_result", "error")
        assert "final_result was called together with other tools" in str(refused.content)
        assert (measured.name, measured.content) == ("measure", "6779 km")
        assert accepted.status == "success"
        assert result["structured_response"] == MARS
        assert models.calls("finder")[1].tools == ["measure", "final_result"]


class TestPydanticModels:
    def test_an_import_string_of_a_pydantic_model_validates_and_describes_the_result(
        self, folder: AssistantFolder
    ) -> None:
        team = pair(folder, output_schema="tests.test_typed_results:PlanetFacts")
        models = ScriptedModels(
            {
                "proxy": [ai(tool_calls=[call_sub_assistant("finder", "Mars?")]), "Done."],
                "finder": [
                    structured_ai({"planet": "Mars", "km": "far"}),
                    structured_ai({"planet": "Mars", "km": 6779}),
                ],
            }
        )
        graph = build_assistant_graph("proxy", team, model=models)

        result = graph.invoke({"messages": [("user", "Mars?")]})

        retry = str(models.calls("finder")[1].last_message.content)
        assert "at $.km: Input should be a valid number" in retry
        [delegation] = tool_messages(result["messages"])
        artifact = read_artifact(delegation)
        assert artifact is not None
        assert artifact["structured_response"] == {"planet": "Mars", "km": 6779.0, "moons": []}
        assert str(delegation.content).startswith('{"planet": "Mars", "km": 6779.0, "moons": []}')
        tool = graph.nodes["tools"].bound.tools_by_name["sub_assistant__finder"]  # type: ignore[attr-defined]
        assert tool.description.endswith(
            'Returns JSON matching this JSON Schema: {"description":"Facts about one planet.",'
            '"properties":{"planet":{"type":"string"},"km":{"type":"number"},"moons":'
            '{"default":[],"items":{"type":"string"},"type":"array"}},"required":["planet","km"],'
            '"type":"object"}'
        )


class TestConfiguration:
    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            (
                {"output_schema": {"type": "object", "properties": {"km": {"type": "nmber"}}}},
                "output_schema",
                "not a valid JSON Schema: 'nmber' is not valid under any of the given schemas "
                "(at $.properties.km.type)",
            ),
            (
                {
                    "output_schema": {
                        "type": "object",
                        "properties": {"planet": {"$ref": "#/$defs/Planet"}},
                    }
                },
                "output_schema",
                "$ref '#/$defs/Planet' does not point into this schema",
            ),
            (
                {"output_schema": {"type": "array", "items": {"type": "string"}}},
                "output_schema",
                "the JSON Schema must describe a JSON object (type: object)",
            ),
            (
                {"output_schema": "json:JSONDecoder"},
                "output_schema",
                "'json:JSONDecoder' is the class JSONDecoder, not a pydantic model class",
            ),
            (
                {"output_schema": "tests.test_typed_results:MARS"},
                "output_schema",
                "'tests.test_typed_results:MARS' is a dict, not a pydantic model class",
            ),
            (
                {"output_schema": "no_such_module_for_typed_results:Model"},
                "output_schema",
                "cannot import module 'no_such_module_for_typed_results'",
            ),
            (
                {"output_schema": "tests.test_typed_results:Nothing"},
                "output_schema",
                "module 'tests.test_typed_results' has no attribute 'Nothing'",
            ),
            (
                {"output_schema": "PlanetFacts"},
                "output_schema",
                "'PlanetFacts' is not an import string 'package.module:Model'",
            ),
            (
                {"output_schema": ["planet", "km"]},
                "output_schema",
                "expected an inline JSON Schema (a mapping) or an import string",
            ),
            (
                {"output_schema": PLANET, "output_strategy": "native"},
                "output_strategy",
                "Input should be 'auto', 'provider' or 'tool'",
            ),
            (
                {"output_strategy": "tool"},
                "output_strategy",
                "output_strategy 'tool' has no effect without output_schema",
            ),
        ],
    )
    def test_a_bad_output_schema_or_strategy_is_rejected_naming_file_and_field(
        self, folder: AssistantFolder, fields: dict[str, Any], field: str, message: str
    ) -> None:
        path = folder.add("finder", **fields)

        with pytest.raises(AssistantConfigError) as raised:
            folder.load()

        [problem] = raised.value.problems
        assert (problem.file, problem.field) == (str(path), field)
        assert message in problem.message

    def test_a_tool_named_like_the_output_tool_is_refused_when_the_graph_is_built(
        self, folder: AssistantFolder
    ) -> None:
        folder.write(
            "tools.py",
            "from langchain_core.tools import tool\n\n\n"
            "@tool\ndef final_result(answer: str) -> str:\n"
            '    """Give the answer."""\n'
            "    return answer\n",
        )
        path = folder.add("finder", tools=["final_result"], output_schema=PLANET)
        team = folder.load()

        with pytest.raises(AssistantConfigError) as raised:
            build_assistant_graph("finder", team, model=ScriptedModels({}))

        [problem] = raised.value.problems
        assert (problem.file, problem.field) == (str(path), "tools")
        assert "rename the tool" in problem.message

    def test_an_artifact_from_before_typed_results_reads_as_untyped(self) -> None:
        old = ToolMessage(
            "Hi!",
            tool_call_id="call_1",
            artifact={
                "input": "Say hi.",
                "response_messages": [],
                "returning_incomplete": False,
                "sub_assistant_state_data": None,
                "subgraph_uid": "writer-1",
                "assistant": "writer",
            },
        )

        artifact = read_artifact(old)

        assert artifact is not None and artifact["structured_response"] is None


class TestTypedRoot:
    def test_the_final_event_and_the_state_carry_the_result(self, folder: AssistantFolder) -> None:
        team = pair(folder)
        models = ScriptedModels({"finder": [structured_ai(MARS), structured_ai(MARS)]})
        graph = build_assistant_graph("finder", team, model=models)

        final = list(stream_events(graph, "Mars?"))[-1]
        state = graph.invoke({"messages": [("user", "Mars?")]})

        assert isinstance(final, FinalEvent)
        assert (final.status, final.structured_response) == ("completed", MARS)
        assert final.to_dict()["structured_response"] == MARS
        assert final.content == MARS_JSON
        assert state["structured_response"] == MARS

    async def test_a_new_turn_forgets_the_last_result_until_it_gives_a_valid_one(
        self, folder: AssistantFolder
    ) -> None:
        team = pair(folder, budget={"max_steps": 1})
        models = ScriptedModels({"finder": [structured_ai(MARS), structured_ai({"km": 1})]})
        graph = build_assistant_graph("finder", team, model=models, checkpointer=InMemorySaver())

        first = [e async for e in astream_events(graph, "Mars?", CONFIG)][-1]
        second = [e async for e in astream_events(graph, "Venus?", CONFIG)][-1]

        assert isinstance(first, FinalEvent) and isinstance(second, FinalEvent)
        assert (first.status, first.structured_response) == ("completed", MARS)
        assert (second.status, second.structured_response) == ("incomplete", None)
        assert "'planet' is a required property" in second.content

    def test_a_failed_turn_does_not_report_the_last_turns_result(
        self, folder: AssistantFolder
    ) -> None:
        team = pair(folder)
        models = ScriptedModels({"finder": [structured_ai(MARS)]})  # the second call fails
        graph = build_assistant_graph("finder", team, model=models, checkpointer=InMemorySaver())

        first = list(stream_events(graph, "Mars?", CONFIG))[-1]
        second = list(stream_events(graph, "Venus?", CONFIG))[-1]

        assert isinstance(first, FinalEvent) and isinstance(second, FinalEvent)
        assert (first.status, first.structured_response) == ("completed", MARS)
        assert (second.status, second.structured_response) == ("error", None)

    def test_run_prints_the_result_as_json_on_stdout(
        self, folder: AssistantFolder, http: ScriptedOpenAIServer
    ) -> None:
        team = pair(folder)
        http.router = route_by_assistant(team)
        http.script("finder", json.dumps(MARS, indent=2), structured_reply(MARS))
        runner = CliRunner()
        common = ["--assistants", str(folder.path), "--db", ":memory:"]

        plain = runner.invoke(app, ["run", "finder", "Mars?", *common])
        as_json = runner.invoke(app, ["run", "finder", "Mars?", "--json", *common])

        assert http.errors == []
        assert (plain.exit_code, plain.stdout) == (0, MARS_JSON + "\n")
        final = json.loads(as_json.stdout.splitlines()[-1])
        assert (final["type"], final["structured_response"]) == ("final", MARS)
        assert all(request.json_schema == PLANET for request in http.requests)
