"""3. Long threads against their anchor: ``create_agent`` doing the same work.

The thread of :mod:`benchmarks.long_threads` (every turn the proxy delegates to the
writer, resuming its sub-conversation, and answers: three model calls) runs beside the
same work done by LangChain's ``create_agent`` (:mod:`benchmarks.create_agent_thread`),
turn by turn in one process, on each saver: ``SqliteSaver``, ``InMemorySaver``, and
``PostgresSaver`` when ``ASSISTANT_GRAPH_TEST_POSTGRES`` names a server. Both keep their
full checkpoint history. The two take turns (which one goes first alternates), so the
machine's drift hits both alike.

Reported at N = 10, 40, 80 turns: CPU time per turn (``time.process_time``, every
thread of the process), wall time per turn (both medians of the turns N-4..N, then the
median over the thread runs), stored bytes (see :mod:`benchmarks.savers`); the ratios
this library / ``create_agent``; and each one's growth, bytes N=80 / N=40 and time
N=80 / N=10.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from assistant_graph import store_messages_once
from benchmarks.create_agent_thread import CreateAgentThread
from benchmarks.harness import Mode, SectionResult, Target, median, ratio
from benchmarks.long_threads import DRAFT, REPLY, WINDOW, LongThread
from benchmarks.savers import POSTGRES_MISSING, SaverKind, open_store, saver_kinds
from benchmarks.storage_variants import StorageVariant

__all__ = ["GOALS", "run"]

SIZES = {"quick": (2, 3, 4), "full": (10, 40, 80)}
THREAD_RUNS = {"quick": 1, "full": 3}
THIS = "assistant_graph"
PLAIN = "assistant_graph, plain saver"
ANCHOR = "create_agent"
SIDES = (THIS, PLAIN, ANCHOR)
"""The library as open_checkpointer opens stores (each message stored once), the library on
the LangGraph saver as it is, and the anchor (on the LangGraph saver as it is)."""
TARGETED_SAVERS: tuple[SaverKind, ...] = ("sqlite", "postgres")
"""The savers the goals are stated for (memory is reported, not targeted)."""
GOALS = {
    "cpu": 1.1,
    "bytes": 1.2,
    "bytes_growth": 2.2,
    "time_growth": 1.3,
}
"""Issue 14: CPU per turn and bytes at the largest N against create_agent's; the
library's own growth of bytes (N=80 / N=40) and of wall time per turn (N=80 / N=10)."""
LIBRARY = StorageVariant("library", "this library, full history")


def _timed(function: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


class _Side:
    """Per-turn times and bytes at each N of one side of the pair."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.points: dict[int, dict[str, float]] = {}

    def record(self, times: tuple[float, float]) -> None:
        self.wall.append(times[0])
        self.cpu.append(times[1])

    def mark(self, n: int, stored: int) -> None:
        start = max(0, n - WINDOW)
        self.points[n] = {
            "wall_ms": 1000 * median(self.wall[start:n]),
            "cpu_ms": 1000 * median(self.cpu[start:n]),
            "bytes": stored,
        }


def _pair(kind: SaverKind, sizes: tuple[int, ...], folder: Path) -> dict[str, Any]:
    """One run of the three threads to the largest N on savers of ``kind``."""
    sides = {who: _Side() for who in SIDES}
    with ExitStack() as stack:
        stores = {
            THIS: stack.enter_context(open_store(kind, folder, "once", wrap=store_messages_once)),
            PLAIN: stack.enter_context(open_store(kind, folder, "plain")),
            ANCHOR: stack.enter_context(open_store(kind, folder, "anchor")),
        }
        library = stack.enter_context(LongThread(LIBRARY, folder, store=stores[THIS]))
        plain = stack.enter_context(LongThread(LIBRARY, folder, store=stores[PLAIN]))
        anchor = CreateAgentThread(stores[ANCHOR], DRAFT, REPLY)
        threads = {THIS: [library.thread_id], PLAIN: [plain.thread_id]}
        threads[ANCHOR] = anchor.thread_ids()
        gc.collect()
        for turn in range(1, max(sizes) + 1):
            message = f"Turn {turn}: please revise the text once more."
            runs = [
                (THIS, library.turn),
                (PLAIN, plain.turn),
                (ANCHOR, lambda m=message: anchor.turn(m)),
            ]
            for who, run_turn in runs[turn % 3 :] + runs[: turn % 3]:  # each goes first in turn
                sides[who].record(_timed(run_turn))
            if turn in sizes:
                for who, side in sides.items():
                    side.mark(turn, stores[who].stored_bytes(threads[who]))
        whole = {THIS: library.reloads_whole(), PLAIN: plain.reloads_whole()}
        whole[ANCHOR] = anchor.reloads_whole()
    return {**{who: side.points for who, side in sides.items()}, "whole": whole}


def _merged(runs: list[dict[str, Any]], side: str, sizes: tuple[int, ...]) -> dict[int, Any]:
    """Times: median over the thread runs; bytes: the first run's (they do not vary)."""
    return {
        n: {
            "wall_ms": median([run[side][n]["wall_ms"] for run in runs]),
            "cpu_ms": median([run[side][n]["cpu_ms"] for run in runs]),
            "bytes": runs[0][side][n]["bytes"],
        }
        for n in sizes
    }


def _row(kind: str, who: str, points: dict[int, Any], sizes: tuple[int, ...]) -> dict[str, Any]:
    first, half, last = sizes[0], sizes[-2], sizes[-1]
    row: dict[str, Any] = {"saver": kind, "who": who}
    row |= {f"cpu ms N={n}": round(points[n]["cpu_ms"], 2) for n in sizes}
    row |= {f"wall ms N={n}": round(points[n]["wall_ms"], 2) for n in sizes}
    row |= {f"kB N={n}": round(points[n]["bytes"] / 1000, 1) for n in sizes}
    row[f"bytes N{last}/N{half}"] = ratio(points[last]["bytes"], points[half]["bytes"])
    row[f"cpu N{last}/N{first}"] = ratio(points[last]["cpu_ms"], points[first]["cpu_ms"])
    row[f"wall N{last}/N{first}"] = ratio(points[last]["wall_ms"], points[first]["wall_ms"])
    return row


def _ratio_row(kind: str, ours: dict[str, Any], theirs: dict[str, Any], who: str) -> dict[str, Any]:
    row: dict[str, Any] = {"saver": kind, "who": f"{who} / {ANCHOR}"}
    for key, value in ours.items():
        if key not in ("saver", "who") and isinstance(value, int | float):
            row[key] = ratio(value, theirs[key])
    return row


def run(mode: Mode) -> SectionResult:
    """Run both threads on every saver; compare time per turn and stored bytes."""
    sizes = SIZES[mode]
    kinds = saver_kinds()
    result = SectionResult(
        name="long_thread_anchor",
        title="3. Long threads: this library / create_agent doing the same work",
        params={"n": list(sizes), "window_turns": WINDOW, "thread_runs": THREAD_RUNS[mode]},
    )
    with tempfile.TemporaryDirectory(prefix="assistant-graph-anchor-") as folder:
        for kind in kinds:
            runs = [
                _pair(kind, sizes, Path(tempfile.mkdtemp(dir=folder)))
                for _ in range(THREAD_RUNS[mode])
            ]
            rows = {who: _row(kind, who, _merged(runs, who, sizes), sizes) for who in SIDES}
            for who, row in rows.items():
                row["reloads whole"] = all(run["whole"][who] for run in runs)
            ratio_rows = [_ratio_row(kind, rows[who], rows[ANCHOR], who) for who in (THIS, PLAIN)]
            result.rows.extend([*rows.values(), *ratio_rows])
            result.ratios[kind] = _ratios(rows[THIS], ratio_rows[0], sizes)
            result.ratios[f"{kind}, plain saver"] = _ratios(rows[PLAIN], ratio_rows[1], sizes)
    for kind in TARGETED_SAVERS:
        _add_targets(result, kind, sizes)
    result.notes.append(
        f"'{THIS}' opens its saver as open_checkpointer does (store_messages_once: each "
        f"message stored once); '{PLAIN}' runs on the LangGraph saver as it is; the targets "
        "are checked for the first."
    )
    if "postgres" not in kinds:
        result.notes.append(POSTGRES_MISSING)
    result.notes.append(
        "CPU: time.process_time of the whole process per turn (every thread); wall: "
        "perf_counter; both the median of turns N-4..N, then of the thread runs."
    )
    return result


def _ratios(ours: dict[str, Any], mine: dict[str, Any], sizes: tuple[int, ...]) -> dict[str, Any]:
    first, half, last = sizes[0], sizes[-2], sizes[-1]
    ratios: dict[str, Any] = {}
    for n in sizes:
        ratios[f"cpu_N{n}_vs_anchor"] = mine[f"cpu ms N={n}"]
        ratios[f"wall_N{n}_vs_anchor"] = mine[f"wall ms N={n}"]
        ratios[f"bytes_N{n}_vs_anchor"] = mine[f"kB N={n}"]
    ratios[f"bytes_N{last}_vs_N{half}"] = ours[f"bytes N{last}/N{half}"]
    ratios[f"wall_N{last}_vs_N{first}"] = ours[f"wall N{last}/N{first}"]
    ratios[f"cpu_N{last}_vs_N{first}"] = ours[f"cpu N{last}/N{first}"]
    return ratios


def _add_targets(result: SectionResult, kind: SaverKind, sizes: tuple[int, ...]) -> None:
    first, half, last = sizes[0], sizes[-2], sizes[-1]
    ratios = result.ratios.get(kind, {})
    checks = [
        (f"CPU per turn N={last}, {THIS} / {ANCHOR}", f"cpu_N{last}_vs_anchor", "cpu"),
        (f"stored bytes N={last}, {THIS} / {ANCHOR}", f"bytes_N{last}_vs_anchor", "bytes"),
        (f"stored bytes N={last} / N={half}, {THIS}", f"bytes_N{last}_vs_N{half}", "bytes_growth"),
        (f"wall per turn N={last} / N={first}, {THIS}", f"wall_N{last}_vs_N{first}", "time_growth"),
    ]
    for name, key, goal in checks:
        result.targets.append(Target(f"{kind}: {name}", ratios.get(key), GOALS[goal], "<="))
