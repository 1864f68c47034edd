"""Classic FNC, MMC, CWMM, MCWNM and APCWNM stored by the daily scoring equal numerai-tools (≤ 1e-9);
60-day scores go on after resolution."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from numerai_tools.scoring import (
    correlation_contribution,
    feature_neutral_corr,
    pearson_correlation,
    tie_kept_rank__gaussianize__pow_1_5,
)
from resolution_factories import Staked, make_staked
from scoring_factories import HISTORY_DAYS, Market
from service_factories import TUESDAY_OPEN
from sqlalchemy import func, select

from crowdalpha.market.targets import prepare_target_inputs, residual_returns
from crowdalpha.service import Context, balances, ingest_market, score_day, tick
from crowdalpha.service.meta_models import read_meta_model
from crowdalpha.service.resolution import resolve_round
from crowdalpha.store import transaction
from crowdalpha.store.schema import LedgerEntry, SubmissionScore
from crowdalpha.tournament import CLASSIC, latest_round
from crowdalpha.tournament.calendar import score_times

ROUND = latest_round(CLASSIC, TUESDAY_OPEN).number
EXACT = 1e-9


@pytest.fixture
def staked(ctx: Context, market: Market) -> Staked:
    """Return a closed staked round (so it has a stake-weighted meta model) scored on days 1 and 2."""
    staked = make_staked(ctx, market)
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 4))
    report = score_day(ctx, "classic")
    assert [day.day for day in report.scored] == [1, 2]
    return staked


def _stored(ctx: Context, score: str, day: int) -> pd.Series:
    with transaction(ctx.engine) as uow:
        rows = uow.session.scalars(
            select(SubmissionScore).where(SubmissionScore.score == score, SubmissionScore.day == day)
        ).all()
        return pd.Series({row.submission_id: row.value for row in rows}).sort_index()


def _predictions(staked: Staked) -> tuple[pd.DataFrame, list[str]]:
    """Return every scored submission (by submission id) and the on-time ones."""
    columns = {submission: values for submission, _, values in staked.on_time.values()}
    late_id, _, late_values = staked.late
    frame = pd.DataFrame({**columns, late_id: late_values}).sort_index()
    return frame, sorted(columns)


def _target(market: Market, day: int) -> pd.Series:
    inputs = prepare_target_inputs(market.days(0, HISTORY_DAYS + 4))
    by_asset = residual_returns(inputs, [market.dates[HISTORY_DAYS - 1]], day, binned=True).iloc[0]
    ids = pd.read_parquet(market.private_dir / "v1.0" / "ids.parquet")
    live = ids[ids["data_type"] == "live"]
    values = by_asset.reindex(live["asset"]).to_numpy()
    return pd.Series(values, index=live["id"].to_numpy(), name="target").dropna().sort_index()


def _assert_equal(stored: pd.Series, expected: pd.Series) -> None:
    expected = expected.sort_index()
    assert list(stored.index) == list(expected.index)
    assert stored.to_numpy() == pytest.approx(expected.to_numpy(), abs=EXACT)


def test_fnc_against_the_medium_features_equals_numerai_tools_each_day(
    ctx: Context, staked: Staked, market: Market
) -> None:
    predictions, _ = _predictions(staked)
    medium = json.loads((market.version_dir / "features.json").read_text())["feature_sets"]["medium"]
    features = pd.read_parquet(market.version_dir / "live.parquet")[medium].astype(float).sort_index()
    assert 0 < len(medium) < len(pd.read_parquet(market.version_dir / "live.parquet").columns)
    for day in (1, 2):
        expected = feature_neutral_corr(predictions, features, _target(market, day))
        _assert_equal(_stored(ctx, "fnc", day), expected)
        assert (_stored(ctx, "fnc", day) - _stored(ctx, "corr20v2", day)).abs().max() > 1e-6


def test_mmc_against_the_stake_weighted_meta_model_equals_numerai_tools(
    ctx: Context, staked: Staked, market: Market
) -> None:
    predictions, _ = _predictions(staked)
    with transaction(ctx.engine) as uow:
        meta_model = read_meta_model(ctx, uow, uow.rounds.get_by_number(8, ROUND))
    assert meta_model is not None
    for day in (1, 2):
        expected = correlation_contribution(predictions, meta_model.sort_index(), _target(market, day))
        _assert_equal(_stored(ctx, "mmc", day), expected)


def test_crowd_scores_are_stored_once_and_equal_numerai_tools_pearson(ctx: Context, staked: Staked) -> None:
    predictions, on_time = _predictions(staked)
    transformed = tie_kept_rank__gaussianize__pow_1_5(predictions)
    with transaction(ctx.engine) as uow:
        meta_model = read_meta_model(ctx, uow, uow.rounds.get_by_number(8, ROUND))
    assert meta_model is not None
    cwmm = transformed.apply(lambda column: pearson_correlation(meta_model.sort_index(), column))
    _assert_equal(_stored(ctx, "cwmm", 1), cwmm)
    pairs = {
        model: [
            pearson_correlation(transformed[other], transformed[model]) for other in on_time if other != model
        ]
        for model in predictions.columns
    }
    _assert_equal(_stored(ctx, "mcwnm", 1), pd.Series({model: max(v) for model, v in pairs.items()}))
    _assert_equal(_stored(ctx, "apcwnm", 1), pd.Series({model: np.mean(v) for model, v in pairs.items()}))
    for score in ("cwmm", "mcwnm", "apcwnm"):
        assert _stored(ctx, score, 2).empty  # constant over the round: stored on day 1 only


def _ledger_entries(ctx: Context) -> int:
    with transaction(ctx.engine) as uow:
        return int(uow.session.scalar(select(func.count()).select_from(LedgerEntry)))


def test_sixty_day_scores_go_on_after_the_round_resolves_without_reopening_payouts(
    ctx: Context, market: Market
) -> None:
    make_staked(ctx, market)
    horizon = CLASSIC.horizon
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + horizon + CLASSIC.lag_days))
    assert [day.day for day in score_day(ctx, "classic").scored] == list(range(1, horizon + 1))
    resolved = resolve_round(ctx, "classic", ROUND)
    entries, stakes = _ledger_entries(ctx), balances(ctx)

    ingest_market(ctx, market.days(HISTORY_DAYS + horizon + 2, HISTORY_DAYS + horizon + 5))
    later = score_day(ctx, "classic")
    assert [(day.day, day.scores) for day in later.scored] == [
        (day, ("corr60",)) for day in range(horizon + 1, horizon + 4)
    ]
    assert len(_stored(ctx, "corr60", horizon + 3)) == 4  # three on-time submissions and the late one
    assert _stored(ctx, "corr20v2", horizon + 1).empty

    with transaction(ctx.engine) as uow:
        row = uow.rounds.get_by_number(8, ROUND)
        assert row.state == "resolved"
        open_date = row.open_time.date()
    assert resolve_round(ctx, "classic", ROUND).already
    assert resolve_round(ctx, "classic", ROUND).payouts == resolved.payouts
    assert _ledger_entries(ctx) == entries and balances(ctx) == stakes

    next_day = horizon + 4  # the scheduler runs the resolved round's next score day as a job
    ingest_market(ctx, market.days(HISTORY_DAYS + horizon + 5, HISTORY_DAYS + horizon + 6))
    due = score_times(CLASSIC, open_date)[next_day - 1]
    ctx.clock.set(due + timedelta(minutes=1))  # type: ignore[attr-defined]
    report = tick(ctx)
    assert f"classic/{ROUND}/score/{due.date().isoformat()}" in report.ran, report
    assert not report.failed
    assert len(_stored(ctx, "corr60", next_day)) == 4
    assert _ledger_entries(ctx) == entries
