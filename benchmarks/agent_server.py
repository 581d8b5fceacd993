"""``python -m benchmarks.agent_server``: our graphs on the Agent Server (Aegra) against the
same graph invoked in-process, measured in the same run.

A 2-level delegation (``proxy`` -> ``writer``) on zero-latency scripted models behind
real ``ChatOpenAI`` HTTP calls (the scripted OpenAI server runs in this process):

* per-run latency: one run at a time, in-process ``graph.invoke`` (the anchor; also with
  a ``PostgresSaver`` on the same PostgreSQL) and through the server (``runs.stream`` to
  its end, on a new thread each);
* throughput: ``--runs`` runs started at once on as many threads, with 1, 2 and 4 worker
  processes, against the same runs as concurrent in-process ``ainvoke`` calls.

Needs what ``tests/test_agent_server.py`` needs: ``ASSISTANT_GRAPH_TEST_POSTGRES`` (or
``--postgres``), ``redis-server`` and the server's venv. Not a timed test: it prints ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from langgraph.checkpoint.postgres import PostgresSaver
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from tests.agent_server_support import (
    Team,
    agent_server,
    fresh_database,
    missing_component,
    write_team,
)

from assistant_graph import build_assistant_graph, load_assistants
from assistant_graph.testing import ScriptedOpenAIServer
from benchmarks.harness import loopback_only, machine_info

API_KEY = "sk-benchmark-not-a-real-key"
WORKER_COUNTS = (1, 2, 4)


def _user(marker: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"load {marker}"}]}


def _median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


def _timed(function: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples


async def _timed_async(function: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await function()
        samples.append(time.perf_counter() - start)
    return samples


def in_process(folder: Path, postgres_url: str, repeat: int, runs: int) -> dict[str, float]:
    """The anchor: the same graph invoked in this process."""
    catalog = load_assistants(folder)
    graph = build_assistant_graph("proxy", catalog)
    graph.invoke(_user("warm"))
    plain = _timed(lambda: graph.invoke(_user(uuid.uuid4().hex[:8])), repeat)
    with fresh_database(postgres_url) as url, PostgresSaver.from_conn_string(url) as saver:
        saver.setup()
        saved = build_assistant_graph("proxy", catalog, checkpointer=saver)

        def one() -> Any:
            config = {"configurable": {"thread_id": uuid.uuid4().hex}}
            return saved.invoke(_user(uuid.uuid4().hex[:8]), config)

        one()
        persisted = _timed(one, repeat)

    async def many() -> None:
        await asyncio.gather(*(graph.ainvoke(_user(f"c{i}")) for i in range(runs)))

    start = time.perf_counter()
    asyncio.run(many())
    concurrent = runs / (time.perf_counter() - start)
    return {
        "invoke_ms": _median_ms(plain),
        "invoke_postgres_ms": _median_ms(persisted),
        "concurrent_runs_per_s": concurrent,
    }


async def _stream_one(client: LangGraphClient) -> None:
    thread = await client.threads.create()
    async for _ in client.runs.stream(thread["thread_id"], "proxy", input=_user("s")):
        pass


async def _served_latency(url: str, repeat: int) -> float:
    async with get_client(url=url) as client:
        await _stream_one(client)  # warm: the first run compiles the graph
        samples = await _timed_async(lambda: _stream_one(client), repeat)
    return _median_ms(samples)


async def _served_throughput(urls: list[str], runs: int) -> float:
    clients = [get_client(url=url) for url in urls]
    try:
        for client in clients:  # each instance compiles the graph before the clock starts
            await _stream_one(client)
        pick = [clients[i % len(clients)] for i in range(runs)]
        threads = await asyncio.gather(*(c.threads.create() for c in pick))
        start = time.perf_counter()
        created = await asyncio.gather(
            *(
                c.runs.create(t["thread_id"], "proxy", input=_user(f"t{i}"))
                for i, (c, t) in enumerate(zip(pick, threads, strict=True))
            )
        )
        await asyncio.gather(
            *(
                _drain(c.runs.join_stream(t["thread_id"], r["run_id"]))
                for c, t, r in zip(pick, threads, created, strict=True)
            )
        )
        return runs / (time.perf_counter() - start)
    finally:
        for client in clients:
            await client.aclose()


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


def served(
    folder: Path, models_url: str, postgres_url: str, repeat: int, runs: int, workers: Sequence[int]
) -> dict[str, float]:
    """The same runs through Aegra with 1, 2, 4 worker processes."""
    variables = {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": models_url,
        "ASSISTANT_GRAPH_ASSISTANTS": str(folder),
        "LOG_LEVEL": "WARNING",
    }
    results: dict[str, float] = {}
    for count in workers:
        workdir = Path(tempfile.mkdtemp(prefix="agent-server-benchmark-"))
        with agent_server(postgres_url, workdir, count, variables) as server:
            urls = [instance.url for instance in server.instances]
            try:
                if count == 1:
                    results["served_ms"] = asyncio.run(_served_latency(urls[0], repeat))
                results[f"runs_per_s_{count}"] = asyncio.run(_served_throughput(urls, runs))
            except Exception as error:
                raise SystemExit(f"{error!r}; the servers' logs are in {workdir}") from error
        shutil.rmtree(workdir)
    return results


def report(anchor: dict[str, float], server: dict[str, float], workers: Sequence[int]) -> str:
    """The tables, as text."""
    base, saved, served_ms = anchor["invoke_ms"], anchor["invoke_postgres_ms"], server["served_ms"]
    concurrent = anchor["concurrent_runs_per_s"]
    lines = [
        "Per run, one at a time (median):",
        f"  in-process graph.invoke (anchor)     {base:8.1f} ms   1.00x",
        f"  in-process with PostgresSaver        {saved:8.1f} ms   {saved / base:5.2f}x",
        f"  Agent Server, 1 worker (runs.stream) {served_ms:8.1f} ms   {served_ms / base:5.2f}x"
        f"   (+{served_ms - base:.1f} ms per run)",
        "Throughput, runs started at once:",
        f"  in-process, concurrent ainvoke (anchor) {concurrent:7.1f} runs/s   1.00x",
    ]
    for count in workers:
        rate = server[f"runs_per_s_{count}"]
        lines.append(
            f"  Agent Server, {count} worker process{'es' if count > 1 else '  '}     "
            f"{rate:7.1f} runs/s   {rate / concurrent:5.2f}x"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.agent_server", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: prove it runs")
    parser.add_argument("--postgres", default=os.environ.get("ASSISTANT_GRAPH_TEST_POSTGRES"))
    parser.add_argument("--runs", type=int, help="runs started at once (default 100; quick 10)")
    arguments = parser.parse_args(argv)
    missing = missing_component(arguments.postgres)
    if missing:
        parser.error(missing)
    repeat, runs = (3, 10) if arguments.quick else (30, 100)
    runs = arguments.runs or runs
    workers = WORKER_COUNTS[:2] if arguments.quick else WORKER_COUNTS
    with loopback_only(), tempfile.TemporaryDirectory() as root, ScriptedOpenAIServer() as models:
        folder = Path(root) / "assistants"
        folder.mkdir()
        write_team(folder)
        Team().serve(models, folder)
        os.environ.update(OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=models.url)
        anchor = in_process(folder, arguments.postgres, repeat, runs)
        server = served(folder, models.url, arguments.postgres, repeat, runs, workers)
        if models.errors:
            raise SystemExit(f"the scripted models saw errors: {models.errors}")
    info = machine_info()
    print(f"{info['cpu_count']} CPUs, Python {info['python']}, aegra-api 0.11; {runs} runs at once")
    print(report(anchor, server, workers))


if __name__ == "__main__":
    main()
