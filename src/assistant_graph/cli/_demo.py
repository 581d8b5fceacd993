"""``demo``: the example team (proxy -> researcher -> calculator, proxy -> writer) in two turns.

With ``OPENAI_API_KEY`` set the team runs on its real models. Without it the demo runs
offline on scripted models (:class:`~assistant_graph.testing.ScriptedModels`, in
process), and says so first. The scripts show four behaviours:

1. delegation: the proxy hands the question to the researcher;
2. nesting: the researcher asks the calculator, three levels deep;
3. context passing: the proxy forwards the researcher's findings to the writer with
   ``pass_contexts`` and ``pass_num_previous_messages``;
4. resuming: in the second turn, on the same thread, the proxy continues its earlier
   conversation with the writer by uid (``resume_conversation_uid``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from assistant_graph._catalog import AssistantCatalog
from assistant_graph._names import tool_name_from_assistant_name
from assistant_graph._persistence import MEMORY
from assistant_graph._sub_assistant import read_artifact
from assistant_graph.cli._failures import EXIT_OK, CliFailure
from assistant_graph.cli._output import Output, report_turn
from assistant_graph.cli._session import SessionSettings, open_session
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant, call_tool

__all__ = ["DEMO_QUESTIONS", "DEMO_TEAM", "check_team", "run_demo", "scripted_team"]

DEMO_TEAM = ("proxy", "researcher", "calculator", "writer")
"""The assistants the demo needs (the example team, which ships with the package)."""

DEMO_QUESTIONS = (
    "How many times larger is Jupiter's radius than Earth's? Answer in one sentence.",
    "Shorter, please: under ten words.",
)
"""What the person asks in the two turns."""

SCRIPTED_BANNER = (
    "This is a scripted demo: no model is called, every reply is scripted "
    "(set OPENAI_API_KEY to run the same team on a real model)."
)
REAL_BANNER = (
    "Running the example team on its real models (OPENAI_API_KEY is set); what it "
    "delegates is up to the models."
)
NARRATION = (
    "Turn 1: delegation three levels deep (proxy → researcher → calculator), then context "
    "passing: the proxy forwards the researcher's findings to the writer with "
    "pass_contexts and pass_num_previous_messages.",
    "Turn 2, same thread: resuming a sub-conversation: the proxy continues its earlier "
    "conversation with the writer by uid (resume_conversation_uid).",
)
YOU = "you: {question}"
NOT_THE_EXAMPLE_TEAM = (
    "the offline demo needs the example team ({team}) but {folder} lacks {missing}; "
    "leave out --assistants to use the example team that ships with the package"
)
NO_FINDINGS = "(I was given no findings to write from.)"
NO_EARLIER_TEXT = "(I have no earlier text to shorten.)"

LIVE_LATENCY = 0.3
RESEARCH_CALL_ID = "call_demo_research"
RATIO = "69911 / 6371"
FINDINGS = (
    "Jupiter's mean radius is 69911 km and Earth's is 6371 km; 69911 / 6371 = 10.9733, "
    "so Jupiter's radius is about 10.97 times Earth's."
)
SENTENCE = "Jupiter's radius, 69911 km, is about 10.97 times Earth's 6371 km."
SHORT_SENTENCE = "Jupiter is about 11 times wider than Earth."


def run_demo(assistants: Path, output: Output) -> int:
    """Run the two demo turns on one in-memory thread; returns the exit code.

    Raises:
        CliFailure: If the offline demo is asked to run on a team it has no script for.
        AssistantConfigError: If the assistants folder is missing or invalid.
    """
    real = bool(os.environ.get("OPENAI_API_KEY"))
    output.err.write((REAL_BANNER if real else SCRIPTED_BANNER) + "\n")
    output.err.flush()
    # On a terminal, scripted replies take a moment, so the live tree can be followed.
    latency = LIVE_LATENCY if output.err.isatty() else 0.0
    model = None if real else scripted_team(latency=latency)
    settings = SessionSettings(assistants, db=MEMORY, model=model)
    with open_session(settings, DEMO_TEAM[0]) as session:
        if not real:
            check_team(session.catalog, assistants, DEMO_TEAM)
        for index, question in enumerate(DEMO_QUESTIONS):
            if not real:
                output.note(NARRATION[index])
            output.note(YOU.format(question=question))
            code = report_turn(session, session.turn(question, output.renderer("proxy")), output)
            if code != EXIT_OK:
                return code
    return EXIT_OK


def check_team(catalog: AssistantCatalog, folder: Path, team: Sequence[str]) -> None:
    """Make sure the scripted models' team is there.

    Raises:
        CliFailure: ``catalog`` lacks some of ``team``.
    """
    missing = [name for name in team if name not in catalog]
    if missing:
        raise CliFailure(
            NOT_THE_EXAMPLE_TEAM.format(
                team=", ".join(team), folder=folder, missing=", ".join(missing)
            )
        )


def scripted_team(*, latency: float = 0.0) -> ScriptedModels:
    """Scripted models of the example team for the two demo turns.

    Replies that depend on the run (the writer's conversation uid, what the writer
    was given and remembers) are functions of the model call.

    Args:
        latency: Seconds each scripted model call takes.
    """
    return ScriptedModels(
        {
            "proxy": [
                ai(
                    "I'll have the researcher find the radii and work out the ratio.",
                    tool_calls=[
                        call_sub_assistant(
                            "researcher",
                            "Find the mean radii of Jupiter and Earth and how many times "
                            "larger Jupiter's is.",
                            id=RESEARCH_CALL_ID,
                        )
                    ],
                ),
                ai(
                    "Now the writer turns the findings into one sentence.",
                    tool_calls=[
                        call_sub_assistant(
                            "writer",
                            "Write one sentence for the user from the findings.",
                            pass_contexts=[RESEARCH_CALL_ID],
                            pass_num_previous_messages=1,
                        )
                    ],
                ),
                SENTENCE,
                _resume_writer,
                SHORT_SENTENCE,
            ],
            "researcher": [
                ai(
                    tool_calls=[
                        call_tool("lookup_fact", topic="jupiter"),
                        call_tool("lookup_fact", topic="earth"),
                    ]
                ),
                ai(tool_calls=[call_sub_assistant("calculator", RATIO)]),
                FINDINGS,
            ],
            "calculator": [ai(tool_calls=[call_tool("calculate", expression=RATIO)]), "10.9733"],
            "writer": [_write, _shorten, SHORT_SENTENCE],
        },
        latency=latency,
    )


def _resume_writer(call: ModelCall) -> AIMessage:
    """Continue the writer's conversation of the first turn, found by its uid."""
    uid = _last_uid(call.messages, "writer")
    return ai(
        "I'll ask the writer to shorten its sentence.",
        tool_calls=[
            call_sub_assistant(
                "writer", "Make it shorter: under ten words.", resume_conversation_uid=uid
            )
        ],
    )


def _write(call: ModelCall) -> AIMessage:
    """The writer writes from the findings, if they were passed to it as context."""
    return ai(SENTENCE if FINDINGS in call.text else NO_FINDINGS)


def _shorten(call: ModelCall) -> AIMessage:
    """The writer shortens its own earlier sentence, if its conversation was resumed."""
    remembers = any(
        isinstance(message, AIMessage) and SENTENCE in str(message.content)
        for message in call.messages
    )
    if not remembers:
        return ai(NO_EARLIER_TEXT)
    return ai(tool_calls=[call_tool("word_count", text=SHORT_SENTENCE)])


def _last_uid(messages: Sequence[BaseMessage], assistant: str) -> str | None:
    tool = tool_name_from_assistant_name(assistant)
    for message in reversed(messages):
        if isinstance(message, ToolMessage) and message.name == tool:
            artifact = read_artifact(message)
            if artifact is not None:
                return artifact["subgraph_uid"]
    return None
