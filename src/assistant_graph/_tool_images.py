"""Images in tool results, shown to the model in a way every chat API accepts.

A tool (an MCP tool above all) may answer with images as well as text. The thread keeps
its tool message as it came, but chat APIs differ on where images may be: OpenAI's Chat
Completions and the servers that copy it accept them only in user messages. So the prompt
a model receives carries each such result as text, with a note, and the images follow in
one user message after the results of that turn, each labelled with its tool call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage

__all__ = ["with_tool_images_as_user_message"]

IMAGE_NOTE = "[{count} image(s) returned by this call follow in the next user message]"
IMAGES_HEADER = "Images returned by tool call {id} ({name}):"
IMAGE_BLOCK_TYPES = frozenset({"image", "image_url"})


def with_tool_images_as_user_message(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """``messages`` with the images of tool results moved into user messages.

    Messages without images are returned as they are (the same objects).
    """
    prompt: list[BaseMessage] = []
    images: list[Any] = []
    for message in messages:
        if images and not isinstance(message, ToolMessage):
            prompt.append(HumanMessage(content=images))
            images = []
        found = _images_of(message)
        if not found or not isinstance(message, ToolMessage):
            prompt.append(message)
            continue
        prompt.append(_text_only(message, len(found)))
        header = IMAGES_HEADER.format(id=message.tool_call_id, name=message.name)
        images.extend([{"type": "text", "text": header}, *found])
    if images:
        prompt.append(HumanMessage(content=images))
    return prompt


def _images_of(message: BaseMessage) -> list[Any]:
    if not isinstance(message, ToolMessage) or isinstance(message.content, str):
        return []
    return [block for block in message.content if _is_image(block)]


def _is_image(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") in IMAGE_BLOCK_TYPES


def _text_only(message: ToolMessage, count: int) -> ToolMessage:
    texts = [
        block if isinstance(block, str) else str(block.get("text", ""))
        for block in message.content
        if isinstance(block, str) or (isinstance(block, dict) and block.get("type") == "text")
    ]
    content = "\n".join([*texts, IMAGE_NOTE.format(count=count)])
    return message.model_copy(update={"content": content})
