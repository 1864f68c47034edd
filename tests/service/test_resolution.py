"""Round close and resolution: at-risk stakes and SWMM at close, payouts through the ledger exactly once."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

import numpy as np
import pandas as pd
import pytest
from numerai_tools.scoring import correlation_contribution as oracle_contribution
from numerai_tools.scoring import gaussian, stake_weight, tie_kept_rank
from numerai_tools.scoring import numerai_corr as oracle_corr
from resolution_factories import STAKES, Staked, make_staked, score_everything
from scoring_factories import EXTRA_DAYS, HISTORY_DAYS, Market
from service_factories import TUESDAY_OPEN
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from crowdalpha.cli import app
from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.market.targets import prepare_target_inputs, residual_returns
from crowdalpha.service import (
    Context,
    ServiceError,
    check_ledger,
    ingest_market,
    model_stake,
    open_round,
    publish_dataset,
    request_release,
    score_day,
    tick,
)
from crowdalpha.service.meta_models import read_meta_model
from crowdalpha.service.resolution import resolve_round
from crowdalpha.service.scoring import ScoresPending
from crowdalpha.settings import DATABASE_URL_ENV, STORAGE_URL_ENV
from crowdalpha.store import transaction
from crowdalpha.store.schema import LedgerEntry, RoundResolution
from crowdalpha.tournament import CLASSIC, latest_round

ROUND = latest_round(CLASSIC, TUESDAY_OPEN).number
EXACT = 1e-9


@pytest.fixture
def staked(ctx: Context, market: Market) -> Staked:
    """Return a round with three staked-or-not on-time models and a staked late one, closed."""
    return make_staked(ctx, market)


def _final_target(market: Market) -> pd.Series:
    inputs = prepare_target_inputs(market.days(0, HISTORY_DAYS + EXTRA_DAYS))
    by_asset = residual_returns(inputs, [market.dates[HISTORY_DAYS - 1]], CLASSIC.horizon, binned=True).iloc[
        0
    ]
    ids = pd.read_parquet(market.private_dir / "v1.0" / "ids.parquet")
    live = ids[ids["data_type"] == "live"]
    return pd.Series(
        by_asset.reindex(live["asset"]).to_numpy(), index=live["id"].to_numpy(), name="target"
    ).dropna()


def _stake_nano(ctx: Context, model_id: str) -> int:
    return model_stake(ctx, model_id).stake_nano


def test_close_publishes_the_stake_weighted_meta_model_of_staked_on_time_models(
    ctx: Context, staked: Staked
) -> None:
    with transaction(ctx.engine) as uow:
        row = uow.rounds.get_by_number(8, ROUND)
        published = read_meta_model(ctx, uow, row)
    assert published is not None
    frame = pd.DataFrame({name: series for name, (_, _, series) in staked.on_time.items()})
    stakes = pd.Series({name: float(STAKES[name]) for name in frame.columns})
    expected = stake_weight(gaussian(tie_kept_rank(frame)), stakes)
    # published as percentiles: the same order as numerai-tools' stake-weighted Gaussian mean
    np.testing.assert_array_equal(
        published.rank().sort_index().to_numpy(), expected.rank().sort_index().to_numpy()
    )


def test_resolution_pays_the_formula_once_and_the_ledger_balances(
    ctx: Context, market: Market, staked: Staked
) -> None:
    score_everything(ctx, market)
    before = {name: _stake_nano(ctx, model_id) for name, (_, model_id, _) in staked.on_time.items()}
    late_before = _stake_nano(ctx, staked.late[1])
    resolved = resolve_round(ctx, "classic", ROUND)

    target = _final_target(market)
    frame = pd.DataFrame({name: series for name, (_, _, series) in staked.on_time.items()})
    weights = pd.Series({name: float(STAKES[name]) for name in ("alice", "bob")})
    meta = stake_weight(gaussian(tie_kept_rank(frame[["alice", "bob"]])), weights)
    total_at_risk = sum(STAKES.values())
    factor = min(1.0, 72000 / total_at_risk)
    for name in ("alice", "bob"):
        corr = float(oracle_corr(frame[[name]], target).iloc[0])
        mmc = float(oracle_contribution(frame[[name]], meta, target).iloc[0])
        fraction = max(-0.05, min(0.05, factor * (0.5 * corr + 2 * mmc)))
        exact = Decimal(STAKES[name] * NANO_PER_TOKEN) * Decimal(fraction)
        expected = int(exact.to_integral_value(rounding=ROUND_DOWN))  # toward zero
        assert math.isclose(resolved.payouts.get(f"{name}_model", 0), expected, abs_tol=2)
        assert _stake_nano(ctx, staked.on_time[name][1]) - before[name] == resolved.payouts.get(
            f"{name}_model", 0
        )
    assert "dave_model" not in resolved.payouts  # nothing staked: nothing earned or burned
    assert _stake_nano(ctx, staked.late[1]) == late_before  # late submissions are never staked
    assert resolved.total_at_risk_nano == total_at_risk * NANO_PER_TOKEN
    assert check_ledger(ctx).ok

    with transaction(ctx.engine) as uow:
        entries = uow.session.scalar(select(func.count()).select_from(LedgerEntry))
    again = resolve_round(ctx, "classic", ROUND)
    assert again.already and again.payouts == resolved.payouts
    with transaction(ctx.engine) as uow:
        assert uow.session.scalar(select(func.count()).select_from(LedgerEntry)) == entries
        assert uow.rounds.get_by_number(8, ROUND).state == "resolved"
        assert uow.session.scalar(select(func.count()).select_from(RoundResolution)) == 1


def test_a_round_resolves_only_after_its_last_score_day(ctx: Context, market: Market, staked: Staked) -> None:
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 10))
    score_day(ctx, "classic")
    with pytest.raises(ScoresPending, match=f"resolves after score day {CLASSIC.horizon}"):
        resolve_round(ctx, "classic", ROUND)
    assert check_ledger(ctx).ok


def test_an_open_round_cannot_be_resolved(ctx: Context, market: Market) -> None:
    publish_dataset(ctx, market.version_dir, "classic", private_dir=market.private_dir)
    ctx.clock.set(TUESDAY_OPEN + timedelta(minutes=30))  # type: ignore[attr-defined]
    open_round(ctx, "classic")
    with pytest.raises(ServiceError, match="is open; a round resolves after it closes and is scored"):
        resolve_round(ctx, "classic", ROUND)


def test_a_release_asked_during_the_round_completes_when_it_resolves(
    ctx: Context, market: Market, staked: Staked
) -> None:
    _, model_id, _ = staked.on_time["bob"]
    receipt = request_release(ctx, "bob", model_id, 100 * NANO_PER_TOKEN, idempotency_key="release/bob")
    assert receipt.applied and receipt.result["completed"] is False
    score_everything(ctx, market)
    resolve_round(ctx, "classic", ROUND)
    assert model_stake(ctx, model_id).releasing_nano == 0
    assert check_ledger(ctx).ok


def test_tick_resolves_a_scored_round_on_its_resolve_time(
    ctx: Context, market: Market, staked: Staked
) -> None:
    score_everything(ctx, market)
    with transaction(ctx.engine) as uow:
        resolve_time = uow.rounds.get_by_number(8, ROUND).resolve_time
    ctx.clock.set(resolve_time + timedelta(minutes=1))  # type: ignore[attr-defined]
    report = tick(ctx)
    assert any(key.startswith(f"classic/{ROUND}/resolve/") for key in report.ran), report
    with transaction(ctx.engine) as uow:
        assert uow.rounds.get_by_number(8, ROUND).state == "resolved"
    assert check_ledger(ctx).ok


def test_round_resolve_command_pays_once_and_names_what_blocks_it(
    ctx: Context, market: Market, staked: Staked
) -> None:
    settings = ctx.settings
    env = {DATABASE_URL_ENV: settings.database_url, STORAGE_URL_ENV: settings.storage_url}
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(
            app, ["round", "resolve", "--tournament", "classic", *args, "--home", str(settings.home)], env=env
        )

    early = run("--round", str(ROUND))
    assert early.exit_code == 2
    assert f"scores_pending: classic round {ROUND} resolves after score day {CLASSIC.horizon}" in early.output
    score_everything(ctx, market)
    first = run("--round", str(ROUND), "--json")
    assert first.exit_code == 0, first.output
    resolved = json.loads(first.output)
    assert resolved["already"] is False and set(resolved["payouts"]) == {"alice_model", "bob_model"}
    again = run("--round", str(ROUND))
    assert again.exit_code == 0 and "was resolved already" in again.output
    missing = run("--round", "1")
    assert missing.exit_code == 2 and "no round 1" in missing.output
