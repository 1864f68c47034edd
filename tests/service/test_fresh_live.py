"""A fresh Classic live file per round: built at open from the market store with fresh ids, then scored."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numerai_tools.scoring import numerai_corr as oracle_corr
from scoring_factories import HISTORY_DAYS, SECRET, Market
from service_factories import TUESDAY_OPEN, predictions_csv

from crowdalpha.market.targets import prepare_target_inputs, residual_returns
from crowdalpha.service import (
    Context,
    ServiceError,
    close_round,
    create_account,
    create_model,
    ingest_market,
    open_dataset_file,
    open_round,
    publish_dataset,
    score_day,
    submit_predictions,
)
from crowdalpha.service.scoring import round_id_assets
from crowdalpha.store import transaction
from crowdalpha.tournament import CLASSIC, latest_round, to_dict
from crowdalpha.tournament.submissions import validate_submission

ROUND = latest_round(CLASSIC, TUESDAY_OPEN).number
EXACT = 1e-9


def _round_live(ctx: Context, number: int) -> pd.DataFrame:
    opened = open_dataset_file(ctx, "classic", "v1.0/live.parquet", round_number=number)
    assert opened.info.filename == f"live_{number}.parquet"
    with opened.open() as handle:
        return pd.read_parquet(handle)


def _open_at(ctx: Context, moment: timedelta) -> None:
    ctx.clock.set(TUESDAY_OPEN + moment)  # type: ignore[attr-defined]
    open_round(ctx, "classic")


def test_each_round_gets_the_live_file_a_build_through_the_last_ingested_date_would_publish(
    ctx: Context, market: Market, tmp_path: Path
) -> None:
    publish_dataset(ctx, market.version_dir, "classic", private_dir=market.private_dir, secret=SECRET)
    ingest_market(ctx, market.days(0, HISTORY_DAYS + 1))
    _open_at(ctx, timedelta(minutes=30))
    first = _round_live(ctx, ROUND)
    version_live = pd.read_parquet(market.version_dir / "live.parquet")
    assert list(first.columns) == list(version_live.columns)
    assert set(first.index).isdisjoint(version_live.index)
    assert first.filter(like="feature_").dtypes.eq(np.int8).all()

    rebuilt = market.build(tmp_path / "oracle", HISTORY_DAYS + 1)
    expected = pd.read_parquet(rebuilt / "live.parquet")
    pd.testing.assert_frame_equal(first.drop(columns="era"), expected.drop(columns="era"))
    ids = pd.read_parquet(tmp_path / "oracle" / "private" / "v1.0" / "ids.parquet")
    live_ids = ids[ids["data_type"] == "live"]
    with transaction(ctx.engine) as uow:
        row = uow.rounds.get_by_number(8, ROUND)
        live = uow.scores.live_data(row.id)
        universe = uow.rounds.get_live_universe(row.id)
        assert live is not None and universe is not None
        assert live.live_date == market.dates[HISTORY_DAYS].date()
        assert universe.member_count == len(first) == live.member_count
    stored_map = pd.read_parquet(ctx.blobs.open(live.blob_key)).set_index("id")["asset"]
    pd.testing.assert_series_equal(
        stored_map.sort_index(), live_ids.set_index("id")["asset"].sort_index(), check_names=False
    )

    create_account(ctx, "alice")
    model = create_model(ctx, "alice", "classic", "alice_model")
    values = list(np.random.default_rng(5).uniform(0.05, 0.95, len(first)).round(6))
    receipt = submit_predictions(
        ctx, "alice", model.id, "p.csv", predictions_csv(sorted(first.index), values)
    )
    ctx.clock.set(TUESDAY_OPEN + timedelta(hours=2))  # type: ignore[attr-defined]
    close_round(ctx, "classic")
    ingest_market(ctx, market.days(HISTORY_DAYS + 1, HISTORY_DAYS + 2))
    _open_at(ctx, timedelta(days=1, minutes=30))
    second = _round_live(ctx, ROUND + 1)
    assert set(second.index).isdisjoint(first.index) and len(second) == len(first)

    ingest_market(ctx, market.days(HISTORY_DAYS + 2, HISTORY_DAYS + 4))
    report = score_day(ctx, "classic")
    assert [(day.round_number, day.day) for day in report.scored] == [(ROUND, 1)]
    inputs = prepare_target_inputs(market.days(0, HISTORY_DAYS + 4))
    by_asset = residual_returns(inputs, [market.dates[HISTORY_DAYS]], 1, binned=True).iloc[0]
    target = pd.Series(
        by_asset.reindex(live_ids["asset"]).to_numpy(), index=live_ids["id"].to_numpy(), name="target"
    ).dropna()
    predictions = pd.DataFrame({receipt.submission_id: pd.Series(values, index=sorted(first.index))})
    expected_corr = oracle_corr(predictions, target).iloc[0]
    with transaction(ctx.engine) as uow:
        (score,) = uow.scores.list_scores(row.id, score="corr20v2")
    assert score.value == pytest.approx(expected_corr, abs=EXACT)


def test_without_newer_market_data_a_round_keeps_the_versions_live_file(ctx: Context, market: Market) -> None:
    publish_dataset(ctx, market.version_dir, "classic", private_dir=market.private_dir, secret=SECRET)
    ingest_market(ctx, market.days(0, HISTORY_DAYS))
    _open_at(ctx, timedelta(minutes=30))
    pd.testing.assert_frame_equal(
        _round_live(ctx, ROUND), pd.read_parquet(market.version_dir / "live.parquet")
    )


def test_a_secret_other_than_the_versions_is_refused(ctx: Context, market: Market) -> None:
    with pytest.raises(ServiceError, match=r"^secret_mismatch: the secret is not the one the version"):
        publish_dataset(ctx, market.version_dir, "classic", private_dir=market.private_dir, secret=b"x" * 32)
    with pytest.raises(ServiceError, match=r"^secret_needs_private_manifest"):
        publish_dataset(ctx, market.version_dir, "classic", secret=SECRET)
    assert ctx.blobs.keys("private/") == [] and ctx.blobs.keys("datasets/") == []


def test_an_upload_queued_for_the_next_round_follows_its_assets_to_the_fresh_ids(
    ctx: Context, market: Market
) -> None:
    with transaction(ctx.engine) as uow:  # the rules are data: a one-hour late window, then queueing
        rules = dataclasses.replace(CLASSIC.submissions, late_window_hours=1)
        uow.tournaments.upsert(
            8, "classic", to_dict(dataclasses.replace(CLASSIC, submissions=rules)), now=ctx.now()
        )
    publish_dataset(ctx, market.version_dir, "classic", private_dir=market.private_dir, secret=SECRET)
    ingest_market(ctx, market.days(0, HISTORY_DAYS + 1))
    _open_at(ctx, timedelta(minutes=30))
    first = sorted(_round_live(ctx, ROUND).index)
    create_account(ctx, "alice")
    model = create_model(ctx, "alice", "classic", "alice_model")
    values = np.random.default_rng(9).uniform(0.05, 0.95, len(first)).round(6)
    ctx.clock.set(TUESDAY_OPEN + timedelta(hours=3))  # type: ignore[attr-defined]
    close_round(ctx, "classic")
    queued = submit_predictions(ctx, "alice", model.id, "p.csv", predictions_csv(first, list(values)))
    assert (queued.status, queued.round_number) == ("queued", ROUND + 1)

    ingest_market(ctx, market.days(HISTORY_DAYS + 1, HISTORY_DAYS + 2))
    _open_at(ctx, timedelta(days=1, minutes=30))
    second = sorted(_round_live(ctx, ROUND + 1).index)
    with transaction(ctx.engine) as uow:
        rounds = [uow.rounds.get_by_number(8, number) for number in (ROUND, ROUND + 1)]
        maps = [round_id_assets(ctx, uow.scores.live_data(r.id)) for r in rounds]  # type: ignore[arg-type]
        (carried,) = uow.submissions.list_selected(rounds[1].id)
    assert carried.status == "on_time"
    content = ctx.blobs.read_bytes(carried.blob_key)
    moved = validate_submission(
        content, {"id": np.array(second, dtype=object)}, CLASSIC.submissions
    ).to_series()
    original = pd.Series(values, index=first)
    by_asset_before = pd.Series(original.to_numpy(), index=maps[0].reindex(original.index).to_numpy())
    by_asset_after = pd.Series(moved.to_numpy(), index=maps[1].reindex(moved.index).to_numpy())
    pd.testing.assert_series_equal(
        by_asset_after.sort_index(), by_asset_before.sort_index(), check_names=False
    )
