"""Token usage summed per assistant and per path; large answers capped for the caller."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from assistant_graph import AssistantCatalog, build_assistant_graph, read_artifact, stream_events
from assistant_graph.events import FinalEvent, SubAssistantEndEvent
from assistant_graph.testing import ScriptedModels, ai, call_sub_assistant, call_tool


def usage(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def tokens(usage: Any) -> Any:
    """Only the token counts of a usage entry or a table of them (costs: tests/test_budgets.py)."""
    if "input_tokens" in usage:
        return {key: usage[key] for key in ("input_tokens", "output_tokens", "total_tokens")}
    return {key: tokens(value) for key, value in usage.items()}


def reply(content: str = "", tokens: tuple[int, int] = (0, 0), **kwargs: object) -> AIMessage:
    message = ai(content, **kwargs)  # type: ignore[arg-type]
    message.usage_metadata = usage(*tokens)  # type: ignore[assignment]
    return message


def test_usage_is_summed_per_assistant_and_per_path(team: AssistantCatalog) -> None:
    models = ScriptedModels(
        {
            "proxy": [
                reply(tokens=(100, 10), tool_calls=[call_sub_assistant("researcher", "q")]),
                reply("done", tokens=(300, 5)),
            ],
            "researcher": [
                reply(tokens=(50, 7), tool_calls=[call_sub_assistant("calculator", "1+1")]),
                reply("2", tokens=(80, 1)),
            ],
            "calculator": [
                reply(tokens=(20, 3), tool_calls=[call_tool("calculate", expression="1+1")]),
                reply("2", tokens=(30, 1)),
            ],
        }
    )
    graph = build_assistant_graph("proxy", team, model=models)
    events = list(stream_events(graph, "1+1?"))

    final = events[-1]
    assert isinstance(final, FinalEvent)
    assert tokens(final.usage["by_path"]) == {
        "proxy": usage(400, 15),
        "proxy>researcher": usage(130, 8),
        "proxy>researcher>calculator": usage(50, 4),
    }
    assert tokens(final.usage["by_assistant"]) == {
        "proxy": usage(400, 15),
        "researcher": usage(130, 8),
        "calculator": usage(50, 4),
    }
    assert tokens(final.usage["total"]) == usage(580, 27)

    ends = {e.assistant: e for e in events if isinstance(e, SubAssistantEndEvent)}
    assert tokens(ends["calculator"].usage["total"]) == usage(50, 4)  # type: ignore[index]
    assert tokens(ends["researcher"].usage["by_path"]) == {  # type: ignore[index]
        "researcher": usage(130, 8),
        "researcher>calculator": usage(50, 4),
    }


def test_the_artifact_carries_the_usage_of_the_whole_subtree(team: AssistantCatalog) -> None:
    models = ScriptedModels(
        {
            "proxy": [reply(tool_calls=[call_sub_assistant("researcher", "q")]), "done"],
            "researcher": [
                reply(tokens=(5, 5), tool_calls=[call_sub_assistant("calculator", "1")]),
                reply("1", tokens=(7, 1)),
            ],
            "calculator": [reply("1", tokens=(2, 1))],
        }
    )
    result = build_assistant_graph("proxy", team, model=models).invoke(
        {"messages": [("user", "q")]}
    )
    artifact = read_artifact(next(m for m in result["messages"] if isinstance(m, ToolMessage)))
    assert artifact is not None
    assert tokens(artifact["usage"]["total"]) == usage(14, 7)
    assert tokens(artifact["usage"]["by_assistant"]["calculator"]) == usage(2, 1)


def test_the_scripted_models_reported_usage_is_what_gets_summed(team: AssistantCatalog) -> None:
    models = ScriptedModels({"writer": ["one two three"]})
    final = list(stream_events(build_assistant_graph("writer", team, model=models), "a b"))[-1]
    [call] = models.calls("writer")
    prompt_words = sum(len(str(m.content).split()) for m in call.messages)
    assert tokens(final.usage["total"]) == usage(prompt_words, 3)  # type: ignore[attr-defined]


def talker_result(answer: str) -> ToolMessage:
    """The tool message a boss gets from a talker capped at 100 characters saying ``answer``."""
    team = AssistantCatalog.from_schemas(
        [
            {"name": "boss", "description": "d", "instructions": "i", "sub_assistants": ["talker"]},
            {
                "name": "talker",
                "description": "d",
                "instructions": "i",
                "callable": True,
                "max_result_chars": 100,
            },
        ]
    )
    models = ScriptedModels(
        {"boss": [ai(tool_calls=[call_sub_assistant("talker", "talk")]), "ok"], "talker": [answer]}
    )
    result = build_assistant_graph("boss", team, model=models).invoke(
        {"messages": [("user", "go")]}
    )
    return next(m for m in result["messages"] if isinstance(m, ToolMessage))


def test_a_long_answer_is_cut_for_the_caller_but_kept_whole_in_the_artifact() -> None:
    long_answer = "word " * 1000
    message = talker_result(long_answer)
    artifact = read_artifact(message)
    assert artifact is not None
    assert isinstance(message.content, str)
    assert message.content.startswith(long_answer.strip()[:100] + "\n[... cut: the answer has 4999")
    assert "only the first 100 are shown" in message.content
    assert f'resume_conversation_uid="{artifact["subgraph_uid"]}"' in message.content
    assert artifact["response_messages"][-1].content == long_answer
    assert len(message.content) < 500


def test_a_short_answer_is_not_cut() -> None:
    message = talker_result("short")
    assert isinstance(message.content, str)
    assert "cut" not in message.content and message.content.startswith("short\n\n")


def test_the_usage_of_summaries_is_counted_too() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    team = AssistantCatalog.from_schemas(
        [
            {
                "name": "talker",
                "description": "d",
                "instructions": "i",
                "summarize_after_tokens": 200,
                "summary_keep_messages": 1,
            }
        ]
    )
    models = ScriptedModels(
        {
            "talker": [
                reply("ok", tokens=(10, 1)),
                reply("the summary", tokens=(7, 3)),
                reply("fine", tokens=(20, 1)),
            ]
        }
    )
    graph = build_assistant_graph("talker", team, model=models, checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": "long"}}
    list(stream_events(graph, "word " * 300, config))
    final = list(stream_events(graph, "more " * 300, config))[-1]
    assert models.calls("talker")[1].tools == []  # the summarizer's call
    assert tokens(final.usage["total"]) == usage(27, 4)  # type: ignore[attr-defined]
