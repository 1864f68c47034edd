"""The market store: ingest validated panel rows day by day, refuse overlaps, reveal data up to a date."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crowdalpha.cli import app
from crowdalpha.market.panel import validate_panel
from crowdalpha.service import Context, ServiceError
from crowdalpha.service.market import ingest_market, market_panel, market_through

PanelFactory = Callable[..., pd.DataFrame]


def _days(panel: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    dates = panel["date"].drop_duplicates().iloc[start:stop]
    return panel[panel["date"].isin(dates)].reset_index(drop=True)


def test_ingested_batches_concatenate_into_the_panel_revealed_up_to_a_date(
    ctx: Context, make_market_panel: PanelFactory
) -> None:
    panel = make_market_panel(assets=5, days=12)
    assert market_through(ctx) is None and market_panel(ctx) is None
    first = ingest_market(ctx, _days(panel, 0, 10))
    assert (first.first_date, first.last_date) == (date(2020, 1, 1), date(2020, 1, 14))
    assert (first.rows, first.dates, first.assets, first.covered_dates) == (50, 10, 5, 10)
    second = ingest_market(ctx, _days(panel, 10, 11))
    assert (second.covered_from, second.covered_through, second.covered_dates) == (
        date(2020, 1, 1),
        date(2020, 1, 15),
        11,
    )
    assert market_through(ctx) == date(2020, 1, 15)
    pd.testing.assert_frame_equal(market_panel(ctx), validate_panel(_days(panel, 0, 11)))
    revealed = market_panel(ctx, through=date(2020, 1, 8))
    assert revealed["date"].max() == pd.Timestamp("2020-01-08")
    pd.testing.assert_frame_equal(revealed, validate_panel(_days(panel, 0, 6)))


@pytest.mark.parametrize("start", [9, 10])
def test_an_overlapping_or_repeated_date_is_refused_and_nothing_is_stored(
    ctx: Context, start: int, make_market_panel: PanelFactory
) -> None:
    panel = make_market_panel(assets=5, days=12)
    ingest_market(ctx, _days(panel, 0, 11))
    blobs_before = ctx.blobs.keys("market/")
    with pytest.raises(ServiceError) as refused:
        ingest_market(ctx, _days(panel, start, 12))
    assert refused.value.rule == "market_dates_overlap"
    assert "already holds dates through 2020-01-15" in str(refused.value)
    assert ctx.blobs.keys("market/") == blobs_before
    assert market_through(ctx) == date(2020, 1, 15)


def test_invalid_rows_and_changed_columns_are_refused_naming_the_rule(
    ctx: Context, make_market_panel: PanelFactory
) -> None:
    panel = make_market_panel(assets=5, days=12)
    ingest_market(ctx, _days(panel, 0, 10))
    duplicated = pd.concat([_days(panel, 10, 11), _days(panel, 10, 11).iloc[:1]])
    with pytest.raises(ServiceError, match=r"invalid_market_panel: rule: \(date, asset\) must be unique"):
        ingest_market(ctx, duplicated)
    with pytest.raises(ServiceError, match=r"market_columns_changed: .*missing \['raw_x3'\]"):
        ingest_market(ctx, _days(panel, 10, 11).drop(columns=["raw_x3"]))
    assert market_through(ctx) == date(2020, 1, 14)


def test_market_ingest_command_reports_the_dates_covered(
    tmp_path: Path, make_market_panel: PanelFactory
) -> None:
    runner = CliRunner()
    home = str(tmp_path / "home")
    assert runner.invoke(app, ["init", "--home", home]).exit_code == 0
    panel = make_market_panel(assets=5, days=12)
    _days(panel, 0, 10).to_csv(tmp_path / "first.csv", index=False)
    _days(panel, 10, 12).to_parquet(tmp_path / "next.parquet", index=False)
    result = runner.invoke(app, ["market", "ingest", str(tmp_path / "first.csv"), "--home", home])
    assert result.exit_code == 0, result.output
    assert "market store covers 2020-01-01 … 2020-01-14 (10 dates)" in result.output
    result = runner.invoke(
        app, ["market", "ingest", str(tmp_path / "next.parquet"), "--home", home, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["covered_through"] == "2020-01-16"
    result = runner.invoke(app, ["market", "ingest", str(tmp_path / "next.parquet"), "--home", home])
    assert result.exit_code == 2
    assert "error: market_dates_overlap: the equity market store already holds dates through 2020-01-16" in (
        result.output
    )
    # the crypto market is a store of its own: the same dates ingest there, and only there
    crypto = ["market", "ingest", str(tmp_path / "first.csv"), "--home", home, "--market", "crypto"]
    result = runner.invoke(app, crypto)
    assert result.exit_code == 0, result.output
    assert "the crypto market store covers 2020-01-01 … 2020-01-14 (10 dates)" in result.output
    result = runner.invoke(app, crypto)
    assert result.exit_code == 2
    assert "the crypto market store already holds dates through 2020-01-14" in result.output
    result = runner.invoke(app, [*crypto[:-1], "bonds"])
    assert result.exit_code == 2
    assert "unknown_market: market is one of ['equity', 'crypto']; got 'bonds'" in result.output


def test_a_context_reading_the_store_day_by_day_sees_what_a_fresh_read_sees(
    ctx: Context, make_market_panel: PanelFactory
) -> None:
    """The panel cache reads only the newly ingested batches; the result equals a read from scratch."""
    panel = make_market_panel(assets=5, days=12)
    ingest_market(ctx, _days(panel, 0, 8))
    assert market_panel(ctx) is not None
    for day in range(8, 12):
        ingest_market(ctx, _days(panel, day, day + 1))
        seen = market_panel(ctx)
        earlier = market_panel(ctx, through=date(2020, 1, 3))
        ctx.cache.clear()
        pd.testing.assert_frame_equal(seen, market_panel(ctx))
        pd.testing.assert_frame_equal(seen, validate_panel(_days(panel, 0, day + 1)))
        ctx.cache.clear()
        pd.testing.assert_frame_equal(earlier, market_panel(ctx, through=date(2020, 1, 3)))
        market_panel(ctx)  # warm again: the next day reads one new batch onto this view
    crypto = _days(panel, 0, 3)
    ingest_market(ctx, crypto, market="crypto")
    pd.testing.assert_frame_equal(market_panel(ctx, market="crypto"), validate_panel(crypto))
    assert market_through(ctx, "crypto") == date(2020, 1, 3)
    assert market_through(ctx) == pd.Timestamp(panel["date"].max()).date()
