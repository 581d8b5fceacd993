"""The image team (``assistants/image_team/``) offline: a scripted OpenAI server plays it.

:func:`script_image_team` scripts a :class:`~assistant_graph.testing.ScriptedOpenAIServer`
to play every model of the create-analyse-recreate loop, routed by system prompt: the
user proxy follows its plan (resuming each specialist's conversation and forwarding the
previous result with ``pass_contexts``), the creator calls ``create_image``, the analyst
calls ``analyze_image``, and the critic (the vision model inside ``analyze_image``)
writes critiques. The images come from the server's ``/v1/images/generations``, drawn
from each prompt by :func:`~assistant_graph.examples.city_art.draw_city`, so each version
shows what its prompt (and the critique before it) asks for.

:func:`offline_image_team` starts such a server and points the OpenAI clients and the
image folder at it for the duration of a ``with`` block (used by notebook 04).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from assistant_graph._names import tool_name_from_assistant_name
from assistant_graph.examples.city_art import draw_city
from assistant_graph.examples.notebook import example_folder
from assistant_graph.studio import graph_factory
from assistant_graph.testing import (
    ChatRequest,
    ScriptedOpenAIServer,
    ScriptedReply,
    ScriptedToolCall,
    reply,
    route_by_system_prompt,
    tool_call,
)

__all__ = [
    "IMAGE_TEAM",
    "IMAGE_TEAM_REQUEST",
    "IMAGE_TEAM_ROOT",
    "graph",
    "image_team_folder",
    "offline_image_team",
    "script_image_team",
]

IMAGE_TEAM = "image_team"
"""The team's folder inside ``assistants/``."""
IMAGE_TEAM_ROOT = "user_proxy"
"""The assistant the user talks to."""
IMAGE_TEAM_REQUEST = "A futuristic city at twilight, reflected in a calm bay."
"""The request the examples send."""

ROUTES = {
    "You are the user proxy of an image team": "user_proxy",
    "You are the image creator": "image_creator",
    "You are the vision analyst": "vision_analyst",
    "You are an art critic": "critic",
}
"""A marker of each system prompt (the YAML instructions, the critic's prompt in
``tools.py``) and the script that answers it."""

PLAN = [
    ("image_creator", "Create this image: {request}", None, None),
    ("vision_analyst", "Analyse the image in the context.", "create_1", None),
    ("image_creator", "Recreate it with the improved prompt in the context.", "analyse_1", 0),
    ("vision_analyst", "Analyse the new image in the context.", "create_2", 1),
    ("image_creator", "Recreate it with the latest improved prompt.", "analyse_2", 0),
]
"""The proxy's five delegations: assistant, message, the call id forwarded with
``pass_contexts``, and which earlier step's conversation is resumed."""
CALL_IDS = ["create_1", "analyse_1", "create_2", "analyse_2", "create_3"]

CRITIQUES = [
    "The city glows in purples and blues, but the detail is overwhelming and nothing "
    "leads the eye.\nImproved prompt: A futuristic city at twilight with one radiant "
    "central spire as the focal point, calm water reflecting it, few spacecraft.",
    "The spire now anchors the scene, yet it feels isolated and the scale is unclear.\n"
    "Improved prompt: A futuristic city at twilight around a radiant central spire busy "
    "with flying trams, people on the waterfront for scale, calm reflecting water.",
    "A clear, balanced composition; only the sky could be calmer.\nImproved prompt: The "
    "same scene with a calmer, star-lit sky.",
]

_UID = re.compile(r"conversation_uid: ([\w-]+);")
_PNG_PATH = re.compile(r"\S+\.png")
_IMPROVED = re.compile(r"Improved prompt:\s*(.+)")
_FAKE_KEY = "sk-offline-not-a-real-key"
_TEMP_PREFIX = "image-team-"
IMAGE_DIR_ENV = "ASSISTANT_GRAPH_IMAGE_DIR"
"""Where the image tools save and read images (see ``image_team/tools.py``)."""


def image_team_folder() -> Path:
    """The folder of the image team's assistants."""
    return example_folder(IMAGE_TEAM)


async def graph(config: RunnableConfig) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The image team's user proxy as a graph for LangGraph Server (see ``langgraph.json``)."""
    return await graph_factory(IMAGE_TEAM_ROOT, folder=image_team_folder())(config)


def script_image_team(server: ScriptedOpenAIServer) -> None:
    """Route ``server``'s chat requests by system prompt, script the whole loop, and draw
    each image from its prompt."""
    server.router = route_by_system_prompt(ROUTES)
    server.image_maker = draw_city
    server.script("user_proxy", _proxy)
    server.script("image_creator", _creator)
    server.script("vision_analyst", _analyst)
    critiques = itertools.cycle(CRITIQUES)
    server.script("critic", lambda request: next(critiques))


@contextmanager
def offline_image_team(image_dir: str | Path | None = None) -> Iterator[ScriptedOpenAIServer]:
    """Start a scripted server for the image team and point the OpenAI clients at it.

    Sets ``OPENAI_BASE_URL``, a fake ``OPENAI_API_KEY`` and ``ASSISTANT_GRAPH_IMAGE_DIR``
    until the block ends. The images go to ``image_dir``, or else to a temporary folder
    removed when the block ends (never to the shared default image folder).
    """
    with ExitStack() as stack:
        if image_dir is None:
            image_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix=_TEMP_PREFIX))
        server = stack.enter_context(ScriptedOpenAIServer())
        script_image_team(server)
        environment = {
            "OPENAI_API_KEY": _FAKE_KEY,
            "OPENAI_BASE_URL": server.url,
            IMAGE_DIR_ENV: str(image_dir),
        }
        with _environment(environment):
            yield server


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _proxy(request: ChatRequest) -> ScriptedReply:
    """The user proxy follows its plan, then reports the three images."""
    results = _tool_results(request.messages)
    step = len(results)
    if step >= len(PLAN):
        paths = [_PNG_PATH.findall(results[call_id])[-1] for call_id in CALL_IDS[::2]]
        listing = "\n".join(f"{n}. {path}" for n, path in enumerate(paths, 1))
        return reply(f"Here are the three versions of your image:\n{listing}")
    assistant, message, context, resumed = PLAN[step]
    args: dict[str, Any] = {
        "message_to_assistant": message.format(request=request.last_user_message)
    }
    if context is not None:
        args["pass_contexts"] = [context]
    if resumed is not None:
        args["resume_conversation_uid"] = _UID.findall(results[CALL_IDS[resumed]])[-1]
    name = tool_name_from_assistant_name(assistant)
    return reply(tool_calls=[ScriptedToolCall(name, args, id=CALL_IDS[step])])


def _creator(request: ChatRequest) -> ScriptedReply:
    """The creator calls create_image with the improved prompt (or the request), then
    answers with the file path."""
    task = _since_last_user_message(request.messages)
    if len(task) > 1:
        call = json.loads(task[1]["tool_calls"][0]["function"]["arguments"])
        return reply(f"Created {task[-1]['content']} from the prompt: {call['prompt']}")
    text = str(task[0]["content"])
    improved = _IMPROVED.findall(text)
    prompt = improved[-1] if improved else text.removeprefix("Create this image: ")
    return reply(tool_calls=[tool_call("create_image", prompt=prompt.strip())])


def _analyst(request: ChatRequest) -> ScriptedReply:
    """The analyst has the newest image critiqued, then passes the critique on."""
    task = _since_last_user_message(request.messages)
    if len(task) > 1:
        return reply(str(task[-1]["content"]))
    path = _PNG_PATH.findall(str(task[0]["content"]))[-1]
    return reply(tool_calls=[tool_call("analyze_image", image_path=path)])


def _tool_results(messages: list[dict[str, Any]]) -> dict[str, str]:
    return {m["tool_call_id"]: str(m["content"]) for m in messages if m.get("role") == "tool"}


def _since_last_user_message(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    starts = [index for index, message in enumerate(messages) if message.get("role") == "user"]
    return messages[starts[-1] :]
