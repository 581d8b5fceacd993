"""A scripted chat model for testing assistants offline.

``ScriptedChatModel`` answers with scripted AI messages (text, tool calls, parallel tool
calls), supports ``bind_tools`` and structured output (the ``response_format`` of the
provider strategy, the ``final_result`` tool of the tool strategy; script a typed result
with :func:`structured_ai`), streams without losing tool calls, reports usage, and
records every call. ``ScriptedModels`` scripts each assistant of a catalog separately and
is passed as ``model=`` to :func:`~assistant_graph.build_assistant_graph`.

Example::

    models = ScriptedModels({
        "proxy": [ai(tool_calls=[call_sub_assistant("researcher", "Find X")]), "X is 42."],
        "researcher": ["X is 42."],
    })
    graph = build_assistant_graph("proxy", catalog, model=models)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ToolCall,
    ToolCallChunk,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from assistant_graph._names import tool_name_from_assistant_name
from assistant_graph._schema import AssistantSchema
from assistant_graph._typed_results import OUTPUT_TOOL_NAME

__all__ = [
    "ModelCall",
    "Reply",
    "ScriptExhaustedError",
    "ScriptedChatModel",
    "ScriptedModels",
    "ai",
    "call_sub_assistant",
    "call_tool",
    "structured_ai",
]


@dataclass(frozen=True)
class ModelCall:
    """One call of a scripted model, as recorded."""

    assistant: str
    """The assistant (script) the call was for."""
    messages: list[BaseMessage]
    """The messages the model received, system prompt first."""
    tools: list[str]
    """Names of the tools bound to the model."""
    index: int
    """0-based number of this call among the calls of the same assistant."""
    response_format: dict[str, Any] | None = None
    """The structured-output request the model was bound with (provider strategy), e.g.
    ``{"type": "json_schema", "json_schema": {"name": ..., "schema": ...}}``."""
    tool_choice: Any = None
    """The ``tool_choice`` the model was bound with (``"any"`` under the tool strategy)."""

    @property
    def last_message(self) -> BaseMessage:
        """The last message the model received."""
        return self.messages[-1]

    @property
    def text(self) -> str:
        """All message contents of the call joined, for easy ``in`` checks."""
        return "\n".join(str(message.content) for message in self.messages)


Reply: TypeAlias = AIMessage | str | Callable[[ModelCall], "AIMessage | str"]
"""A scripted reply: an AI message, plain text, or a function of the call."""


class ScriptExhaustedError(AssertionError):
    """A scripted model was called more often than its script has replies."""


def ai(content: str = "", *, tool_calls: Sequence[ToolCall] = ()) -> AIMessage:
    """A scripted AI message with text and/or tool calls."""
    return AIMessage(content=content, tool_calls=list(tool_calls))


_call_ids = itertools.count(1)


def call_tool(name: str, *, id: str | None = None, **args: Any) -> ToolCall:
    """A tool call for a scripted reply; ids are unique unless given."""
    return ToolCall(name=name, args=args, id=id or f"call_{next(_call_ids)}", type="tool_call")


def structured_ai(data: Mapping[str, Any]) -> Callable[[ModelCall], AIMessage]:
    """A scripted typed result ``data``, in the form the call asks for.

    A model bound to the ``final_result`` tool (tool strategy) calls it with ``data`` as
    arguments; otherwise (provider strategy) it answers ``data`` as JSON text. Invalid
    data is given as it is, to script a model's mistakes.
    """
    values = dict(data)

    def answer(call: ModelCall) -> AIMessage:
        if call.response_format is None and OUTPUT_TOOL_NAME in call.tools:
            call_id = f"call_{next(_call_ids)}"
            return AIMessage(
                content="",
                tool_calls=[
                    ToolCall(name=OUTPUT_TOOL_NAME, args=values, id=call_id, type="tool_call")
                ],
            )
        return AIMessage(content=json.dumps(values))

    return answer


def call_sub_assistant(
    assistant: str,
    message: str,
    *,
    id: str | None = None,
    pass_num_previous_messages: int | None = None,
    pass_contexts: Sequence[str] | None = None,
    resume_conversation_uid: str | None = None,
) -> ToolCall:
    """A call of the tool ``sub_assistant__<assistant>`` for a scripted reply."""
    args: dict[str, Any] = {"message_to_assistant": message}
    if pass_num_previous_messages is not None:
        args["pass_num_previous_messages"] = pass_num_previous_messages
    if pass_contexts is not None:
        args["pass_contexts"] = list(pass_contexts)
    if resume_conversation_uid is not None:
        args["resume_conversation_uid"] = resume_conversation_uid
    return call_tool(tool_name_from_assistant_name(assistant), id=id, **args)


@dataclass
class _Script:
    """A queue of replies shared by a model and its tool-bound copies, and their record."""

    assistant: str
    replies: list[Reply]
    calls: list[ModelCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(
        self,
        messages: list[BaseMessage],
        tools: list[str],
        *,
        response_format: dict[str, Any] | None = None,
        tool_choice: Any = None,
    ) -> AIMessage:
        with self.lock:
            call = ModelCall(
                self.assistant,
                list(messages),
                list(tools),
                len(self.calls),
                response_format,
                tool_choice,
            )
            self.calls.append(call)
            if call.index >= len(self.replies):
                raise ScriptExhaustedError(
                    f"scripted model of {self.assistant!r} has {len(self.replies)} replies "
                    f"but was called {call.index + 1} times; last message: "
                    f"{str(call.last_message.content)[:200]!r}"
                )
            reply = self.replies[call.index]
        if callable(reply):
            reply = reply(call)
        return _as_ai_message(reply)


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers with scripted replies and records every call.

    Replies are given in order; each is an ``AIMessage``, a string, or a function of the
    :class:`ModelCall`. Tool-call ids of replies are kept; streaming yields text in
    pieces and tool calls as chunks that reassemble, and the last chunk carries usage.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: Any = Field(exclude=True)
    """The shared reply queue and call record (see :meth:`of`)."""
    bound_tools: list[str] = Field(default_factory=list)
    """Names of the tools bound with :meth:`bind_tools`."""
    bound_response_format: dict[str, Any] | None = None
    """The ``response_format`` bound with :meth:`bind_tools` (structured output)."""
    bound_tool_choice: Any = None
    """The ``tool_choice`` bound with :meth:`bind_tools`."""
    latency: float = 0.0
    """Seconds each call takes (``asyncio.sleep`` when async), to simulate a real model."""

    @classmethod
    def of(
        cls, replies: Sequence[Reply], *, assistant: str = "model", latency: float = 0.0
    ) -> ScriptedChatModel:
        """A scripted model with these replies."""
        return cls(script=_Script(assistant, list(replies)), latency=latency)

    @property
    def calls(self) -> list[ModelCall]:
        """Every call so far, in order."""
        return list(self.script.calls)

    @property
    def _llm_type(self) -> str:
        return "assistant-graph-scripted"

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """A copy that records these tools, ``tool_choice`` and a ``response_format`` as
        bound; replies are unaffected."""
        return self.model_copy(
            update={
                "bound_tools": [_tool_name(tool) for tool in tools],
                "bound_tool_choice": tool_choice,
                "bound_response_format": kwargs.get("response_format"),
            }
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency:
            time.sleep(self.latency)
        return _result(self._reply(messages, kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency:
            await asyncio.sleep(self.latency)
        return _result(self._reply(messages, kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        if self.latency:
            time.sleep(self.latency)
        for chunk in _chunks(self._reply(messages, kwargs)):
            if run_manager and isinstance(chunk.message.content, str) and chunk.message.content:
                run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self.latency:
            await asyncio.sleep(self.latency)
        for chunk in _chunks(self._reply(messages, kwargs)):
            if run_manager and isinstance(chunk.message.content, str) and chunk.message.content:
                await run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
            yield chunk

    def _reply(self, messages: list[BaseMessage], kwargs: Mapping[str, Any]) -> AIMessage:
        """The next reply; ``kwargs`` are the call's (``bind(response_format=...)`` passes
        structured output there when no tools are bound)."""
        binding = {
            "response_format": kwargs.get("response_format", self.bound_response_format),
            "tool_choice": kwargs.get("tool_choice", self.bound_tool_choice),
        }
        # A script is anything with next_reply(messages, tools) (benchmarks bring their
        # own); only structured output, when bound, is passed on by keyword.
        extra = {key: value for key, value in binding.items() if value is not None}
        reply = self.script.next_reply(messages, self.bound_tools, **extra)
        usage = _usage(messages, reply)
        copy: AIMessage = reply.model_copy(update={"usage_metadata": reply.usage_metadata or usage})
        return copy


class ScriptedModels:
    """Scripted models for a team: one script per assistant, recorded separately.

    Pass an instance as ``model=`` to ``build_assistant_graph``: it is called with each
    assistant's schema and returns that assistant's scripted model.
    """

    def __init__(self, scripts: Mapping[str, Sequence[Reply]], *, latency: float = 0.0) -> None:
        self._scripts = {name: _Script(name, list(replies)) for name, replies in scripts.items()}
        self.latency = latency
        """Seconds each model call takes."""

    def __call__(self, schema: AssistantSchema) -> ScriptedChatModel:
        """The scripted model of assistant ``schema.name`` (an empty script if none given)."""
        script = self._scripts.setdefault(schema.name, _Script(schema.name, []))
        return ScriptedChatModel(script=script, latency=self.latency)

    def calls(self, assistant: str | None = None) -> list[ModelCall]:
        """The calls of one assistant's model, or of all (in order per assistant)."""
        if assistant is not None:
            script = self._scripts.get(assistant)
            return list(script.calls) if script else []
        return [call for script in self._scripts.values() for call in script.calls]

    def remaining(self, assistant: str) -> int:
        """How many scripted replies of ``assistant`` are still unused."""
        script = self._scripts[assistant]
        return len(script.replies) - len(script.calls)


def _as_ai_message(reply: AIMessage | str) -> AIMessage:
    if isinstance(reply, str):
        return AIMessage(content=reply)
    if isinstance(reply, AIMessage):
        return reply
    raise TypeError(f"a scripted reply must be an AIMessage or str, got {type(reply).__name__}")


def _result(message: AIMessage) -> ChatResult:
    return ChatResult(generations=[ChatGeneration(message=message)])


def _chunks(message: AIMessage) -> Iterator[ChatGenerationChunk]:
    text = message.content if isinstance(message.content, str) else ""
    pieces = [piece for piece in text.split(" ")]
    for index, piece in enumerate(pieces):
        content = piece if index == 0 else f" {piece}"
        if content:
            yield ChatGenerationChunk(message=AIMessageChunk(content=content, id=message.id))
    for index, call in enumerate(message.tool_calls):
        args = json.dumps(call["args"])
        middle = len(args) // 2
        halves = [(call["name"], call["id"], args[:middle]), (None, None, args[middle:])]
        for name, call_id, part in halves:
            chunk = ToolCallChunk(name=name, args=part, id=call_id, index=index)
            yield ChatGenerationChunk(
                message=AIMessageChunk(content="", tool_call_chunks=[chunk], id=message.id)
            )
    yield ChatGenerationChunk(
        message=AIMessageChunk(
            content="", usage_metadata=message.usage_metadata, chunk_position="last", id=message.id
        )
    )


def _usage(messages: Sequence[BaseMessage], reply: AIMessage) -> UsageMetadata:
    prompt = sum(len(str(message.content).split()) for message in messages)
    completion = len(str(reply.content).split()) + sum(
        len(json.dumps(call["args"]).split()) for call in reply.tool_calls
    )
    return UsageMetadata(
        input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion
    )


def _tool_name(tool: Any) -> str:
    if isinstance(tool, BaseTool):
        return tool.name
    if isinstance(tool, Mapping) and "name" in tool:
        return str(tool["name"])
    return str(convert_to_openai_tool(tool)["function"]["name"])
