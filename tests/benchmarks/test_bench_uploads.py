"""The upload benchmark still runs end to end (quick, SQLite only): every acknowledged upload is stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_uploads.py"


def test_quick_upload_benchmark_prints_one_json_line_without_errors_or_losses():
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--sqlite-only"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    figures = json.loads(lines[0])
    sqlite = figures["databases"]["sqlite"]
    assert sqlite["errors"] == 0, sqlite["error_samples"]
    assert sqlite["lost"] == 0
    assert sqlite["uploads"] > 0 and sqlite["stored_rows"] == sqlite["uploads"]
    assert figures["validation"]["crowdalpha_ms"] > 0 and figures["validation"]["numerai_tools_ms"] > 0
