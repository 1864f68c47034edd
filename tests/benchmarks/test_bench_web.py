"""The web leaderboard benchmark runs end to end and prints its figures (quick sizes; speed not asserted)."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.mark.slow
def test_quick_web_benchmark_times_the_leaderboard_page_and_the_anchor_on_every_seeded_model(
    benchmark_figures: Callable[..., dict],
) -> None:
    figures = benchmark_figures("bench_web.py", "--quick", timeout=600)
    assert figures["benchmark"] == "web_leaderboard"
    assert figures["anchor_rows"] == figures["models"] == 300
    assert 0 < figures["crowdalpha_page_seconds"] <= figures["crowdalpha_page_p95_seconds"]
    assert figures["ratio"] == pytest.approx(
        figures["anchor_seconds"] / figures["crowdalpha_page_seconds"], rel=0.05
    )
    assert 0 < figures["crowdalpha_cold_page_seconds"] <= figures["crowdalpha_cold_page_p95_seconds"]
    assert figures["cold_samples"] == 2 and figures["warm_samples"] == 8
    assert figures["goal_met"] == (
        max(figures["crowdalpha_page_p95_seconds"], figures["crowdalpha_cold_page_p95_seconds"])
        < figures["goal_seconds"]
    )
    assert "classic/model" in figures["refreshed"] and "classic/account" in figures["refreshed"]
    assert figures["graphql_leaderboard_seconds"] > 0
