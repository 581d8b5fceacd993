"""``ui --demo``: the example team on scripted models, with something to show on each page.

No model is called. The example team (proxy, researcher, calculator, writer) runs as its
YAML says, with two additions so the page can show the person in the loop: the
researcher and the writer may ask the person (``ask_user``), and the writer's
``word_count`` needs the person's approval. The proxy's scripted model chooses what to
do from the person's message:

* a question about planet sizes (*How many times larger is Jupiter's radius than
  Earth's?*): two researchers in parallel, then a third with both findings forwarded
  (``pass_contexts``), who asks the calculator: three levels deep;
* a trip to plan: the researcher and the writer, in parallel, each ask the person a
  question, answered together;
* something to write: the writer wants to count the words of its sentence, which waits
  for the person's approval;
* *fail*: the researcher's model server answers 503 (simulated) on the first call and on
  its retry, so the run fails; continuing the run runs the failed step again, which
  then succeeds;
* anything else: the researcher looks it up with ``lookup_fact`` and the proxy relays
  what it found (so what the person types comes back in tool results and replies).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from assistant_graph._catalog import AssistantCatalog, load_assistants
from assistant_graph._example_team import example_assistants
from assistant_graph._model_calls import RetryPolicy
from assistant_graph._state import message_text
from assistant_graph._sub_assistant import final_answer, read_artifact
from assistant_graph.testing import ModelCall, ScriptedModels, ai, call_sub_assistant, call_tool

__all__ = [
    "DEMO_LATENCY",
    "DEMO_RETRY",
    "DEMO_SUGGESTIONS",
    "SimulatedOutageError",
    "demo_catalog",
    "demo_models",
]

DEMO_LATENCY = 0.3
"""Seconds each scripted model call takes, so the tree can be watched filling in."""
DEMO_RETRY = RetryPolicy(max_attempts=2, initial_delay=0.2, max_delay=0.2, jitter=0.0)
"""One quick retry, so the demo's failure shows a retry before the run fails."""
DEMO_SUGGESTIONS = (
    "How many times larger is Jupiter's radius than Earth's?",
    "Help me plan a trip to another planet.",
    "Write one sentence about the Moon.",
    "Look up Mars, and fail once on the way.",
)
"""Messages the demo page offers to send, one per scripted behaviour."""

REPLIES = 10_000
"""How many model calls each scripted assistant answers (each by the same function)."""
SIZE_WORDS = ("larger", "radius", "times", "bigger", "wider")
TRIP_WORDS = ("trip", "travel", "visit")
WRITE_WORDS = ("write", "sentence", "poem", "postcard")
FAIL_WORDS = ("fail once",)
ASK_PERSON = "Ask the person first: "
RATIO_REQUEST = "How many times larger is Jupiter's radius than Earth's? Use the calculator."
RATIO = "69911 / 6371"
OUTAGE = "503 Service Unavailable (simulated by the demo)"
FAILING_CALLS = 2
"""How many calls in a row fail each time the demo's failure is asked for."""
RELAY = "The researcher found: {answer}"
MOON = "The Moon, 1737.4 km in radius, keeps the same face turned to Earth."


class SimulatedOutageError(RuntimeError):
    """The demo's stand-in for a model server that is down for a moment (transient)."""

    status_code = 503
    """The HTTP status it stands for."""


def demo_catalog() -> AssistantCatalog:
    """The example team, with the researcher and writer allowed to ask the person and the
    writer's word counts needing approval."""
    folder = example_assistants()
    team = load_assistants(folder)
    changes: dict[str, dict[str, Any]] = {
        "researcher": {"ask_user": True},
        "writer": {"ask_user": True, "require_approval": ["word_count"]},
    }
    schemas = [
        {**team[name].model_dump(exclude_defaults=True), **changes.get(name, {})} for name in team
    ]
    return AssistantCatalog.from_schemas(schemas, folder=folder)


def demo_models(*, latency: float = DEMO_LATENCY) -> ScriptedModels:
    """Scripted models of the demo team that answer any message (see the module doc)."""
    researcher = _Researcher()
    replies: dict[str, Callable[[ModelCall], AIMessage]] = {
        "proxy": _proxy,
        "researcher": researcher,
        "calculator": _calculator,
        "writer": _writer,
    }
    return ScriptedModels(
        {name: [reply] * REPLIES for name, reply in replies.items()}, latency=latency
    )


# The proxy -----------------------------------------------------------------------------


def _proxy(call: ModelCall) -> AIMessage:
    """Pick the behaviour from the person's message; each step from the results so far."""
    request, results = _turn(call.messages)
    text = request.lower()
    if any(word in text for word in SIZE_WORDS):
        return _sizes(results)
    if any(word in text for word in TRIP_WORDS):
        return _trip(results)
    if any(word in text for word in WRITE_WORDS):
        return _write(request, results)
    if any(word in text for word in FAIL_WORDS):
        return _relay(results, "Mars")
    return _relay(results, request)


def _sizes(results: Sequence[ToolMessage]) -> AIMessage:
    if not results:
        return ai(
            "Two researchers will look up the radii in parallel.",
            tool_calls=[
                call_sub_assistant("researcher", "Find Jupiter's mean radius."),
                call_sub_assistant("researcher", "Find Earth's mean radius."),
            ],
        )
    if len(results) == 2:
        return ai(
            "Now the ratio, with both findings forwarded.",
            tool_calls=[
                call_sub_assistant(
                    "researcher",
                    RATIO_REQUEST,
                    pass_contexts=[message.tool_call_id for message in results],
                )
            ],
        )
    return ai(f"{_answer(results[-1])} (Jupiter 69911 km, Earth 6371 km.)")


def _trip(results: Sequence[ToolMessage]) -> AIMessage:
    if not results:
        return ai(
            "The researcher and the writer will prepare it; each has a question for you.",
            tool_calls=[
                call_sub_assistant("researcher", ASK_PERSON + "which planet? Then look it up."),
                call_sub_assistant(
                    "writer", ASK_PERSON + "who is the postcard for? Then write it."
                ),
            ],
        )
    return ai("Your trip: " + " ".join(_answer(message) for message in results))


def _write(request: str, results: Sequence[ToolMessage]) -> AIMessage:
    if not results:
        return ai(
            "I'll ask the writer.",
            tool_calls=[call_sub_assistant("writer", request, pass_num_previous_messages=1)],
        )
    return ai(_answer(results[-1]))


def _relay(results: Sequence[ToolMessage], topic: str) -> AIMessage:
    if not results:
        return ai(
            "I'll ask the researcher.",
            tool_calls=[call_sub_assistant("researcher", f"Look up: {topic}")],
        )
    return ai(RELAY.format(answer=_answer(results[-1])))


# The other assistants --------------------------------------------------------------------


class _Researcher:
    """Looks things up; asks the person first when told to; asked to look up Mars, its
    first two calls fail (the demo's failure: the call and its retry), the next succeeds."""

    def __init__(self) -> None:
        self._mars = itertools.count()
        self._lock = threading.Lock()

    def __call__(self, call: ModelCall) -> AIMessage:
        request, results = _turn(call.messages)
        if request.startswith(ASK_PERSON):
            if not results:
                return ai(tool_calls=[call_tool("ask_user", question="Which planet?")])
            if len(results) == 1:
                return ai(tool_calls=[call_tool("lookup_fact", topic=message_text(results[0]))])
            return ai(message_text(results[-1]))
        if request.startswith(RATIO_REQUEST):
            if not results:
                return ai(tool_calls=[call_sub_assistant("calculator", RATIO)])
            return ai(f"Jupiter's radius is {_answer(results[-1])} times Earth's.")
        if not results:
            self._fail_every_other_mars(request)
            topic = request.removeprefix("Look up: ").removeprefix("Find ")
            return ai(tool_calls=[call_tool("lookup_fact", topic=_topic(topic))])
        return ai(message_text(results[-1]))

    def _fail_every_other_mars(self, request: str) -> None:
        if request == "Look up: Mars":
            with self._lock:
                if next(self._mars) % (FAILING_CALLS + 1) < FAILING_CALLS:
                    raise SimulatedOutageError(OUTAGE)


def _calculator(call: ModelCall) -> AIMessage:
    request, results = _turn(call.messages)
    if not results:
        return ai(tool_calls=[call_tool("calculate", expression=request)])
    return ai(message_text(results[-1]).rsplit("=", 1)[-1].strip())


def _writer(call: ModelCall) -> AIMessage:
    request, results = _turn(call.messages)
    if request.startswith(ASK_PERSON):
        if not results:
            return ai(tool_calls=[call_tool("ask_user", question="Who is the postcard for?")])
        return ai(f"Dear {message_text(results[0])}, greetings from far away!")
    if not results:
        return ai(tool_calls=[call_tool("word_count", text=MOON)])
    if results[-1].status == "error":
        return ai(f"{MOON} (The words were not counted: {message_text(results[-1])})")
    return ai(f"{MOON} ({message_text(results[-1])} words.)")


# Reading a conversation ------------------------------------------------------------------


def _turn(messages: Sequence[BaseMessage]) -> tuple[str, list[ToolMessage]]:
    """The latest person's (or caller's) message, and the tool results since."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            later = messages[index + 1 :]
            results = [message for message in later if isinstance(message, ToolMessage)]
            return message_text(messages[index]).split("\n\n", 1)[0], results
    return "", []


def _answer(result: ToolMessage) -> str:
    """A sub-assistant's answer without the uid note (a plain tool result as it is)."""
    artifact = read_artifact(result)
    if artifact is None:
        return message_text(result)
    return final_answer(artifact["response_messages"]) or message_text(result)


def _topic(text: str) -> str:
    words = text.lower().replace("'s", "").replace(".", "").split()
    for known in ("jupiter", "earth", "mars", "moon"):
        if known in words:
            return known
    return " ".join(text.split())
