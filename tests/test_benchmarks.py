"""The benchmarks still run: ``python -m benchmarks --quick`` writes every section.

Benchmarks are not timed tests: nothing here asserts a time or a target, only that each
section ran and reported its ratios as numbers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SECTIONS = (
    "hop_overhead",
    "fan_out",
    "long_thread_anchor",
    "long_threads",
    "turn_profile",
    "tokens_forwarded",
    "memory_peak",
    "throughput",
)
QUICK_RUN_TIMEOUT_S = 300


def leaves(value: Any) -> Iterator[Any]:
    """Every non-dict value in a nested dict."""
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    else:
        yield value


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The JSON of one quick run (the run is shared by the tests of this module)."""
    output = tmp_path_factory.mktemp("benchmarks") / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=QUICK_RUN_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return results


def test_a_quick_run_reports_every_section(quick_results: dict[str, Any]) -> None:
    assert quick_results["mode"] == "quick"
    assert set(quick_results["sections"]) == set(SECTIONS)
    for name, section in quick_results["sections"].items():
        assert "error" not in section, f"{name}: {section.get('error')}"
        assert section["rows"], name


def test_every_section_reports_its_ratios_as_numbers(quick_results: dict[str, Any]) -> None:
    for name, section in quick_results["sections"].items():
        ratios = list(leaves(section["ratios"]))
        assert ratios, name
        for value in ratios:
            if value is None:  # a column that could not be measured says why in a note
                assert section["notes"], name
                continue
            assert isinstance(value, int | float) and math.isfinite(value), (name, value)


def test_the_results_record_the_machine_and_package_versions(
    quick_results: dict[str, Any],
) -> None:
    machine = quick_results["machine"]
    assert machine["python"] and machine["platform"] and machine["cpu_count"]
    assert {"langgraph", "langchain-core", "deepagents"} <= set(machine["versions"])
