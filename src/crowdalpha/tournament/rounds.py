"""The round state machine and its jobs: upcoming → open → closed → scoring → resolved.

A round moves one state at a time, at fixed times of its :class:`RoundSchedule`:

=========  ========  ======================  =====================
from       to        at                      job step
=========  ========  ======================  =====================
upcoming   open      ``open_time``           ``open``
open       closed    ``close_staking_time``  ``close``
closed     scoring   score day 1             ``score`` (day 1)
scoring    resolved  score day ``horizon``   ``resolve``
=========  ========  ======================  =====================

Each step is an idempotent job keyed by ``(tournament, round, step, date)`` (DESIGN, "Jobs and
scale"); score days 2 … ``scoring_days`` are jobs that leave the state alone (a Classic round keeps
its informational 60-day score after it resolves at day 20). The service runs the jobs and stores
the state; this module only says which state comes next and which jobs are due at a moment.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from crowdalpha.tournament.calendar import RoundSchedule, as_utc


class RoundState(StrEnum):
    """Where a round is in its life: upcoming → open → closed → scoring → resolved."""

    UPCOMING = "upcoming"
    OPEN = "open"
    CLOSED = "closed"
    SCORING = "scoring"
    RESOLVED = "resolved"


class JobStep(StrEnum):
    """The kinds of round job, in the order they run on one moment."""

    OPEN = "open"
    CLOSE = "close"
    SCORE = "score"
    RESOLVE = "resolve"


_STATES = tuple(RoundState)
_STEP_RANK = {step: rank for rank, step in enumerate(JobStep)}


@dataclass(frozen=True)
class Round:
    """A round as the rules see it: its schedule and the state it was last moved to."""

    schedule: RoundSchedule
    state: RoundState = RoundState.UPCOMING


@dataclass(frozen=True)
class JobKey:
    """The idempotency key of a round job; ``str(key)`` is ``tournament/round/step/YYYY-MM-DD``."""

    tournament: str
    round_number: int
    step: JobStep
    date: date

    def __str__(self) -> str:
        return f"{self.tournament}/{self.round_number}/{self.step.value}/{self.date.isoformat()}"


@dataclass(frozen=True)
class RoundJob:
    """One job of a round: its key, when it is due (UTC), its score day, the state it moves the round to."""

    key: JobKey
    due_at: datetime
    score_day: int | None = None
    moves_to: RoundState | None = None


def _transition_time(schedule: RoundSchedule, to: RoundState) -> datetime:
    return {
        RoundState.OPEN: schedule.open_time,
        RoundState.CLOSED: schedule.close_staking_time,
        RoundState.SCORING: schedule.first_score_time,
        RoundState.RESOLVED: schedule.resolve_time,
    }[to]


def state_at(schedule: RoundSchedule, now: datetime) -> RoundState:
    """Return the state a round should be in at ``now`` if every due transition has run."""
    now = as_utc(now)
    state = RoundState.UPCOMING
    for candidate in _STATES[1:]:
        if _transition_time(schedule, candidate) > now:
            break
        state = candidate
    return state


def next_state(round_: Round, now: datetime) -> RoundState:
    """Return the state ``round_`` moves to at ``now``: one step on if that step is due, else its state."""
    now = as_utc(now)
    position = _STATES.index(round_.state)
    if position + 1 == len(_STATES):
        return round_.state
    candidate = _STATES[position + 1]
    return candidate if _transition_time(round_.schedule, candidate) <= now else round_.state


def round_jobs(schedule: RoundSchedule) -> tuple[RoundJob, ...]:
    """Return every job of a round — open, close, one per score day, resolve — in the order they fall due."""

    def key(step: JobStep, day: date) -> JobKey:
        """Return the key of this round's ``step`` job on ``day``."""
        return JobKey(schedule.tournament, schedule.number, step, day)

    jobs = [
        RoundJob(key(JobStep.OPEN, schedule.round_date), schedule.open_time, moves_to=RoundState.OPEN),
        RoundJob(
            key(JobStep.CLOSE, schedule.close_staking_time.date()),
            schedule.close_staking_time,
            moves_to=RoundState.CLOSED,
        ),
    ]
    for day, moment in enumerate(schedule.score_times, start=1):
        jobs.append(
            RoundJob(
                key(JobStep.SCORE, moment.date()),
                moment,
                score_day=day,
                moves_to=RoundState.SCORING if day == 1 else None,
            )
        )
    jobs.append(
        RoundJob(
            key(JobStep.RESOLVE, schedule.resolve_time.date()),
            schedule.resolve_time,
            moves_to=RoundState.RESOLVED,
        )
    )
    return tuple(sorted(jobs, key=_job_order))


def _job_order(job: RoundJob) -> tuple[datetime, int, int, int]:
    return job.due_at, _STEP_RANK[job.key.step], job.key.round_number, job.score_day or 0


def due_transitions(
    rounds: Iterable[Round], now: datetime, *, done: Collection[JobKey] = frozenset()
) -> list[RoundJob]:
    """Return the jobs due at ``now`` that neither ``done`` nor a round's state shows as run, in run order.

    A job that moves a round into a state it has already reached is done by definition; score-day
    jobs that leave the state alone are filtered by ``done`` (the job table's finished keys).
    """
    now = as_utc(now)
    due: list[RoundJob] = []
    for round_ in rounds:
        reached = _STATES.index(round_.state)
        for job in round_jobs(round_.schedule):
            if job.due_at > now:
                break
            if job.moves_to is not None and _STATES.index(job.moves_to) <= reached:
                continue
            if job.key in done:
                continue
            due.append(job)
    return sorted(due, key=_job_order)
