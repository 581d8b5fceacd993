"""``python -m benchmarks``: run every benchmark, print the tables, write the JSON.

Each section runs in a process of its own (forked where the platform allows), so that
the memory one measures only itself and a failure in one section does not stop the rest.
Nothing leaves the machine: every section runs in-process or on 127.0.0.1, and any other
connection is refused.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from benchmarks import (
    fan_out,
    hop_overhead,
    long_thread_anchor,
    long_threads,
    memory_peak,
    throughput,
    tokens_forwarded,
    turn_profile,
)
from benchmarks.harness import Mode, SectionResult, loopback_only, machine_info

SECTIONS: dict[str, Callable[[Mode], SectionResult]] = {
    "hop_overhead": hop_overhead.run,
    "fan_out": fan_out.run,
    "long_thread_anchor": long_thread_anchor.run,
    "long_threads": long_threads.run,
    "turn_profile": turn_profile.run,
    "tokens_forwarded": tokens_forwarded.run,
    "memory_peak": memory_peak.run,
    "throughput": throughput.run,
}
"""Every section, in the order it runs and prints."""

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = {"full": HERE / "results.json", "quick": HERE / "results-quick.json"}
TABLE_WIDTH = 220
_NO_TRACING = {"LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false"}


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: prove it runs (<30 s)")
    parser.add_argument("--output", type=Path, help="JSON file (default: benchmarks/results.json)")
    parser.add_argument(
        "--only", help=f"comma-separated sections to run, of: {', '.join(SECTIONS)}"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="run sections in this process (debugging)"
    )
    return parser.parse_args(argv)


def _run_section(name: str, mode: Mode) -> dict[str, Any]:
    """Run one section; its JSON form, with time taken and peak memory, or the error."""
    start = time.perf_counter()
    try:
        with loopback_only():
            result = SECTIONS[name](mode).to_dict()
    except Exception:
        return {"error": traceback.format_exc(), "elapsed_s": round(time.perf_counter() - start, 1)}
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["elapsed_s"] = round(time.perf_counter() - start, 1)
    result["process_peak_rss_mb"] = round(peak_kb / (1e6 if sys.platform == "darwin" else 1e3), 1)
    return result


def _child(name: str, mode: Mode, connection: Any) -> None:
    connection.send(_run_section(name, mode))
    connection.close()


def _run_isolated(name: str, mode: Mode) -> dict[str, Any]:
    """Run one section in a child process."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(name, mode, sender), name=f"bench-{name}")
    process.start()
    sender.close()
    try:
        result: dict[str, Any] = receiver.recv()
    except EOFError:
        result = {"error": f"the section's process ended with code {process.exitcode}"}
    process.join()
    return result


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render(name: str, section: dict[str, Any], console: Console) -> None:
    """Print one section: its table, targets and notes."""
    if "error" in section:
        console.print(f"\n[bold red]{name} failed[/]\n{section['error']}")
        return
    table = Table(title=section["title"], title_justify="left", show_lines=False)
    columns = list(dict.fromkeys(key for row in section["rows"] for key in row))
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in section["rows"]:
        table.add_row(*(Text(_cell(row.get(column))) for column in columns))
    console.print()
    console.print(table)
    for target in section["targets"]:
        verdict = {True: "[green]met[/]", False: "[red]missed[/]", None: "[yellow]n/a[/]"}
        console.print(
            f"  target: {target['name']} = {_cell(target['value'])} "
            f"({target['comparison']} {target['limit']:g}): {verdict[target['met']]}"
        )
    for note in section["notes"]:
        console.print(f"  note: {note}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; 1 if a section failed, else 0 (missed targets are results)."""
    arguments = _arguments(argv)
    mode: Mode = "quick" if arguments.quick else "full"
    names = list(SECTIONS) if not arguments.only else arguments.only.split(",")
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown sections {unknown}; choose from {list(SECTIONS)}")
    os.environ.update(_NO_TRACING)
    console = Console(width=TABLE_WIDTH, highlight=False)
    started, start = datetime.now(UTC), time.perf_counter()
    sections: dict[str, dict[str, Any]] = {}
    for name in names:
        console.print(f"[dim]running {name} ({mode})...[/]")
        sections[name] = (
            _run_section(name, mode) if arguments.in_process else _run_isolated(name, mode)
        )
        render(name, sections[name], console)
    output = arguments.output or DEFAULT_OUTPUT[mode]
    results = {
        "command": "python -m benchmarks" + (" --quick" if arguments.quick else ""),
        "mode": mode,
        "started_at": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - start, 1),
        "machine": machine_info(),
        "sections": sections,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if mode == "quick":
        console.print("\nquick mode: sizes are too small for the targets to mean anything.")
    console.print(f"wrote {output} in {results['elapsed_s']} s")
    return 1 if any("error" in section for section in sections.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
