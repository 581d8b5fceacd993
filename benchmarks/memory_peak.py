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

from assistant_graph import build_assistant_graph
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

_COPY_CHECKPOINT = """
INSERT INTO checkpoints
SELECT ?, checkpoint_ns, checkpoint_id, NULL, type, checkpoint, metadata FROM checkpoints
WHERE thread_id = ? AND checkpoint_ns = '' AND checkpoint_id = ?"""


def _graph(saver: SqliteSaver) -> Any:
    models = {"proxy": scripted(proxy_policy()), "writer": scripted(writer_policy())}
    return build_assistant_graph(
        "proxy", thread_catalog(), model=lambda schema: models[schema.name], checkpointer=saver
    )


def _store_threads(connection: sqlite3.Connection, count: int) -> list[str]:
    """Run the template thread, then copy its latest checkpoint under ``count`` ids."""
    graph = _graph(SqliteSaver(connection))
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
    return threads


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


def run(mode: Mode) -> SectionResult:
    """Store the threads, continue each once, and sample memory along the way."""
    count, every = THREADS[mode], SAMPLE_EVERY[mode]
    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="assistant-graph-bench-") as folder:
        connection = sqlite3.connect(Path(folder) / "threads.sqlite", check_same_thread=False)
        try:
            threads = _store_threads(connection, count)
            graph = _graph(SqliteSaver(connection))
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
                            "runs": index,
                            "rss_mb": _megabytes(current_rss_bytes()),
                            "gc_objects": len(gc.get_objects()),
                        }
                    )
        finally:
            connection.close()
    first, last = samples[0], samples[-1]
    result = SectionResult(
        name="memory_peak",
        title=f"5. Memory over {count} stored threads, each loaded and continued once",
        params={"threads": count, "template_turns": TEMPLATE_TURNS, "sample_every": every},
        rows=samples,
    )
    result.ratios = {
        "rss_last_over_first_sample": ratio(last["rss_mb"], first["rss_mb"]),
        "gc_objects_last_over_first_sample": ratio(last["gc_objects"], first["gc_objects"]),
    }
    result.extra = {
        "rss_before_runs_mb": _megabytes(start_rss),
        "peak_rss_during_runs_mb": _megabytes(peak_rss),
        "peak_rss_of_process_mb": _megabytes(_peak_rss_bytes()),
        "rss_growth_per_run_kb_after_first_sample": round(
            1000 * (last["rss_mb"] - first["rss_mb"]) / max(1, last["runs"] - first["runs"]), 2
        ),
    }
    result.targets.append(
        Target(
            "retained objects, last sample / first (no leak)",
            result.ratios["gc_objects_last_over_first_sample"],
            LEAK_LIMIT,
            "<=",
        )
    )
    return result
