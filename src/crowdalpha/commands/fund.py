"""``crowdalpha fund …``: the fund over the meta model — ``fund backtest`` of a home's season."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from crowdalpha.commands._operator import HOME_OPTION, JSON_OPTION, emit, home_context, operator_errors
from crowdalpha.commands._progress import stage_bars

if TYPE_CHECKING:
    from crowdalpha.service.fund_backtest import BacktestFiles, SeasonBacktest

# the fund pulls in cvxpy: imported when the command runs, so other commands start no slower

fund_app = typer.Typer(
    help="The fund over the meta model: backtest the portfolio a season's rounds would have traded.",
    no_args_is_help=True,
)

OUT_OPTION: Any = typer.Option(
    Path("fund_backtest"), "--out", help="Directory for the tables (Parquet, CSV) and PNG charts."
)


def _text(result: SeasonBacktest, files: BacktestFiles, console: Console) -> None:
    from crowdalpha.service.fund_backtest import statistics_table

    table = Table(
        title=f"fund backtest — {result.tournament}, {len(result.rounds)} rounds held"
        f" {result.holding_days} days, {result.cost_bps:g} bp per unit of turnover"
    )
    for column in (
        "portfolio",
        "role",
        "days",
        "return/yr",
        "vol/yr",
        "Sharpe",
        "max DD",
        "turnover",
        "gross",
    ):
        table.add_column(column, justify="left" if column in ("portfolio", "role") else "right")
    for row in statistics_table(result).itertuples(index=False):
        table.add_row(
            row.portfolio,
            row.role,
            str(row.days),
            f"{100 * row.annual_return:+.2f} %",
            f"{100 * row.annual_volatility:.2f} %",
            f"{row.sharpe:+.2f}",
            f"{100 * row.max_drawdown:.2f} %",
            f"{row.mean_turnover:.3f}",
            f"{row.mean_gross_exposure:.3f}",
        )
    console.print(table)
    console.print(f"median single-model Sharpe {result.median_model_sharpe:+.2f}")
    for number, reason in sorted(result.skipped_rounds.items())[:5]:
        console.print(f"round {number} left out: {reason}")
    console.print(f"wrote {files.statistics_parquet}, {files.statistics_csv}, {files.daily_parquet}")
    console.print("charts: " + ", ".join(str(path) for path in files.charts))


@fund_app.command("backtest")
def fund_backtest(
    tournament: str = typer.Option("classic", "--tournament", help="Tournament name or numerapi id."),
    out: Path = OUT_OPTION,
    cost_bps: float = typer.Option(
        10.0, "--cost-bps", min=0.0, help="Trading cost per unit of turnover, in basis points."
    ),
    holding_days: int | None = typer.Option(
        None, "--holding-days", min=1, help="Days each round's portfolio is held (default: the horizon)."
    ),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Backtest the fund over a home's season: the SWMM portfolio vs the best model's and the BMM's."""
    from crowdalpha.service.fund_backtest import backtest_season, statistics_table, write_backtest

    with operator_errors(), home_context(home) as ctx:
        with stage_bars(Console(stderr=True)) as bars:
            result = backtest_season(
                ctx, tournament, cost_bps=cost_bps, holding_days=holding_days, progress=bars
            )
        files = write_backtest(result, out)
    if as_json:
        data = {
            "tournament": result.tournament,
            "rounds": list(result.rounds),
            "best_model": result.best_model,
            "median_model_sharpe": result.median_model_sharpe,
            "holding_days": result.holding_days,
            "statistics": statistics_table(result).to_dict(orient="records"),
            "files": files,
            "skipped_rounds": result.skipped_rounds,
        }
        emit(data, True, "")
        return
    _text(result, files, Console())
