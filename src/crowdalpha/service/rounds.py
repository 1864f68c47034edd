"""Rounds: open (on the calendar or now, off it), close, status, and ``tick`` — the due transitions as jobs.

Opening a round publishes its live data from the tournament's current dataset version: the
version's ``live.parquet`` becomes the round's live file ``<version>/live_<round>.parquet`` (the
same blob; per-round fresh ids arrive with daily market ingestion), and the id columns of the
live file (``live_universe.parquet`` when the version has one, as Crypto's does) become the
round's live universe — the ids every submission is validated against. Queued submissions of
the round become on time. A fresh live file is also predicted by the version's benchmark models,
when it has them, so the round's BMC is scored (:mod:`crowdalpha.service.live_benchmarks`).

``tick`` runs what the calendar says is due, each transition as an idempotent job in the jobs
table keyed ``tournament/round/step/date``: a double trigger or a concurrent tick runs each job
once; a job that fails is recorded as failed with its message (an operator retries it). It
creates the calendar's current round when its window is open and the tournament has a published
dataset version, and runs the ``open``, ``close``, ``score`` and ``resolve`` steps. A score job
whose market data is not ingested yet waits (pending again an hour later). The score jobs due
together are claimed as one batch: planned in one read transaction, then stored in short write
transactions (``SCORE_STORE_CHUNK`` jobs each) with a savepoint per job, so one job failing rolls
back alone and the database's single writer is held only for the inserts. ``tick(steps=…)``
runs some steps only (``crowdalpha tick --steps``), and :func:`run_score_jobs` is a score worker's
loop, beside a tick of the other steps.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crowdalpha.service._tournaments import LoadedTournament, TournamentRef, load_tournament
from crowdalpha.service._universes import extract_universe, store_universe
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError, user_message
from crowdalpha.service.fresh_live import carry_queued_submissions, fresh_live_file
from crowdalpha.service.live_benchmarks import publish_live_benchmarks
from crowdalpha.service.resolution import close_round_in, resolve_round_in
from crowdalpha.service.scoring import (
    RoundScorePlan,
    ScoreBatch,
    ScoresPending,
    plan_score_job,
    record_round_live_data,
    rounds_scored_after_resolution,
    store_round_live_data,
    store_round_scores,
)
from crowdalpha.service.web_leaderboard import refresh_leaderboards
from crowdalpha.service.webhooks import notify_round_opened
from crowdalpha.store import Job, NotFound, RoundState, UnitOfWork, is_retryable, run_transaction
from crowdalpha.store import Round as RoundRow
from crowdalpha.store.repositories.datasets import DatasetFileSpec
from crowdalpha.tournament.calendar import (
    RoundSchedule,
    latest_round,
    next_round,
    round_schedule,
    schedule_round,
    score_times,
)
from crowdalpha.tournament.rounds import JobStep, due_transitions
from crowdalpha.tournament.rounds import Round as RoundRule

TICK_STEPS = (JobStep.OPEN, JobStep.CLOSE, JobStep.SCORE, JobStep.RESOLVE)
JOB_LEASE = timedelta(minutes=5)
SCORE_BATCH = 128
"""Most score jobs claimed and planned together: a daily round is scored for up to 60 days, so a day's
score jobs (one per round in flight) fit one batch."""
SCORE_STORE_CHUNK = 16
"""Most planned score jobs stored per write transaction: other writers (uploads) wait at most one."""
SCORE_RETRY = timedelta(hours=1)
"""How long a score job whose market data is not ingested yet waits before it is tried again."""
UNIVERSE_FILE = "live_universe.parquet"
LIVE_FILE = "live.parquet"


@dataclass(frozen=True)
class RoundStatus:
    """A round as the operator sees it: state, times (UTC), live data, submissions, and the clock's now."""

    tournament: str
    number: int
    state: str
    open_time: datetime
    close_staking_time: datetime
    close_time: datetime
    score_time: datetime | None
    resolve_time: datetime | None
    data_datestamp: int | None
    dataset_version: str | None
    live_file: str | None
    universe_size: int | None
    selected_submissions: int
    now: datetime


@dataclass
class TickReport:
    """What one tick did: rounds it created, job keys it ran, job keys that failed (with the error).

    ``leaderboards``: the ``tournament/entity`` leaderboard snapshots it stored after its jobs.
    """

    now: datetime
    created_rounds: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    leaderboards: list[str] = field(default_factory=list)


# -- schedules of stored rounds ----------------------------------------------------------------------


def stored_schedule(loaded: LoadedTournament, row: RoundRow) -> RoundSchedule:
    """Return the schedule of a stored round (its own window, which may be off the calendar)."""
    config = loaded.config
    return RoundSchedule(
        tournament=loaded.name,
        number=row.number,
        round_date=row.open_time.date(),
        open_time=row.open_time,
        close_staking_time=row.close_staking_time,
        close_time=row.close_time,
        score_times=score_times(config, row.open_time.date()),
        horizon=config.horizon,
    )


def create_round_row(
    uow: UnitOfWork, loaded: LoadedTournament, schedule: RoundSchedule, *, now: datetime
) -> RoundRow:
    """Return a new upcoming round stored with the times of ``schedule``."""
    return uow.rounds.create(
        loaded.id,
        schedule.number,
        open_time=schedule.open_time,
        close_time=schedule.close_time,
        close_staking_time=schedule.close_staking_time,
        score_time=schedule.first_score_time,
        resolve_time=schedule.resolve_time,
        data_datestamp=schedule.data_datestamp,
        now=now,
    )


def upcoming_schedule(uow: UnitOfWork, loaded: LoadedTournament, now: datetime) -> RoundSchedule:
    """Return the schedule of the next round to open: a stored upcoming one, else the calendar's next."""
    return schedule_after(loaded, uow.rounds.latest(loaded.id), now)


def schedule_after(loaded: LoadedTournament, latest: RoundRow | None, now: datetime) -> RoundSchedule:
    """Return the schedule of the next round to open, given the tournament's highest-numbered round."""
    if latest is not None and latest.state == RoundState.UPCOMING.value:
        return stored_schedule(loaded, latest)
    schedule = next_round(loaded.config, now)
    if latest is not None and schedule.number <= latest.number:
        schedule = round_schedule(loaded.config, latest.number + 1)
    return schedule


# -- the transitions ----------------------------------------------------------------------------------


def _publish_live(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: RoundRow, now: datetime
) -> None:
    version = uow.datasets.current_version(loaded.id)
    if version is None:
        raise ServiceError(
            "no_dataset",
            f"{loaded.name} has no dataset version to publish live data from;"
            f" run `crowdalpha dataset publish DIR --tournament {loaded.name}` first",
        )
    files = {item.name: item for item in uow.datasets.list_files(version.id, public_only=False)}
    if LIVE_FILE not in files:
        raise ServiceError(
            "no_live_file", f"dataset version {version.name} of {loaded.name} has no {LIVE_FILE}"
        )
    live = files[LIVE_FILE]
    round_file = f"live_{row.number}.parquet"
    existing = {item.name for item in uow.datasets.list_files(version.id, public_only=False, round_id=row.id)}
    fresh = (
        None if round_file in existing else fresh_live_file(ctx, uow, loaded, row, version.id, version.name)
    )
    if round_file not in existing:
        spec = DatasetFileSpec(round_file, live.blob_key, live.size_bytes, live.sha256)
        if fresh is not None:
            spec = DatasetFileSpec(round_file, fresh.blob.key, fresh.blob.size_bytes, fresh.blob.sha256)
        uow.datasets.add_files(version.id, [spec], round_id=row.id)
    source_key = files.get(UNIVERSE_FILE, live).blob_key if fresh is None else fresh.blob.key
    id_column, table = extract_universe(ctx, source_key, loaded.config.submissions.id_columns)
    blob = store_universe(ctx, loaded.name, table)
    uow.rounds.set_live_universe(
        row.id,
        id_column=id_column,
        member_count=table.num_rows,
        blob_key=blob.key,
        size_bytes=blob.size_bytes,
        sha256=blob.sha256,
        now=now,
    )
    row.dataset_version_id = version.id
    if fresh is None:
        record_round_live_data(ctx, uow, row, version.id, now=now, market=loaded.config.market)
    else:
        store_round_live_data(ctx, uow, row, fresh.live_date, fresh.id_map, now=now)
        carry_queued_submissions(ctx, uow, loaded, row, fresh)
        publish_live_benchmarks(ctx, uow, loaded, row, version.id, fresh)


def _open(ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: RoundRow, now: datetime) -> bool:
    """Open an upcoming round: publish its live data, promote its queued submissions; return if it moved."""
    if row.state != RoundState.UPCOMING.value:
        return False
    _publish_live(ctx, uow, loaded, row, now)
    moved = uow.rounds.transition(row.id, [RoundState.UPCOMING], RoundState.OPEN, now=now)
    uow.submissions.promote_queued(row.id)
    uow.session.refresh(row)
    return moved


def _close(ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: RoundRow, now: datetime) -> bool:
    """Close an open round: fix its at-risk stakes and publish its meta model; return if it moved."""
    moved = uow.rounds.transition(row.id, [RoundState.OPEN], RoundState.CLOSED, now=now)
    uow.session.refresh(row)
    if row.state == RoundState.CLOSED.value:
        close_round_in(ctx, uow, loaded, row)
    return moved


def _status(uow: UnitOfWork, loaded: LoadedTournament, row: RoundRow, now: datetime) -> RoundStatus:
    universe = uow.rounds.get_live_universe(row.id)
    version_name = live_file = None
    if row.dataset_version_id is not None:
        version = next(v for v in uow.datasets.list_versions(loaded.id) if v.id == row.dataset_version_id)
        version_name = version.name
        round_files = [
            item.name
            for item in uow.datasets.list_files(version.id, round_id=row.id)
            if item.round_id == row.id
        ]
        live_file = f"{version.name}/{round_files[0]}" if round_files else None
    return RoundStatus(
        tournament=loaded.name,
        number=row.number,
        state=row.state,
        open_time=row.open_time,
        close_staking_time=row.close_staking_time,
        close_time=row.close_time,
        score_time=row.score_time,
        resolve_time=row.resolve_time,
        data_datestamp=row.data_datestamp,
        dataset_version=version_name,
        live_file=live_file,
        universe_size=None if universe is None else universe.member_count,
        selected_submissions=len(uow.submissions.list_selected(row.id)),
        now=now,
    )


def _open_rounds(uow: UnitOfWork, tournament_id: int) -> list[RoundRow]:
    return uow.rounds.list(tournament_id, states=[RoundState.OPEN])


# -- use cases --------------------------------------------------------------------------------------


def open_round(ctx: Context, tournament: TournamentRef, *, close_in: timedelta | None = None) -> RoundStatus:
    """Open the calendar round whose window is open now, or (``close_in``) a round now closing then."""
    now = ctx.now()
    if close_in is not None and close_in <= timedelta(0):
        raise ServiceError("invalid_close_in", f"a round must stay open for a positive time; got {close_in}")

    def work(uow: UnitOfWork) -> RoundStatus:
        loaded = load_tournament(uow, tournament)
        config = loaded.config
        already = _open_rounds(uow, loaded.id)
        if already:
            raise ServiceError(
                "round_already_open",
                f"{loaded.name} round {already[0].number} is open until"
                f" {already[0].close_staking_time.isoformat()}; close it first",
            )
        latest = uow.rounds.latest(loaded.id)
        calendar_round = latest_round(config, now)
        if close_in is None:
            if calendar_round is None or not (
                calendar_round.open_time <= now < calendar_round.close_staking_time
            ):
                following = next_round(config, now)
                raise ServiceError(
                    "outside_round_window",
                    f"no {loaded.name} round window is open at {now.isoformat()}; round {following.number}"
                    f" opens at {following.open_time.isoformat()} (use --close-in to open a round now)",
                )
            schedule = calendar_round
            row = uow.rounds.get_by_number(loaded.id, schedule.number)
            if row is not None and row.state != RoundState.UPCOMING.value:
                raise ServiceError(
                    "round_already_opened",
                    f"{loaded.name} round {row.number} was opened already ({row.state})",
                )
            if row is None and latest is not None and latest.number > schedule.number:
                raise ServiceError(
                    "round_numbers_ahead",
                    f"{loaded.name} already has round {latest.number},"
                    f" after the calendar's {schedule.number};"
                    " use --close-in to open the next round now",
                )
        else:
            if latest is not None and latest.state == RoundState.UPCOMING.value:
                number = latest.number  # the round queued submissions wait for
            else:
                floor = config.calendar.first_round if calendar_round is None else calendar_round.number
                number = max(floor, latest.number + 1 if latest is not None else floor)
            following_open = round_schedule(config, number + 1).open_time
            schedule = schedule_round(
                config,
                number,
                now,
                now + close_in,
                next_open_time=following_open if following_open > now + close_in else None,
            )
            row = uow.rounds.get_by_number(loaded.id, number)
        if row is None:
            row = create_round_row(uow, loaded, schedule, now=now)
        else:
            row.open_time = schedule.open_time
            row.close_staking_time = schedule.close_staking_time
            row.close_time = schedule.close_time
            row.score_time = schedule.first_score_time
            row.resolve_time = schedule.resolve_time
            row.data_datestamp = schedule.data_datestamp
            uow.session.flush()
        _open(ctx, uow, loaded, row, now)
        return _status(uow, loaded, row, now)

    status = run_transaction(ctx.engine, work)
    notify_round_opened(ctx, status.tournament, status.number)  # after the commit, never inside it
    return status


def close_round(ctx: Context, tournament: TournamentRef) -> RoundStatus:
    """Close the open round now (on-time uploads end; its late window stays) and return its status."""
    now = ctx.now()

    def work(uow: UnitOfWork) -> RoundStatus:
        loaded = load_tournament(uow, tournament)
        rows = _open_rounds(uow, loaded.id)
        if not rows:
            raise ServiceError("no_open_round", f"no {loaded.name} round is open")
        row = rows[0]
        if now < row.close_staking_time:
            row.close_staking_time = now
            uow.session.flush()
        _close(ctx, uow, loaded, row, now)
        return _status(uow, loaded, row, now)

    return run_transaction(ctx.engine, work)


def round_status(ctx: Context, tournament: TournamentRef, number: int | None = None) -> RoundStatus:
    """Return the status of round ``number``, or of the current (latest opened) round."""
    now = ctx.now()

    def work(uow: UnitOfWork) -> RoundStatus:
        loaded = load_tournament(uow, tournament)
        row = uow.rounds.current(loaded.id) if number is None else uow.rounds.get_by_number(loaded.id, number)
        if row is None:
            if number is not None:
                raise NotFound(f"{loaded.name} has no round {number}")
            following = next_round(loaded.config, now)
            raise NotFound(
                f"no {loaded.name} round has opened yet; calendar round {following.number}"
                f" opens at {following.open_time.isoformat()}"
            )
        return _status(uow, loaded, row, now)

    return run_transaction(ctx.engine, work, read_only=True)


def tick(ctx: Context, *, owner: str | None = None, steps: Collection[JobStep] = TICK_STEPS) -> TickReport:
    """Run every due round job (open, close, score, resolve) of every tournament once; return what ran.

    ``steps`` limits the jobs run to those steps (every due job is still enqueued): a deployment
    that runs the score jobs in a worker of their own (:func:`run_score_jobs`) ticks the others.

    Jobs run oldest due first, each in a transaction of its own — except score jobs: the score
    jobs due together (up to ``SCORE_BATCH``, one per round in flight on a scoring day) are
    claimed at once, planned in one read and stored in short writes, each job in a savepoint, so a
    job that fails or waits rolls back alone and the others still commit (:func:`_run_score_batch`).
    """
    now = ctx.now()
    owner = owner or f"{socket.gethostname()}:{os.getpid()}"
    report = TickReport(now=now)
    report.created_rounds.extend(run_transaction(ctx.engine, lambda uow: _enqueue_due_jobs(uow, now)))
    steps = tuple(step for step in TICK_STEPS if step in steps)
    while True:
        jobs = _claim(ctx, owner, now, steps)
        if not jobs:
            # right after the jobs: the leaderboards their resolutions and scores changed (idempotent)
            report.leaderboards.extend(refresh_leaderboards(ctx))
            return report
        job = jobs[0]
        if job.step == JobStep.SCORE.value:
            batch = [job, *_claim(ctx, owner, now, (JobStep.SCORE,), SCORE_BATCH - 1)]
            _run_score_batch(ctx, batch, owner, now, report)
            continue

        def work(
            uow: UnitOfWork, job_id: int = job.id, payload: dict = job.payload, step: str = job.step
        ) -> None:
            _run_step(ctx, uow, payload, JobStep(step), now)
            uow.jobs.complete(job_id, owner, now=now)

        try:
            run_transaction(ctx.engine, work)
            report.ran.append(job.key)
            if job.step == JobStep.OPEN.value:  # committed: announce it to the models' webhooks
                notify_round_opened(ctx, job.payload["tournament"], int(job.payload["round"]))
        except Exception as error:
            run_transaction(
                ctx.engine, lambda uow, j=job, e=error: _record_failure(uow, j, e, owner, now, report)
            )


def run_score_jobs(ctx: Context, *, owner: str | None = None) -> TickReport:
    """Run every due score job (enqueued by ``tick``) in batches; return what ran, waits and failed.

    What a score worker runs beside a ``tick`` limited to the other steps: no job is enqueued and no
    leaderboard refreshed here (the next full tick refreshes them).
    """
    now = ctx.now()
    owner = owner or f"{socket.gethostname()}:{os.getpid()}"
    report = TickReport(now=now)
    while batch := _claim(ctx, owner, now, (JobStep.SCORE,), SCORE_BATCH):
        _run_score_batch(ctx, batch, owner, now, report)
    return report


def _claim(ctx: Context, owner: str, now: datetime, steps: tuple[JobStep, ...], limit: int = 1) -> list[Job]:
    """Lease up to ``limit`` due jobs of ``steps`` to ``owner`` in a short transaction of its own."""
    return run_transaction(
        ctx.engine,
        lambda uow: uow.jobs.claim(
            owner, now=now, lease=JOB_LEASE, limit=limit, steps=[step.value for step in steps]
        ),
        isolation_level="READ COMMITTED",
    )


def _record_failure(
    uow: UnitOfWork, job: Job, error: Exception, owner: str, now: datetime, report: TickReport
) -> None:
    """Mark a job that raised: pending after ``SCORE_RETRY`` if its scores wait for data, else failed."""
    if isinstance(error, ScoresPending):
        uow.jobs.fail(job.id, owner, error=str(error), now=now, retry_at=now + SCORE_RETRY)
        report.waiting[job.key] = str(error)
    else:
        message = user_message(error) or f"{type(error).__name__}: {error}"
        uow.jobs.fail(job.id, owner, error=message, now=now)
        report.failed[job.key] = message


def _run_score_batch(ctx: Context, jobs: list[Job], owner: str, now: datetime, report: TickReport) -> None:
    """Run claimed score jobs: all planned in one read, then stored in short writes, each in a savepoint.

    Computing the scores only reads (:func:`plan_score_job`), so the database's single writer is
    held just for the inserts; the plans share the market's reads (:class:`ScoreBatch`). A job
    whose plan or storing raises is marked as a job run alone would be; the others still commit.
    """

    def plan(uow: UnitOfWork) -> list[RoundScorePlan | Exception]:
        batch = ScoreBatch()
        plans: list[RoundScorePlan | Exception] = []
        for job in jobs:
            try:
                loaded, row = _job_round(uow, job.payload)
                plans.append(plan_score_job(ctx, uow, loaded, row, int(job.payload["day"]), batch=batch))
            except Exception as error:
                if is_retryable(error):
                    raise  # the whole read runs again
                plans.append(error)
        return plans

    def store(uow: UnitOfWork, chunk: list[tuple[Job, RoundScorePlan | Exception]]) -> TickReport:
        outcome = TickReport(now=now)
        for job, planned in chunk:
            try:
                if isinstance(planned, Exception):
                    raise planned
                with uow.session.begin_nested():
                    store_round_scores(uow, planned, now=now)
                    uow.jobs.complete(job.id, owner, now=now)
                outcome.ran.append(job.key)
            except Exception as error:
                if is_retryable(error):
                    raise  # the whole transaction runs again (serialization failure, busy database)
                _record_failure(uow, job, error, owner, now, outcome)
        return outcome

    planned = list(zip(jobs, run_transaction(ctx.engine, plan, read_only=True), strict=True))
    for start in range(0, len(planned), SCORE_STORE_CHUNK):  # the writer is free between chunks
        chunk = planned[start : start + SCORE_STORE_CHUNK]
        outcome = run_transaction(ctx.engine, lambda uow, chunk=chunk: store(uow, chunk))
        report.ran.extend(outcome.ran)
        report.waiting.update(outcome.waiting)
        report.failed.update(outcome.failed)


def _enqueue_due_jobs(uow: UnitOfWork, now: datetime) -> list[str]:
    created: list[str] = []
    for tournament in uow.tournaments.list():
        loaded = load_tournament(uow, tournament.id)
        calendar_round = latest_round(loaded.config, now)
        has_data = uow.datasets.current_version(loaded.id) is not None
        # A tournament runs calendar rounds once it has data to publish; until then it stays quiet.
        if has_data and calendar_round is not None and now < calendar_round.close_staking_time:
            latest = uow.rounds.latest(loaded.id)
            if latest is None or latest.number < calendar_round.number:
                create_round_row(uow, loaded, calendar_round, now=now)
                created.append(f"{loaded.name}/{calendar_round.number}")
        rows = uow.rounds.list(
            loaded.id, states=[RoundState.UPCOMING, RoundState.OPEN, RoundState.CLOSED, RoundState.SCORING]
        )
        rows += rounds_scored_after_resolution(uow, loaded)  # their longer scores' days are still due
        rules = [RoundRule(stored_schedule(loaded, row), RoundState(row.state)) for row in rows]
        due = [job for job in due_transitions(rules, now) if job.key.step in TICK_STEPS]
        # enqueueing is idempotent; looking the keys up first spares one statement per known job
        known = uow.jobs.existing_keys([str(job.key) for job in due])
        for job in due:
            if str(job.key) in known:
                continue
            payload = {"tournament": loaded.name, "round": job.key.round_number}
            if job.score_day is not None:
                payload["day"] = job.score_day
            uow.jobs.enqueue(str(job.key), job.key.step.value, now=now, payload=payload, due_at=job.due_at)
    return created


def _job_round(uow: UnitOfWork, payload: dict) -> tuple[LoadedTournament, RoundRow]:
    """Return the tournament and round a job's payload names; NotFound if the round is gone."""
    tournament, number = payload["tournament"], int(payload["round"])
    loaded = load_tournament(uow, tournament)
    row = uow.rounds.get_by_number(loaded.id, number)
    if row is None:
        raise NotFound(f"{tournament} has no round {number}")
    return loaded, row


def _run_step(ctx: Context, uow: UnitOfWork, payload: dict, step: JobStep, now: datetime) -> None:
    """Run an open, close or resolve job in ``uow`` (score jobs run in batches: :func:`_run_score_batch`)."""
    loaded, row = _job_round(uow, payload)
    if step is JobStep.OPEN:
        _open(ctx, uow, loaded, row, now)
    elif step is JobStep.CLOSE:
        _close(ctx, uow, loaded, row, now)
    elif step is JobStep.RESOLVE:
        resolve_round_in(ctx, uow, loaded, row, now=now)
