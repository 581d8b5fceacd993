"""Long threads: condensing the older messages of a conversation into a summary.

An assistant with ``summarize_after_tokens`` set checks, before each model call, how many
tokens the messages its model sees verbatim take. Past the limit, its own chat model
(without tools) condenses the older ones, together with the previous summary, into a new
``summary_of_conversation``; ``summarized_message_count`` records how many leading messages
the summary now covers. The model then sees its instructions, the summary and only the
messages after those; the thread keeps every message. Sub-assistants receive the summary
through ``parent_summary_of_conversation``.

Where the summary ends is chosen so that the messages the model sees never start inside a
tool call's span (an AI message with tool calls, then their results; chat APIs reject a
tool result whose call is missing), and preferably start at a user message.

This module decides what to summarize and builds the request; the graph's ``summarize``
node makes the model call (see :mod:`assistant_graph._graph`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    get_buffer_string,
)
from langchain_core.messages.utils import count_tokens_approximately

from assistant_graph._schema import AssistantSchema
from assistant_graph._state import message_text

__all__ = [
    "SUMMARIZER_INSTRUCTIONS",
    "SUMMARY_REQUEST",
    "TIKTOKEN_ENCODING",
    "SummaryRequest",
    "count_tokens",
    "needs_summary",
    "summary_request",
    "tiktoken_encoding_is_cached",
    "unsummarized_messages",
]

TIKTOKEN_ENCODING = "o200k_base"
"""The tiktoken encoding used to count tokens (that of current OpenAI models)."""

TIKTOKEN_ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
"""Where tiktoken downloads an encoding from; its cache file is named by this URL."""

TOKENS_PER_MESSAGE = 3
"""Tokens a chat format adds around each message (OpenAI's documented overhead)."""

SUMMARIZER_INSTRUCTIONS = (
    "You condense conversations. Write an updated summary of the conversation below for "
    "the assistant having it, so that it can continue without the original messages. Keep "
    "the user's goals and preferences, decisions made, facts, numbers and names, what tools "
    "and other assistants returned that still matters, and any open questions. Write only "
    "the summary."
)
"""The system prompt of every summarization request."""

SUMMARY_REQUEST = (
    "Summary so far:\n{previous_summary}\n\n"
    "Messages to fold into it:\n{messages}\n\n"
    "Write the updated summary."
)
"""The user message of a summarization request: the previous summary and the messages."""

NO_SUMMARY_YET = "(none yet)"

TokenCounter: TypeAlias = Callable[[Sequence[BaseMessage]], int]


def count_tokens(messages: Sequence[BaseMessage]) -> int:
    """How many tokens ``messages`` take in a chat model's context.

    Counts with tiktoken's ``o200k_base`` encoding when tiktoken is installed and the
    encoding is already on this machine (in tiktoken's cache: ``TIKTOKEN_CACHE_DIR``, or
    ``data-gym-cache`` in the temporary folder, where ``tiktoken.get_encoding`` leaves it
    after its first download); otherwise with LangChain's
    :func:`~langchain_core.messages.utils.count_tokens_approximately` (about four
    characters a token). Nothing is downloaded: a run never reaches the network for this.
    The choice is made once per process. Either is close enough to decide when to
    summarize, which is all this count is for.
    """
    counter = _tiktoken_counter()
    if counter is None:
        return count_tokens_approximately(messages)
    return counter(messages)


def tiktoken_encoding_is_cached(name: str = TIKTOKEN_ENCODING) -> bool:
    """Whether tiktoken can load encoding ``name`` without downloading it.

    tiktoken keeps downloaded encodings in its cache folder under the SHA-1 of their URL.
    """
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        folder = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        folder = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        folder = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    url = TIKTOKEN_ENCODING_URL.format(name=name)
    return bool(folder) and Path(folder, hashlib.sha1(url.encode()).hexdigest()).is_file()


@functools.cache
def _tiktoken_counter() -> TokenCounter | None:
    if not tiktoken_encoding_is_cached():
        return None
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(TIKTOKEN_ENCODING)
    except Exception:  # not installed, or its cached encoding cannot be read
        return None

    def count(messages: Sequence[BaseMessage]) -> int:
        return sum(
            len(encoding.encode(get_buffer_string([message]), disallowed_special=()))
            + TOKENS_PER_MESSAGE
            for message in messages
        )

    return count


def unsummarized_messages(state: Mapping[str, Any]) -> list[BaseMessage]:
    """The messages of ``state`` that its summary does not cover: what the model sees."""
    messages: list[BaseMessage] = list(state["messages"])
    inside = _inside_tool_spans(messages)
    return messages[_visible_start(messages, inside, state.get("summarized_message_count")) :]


@dataclass(frozen=True)
class SummaryRequest:
    """A summarization ready to send to the assistant's model, and how to apply its reply."""

    prompt: list[BaseMessage]
    """The messages to send: the summarizer instructions and the request."""
    covers: int
    """How many leading messages the new summary covers."""

    def update(self, response: BaseMessage) -> dict[str, Any]:
        """The state update for the model's reply (none if the reply has no text)."""
        summary = message_text(response).strip()
        if not summary:  # keep the old summary rather than lose what it covered
            return {}
        return {"summary_of_conversation": summary, "summarized_message_count": self.covers}


def needs_summary(state: Mapping[str, Any], schema: AssistantSchema) -> bool:
    """Whether the assistant should summarize before its next model call."""
    return _fold_range(state, schema) is not None


def summary_request(state: Mapping[str, Any], schema: AssistantSchema) -> SummaryRequest | None:
    """The summarization to make before the next model call, or None if none is due.

    One is due when the messages the model would see take more than
    ``schema.summarize_after_tokens`` tokens and some of them can be folded while keeping
    the last ``schema.summary_keep_messages`` (and every tool call with its results).
    """
    span = _fold_range(state, schema)
    if span is None:
        return None
    start, end = span
    messages: list[BaseMessage] = list(state["messages"])
    previous = state.get("summary_of_conversation")
    request = SUMMARY_REQUEST.format(
        previous_summary=previous or NO_SUMMARY_YET,
        messages=get_buffer_string(messages[start:end]),
    )
    prompt = [SystemMessage(content=SUMMARIZER_INSTRUCTIONS), HumanMessage(content=request)]
    return SummaryRequest(prompt=prompt, covers=end)


def _fold_range(state: Mapping[str, Any], schema: AssistantSchema) -> tuple[int, int] | None:
    """The messages ``[start:end]`` the next summary should fold in, if one is due."""
    limit = schema.summarize_after_tokens
    if limit is None:
        return None
    messages: list[BaseMessage] = list(state["messages"])
    inside = _inside_tool_spans(messages)
    start = _visible_start(messages, inside, state.get("summarized_message_count"))
    if count_tokens(messages[start:]) <= limit:
        return None
    end = _fold_end(messages, inside, start, schema.summary_keep_messages)
    return None if end is None else (start, end)


def _visible_start(
    messages: Sequence[BaseMessage], inside: set[int], summarized: int | None
) -> int:
    """Where the visible messages start: after the summarized ones, moved back if needed."""
    start = min(max(summarized or 0, 0), len(messages))
    while start > 0 and start in inside:
        start -= 1
    return start


def _fold_end(
    messages: Sequence[BaseMessage], inside: set[int], start: int, keep: int
) -> int | None:
    """The end of the messages to fold: the latest user message that leaves at least
    ``keep`` messages after it, else the latest point outside a tool span; None if none."""
    candidates = [i for i in range(len(messages) - keep, start, -1) if i not in inside]
    for index in candidates:
        if isinstance(messages[index], HumanMessage):
            return index
    return candidates[0] if candidates else None


def _inside_tool_spans(messages: Sequence[BaseMessage]) -> set[int]:
    """Indices the visible messages may not start at: after an AI message with tool calls,
    up to and including the last of its tool results."""
    caller: dict[str, int] = {}
    inside: set[int] = set()
    for index, message in enumerate(messages):
        if isinstance(message, AIMessage):
            for call in [*message.tool_calls, *message.invalid_tool_calls]:
                caller[call.get("id") or ""] = index
        elif isinstance(message, ToolMessage):
            # A result without a known call still must not start the visible messages.
            inside.update(range(caller.get(message.tool_call_id, index - 1) + 1, index + 1))
    return inside
