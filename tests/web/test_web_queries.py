"""The read-only views behind the web pages (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
from web_helpers import predictions_csv

from crowdalpha.service import (
    Context,
    create_account,
    create_model,
    list_dataset_files,
    open_round,
    publish_dataset,
    submit_predictions,
)
from crowdalpha.service.web_queries import (
    DONE_JOBS_SHOWN,
    account_submissions,
    dataset_catalog,
    job_table,
    list_rounds,
    tournament_summaries,
)
from crowdalpha.store import transaction
from crowdalpha.tournament.clock import SettableClock

LEASE = timedelta(minutes=5)


def test_a_running_job_whose_lease_expired_is_stuck_and_a_live_one_is_not(ctx: Context) -> None:
    now = ctx.now()
    with transaction(ctx.engine) as uow:
        uow.jobs.enqueue("classic/1/open/-", "open", now=now, due_at=now - timedelta(hours=2))
        uow.jobs.enqueue("classic/2/close/-", "close", now=now)
    with transaction(ctx.engine) as uow:
        uow.jobs.claim("dead-worker", now=now - timedelta(hours=1), lease=LEASE, steps=["open"])
        uow.jobs.claim("live-worker", now=now, lease=LEASE, steps=["close"])
    views = {view.key: view for view in job_table(ctx)}
    assert views["classic/1/open/-"].stuck and views["classic/1/open/-"].lease_owner == "dead-worker"
    assert not views["classic/2/close/-"].stuck and views["classic/2/close/-"].state == "running"


def test_a_pending_job_is_stuck_only_once_it_is_overdue(ctx: Context) -> None:
    now = ctx.now()
    with transaction(ctx.engine) as uow:
        uow.jobs.enqueue("classic/1/close/-", "close", now=now, due_at=now - timedelta(minutes=5))
        uow.jobs.enqueue("classic/2/close/-", "close", now=now, due_at=now - timedelta(minutes=20))
        uow.jobs.enqueue("classic/3/close/-", "close", now=now, due_at=now + timedelta(days=1))
    stuck = {view.key: view.stuck for view in job_table(ctx)}
    assert stuck == {"classic/1/close/-": False, "classic/2/close/-": True, "classic/3/close/-": False}
    assert job_table(ctx)[0].key == "classic/3/close/-"  # most recently due first
    assert job_table(ctx, stuck_after=timedelta(minutes=1))[1].stuck


def test_the_job_table_keeps_every_unfinished_job_and_only_the_newest_done_ones(ctx: Context) -> None:
    now = ctx.now()
    total = DONE_JOBS_SHOWN + 5
    with transaction(ctx.engine) as uow:
        for index in range(total):
            uow.jobs.enqueue(
                f"classic/{index}/open/-", "open", now=now, due_at=now - timedelta(minutes=total - index)
            )
        uow.jobs.enqueue("classic/999/close/-", "close", now=now, due_at=now - timedelta(days=30))
    with transaction(ctx.engine) as uow:
        for job in uow.jobs.claim("worker", now=now, lease=LEASE, limit=total, steps=["open"]):
            uow.jobs.complete(job.id, "worker", now=now)
    views = job_table(ctx)
    done = [view for view in views if view.state == "done"]
    assert len(done) == DONE_JOBS_SHOWN
    assert "classic/0/open/-" not in {view.key for view in done}  # the oldest done jobs drop off
    assert any(view.key == "classic/999/close/-" and view.stuck for view in views)


def test_the_catalogue_rounds_and_summaries_come_from_the_store(
    ctx: Context, classic_version_dir: Path
) -> None:
    assert dataset_catalog(ctx) == []
    assert [(s.name, s.latest_round) for s in tournament_summaries(ctx)] == [
        ("classic", None),
        ("signals", None),
        ("crypto", None),
    ]
    publish_dataset(ctx, classic_version_dir, "classic")
    status = open_round(ctx, "classic")
    (version,) = dataset_catalog(ctx)
    expected = [item for item in list_dataset_files(ctx, "classic") if item.round_number is None]
    assert (version.tournament, version.version) == ("classic", "v1.0")
    assert list(version.files) == expected  # the round's live file is listed with the round, not here
    assert version.total_bytes == sum(item.size_bytes for item in expected)
    assert dataset_catalog(ctx, "signals") == []
    (summary,) = [s for s in tournament_summaries(ctx) if s.name == "classic"]
    assert (summary.latest_round, summary.latest_state) == (status.number, "open")
    (listed,) = list_rounds(ctx, "classic")
    assert (listed.number, listed.state, listed.selected_submissions) == (status.number, "open", 0)
    assert listed.close_staking_time == status.close_staking_time


def test_account_submissions_cover_every_model_newest_first(ctx: Context, classic_version_dir: Path) -> None:
    publish_dataset(ctx, classic_version_dir, "classic")
    open_round(ctx, "classic")
    create_account(ctx, "alice")
    create_account(ctx, "bob")
    first = create_model(ctx, "alice", "classic", "first")
    second = create_model(ctx, "alice", "classic", "second")
    bobs = create_model(ctx, "bob", "classic", "bobs")
    ids = sorted(pd.read_parquet(classic_version_dir / "live.parquet").index.astype(str))
    assert isinstance(ctx.clock, SettableClock)
    receipts = []
    for model in (first, second, first, bobs):
        receipts.append(
            submit_predictions(
                ctx, "bob" if model is bobs else "alice", model.id, "p.csv", predictions_csv(ids)
            )
        )
        ctx.clock.advance(timedelta(minutes=1))
    listed = account_submissions(ctx, "alice")
    assert [item.submission.submission_id for item in listed] == [r.submission_id for r in receipts[2::-1]]
    assert [item.model_name for item in listed] == ["first", "second", "first"]
    assert {item.tournament for item in listed} == {"classic"}
    assert [item.submission.selected for item in listed] == [True, True, False]
