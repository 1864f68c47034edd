"""The season benchmark still runs end to end and prints its figures (quick sizes; speed not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_season.py"


@pytest.mark.slow
def test_quick_season_benchmark_runs_every_stage_and_scores_its_rounds() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick"], capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert (figures["rounds"], figures["models"], figures["assets"]) == (12, 12, 300)
    stages = figures["stage_seconds"]
    assert {"preparing markets", "building datasets", "simulating the season", "writing the report"} <= set(
        stages
    )
    assert figures["failed_jobs"] == 0 and figures["ledger_ok"]
    assert sum(figures["rounds_by_state"].values()) == 12 and figures["scores"] > 0
    assert figures["ratio"] == pytest.approx(
        figures["goal_seconds"] / figures["crowdalpha_seconds"], rel=0.01
    )
