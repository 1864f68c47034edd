"""The server-rendered charts: cumulative lines scaled into the plot, histograms proportional to counts."""

from __future__ import annotations

import pytest

from crowdalpha.service.web_overview import cumulative_series
from crowdalpha.web.charts import HEIGHT, MARGIN, WIDTH, cumulative_chart, histogram


def test_a_cumulative_series_is_the_running_sum_in_round_order() -> None:
    series = cumulative_series("mmc", "MMC", [(12, 0.5), (10, -0.25), (11, 0.125)])
    assert [p.round_number for p in series.points] == [10, 11, 12]
    assert [p.cumulative for p in series.points] == [-0.25, -0.125, 0.375]


def test_the_chart_spans_the_plot_with_the_highest_value_on_top_and_zero_in_range() -> None:
    up = cumulative_series("corr", "CORR", [(1, 0.02), (2, 0.03), (3, -0.01)])
    down = cumulative_series("mmc", "MMC", [(1, -0.01), (2, -0.01), (3, -0.01)])
    chart = cumulative_chart([up, down])
    xs = [p.x for line in chart.lines for p in line.points]
    ys = {(line.label, p.round_number): p.y for line in chart.lines for p in line.points}
    assert min(xs) == MARGIN and max(xs) == WIDTH - MARGIN / 2
    assert ys[("CORR", 2)] == MARGIN / 2  # the highest cumulative value (0.05) is at the top
    assert ys[("MMC", 3)] == HEIGHT - MARGIN / 2  # the lowest (-0.03) at the bottom
    assert MARGIN / 2 < chart.zero_y < HEIGHT - MARGIN / 2
    assert (chart.low, chart.high) == pytest.approx((-0.03, 0.05))
    assert chart.lines[0].polyline.count(",") == 3 and not chart.empty


def test_a_chart_without_points_is_empty() -> None:
    assert cumulative_chart([cumulative_series("mmc", "MMC", [])]).empty


def test_histogram_bars_are_proportional_to_their_counts() -> None:
    chart = histogram([0.0, 1.0, 2.0, 3.0], [2, 4, 0])
    heights = [bar.height for bar in chart.bars]
    assert heights[1] == pytest.approx(2 * heights[0]) and heights[2] == 0
    assert [bar.count for bar in chart.bars] == [2, 4, 0] and chart.tallest == 4
    assert [(bar.low, bar.high) for bar in chart.bars] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
