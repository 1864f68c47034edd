"""The scoring benchmark still runs and agrees with numerai-tools (quick sizes; speed is not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_scoring.py"


def test_quick_scoring_benchmark_prints_one_json_line_with_tiny_difference():
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["max_abs_difference"] <= 1e-9
    assert figures["crowdalpha_seconds"] > 0 and figures["numerai_tools_seconds"] > 0
    ratio = figures["numerai_tools_seconds"] / figures["crowdalpha_seconds"]
    assert figures["ratio"] == pytest.approx(ratio, rel=0.02)
