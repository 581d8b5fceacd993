"""The ``assistant-graph`` command, end to end: real processes of the installed script,
real ChatOpenAI calls to the scripted OpenAI-compatible server on 127.0.0.1.

Every process gets an environment built here (never the test runner's), so no real key
or server can leak in; the data folder is a temporary one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assistant_graph import load_assistants
from assistant_graph.testing import (
    ChatRequest,
    ScriptedOpenAIServer,
    ScriptedReply,
    ScriptedToolCall,
    reply,
    route_by_assistant,
    route_by_system_prompt,
    tool_call,
)
from tests.loopback import free_port

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_ASSISTANTS = REPO / "assistants"
API_KEY = "sk-test-cli-not-a-real-key"
UID = re.compile(r"conversation_uid: ([\w-]+);")
TIMEOUT = 60


def _command() -> list[str]:
    """The installed console script next to this interpreter, or ``-m`` if absent."""
    script = Path(sys.executable).with_name("assistant-graph")
    return [str(script)] if script.exists() else [sys.executable, "-m", "assistant_graph.cli"]


@dataclass(frozen=True)
class Outcome:
    """What one process of the CLI did."""

    code: int
    stdout: str
    stderr: str

    def events(self) -> list[dict[str, Any]]:
        """stdout read as JSON Lines."""
        return [json.loads(line) for line in self.stdout.splitlines()]

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error: ")]


@dataclass
class Cli:
    """Runs the CLI in fresh processes with an environment built from scratch."""

    home: Path
    server: ScriptedOpenAIServer | None = None
    base_url_variable: str = "OPENAI_BASE_URL"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / "data"),
            "PYTHONUTF8": "1",
            "NO_COLOR": "1",
        }
        if self.server is not None:
            env["OPENAI_API_KEY"] = API_KEY
            env[self.base_url_variable] = self.server.url
        return {**env, **extra}

    def start(self, *args: str, cwd: Path | None = None, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*_command(), *args],
            env=self.env(**env),
            cwd=cwd or self.home,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def __call__(self, *args: str, cwd: Path | None = None, **env: str) -> Outcome:
        return finish(self.start(*args, cwd=cwd, **env))


def finish(process: subprocess.Popen[str]) -> Outcome:
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    outcome = Outcome(process.returncode, stdout, stderr)
    assert "Traceback" not in stderr, stderr
    assert API_KEY not in stdout + stderr
    return outcome


def sub(assistant: str, message: str, **args: Any) -> ScriptedToolCall:
    return tool_call(f"sub_assistant__{assistant}", message_to_assistant=message, **args)


def resume_last(assistant: str, message: str) -> Callable[[ChatRequest], ScriptedReply]:
    """A proxy reply that resumes its last conversation with ``assistant`` by uid."""

    def respond(request: ChatRequest) -> ScriptedReply:
        uid = UID.findall("\n".join(request.tool_results))[-1]
        return reply(tool_calls=[sub(assistant, message, resume_conversation_uid=uid)])

    return respond


@pytest.fixture
def server() -> Iterator[ScriptedOpenAIServer]:
    """The scripted server, routing the example team by system prompt."""
    team = load_assistants(EXAMPLE_ASSISTANTS)
    with ScriptedOpenAIServer(router=route_by_assistant(team)) as scripted:
        yield scripted
        assert scripted.errors == []


@pytest.fixture
def cli(tmp_path: Path, server: ScriptedOpenAIServer) -> Cli:
    return Cli(tmp_path, server)


def example(*args: str) -> list[str]:
    return [*args, "--assistants", str(EXAMPLE_ASSISTANTS)]


def script_mars(server: ScriptedOpenAIServer) -> None:
    """proxy -> researcher -> calculator, one call each."""
    server.script(
        "proxy", reply(tool_calls=[sub("researcher", "Diameter of Mars?")]), "Mars is 6779 km wide."
    )
    server.script(
        "researcher",
        reply(tool_calls=[tool_call("lookup_fact", topic="mars")]),
        reply(tool_calls=[sub("calculator", "2*3389.5")]),
        "6779 km",
    )
    server.script(
        "calculator", reply(tool_calls=[tool_call("calculate", expression="2*3389.5")]), "6779"
    )


ECHOED_KEY = "sk-test-ECHOED-5f0c2a9e71d4b836"


def echo_the_key_in_errors(server: ScriptedOpenAIServer, key: str) -> None:
    """Make every chat request fail with 401 and an error body that carries the API key.

    The route key is the request's Authorization header, and the error body of a scripted
    failure names the route key, as a careless server or proxy would echo credentials.
    """
    server.router = lambda request: request.headers["authorization"]
    server.script(f"Bearer {key}", lambda request: reply(status=401))


class TestRun:
    def test_delegation_prints_the_answer_and_shows_the_nested_activity_on_stderr(
        self, cli: Cli, server: ScriptedOpenAIServer
    ) -> None:
        script_mars(server)

        outcome = cli(*example("run", "proxy", "How wide is Mars?"))

        assert (outcome.code, outcome.stdout) == (0, "Mars is 6779 km wide.\n")
        tree = outcome.stderr.splitlines()
        assert "proxy → researcher: Diameter of Mars?" in tree
        assert '  researcher → lookup_fact(topic="mars")' in tree
        assert "  researcher → calculator: 2*3389.5" in tree
        assert '    calculator → calculate(expression="2*3389.5")' in tree
        assert "    calculator ← calculate: 2*3389.5 = 6779" in tree
        assert "proxy says: Mars is 6779 km wide." in tree
        assert re.search(
            r"^thread (\w+) \(new, kept in .*threads\.sqlite; continue it with: "
            r"assistant-graph run proxy --thread \1 --assistants \S+ MESSAGE\)$",
            outcome.stderr,
            re.M,
        )
        # usage is requested from the scripted server too, and summed per assistant
        assert re.match(r"^total\s+\d+\s+\d+\s+\d+\s+\$\d+\.\d+$", tree[-1]), tree[-1]
        assert any(line.startswith("calculator ") for line in tree[-6:])

    def test_json_lines_name_the_path_of_every_event_three_levels_deep(
        self, cli: Cli, server: ScriptedOpenAIServer
    ) -> None:
        script_mars(server)

        outcome = cli(*example("run", "proxy", "How wide is Mars?", "--json"))

        assert outcome.code == 0
        assert outcome.stderr == ""
        events = outcome.events()
        p, r, c = ["proxy"], ["proxy", "researcher"], ["proxy", "researcher", "calculator"]
        assert [(event["type"], event["path"]) for event in events] == [
            ("tool_call", p),
            ("sub_assistant_start", r),
            ("tool_call", r),
            ("tool_result", r),
            ("tool_call", r),
            ("sub_assistant_start", c),
            ("tool_call", c),
            ("tool_result", c),
            ("agent_message", c),
            ("sub_assistant_end", c),
            ("tool_result", r),
            ("agent_message", r),
            ("sub_assistant_end", r),
            ("tool_result", p),
            ("agent_message", p),
            ("final", p),
        ]
        final = events[-1]
        assert final["content"] == "Mars is 6779 km wide."
        assert final["status"] == "completed"
        assert final["thread_id"]
        assert set(final["usage"]) == {"total", "by_assistant", "by_path"}

    @pytest.mark.parametrize("variable", ["OPENAI_BASE_URL", "OPENAI_API_BASE"])
    def test_the_model_server_is_found_through_either_base_url_variable(
        self, tmp_path: Path, server: ScriptedOpenAIServer, variable: str
    ) -> None:
        server.script("proxy", "Hello!")
        cli = Cli(tmp_path, server, base_url_variable=variable)

        outcome = cli(*example("run", "proxy", "Hi", "--quiet"))

        assert (outcome.code, outcome.stdout, outcome.stderr) == (0, "Hello!\n", "")
        assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"

    def test_a_rate_limited_call_is_retried_and_the_run_succeeds(
        self, cli: Cli, server: ScriptedOpenAIServer
    ) -> None:
        server.script("proxy", "Hello!")
        server.fail_next(status=429, times=1)

        outcome = cli(*example("run", "proxy", "Hi"))

        assert (outcome.code, outcome.stdout) == (0, "Hello!\n")
        assert len(server.requests) == 2
        assert re.search(
            r"^proxy ↻ model call failed \(attempt 1 of \d\), retrying in", outcome.stderr, re.M
        )

    def test_an_error_line_echoing_the_api_key_is_printed_with_the_key_masked(
        self, cli: Cli, server: ScriptedOpenAIServer
    ) -> None:
        echo_the_key_in_errors(server, ECHOED_KEY)

        outcome = cli(*example("run", "proxy", "Hi"), OPENAI_API_KEY=ECHOED_KEY)

        assert {r.route_key for r in server.requests} == {f"Bearer {ECHOED_KEY}"}
        assert (outcome.code, outcome.stdout) == (1, "")
        [line] = outcome.error_lines()
        assert re.fullmatch(
            r"error: model call of assistant proxy failed( after \d+ attempts)?: "
            r".*401.*'Bearer \*\*\*'.*",
            line,
        ), line
        assert ECHOED_KEY not in outcome.stdout + outcome.stderr

    def test_json_lines_of_an_error_echoing_the_api_key_do_not_carry_the_key(
        self, cli: Cli, server: ScriptedOpenAIServer
    ) -> None:
        echo_the_key_in_errors(server, ECHOED_KEY)

        outcome = cli(*example("run", "proxy", "Hi", "--json"), OPENAI_API_KEY=ECHOED_KEY)

        assert outcome.code == 1
        [error] = [event for event in outcome.events() if event["type"] == "error"]
        assert "'Bearer ***'" in error["message"]
        assert ECHOED_KEY not in outcome.stdout + outcome.stderr

    def test_model_override_from_flag_wins_over_environment(
        self, cli: Cli, server: ScriptedOpenAIServer
    ) -> None:
        server.router = lambda request: request.model
        server.script("gpt-from-flag", "Flag!")

        outcome = cli(
            *example("run", "proxy", "Hi", "--model", "openai:gpt-from-flag"),
            ASSISTANT_GRAPH_MODEL="openai:gpt-from-env",
        )

        assert (outcome.code, outcome.stdout) == (0, "Flag!\n")
        assert [request.model for request in server.requests] == ["gpt-from-flag"]


class TestThreads:
    def test_a_thread_continues_in_another_process_resuming_the_sub_conversation(
        self, cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path
    ) -> None:
        server.script(
            "proxy",
            reply(tool_calls=[sub("writer", "Title about Mars.")]),
            "A title.",
            resume_last("writer", "Shorter."),
            "A shorter title.",
        )
        server.script("writer", "Mars, the red frontier", "Red Mars")
        db = str(tmp_path / "threads.sqlite")

        first = cli(*example("run", "proxy", "Title?", "--thread", "t1", "--db", db))
        second = cli(*example("run", "proxy", "Shorter?", "--thread", "t1", "--db", db))

        assert (first.code, first.stdout) == (0, "A title.\n")
        assert (second.code, second.stdout) == (0, "A shorter title.\n")
        assert "thread t1\n" in second.stderr
        assert "(resuming writer-" in second.stderr
        resumed = server.requests_for("writer")[1]
        assert [m["role"] for m in resumed.messages] == ["system", "user", "assistant", "user"]
        assert resumed.messages[2]["content"] == "Mars, the red frontier"
        assert resumed.last_user_message == "Shorter."

    def test_without_db_threads_are_kept_in_the_user_data_folder(
        self, cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path
    ) -> None:
        server.script(
            "proxy", "One.", lambda request: f"Two, after {request.messages[2]['content']}"
        )

        first = cli(*example("run", "proxy", "First", "--json"))
        thread = first.events()[-1]["thread_id"]
        second = cli(*example("run", "proxy", "Second", "--thread", thread, "--quiet"))

        assert second.stdout == "Two, after One.\n"
        assert (tmp_path / "data" / "assistant-graph" / "threads.sqlite").is_file()

    def test_a_persistent_server_error_ends_the_run_and_the_thread_can_be_retried(
        self, cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path
    ) -> None:
        broken = {"researcher": True}
        server.script("proxy", reply(tool_calls=[sub("researcher", "Moon radius?")]), "1737.4 km.")
        server.script(
            "researcher",
            lambda request: reply(status=500) if broken["researcher"] else "1737.4 km",
        )
        db = str(tmp_path / "threads.sqlite")

        failed = cli(*example("run", "proxy", "Moon?", "--thread", "t2", "--db", db))
        broken["researcher"] = False
        retried = cli(*example("run", "proxy", "--thread", "t2", "--db", db))

        assert (failed.code, failed.stdout) == (1, "")
        [error] = failed.error_lines()
        assert re.fullmatch(
            r"error: model call of assistant proxy > researcher failed( after \d+ attempts)?: "
            r".*500.*",
            error,
        )
        assert (
            f"retry the failed step with: assistant-graph run proxy --thread t2 "
            f"--assistants {EXAMPLE_ASSISTANTS} --db {db}\n"
        ) in failed.stderr
        assert (retried.code, retried.stdout) == (0, "1737.4 km.\n")
        assert "retrying the failed run on thread t2" in retried.stderr
        assert len(server.requests_for("proxy")) == 2


def hitl_team(folder: Path) -> Path:
    """proxy -> researcher (asks the person; calls to calculator need approval)."""
    folder.mkdir()
    files = {
        "proxy": "sub_assistants: [researcher]\n",
        "researcher": (
            "callable: true\nask_user: true\nsub_assistants: [calculator]\n"
            "require_approval: [sub_assistant__calculator]\n"
        ),
        "calculator": "callable: true\n",
    }
    for name, extra in files.items():
        text = f"name: {name}\ndescription: The {name}.\ninstructions: You are the {name}.\n"
        (folder / f"{name}.yaml").write_text(text + extra, encoding="utf-8")
    return folder


@pytest.fixture
def hitl(tmp_path: Path, server: ScriptedOpenAIServer) -> tuple[Cli, list[str]]:
    server.router = route_by_system_prompt(
        {f"You are the {name}.": name for name in ("proxy", "researcher", "calculator")}
    )
    folder = hitl_team(tmp_path / "team")
    db = str(tmp_path / "threads.sqlite")
    return Cli(tmp_path, server), ["--assistants", str(folder), "--db", db]


class TestHumanInTheLoop:
    def test_a_question_asked_two_levels_deep_is_answered_with_resume(
        self, hitl: tuple[Cli, list[str]], server: ScriptedOpenAIServer
    ) -> None:
        cli, options = hitl
        server.script(
            "proxy", reply(tool_calls=[sub("researcher", "Which planet?")]), "Mars it is."
        )
        server.script(
            "researcher",
            reply(tool_calls=[tool_call("ask_user", question="Which planet do you mean?")]),
            lambda request: f"The person said {request.tool_results[-1]}.",
        )

        waiting = cli("run", "proxy", "Tell me about a planet.", "--thread", "h1", *options)
        answered = cli("run", "proxy", "--thread", "h1", "--resume", "Mars", *options)

        assert waiting.code == 3
        header, request = waiting.stdout.splitlines()
        assert header == "waiting for input on thread h1:"
        assert re.fullmatch(
            r"  \[\w{32}\] proxy > researcher asks: Which planet do you mean\?", request
        )
        assert f"answer with: assistant-graph run proxy --thread h1 {' '.join(options)} " in (
            waiting.stderr
        )
        assert waiting.stderr.rstrip().endswith("--resume ANSWER")
        assert (answered.code, answered.stdout) == (0, "Mars it is.\n")
        assert server.requests_for("researcher")[1].tool_results == ["Mars"]

    def test_several_pending_requests_are_answered_by_id_with_a_json_object(
        self, hitl: tuple[Cli, list[str]], server: ScriptedOpenAIServer
    ) -> None:
        cli, options = hitl
        server.script("proxy", reply(tool_calls=[sub("researcher", "Go.")]), "Done.")
        server.script(
            "researcher",
            reply(
                tool_calls=[
                    tool_call("ask_user", question="Which planet?"),
                    sub("calculator", "2*3389.5"),
                ]
            ),
            lambda request: " | ".join(request.tool_results),
        )
        server.script("calculator", "6779")

        waiting = cli("run", "proxy", "Go", "--thread", "h2", "--json", *options)
        requests = [event for event in waiting.events() if event["type"] == "input_request"]
        answers = {
            request["id"]: "Mars" if request["kind"] == "question" else "yes"
            for request in requests
        }
        answered = cli("run", "proxy", "--thread", "h2", "--resume", json.dumps(answers), *options)

        assert waiting.code == 3
        assert waiting.events()[-1]["status"] == "interrupted"
        assert sorted((r["kind"], r["path"][-1]) for r in requests) == [
            ("approval", "researcher"),
            ("question", "researcher"),
        ]
        assert answered.code == 0
        results = server.requests_for("researcher")[1].tool_results
        assert results[0] == "Mars"
        assert results[1].startswith("6779")

    def test_resume_on_a_thread_with_nothing_pending_is_a_usage_error(
        self, hitl: tuple[Cli, list[str]]
    ) -> None:
        cli, options = hitl

        outcome = cli("run", "proxy", "--thread", "idle", "--resume", "yes", *options)

        assert outcome.code == 2
        assert outcome.error_lines() == [
            "error: --resume: thread idle is not waiting for any input"
        ]


class TestBadInput:
    """Each mistake gives one clear line on stderr and an exit code, never a traceback."""

    @pytest.fixture(scope="class")
    @classmethod
    def outcomes(cls, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
        """Run every bad-input case at once, in parallel processes."""
        home = tmp_path_factory.mktemp("bad-input")
        broken = home / "broken"
        broken.mkdir()
        (broken / "a.yaml").write_text("name: [unclosed\n", encoding="utf-8")
        solo = home / "solo"
        solo.mkdir()
        (solo / "solo.yaml").write_text(
            "name: solo\ndescription: Alone.\ninstructions: You are alone.\n"
            "model_settings: {max_retries: 0}\n",
            encoding="utf-8",
        )
        cli = Cli(home)
        cases = {
            "unknown assistant": cli.start(*example("run", "nobody", "Hi")),
            "missing folder": cli.start("run", "proxy", "Hi", "--assistants", str(home / "none")),
            "invalid yaml": cli.start("run", "a", "Hi", "--assistants", str(broken)),
            "no api key": cli.start(*example("run", "proxy", "Hi")),
            "unreachable server": cli.start(
                "run",
                "solo",
                "Hi",
                "--assistants",
                str(solo),
                OPENAI_API_KEY=API_KEY,
                OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
            ),
        }
        return {name: finish(process) for name, process in cases.items()}

    def test_unknown_assistant(self, outcomes: dict[str, Outcome]) -> None:
        outcome = outcomes["unknown assistant"]
        assert outcome.code == 2
        assert outcome.error_lines() == [
            "error: no assistant named 'nobody' in the catalog "
            "(known: calculator, proxy, researcher, writer)"
        ]

    def test_missing_assistants_folder(self, outcomes: dict[str, Outcome]) -> None:
        outcome = outcomes["missing folder"]
        assert outcome.code == 2
        [line] = outcome.error_lines()
        assert line.endswith("none: assistants folder not found")

    def test_invalid_yaml(self, outcomes: dict[str, Outcome]) -> None:
        outcome = outcomes["invalid yaml"]
        assert outcome.code == 2
        [line] = outcome.error_lines()
        assert re.fullmatch(r"error: .*a\.yaml:1:7: malformed YAML: .*", line)

    def test_no_api_key_for_a_real_model(self, outcomes: dict[str, Outcome]) -> None:
        outcome = outcomes["no api key"]
        assert outcome.code == 2
        [line] = outcome.error_lines()
        assert re.fullmatch(r"error: .*\.yaml: model: cannot create chat model 'openai:.*", line)
        assert "OPENAI_API_KEY" in line

    def test_unreachable_model_server(self, outcomes: dict[str, Outcome]) -> None:
        outcome = outcomes["unreachable server"]
        assert outcome.code == 1
        [line] = outcome.error_lines()
        assert re.fullmatch(
            r"error: model call of assistant solo failed( after \d+ attempts)?: "
            r"\w*ConnectionError: Connection error\.",
            line,
        )


def test_the_offline_demo_says_it_is_scripted_and_shows_the_four_behaviours(
    tmp_path: Path,
) -> None:
    outcome = Cli(tmp_path)("demo", cwd=REPO)

    assert outcome.code == 0
    lines = outcome.stderr.splitlines()
    assert lines[0].startswith("This is a scripted demo: no model is called")
    assert "proxy → researcher: Find the mean radii of Jupiter and Earth" in outcome.stderr
    assert "  researcher → calculator: 69911 / 6371" in lines
    assert '    calculator → calculate(expression="69911 / 6371")' in lines
    [to_writer] = [line for line in lines if line.startswith("proxy → writer: Write")]
    assert to_writer.endswith("[+1 previous message] [+contexts call_demo_research]")
    assert re.search(
        r"^proxy → writer: Make it shorter.* \(resuming writer-\w+\)$", outcome.stderr, re.M
    )
    turn_2 = next(i for i, line in enumerate(lines) if line.startswith("Turn 2"))
    assert lines[turn_2 - 1].startswith("total ")  # token usage after each turn
    assert outcome.stdout.splitlines() == [
        "Jupiter's radius, 69911 km, is about 10.97 times Earth's 6371 km.",
        "Jupiter is about 11 times wider than Earth.",
    ]
