"""The fund benchmark still runs and its adjoint TC agrees with finite differences (quick sizes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_fund.py"


def test_quick_fund_benchmark_prints_one_json_line_with_agreeing_tc():
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["correlation"] >= 0.99
    assert figures["relative_error"] <= 0.02
    assert figures["first_solve_seconds"] > 0 and figures["resolve_seconds"] > 0
    ratio = figures["tc_finite_difference_seconds"] / figures["tc_adjoint_seconds"]
    assert figures["ratio"] == pytest.approx(ratio, rel=0.05)
