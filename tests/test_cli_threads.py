"""The command line on a thread another process is running: "a run is in progress", never
"the last run failed"; ``--if-busy wait`` waits its turn; nothing of either run is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import pytest

from assistant_graph import load_assistants, open_checkpointer
from assistant_graph.testing import (
    ChatRequest,
    ScriptedOpenAIServer,
    ScriptedReply,
    reply,
    route_by_assistant,
)

from .test_cli import EXAMPLE_ASSISTANTS, Cli, Outcome, example, finish

TIMEOUT = 60


@pytest.fixture
def server() -> Iterator[ScriptedOpenAIServer]:
    team = load_assistants(EXAMPLE_ASSISTANTS)
    with ScriptedOpenAIServer(router=route_by_assistant(team)) as scripted:
        yield scripted
        assert scripted.errors == []


@pytest.fixture
def cli(tmp_path: Path, server: ScriptedOpenAIServer) -> Cli:
    return Cli(tmp_path, server)


@dataclass
class SlowRun:
    """A first run on thread t1 whose model call waits until the test lets it answer."""

    process: Popen[str]
    release: threading.Event

    def finish(self) -> Outcome:
        self.release.set()
        return finish(self.process)


def start_slow_run(cli: Cli, server: ScriptedOpenAIServer, db: Path) -> SlowRun:
    """Start ``writer`` on thread t1; return once its model call has started (so its run
    holds the thread)."""
    release = threading.Event()

    def answer_when_released(request: ChatRequest) -> ScriptedReply:
        assert release.wait(TIMEOUT)
        return reply("first answer")

    server.script("writer", answer_when_released, "second answer")
    process = cli.start(*example("run", "writer", "first", "--db", str(db), "--thread", "t1"))
    deadline = time.monotonic() + TIMEOUT
    while not server.requests:
        assert time.monotonic() < deadline, "the first run never called its model"
        time.sleep(0.05)
    return SlowRun(process, release)


def test_a_second_run_on_a_busy_thread_says_a_run_is_in_progress_and_exits_4(
    cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "threads.sqlite"
    slow = start_slow_run(cli, server, db)
    second = cli(*example("run", "writer", "second", "--db", str(db), "--thread", "t1"))
    first = slow.finish()

    assert second.code == 4
    [line] = second.error_lines()
    assert "a run is in progress on thread 't1'" in line and "process" in line
    assert "failed" not in second.stderr
    assert "--if-busy wait" in line
    assert len(server.requests) == 1  # the refused run made no model call
    assert (first.code, first.stdout) == (0, "first answer\n")
    again = cli(*example("run", "writer", "third", "--db", str(db), "--thread", "t1"))
    assert (again.code, again.stdout) == (0, "second answer\n")


def test_if_busy_wait_runs_after_the_other_run_with_its_turn_kept(
    cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "threads.sqlite"
    slow = start_slow_run(cli, server, db)
    args = example("run", "writer", "second", "--db", str(db), "--thread", "t1")
    waiting = cli.start(*args, "--if-busy", "wait")
    time.sleep(3)  # the second process starts, finds the thread busy and waits
    assert waiting.poll() is None and len(server.requests) == 1
    first = slow.finish()
    second = finish(waiting)

    assert (first.code, first.stdout) == (0, "first answer\n")
    assert (second.code, second.stdout) == (0, "second answer\n")
    last = server.requests[-1]
    assert [m["content"] for m in last.messages if m["role"] != "system"] == [
        "first",
        "first answer",
        "second",
    ]


def test_retrying_without_a_message_while_a_run_is_in_progress_redoes_nothing(
    cli: Cli, server: ScriptedOpenAIServer, tmp_path: Path
) -> None:
    db = tmp_path / "threads.sqlite"
    slow = start_slow_run(cli, server, db)
    retry = cli(*example("run", "writer", "--db", str(db), "--thread", "t1"))
    slow.finish()
    assert retry.code == 4 and "a run is in progress" in retry.stderr
    assert len(server.requests) == 1


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A thread store the CLI is given with --db."""
    if request.param == "sqlite":
        return str(tmp_path / "threads.sqlite")
    url: str = request.getfixturevalue("postgres_url")
    return url


def checkpoints(db: str, thread: str) -> int:
    with open_checkpointer(db) as saver:
        return len(list(saver.list({"configurable": {"thread_id": thread}})))


def test_a_finished_run_says_it_compacted_the_thread_on_sqlite_and_postgres(
    cli: Cli, server: ScriptedOpenAIServer, store: str
) -> None:
    server.script("writer", "one", "two")
    thread = f"compact-{time.monotonic_ns()}"
    kept = cli(*example("run", "writer", "hi", "--db", store, "--thread", thread, "--keep-history"))
    assert kept.code == 0 and "compacted" not in kept.stderr
    assert checkpoints(store, thread) > 1

    compact = cli(*example("run", "writer", "again", "--db", store, "--thread", thread))
    assert compact.code == 0
    assert f"thread {thread} compacted to its latest checkpoint" in compact.stderr
    assert checkpoints(store, thread) == 1
