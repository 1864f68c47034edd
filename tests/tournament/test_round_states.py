"""Round states move in order at their scheduled times; each round job is due once under a settable clock."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from crowdalpha.tournament import (
    CLASSIC,
    Clock,
    JobKey,
    JobStep,
    Round,
    RoundState,
    SettableClock,
    WallClock,
    due_transitions,
    next_state,
    round_jobs,
    round_number_on,
    round_schedule,
    state_at,
)

TUESDAY = date(2026, 4, 7)


@pytest.fixture
def schedule():
    return round_schedule(CLASSIC, round_number_on(CLASSIC, TUESDAY))


def test_states_advance_in_order_at_their_times_under_a_settable_clock(schedule):
    clock = SettableClock(datetime(2026, 4, 6, tzinfo=UTC))
    round_ = Round(schedule)
    seen: list[tuple[RoundState, datetime]] = []
    while clock.now() < schedule.resolve_time + timedelta(days=2):
        state = next_state(round_, clock.now())
        if state != round_.state:
            seen.append((state, clock.now()))
            round_ = dataclasses.replace(round_, state=state)
        clock.advance(timedelta(minutes=30))
    assert seen == [
        (RoundState.OPEN, schedule.open_time),
        (RoundState.CLOSED, schedule.close_staking_time),
        (RoundState.SCORING, schedule.first_score_time),
        (RoundState.RESOLVED, schedule.resolve_time),
    ]
    assert [state_at(schedule, moment) for _, moment in seen] == [state for state, _ in seen]


def test_next_state_moves_one_step_even_when_late(schedule):
    long_after = schedule.resolve_time + timedelta(days=365)
    assert next_state(Round(schedule), long_after) == RoundState.OPEN
    assert next_state(Round(schedule, RoundState.CLOSED), long_after) == RoundState.SCORING
    assert next_state(Round(schedule, RoundState.RESOLVED), long_after) == RoundState.RESOLVED
    assert state_at(schedule, long_after) == RoundState.RESOLVED
    just_before = schedule.close_staking_time - timedelta(microseconds=1)
    assert next_state(Round(schedule, RoundState.OPEN), just_before) == RoundState.OPEN
    assert state_at(schedule, schedule.open_time - timedelta(microseconds=1)) == RoundState.UPCOMING


def test_a_round_has_one_job_per_step_and_score_day(schedule):
    jobs = round_jobs(schedule)
    assert len(jobs) == 2 + CLASSIC.scoring_days + 1
    assert len({job.key for job in jobs}) == len(jobs)
    assert [job.key.step for job in jobs[:3]] == [JobStep.OPEN, JobStep.CLOSE, JobStep.SCORE]
    resolve = next(job for job in jobs if job.key.step == JobStep.RESOLVE)
    day_20 = next(job for job in jobs if job.score_day == 20)
    assert resolve.due_at == day_20.due_at == schedule.resolve_time
    assert jobs.index(resolve) == jobs.index(day_20) + 1  # the final score runs before resolution
    assert str(resolve.key) == f"classic/{schedule.number}/resolve/{schedule.resolve_time.date().isoformat()}"
    assert str(jobs[0].key) == f"classic/{schedule.number}/open/2026-04-07"


def test_a_scheduler_loop_runs_every_job_exactly_once_even_when_triggered_twice(schedule):
    clock = SettableClock(schedule.open_time - timedelta(hours=1))
    round_ = Round(schedule)
    done: set[JobKey] = set()
    ran: list[JobKey] = []
    while clock.now() <= schedule.score_times[-1] + timedelta(days=1):
        for _trigger in range(2):  # a double trigger must find nothing left to do
            for job in due_transitions([round_], clock.now(), done=done):
                ran.append(job.key)
                done.add(job.key)
                if job.moves_to is not None:
                    round_ = dataclasses.replace(round_, state=job.moves_to)
        clock.advance(timedelta(hours=6))
    assert ran == [job.key for job in round_jobs(schedule)]
    assert round_.state == RoundState.RESOLVED


def test_due_transitions_skip_steps_the_state_already_shows(schedule):
    middle = schedule.score_times[4] + timedelta(minutes=1)
    due = due_transitions([Round(schedule, RoundState.SCORING)], middle)
    assert [(job.key.step, job.score_day) for job in due] == [(JobStep.SCORE, day) for day in range(2, 6)]
    first_three = {job.key for job in due[:3]}
    assert [
        job.score_day
        for job in due_transitions([Round(schedule, RoundState.SCORING)], middle, done=first_three)
    ] == [5]
    assert due_transitions([Round(schedule)], schedule.open_time - timedelta(seconds=1)) == []


def test_informational_scores_keep_coming_after_resolution(schedule):
    after = schedule.resolve_time + timedelta(days=1)
    done = {job.key for job in round_jobs(schedule) if job.score_day is not None and job.score_day <= 20}
    due = due_transitions([Round(schedule, RoundState.RESOLVED)], after, done=done)
    assert [job.score_day for job in due] == [21]
    assert all(job.moves_to is None for job in due)


def test_jobs_of_many_rounds_come_in_due_order():
    rounds = [
        Round(round_schedule(CLASSIC, round_number_on(CLASSIC, TUESDAY) + offset)) for offset in range(5)
    ]
    due = due_transitions(rounds, datetime(2026, 4, 20, tzinfo=UTC))
    assert [job.due_at for job in due] == sorted(job.due_at for job in due)
    assert len({job.key for job in due}) == len(due)


def test_settable_clock_is_set_and_advanced_but_never_naive():
    clock = SettableClock(datetime(2026, 4, 7, 12, tzinfo=UTC))
    assert clock.advance(timedelta(hours=1)) == datetime(2026, 4, 7, 13, tzinfo=UTC)
    assert clock.set(datetime(2026, 1, 1, tzinfo=UTC)) == clock.now() == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="only advances forwards"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2026, 1, 1))
    assert isinstance(clock, Clock) and isinstance(WallClock(), Clock)
    assert WallClock().now().tzinfo is UTC
