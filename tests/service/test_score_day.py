"""Daily scoring: private live data, each score day once its returns are in, equal to numerai-tools."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from numerai_tools.scoring import correlation_contribution as oracle_contribution
from numerai_tools.scoring import gaussian, stake_weight, tie_kept_rank
from numerai_tools.scoring import numerai_corr as oracle_corr
from scoring_factories import EXTRA_DAYS, HISTORY_DAYS, Market
from service_factories import TUESDAY_OPEN, predictions_csv
from sqlalchemy import select
from typer.testing import CliRunner, Result

from crowdalpha.api import create_app
from crowdalpha.cli import app
from crowdalpha.market.targets import prepare_target_inputs, residual_returns
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
    tick,
)
from crowdalpha.service import scoring as scoring_service
from crowdalpha.settings import DATABASE_URL_ENV, STORAGE_URL_ENV
from crowdalpha.store import transaction
from crowdalpha.store.schema import RoundScoreDay, SubmissionScore
from crowdalpha.tournament import CLASSIC, latest_round

ROUND = latest_round(CLASSIC, TUESDAY_OPEN).number
EXACT = 1e-9


@dataclass(frozen=True)
class Round:
    """A closed round with two on-time submissions and one late one (submission id → predictions)."""

    on_time: dict[str, pd.Series]
    late: dict[str, pd.Series]


def _submit(ctx: Context, name: str, ids: list[str], seed: int) -> tuple[str, pd.Series]:
    create_account(ctx, name)
    model = create_model(ctx, name, "classic", f"{name}_model")
    values = np.random.default_rng(seed).uniform(0.05, 0.95, len(ids)).round(6)
    receipt = submit_predictions(ctx, name, model.id, "p.csv", predictions_csv(ids, list(values)))
    return receipt.submission_id, pd.Series(values, index=pd.Index(ids, name="id"))


def _close_a_round(ctx: Context, market: Market, version_dir: Path) -> Round:
    publish_dataset(ctx, version_dir, "classic", private_dir=market.private_dir)
    ingest_market(ctx, market.days(0, HISTORY_DAYS))
    ctx.clock.set(TUESDAY_OPEN + timedelta(minutes=30))  # type: ignore[attr-defined]
    open_round(ctx, "classic")
    ids = sorted(pd.read_parquet(version_dir / "live.parquet").index.astype(str))
    on_time = dict(_submit(ctx, name, ids, seed) for seed, name in enumerate(["alice", "bob"]))
    ctx.clock.set(TUESDAY_OPEN + timedelta(hours=2))  # type: ignore[attr-defined]
    close_round(ctx, "classic")
    late = dict([_submit(ctx, "carol", ids, 7)])
    return Round(on_time, late)


@pytest.fixture
def closed_round(ctx: Context, market: Market) -> Round:
    """Return a round opened on the version's live data, closed, with two on-time and one late upload."""
    return _close_a_round(ctx, market, market.version_dir)


@pytest.fixture(scope="session")
def benchmarked_version(market: Market, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a copy of the version with a ``live_benchmark_models.parquet`` of two benchmark models."""
    version = tmp_path_factory.mktemp("benchmarked") / market.version_dir.name
    shutil.copytree(market.version_dir, version)
    live = pd.read_parquet(version / "live.parquet")
    rng = np.random.default_rng(11)
    benchmarks = pd.DataFrame(
        {
            "era": live["era"],
            "v10_lgbm_a": rng.uniform(size=len(live)),
            "v10_lgbm_b": rng.uniform(size=len(live)),
        },
        index=live.index,
    )
    benchmarks.to_parquet(version / "live_benchmark_models.parquet")
    return version


def _stored(ctx: Context) -> pd.DataFrame:
    with transaction(ctx.engine) as uow:
        rows = uow.session.scalars(select(SubmissionScore)).all()
        frame = pd.DataFrame(
            [(r.submission_id, r.score, r.day, r.value, r.percentile, r.scored_at) for r in rows],
            columns=["submission", "score", "day", "value", "percentile", "scored_at"],
        )
    return frame.sort_values(["score", "day", "submission"]).reset_index(drop=True)


def _state(ctx: Context) -> str:
    with transaction(ctx.engine) as uow:
        return uow.rounds.get_by_number(8, ROUND).state


def _expected_target(market: Market, through: int, day: int) -> pd.Series:
    """Return day ``day``'s target of the live ids, built from the panel and the builder's private ids."""
    inputs = prepare_target_inputs(market.days(0, through))
    live_date = market.dates[HISTORY_DAYS - 1]
    by_asset = residual_returns(inputs, [live_date], day, binned=True).iloc[0]
    ids = pd.read_parquet(market.private_dir / "v1.0" / "ids.parquet")
    live = ids[ids["data_type"] == "live"]
    values = by_asset.reindex(live["asset"]).to_numpy()
    return pd.Series(values, index=live["id"].to_numpy(), name="target").dropna()


def test_no_score_exists_before_its_day_is_computable(
    ctx: Context, closed_round: Round, market: Market
) -> None:
    report = score_day(ctx, "classic")
    assert report.scored == [] and report.through == market.dates[HISTORY_DAYS - 1].date()
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 2))  # t+1, t+2: the lag, no return yet
    assert score_day(ctx, "classic").scored == []
    assert _stored(ctx).empty and _state(ctx) == "closed"


def test_stored_corr_equals_numerai_tools_and_late_submissions_are_not_ranked(
    ctx: Context, closed_round: Round, market: Market
) -> None:
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 3))
    report = score_day(ctx, "classic")
    assert [(day.round_number, day.day, day.submissions) for day in report.scored] == [(ROUND, 1, 3)]
    assert report.scored[0].market_date == market.dates[HISTORY_DAYS + 2].date()
    assert report.scored[0].scores == ("corr20v2", "corr60", "fnc", "mcwnm", "apcwnm")
    assert set(report.skipped_scores) == {"mmc", "bmc", "cwmm"}  # no stakes: no meta model
    assert _state(ctx) == "scoring"

    predictions = pd.DataFrame({**closed_round.on_time, **closed_round.late})
    expected = oracle_corr(predictions, _expected_target(market, HISTORY_DAYS + 3, 1))
    stored = _stored(ctx)
    for score in ("corr20v2", "corr60"):
        values = stored[stored["score"] == score].set_index("submission")["value"]
        assert values.sort_index().to_numpy() == pytest.approx(expected.sort_index().to_numpy(), abs=EXACT)
    percentiles = stored[stored["score"] == "corr20v2"].set_index("submission")["percentile"]
    (late_id,) = closed_round.late
    assert pd.isna(percentiles[late_id])
    on_time = expected[list(closed_round.on_time)]
    assert percentiles[on_time.idxmax()] == 1.0 and percentiles[on_time.idxmin()] == 0.5


def test_rerunning_a_day_adds_and_replaces_nothing(ctx: Context, closed_round: Round, market: Market) -> None:
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 4))
    assert [day.day for day in score_day(ctx, "classic").scored] == [1, 2]
    before = _stored(ctx)
    ctx.clock.set(TUESDAY_OPEN + timedelta(days=3))  # type: ignore[attr-defined]
    assert score_day(ctx, "classic").scored == []
    pd.testing.assert_frame_equal(_stored(ctx), before)
    # day 1: CORR, CORR60, FNC and the two crowd scores; day 2: the three daily ones; three submissions
    assert len(before) == (5 + 3) * 3


def test_each_score_stops_at_its_horizon_and_day_h_marks_the_round_resolvable(
    ctx: Context, closed_round: Round, market: Market
) -> None:
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + EXTRA_DAYS))
    partial = score_day(ctx, "classic", date=market.dates[HISTORY_DAYS + 5].date())
    assert [day.day for day in partial.scored] == [1, 2, 3, 4]
    full = score_day(ctx, "classic")
    last = EXTRA_DAYS - CLASSIC.lag_days  # t + L + k is the last ingested date
    assert [day.day for day in full.scored] == list(range(5, last + 1))
    stored = _stored(ctx)
    assert stored.groupby("score")["day"].max().to_dict() == {
        "corr20v2": CLASSIC.horizon,
        "corr60": last,
        "fnc": CLASSIC.horizon,
        "mcwnm": 1,
        "apcwnm": 1,
    }
    assert len(stored) == 3 * (CLASSIC.horizon + last + CLASSIC.horizon + 2)
    with transaction(ctx.engine) as uow:
        days = uow.session.scalars(select(RoundScoreDay.day).order_by(RoundScoreDay.day)).all()
        assert days == list(range(1, last + 1)) and CLASSIC.horizon in days
    day_20 = stored[(stored["score"] == "corr20v2") & (stored["day"] == CLASSIC.horizon)]
    expected = oracle_corr(
        pd.DataFrame({**closed_round.on_time, **closed_round.late}),
        _expected_target(market, HISTORY_DAYS + EXTRA_DAYS, CLASSIC.horizon),
    )
    assert day_20.set_index("submission")["value"].sort_index().to_numpy() == pytest.approx(
        expected.sort_index().to_numpy(), abs=EXACT
    )


def test_tick_runs_the_score_job_once_its_market_data_is_in(
    ctx: Context, closed_round: Round, market: Market
) -> None:
    with transaction(ctx.engine) as uow:
        first_score = uow.rounds.get_by_number(8, ROUND).score_time
    ctx.clock.set(first_score)  # type: ignore[attr-defined]
    waiting = tick(ctx)
    key = f"classic/{ROUND}/score/{first_score.date().isoformat()}"
    assert key not in waiting.ran and list(waiting.waiting) == [key] and not waiting.failed
    assert "market_data_pending" in waiting.waiting[key]
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 3))
    assert key not in tick(ctx).ran  # the job waits an hour before it is tried again
    ctx.clock.set(first_score + timedelta(hours=1))  # type: ignore[attr-defined]
    assert key in tick(ctx).ran
    assert key not in tick(ctx).ran
    assert _state(ctx) == "scoring" and set(_stored(ctx)["day"]) == {1}


def test_round_score_command_scores_and_reports(ctx: Context, closed_round: Round, market: Market) -> None:
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 3))
    settings = ctx.settings
    env = {DATABASE_URL_ENV: settings.database_url, STORAGE_URL_ENV: settings.storage_url}
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, ["round", "score", *args, "--home", str(settings.home)], env=env)

    refused = run("--date", "nonsense")
    assert refused.exit_code == 2 and "invalid_date: write a date as YYYY-MM-DD" in refused.output
    first = run("--tournament", "classic", "--json")
    assert first.exit_code == 0, first.output
    assert [(d["round_number"], d["day"]) for d in json.loads(first.output)["scored"]] == [(ROUND, 1)]
    again = run("--tournament", "classic")
    assert again.exit_code == 0 and "no new score day was computable" in again.output
    assert len(_stored(ctx)) == 5 * 3


def test_no_route_serves_the_private_live_data(
    ctx: Context, closed_round: Round, market: Market, live_server: Callable[..., str]
) -> None:
    with transaction(ctx.engine) as uow:
        row = uow.rounds.get_by_number(8, ROUND)
        live = uow.scores.live_data(row.id)
        assert live is not None and live.live_date == market.dates[HISTORY_DAYS - 1].date()
        private_keys = [live.blob_key] + [
            item.blob_key
            for item in uow.datasets.list_files(row.dataset_version_id, public_only=False)
            if not item.is_public
        ]
        assert live.member_count == 40
    private = {ctx.blobs.read_bytes(key) for key in private_keys}
    assert len(private_keys) == 3  # the round's id map, ids.parquet, manifest.json
    server = create_app(
        ctx.settings, blob_store=ctx.blobs, engine=ctx.engine, clock=ctx.clock, signing_key=bytes(32)
    )
    base = live_server(server)

    def query(text: str) -> dict:
        return requests.post(f"{base}/graphql", json={"query": text}, timeout=10).json()

    listed = query(f"{{ listDatasets(tournament: 8, round: {ROUND}) }}")["data"]["listDatasets"]
    assert listed and not any("private" in name or "ids.parquet" in name for name in listed)
    for name in listed:
        answer = query(f'{{ dataset(filename: "{name}", tournament: 8, round: {ROUND}) }}')
        assert answer.get("data"), answer
        url = answer["data"]["dataset"]
        assert requests.get(url, timeout=10).content not in private
    for name in ("v1.0/private/ids.parquet", "private/ids.parquet", "v1.0/ids.parquet", "ids.parquet"):
        answer = query(f'{{ dataset(filename: "{name}", tournament: 8) }}')
        assert answer.get("data") is None and answer["errors"], name


def test_a_round_opened_without_private_data_is_reported_not_scored(ctx: Context, market: Market) -> None:
    publish_dataset(ctx, market.version_dir, "classic")
    ingest_market(ctx, market.days(0, HISTORY_DAYS + 5))
    ctx.clock.set(TUESDAY_OPEN + timedelta(minutes=30))  # type: ignore[attr-defined]
    open_round(ctx, "classic")
    ctx.clock.set(TUESDAY_OPEN + timedelta(hours=2))  # type: ignore[attr-defined]
    close_round(ctx, "classic")
    report = score_day(ctx, "classic")
    assert report.scored == [] and list(report.waiting) == [ROUND]
    assert report.waiting[ROUND].startswith("no_private_live_data: classic round")
    assert "--private PRIVATE_DIR" in report.waiting[ROUND]
    with transaction(ctx.engine) as uow:
        first_score = uow.rounds.get_by_number(8, ROUND).score_time
    ctx.clock.set(first_score)  # type: ignore[attr-defined]
    failed = tick(ctx).failed
    assert [message.split(":")[0] for message in failed.values()] == ["no_private_live_data"]
    assert _stored(ctx).empty and _state(ctx) == "closed"


def test_bmc_against_the_benchmark_meta_model_equals_numerai_tools(
    ctx: Context, market: Market, benchmarked_version: Path
) -> None:
    closed = _close_a_round(ctx, market, benchmarked_version)
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 4))
    report = score_day(ctx, "classic")
    assert [day.scores for day in report.scored] == [
        ("corr20v2", "bmc", "corr60", "fnc", "mcwnm", "apcwnm"),
        ("corr20v2", "bmc", "corr60", "fnc"),
    ]
    assert set(report.skipped_scores) == {"mmc", "cwmm"}
    assert "no meta_model" in report.skipped_scores["mmc"]
    benchmarks = pd.read_parquet(benchmarked_version / "live_benchmark_models.parquet")[
        ["v10_lgbm_a", "v10_lgbm_b"]
    ]
    benchmarks = benchmarks.sort_index()
    oracle_bmm = stake_weight(gaussian(tie_kept_rank(benchmarks)), pd.Series(1.0, index=benchmarks.columns))
    predictions = pd.DataFrame({**closed.on_time, **closed.late})
    stored = _stored(ctx)
    for day in (1, 2):
        target = _expected_target(market, HISTORY_DAYS + 4, day)
        expected = oracle_contribution(predictions, oracle_bmm, target).sort_index()
        values = stored[(stored["score"] == "bmc") & (stored["day"] == day)].set_index("submission")["value"]
        assert values.sort_index().to_numpy() == pytest.approx(expected.to_numpy(), abs=EXACT)
        assert (values.abs() > 1e-6).all()  # a real contribution, not a zero placeholder


def test_a_stored_file_that_no_longer_fits_the_round_is_reported_and_the_rest_scored(
    ctx: Context, closed_round: Round, market: Market
) -> None:
    (late_id,) = closed_round.late
    with transaction(ctx.engine) as uow:
        blob_key = uow.submissions.get(late_id).blob_key
    ctx.blobs.put_bytes(blob_key, b"id,prediction\nn000000000000000,0.5\n")
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 3))
    report = score_day(ctx, "classic")
    assert [(day.day, day.submissions) for day in report.scored] == [(1, 2)]
    assert list(report.unscored_submissions) == [late_id]
    assert report.unscored_submissions[late_id].startswith(f"round {ROUND}: ")
    assert set(_stored(ctx)["submission"]) == set(closed_round.on_time)


def test_score_days_read_the_files_once_into_the_rounds_prediction_matrix(
    ctx: Context, closed_round: Round, market: Market
) -> None:
    def blob_key(submission_id: str) -> str:
        with transaction(ctx.engine) as uow:
            return uow.submissions.get(submission_id).blob_key

    # Read and validated at close: a file changed in the store afterwards is not read again.
    for submission_id in closed_round.on_time:
        ctx.blobs.put_bytes(blob_key(submission_id), b"not a predictions file")
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 3))
    report = score_day(ctx, "classic")
    assert [(day.day, day.submissions) for day in report.scored] == [(1, 3)]
    assert report.unscored_submissions == {}
    # The late file, uploaded after the close, was read by the first score day and added.
    (late_id,) = closed_round.late
    ctx.blobs.put_bytes(blob_key(late_id), b"not a predictions file")
    ingest_market(ctx, market.days(HISTORY_DAYS + 3, HISTORY_DAYS + 4))
    assert [(day.day, day.submissions) for day in score_day(ctx, "classic").scored] == [(2, 3)]

    predictions = pd.DataFrame({**closed_round.on_time, **closed_round.late})
    stored = _stored(ctx)
    for day in (1, 2):
        expected = oracle_corr(predictions, _expected_target(market, HISTORY_DAYS + 4, day)).sort_index()
        values = stored[(stored["score"] == "corr20v2") & (stored["day"] == day)].set_index("submission")
        assert values["value"].sort_index().to_numpy() == pytest.approx(expected.to_numpy(), abs=EXACT)


def test_a_score_job_failing_after_writing_rolls_back_alone_beside_the_ticks_other_score_jobs(
    ctx: Context, closed_round: Round, market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.clock.set(TUESDAY_OPEN + timedelta(days=1, minutes=30))  # type: ignore[attr-defined]
    second = open_round(ctx, "classic").number
    ids = sorted(pd.read_parquet(market.version_dir / "live.parquet").index.astype(str))
    _submit(ctx, "dave", ids, 3)
    ctx.clock.set(TUESDAY_OPEN + timedelta(days=1, hours=2))  # type: ignore[attr-defined]
    close_round(ctx, "classic")
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + 6))
    real = scoring_service.upsert_meta_model_scores

    def failing_after_the_days_are_written(uow, round_id, *args, **kwargs):  # type: ignore[no-untyped-def]
        assert uow.scores.scored_days(round_id)  # this job's days are written (not committed) by now
        if uow.rounds.get(round_id).number == second:
            raise RuntimeError("injected fault after the score days were written")
        return real(uow, round_id, *args, **kwargs)

    monkeypatch.setattr(scoring_service, "upsert_meta_model_scores", failing_after_the_days_are_written)
    with transaction(ctx.engine) as uow:
        second_score = uow.rounds.get_by_number(8, second).score_time
    ctx.clock.set(second_score)  # type: ignore[attr-defined]
    report = tick(ctx)
    failed_key = f"classic/{second}/score/{second_score.date().isoformat()}"
    assert list(report.failed) == [failed_key]
    assert "injected fault after the score days were written" in report.failed[failed_key]
    first_keys = [key for key in report.ran if key.startswith(f"classic/{ROUND}/score/")]
    assert len(first_keys) == 2 and not report.waiting  # the first round's days 1 and 2
    with transaction(ctx.engine) as uow:
        rows = {number: uow.rounds.get_by_number(8, number) for number in (ROUND, second)}
        assert {1, 2} <= set(uow.scores.scored_days(rows[ROUND].id))  # all its days computable so far
        assert uow.scores.scored_days(rows[second].id) == {}  # its savepoint rolled back alone
        assert (rows[ROUND].state, rows[second].state) == ("scoring", "closed")
        job = uow.jobs.get_by_key(failed_key)
        assert job is not None and job.state == "failed"
