"""Helpers of the benchmark smoke tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def benchmark_figures() -> Callable[..., dict]:
    """Return ``run(script, *args)``: the one JSON line a benchmark script prints, parsed (it must exit 0)."""

    def run(script: str, *args: str, timeout: float = 900) -> dict:
        result = subprocess.run(
            [sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True, timeout=timeout
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 1, result.stdout
        return json.loads(lines[0])

    return run
