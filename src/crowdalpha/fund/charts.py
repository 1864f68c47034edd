"""Writers of the fund backtest's PNG charts (matplotlib, no display) and its HTML report section.

Charts compare the portfolios named in ``labels`` (the meta model, the benchmark meta model, the
best single model): compounded net return, drawdown, daily turnover, and the first portfolio's
beta and factor exposures over time. Days a portfolio did not trade count as flat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from crowdalpha.fund.backtest import PortfolioPath

CHART_SIZE = (8.0, 3.6)
CHART_DPI = 110
PERCENT_COLUMNS = ("total_return", "annual_return", "annual_volatility", "max_drawdown")


def _dates(path: PortfolioPath) -> pd.DatetimeIndex:
    return pd.to_datetime(list(path.labels))


def _wealth(path: PortfolioPath) -> np.ndarray:
    return np.cumprod(1.0 + np.nan_to_num(path.net_returns, nan=0.0))


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=CHART_DPI)
    return path


def write_backtest_charts(
    paths: Mapping[str, PortfolioPath],
    labels: Mapping[str, str],
    factor_names: Sequence[str],
    directory: Path,
) -> list[Path]:
    """Write the four backtest charts as PNG files into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    series = {
        "cumulative net return": lambda path: _wealth(path) - 1.0,
        "drawdown": lambda path: _wealth(path) / np.maximum.accumulate(np.maximum(_wealth(path), 1.0)) - 1.0,
        "turnover (‖Δw‖₁ per day)": lambda path: path.turnover,
    }
    written = []
    for (title, values), file_name in zip(
        series.items(),
        ("fund_backtest_cumulative.png", "fund_backtest_drawdown.png", "fund_backtest_turnover.png"),
        strict=True,
    ):
        figure = Figure(figsize=CHART_SIZE)
        axes = figure.subplots()
        for name, label in labels.items():
            axes.plot(_dates(paths[name]), values(paths[name]), label=label, linewidth=1.2)
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend(loc="best", fontsize=8)
        figure.autofmt_xdate()
        written.append(_save(figure, directory / file_name))
    first = next(iter(labels), None)
    if first is not None:
        path = paths[first]
        figure = Figure(figsize=CHART_SIZE)
        axes = figure.subplots()
        axes.plot(_dates(path), path.beta_exposure, label="market beta (βᵀw)", linewidth=1.5, color="black")
        for index, factor in enumerate(factor_names):
            axes.plot(_dates(path), path.factor_exposures[:, index], label=f"style {factor}", linewidth=1.0)
        axes.set_title(f"exposures of the {labels[first]} portfolio")
        axes.grid(alpha=0.3)
        axes.legend(loc="best", fontsize=8, ncol=3)
        figure.autofmt_xdate()
        written.append(_save(figure, directory / "fund_backtest_exposures.png"))
    return written


def backtest_html(
    table: pd.DataFrame,
    *,
    median_model_sharpe: float,
    cost_bps: float,
    holding_days: int,
) -> str:
    """Return the backtest's HTML section body: its statistics table (the report shows the charts)."""
    shown = table.copy()
    for column in PERCENT_COLUMNS:
        shown[column] = shown[column].map(lambda value: f"{100 * value:+.2f} %")
    for column in ("sharpe", "mean_turnover", "mean_gross_exposure"):
        shown[column] = shown[column].map(lambda value: f"{value:.2f}")
    return (
        f"<p>Each round's portfolio held {holding_days} days in equal tranches, net of {cost_bps:g} bp"
        " per unit of turnover;"
        f" median single-model Sharpe {median_model_sharpe:.2f}.</p>\n"
        f"{shown.to_html(index=False, escape=True, border=0)}\n"
    )
