"""The CLI's pure-output commands and its parts, in process (typer's CliRunner).

The paths that run models end to end in real processes are in ``test_cli.py``.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Command, Interrupt
from rich.console import Console
from typer.testing import CliRunner

from assistant_graph.cli import app
from assistant_graph.cli._failures import CliFailure, redact_secrets
from assistant_graph.cli._human_input import describe_request, resume_command
from assistant_graph.cli._render import (
    JsonLinesRenderer,
    PlainTreeRenderer,
    RichTreeRenderer,
    format_usage,
)
from assistant_graph.events import (
    AgentMessageEvent,
    AssistantEvent,
    SubAssistantEndEvent,
    SubAssistantStartEvent,
    TokenEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from assistant_graph.testing import ScriptedOpenAIServer, reply, route_by_system_prompt, tool_call

from .conftest import EXAMPLE_ASSISTANTS, AssistantFolder

EXAMPLE = ["--assistants", str(EXAMPLE_ASSISTANTS)]


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


class TestValidate:
    def test_a_valid_folder_reports_how_many_assistants(self) -> None:
        result = invoke("validate", *EXAMPLE)

        assert (result.exit_code, result.stdout) == (0, "4 assistants OK\n")

    def test_every_problem_is_listed_as_file_field_message(self, folder: AssistantFolder) -> None:
        folder.add("boss", max_steps=0)
        folder.add("worker", sub_assistants=["ghost"])
        folder.write("broken.yaml", "name: [unclosed\n")

        result = invoke("validate", "--assistants", str(folder.path))

        assert result.exit_code == 2
        lines = result.stdout.splitlines()
        assert len(lines) == 5
        assert re.fullmatch(
            rf"{re.escape(str(folder.path))}/broken\.yaml:1:7: malformed YAML: .*", lines[0]
        )
        assert lines[1:3] == ["    name: [unclosed", "          ^"]
        assert f"{folder.path / 'boss.yaml'}: max_steps: Input should be greater than" in lines[3]
        assert lines[4] == (
            f"{folder.path / 'worker.yaml'}: sub_assistants[0]: no assistant named 'ghost'"
        )
        assert result.stderr == f"3 problems in {folder.path}\n"


class TestList:
    def test_lists_each_assistant_with_its_tools_and_sub_assistants(self) -> None:
        result = invoke("list", *EXAMPLE)

        assert result.exit_code == 0
        lines = result.stdout.splitlines()
        assert lines[:4] == [
            "calculator (callable)",
            "  Evaluates arithmetic expressions exactly. Give it the expression to compute.",
            "  tools: calculate",
            "  sub-assistants: -",
        ]
        assert "proxy" in lines
        assert "  sub-assistants: researcher, writer" in lines
        assert "  tools: lookup_fact" in lines

    def test_an_unknown_folder_is_a_usage_error(self, tmp_path: Path) -> None:
        result = invoke("list", "--assistants", str(tmp_path / "nowhere"))

        assert result.exit_code == 2
        assert result.stderr == f"error: {tmp_path / 'nowhere'}: assistants folder not found\n"


class TestGraph:
    def test_mermaid_shows_reachable_assistants_sub_calls_and_tools(self) -> None:
        result = invoke("graph", "researcher", *EXAMPLE)

        assert result.exit_code == 0
        lines = [line.strip() for line in result.stdout.splitlines()]
        assert lines[0] == "flowchart TD"
        assert 'researcher["researcher"]' in lines
        assert 'calculator["calculator"]' in lines
        assert "researcher --> calculator" in lines
        assert 'researcher -.-> researcher__tool__lookup_fact(["lookup_fact"]):::tool' in lines
        assert 'calculator -.-> calculator__tool__calculate(["calculate"]):::tool' in lines
        assert "class researcher root" in lines
        assert not any("writer" in line for line in lines)

    def test_approvals_and_ask_user_are_shown(self, folder: AssistantFolder) -> None:
        folder.add("boss", sub_assistants=["helper"], ask_user=True)
        folder.add("helper", callable=True)
        folder.write(
            "boss.yaml",
            folder.path.joinpath("boss.yaml").read_text()
            + "require_approval: [sub_assistant__helper]\n",
        )

        result = invoke("graph", "boss", "--assistants", str(folder.path))

        assert "boss -->|needs approval| helper" in result.stdout
        assert 'boss -.-> boss__tool__ask_user(["ask_user"]):::tool' in result.stdout

    def test_an_unknown_assistant_is_a_usage_error(self) -> None:
        result = invoke("graph", "nobody", *EXAMPLE)

        assert result.exit_code == 2
        assert result.stderr.startswith("error: no assistant named 'nobody'")


class TestHelp:
    def test_help_documents_the_exit_codes(self) -> None:
        result = invoke("--help")

        assert result.exit_code == 0
        text = " ".join(result.stdout.split())
        assert "0 done" in text and "3 waiting for input" in text

    def test_version(self) -> None:
        result = invoke("--version")

        assert (result.exit_code, result.stdout) == (0, "0.1.0\n")

    def test_resume_needs_a_thread(self) -> None:
        result = invoke("run", "proxy", "--resume", "yes", *EXAMPLE)

        assert result.exit_code == 2
        assert result.stderr == (
            "error: --resume needs --thread ID (the thread that waits for the answer)\n"
        )


class TestDemo:
    def test_json_demo_streams_both_turns_offline(self) -> None:
        result = invoke("demo", "--json", *EXAMPLE)

        assert result.exit_code == 0
        assert result.stderr.startswith("This is a scripted demo")
        events = [json.loads(line) for line in result.stdout.splitlines()]
        finals = [event for event in events if event["type"] == "final"]
        assert [final["content"] for final in finals] == [
            "Jupiter's radius, 69911 km, is about 10.97 times Earth's 6371 km.",
            "Jupiter is about 11 times wider than Earth.",
        ]
        assert ["proxy", "researcher", "calculator"] in [event["path"] for event in events]
        assert all(event["type"] != "token" for event in events)

    def test_the_offline_demo_needs_the_example_team(self, folder: AssistantFolder) -> None:
        folder.add("proxy")

        result = invoke("demo", "--assistants", str(folder.path))

        assert result.exit_code == 2
        assert "the offline demo needs the example team" in result.stderr


class TestChat:
    @pytest.fixture
    def server(
        self, scripted_openai_server: ScriptedOpenAIServer, monkeypatch: pytest.MonkeyPatch
    ) -> ScriptedOpenAIServer:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-chat")
        monkeypatch.setenv("OPENAI_BASE_URL", scripted_openai_server.url)
        return scripted_openai_server

    def test_each_line_is_a_turn_on_one_thread_until_exit(
        self, server: ScriptedOpenAIServer
    ) -> None:
        server.router = route_by_system_prompt({"You are the user's proxy": "proxy"})
        server.script("proxy", "Hello!", lambda request: f"You said {request.last_user_message}.")

        result = invoke("chat", "proxy", "--db", ":memory:", *EXAMPLE, input="Hi\nBye\n/exit\n")

        assert result.exit_code == 0
        assert result.stdout == "Hello!\nYou said Bye.\n"
        assert [len(request.messages) for request in server.requests] == [2, 4]
        assert "you > " in result.stderr

    def test_run_reads_the_message_from_stdin_when_it_is_a_dash(
        self, server: ScriptedOpenAIServer
    ) -> None:
        server.router = route_by_system_prompt({"You are the user's proxy": "proxy"})
        server.script("proxy", lambda request: f"Got {request.last_user_message!r}.")

        result = invoke("run", "proxy", "-", "--db", ":memory:", *EXAMPLE, input="Hi there\n")

        assert (result.exit_code, result.stdout) == (0, "Got 'Hi there'.\n")
        assert "(new, in memory only: it ends with this command)" in result.stderr

    def test_a_new_message_on_a_thread_waiting_for_input_is_refused(
        self, server: ScriptedOpenAIServer, folder: AssistantFolder, tmp_path: Path
    ) -> None:
        folder.add("asker", ask_user=True)
        server.router = route_by_system_prompt({"You are asker": "asker"})
        server.script("asker", reply(tool_calls=[tool_call("ask_user", question="Which?")]))
        options = ["--assistants", str(folder.path), "--db", str(tmp_path / "t.sqlite")]

        waiting = invoke("run", "asker", "Go", "--thread", "w", *options)
        refused = invoke("run", "asker", "Something else", "--thread", "w", *options)

        assert waiting.exit_code == 3
        assert refused.exit_code == 2
        assert refused.stderr == (
            "error: thread w is waiting for input (1 pending); answer it instead of sending a "
            f"new message: assistant-graph run asker --thread w {' '.join(options)} "
            "--resume ANSWER\n"
        )

    def test_questions_are_asked_inline_and_the_run_resumes(
        self, server: ScriptedOpenAIServer, folder: AssistantFolder
    ) -> None:
        folder.add("asker", ask_user=True)
        server.router = route_by_system_prompt({"You are asker": "asker"})
        server.script(
            "asker",
            reply(tool_calls=[tool_call("ask_user", question="Which planet?")]),
            lambda request: f"{request.tool_results[-1]} it is.",
        )

        result = invoke(
            "chat",
            "asker",
            "--db",
            ":memory:",
            "--assistants",
            str(folder.path),
            input="Go\nMars\n",
        )

        assert result.exit_code == 0
        assert result.stdout == "Mars it is.\n"
        assert re.search(r"\[\w+\] asker asks: Which planet\?\nanswer > ", result.stderr)


def interrupt(id: str, kind: str = "question", question: str = "Which?") -> Interrupt:
    value = {"kind": kind, "question": question, "path": ["proxy", "researcher"]}
    return Interrupt(value=value, id=id)


ID_A, ID_B = "a" * 32, "b" * 32


class TestResumeAnswers:
    def test_plain_text_answers_every_pending_request(self) -> None:
        command = resume_command("yes", [interrupt(ID_A), interrupt(ID_B, "approval")])

        assert command == Command(resume={ID_A: "yes", ID_B: "yes"})

    def test_a_json_object_of_ids_answers_each_request(self) -> None:
        answer = json.dumps({ID_A: "Mars", ID_B: "no"})

        assert resume_command(answer, [interrupt(ID_A), interrupt(ID_B)]) == Command(
            resume={ID_A: "Mars", ID_B: "no"}
        )

    def test_a_json_object_of_other_keys_is_one_answer(self) -> None:
        answer = '{"approved": false, "reason": "too costly"}'

        command = resume_command(answer, [interrupt(ID_A, "approval")])

        assert command == Command(resume={ID_A: {"approved": False, "reason": "too costly"}})

    def test_ids_that_are_not_pending_are_refused(self) -> None:
        with pytest.raises(CliFailure, match="not pending request ids: " + "c" * 32):
            resume_command(json.dumps({"c" * 32: "x"}), [interrupt(ID_A)])

    def test_a_request_is_described_with_its_id_and_path(self) -> None:
        assert describe_request(interrupt(ID_A, question="Which\nplanet?")) == (
            f"[{ID_A}] proxy > researcher asks: Which planet?"
        )


def delegation_events() -> list[AssistantEvent]:
    """proxy calls researcher (passing a context), which looks something up and answers."""
    r = ("proxy", "researcher")
    call = ToolCallEvent(
        path=("proxy",),
        name="sub_assistant__researcher",
        args={"message_to_assistant": "Look", "pass_contexts": ["c1"]},
        id="t1",
    )
    events = [
        call,
        SubAssistantStartEvent(
            path=r, parent_tool_call_id="t1", assistant="researcher", message="Look"
        ),
        ToolCallEvent(path=r, parent_tool_call_id="t1", name="lookup", args={"q": 1}, id="t2"),
        ToolResultEvent(path=r, parent_tool_call_id="t1", name="lookup", id="t2", content="42"),
        TokenEvent(path=r, parent_tool_call_id="t1", text="ignored"),
        AgentMessageEvent(path=r, parent_tool_call_id="t1", content="It is\n42."),
        SubAssistantEndEvent(
            path=r,
            parent_tool_call_id="t1",
            assistant="researcher",
            subgraph_uid="researcher-1",
            returning_incomplete=False,
        ),
        ToolResultEvent(path=("proxy",), name="sub_assistant__researcher", id="t1", content="x"),
    ]
    return events


class TestRendering:
    def test_the_plain_tree_indents_by_depth_and_shows_how_sub_assistants_are_called(
        self,
    ) -> None:
        stream = io.StringIO()

        with PlainTreeRenderer(stream) as renderer:
            for event in delegation_events():
                renderer.handle(event)

        assert stream.getvalue().splitlines() == [
            "proxy → researcher: Look [+contexts c1]",
            "  researcher → lookup(q=1)",
            "  researcher ← lookup: 42",
            "  researcher says: It is 42.",
            "  researcher ✓ done (0 tokens, uid researcher-1)",
        ]

    def test_on_a_terminal_the_tree_has_a_branch_per_sub_assistant_call(self) -> None:
        stream = io.StringIO()
        console = Console(file=stream, force_terminal=True, width=100, color_system=None)

        with RichTreeRenderer(console, "proxy") as renderer:
            for event in delegation_events():
                renderer.handle(event)

        shown = stream.getvalue().replace("\x1b[?25h", "")  # the cursor is shown again
        final_frame = shown.rsplit("proxy\n", 1)[-1].splitlines()
        assert [line.rstrip() for line in final_frame] == [
            "└── → researcher: Look [+contexts c1]",
            "    ├── → lookup(q=1)",
            "    ├── ← lookup: 42",
            "    ├── says: It is 42.",
            "    └── ✓ done (0 tokens, uid researcher-1)",
        ]

    def test_json_lines_leave_out_tokens_unless_asked(self) -> None:
        token = TokenEvent(path=("proxy",), text="Hi")
        quiet, noisy = io.StringIO(), io.StringIO()

        JsonLinesRenderer(quiet).handle(token)
        JsonLinesRenderer(noisy, tokens=True).handle(token)

        assert quiet.getvalue() == ""
        assert json.loads(noisy.getvalue()) == {
            "type": "token",
            "path": ["proxy"],
            "parent_tool_call_id": None,
            "text": "Hi",
            "message_id": None,
        }

    def test_usage_is_a_small_table_per_assistant_with_its_cost(self) -> None:
        priced = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12, "cost_usd": 0.5}
        unpriced = {**priced, "cost_usd": None}
        summary: Any = {
            "total": unpriced,
            "by_assistant": {"proxy": priced, "helper": unpriced},
            "by_path": {},
        }

        assert format_usage(summary) == [
            "tokens    input   output    total          cost",
            "proxy        10        2       12       $0.5000",
            "helper       10        2       12  cost unknown",
            "total        10        2       12  cost unknown",
        ]


def test_secrets_from_the_environment_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-abcdef123456")
    monkeypatch.setenv("SOME_TOKEN", "tok-987654321")

    text = redact_secrets("key sk-live-abcdef123456 and tok-987654321 and harmless")

    assert text == "key *** and *** and harmless"
