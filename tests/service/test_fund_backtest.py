"""The fund backtest of a home's rounds (SQLite and PostgreSQL): portfolios, P&L, files, the command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fund_oracle import residual_alpha_oracle
from numerai_tools.scoring import gaussian, stake_weight, tie_kept_rank
from resolution_factories import STAKES, Staked, make_staked, score_everything
from scoring_factories import HISTORY_DAYS, Market
from typer.testing import CliRunner

from crowdalpha.cli import app
from crowdalpha.fund import ConstraintSet
from crowdalpha.fund.optimizer import PortfolioOptimizer
from crowdalpha.scoring.ranking import rank_gaussianize
from crowdalpha.service import Context, ServiceError, round_status
from crowdalpha.service.fund_backtest import (
    DEFAULT_COST_BPS,
    backtest_season,
    season_report_section,
    statistics_table,
)
from crowdalpha.service.fund_universe import DEFAULT_FUND, market_universe
from crowdalpha.settings import DATABASE_URL_ENV, STORAGE_URL_ENV


@pytest.fixture
def staked(ctx: Context, market: Market) -> Staked:
    """A closed round with three on-time models (two staked) and a late one; the market scored."""
    made = make_staked(ctx, market)
    score_everything(ctx, market)
    return made


def _expected_return(ctx: Context, market: Market, signal: pd.Series, cost_bps: float) -> float:
    """Return the holding day's net return of a signal's portfolio, recomputed from the raw panel."""
    live_date = market.dates[HISTORY_DAYS - 1].date()
    ids = pd.read_parquet(market.private_dir / "v1.0" / "ids.parquet")
    live = ids[ids["data_type"] == "live"].set_index("id")["asset"].sort_index()
    universe = market_universe(ctx, live_date, list(live))
    ranks = rank_gaussianize(signal.reindex(live.index).to_numpy())
    alpha = DEFAULT_FUND.alpha_scale * residual_alpha_oracle(ranks, universe.universe)
    limits = ConstraintSet(
        beta_limit=DEFAULT_FUND.beta_limit,
        sector_limit=DEFAULT_FUND.sector_limit,
        country_limit=DEFAULT_FUND.country_limit,
        factor_limit=DEFAULT_FUND.factor_limit,
        name_cap=DEFAULT_FUND.name_cap,
        gross_leverage=DEFAULT_FUND.gross_leverage,
    )
    weights = (
        PortfolioOptimizer(universe.universe, limits, risk_aversion=DEFAULT_FUND.risk_aversion)
        .solve(alpha)
        .weights
    )
    close = market.panel.pivot(index="date", columns="asset", values="close").reindex(columns=live.to_numpy())
    # held from the close of t + 2 to the close of t + 3 (lag 2)
    realised = (close.iloc[HISTORY_DAYS + 2] / close.iloc[HISTORY_DAYS + 1] - 1).to_numpy()
    return float(realised @ weights - cost_bps / 10_000 * np.abs(weights).sum())


def test_the_backtest_trades_the_round_meta_model_and_each_model_on_its_holding_day(
    ctx: Context, market: Market, staked: Staked
) -> None:
    result = backtest_season(ctx, "classic", cost_bps=5.0, holding_days=1)
    tranched = backtest_season(ctx, "classic", cost_bps=5.0)  # held the horizon: 1/20 of it on day one
    frame = pd.DataFrame({name: series for name, (_, _, series) in staked.on_time.items()})
    stakes = pd.Series({name: float(STAKES[name]) for name in frame.columns})
    swmm = stake_weight(gaussian(tie_kept_rank(frame)), stakes)  # numerai-tools' SWMM
    assert result.rounds == (round_status(ctx, "classic").number,)
    expected_names = {"meta_model", *(f"model:{name}_model" for name in ("alice", "bob", "dave", "carol"))}
    assert set(result.paths) == expected_names
    holding = market.dates[HISTORY_DAYS + 2].date().isoformat()
    assert result.paths["meta_model"].labels == (holding,)
    signals = {
        "meta_model": swmm,
        "model:alice_model": staked.on_time["alice"][2],
        "model:carol_model": staked.late[2],
    }
    for name, signal in signals.items():
        expected = _expected_return(ctx, market, signal, 5.0)
        assert math.isclose(result.paths[name].net_returns[0], expected, rel_tol=1e-4, abs_tol=1e-9), name
        assert math.isclose(tranched.paths[name].net_returns[0], expected / 20, rel_tol=1e-4, abs_tol=1e-10)
    assert result.best_model is not None and result.best_model.startswith("model:")
    table = statistics_table(result)
    assert table["portfolio"].iloc[0] == "meta_model" and table["role"].iloc[0] == "meta model"
    assert (table["role"] == "best single model").sum() == 1


def test_a_home_without_a_traded_round_says_what_is_missing(ctx: Context, market: Market) -> None:
    make_staked(ctx, market)  # closed, but the market store stops at its data date
    with pytest.raises(ServiceError, match="no round with a meta model whose holding day is in the market"):
        backtest_season(ctx, "classic")


def test_the_report_section_and_the_command_write_the_charts_and_tables(
    ctx: Context, market: Market, staked: Staked, tmp_path: Path
) -> None:
    title, html, charts = season_report_section(ctx, tmp_path / "report")
    assert title.startswith("Fund backtest (classic, 1 rounds")
    assert len(charts) == 4 and all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in charts)
    # the report shows the section's charts from their paths; the body links none (it cannot know where
    # the report lives relative to them)
    assert "<img" not in html and "<table" in html and "meta_model" in html
    table = pd.read_parquet(tmp_path / "report" / "fund_backtest.parquet")
    assert table["portfolio"].iloc[0] == "meta_model"
    daily = pd.read_parquet(tmp_path / "report" / "fund_backtest_daily.parquet")
    assert {"net_return", "turnover", "beta_exposure", "factor_size"} <= set(daily.columns)

    settings = ctx.settings
    env = {DATABASE_URL_ENV: settings.database_url, STORAGE_URL_ENV: settings.storage_url, "COLUMNS": "200"}
    out = tmp_path / "out"
    base = ["fund", "backtest", "--home", str(settings.home), "--out", str(out)]
    result = CliRunner().invoke(app, base, env=env)
    assert result.exit_code == 0, result.output
    assert "meta_model" in result.output and "best single model" in result.output
    assert f"held 20 days, {DEFAULT_COST_BPS:g} bp per unit of turnover" in result.output  # the defaults
    assert (out / "fund_backtest.csv").exists() and (out / "fund_backtest_cumulative.png").exists()
    as_json = CliRunner().invoke(app, [*base, "--json", "--cost-bps", "0"], env=env)
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output.strip().splitlines()[-1])
    assert data["statistics"][0]["portfolio"] == "meta_model" and data["best_model"].startswith("model:")
    bad = CliRunner().invoke(
        app, ["fund", "backtest", "--tournament", "nope", "--home", str(settings.home)], env=env
    )
    assert bad.exit_code == 2 and "no tournament named 'nope'" in bad.output
    assert "Backtest the fund" in CliRunner().invoke(app, ["fund", "backtest", "--help"]).output
