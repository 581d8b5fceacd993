"""Specifications of the scripted OpenAI-compatible server, driven through real clients."""

from __future__ import annotations

import asyncio
import base64
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from assistant_graph.testing._openai_server import (
    ChatRequest,
    ScriptedOpenAIServer,
    ScriptedReply,
    ScriptedToolCall,
    Usage,
    reply,
    route_by_system_prompt,
    tiny_png_bytes,
    tool_call,
)

# Importing the packaged fixture registers it here; the redundant alias marks it as used.

MODEL = "scripted-model"
API_KEY = "test-key"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def server(scripted_openai_server: ScriptedOpenAIServer) -> ScriptedOpenAIServer:
    """The packaged fixture under a short name."""
    return scripted_openai_server


@pytest.fixture
def raw_client(server: ScriptedOpenAIServer) -> Iterator[openai.OpenAI]:
    """A plain OpenAI SDK client for the server, closed after the test."""
    with openai.OpenAI(base_url=server.url, api_key=API_KEY, max_retries=0) as client:
        yield client


def chat_model(server: ScriptedOpenAIServer, model: str = MODEL, **kwargs: Any) -> ChatOpenAI:
    """A `ChatOpenAI` pointed at `server`, without retries unless asked."""
    kwargs.setdefault("max_retries", 0)
    return ChatOpenAI(model=model, base_url=server.url, api_key=SecretStr(API_KEY), **kwargs)


def stream_all(model: Any, prompt: str, **kwargs: Any) -> tuple[list[AIMessageChunk], Any]:
    """Stream `prompt` and return the chunks and their sum."""
    chunks = list(model.stream(prompt, **kwargs))
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    return chunks, total


@tool
def search(query: str) -> str:
    """Search the web."""
    return query


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


class TestTextReplies:
    def test_invoke_returns_the_scripted_text(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, "Hello from the script.")

        message = chat_model(server).invoke("Hi")

        assert message.content == "Hello from the script."
        assert server.errors == []

    def test_stream_splits_the_text_over_chunks_that_join_to_it(
        self, server: ScriptedOpenAIServer
    ) -> None:
        server.script(MODEL, "One two three four.")

        chunks, total = stream_all(chat_model(server), "Count")

        texts = [chunk.content for chunk in chunks if chunk.content]
        assert len(texts) == 4
        assert "".join(map(str, texts)) == total.content == "One two three four."

    def test_replies_are_consumed_in_order(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, "first", reply("second"))
        model = chat_model(server)

        assert [model.invoke("a").content, model.invoke("b").content] == ["first", "second"]

    def test_ainvoke_and_astream_work(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, "async invoke", "async stream")
        model = chat_model(server)

        async def run() -> tuple[str, str]:
            invoked = await model.ainvoke("a")
            streamed = [chunk.content async for chunk in model.astream("b")]
            return str(invoked.content), "".join(map(str, streamed))

        assert asyncio.run(run()) == ("async invoke", "async stream")


class TestToolCalls:
    def test_invoke_returns_the_tool_call_with_parsed_args_and_id(
        self, server: ScriptedOpenAIServer
    ) -> None:
        server.script(MODEL, reply(tool_calls=[ScriptedToolCall("search", {"query": "otters"})]))

        message = chat_model(server).bind_tools([search]).invoke("Find otters")

        assert message.content == ""
        assert message.tool_calls == [
            {"name": "search", "args": {"query": "otters"}, "id": "call_1", "type": "tool_call"}
        ]
        assert message.response_metadata["finish_reason"] == "tool_calls"

    def test_explicit_tool_call_ids_are_kept(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, reply(tool_calls=[ScriptedToolCall("add", {"a": 1}, id="call_x")]))

        message = chat_model(server).invoke("Add")

        assert [call["id"] for call in message.tool_calls] == ["call_x"]

    def test_stream_reassembles_parallel_tool_calls_from_split_deltas(
        self, server: ScriptedOpenAIServer
    ) -> None:
        calls = [
            tool_call("search", query="otters and beavers in the river"),
            tool_call("add", a=12345, b=67890),
        ]
        server.script(MODEL, reply("Two tools.", tool_calls=calls))
        model = chat_model(server).bind_tools([search, add])

        chunks, total = stream_all(model, "Go")

        assert total.content == "Two tools."
        assert total.tool_calls == [
            {
                "name": "search",
                "args": {"query": "otters and beavers in the river"},
                "id": "call_1",
                "type": "tool_call",
            },
            {"name": "add", "args": {"a": 12345, "b": 67890}, "id": "call_2", "type": "tool_call"},
        ]
        pieces = [c for chunk in chunks for c in chunk.tool_call_chunks if c["name"] is None]
        assert len(pieces) > 4  # the arguments really arrived in pieces
        assert total.response_metadata["finish_reason"] == "tool_calls"

    def test_streamed_tool_call_deltas_have_the_openai_shape(
        self, server: ScriptedOpenAIServer, raw_client: openai.OpenAI
    ) -> None:
        server.script(MODEL, reply(tool_calls=[tool_call("add", a=1, b=2)]))

        stream = raw_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Add"}], stream=True
        )
        deltas = [chunk.choices[0].delta.tool_calls for chunk in stream]

        first, *rest = [calls[0] for calls in deltas if calls]
        assert (first.index, first.id, first.type) == (0, "call_1", "function")
        assert first.function is not None
        assert (first.function.name, first.function.arguments) == ("add", "")
        arguments = ""
        for d in rest:
            assert d.id is None and d.function is not None and d.function.name is None
            assert d.function.arguments is not None
            arguments += d.function.arguments
        assert arguments == '{"a": 1, "b": 2}'

    def test_bind_tools_records_the_offered_tool_names(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, "No tools needed.")

        chat_model(server).bind_tools([search, add]).invoke("Hi")

        [request] = server.requests
        assert request.tools == ["search", "add"]
        assert request.raw_tools[0]["function"]["parameters"]["required"] == ["query"]


class TestUsage:
    def test_invoke_reports_word_counts_as_usage(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, "three word reply")

        message = chat_model(server).invoke([SystemMessage("Be brief."), HumanMessage("Hi there")])

        assert message.usage_metadata is not None
        assert message.usage_metadata["input_tokens"] == 4
        assert message.usage_metadata["output_tokens"] == 3
        assert message.usage_metadata["total_tokens"] == 7

    def test_stream_reports_usage_when_asked(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, reply("streamed", usage=Usage(prompt_tokens=11, completion_tokens=5)))

        _, total = stream_all(chat_model(server, stream_usage=True), "Hi")

        assert total.usage_metadata["input_tokens"] == 11
        assert total.usage_metadata["output_tokens"] == 5
        assert server.requests[0].raw["stream_options"] == {"include_usage": True}

    def test_stream_without_stream_usage_sends_no_usage(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, "streamed")

        _, total = stream_all(chat_model(server), "Hi")

        assert total.usage_metadata is None
        assert "stream_options" not in server.requests[0].raw


class TestRouting:
    def test_routes_by_model_name_by_default(self) -> None:
        scripts = {"planner": ["I plan."], "writer": ["I write."]}
        with ScriptedOpenAIServer(scripts) as server:
            planned = chat_model(server, "planner").invoke("a")
            written = chat_model(server, "writer").invoke("b")

            assert (planned.content, written.content) == ("I plan.", "I write.")
            assert [r.last_user_message for r in server.requests_for("writer")] == ["b"]

    def test_routes_by_system_prompt_marker(self) -> None:
        router = route_by_system_prompt({"You plan": "planner", "You write": "writer"})
        with ScriptedOpenAIServer(
            {"planner": ["Plan."], "writer": ["Text."]}, router=router
        ) as server:
            model = chat_model(server)

            written = model.invoke([SystemMessage("You write poems."), HumanMessage("Go")])
            planned = model.invoke([SystemMessage("You plan trips."), HumanMessage("Go")])

            assert (written.content, planned.content) == ("Text.", "Plan.")
            assert [r.route_key for r in server.requests] == ["writer", "planner"]

    def test_a_system_prompt_without_marker_fails_and_is_recorded(self) -> None:
        router = route_by_system_prompt({"You plan": "planner"})
        with ScriptedOpenAIServer({"planner": ["Plan."]}, router=router) as server:
            with pytest.raises(openai.InternalServerError, match="No marker"):
                chat_model(server).invoke([SystemMessage("You sing."), HumanMessage("Go")])

            assert len(server.errors) == 1
            assert "You sing." in server.errors[0]

    def test_a_function_in_a_reply_list_answers_one_request(
        self, server: ScriptedOpenAIServer
    ) -> None:
        server.script("m", "first", lambda request: f"echo {request.last_user_message}", "last")
        model = chat_model(server, "m")
        assert [model.invoke(text).content for text in ("a", "b", "c")] == [
            "first",
            "echo b",
            "last",
        ]

    def test_a_callable_script_sees_the_request(self, server: ScriptedOpenAIServer) -> None:
        seen: list[ChatRequest] = []

        def answer(request: ChatRequest) -> str:
            seen.append(request)
            return f"Tool said {request.tool_results[-1]}"

        server.script(MODEL, answer)
        history = [
            SystemMessage("You are helpful."),
            HumanMessage("Add 1 and 2"),
            AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}]),
            ToolMessage("3", tool_call_id="c1"),
        ]

        message = chat_model(server).invoke(history)

        assert message.content == "Tool said 3"
        [request] = seen
        assert request.system_prompt == "You are helpful."
        assert request.last_user_message == "Add 1 and 2"
        assert request.headers["authorization"] == f"Bearer {API_KEY}"

    def test_script_replaces_a_script_at_runtime(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, "old", "unused")
        server.script(MODEL, "new")

        assert chat_model(server).invoke("Hi").content == "new"


class TestFaults:
    def test_fail_next_rate_limits_then_the_client_retries_into_the_script(
        self, server: ScriptedOpenAIServer
    ) -> None:
        server.script(MODEL, "Finally.")
        server.fail_next(status=429, times=1)

        message = chat_model(server, max_retries=2).invoke("Hi")

        assert message.content == "Finally."
        assert len(server.requests) == 2
        assert server.errors == []

    def test_fail_next_applies_only_to_its_key(self) -> None:
        with ScriptedOpenAIServer({"a": ["from a"], "b": ["from b"]}) as server:
            server.fail_next(status=503, times=1, key="b")

            assert chat_model(server, "a").invoke("Hi").content == "from a"
            with pytest.raises(openai.InternalServerError):
                chat_model(server, "b").invoke("Hi")
            assert chat_model(server, "b").invoke("Hi").content == "from b"

    def test_scripted_status_raises_without_retries(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, reply(status=500))

        with pytest.raises(openai.InternalServerError, match="Scripted failure: status 500"):
            chat_model(server).invoke("Hi")

    def test_malformed_body_raises(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, reply("never parsed", malformed=True))

        with pytest.raises(ValueError, match="Expecting"):
            chat_model(server).invoke("Hi")

    def test_malformed_stream_raises(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, reply("never parsed", malformed=True))

        with pytest.raises(ValueError, match="Expecting"):
            stream_all(chat_model(server), "Hi")

    def test_dropped_stream_raises(self, server: ScriptedOpenAIServer) -> None:
        server.script(MODEL, reply("cut off before the end", drop_after_chunks=2))

        with pytest.raises(openai.APIConnectionError):
            stream_all(chat_model(server), "Hi")

    def test_delayed_replies_arrive_and_others_are_not_held_up(
        self, server: ScriptedOpenAIServer
    ) -> None:
        server.script("slow", reply("slow", delay=0.2))
        server.script("fast", "fast")
        finished: list[str] = []

        def call(name: str) -> None:
            chat_model(server, name).invoke("Hi")
            finished.append(name)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=2) as pool:
            slow = pool.submit(call, "slow")
            time.sleep(0.05)
            pool.submit(call, "fast").result()
            slow.result()

        assert finished == ["fast", "slow"]
        assert time.monotonic() - started < 5

    def test_an_exhausted_script_answers_500_and_records_it(
        self, server: ScriptedOpenAIServer
    ) -> None:
        server.script(MODEL, "only one")
        model = chat_model(server, max_retries=2)
        model.invoke("a")

        with pytest.raises(openai.InternalServerError, match="ran out"):
            model.invoke("b")

        assert server.errors == [
            f"Script for route key {MODEL!r} ran out: it had 1 replies and this is "
            "request #2 for that key."
        ]
        assert len(server.requests) == 2  # x-should-retry: false stops the retries

    def test_a_key_without_script_answers_500_and_records_it(
        self, server: ScriptedOpenAIServer
    ) -> None:
        with pytest.raises(openai.InternalServerError, match="No script for route key 'ghost'"):
            chat_model(server, "ghost").invoke("Hi")

        assert len(server.errors) == 1

    def test_a_callable_script_returning_no_reply_answers_500_and_records_it(
        self, server: ScriptedOpenAIServer
    ) -> None:
        server.script(MODEL, lambda request: None)  # type: ignore[arg-type,return-value]

        with pytest.raises(openai.InternalServerError, match="not a ScriptedReply or str"):
            chat_model(server).invoke("Hi")

        assert len(server.errors) == 1

    def test_an_unknown_endpoint_answers_404_and_records_it(
        self, server: ScriptedOpenAIServer
    ) -> None:
        with pytest.raises(openai.NotFoundError):
            chat_model(server, use_responses_api=True).invoke("Hi")

        assert server.requests == []
        assert server.errors[0].startswith("Unknown endpoint POST /v1/responses")

    def test_invalid_replies_are_rejected_when_written(self) -> None:
        with pytest.raises(ValueError, match="status"):
            ScriptedReply(status=42)
        with pytest.raises(ValueError, match="drop_after_chunks"):
            reply(drop_after_chunks=-1)
        with pytest.raises(TypeError, match="ScriptedReply, str or a function"):
            ScriptedOpenAIServer({MODEL: ["fine", 42]})  # type: ignore[list-item]


class TestServer:
    def test_concurrent_requests_are_all_answered_and_recorded(
        self, server: ScriptedOpenAIServer
    ) -> None:
        server.script(MODEL, lambda request: f"echo {request.last_user_message}")
        model = chat_model(server)
        prompts = [f"p{n}" for n in range(8)]

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda p: model.invoke(p).content, prompts))

        assert answers == [f"echo {p}" for p in prompts]
        assert sorted(r.last_user_message for r in server.requests) == prompts

    def test_images_endpoint_returns_a_real_png(
        self, server: ScriptedOpenAIServer, raw_client: openai.OpenAI
    ) -> None:
        result = raw_client.images.generate(model="image-model", prompt="An otter")

        assert result.data is not None
        png = base64.b64decode(result.data[0].b64_json or "")
        assert png == tiny_png_bytes()
        assert png.startswith(PNG_SIGNATURE)
        length, kind, width, height = struct.unpack(">I4sII", png[8:24])
        assert (length, kind, width, height) == (13, b"IHDR", 8, 8)
        assert zlib.decompress(png[41:-16])[:4] == b"\x00" + bytes((46, 125, 50))
        assert [r.prompt for r in server.image_requests] == ["An otter"]

    def test_models_endpoint_lists_the_script_keys(
        self, server: ScriptedOpenAIServer, raw_client: openai.OpenAI
    ) -> None:
        server.script("b", "x")
        server.script("a", "y")

        assert [model.id for model in raw_client.models.list()] == ["a", "b"]

    def test_stop_closes_the_port_and_joins_every_thread(self) -> None:
        with ScriptedOpenAIServer({MODEL: ["Hi"]}) as server:
            chat_model(server).invoke("Hi")  # leaves a pooled keep-alive connection
            port = server.port
            started = time.monotonic()

        assert time.monotonic() - started < 2
        assert not [t for t in threading.enumerate() if str(port) in t.name]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        server.stop()  # stopping again is harmless
