"""``crowdalpha market …``: import, validate, synthesise and sample market panels; ingest into a home."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape

from crowdalpha.commands._operator import HOME_OPTION, JSON_OPTION, emit, home_context, operator_errors
from crowdalpha.market.loaders import parse_mapping, read_panel, write_panel
from crowdalpha.market.panel import PanelError, raw_feature_columns
from crowdalpha.service.market import EQUITY, MARKETS, ingest_market

market_app = typer.Typer(
    help="Market panels: import and validate your data, or make a synthetic or sample market.",
    no_args_is_help=True,
)

MAP_HELP = (
    "Take a panel column from a differently named file column, as PANEL_COLUMN=FILE_COLUMN "
    "(e.g. --map close=Adj_Close --map asset=permno). Repeat for several columns."
)


def _fail(problem: Exception) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(problem))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _summary(panel: pd.DataFrame) -> str:
    dates = panel["date"]
    raw = raw_feature_columns(panel)
    return (
        f"{len(panel):,} rows, {panel['asset'].nunique():,} assets, {dates.nunique():,} trading dates "
        f"({dates.iloc[0]:%Y-%m-%d} … {dates.iloc[-1]:%Y-%m-%d}), {panel['country'].nunique()} countries, "
        f"{panel['sector'].nunique()} sectors, {len(raw)} raw_* features"
    )


@market_app.command("import")
def import_command(
    file: Path = typer.Argument(
        ..., help="Long-format market panel, CSV or Parquet: one row per date × asset."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Parquet file to write the validated panel to."),
    mapping: list[str] | None = typer.Option(None, "--map", "-m", help=MAP_HELP),
) -> None:
    """Validate a market panel file and write it as the panel Parquet the other commands read."""
    try:
        panel = read_panel(file, parse_mapping(mapping or []))
        write_panel(panel, out, validate=False)
    except PanelError as problem:
        raise _fail(problem) from None
    except OSError as problem:
        raise _fail(f"cannot write {out}: {problem.strerror or problem}") from None
    typer.echo(f"wrote {out}: {_summary(panel)}")


@market_app.command("validate")
def validate_command(
    file: Path = typer.Argument(
        ..., help="Long-format market panel, CSV or Parquet, to check against the contract."
    ),
    mapping: list[str] | None = typer.Option(None, "--map", "-m", help=MAP_HELP),
) -> None:
    """Check a market panel file against the panel contract; exit 2 naming the first broken rule."""
    try:
        panel = read_panel(file, parse_mapping(mapping or []))
    except PanelError as problem:
        raise _fail(problem) from None
    typer.echo(f"valid: {_summary(panel)}")


@market_app.command("ingest")
def ingest_command(
    file: Path = typer.Argument(
        ..., help="Market panel rows for the dates after the store's last one, CSV or Parquet."
    ),
    mapping: list[str] | None = typer.Option(None, "--map", "-m", help=MAP_HELP),
    market: str = typer.Option(
        EQUITY,
        "--market",
        help=f"Market store to append to: {' or '.join(MARKETS)} (the Crypto tournament's).",
    ),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Append a day's (or several days') market data to the home's market store; print the dates covered."""
    try:
        panel = read_panel(file, parse_mapping(mapping or []))
    except PanelError as problem:
        raise _fail(problem) from None
    with operator_errors(), home_context(home) as ctx:
        coverage = ingest_market(ctx, panel, market=market)
    emit(
        coverage,
        as_json,
        f"ingested {coverage.rows:,} rows, {coverage.assets:,} assets, {coverage.dates} dates"
        f" ({coverage.first_date} … {coverage.last_date}); the {market} market store covers"
        f" {coverage.covered_from} … {coverage.covered_through} ({coverage.covered_dates} dates)",
    )
