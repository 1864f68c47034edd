"""The resolution benchmark still runs end to end and prints its figures (quick sizes; speed not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_resolve.py"


@pytest.mark.slow
def test_quick_resolution_benchmark_scores_every_day_and_pays_every_staked_model() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["score_days"] >= figures["horizon"] == 20
    assert figures["paid_models"] == figures["submissions"] == 200
    assert figures["ratio"] == pytest.approx(
        figures["numerai_tools_seconds_extrapolated"] / figures["crowdalpha_seconds"], rel=0.05
    )
