"""Read-only views for the web pages: tournaments, the dataset catalogue, rounds, the job table, receipts.

Each function is one read-only transaction returning plain frozen dataclasses, so templates never
touch the database. Mutations stay in the use cases the API and CLI call (``open_round``,
``create_api_key``, ``submit_predictions`` …).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from crowdalpha.service._tournaments import TournamentRef, load_tournament
from crowdalpha.service.accounts import AccountRef, resolve_account
from crowdalpha.service.context import Context
from crowdalpha.service.datasets import DatasetFileInfo, file_info
from crowdalpha.service.submissions import SubmissionInfo, list_submissions
from crowdalpha.store import JobState, UnitOfWork, run_transaction

STUCK_AFTER = timedelta(minutes=15)
"""A pending job this long past its due time is stuck: no worker is ticking."""
DONE_JOBS_SHOWN = 50
ROUNDS_SHOWN = 100


@dataclass(frozen=True)
class TournamentSummary:
    """A tournament on the home page: name, numerapi id, its latest round (number, state) if any."""

    name: str
    id: int
    latest_round: int | None
    latest_state: str | None
    latest_close_time: datetime | None


@dataclass(frozen=True)
class DatasetVersionView:
    """A published dataset version with its public files (version-wide ones, not the rounds' live files)."""

    tournament: str
    version: str
    published_at: datetime
    files: tuple[DatasetFileInfo, ...]

    @property
    def total_bytes(self) -> int:
        """Return the version's size: the sum of its files' sizes in bytes."""
        return sum(item.size_bytes for item in self.files)


@dataclass(frozen=True)
class RoundSummary:
    """A round in a tournament's list: number, state, its times (UTC) and selected submissions."""

    tournament: str
    number: int
    state: str
    open_time: datetime
    close_staking_time: datetime
    close_time: datetime
    resolve_time: datetime | None
    selected_submissions: int


@dataclass(frozen=True)
class JobView:
    """A job as the operator console shows it; ``stuck`` flags work nobody is doing."""

    key: str
    step: str
    state: str
    attempts: int
    error: str | None
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    age: timedelta
    stuck: bool


@dataclass(frozen=True)
class ModelSubmission:
    """A submission of one of the account's models, with the model's name and tournament."""

    model_name: str
    tournament: str
    submission: SubmissionInfo


def tournament_summaries(ctx: Context) -> list[TournamentSummary]:
    """Return every tournament with its latest round, by numerapi id."""

    def work(uow: UnitOfWork) -> list[TournamentSummary]:
        summaries = []
        for row in uow.tournaments.list():
            latest = uow.rounds.latest(row.id)
            summaries.append(
                TournamentSummary(
                    row.name,
                    row.id,
                    None if latest is None else latest.number,
                    None if latest is None else latest.state,
                    None if latest is None else latest.close_staking_time,
                )
            )
        return sorted(summaries, key=lambda summary: summary.id)

    return run_transaction(ctx.engine, work, read_only=True)


def dataset_catalog(ctx: Context, tournament: TournamentRef | None = None) -> list[DatasetVersionView]:
    """Return the published dataset versions (of one tournament or all), newest first, with public files."""

    def work(uow: UnitOfWork) -> list[DatasetVersionView]:
        tournaments = (
            [load_tournament(uow, tournament)]
            if tournament is not None
            else [load_tournament(uow, row.id) for row in uow.tournaments.list()]
        )
        views = []
        for loaded in tournaments:
            for version in uow.datasets.list_versions(loaded.id):
                files = tuple(file_info(version, item) for item in uow.datasets.list_files(version.id))
                views.append(DatasetVersionView(loaded.name, version.name, version.published_at, files))
        return sorted(views, key=lambda view: view.published_at, reverse=True)

    return run_transaction(ctx.engine, work, read_only=True)


def list_rounds(ctx: Context, tournament: TournamentRef, *, limit: int = ROUNDS_SHOWN) -> list[RoundSummary]:
    """Return the tournament's newest ``limit`` rounds, newest first, with their selected submissions."""

    def work(uow: UnitOfWork) -> list[RoundSummary]:
        loaded = load_tournament(uow, tournament)
        return [
            RoundSummary(
                loaded.name,
                row.number,
                row.state,
                row.open_time,
                row.close_staking_time,
                row.close_time,
                row.resolve_time,
                len(uow.submissions.list_selected(row.id)),
            )
            for row in uow.rounds.list(loaded.id, limit=limit)
        ]

    return run_transaction(ctx.engine, work, read_only=True)


def job_table(ctx: Context, *, stuck_after: timedelta = STUCK_AFTER) -> list[JobView]:
    """Return every unfinished job and the newest finished ones, most recently due first, stuck ones flagged.

    A job is stuck when it runs under an expired lease (its worker died) or is pending more than
    ``stuck_after`` past its due time (nothing is ticking).
    """
    now = ctx.now()

    def work(uow: UnitOfWork) -> list[JobView]:
        unfinished = uow.jobs.list(states=[JobState.PENDING, JobState.RUNNING, JobState.FAILED])
        done = uow.jobs.list(states=[JobState.DONE])[-DONE_JOBS_SHOWN:]
        views = []
        for job in [*unfinished, *done]:
            lease_until = job.lease_until
            expired = job.state == JobState.RUNNING.value and lease_until is not None and lease_until < now
            overdue = job.state == JobState.PENDING.value and now - job.due_at > stuck_after
            views.append(
                JobView(
                    key=job.key,
                    step=job.step,
                    state=job.state,
                    attempts=job.attempts,
                    error=job.error,
                    due_at=job.due_at,
                    created_at=job.created_at,
                    updated_at=job.updated_at,
                    lease_owner=job.lease_owner,
                    lease_until=job.lease_until,
                    age=now - job.created_at,
                    stuck=expired or overdue,
                )
            )
        return sorted(views, key=lambda view: (view.due_at, view.key), reverse=True)

    return run_transaction(ctx.engine, work, read_only=True)


def account_submissions(ctx: Context, account: AccountRef) -> list[ModelSubmission]:
    """Return the submissions of every model of the account, newest first."""

    def work(uow: UnitOfWork) -> list[tuple[str, str, str]]:
        owner = resolve_account(uow, account)
        names = {row.id: row.name for row in uow.tournaments.list()}
        return [
            (model.id, model.name, names[model.tournament_id])
            for model in uow.models.list(account_id=owner.id)
        ]

    listed = [
        ModelSubmission(name, tournament, info)
        for model_id, name, tournament in run_transaction(ctx.engine, work, read_only=True)
        for info in list_submissions(ctx, account, model_id)
    ]
    return sorted(listed, key=lambda item: item.submission.received_at, reverse=True)
