"""Server-rendered SVG charts: cumulative score lines and histograms (no JavaScript, no chart library).

Each function returns a small description the templates draw (`lines.svg`, `histogram.svg` macros
in ``templates/charts.html``): coordinates already in the SVG's own units, so the template only
writes them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from crowdalpha.service.web_overview import ScoreSeries

WIDTH = 640
HEIGHT = 220
MARGIN = 36
COLOURS = ("#2563eb", "#dc2626", "#059669", "#d97706")


@dataclass(frozen=True)
class ChartPoint:
    """A drawn point: its SVG position and what it stands for (round, cumulative value)."""

    x: float
    y: float
    round_number: int
    value: float


@dataclass(frozen=True)
class ChartLine:
    """A drawn series: its label, colour, SVG polyline points and its points."""

    label: str
    colour: str
    polyline: str
    points: tuple[ChartPoint, ...]


@dataclass(frozen=True)
class LineChart:
    """A line chart of cumulative series: lines, the zero line's y, the value range and round range."""

    width: int
    height: int
    lines: tuple[ChartLine, ...]
    zero_y: float
    low: float
    high: float
    first_round: int | None
    last_round: int | None

    @property
    def empty(self) -> bool:
        """Return True when no series has a point."""
        return not any(line.points for line in self.lines)


@dataclass(frozen=True)
class HistogramBar:
    """A drawn bar: SVG rectangle and the bin it stands for."""

    x: float
    y: float
    width: float
    height: float
    low: float
    high: float
    count: int


@dataclass(frozen=True)
class Histogram:
    """A histogram: bars, the value range and the tallest bin."""

    width: int
    height: int
    bars: tuple[HistogramBar, ...]
    low: float
    high: float
    tallest: int


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    return start if high == low else start + (value - low) / (high - low) * (end - start)


def cumulative_chart(series: Sequence[ScoreSeries], *, width: int = WIDTH, height: int = HEIGHT) -> LineChart:
    """Return a line chart of the series' cumulative values by round (the zero line always in range)."""
    values = [point.cumulative for item in series for point in item.points]
    rounds = [point.round_number for item in series for point in item.points]
    low, high = min([0.0, *values]), max([0.0, *values])
    first, last = (min(rounds), max(rounds)) if rounds else (None, None)
    lines = []
    for index, item in enumerate(series):
        points = tuple(
            ChartPoint(
                round(_scale(point.round_number, first or 0, last or 0, MARGIN, width - MARGIN / 2), 2),
                round(_scale(point.cumulative, low, high, height - MARGIN / 2, MARGIN / 2), 2),
                point.round_number,
                point.cumulative,
            )
            for point in item.points
        )
        polyline = " ".join(f"{p.x},{p.y}" for p in points)
        lines.append(ChartLine(item.display_name, COLOURS[index % len(COLOURS)], polyline, points))
    zero_y = round(_scale(0.0, low, high, height - MARGIN / 2, MARGIN / 2), 2)
    return LineChart(width, height, tuple(lines), zero_y, low, high, first, last)


def histogram(
    edges: Sequence[float], counts: Sequence[int], *, width: int = WIDTH // 2, height: int = HEIGHT // 2
) -> Histogram:
    """Return the bars of a histogram of ``counts`` between consecutive ``edges``."""
    tallest = max(counts, default=0)
    span = (width - 2) / max(len(counts), 1)
    bars = []
    for index, count in enumerate(counts):
        bar_height = 0.0 if tallest == 0 else (height - 4) * count / tallest
        bars.append(
            HistogramBar(
                round(1 + index * span, 2),
                round(height - 2 - bar_height, 2),
                round(max(span - 1, 0.5), 2),
                round(bar_height, 2),
                edges[index],
                edges[index + 1],
                count,
            )
        )
    low = edges[0] if edges else 0.0
    high = edges[-1] if edges else 0.0
    return Histogram(width, height, tuple(bars), low, high, tallest)
