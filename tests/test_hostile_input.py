"""Hostile and bad input: any document loads or fails with a config error, any tool-call
arguments run or come back as an error tool message, and secrets never leak."""

from __future__ import annotations

import json
import logging
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import SecretStr

from assistant_graph import (
    AssistantCatalog,
    AssistantConfigError,
    RetryPolicy,
    build_assistant_graph,
    load_assistants,
    read_artifact,
    stream_events,
)
from assistant_graph.testing import (
    ScriptedModels,
    ScriptedOpenAIServer,
    ai,
    call_tool,
    reply,
    route_by_assistant,
    tool_call,
)

FIELDS = [
    "name",
    "description",
    "instructions",
    "model",
    "model_settings",
    "tools",
    "sub_assistants",
    "callable",
    "max_steps",
    "budget",
    "ask_user",
    "require_approval",
    "max_result_chars",
    "summarize_after_tokens",
    "summary_keep_messages",
    "output_schema",
    "output_strategy",
    "unknown",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["helper", "openai:gpt-4o-mini", "gpt", "a:b c"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
valid_documents = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["helper", "writer", "a1", "b_2", "c3", "d4", "e5", "f6"]),
        "description": st.text(min_size=1, max_size=20),
        "instructions": st.text(min_size=1, max_size=20),
    },
    optional={
        "model": st.sampled_from(["openai:gpt-4o-mini", "ollama:llama3.1"]),
        "callable": st.booleans(),
        "budget": st.fixed_dictionaries({}, optional={"max_steps": st.integers(1, 1000)}),
    },
)
"""Assistant documents valid on their own, so that whole folders sometimes load."""
documents = st.one_of(
    valid_documents,
    st.builds(
        lambda valid, extra: {**valid, **extra},
        valid_documents,
        st.dictionaries(st.sampled_from(FIELDS), values, max_size=2),
    ),
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS)),
    values,
)
pytestmark = pytest.mark.filterwarnings(
    # Random documents may use the deprecated top-level max_steps, which warns and loads.
    "ignore:.*top-level max_steps is deprecated:FutureWarning"
)
LOADABLE = {"name": "helper", "description": "Helps.", "instructions": "You help."}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=documents,
    second=documents,
    raw=st.one_of(st.text(max_size=200), valid_documents.map(yaml.safe_dump)),
)
@example(  # a folder that loads, whatever the random examples do
    first=LOADABLE,
    second={**LOADABLE, "name": "writer", "callable": True, "budget": {"max_steps": 3}},
    raw="name: a1\ndescription: d\ninstructions: i\nmodel: openai:gpt-4o-mini\n",
)
def test_any_document_loads_or_raises_a_config_error_naming_the_file(
    first: Any, second: Any, raw: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "a.yaml").write_text(yaml.safe_dump(first), encoding="utf-8")
        (root / "b.json.yaml").write_text(json.dumps(second, default=str), encoding="utf-8")
        (root / "c.yml").write_text(raw, encoding="utf-8")
        try:
            catalog = load_assistants(root)
        except AssistantConfigError as error:
            assert error.problems
            for problem in error.problems:
                assert problem.file.startswith(str(root))
                assert problem.message
        else:
            # Every file validated: the catalog holds exactly one assistant per file, under
            # the name the file gives, with the file's description and instructions.
            files = sorted(root.iterdir())
            written = {str(file): yaml.safe_load(file.read_text("utf-8")) for file in files}
            assert sorted(catalog) == sorted(data["name"] for data in written.values())
            for source, data in written.items():
                schema = catalog[data["name"]]
                assert catalog.source_of(data["name"]) == source
                assert (schema.description, schema.instructions) == (
                    data["description"],
                    data["instructions"],
                )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)
SUB_ASSISTANT_ARGUMENTS = (
    "message_to_assistant",
    "pass_num_previous_messages",
    "pass_contexts",
    "resume_conversation_uid",
)
"""The arguments a model may send to a sub-assistant tool."""
tool_args = st.one_of(
    st.dictionaries(
        st.sampled_from(
            [*SUB_ASSISTANT_ARGUMENTS, "parent_conv_messages", "sub_assistant_states", "x"]
        ),
        json_values,
        max_size=5,
    ),
    st.fixed_dictionaries(
        {"message_to_assistant": st.text(max_size=20)},
        optional={
            "pass_num_previous_messages": st.integers(-3, 5),
            "pass_contexts": st.lists(st.text(max_size=5), max_size=2),
            "resume_conversation_uid": st.none() | st.text(max_size=12),
        },
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(args=tool_args)
def test_any_sub_assistant_tool_arguments_run_or_return_an_error_message(
    team: AssistantCatalog, args: dict[str, Any]
) -> None:
    models = ScriptedModels(
        {
            "proxy": [ai(tool_calls=[call_tool("sub_assistant__writer", **args)]), "ok"],
            "writer": ["written"],
        }
    )
    result = build_assistant_graph("proxy", team, model=models).invoke(
        {"messages": [("user", "go")]}
    )
    [message] = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    writer_calls = models.calls("writer")
    if message.status == "error":
        # the sub-assistant never starts, and the model is told which argument is wrong:
        # one it sent, or the required message it left out
        assert writer_calls == []
        named = {name for name in SUB_ASSISTANT_ARGUMENTS if name in message.content}
        assert named, message.content
        assert named <= {*args, "message_to_assistant"}, message.content
    else:
        # the sub-assistant ran once on the message, and its conversation can be resumed
        assert message.status == "success"
        [writer_call] = writer_calls
        assert str(writer_call.last_message.content).startswith(args["message_to_assistant"])
        artifact = read_artifact(message)
        assert artifact is not None
        uid = artifact["subgraph_uid"]
        assert set(result["sub_assistant_states"]) == {uid}
        assert isinstance(message.content, str)
        assert message.content.startswith("written")
        assert f'resume_conversation_uid="{uid}"' in message.content
    assert result["messages"][-1].content == "ok"


def test_injected_arguments_sent_by_the_model_cannot_replace_the_callers_state(
    team: AssistantCatalog,
) -> None:
    forged: dict[str, Any] = {
        "message_to_assistant": "hi",
        "parent_conv_messages": [],
        "parent_steps_remaining": 99,
        "sub_assistant_states": {"x": {"assistant": "writer", "messages": []}},
    }
    models = ScriptedModels(
        {
            "proxy": [
                ai(
                    tool_calls=[
                        call_tool("sub_assistant__writer", **forged, resume_conversation_uid="x")
                    ]
                ),
                "ok",
            ],
            "writer": ["written"],
        }
    )
    result = build_assistant_graph("proxy", team, model=models).invoke(
        {"messages": [("user", "go")]}
    )
    [message] = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "error"
    assert "no conversation with uid 'x'" in message.content
    assert models.calls("writer") == []


SECRET = "sk-test-SECRET-0123456789abcdef"


def test_the_api_key_never_appears_in_checkpoints_events_logs_or_errors(
    team: AssistantCatalog,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    scripted_openai_server: ScriptedOpenAIServer,
) -> None:
    server = scripted_openai_server
    server.router = route_by_assistant(team)
    server.script(
        "proxy",
        reply(tool_calls=[tool_call("sub_assistant__writer", message_to_assistant="hi")]),
        "done",
        reply(status=401),
    )
    server.script("writer", "hello")

    def model(schema: Any) -> ChatOpenAI:
        return ChatOpenAI(
            model="gpt-4o-mini", base_url=server.url, api_key=SecretStr(SECRET), max_retries=0
        )

    database = tmp_path / "threads.sqlite"
    caplog.set_level(logging.DEBUG)
    with sqlite3.connect(database, check_same_thread=False) as connection:
        graph = build_assistant_graph(
            "proxy",
            team,
            model=model,
            checkpointer=SqliteSaver(connection),
            retry=RetryPolicy(max_attempts=1),
        )
        config: RunnableConfig = {"configurable": {"thread_id": "secret"}}
        events = list(stream_events(graph, "greet", config))
        events += list(stream_events(graph, "again", config))  # ends with a 401 error
        state = graph.get_state(config)
    connection.close()

    assert events[-2].type == "error"
    assert all(
        request.headers["authorization"] == f"Bearer {SECRET}" for request in server.requests
    )
    outputs = [
        json.dumps([event.to_dict() for event in events], default=str),
        repr(events),
        str(getattr(events[-2], "exception", "")),
        caplog.text,
        repr(state.values),
    ]
    for output in outputs:
        assert SECRET not in output
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert SECRET.encode() not in stored
