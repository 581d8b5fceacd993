"""Scripted replies of the example team (``assistants/``) for notebooks 01 to 03.

Each function returns fresh :class:`~assistant_graph.testing.ScriptedModels` that play
one notebook's story, the way the real models would: the proxy delegates, the researcher
looks facts up and has the calculator compute, the writer writes. Replies that depend on
what happened earlier (a conversation uid, a forwarded result) are functions of the call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from assistant_graph._catalog import AssistantCatalog
from assistant_graph._names import tool_name_from_assistant_name
from assistant_graph._state import message_text
from assistant_graph._sub_assistant import final_answer, read_artifact
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant, call_tool

__all__ = ["context_and_resume_models", "hitl_models", "hitl_team", "quickstart_models"]

SUNLIGHT_QUESTION = "How long does sunlight take to reach Earth?"
"""What the proxy of notebook 02 asks the researcher (the person's question is in the
notebook)."""


def quickstart_models() -> ScriptedModels:
    """Notebook 01: proxy -> researcher (two facts in parallel, then calculator) -> answer."""
    return ScriptedModels(
        {
            "proxy": [
                _hand_on("researcher"),
                _relay("Here is what the researcher found: "),
            ],
            "researcher": [
                ai(
                    tool_calls=[
                        call_tool("lookup_fact", topic="mars"),
                        call_tool("lookup_fact", topic="earth"),
                    ]
                ),
                ai(tool_calls=[call_sub_assistant("calculator", "2*6371 - 2*3389.5")]),
                "Mars is 6779 km wide and Earth 12742 km, so Earth is 5963 km wider.",
            ],
            "calculator": [
                ai(tool_calls=[call_tool("calculate", expression="2*6371 - 2*3389.5")]),
                "5963",
            ],
        }
    )


def context_and_resume_models() -> ScriptedModels:
    """Notebook 02: the researcher's result is forwarded to the writer as a context, and
    the next turn resumes the writer's conversation instead of starting over."""
    return ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_sub_assistant("researcher", SUNLIGHT_QUESTION, id="research")]),
                ai(
                    tool_calls=[
                        call_sub_assistant(
                            "writer",
                            "Write one clear sentence for the user from this finding.",
                            pass_contexts=["research"],
                            id="write",
                        )
                    ]
                ),
                _relay(""),
                _resume_writer("Shorter and more playful, please; keep the number."),
                _relay(""),
            ],
            "researcher": [
                ai(
                    tool_calls=[
                        call_tool("lookup_fact", topic="speed of light"),
                        call_tool("lookup_fact", topic="earth"),
                    ]
                ),
                ai(tool_calls=[call_sub_assistant("calculator", "149.6e6 / 299792.458 / 60")]),
                "Sunlight travels 149.6 million km at 299792.458 km/s: about 8.3 minutes.",
            ],
            "calculator": [
                ai(tool_calls=[call_tool("calculate", expression="149.6e6 / 299792.458 / 60")]),
                "8.3167",
            ],
            "writer": [
                "Sunlight leaves the Sun and reaches Earth about 8.3 minutes later.",
                "Blink and it's here: sunlight zips to Earth in 8.3 minutes!",
            ],
        }
    )


def hitl_team(catalog: AssistantCatalog) -> AssistantCatalog:
    """Notebook 03: the example team, where the proxy needs the person's approval before
    each research job and the writer may ask the person questions (``ask_user``)."""
    changes: dict[str, dict[str, Any]] = {
        "proxy": {"require_approval": [tool_name_from_assistant_name("researcher")]},
        "writer": {"ask_user": True},
    }
    schemas = [catalog[name].model_copy(update=changes.get(name, {})) for name in catalog]
    return AssistantCatalog.from_schemas(schemas, folder=catalog.folder)


def hitl_models() -> ScriptedModels:
    """Notebook 03: an approval at the root, then a question from the writer at depth 1."""
    return ScriptedModels(
        {
            "proxy": [
                ai(tool_calls=[call_sub_assistant("researcher", "Mars' radius?", id="research")]),
                ai(
                    tool_calls=[
                        call_sub_assistant(
                            "writer",
                            "Write a two-sentence note on the size of Mars.",
                            pass_contexts=["research"],
                        )
                    ]
                ),
                _relay(""),
            ],
            "researcher": [
                ai(tool_calls=[call_tool("lookup_fact", topic="mars")]),
                "Mars' mean radius is 3389.5 km.",
            ],
            "writer": [
                ai(tool_calls=[call_tool("ask_user", question="Who is the note for?")]),
                lambda call: (
                    f"For {message_text(call.last_message)}: Mars is 3389.5 km in radius, "
                    "about half as wide as Earth. It would still take you years to walk round it!"
                ),
            ],
        },
        latency=0.05,  # so the streamed tokens arrive as they would from a real model
    )


def _hand_on(assistant: str) -> Callable[[ModelCall], AIMessage]:
    """A reply that hands the person's question on to ``assistant`` as it is."""

    def hand_on(call: ModelCall) -> AIMessage:
        question = message_text(call.last_message)
        return ai(tool_calls=[call_sub_assistant(assistant, question)])

    return hand_on


def _relay(prefix: str) -> Callable[[ModelCall], str]:
    """A reply that passes the latest tool result on to the user (without its uid note)."""

    def relay(call: ModelCall) -> str:
        return prefix + _answer_of(_last_tool_message(call.messages))

    return relay


def _resume_writer(message: str) -> Callable[[ModelCall], AIMessage]:
    """A reply that continues the writer's latest conversation, by its uid."""

    def resume(call: ModelCall) -> AIMessage:
        writer = tool_name_from_assistant_name("writer")
        results = [m for m in call.messages if isinstance(m, ToolMessage) and m.name == writer]
        artifact = read_artifact(results[-1])
        uid = artifact["subgraph_uid"] if artifact else None
        return ai(
            tool_calls=[
                call_sub_assistant(
                    "writer", message, resume_conversation_uid=uid, pass_num_previous_messages=1
                )
            ]
        )

    return resume


def _last_tool_message(messages: Sequence[BaseMessage]) -> ToolMessage:
    return next(m for m in reversed(messages) if isinstance(m, ToolMessage))


def _answer_of(result: ToolMessage) -> str:
    """The answer of a sub-assistant result, without the note on how to resume it."""
    artifact = read_artifact(result)
    return final_answer(artifact["response_messages"]) if artifact else message_text(result)
