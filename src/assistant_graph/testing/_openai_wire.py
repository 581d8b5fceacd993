"""The OpenAI wire format of the scripted server: the JSON and SSE bodies it sends.

Private to :mod:`assistant_graph.testing`. Builds ``chat.completion`` objects, the
``chat.completion.chunk`` events of a streamed reply (text cut at word boundaries,
tool-call arguments cut into pieces, as OpenAI streams them), OpenAI-style error bodies and
image responses (a tiny PNG encoded with the stdlib), and reads the text of a message's
``content`` the way OpenAI sends it. Everything is deterministic: fixed timestamps, ids
chosen by the server.
"""

from __future__ import annotations

import base64
import re
import struct
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistant_graph.testing._openai_scripts import (
        ChatRequest,
        ImageRequest,
        ScriptedReply,
        ScriptedToolCall,
    )

__all__ = [
    "CREATED",
    "JSON_CONTENT_TYPE",
    "MALFORMED_JSON",
    "SSE_CONTENT_TYPE",
    "SSE_DONE",
    "completion_body",
    "error_body",
    "image_body",
    "stream_chunks",
    "text_of",
    "tiny_png_bytes",
]

CREATED = 1_700_000_000
"""Fixed `created` timestamp, so that responses are deterministic."""
_ARGUMENT_PIECE_CHARS = 8
"""Streamed tool-call arguments are cut into pieces of this many characters."""
JSON_CONTENT_TYPE = "application/json"
SSE_CONTENT_TYPE = "text/event-stream"
SSE_DONE = b"data: [DONE]\n\n"
MALFORMED_JSON = b'{"id": "chatcmpl-malformed", "choices": [{"message": '
_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def text_of(content: Any) -> str:
    """The text of a message's `content`: a string, `None`, or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = (part.get("text", "") for part in content if isinstance(part, dict))
        return "\n".join(part for part in parts if isinstance(part, str) and part)
    return ""


def error_body(status: int, message: str) -> dict[str, Any]:
    """An OpenAI-style error body."""
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    error_type = _ERROR_TYPES.get(status, default_type)
    return {"error": {"message": message, "type": error_type, "param": None, "code": error_type}}


def _tool_call_json(call: ScriptedToolCall) -> dict[str, Any]:
    function = {"name": call.name, "arguments": call.arguments}
    return {"id": call.id, "type": "function", "function": function}


def completion_body(answer: ScriptedReply, request: ChatRequest, cid: str) -> dict[str, Any]:
    """A `chat.completion` object for a non-streaming request."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.content or (None if answer.tool_calls else ""),
        "refusal": None,
    }
    if answer.tool_calls:
        message["tool_calls"] = [_tool_call_json(call) for call in answer.tool_calls]
    choice = {"index": 0, "message": message, "finish_reason": answer.finish_reason}
    return {
        "id": cid,
        "object": "chat.completion",
        "created": CREATED,
        "model": request.model,
        "choices": [{**choice, "logprobs": None}],
        "usage": answer.usage.to_json() if answer.usage else None,
        "system_fingerprint": None,
    }


def _tool_call_deltas(index: int, call: ScriptedToolCall) -> Iterator[dict[str, Any]]:
    """Deltas of one tool call, cut the way OpenAI streams them."""
    head = {"name": call.name, "arguments": ""}
    yield {"tool_calls": [{"index": index, "id": call.id, "type": "function", "function": head}]}
    arguments = call.arguments
    for start in range(0, len(arguments), _ARGUMENT_PIECE_CHARS):
        piece = arguments[start : start + _ARGUMENT_PIECE_CHARS]
        yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}


def stream_chunks(answer: ScriptedReply, request: ChatRequest, cid: str) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects of a streamed reply, in order."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": word} for word in _WORD_BOUNDARY.split(answer.content) if word]
    for index, call in enumerate(answer.tool_calls):
        deltas += _tool_call_deltas(index, call)
    finish: list[str | None] = [None] * len(deltas) + [answer.finish_reason]
    deltas.append({})
    base = {"id": cid, "object": "chat.completion.chunk", "created": CREATED}
    chunks = [
        {**base, "model": request.model, "choices": [_chunk_choice(delta, reason)]}
        for delta, reason in zip(deltas, finish, strict=True)
    ]
    if request.include_usage and answer.usage:
        chunks.append(
            {**base, "model": request.model, "choices": [], "usage": answer.usage.to_json()}
        )
    return chunks


def _chunk_choice(delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def tiny_png_bytes(
    width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (46, 125, 50)
) -> bytes:
    """A valid PNG of one solid colour (8x8 green by default), built with the stdlib only."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    row = b"\x00" + bytes(rgb) * width  # filter type 0, then the pixels
    pixels = zlib.compress(row * height)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def image_body(request: ImageRequest, png: bytes | None = None) -> dict[str, Any]:
    """An images response with `n` copies of `png` (default `tiny_png_bytes()`), base64."""
    image = base64.b64encode(png if png is not None else tiny_png_bytes()).decode("ascii")
    count = int(request.raw.get("n") or 1)
    data = [{"b64_json": image, "revised_prompt": request.prompt} for _ in range(count)]
    return {"created": CREATED, "data": data}
