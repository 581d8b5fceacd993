"""Tools of the image team: create an image, and have a vision model critique it.

Both use the official OpenAI clients, so ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` steer
them (offline, the tests and notebook 04 point ``OPENAI_BASE_URL`` at a scripted server).

Environment:
    ASSISTANT_GRAPH_IMAGE_DIR: Where images are saved (default: a folder in the system's
        temporary directory). ``analyze_image`` only reads images from there.
    ASSISTANT_GRAPH_IMAGE_MODEL: The image model (default ``gpt-image-2``).
    ASSISTANT_GRAPH_VISION_MODEL: The vision-capable chat model (default ``gpt-4o-mini``).
"""

from __future__ import annotations

import base64
import os
import tempfile
import uuid
from pathlib import Path

import openai
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

IMAGE_DIR_ENV = "ASSISTANT_GRAPH_IMAGE_DIR"
IMAGE_MODEL_ENV = "ASSISTANT_GRAPH_IMAGE_MODEL"
VISION_MODEL_ENV = "ASSISTANT_GRAPH_VISION_MODEL"
DEFAULT_IMAGE_DIR = Path(tempfile.gettempdir()) / "assistant-graph-images"
DEFAULT_IMAGE_MODEL = "gpt-image-2"
DEFAULT_VISION_MODEL = "gpt-4o-mini"
IMAGE_SIZE = "1024x1024"
IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

CRITIC_PROMPT = (
    "You are an art critic reviewing an image generated from a prompt. Describe what the "
    "image shows, then criticise its composition, colour and focus. End with one line "
    'that starts with "Improved prompt:" followed by a better prompt for the next version.'
)
CRITIQUE_REQUEST = "Critique this image and write an improved prompt for it."
NOT_AN_IMAGE = "{path} is not a PNG or JPEG file in the image folder {folder}"
NO_IMAGE_DATA = "the Images API answered without image data"


def image_dir() -> Path:
    """The folder images are saved to and read from (created if missing)."""
    folder = Path(os.environ.get(IMAGE_DIR_ENV) or DEFAULT_IMAGE_DIR).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@tool
def create_image(prompt: str) -> str:
    """Generate an image from a text prompt and save it as a PNG file.

    Returns the path of the file.
    """
    model = os.environ.get(IMAGE_MODEL_ENV) or DEFAULT_IMAGE_MODEL
    # GPT image models always answer base64 and reject response_format; the retired
    # DALL-E models answered URLs unless asked for base64.
    legacy = {"response_format": "b64_json"} if model.startswith("dall-e") else {}
    response = openai.OpenAI().images.generate(
        model=model, prompt=prompt, n=1, size=IMAGE_SIZE, **legacy
    )
    encoded = response.data[0].b64_json if response.data else None
    if not encoded:
        raise ValueError(NO_IMAGE_DATA)
    path = image_dir() / f"image-{uuid.uuid4().hex[:12]}.png"
    path.write_bytes(base64.b64decode(encoded))
    return str(path)


@tool
def analyze_image(image_path: str) -> str:
    """Have a vision model critique the image at this path (a file create_image made).

    Returns the critique, ending with a line "Improved prompt: ...".
    """
    path = _image_in_folder(image_path)
    data_url = f"data:{IMAGE_SUFFIXES[path.suffix.lower()]};base64," + base64.b64encode(
        path.read_bytes()
    ).decode("ascii")
    question = HumanMessage(
        content=[
            {"type": "text", "text": CRITIQUE_REQUEST},
            {"type": "image_url", "image_url": {"url": data_url}},
        ]
    )
    model = ChatOpenAI(model=os.environ.get(VISION_MODEL_ENV) or DEFAULT_VISION_MODEL)
    return model.invoke([SystemMessage(CRITIC_PROMPT), question]).text


def _image_in_folder(image_path: str) -> Path:
    """The image file, if it is a PNG or JPEG inside the image folder: a model must not
    send arbitrary local files to the vision model."""
    folder = image_dir()
    path = Path(image_path.strip().strip("'\"")).resolve()
    if (
        not path.is_relative_to(folder)
        or path.suffix.lower() not in IMAGE_SUFFIXES
        or not path.is_file()
    ):
        raise ValueError(NOT_AN_IMAGE.format(path=image_path, folder=folder))
    return path
