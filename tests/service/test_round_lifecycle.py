"""Rounds: opening publishes the live file and universe; close and status; tick runs each job once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from service_factories import TUESDAY_OPEN, World
from sqlalchemy import Engine

from crowdalpha.service import (
    Context,
    ServiceError,
    close_round,
    list_dataset_files,
    open_dataset_file,
    open_round,
    publish_dataset,
    round_status,
    tick,
)
from crowdalpha.store import JobState, NotFound, transaction
from crowdalpha.tournament import CLASSIC, SettableClock, latest_round

ROUND = latest_round(CLASSIC, TUESDAY_OPEN).number


def test_opening_a_classic_round_publishes_its_live_file_and_universe(
    world: World, live_ids: list[str]
) -> None:
    world.clock.set(TUESDAY_OPEN + timedelta(minutes=30))
    status = open_round(world.ctx, "classic")
    assert (status.number, status.state, status.universe_size) == (ROUND, "open", len(live_ids))
    assert status.live_file == f"v1.0/live_{ROUND}.parquet" and status.dataset_version == "v1.0"
    assert (status.open_time, status.close_staking_time) == (TUESDAY_OPEN, TUESDAY_OPEN + timedelta(hours=1))
    names = [item.name for item in list_dataset_files(world.ctx, "classic")]
    assert f"v1.0/live_{ROUND}.parquet" in names and "v1.0/live.parquet" in names
    live = open_dataset_file(world.ctx, "classic", "v1.0/live.parquet", round_number=ROUND)
    assert live.info.name == f"v1.0/live_{ROUND}.parquet"
    with live.open() as handle:
        assert sorted(pd.read_parquet(handle).index.astype(str)) == live_ids


def test_a_round_needs_a_published_dataset(ctx: Context, engine: Engine) -> None:
    with pytest.raises(ServiceError, match=r"^no_dataset: classic has no dataset version"):
        open_round(ctx, "classic", close_in=timedelta(hours=1))
    with transaction(engine) as uow:
        assert uow.rounds.latest(8) is None


def test_outside_the_window_a_round_opens_only_with_close_in(world: World) -> None:
    world.clock.set(TUESDAY_OPEN + timedelta(hours=3))
    with pytest.raises(ServiceError, match=rf"^outside_round_window: .* round {ROUND + 1} opens at"):
        open_round(world.ctx, "classic")
    status = open_round(world.ctx, "classic", close_in=timedelta(hours=1))
    assert status.number == ROUND and status.open_time == world.clock.now()
    assert status.close_staking_time == world.clock.now() + timedelta(hours=1)
    with pytest.raises(ServiceError, match=rf"^round_already_open: classic round {ROUND} is open"):
        open_round(world.ctx, "classic", close_in=timedelta(hours=1))


def test_closing_a_round_early_ends_its_window_now(world: World) -> None:
    world.clock.set(TUESDAY_OPEN + timedelta(minutes=10))
    open_round(world.ctx, "classic")
    world.clock.advance(timedelta(minutes=5))
    closed = close_round(world.ctx, "classic")
    assert closed.state == "closed" and closed.close_staking_time == world.clock.now()
    assert round_status(world.ctx, "classic").state == "closed"
    with pytest.raises(ServiceError, match=r"^no_open_round: no classic round is open"):
        close_round(world.ctx, "classic")


def test_status_before_any_round_names_the_next_one(world: World) -> None:
    with pytest.raises(NotFound, match=rf"no classic round has opened yet; calendar round {ROUND + 1}"):
        round_status(world.ctx, "classic")


def test_tick_twice_runs_each_job_once(world: World, engine: Engine) -> None:
    world.clock.set(TUESDAY_OPEN + timedelta(minutes=1))
    first = tick(world.ctx)
    assert first.created_rounds == [f"classic/{ROUND}"]
    assert first.ran == [f"classic/{ROUND}/open/2026-01-06"] and not first.failed
    assert round_status(world.ctx, "classic").state == "open"
    second = tick(world.ctx)
    assert (second.created_rounds, second.ran, second.failed) == ([], [], {})
    world.clock.set(TUESDAY_OPEN + timedelta(hours=2))
    assert tick(world.ctx).ran == [f"classic/{ROUND}/close/2026-01-06"]
    assert tick(world.ctx).ran == []
    assert round_status(world.ctx, "classic").state == "closed"
    with transaction(engine) as uow:
        jobs = uow.jobs.list()
    assert [(job.key, job.state) for job in jobs] == [
        (f"classic/{ROUND}/open/2026-01-06", JobState.DONE.value),
        (f"classic/{ROUND}/close/2026-01-06", JobState.DONE.value),
    ]


def test_a_failing_transition_is_recorded_as_a_failed_job(
    ctx: Context, engine: Engine, tmp_path: Path
) -> None:
    version = tmp_path / "v9.0"
    version.mkdir()
    pd.DataFrame({"era": ["0001"], "feature_a": [1]}).to_parquet(version / "live.parquet")
    publish_dataset(ctx, version, "classic")
    assert isinstance(ctx.clock, SettableClock)
    ctx.clock.set(TUESDAY_OPEN + timedelta(minutes=1))
    report = tick(ctx)
    key = f"classic/{ROUND}/open/2026-01-06"
    assert report.created_rounds == [f"classic/{ROUND}"]
    assert report.failed == {
        key: "no_live_ids: the live file has none of the id columns ['id']; got ['era', 'feature_a']"
    }
    assert tick(ctx).ran == []
    with transaction(engine) as uow:
        job = uow.jobs.get_by_key(key)
        assert job is not None and job.state == JobState.FAILED.value
        assert uow.rounds.get_by_number(8, ROUND).state == "upcoming"
