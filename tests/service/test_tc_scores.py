"""TC as a stored score: through the fund's portfolio at a round's last score day (SQLite, PostgreSQL)."""

from __future__ import annotations

import dataclasses
import math
from decimal import ROUND_DOWN, Decimal

import numpy as np
import pandas as pd
import pytest
from fund_oracle import residual_alpha_oracle
from resolution_factories import STAKES, Staked, make_staked, score_everything
from scoring_factories import EXTRA_DAYS, HISTORY_DAYS, Market
from service_factories import TUESDAY_OPEN

from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.market.targets import prepare_target_inputs, residual_returns
from crowdalpha.service import Context, check_ledger
from crowdalpha.service._tournaments import load_tournament
from crowdalpha.service.fund_universe import fund_optimizer, market_universe, universe_at
from crowdalpha.service.resolution import resolve_round
from crowdalpha.service.tc_scores import store_tc_scores_in
from crowdalpha.store import run_transaction, transaction
from crowdalpha.tournament import CLASSIC, latest_round
from crowdalpha.tournament.config import FundRule, PayoutRule, PayoutTerm, ScoreConfig, to_dict
from crowdalpha.tournament.meta_model import cleaned_gaussian_ranks

ROUND = latest_round(CLASSIC, TUESDAY_OPEN).number
FUND = FundRule(risk_aversion=300.0, name_cap=0.1, sector_limit=0.1, factor_limit=0.2)
TC_CLASSIC = dataclasses.replace(
    CLASSIC,
    scores=(*CLASSIC.scores, ScoreConfig("tc", "true_contribution", "target", 20, display_name="TC")),
    payout=PayoutRule(terms=(PayoutTerm("tc", 1.0),), clip=0.05, stake_threshold=Decimal(72000)),
    fund=FUND,
)


def _use_config(ctx: Context, config) -> None:
    run_transaction(
        ctx.engine, lambda uow: uow.tournaments.upsert(8, "classic", to_dict(config), now=ctx.now())
    )


def _store(ctx: Context):
    def work(uow):
        loaded = load_tournament(uow, "classic")
        return store_tc_scores_in(ctx, uow, loaded, uow.rounds.get_by_number(8, ROUND), now=ctx.now())

    return run_transaction(ctx.engine, work)


def _stored(ctx: Context, score: str = "tc") -> dict[str, tuple[float, float | None]]:
    with transaction(ctx.engine) as uow:
        row = uow.rounds.get_by_number(8, ROUND)
        return {s.submission_id: (s.value, s.percentile) for s in uow.scores.list_scores(row.id, score=score)}


@pytest.fixture
def staked(ctx: Context, market: Market) -> Staked:
    """A closed round (three on-time models, one late) of a Classic tournament that scores TC."""
    made = make_staked(ctx, market)
    _use_config(ctx, TC_CLASSIC)
    return made


def _realised_portfolio_return(
    optimizer, signals: np.ndarray, stakes: np.ndarray, returns: np.ndarray
) -> float:
    return float(returns @ optimizer.solve(signals @ stakes / stakes.sum()).weights)


def test_tc_is_stored_on_the_last_score_day_and_matches_finite_differences_of_the_portfolio(
    ctx: Context, market: Market, staked: Staked
) -> None:
    score_everything(ctx, market)
    report = _store(ctx)
    stored = _stored(ctx)
    members = {**{name: entry for name, entry in staked.on_time.items()}, "carol": staked.late}
    assert report.stored == {"tc": len(members)}
    assert set(stored) == {submission_id for submission_id, _, _ in members.values()}
    with transaction(ctx.engine) as uow:
        days = {s.day for s in uow.scores.list_scores(uow.rounds.get_by_number(8, ROUND).id, score="tc")}
    assert days == {20}
    assert stored[staked.late[0]][1] is None  # late: scored, not ranked
    assert all(stored[staked.on_time[name][0]][1] is not None for name in STAKES)

    # an independent recomputation: the universe from the market store as known at the live date,
    # the realised residual return over the 20 days, and central differences of the realised return
    live_date = market.dates[HISTORY_DAYS - 1].date()
    ids = pd.read_parquet(market.private_dir / "v1.0" / "ids.parquet")
    live = ids[ids["data_type"] == "live"].set_index("id")["asset"].sort_index()
    universe = market_universe(ctx, live_date, list(live), rule=FUND)
    full = prepare_target_inputs(market.days(0, HISTORY_DAYS + EXTRA_DAYS))
    same = universe_at(full, live_date, list(live), risk_window=FUND.risk_window)
    np.testing.assert_allclose(same.universe.factor_covariance, universe.universe.factor_covariance)
    np.testing.assert_allclose(same.universe.specific_variance, universe.universe.specific_variance)
    realised = residual_returns(full, [pd.Timestamp(live_date)], 20).iloc[0].reindex(live).to_numpy()
    names = sorted(members, key=lambda name: members[name][0])
    frame = pd.DataFrame({name: members[name][2].reindex(live.index) for name in names})
    ranks = cleaned_gaussian_ranks(frame.to_numpy())
    signals = FUND.alpha_scale * residual_alpha_oracle(ranks, universe.universe)
    stakes = np.array([0.0 if name == "carol" else float(STAKES[name]) for name in names])
    optimizer = fund_optimizer(universe, FUND)
    step = 1e-4 * stakes.sum()
    for column, name in enumerate(names):
        up, down = stakes.copy(), stakes.copy()
        up[column] += step
        down[column] -= step
        if down[column] < 0:  # one-sided at zero stake
            down[column] = stakes[column]
            width = step
        else:
            width = 2 * step
        derivative = (
            _realised_portfolio_return(optimizer, signals, up, np.nan_to_num(realised))
            - _realised_portfolio_return(optimizer, signals, down, np.nan_to_num(realised))
        ) / width
        expected = derivative * stakes.sum()
        assert math.isclose(stored[members[name][0]][0], expected, rel_tol=0.02, abs_tol=1e-7), name

    # the meta model is the stake-weighted mean, so the stake-weighted sum of TC is zero
    values = np.array([stored[members[name][0]][0] for name in names])
    assert abs(values @ stakes) <= 1e-9 * stakes.sum()
    assert np.abs(values).max() > 1e-6


def test_tc_is_stored_once(ctx: Context, market: Market, staked: Staked) -> None:
    score_everything(ctx, market)
    first = _store(ctx)
    before = _stored(ctx)
    again = _store(ctx)
    assert first.stored and not again.stored
    assert _stored(ctx) == before


def test_tc_waits_for_its_score_day(ctx: Context, market: Market, staked: Staked) -> None:
    assert _store(ctx).skipped == {"tc": "score day 20 is not scored yet"}
    assert _stored(ctx) == {}


def test_tc_is_off_by_default(ctx: Context, market: Market) -> None:
    make_staked(ctx, market)
    score_everything(ctx, market)
    assert "fund" not in to_dict(CLASSIC)
    assert _store(ctx).stored == {}
    assert _stored(ctx) == {}


def test_a_payout_config_pays_on_the_stored_tc(ctx: Context, market: Market, staked: Staked) -> None:
    score_everything(ctx, market)
    _store(ctx)
    stored = _stored(ctx)
    resolved = resolve_round(ctx, "classic", ROUND)
    for name in ("alice", "bob"):
        fraction = max(-0.05, min(0.05, stored[staked.on_time[name][0]][0]))
        exact = Decimal(STAKES[name] * NANO_PER_TOKEN) * Decimal(fraction)
        expected = int(exact.to_integral_value(rounding=ROUND_DOWN))
        assert math.isclose(resolved.payouts.get(f"{name}_model", 0), expected, abs_tol=2)
    assert check_ledger(ctx).ok


def test_resolving_the_round_stores_tc_itself_before_paying_on_it(
    ctx: Context, market: Market, staked: Staked
) -> None:
    score_everything(ctx, market)
    assert _stored(ctx) == {}
    resolved = resolve_round(ctx, "classic", ROUND)
    stored = _stored(ctx)
    assert {s for s, _, _ in staked.on_time.values()} <= set(stored)
    for name in ("alice", "bob"):
        fraction = max(-0.05, min(0.05, stored[staked.on_time[name][0]][0]))
        exact = Decimal(STAKES[name] * NANO_PER_TOKEN) * Decimal(fraction)
        assert math.isclose(
            resolved.payouts.get(f"{name}_model", 0),
            int(exact.to_integral_value(rounding=ROUND_DOWN)),
            abs_tol=2,
        )
    assert check_ledger(ctx).ok
