"""The classic image team (``assistants/image_team/``): a user proxy runs create, analyse,
recreate, analyse, recreate with an image creator (OpenAI Images API) and a vision analyst
(a vision chat model), all through real OpenAI clients talking to the scripted server."""

from __future__ import annotations

import base64
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from PIL import Image

from assistant_graph import build_assistant_graph, load_assistants
from assistant_graph.examples import (
    IMAGE_TEAM_ROOT,
    image_team_folder,
    offline_image_team,
    script_image_team,
)
from assistant_graph.examples.city_art import HEIGHT, PERSON, TRAM, WIDTH, draw_city
from assistant_graph.examples.image_team import CRITIQUES, IMAGE_TEAM_REQUEST
from assistant_graph.testing import ScriptedOpenAIServer, tiny_png_bytes

FAKE_KEY = "sk-test-not-a-real-key"
SHARED_IMAGE_DIR = Path(tempfile.gettempdir()) / "assistant-graph-images"
"""Where the image tools save images by default: shared by every run on the machine."""
CONFIG: RunnableConfig = {"configurable": {"thread_id": "images"}}


@dataclass(frozen=True)
class Loop:
    """One whole run of the image team, and what it left behind."""

    result: dict[str, Any]
    server: ScriptedOpenAIServer
    image_dir: Path


@pytest.fixture
def image_env(
    scripted_openai_server: ScriptedOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The OpenAI clients point at the scripted server; images go to a temporary folder."""
    image_dir = tmp_path / "images"
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", scripted_openai_server.url)
    monkeypatch.setenv("ASSISTANT_GRAPH_IMAGE_DIR", str(image_dir))
    return image_dir


@pytest.fixture
def loop(image_env: Path, scripted_openai_server: ScriptedOpenAIServer) -> Loop:
    script_image_team(scripted_openai_server)
    graph = build_assistant_graph(
        IMAGE_TEAM_ROOT, load_assistants(image_team_folder()), checkpointer=InMemorySaver()
    )
    result = graph.invoke({"messages": [HumanMessage(IMAGE_TEAM_REQUEST)]}, CONFIG)
    assert scripted_openai_server.errors == []
    return Loop(result, scripted_openai_server, image_env)


def tool(assistant: str) -> Any:
    [found] = load_assistants(image_team_folder()).tools_for(assistant)
    return found


def test_the_loop_creates_three_images_each_from_the_latest_improved_prompt(loop: Loop) -> None:
    prompts = [request.prompt for request in loop.server.image_requests]

    assert prompts == [
        IMAGE_TEAM_REQUEST,
        CRITIQUES[0].split("Improved prompt: ")[1],
        CRITIQUES[1].split("Improved prompt: ")[1],
    ]
    assert [r.headers["authorization"] for r in loop.server.image_requests] == [
        f"Bearer {FAKE_KEY}"
    ] * 3


def test_the_images_are_png_files_in_the_image_folder_named_in_the_final_answer(
    loop: Loop,
) -> None:
    images = sorted(loop.image_dir.glob("*.png"))

    assert len(images) == 3
    for path in images:
        with Image.open(path) as image:
            image.verify()
            assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT))
        assert str(path) in loop.result["messages"][-1].content


def test_offline_each_image_is_drawn_from_its_prompt_so_the_three_versions_differ(
    loop: Loop,
) -> None:
    prompts = [request.prompt for request in loop.server.image_requests]
    files = {path.read_bytes() for path in loop.image_dir.glob("*.png")}

    assert files == {draw_city(prompt) for prompt in prompts}
    assert len(files) == 3


def test_the_offline_pictures_show_what_the_critiques_talk_about() -> None:
    busy, spire, scale = (
        _rgb(draw_city(prompt))
        for prompt in [
            IMAGE_TEAM_REQUEST,
            CRITIQUES[0].split("Improved prompt: ")[1],
            CRITIQUES[1].split("Improved prompt: ")[1],
        ]
    )
    centre = (WIDTH // 2, 30)  # well above the skyline, in the middle

    assert _is_purple_or_blue(busy.getpixel((5, 5)))  # a twilight sky
    assert _brightness(busy, centre) < 300  # no bright focal point in the first one
    assert _brightness(spire, centre) > 500  # a radiant central spire in the second
    assert _brightness(scale, centre) > 500  # still there in the third,
    assert _count(scale, TRAM) > _count(spire, TRAM) == 0  # now with flying trams
    assert _count(scale, PERSON) > _count(spire, PERSON) == 0  # and people for scale


def _rgb(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def _brightness(image: Image.Image, xy: tuple[int, int]) -> int:
    red, green, blue = image.getpixel(xy)  # type: ignore[misc]
    return int(red + green + blue)


def _count(image: Image.Image, colour: tuple[int, int, int]) -> int:
    width, height = image.size
    return sum(1 for x in range(width) for y in range(height) if image.getpixel((x, y)) == colour)


def _is_purple_or_blue(pixel: Any) -> bool:
    red, green, blue = pixel
    return bool(blue > green and blue >= red)


def test_the_vision_model_receives_each_new_image_as_a_data_url(loop: Loop) -> None:
    critic_requests = loop.server.requests_for("critic")

    assert len(critic_requests) == 2
    for request in critic_requests:
        [question] = [m for m in request.messages if m["role"] == "user"]
        kinds = [part["type"] for part in question["content"]]
        assert kinds == ["text", "image_url"]
        url = question["content"][1]["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        sent = base64.b64decode(url.split(",", 1)[1])
        assert sent in {path.read_bytes() for path in loop.image_dir.glob("*.png")}


def test_the_proxy_resumes_each_specialist_and_forwards_results_as_contexts(loop: Loop) -> None:
    proxy_calls = [
        call for message in loop.result["messages"] for call in getattr(message, "tool_calls", [])
    ]
    conversations = loop.result["sub_assistant_states"]

    assert [call["name"].removeprefix("sub_assistant__") for call in proxy_calls] == [
        "image_creator",
        "vision_analyst",
        "image_creator",
        "vision_analyst",
        "image_creator",
    ]
    assert [call["args"].get("pass_contexts") for call in proxy_calls] == [
        None,
        ["create_1"],
        ["analyse_1"],
        ["create_2"],
        ["analyse_2"],
    ]
    assert sorted(state["assistant"] for state in conversations.values()) == [
        "image_creator",
        "vision_analyst",
    ]
    creator = next(s for s in conversations.values() if s["assistant"] == "image_creator")
    assert [m.type for m in creator["messages"]].count("human") == 3


def test_create_image_saves_the_generated_png_and_returns_its_path(
    image_env: Path, scripted_openai_server: ScriptedOpenAIServer
) -> None:
    path = Path(tool("image_creator").invoke({"prompt": "a red fox"}))

    assert path.parent == image_env.resolve()
    assert path.read_bytes() == tiny_png_bytes()
    [request] = scripted_openai_server.image_requests
    assert (request.prompt, request.model) == ("a red fox", "gpt-image-2")
    assert "response_format" not in request.raw  # GPT image models always answer base64


def test_analyze_image_refuses_files_outside_the_image_folder(
    image_env: Path, scripted_openai_server: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(tiny_png_bytes())

    with pytest.raises(ValueError, match="not a PNG or JPEG file in the image folder"):
        tool("vision_analyst").invoke({"image_path": str(outside)})
    assert scripted_openai_server.requests == []


def test_offline_image_team_keeps_its_images_in_a_temporary_folder_it_removes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ASSISTANT_GRAPH_IMAGE_DIR", raising=False)

    with offline_image_team():
        path = Path(tool("image_creator").invoke({"prompt": "a city at twilight"}))
        assert path.is_file()
        assert path.parent != SHARED_IMAGE_DIR.resolve()

    assert not path.parent.exists()
    assert "ASSISTANT_GRAPH_IMAGE_DIR" not in os.environ


def test_offline_image_team_restores_the_environment_it_changed(tmp_path: Path) -> None:
    before = {name: os.environ.get(name) for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}

    with offline_image_team(tmp_path) as server:
        assert os.environ["OPENAI_BASE_URL"] == server.url

    assert {name: os.environ.get(name) for name in before} == before
