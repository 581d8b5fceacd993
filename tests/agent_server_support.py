"""A real Agent Server on loopback for the tests and the benchmark: Aegra instances (the
open-source LangGraph Agent Server) serving the graphs of ``aegra.json``, sharing one fresh
PostgreSQL database and one Redis; and the scripted team they serve.

Each instance is the README's command, ``python -m uvicorn aegra_api.main:app``, run by the
Python of a virtual environment that has ``aegra-api`` and this package (Aegra needs Python
3.12 or newer; ``.ci/run`` makes ``.venv-agent-server``). Each instance is one process with
its API, one worker loop and the lease reaper; several instances are several worker
processes. Redis is ``redis-server`` on a free port, without persistence. Every process
runs in its own process group, stopped as a whole (also when a test fails).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import yaml

from assistant_graph import load_assistants
from assistant_graph.studio import THREAD_LOCKS_ENV
from assistant_graph.testing import (
    ChatRequest,
    ScriptedOpenAIServer,
    ScriptedReply,
    ScriptedToolCall,
    reply,
    route_by_assistant,
    tool_call,
)
from tests.loopback import STOP_SECONDS, free_port, stop_group

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_ASSISTANTS = REPO / "assistants"
UID = re.compile(r"conversation_uid: ([\w-]+);")
GATE_SECONDS = 60.0
AEGRA_CONFIG = REPO / "aegra.json"
SERVER_PYTHON_VARIABLE = "ASSISTANT_GRAPH_TEST_AGENT_SERVER"
"""The Python of a virtual environment with ``aegra-api`` and this package installed."""
DEFAULT_SERVER_PYTHON = REPO / ".venv-agent-server" / "bin" / "python"
SERVER_APP = "aegra_api.main:app"
STARTUP_SECONDS = 60.0
LEASE_SECONDS = 3
"""Lease of a run on its worker; a killed worker's run is reaped this long after its
last heartbeat (Aegra's default is 30 s; short here so the test does not wait)."""

SERVER_SETTINGS: dict[str, str] = {
    "REDIS_BROKER_ENABLED": "true",  # runs go through the Redis queue to the workers
    "WORKER_COUNT": "1",  # worker loops per process: one, so a process is a worker
    "N_JOBS_PER_WORKER": "10",
    "LEASE_DURATION_SECONDS": str(LEASE_SECONDS),
    "HEARTBEAT_INTERVAL_SECONDS": "1",
    "REAPER_INTERVAL_SECONDS": "1",
    # PostgreSQL connections per process: at most 5 + 10 (Aegra's own pool) + 10 (LangGraph's);
    # Aegra's defaults (10 + 20 + 20) let two processes fill PostgreSQL's default 100.
    "SQLALCHEMY_POOL_SIZE": "5",
    "SQLALCHEMY_MAX_OVERFLOW": "10",
    "LANGGRAPH_MAX_POOL_SIZE": "10",
    "CRON_ENABLED": "false",
    "LOG_LEVEL": "INFO",  # each worker logs the runs it picks up
}
"""Aegra's settings for every instance, besides where PostgreSQL and Redis are."""
OFFLINE_ENVIRONMENT = {
    "LANGSMITH_TRACING": "false",
    "OTEL_TARGETS": "",
    "NO_PROXY": "127.0.0.1,localhost",
}


def missing_component(postgres_url: str | None) -> str | None:
    """Why the Agent Server cannot be started here, or None when everything is present."""
    if not postgres_url:
        return "no PostgreSQL: set ASSISTANT_GRAPH_TEST_POSTGRES (.ci/run starts one)"
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH (apt-get install redis-server; .ci/run installs it)"
    if pg_dump() is None:
        return "no pg_dump (PostgreSQL's client programs) on PATH or in /usr/lib/postgresql"
    python = server_python()
    if not python.is_file():
        return (
            f"no Agent Server: {python} is missing; make a Python >= 3.12 venv with "
            f"aegra-api and this package, or set {SERVER_PYTHON_VARIABLE} (.ci/run does)"
        )
    return None


def pg_dump() -> str | None:
    """PostgreSQL's ``pg_dump``: on PATH, else in Debian's versioned folder (newest)."""
    found = shutil.which("pg_dump")
    if found:
        return found
    folders = Path("/usr/lib/postgresql").glob("*/bin/pg_dump")
    versioned = sorted(folders, key=lambda path: float(path.parts[-3]))
    return str(versioned[-1]) if versioned else None


def server_python() -> Path:
    """The Python that runs the Agent Server."""
    return Path(os.environ.get(SERVER_PYTHON_VARIABLE) or DEFAULT_SERVER_PYTHON)


def _spawn(
    command: list[str], log: Path, environment: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            command,
            cwd=log.parent,
            env=dict(environment),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
        )


def _wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} was not ready after {STARTUP_SECONDS} s:\n{log.read_text()}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@dataclass
class Redis:
    """A ``redis-server`` on a free loopback port, keeping nothing on disk."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its ``redis://`` URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        log = self.workdir / "redis.log"
        command = [str(shutil.which("redis-server")), "--port", str(self.port)]
        command += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.workdir)]
        self.process = _spawn(command, log, os.environ)
        _wait_until(self._pings, self.process, log, "redis-server")

    def _pings(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop it."""
        if self.process is not None:
            stop_group(self.process)


@contextmanager
def fresh_database(postgres_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``postgres_url``, dropped afterwards."""
    name = f"agent_server_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(postgres_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Instance:
    """One Agent Server process: API, worker loop and lease reaper."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        """Where its API listens."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.process.pid


WORKER_NAME = re.compile(r"-(\d+)-worker-\d+$")
"""Aegra's name of a worker loop, ``<host>-<pid>-worker-<n>``: the pid of its process."""


@dataclass
class AgentServer:
    """Aegra instances on loopback sharing one database and one Redis."""

    workdir: Path
    database_url: str
    redis: Redis
    environment: dict[str, str]
    instances: list[Instance] = field(default_factory=list)

    def start_instance(self) -> Instance:
        """Start one more instance and wait until it answers."""
        port = free_port()
        log = self.workdir / f"instance-{len(self.instances)}.log"
        command = [str(server_python()), "-m", "uvicorn", SERVER_APP]
        command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        process = _spawn(command, log, self.environment)
        instance = Instance(process, port, log)
        self.instances.append(instance)
        _wait_until(lambda: _answers(f"{instance.url}/health"), process, log, "Aegra")
        return instance

    @property
    def url(self) -> str:
        """The API of the first instance still running."""
        return next(i.url for i in self.instances if i.process.poll() is None)

    def worker_of(self, run_id: str) -> Instance | None:
        """The instance whose worker holds ``run_id`` now, from the run's lease."""
        with psycopg.connect(self.database_url) as connection:
            row = connection.execute(
                "SELECT claimed_by FROM runs WHERE run_id = %s", (run_id,)
            ).fetchone()
        match = WORKER_NAME.search(row[0]) if row and row[0] else None
        if match is None:
            return None
        pid = int(match.group(1))
        return next((i for i in self.instances if i.pid == pid), None)

    def picked_up(self, run_id: str) -> list[Instance]:
        """The instances whose worker picked up ``run_id`` (from their logs)."""
        return [
            i
            for i in self.instances
            if any(
                "Worker picked up run" in line and run_id in line
                for line in i.log.read_text(errors="replace").splitlines()
            )
        ]

    def retries_of(self, run_id: str) -> int:
        """How many times the reaper put ``run_id`` back in the queue after its worker died."""
        with psycopg.connect(self.database_url) as connection:
            row = connection.execute(
                "SELECT execution_params->>'_retry_count' FROM runs WHERE run_id = %s", (run_id,)
            ).fetchone()
        return int(row[0]) if row and row[0] else 0

    def kill(self, instance: Instance) -> None:
        """SIGKILL one instance: no drain, no hand-off, as a crash."""
        os.killpg(instance.pid, signal.SIGKILL)
        instance.process.wait(timeout=STOP_SECONDS)

    def logs(self) -> str:
        """Every instance's log, for failure messages."""
        return "\n".join(
            f"--- {i.log.name}\n{i.log.read_text(errors='replace')}" for i in self.instances
        )

    def stop(self) -> None:
        """Stop every instance."""
        for instance in self.instances:
            stop_group(instance.process)


def server_environment(
    database_url: str, redis_url: str, variables: Mapping[str, str]
) -> dict[str, str]:
    """The instances' environment: this one without model, tracing or project settings,
    plus where PostgreSQL and Redis are, :data:`SERVER_SETTINGS` and ``variables``."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OPENAI_", "LANGSMITH_", "LANGCHAIN_", "ASSISTANT_GRAPH_"))
    }
    return {
        **inherited,
        **OFFLINE_ENVIRONMENT,
        **SERVER_SETTINGS,
        "AEGRA_CONFIG": str(AEGRA_CONFIG),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        **variables,
    }


@contextmanager
def agent_server(
    postgres_url: str,
    workdir: Path,
    workers: int,
    variables: Mapping[str, str],
    *,
    thread_locks: bool = False,
) -> Iterator[AgentServer]:
    """Redis, a fresh database and ``workers`` Aegra instances; all stopped afterwards.

    Args:
        postgres_url: A PostgreSQL server (any database of it): a new database is made.
        workdir: Where the logs go.
        workers: How many instances (worker processes) to start.
        variables: More environment for the instances (model settings, assistants folder).
        thread_locks: Guard the served threads by advisory locks in the server's database
            (``ASSISTANT_GRAPH_THREAD_LOCKS``, as the README's recipe does).
    """
    redis = Redis(workdir)
    with fresh_database(postgres_url) as database_url:
        locks = {THREAD_LOCKS_ENV: database_url} if thread_locks else {}
        environment = server_environment(database_url, redis.url, {**locks, **variables})
        server = AgentServer(workdir, database_url, redis, environment)
        try:
            redis.start()
            server.start_instance()  # the first one migrates the new database alone
            for _ in range(workers - 1):
                server.start_instance()
            yield server
        finally:
            server.stop()
            with suppress(Exception):
                redis.stop()


# -- the scripted team ----------------------------------------------------------------------


def _sub(assistant: str, message: str, **args: Any) -> ScriptedToolCall:
    return tool_call(f"sub_assistant__{assistant}", message_to_assistant=message, **args)


def _turn_results(request: ChatRequest) -> list[str]:
    """The tool results that came back since the last user message."""
    starts = [i for i, m in enumerate(request.messages) if m["role"] == "user"]
    turn = request.messages[starts[-1] :]
    return [str(m["content"]) for m in turn if m["role"] == "tool"]


def _first_line(text: str) -> str:
    return text.split("\n")[0]


@dataclass
class Team:
    """The scripted models' rules, and the gate a slow researcher waits at.

    Each model answers by rule from what it received (the verb and marker of the user's
    message, how many tool results came back this turn), so runs on many threads at once
    never share a script.
    """

    gate: threading.Event = field(default_factory=threading.Event)
    """Closed: a researcher told to be slow waits here on its first model call."""
    waiting: threading.Event = field(default_factory=threading.Event)
    """Set once a slow researcher is waiting at the gate."""

    def __post_init__(self) -> None:
        self.gate.set()

    def serve(self, models: ScriptedOpenAIServer, folder: Path) -> None:
        """Answer every assistant of the team written into ``folder`` on ``models``."""
        models.router = route_by_assistant(load_assistants(folder))
        for name in ("proxy", "researcher", "calculator", "writer"):
            models.script(name, getattr(self, name))

    def proxy(self, request: ChatRequest) -> ScriptedReply | str:
        """``mars M``: researcher and writer in parallel; ``continue M``: the writer's
        earlier conversation resumed by uid; ``ask M``: the researcher asks the person;
        ``load M``: the writer only; ``slow M``: like mars, the researcher slow."""
        verb, _, marker = request.last_user_message.partition(" ")
        results = _turn_results(request)
        if results:
            return f"{verb} {marker}: " + " | ".join(_first_line(r) for r in results)
        if verb in ("mars", "slow"):
            question = "Diameter of Mars?" if verb == "mars" else "slow: Diameter of Mars?"
            return reply(tool_calls=[_sub("researcher", question), _sub("writer", marker)])
        if verb == "continue":
            [uid] = [UID.findall(r)[-1] for r in request.tool_results if "writer wrote" in r][-1:]
            return reply(tool_calls=[_sub("writer", marker, resume_conversation_uid=uid)])
        if verb == "ask":
            return reply(tool_calls=[_sub("researcher", "ask the person which planet")])
        return reply(tool_calls=[_sub("writer", marker)])

    def researcher(self, request: ChatRequest) -> ScriptedReply | str:
        """Asks the person when told to; else looks Mars up and has the calculator double
        its radius (after the gate, when told to be slow)."""
        results, message = _turn_results(request), request.last_user_message
        if "ask the person" in message:
            if results:
                return f"the person said {results[-1]}"
            return reply(tool_calls=[tool_call("ask_user", question="Which planet?")])
        if message.startswith("slow") and not results:
            self.waiting.set()
            self.gate.wait(GATE_SECONDS)
        steps: list[ScriptedReply | str] = [
            reply(tool_calls=[tool_call("lookup_fact", topic="mars")]),
            reply(tool_calls=[_sub("calculator", "2*3389.5")]),
            "Mars is 6779 km wide",
        ]
        return steps[len(results)]

    @staticmethod
    def calculator(request: ChatRequest) -> ScriptedReply | str:
        """Calculates, then answers with the result."""
        if _turn_results(request):
            return "6779"
        return reply(tool_calls=[tool_call("calculate", expression="2*3389.5")])

    @staticmethod
    def writer(request: ChatRequest) -> str:
        """Writes what it was asked, saying how many earlier turns it remembers."""
        earlier = sum(1 for m in request.messages if m["role"] == "user") - 1
        return f"writer wrote {request.last_user_message} (earlier turns: {earlier})"


def write_team(folder: Path) -> None:
    """The example team, with ``ask_user`` given to the researcher."""
    for source in EXAMPLE_ASSISTANTS.glob("*.yaml"):
        data = yaml.safe_load(source.read_text("utf-8"))
        if data["name"] == "researcher":
            data["ask_user"] = True
        (folder / source.name).write_text(yaml.safe_dump(data), "utf-8")
    shutil.copy(EXAMPLE_ASSISTANTS / "tools.py", folder / "tools.py")
