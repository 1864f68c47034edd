"""The season benchmark still runs end to end and prints its figures (quick sizes; speed not asserted)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

STAGES = {"preparing markets", "building datasets", "simulating the season", "writing the report"}


@pytest.mark.slow
def test_quick_season_benchmark_runs_every_stage_and_scores_its_rounds(benchmark_figures: Callable) -> None:
    figures = benchmark_figures("bench_season.py", "--quick")
    assert (figures["rounds"], figures["models"], figures["assets"]) == (12, 12, 300)
    assert set(figures["stage_seconds"]) >= STAGES
    assert figures["failed_jobs"] == 0 and figures["ledger_ok"]
    assert sum(figures["rounds_by_state"].values()) == 12 and figures["scores"] > 0
    phases = figures["season_phase_seconds"]
    assert list(phases)[:3] == ["ingest", "stake changes", "open tick"]
    assert phases["uploads"] > 0 and phases["open tick"] > 0  # every day opened a round and uploaded to it
    assert sum(phases.values()) <= figures["stage_seconds"]["simulating the season"] + 1.0
    assert figures["ratio"] == pytest.approx(
        figures["goal_seconds"] / figures["crowdalpha_seconds"], rel=0.01
    )
