"""5. Peak memory of the process over 1,000 stored threads, each loaded and continued.

A template thread (three turns of proxy -> writer, resuming the writer) is stored in a
SQLite file with ``SqliteSaver``, and its latest checkpoint is copied under 1,000 thread
ids. One graph then runs one more turn on every thread, one after another: each run loads
the thread, resumes the writer's sub-conversation and saves. Memory is sampled after every
run (resident set size) and, every 100 runs after a full garbage collection, as RSS and as
the number of objects the garbage collector tracks. No leak means both stay flat after the
first hundred runs.
"""

from __future__ import annotations

import gc
import resource
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.sqlite import SqliteSaver

from assistant_graph import build_assistant_graph, store_messages_once
from benchmarks.harness import Mode, SectionResult, Target, ratio
from benchmarks.long_threads import proxy_policy, thread_catalog, writer_policy
from benchmarks.policies import scripted

__all__ = ["run"]

THREADS = {"quick": 40, "full": 1000}
SAMPLE_EVERY = {"quick": 10, "full": 100}
TEMPLATE_TURNS = 3
TEMPLATE = "template"
LEAK_LIMIT = 1.10
"""Retained memory after the last run may exceed that after the first sample by 10%."""

_COPY_MESSAGES = """
INSERT INTO assistant_graph_messages
SELECT ?, hash, type, data FROM assistant_graph_messages WHERE thread_id = ?"""
_COPY_CHECKPOINT = """
INSERT INTO checkpoints
SELECT ?, checkpoint_ns, checkpoint_id, NULL, type, checkpoint, metadata FROM checkpoints
WHERE thread_id = ? AND checkpoint_ns = '' AND checkpoint_id = ?"""


def _graph(saver: Any) -> Any:
    models = {"proxy": scripted(proxy_policy()), "writer": scripted(writer_policy())}
    return build_assistant_graph(
        "proxy", thread_catalog(), model=lambda schema: models[schema.name], checkpointer=saver
    )


def _store_threads(connection: sqlite3.Connection, count: int, once: bool) -> list[str]:
    """Run the template thread, then copy its latest checkpoint (and with ``once`` its
    stored messages) under ``count`` ids."""
    graph = _graph(_saver(connection, once))
    config = {"configurable": {"thread_id": TEMPLATE}}
    for turn in range(TEMPLATE_TURNS):
        graph.invoke({"messages": [HumanMessage(f"Draft {turn}, please.")]}, config)
    latest = connection.execute(
        "SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ''",
        (TEMPLATE,),
    ).fetchone()[0]
    threads = [f"thread-{index:04d}" for index in range(count)]
    with connection:
        connection.executemany(_COPY_CHECKPOINT, [(t, TEMPLATE, latest) for t in threads])
        if once:
            connection.executemany(_COPY_MESSAGES, [(t, TEMPLATE) for t in threads])
    return threads


def _saver(connection: sqlite3.Connection, once: bool) -> Any:
    saver = SqliteSaver(connection)
    return store_messages_once(saver) if once else saver


def _megabytes(value: float) -> float:
    return round(value / 1e6, 1)


def current_rss_bytes() -> int:
    """The process's resident set size now (psutil if installed, else /proc, else the peak)."""
    try:
        import psutil
    except ImportError:
        statm = Path("/proc/self/statm")
        if statm.exists():
            return int(statm.read_text().split()[1]) * resource.getpagesize()
        return _peak_rss_bytes()
    return int(psutil.Process().memory_info().rss)


def _peak_rss_bytes() -> int:
    """The process's peak resident set size so far (ru_maxrss is in kB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _continue_every_thread(mode: Mode, once: bool) -> tuple[list[dict[str, Any]], int, int]:
    """Continue each stored thread once; memory samples, RSS before and peak RSS."""
    count, every = THREADS[mode], SAMPLE_EVERY[mode]
    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="assistant-graph-bench-") as folder:
        connection = sqlite3.connect(Path(folder) / "threads.sqlite", check_same_thread=False)
        try:
            threads = _store_threads(connection, count, once)
            graph = _graph(_saver(connection, once))
            gc.collect()
            start_rss, peak_rss = current_rss_bytes(), 0
            for index, thread in enumerate(threads, start=1):
                config = {"configurable": {"thread_id": thread}}
                graph.invoke({"messages": [HumanMessage("One more revision.")]}, config)
                peak_rss = max(peak_rss, current_rss_bytes())
                if index % every == 0:
                    gc.collect()
                    samples.append(
                        {
                            "saver": "SqliteSaver" + (" + store_messages_once" if once else ""),
                            "runs": index,
                            "rss_mb": _megabytes(current_rss_bytes()),
                            "gc_objects": len(gc.get_objects()),
                        }
                    )
        finally:
            connection.close()
    return samples, start_rss, peak_rss


def run(mode: Mode) -> SectionResult:
    """Store the threads, continue each once, and sample memory along the way; on the
    plain saver, then on the saver as open_checkpointer opens it (store_messages_once)."""
    count = THREADS[mode]
    result = SectionResult(
        name="memory_peak",
        title=f"5. Memory over {count} stored threads, each loaded and continued once",
        params={
            "threads": count,
            "template_turns": TEMPLATE_TURNS,
            "sample_every": SAMPLE_EVERY[mode],
        },
    )
    for once in (False, True):
        samples, start_rss, peak_rss = _continue_every_thread(mode, once)
        key = "once" if once else "plain"
        first, last = samples[0], samples[-1]
        result.rows.extend(samples)
        result.ratios[f"rss_last_over_first_sample_{key}"] = ratio(last["rss_mb"], first["rss_mb"])
        result.ratios[f"gc_objects_last_over_first_sample_{key}"] = ratio(
            last["gc_objects"], first["gc_objects"]
        )
        result.extra[key] = {
            "rss_before_runs_mb": _megabytes(start_rss),
            "peak_rss_during_runs_mb": _megabytes(peak_rss),
            "peak_rss_above_start_mb": _megabytes(peak_rss - start_rss),
            "rss_growth_per_run_kb_after_first_sample": round(
                1000 * (last["rss_mb"] - first["rss_mb"]) / max(1, last["runs"] - first["runs"]),
                2,
            ),
        }
        result.targets.append(
            Target(
                f"retained objects, last sample / first (no leak), {first['saver']}",
                result.ratios[f"gc_objects_last_over_first_sample_{key}"],
                LEAK_LIMIT,
                "<=",
            )
        )
    result.extra["peak_rss_of_process_mb"] = _megabytes(_peak_rss_bytes())
    return result
