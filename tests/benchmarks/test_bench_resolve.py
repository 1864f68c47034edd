"""The resolution benchmark still runs end to end and prints its figures (quick sizes; speed not asserted)."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.mark.slow
def test_quick_resolution_benchmark_scores_every_day_and_pays_every_staked_model(
    benchmark_figures: Callable[..., dict],
) -> None:
    figures = benchmark_figures("bench_resolve.py", "--quick", timeout=600)
    assert figures["score_days"] >= figures["horizon"] == 20
    assert figures["paid_models"] == figures["submissions"] == 200
    assert figures["ratio"] == pytest.approx(
        figures["numerai_tools_seconds_extrapolated"] / figures["crowdalpha_seconds"], rel=0.05
    )
