"""The command line as a new user meets it (issue 13), in real processes of the console
script: hints that work when pasted, ``--db`` forms, configuration errors with their fix,
``validate``, ``demo`` from anywhere, help text, ``chat``, and trying it all without a key.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from assistant_graph._example_team import EXAMPLE_ASSISTANTS as PACKAGED_ASSISTANTS
from assistant_graph._human import ask_user_tool
from assistant_graph.testing import ScriptedOpenAIServer, reply, route_by_system_prompt, tool_call

from .test_cli import (
    API_KEY,
    EXAMPLE_ASSISTANTS,
    REPO,
    TIMEOUT,
    Cli,
    Outcome,
    _command,
    finish,
)

PROGRAM = "assistant-graph"
TEAM = "my team"
"""A folder name with a space, so a hint that does not quote its words cannot work."""
DB = "threads.sqlite"


def solo_team(folder: Path, *, ask_user: bool = False) -> Path:
    """One assistant, ``solo``, that may ask the person."""
    folder.mkdir()
    text = "name: solo\ndescription: Alone.\ninstructions: You are solo.\n"
    if ask_user:
        text += "ask_user: true\n"
    (folder / "solo.yaml").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def server() -> Iterator[ScriptedOpenAIServer]:
    """A scripted server whose route key is ``solo`` for every request of solo."""
    with ScriptedOpenAIServer(router=route_by_system_prompt({"You are solo": "solo"})) as scripted:
        yield scripted


@pytest.fixture
def cli(tmp_path: Path, server: ScriptedOpenAIServer) -> Cli:
    return Cli(tmp_path, server)


def hint(outcome: Outcome, lead: str) -> list[str]:
    """The command a stderr line suggests after ``lead``, split as a shell would."""
    [line] = [line for line in outcome.stderr.splitlines() if lead in line]
    words = shlex.split(line.split(lead, 1)[1].rstrip(")"))
    assert words[0] == PROGRAM, line
    return words[1:]


def typed(cli: Cli, lines: str, *args: str) -> Outcome:
    """Run the CLI with ``lines`` typed on its stdin."""
    process = subprocess.Popen(
        [*_command(), *args],
        env=cli.env(),
        cwd=cli.home,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    stdout, stderr = process.communicate(lines, timeout=TIMEOUT)
    assert "Traceback" not in stderr, stderr
    assert API_KEY not in stdout + stderr
    return Outcome(process.returncode, stdout, stderr)


def pasted(words: list[str], **placeholders: str) -> list[str]:
    """The suggested command with the person's values in place of the placeholders."""
    return [placeholders.get(word, word) for word in words]


class TestHintsArePasteable:
    """Point 1: every suggested command works from the same directory, as printed."""

    def test_the_answer_hint_carries_the_folder_and_database_and_works(
        self, cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path
    ) -> None:
        solo_team(tmp_path / TEAM, ask_user=True)
        server.script(
            "solo",
            reply(tool_calls=[tool_call("ask_user", question="Which planet?")]),
            lambda request: f"{request.tool_results[-1]} it is.",
        )

        waiting = cli("run", "solo", "Tell me.", "-a", TEAM, "--db", DB, "--thread", "h1")
        command = hint(waiting, "answer with: ")
        answered = cli(*pasted(command, ANSWER="Mars"))

        assert waiting.code == 3
        assert command == [
            "run",
            "solo",
            "--thread",
            "h1",
            "--assistants",
            TEAM,
            "--db",
            DB,
            "--resume",
            "ANSWER",
        ]
        assert (answered.code, answered.stdout) == (0, "Mars it is.\n")

    def test_the_retry_hint_after_a_failed_run_works(
        self, cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path
    ) -> None:
        solo_team(tmp_path / TEAM)
        down = {"solo": True}
        server.script("solo", lambda request: reply(status=503) if down["solo"] else "Back.")

        failed = cli("run", "solo", "Hi", "-a", TEAM, "--db", DB, "--thread", "r1")
        down["solo"] = False
        retried = cli(*hint(failed, "retry the failed step with: "))

        assert failed.code == 1
        assert (retried.code, retried.stdout) == (0, "Back.\n")

    def test_a_new_thread_names_the_whole_command_that_continues_it(
        self, cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path
    ) -> None:
        solo_team(tmp_path / TEAM)
        server.script("solo", "One.", lambda request: f"{len(request.messages)} messages.")

        first = cli("run", "solo", "Hi", "-a", TEAM, "--db", DB)
        second = cli(*pasted(hint(first, "continue it with: "), MESSAGE="Again"))

        assert (second.code, second.stdout) == (0, "4 messages.\n")  # system, 2 turns

    @pytest.mark.parametrize("status", [400, 401])
    def test_a_permanent_error_says_what_to_change_instead_of_suggesting_a_retry(
        self, cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path, status: int
    ) -> None:
        solo_team(tmp_path / TEAM)
        server.script("solo", reply(status=status))

        failed = cli("run", "solo", "Hi", "-a", TEAM, "--db", DB, "--thread", "p1")

        assert failed.code == 1
        assert len(server.requests) == 1  # not retried either
        assert "retry the failed step" not in failed.stderr
        advice = {
            400: f"rejected the request (HTTP 400): check 'model:' and 'model_settings:' in "
            f"{TEAM}/solo.yaml",
            401: "did not accept the API key (HTTP 401): set a valid OPENAI_API_KEY",
        }[status]
        assert advice in failed.stderr
        assert "running the same step again would fail the same way" in failed.stderr


# -- one command each: all started at once, in parallel processes ----------------------------

MISSING_DB = "nowhere/x.sqlite"
POSTGRES_URL = "postgres://user:secret-pw@127.0.0.1:9/nothing"  # nothing listens there
OTHER_URLS = ("mysql://user:secret-pw@db/x", "file://x")


def _copy_of_the_example_team_with_an_unknown_field(home: Path) -> Path:
    folder = home / "team"
    folder.mkdir()
    for path in EXAMPLE_ASSISTANTS.iterdir():
        if path.is_file():
            (folder / path.name).write_bytes(path.read_bytes())
    with (folder / "calculator.yaml").open("a", encoding="utf-8") as file:
        file.write("colour: red\n")
    return folder


def _malformed_team(home: Path) -> Path:
    folder = home / "team"
    folder.mkdir()
    text = "name: solo\ndescription: Alone.\ninstructions: [You are solo.\n"
    (folder / "solo.yaml").write_text(text, encoding="utf-8")
    return folder


def _cases() -> dict[str, tuple[list[str], bool]]:
    """Each case: its command line (run in a folder of its own, with the solo team in
    ``TEAM``), and whether it needs a model server."""
    example = ["--assistants", str(EXAMPLE_ASSISTANTS)]
    solo = ["run", "solo", "Hi", "-a", TEAM]
    cases: dict[str, tuple[list[str], bool]] = {
        "sqlite url": ([*solo, "--db", "sqlite:///kept.sqlite"], True),
        "missing folder": ([*solo, "--db", MISSING_DB], False),
        "postgres url": ([*solo, "--db", POSTGRES_URL], True),
        "memory": ([*solo, "--db", ":memory:"], True),
        "no key": (["run", "proxy", "Hi", *example], False),
        "bad model": (["run", "proxy", "Hi", *example, "--model", "echo"], False),
        "knock-on": (["validate", "-a", "team"], False),
        "malformed": (["validate", "-a", "team"], False),
        "demo": (["demo", "--quiet"], False),
        "help": (["run", "--help"], False),
    }
    for url in OTHER_URLS:
        cases[url] = ([*solo, "--db", url], False)
    return cases


@dataclass(frozen=True)
class Ran:
    """One case: the folder it ran in (its home), and what it did."""

    home: Path
    outcome: Outcome


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    base = tmp_path_factory.mktemp("one-command-each")
    router = route_by_system_prompt({"You are solo": "solo"})
    with ScriptedOpenAIServer(router=router) as server:
        server.script("solo", lambda request: "Done.")
        started = {}
        for index, (name, (args, needs_server)) in enumerate(_cases().items()):
            home = base / f"case-{index}"
            home.mkdir()
            solo_team(home / TEAM)
            if name == "knock-on":
                _copy_of_the_example_team_with_an_unknown_field(home)
            elif name == "malformed":
                _malformed_team(home)
            cli = Cli(home, server if needs_server else None)
            started[name] = (home, cli.start(*args, COLUMNS="120"))
        return {name: Ran(home, finish(process)) for name, (home, process) in started.items()}


def _contents(home: Path) -> list[str]:
    return sorted(path.name for path in home.iterdir())


class TestDatabaseForms:
    """Point 2: ``--db`` takes a path, sqlite:///PATH, postgres URLs or :memory:."""

    def test_a_sqlite_url_names_a_file_not_a_folder(self, ran: dict[str, Ran]) -> None:
        home, outcome = ran["sqlite url"].home, ran["sqlite url"].outcome

        assert (outcome.code, outcome.stdout) == (0, "Done.\n")
        assert (home / "kept.sqlite").is_file()
        assert not (home / "sqlite:").exists()

    @pytest.mark.parametrize("url", OTHER_URLS)
    def test_any_other_url_is_a_usage_error_naming_the_accepted_forms(
        self, ran: dict[str, Ran], url: str
    ) -> None:
        home, outcome = ran[url].home, ran[url].outcome

        assert outcome.code == 2
        [line] = outcome.error_lines()
        assert "is not supported; give a SQLite file path, sqlite:///PATH, a postgresql://" in line
        assert "secret-pw" not in outcome.stderr
        assert _contents(home) == [TEAM]  # no folder named after the URL

    def test_a_missing_folder_is_an_error_and_is_not_made(self, ran: dict[str, Ran]) -> None:
        home, outcome = ran["missing folder"].home, ran["missing folder"].outcome

        assert outcome.code == 2
        assert outcome.error_lines() == [
            f"error: cannot create the SQLite database {MISSING_DB}: the folder nowhere does "
            "not exist (create it first, or give another path)"
        ]
        assert _contents(home) == [TEAM]

    def test_a_postgres_url_is_taken_as_postgres(self, ran: dict[str, Ran]) -> None:
        home, outcome = ran["postgres url"].home, ran["postgres url"].outcome

        assert outcome.code == 2
        [line] = outcome.error_lines()
        assert line.startswith("error: cannot open the Postgres database postgres://user:***@")
        assert "secret-pw" not in outcome.stderr
        assert _contents(home) == [TEAM]


class TestConfigurationErrors:
    """Point 3: the error names the assistant run, the file at fault, and the fix."""

    def test_a_missing_key_names_the_assistant_run_its_file_and_the_fixes(
        self, ran: dict[str, Ran]
    ) -> None:
        outcome = ran["no key"].outcome

        assert outcome.code == 2
        [line] = outcome.error_lines()
        assert line.startswith(
            f"error: cannot run proxy: {EXAMPLE_ASSISTANTS / 'proxy.yaml'}: model: cannot "
            "create chat model 'openai:gpt-4o-mini': OPENAI_API_KEY is not set"
        )
        for fix in ("export OPENAI_API_KEY=", "export OPENAI_BASE_URL=", "assistant-graph demo"):
            assert fix in outcome.stderr
        for confusing in ("researcher.yaml", "workload_identity", "OPENAI_ADMIN_KEY"):
            assert confusing not in outcome.stderr

    def test_a_failed_start_creates_no_database(self, ran: dict[str, Ran]) -> None:
        assert ran["no key"].outcome.code == 2
        assert not (ran["no key"].home / "data").exists()  # the per-user data folder

    def test_a_bad_model_option_is_blamed_on_the_option_in_one_line(
        self, ran: dict[str, Ran]
    ) -> None:
        outcome = ran["bad model"].outcome

        assert outcome.code == 2
        assert outcome.error_lines() == [
            "error: cannot run proxy: --model 'echo': cannot create chat model 'echo': it "
            "names no provider; write it as provider:model, e.g. openai:gpt-4o-mini"
        ]
        assert "researcher.yaml" not in outcome.stderr
        assert "anthropic_bedrock" not in outcome.stderr  # no list of every provider
        assert "chat proxy --demo" in outcome.stderr


class TestValidate:
    """Point 4: each root cause once, YAML positions kept, plain words, plurals."""

    def test_a_broken_file_is_reported_once_and_not_again_by_its_callers(
        self, ran: dict[str, Ran]
    ) -> None:
        folder = Path("team")
        outcome = ran["knock-on"].outcome

        assert outcome.code == 2
        [line] = outcome.stdout.splitlines()
        assert line.startswith(
            f"{folder / 'calculator.yaml'}: colour: unknown field; an assistant has the fields "
            "name, description, instructions, model, model_settings, tools, sub_assistants, "
        )
        assert outcome.stderr == f"1 problem in {folder}\n"

    def test_malformed_yaml_shows_file_line_column_and_the_line(self, ran: dict[str, Ran]) -> None:
        folder = Path("team")
        outcome = ran["malformed"].outcome

        assert outcome.stdout.splitlines() == [
            f"{folder / 'solo.yaml'}:3:15: malformed YAML: expected ',' or ']', but got the "
            "end of the file (while parsing a flow sequence, which starts here)",
            "    instructions: [You are solo.",
            "                  ^",
        ]
        assert "<unicode string>" not in outcome.stdout + outcome.stderr


class TestDemoAnywhere:
    """Point 5: the example team ships inside the package."""

    def test_the_demo_runs_from_any_directory(self, ran: dict[str, Ran]) -> None:
        outcome = ran["demo"].outcome

        assert (outcome.code, outcome.stderr.count("\n")) == (0, 1)  # the banner only
        assert outcome.stdout.splitlines()[-1] == "Jupiter is about 11 times wider than Earth."

    def test_the_repository_folder_is_the_packaged_one(self) -> None:
        assert (REPO / "assistants").resolve() == PACKAGED_ASSISTANTS
        assert (PACKAGED_ASSISTANTS / "proxy.yaml").is_file()
        assert (PACKAGED_ASSISTANTS / "image_team" / "user_proxy.yaml").is_file()


class TestHelp:
    """Point 6: help reads as conventional command-line help."""

    def test_usage_names_arguments_in_capitals_and_flags_take_no_value(
        self, ran: dict[str, Ran]
    ) -> None:
        outcome = ran["help"].outcome

        assert outcome.code == 0
        assert "Usage: assistant-graph run [OPTIONS] NAME [MESSAGE]" in outcome.stdout
        assert "<bool>" not in outcome.stdout
        assert "{name}" not in outcome.stdout
        assert re.search(r"--quiet\s+-q\s+No live tree", outcome.stdout)
        assert re.search(r"--thread\s+-t\s+ID\s", outcome.stdout)


class TestSmallerThings:
    """Point 7: memory threads, chat commands, one answer per turn."""

    def test_a_memory_thread_does_not_offer_to_be_continued(self, ran: dict[str, Ran]) -> None:
        outcome = ran["memory"].outcome

        assert outcome.code == 0
        assert re.search(r"^thread \w+ \(new, in memory only: it ends with this command\)$",
                         outcome.stderr, re.M)  # fmt: skip
        assert "--thread" not in outcome.stderr

    def test_chat_commands_stay_local_and_each_answer_is_printed_once(
        self, cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path
    ) -> None:
        solo_team(tmp_path / TEAM)
        server.script("solo", "Hello there!")
        outcome = typed(
            cli, "/help\n/nonsense\nHi\n/exit\n", "chat", "solo", "-a", TEAM, "--db", DB
        )
        stdout, stderr = outcome.stdout, outcome.stderr

        assert outcome.code == 0
        assert [request.last_user_message for request in server.requests] == ["Hi"]
        assert stdout == "Hello there!\n"
        assert "Hello there!" not in stderr  # the tree does not repeat the answer
        assert "/exit    end the chat" in stderr
        assert "unknown command /nonsense; /help lists the commands" in stderr
        assert "/help lists the commands, /exit stops" in stderr
        assert re.search(r"continue later with: assistant-graph chat solo --thread \w+ "
                         rf"--assistants '{TEAM}' --db {DB}\n", stderr)  # fmt: skip


class TestWithoutAKey:
    """Point 9: the team can be tried without a key, and a local server is documented."""

    def test_chat_demo_answers_any_question_on_scripted_models(self, tmp_path: Path) -> None:
        questions = "How wide is Mars?\nAnd the Moon?\n"
        outcome = typed(Cli(tmp_path), questions, "chat", "proxy", "--demo", "--db", ":memory:")
        stdout, stderr = outcome.stdout, outcome.stderr

        assert outcome.code == 0, stderr
        assert stdout.splitlines() == [
            "The researcher found: Mars' mean radius is 3389.5 km; it orbits the Sun at about "
            "227.9 million km.",
            "The researcher found: The Moon's mean radius is 1737.4 km; it orbits Earth at "
            "about 384400 km.",
        ]
        assert stderr.startswith("This is a scripted demo chat: no model is called.")
        assert "proxy → researcher: How wide is Mars?" in stderr
        assert '  researcher → lookup_fact(topic="How wide is Mars?")' in stderr

    def test_the_readme_says_how_to_use_a_local_model_server(self) -> None:
        text = (REPO / "README.md").read_text("utf-8")
        section = text[text.index("### Using a local model server") :]
        section = section[: section.index("\n## ")]

        for words in ("OPENAI_BASE_URL=", "OPENAI_API_KEY=", "--model openai:", "Ollama"):
            assert words in section
        assert "chat proxy --demo" in text


def test_the_ask_user_tool_is_described_cleanly_and_the_readme_names_its_argument() -> None:
    tool = ask_user_tool()
    readme = (REPO / "README.md").read_text("utf-8")

    assert tool.description == " ".join(tool.description.split())  # no stray indentation
    assert set(tool.args) == {"question"}
    assert "`ask_user` tool, which takes one argument,\n`question`" in readme
