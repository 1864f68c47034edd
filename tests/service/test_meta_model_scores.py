"""The meta model's daily CORR, stored with each score day, equals numerai-tools' ``numerai_corr`` of the
stored meta model against the day's target (SQLite and PostgreSQL); the home and round pages show its
cumulative score over the resolved rounds."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
import requests
from numerai_tools.scoring import numerai_corr as oracle_corr
from resolution_factories import make_staked
from scoring_factories import HISTORY_DAYS, Market
from service_factories import TUESDAY_OPEN, predictions_csv
from sqlalchemy import select

from crowdalpha.api import create_app
from crowdalpha.market.targets import MAIN_NEUTRALIZATION, prepare_target_inputs, residual_returns
from crowdalpha.service import (
    Context,
    close_round,
    create_account,
    create_model,
    ingest_market,
    open_round,
    publish_dataset,
    score_day,
    submit_predictions,
)
from crowdalpha.service.meta_model_scores import meta_model_score
from crowdalpha.service.meta_models import read_meta_model
from crowdalpha.service.resolution import resolve_round
from crowdalpha.service.web_overview import home_overview, round_overview
from crowdalpha.store import transaction
from crowdalpha.store.schema import MetaModelScore
from crowdalpha.tournament import CLASSIC, latest_round

ROUND = latest_round(CLASSIC, TUESDAY_OPEN).number
EXACT = 1e-9
CORR_SCORES = {item.name: item for item in CLASSIC.scores if item.metric == "numerai_corr"}
NEUTRAL_TO = {"target": MAIN_NEUTRALIZATION, "target_factor_neutral_60": "factor_neutral"}
"""The residual each Classic CORR score's target names (``target`` is the main one)."""


def _stored(ctx: Context) -> dict[tuple[str, int], float]:
    with transaction(ctx.engine) as uow:
        rows = uow.session.scalars(select(MetaModelScore)).all()
        return {(row.score, row.day): row.value for row in rows}


def _meta_model(ctx: Context) -> pd.Series:
    with transaction(ctx.engine) as uow:
        meta_model = read_meta_model(ctx, uow, uow.rounds.get_by_number(8, ROUND))
    assert meta_model is not None
    return meta_model


def _target(market: Market, through: int, day: int, neutral_to: str) -> pd.Series:
    """Return day ``day``'s binned target of the live ids, from the panel and the builder's private ids."""
    inputs = prepare_target_inputs(market.days(0, through))
    live_date = market.dates[HISTORY_DAYS - 1]
    by_asset = residual_returns(inputs, [live_date], day, neutral_to=neutral_to, binned=True).iloc[0]
    ids = pd.read_parquet(market.private_dir / "v1.0" / "ids.parquet")
    live = ids[ids["data_type"] == "live"]
    values = by_asset.reindex(live["asset"]).to_numpy()
    return pd.Series(values, index=live["id"].to_numpy(), name="target").dropna()


def test_the_meta_models_daily_corr_equals_numerai_tools_and_a_rerun_adds_nothing(
    ctx: Context, market: Market
) -> None:
    make_staked(ctx, market)
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 4))
    assert [day.day for day in score_day(ctx, "classic").scored] == [1, 2]
    stored = _stored(ctx)
    assert set(stored) == {(score, day) for score in CORR_SCORES for day in (1, 2)}
    meta_model = _meta_model(ctx).to_frame("meta_model")
    for (score, day), value in stored.items():
        target = _target(market, HISTORY_DAYS + 4, day, NEUTRAL_TO[CORR_SCORES[score].target])
        expected = oracle_corr(meta_model, target)["meta_model"]
        assert value == pytest.approx(expected, abs=EXACT), (score, day)
    assert stored[("corr20v2", 1)] != stored[("corr20v2", 2)]  # a new day, a new target

    assert score_day(ctx, "classic").scored == []
    assert _stored(ctx) == stored


def test_a_round_without_stakes_has_no_meta_model_and_no_meta_model_score(
    ctx: Context, market: Market
) -> None:
    publish_dataset(ctx, market.version_dir, "classic", private_dir=market.private_dir)
    ingest_market(ctx, market.days(0, HISTORY_DAYS))
    ctx.clock.set(TUESDAY_OPEN + timedelta(minutes=30))  # type: ignore[attr-defined]
    open_round(ctx, "classic")
    ids = sorted(pd.read_parquet(market.version_dir / "live.parquet").index.astype(str))
    create_account(ctx, "erin")
    model = create_model(ctx, "erin", "classic", "erin_model")
    submit_predictions(
        ctx,
        "erin",
        model.id,
        "p.csv",
        predictions_csv(ids, [0.1 + 0.8 * i / len(ids) for i in range(len(ids))]),
    )
    ctx.clock.set(TUESDAY_OPEN + timedelta(hours=2))  # type: ignore[attr-defined]
    close_round(ctx, "classic")
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 4))
    assert [day.day for day in score_day(ctx, "classic").scored] == [1, 2]
    assert _stored(ctx) == {}
    overview = round_overview(ctx, "classic", ROUND)
    assert overview.meta_model_scores == () and overview.meta_model_cumulative is None


def test_the_home_and_round_pages_show_the_meta_models_cumulative_score_once_resolved(
    ctx: Context, market: Market, live_server: Callable[[Any], str]
) -> None:
    make_staked(ctx, market)
    horizon = CLASSIC.horizon
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + horizon + CLASSIC.lag_days))
    score_day(ctx, "classic")
    (classic,) = [item for item in home_overview(ctx) if item.name == "classic"]
    assert classic.meta_model_cumulative is None  # scored, not resolved: nothing to sum yet
    resolve_round(ctx, "classic", ROUND)

    stored = _stored(ctx)
    assert {day for score, day in stored if score == "corr20v2"} == set(range(1, horizon + 1))
    assert meta_model_score(CLASSIC) == "corr20v2"  # the payout's CORR term
    final = stored[("corr20v2", horizon)]
    (classic,) = [item for item in home_overview(ctx) if item.name == "classic"]
    assert [(p.round_number, p.value, p.cumulative) for p in classic.meta_model_score.points] == [
        (ROUND, final, final)
    ]
    overview = round_overview(ctx, "classic", ROUND)
    assert overview.meta_model_cumulative == final
    assert [(item.score, item.day, item.value) for item in overview.meta_model_scores] == sorted(
        (score, day, value) for (score, day), value in stored.items()
    )

    app = create_app(ctx.settings, blob_store=ctx.blobs, engine=ctx.engine, clock=ctx.clock)
    base_url = live_server(app)
    home = requests.get(f"{base_url}/", timeout=30).text
    shown = re.search(r'id="meta-model-classic" data-value="([-0-9.]+)"', home)
    assert shown is not None and float(shown.group(1)) == pytest.approx(final, abs=1e-6)
    assert 'data-series="meta model' in home  # the chart's meta-model line has its point
    page = requests.get(f"{base_url}/rounds/classic/{ROUND}", timeout=30).text
    row = re.search(rf'<tr data-score="corr20v2" data-day="{horizon}" data-value="([-0-9.]+)"', page)
    assert row is not None and float(row.group(1)) == pytest.approx(final, abs=1e-6)
    cumulative = re.search(r'id="meta-model-cumulative" data-value="([-0-9.]+)"', page)
    assert cumulative is not None and float(cumulative.group(1)) == pytest.approx(final, abs=1e-6)
