"""Long threads: an assistant condenses its older messages into a summary with its own model.

Message sizes are chosen far from the 200-token limit, so the tests pass whether tokens are
counted with tiktoken or approximately (tiktoken cannot download its encoding here).
"""

from __future__ import annotations

import hashlib
import sys
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import ValidationError

from assistant_graph import (
    AssistantCatalog,
    AssistantSchema,
    ModelCallError,
    build_assistant_graph,
    read_artifact,
)
from assistant_graph import _summary as summary_module
from assistant_graph._graph import SUMMARY_PROMPT
from assistant_graph._sub_assistant import INPUT_SUMMARY
from assistant_graph._summary import SUMMARIZER_INSTRUCTIONS, count_tokens
from assistant_graph.testing import (
    ModelCall,
    ScriptedModels,
    ScriptedOpenAIServer,
    ai,
    call_sub_assistant,
    call_tool,
    reply,
    route_by_system_prompt,
    tool_call,
)

LONG = "mars " * 400
"""About 400 tokens with tiktoken, 500 approximately: always past the limit of 200."""
CONFIG: RunnableConfig = {"configurable": {"thread_id": "long"}}


def long_report() -> str:
    """Read the long report."""
    return f"The report: {LONG}"


def assistant(name: str = "chat", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"The {name} assistant.",
        "instructions": f"You are {name}.",
        "summarize_after_tokens": 200,
        "summary_keep_messages": 2,
        **fields,
    }


def catalog(*schemas: dict[str, Any]) -> AssistantCatalog:
    return AssistantCatalog.from_schemas(schemas or [assistant()])


def seen(messages: Sequence[BaseMessage]) -> list[tuple[str, Any]]:
    """Messages as (type, content) pairs, to compare whole prompts."""
    return [(message.type, message.content) for message in messages]


def summary_message(summary: str) -> tuple[str, str]:
    """The summary as the assistant's model sees it, after its instructions."""
    return ("system", SUMMARY_PROMPT.format(summary=summary))


def is_summary_request(call: ModelCall) -> bool:
    return call.messages[0].content == SUMMARIZER_INSTRUCTIONS


def run_turns(graph: Any, *texts: str) -> Any:
    result = None
    for text in texts:
        result = graph.invoke({"messages": [HumanMessage(text)]}, CONFIG)
    return result


def last_uid(call: ModelCall) -> str:
    results = [m for m in call.messages if isinstance(m, ToolMessage)]
    artifact = read_artifact(results[-1])
    assert artifact is not None
    return artifact["subgraph_uid"]


def resume_helper(message: str) -> Any:
    return lambda call: ai(
        tool_calls=[call_sub_assistant("helper", message, resume_conversation_uid=last_uid(call))]
    )


class TestWhenASummaryIsMade:
    def test_below_the_limit_the_model_sees_every_message_and_no_summary_is_made(self) -> None:
        models = ScriptedModels({"chat": ["one", "two"]})
        graph = build_assistant_graph("chat", catalog(), model=models, checkpointer=InMemorySaver())
        result = run_turns(graph, "hi", "hi again")

        assert len(models.calls("chat")) == 2
        assert seen(models.calls("chat")[1].messages) == [
            ("system", "You are chat."),
            ("human", "hi"),
            ("ai", "one"),
            ("human", "hi again"),
        ]
        assert result.get("summary_of_conversation") is None

    def test_past_the_limit_older_messages_are_folded_into_a_summary_the_model_sees_first(
        self,
    ) -> None:
        models = ScriptedModels({"chat": ["one", "two", "The user said hi twice.", "three"]})
        graph = build_assistant_graph("chat", catalog(), model=models, checkpointer=InMemorySaver())
        run_turns(graph, "hi", "hi again", LONG)

        summarizer, answer = models.calls("chat")[2:]
        assert summarizer.tools == []
        assert seen(summarizer.messages)[0] == ("system", SUMMARIZER_INSTRUCTIONS)
        assert "Summary so far:\n(none yet)" in summarizer.text
        assert "Human: hi\nAI: one\n\n" in summarizer.text
        assert "hi again" not in summarizer.text
        assert seen(answer.messages) == [
            ("system", "You are chat."),
            summary_message("The user said hi twice."),
            ("human", "hi again"),
            ("ai", "two"),
            ("human", LONG),
        ]

    def test_the_thread_keeps_the_full_history(self) -> None:
        models = ScriptedModels({"chat": ["one", "two", "The user said hi twice.", "three"]})
        graph = build_assistant_graph("chat", catalog(), model=models, checkpointer=InMemorySaver())
        run_turns(graph, "hi", "hi again", LONG)

        values = graph.get_state(CONFIG).values
        assert [m.content for m in values["messages"]] == [
            "hi",
            "one",
            "hi again",
            "two",
            LONG,
            "three",
        ]
        assert values["summary_of_conversation"] == "The user said hi twice."
        assert values["summarized_message_count"] == 2

    def test_a_second_summary_folds_in_the_previous_one(self) -> None:
        script = ["one", "two", "Summary one.", "three", "Summary two.", "four"]
        models = ScriptedModels({"chat": script})
        graph = build_assistant_graph("chat", catalog(), model=models, checkpointer=InMemorySaver())
        run_turns(graph, "hi", "hi again", LONG, "more " + LONG)

        second_summarizer, answer = models.calls("chat")[4:]
        assert is_summary_request(second_summarizer)
        assert "Summary so far:\nSummary one.\n\n" in second_summarizer.text
        assert "Human: hi again\nAI: two\n\n" in second_summarizer.text
        assert "Human: hi\n" not in second_summarizer.text
        assert seen(answer.messages) == [
            ("system", "You are chat."),
            summary_message("Summary two."),
            ("human", LONG),
            ("ai", "three"),
            ("human", "more " + LONG),
        ]
        assert graph.get_state(CONFIG).values["summarized_message_count"] == 4

    def test_the_cut_never_separates_tool_calls_from_their_results(self) -> None:
        team = catalog(assistant(tools=["tests.test_summary:long_report"], summary_keep_messages=1))
        calls = [call_tool("long_report", id="c1"), call_tool("long_report", id="c2")]
        models = ScriptedModels({"chat": [ai(tool_calls=calls), "Asked for reports.", "Mars."]})
        build_assistant_graph("chat", team, model=models).invoke(
            {"messages": [HumanMessage("reports please")]}
        )

        summarizer, answer = models.calls("chat")[1:]
        assert summarizer.text.endswith("Human: reports please\n\nWrite the updated summary.")
        # Keeping one message would start at a tool result: the cut moves back to the call.
        visible = answer.messages[2:]
        assert [type(m) for m in visible] == [AIMessage, ToolMessage, ToolMessage]
        assert isinstance(visible[0], AIMessage)
        assert [c["id"] for c in visible[0].tool_calls] == ["c1", "c2"]
        assert [m.tool_call_id for m in visible[1:] if isinstance(m, ToolMessage)] == ["c1", "c2"]

    async def test_async_runs_summarize_the_same_way(self) -> None:
        team = catalog(assistant(tools=["tests.test_summary:long_report"], summary_keep_messages=1))
        models = ScriptedModels(
            {"chat": [ai(tool_calls=[call_tool("long_report")]), "Asked for a report.", "Mars."]}
        )
        await build_assistant_graph("chat", team, model=models).ainvoke(
            {"messages": [HumanMessage("report please")]}
        )

        summarizer, answer = models.calls("chat")[1:]
        assert is_summary_request(summarizer) and summarizer.tools == []
        assert seen(answer.messages[:2]) == [
            ("system", "You are chat."),
            summary_message("Asked for a report."),
        ]

    def test_graphs_of_assistants_without_the_option_have_no_summarize_step(self) -> None:
        team = catalog(assistant(), assistant("plain", summarize_after_tokens=None))
        models = ScriptedModels({})
        assert "summarize" in build_assistant_graph("chat", team, model=models).get_graph().nodes
        assert (
            "summarize" not in build_assistant_graph("plain", team, model=models).get_graph().nodes
        )

    def test_the_limit_must_be_at_least_200_tokens(self) -> None:
        with pytest.raises(ValidationError, match="summarize_after_tokens"):
            AssistantSchema.model_validate(assistant(summarize_after_tokens=50))


class TestSummariesAndSubAssistants:
    def test_a_sub_assistant_receives_the_summary_at_the_end_of_its_input(self) -> None:
        team = catalog(
            assistant("proxy", sub_assistants=["helper"], summary_keep_messages=1),
            assistant("helper", callable=True, summarize_after_tokens=None),
        )
        models = ScriptedModels(
            {
                "proxy": [
                    "Noted.",
                    "The user wrote at length about Mars.",
                    ai(tool_calls=[call_sub_assistant("helper", "Check the facts.")]),
                    "Checked.",
                ],
                "helper": ["Facts are fine."],
            }
        )
        graph = build_assistant_graph("proxy", team, model=models, checkpointer=InMemorySaver())
        run_turns(graph, LONG, "Ask the helper to check.")

        assert models.calls("helper")[0].last_message.content == (
            f"Check the facts.\n\n{INPUT_SUMMARY}\nThe user wrote at length about Mars."
        )

    def test_a_resumed_sub_conversation_keeps_its_summary_and_hides_what_it_covers(
        self,
    ) -> None:
        team = catalog(
            assistant("proxy", sub_assistants=["helper"], summarize_after_tokens=None),
            assistant("helper", callable=True, summary_keep_messages=1),
        )
        models = ScriptedModels(
            {
                "proxy": [
                    ai(tool_calls=[call_sub_assistant("helper", LONG)]),
                    resume_helper("more"),
                    resume_helper("again"),
                    "done",
                ],
                "helper": ["first", "Helper summary.", "second", "third"],
            }
        )
        build_assistant_graph("proxy", team, model=models).invoke(
            {"messages": [HumanMessage("go")]}
        )

        assert is_summary_request(models.calls("helper")[1])
        assert seen(models.calls("helper")[3].messages) == [
            ("system", "You are helper."),
            summary_message("Helper summary."),
            ("human", "more"),
            ("ai", "second"),
            ("human", "again"),
        ]


class TestSummariesAndTheRun:
    def test_summarizing_does_not_use_the_step_budget(self) -> None:
        team = catalog(
            assistant(
                tools=["tests.test_summary:long_report"],
                summary_keep_messages=1,
                budget={"max_steps": 2},
            )
        )
        models = ScriptedModels(
            {"chat": [ai(tool_calls=[call_tool("long_report")]), "A report.", "Mars."]}
        )
        result = build_assistant_graph("chat", team, model=models).invoke(
            {"messages": [HumanMessage("report please")]}
        )

        assert [is_summary_request(call) for call in models.calls("chat")] == [False, True, False]
        assert result["incomplete"] is False
        assert result["steps_remaining"] == 0
        assert result["messages"][-1].content == "Mars."

    def test_summarizing_before_every_model_call_still_stops_by_budget_not_recursion(
        self,
    ) -> None:
        team = catalog(
            assistant(
                tools=["tests.test_summary:long_report"],
                summary_keep_messages=1,
                budget={"max_steps": 30},
            )
        )

        def looping(call: ModelCall) -> AIMessage | str:
            return "Summary." if not call.tools else ai(tool_calls=[call_tool("long_report")])

        models = ScriptedModels({"chat": [looping] * 60})
        result = build_assistant_graph("chat", team, model=models).invoke(
            {"messages": [HumanMessage("loop")]}
        )

        summaries = [call for call in models.calls("chat") if is_summary_request(call)]
        assert len(models.calls("chat")) - len(summaries) == 30
        assert len(summaries) == 29
        assert result["incomplete"] is True

    def test_a_failing_summarizer_raises_model_call_error_with_the_path(self) -> None:
        def server_down(call: ModelCall) -> str:
            raise RuntimeError("summarizer down")  # not transient: no retry

        team = catalog(
            assistant("proxy", sub_assistants=["helper"], summarize_after_tokens=None),
            assistant(
                "helper",
                callable=True,
                tools=["tests.test_summary:long_report"],
                summary_keep_messages=1,
            ),
        )
        models = ScriptedModels(
            {
                "proxy": [ai(tool_calls=[call_sub_assistant("helper", "Read the report.")])],
                "helper": [ai(tool_calls=[call_tool("long_report")]), server_down],
            }
        )
        with pytest.raises(ModelCallError) as error:
            build_assistant_graph("proxy", team, model=models).invoke(
                {"messages": [HumanMessage("go")]}
            )
        assert error.value.path == ("proxy", "helper")
        assert "RuntimeError: summarizer down" in str(error.value)


@pytest.fixture
def fresh_token_counter() -> Iterator[None]:
    """Let ``count_tokens`` choose its counter again (the choice is cached per process)."""
    summary_module._tiktoken_counter.cache_clear()
    yield
    summary_module._tiktoken_counter.cache_clear()


class _FakeEncoding:
    def encode(self, text: str, disallowed_special: Any = ()) -> list[str]:
        return text.split()


MESSAGES: list[BaseMessage] = [HumanMessage("how wide is mars"), AIMessage("6779 km")]


@pytest.fixture
def cached_encoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tiktoken's cache with the o200k_base encoding in it, as its first download leaves it."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    url = summary_module.TIKTOKEN_ENCODING_URL.format(name="o200k_base")
    path = tmp_path / hashlib.sha1(url.encode()).hexdigest()
    path.write_bytes(b"cached")
    return path


@pytest.mark.usefixtures("fresh_token_counter")
class TestTokenCounting:
    @pytest.mark.usefixtures("cached_encoding")
    def test_tokens_are_counted_with_tiktoken_o200k_base_when_it_loads(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        loaded: list[str] = []

        def get_encoding(name: str) -> _FakeEncoding:
            loaded.append(name)
            return _FakeEncoding()

        fake = types.ModuleType("tiktoken")
        # A bare module standing in for tiktoken: mypy knows no attributes on it.
        fake.get_encoding = get_encoding  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "tiktoken", fake)

        # "Human: how wide is mars" and "AI: 6779 km", plus 3 tokens around each message.
        assert count_tokens(MESSAGES) == (5 + 3) + (3 + 3)
        assert loaded == ["o200k_base"]

    def test_tokens_are_counted_approximately_when_tiktoken_is_not_installed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(sys.modules, "tiktoken", None)
        assert count_tokens(MESSAGES) == count_tokens_approximately(MESSAGES)

    def test_an_encoding_that_is_not_on_this_machine_is_never_downloaded(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # empty: nothing cached
        asked: list[str] = []
        fake = types.ModuleType("tiktoken")
        # A bare module standing in for tiktoken: mypy knows no attributes on it.
        fake.get_encoding = asked.append  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "tiktoken", fake)
        assert count_tokens(MESSAGES) == count_tokens_approximately(MESSAGES)
        assert asked == []

    @pytest.mark.usefixtures("cached_encoding")
    def test_tokens_are_counted_approximately_when_tiktoken_cannot_load_its_encoding(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def offline(name: str) -> Any:
            raise ConnectionError("cannot download o200k_base")

        fake = types.ModuleType("tiktoken")
        # A bare module standing in for tiktoken: mypy knows no attributes on it.
        fake.get_encoding = offline  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "tiktoken", fake)
        assert count_tokens(MESSAGES) == count_tokens_approximately(MESSAGES)


def test_over_http_the_summary_request_has_no_tools_and_later_requests_carry_the_summary(
    scripted_openai_server: ScriptedOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scripted_openai_server
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    server.router = route_by_system_prompt(
        {"You are chat.": "chat", SUMMARIZER_INSTRUCTIONS[:40]: "summary"}
    )
    server.script(
        "chat", "Hello!", reply(tool_calls=[tool_call("long_report")]), "The report is on Mars."
    )
    server.script("summary", "The user greeted the assistant.")
    team = catalog(
        assistant(
            model="openai:gpt-4o-mini",
            tools=["tests.test_summary:long_report"],
            summary_keep_messages=1,
        )
    )
    graph = build_assistant_graph("chat", team, checkpointer=InMemorySaver())
    result = run_turns(graph, "hi", "Read me the report.")

    assert server.errors == []
    assert result["messages"][-1].content == "The report is on Mars."
    [summary_request] = server.requests_for("summary")
    assert summary_request.tools == []
    assert [m["role"] for m in summary_request.messages] == ["system", "user"]
    assert "Human: hi\nAI: Hello!\n\n" in summary_request.last_user_message
    last = server.requests_for("chat")[-1]
    assert last.tools == ["long_report"]
    assert [m["role"] for m in last.messages] == ["system", "system", "user", "assistant", "tool"]
    assert last.messages[1]["content"] == SUMMARY_PROMPT.format(
        summary="The user greeted the assistant."
    )
