"""The web leaderboard benchmark runs end to end and prints its figures (quick sizes; speed not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_web.py"


@pytest.mark.slow
def test_quick_web_benchmark_times_the_leaderboard_page_and_the_anchor_on_every_seeded_model() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["benchmark"] == "web_leaderboard"
    assert figures["anchor_rows"] == figures["models"] == 300
    assert 0 < figures["crowdalpha_page_seconds"] <= figures["crowdalpha_page_p95_seconds"]
    assert figures["ratio"] == pytest.approx(
        figures["anchor_seconds"] / figures["crowdalpha_page_seconds"], rel=0.05
    )
    assert figures["goal_met"] == (figures["crowdalpha_page_seconds"] < figures["goal_seconds"])
