"""The round calendar against the reference schedule (§3.3) and the scoring timeline (§3.4)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest

from crowdalpha.tournament import (
    CLASSIC,
    SIGNALS,
    RoundCalendar,
    Weekday,
    active_rounds,
    first_round_date,
    is_scoring_day,
    latest_round,
    next_round,
    round_date,
    round_number_on,
    round_schedule,
    rounds_opening_between,
    schedule_round,
    scoring_day_after,
)
from crowdalpha.tournament.config import SubmissionRules

WEEK = {
    day: date(2026, 4, 7) + timedelta(days=offset)
    for offset, day in enumerate(("tue", "wed", "thu", "fri", "sat"))
}


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


# Reference §3.3: round weekday → (close: days after opening, hour), first score (days after, weekday),
# resolution (days after, weekday).
REFERENCE_TABLE = {
    "tue": ((0, 13), (4, "sat"), (31, "fri")),
    "wed": ((0, 13), (6, "tue"), (31, "sat")),
    "thu": ((0, 13), (6, "wed"), (33, "tue")),
    "fri": ((0, 13), (6, "thu"), (33, "wed")),
    "sat": ((1, 14), (6, "fri"), (33, "thu")),
}


@pytest.mark.parametrize("weekday", list(REFERENCE_TABLE))
def test_each_round_follows_the_reference_schedule(weekday):
    (close_days, close_hour), (first_days, first_weekday), (resolve_days, resolve_weekday) = REFERENCE_TABLE[
        weekday
    ]
    day = WEEK[weekday]
    schedule = round_schedule(CLASSIC, round_number_on(CLASSIC, day))
    assert schedule.round_date == day
    assert schedule.open_time == utc(day, 12)
    assert schedule.close_staking_time == utc(day + timedelta(days=close_days), close_hour)
    assert schedule.first_score_time.date() == day + timedelta(days=first_days)
    assert Weekday(schedule.first_score_time.weekday()).label == first_weekday
    assert schedule.resolve_time.date() == day + timedelta(days=resolve_days)
    assert Weekday(schedule.resolve_time.weekday()).label == resolve_weekday
    assert schedule.data_date == day - timedelta(days=1)


def test_score_days_are_consecutive_scoring_days_never_sunday_or_monday():
    schedule = round_schedule(CLASSIC, round_number_on(CLASSIC, WEEK["tue"]))
    dates = schedule.score_dates
    assert len(dates) == CLASSIC.scoring_days == 60
    assert all(is_scoring_day(CLASSIC, day) for day in dates)
    assert all(day.weekday() not in (6, 0) for day in dates)
    for earlier, later in itertools.pairwise(dates):
        assert later == scoring_day_after(CLASSIC, earlier, 1)
    assert schedule.resolve_time == schedule.score_times[19]  # resolves with score day 20
    assert all(moment.time() == time(12) for moment in schedule.score_times)


def test_a_sixty_day_tournament_resolves_at_score_day_sixty():
    schedule = round_schedule(SIGNALS, round_number_on(SIGNALS, WEEK["tue"]))
    assert schedule.resolve_time == schedule.score_times[59]
    assert len(schedule.score_times) == 60
    assert (schedule.resolve_time.date() - schedule.round_date).days == 87  # ~12 weeks


def test_round_numbers_count_round_days_from_the_first_round():
    assert first_round_date(CLASSIC) == date(2000, 1, 4)
    assert round_date(CLASSIC, 1) == date(2000, 1, 4)
    numbers = [round_number_on(CLASSIC, WEEK[day]) for day in REFERENCE_TABLE]
    assert numbers == list(range(numbers[0], numbers[0] + 5))
    next_tuesday = WEEK["tue"] + timedelta(days=7)
    assert round_number_on(CLASSIC, next_tuesday) == numbers[-1] + 1
    for number in range(1, 400, 7):
        assert round_number_on(CLASSIC, round_date(CLASSIC, number)) == number
    with pytest.raises(ValueError, match=r"no classic round opens on 2026-04-12 \(sun\)"):
        round_number_on(CLASSIC, date(2026, 4, 12))
    with pytest.raises(ValueError, match="before the first round"):
        round_date(CLASSIC, 0)


def test_the_epoch_may_fall_on_a_day_without_a_round():
    calendar = dataclasses.replace(CLASSIC.calendar, first_round=500, first_round_date=date(2026, 4, 12))
    config = dataclasses.replace(CLASSIC, calendar=calendar)
    assert first_round_date(config) == date(2026, 4, 14)  # the Sunday epoch → the next Tuesday
    assert round_date(config, 500) == date(2026, 4, 14)
    assert latest_round(config, utc(date(2026, 4, 14), 11)) is None
    assert next_round(config, utc(date(2026, 4, 14), 11)).number == 500


def test_late_window_runs_to_the_next_open_by_default():
    saturday = round_schedule(CLASSIC, round_number_on(CLASSIC, WEEK["sat"]))
    assert saturday.close_staking_time == utc(WEEK["sat"] + timedelta(days=1), 14)
    assert saturday.close_time == utc(WEEK["sat"] + timedelta(days=3), 12)  # the Tuesday round opens


@pytest.mark.parametrize(
    ("hours", "expected"), [(0, utc(WEEK["tue"], 13)), (2, utc(WEEK["tue"], 15)), (100, None)]
)
def test_late_window_is_configurable_and_capped_at_the_next_open(hours, expected):
    rules = dataclasses.replace(CLASSIC.submissions, late_window_hours=hours)
    config = dataclasses.replace(CLASSIC, submissions=rules)
    schedule = round_schedule(config, round_number_on(config, WEEK["tue"]))
    assert schedule.close_time == (expected or utc(WEEK["wed"], 12))


def test_latest_and_next_round_switch_exactly_at_open_time():
    tuesday = round_number_on(CLASSIC, WEEK["tue"])
    opening = utc(WEEK["tue"], 12)
    assert latest_round(CLASSIC, opening).number == tuesday
    assert latest_round(CLASSIC, opening - timedelta(microseconds=1)).number == tuesday - 1
    assert next_round(CLASSIC, opening).number == tuesday + 1
    assert next_round(CLASSIC, opening - timedelta(microseconds=1)).number == tuesday
    monday = utc(WEEK["tue"] - timedelta(days=1), 20)
    assert latest_round(CLASSIC, monday).round_date == WEEK["tue"] - timedelta(days=3)  # Saturday's
    assert latest_round(CLASSIC, utc(date(1999, 12, 31), 0)) is None


def test_rounds_opening_in_a_week_are_tuesday_to_saturday():
    monday = utc(WEEK["tue"] - timedelta(days=1), 0)
    rounds = rounds_opening_between(CLASSIC, monday, monday + timedelta(days=7))
    assert [schedule.round_date for schedule in rounds] == list(WEEK.values())
    assert rounds_opening_between(CLASSIC, utc(WEEK["tue"], 12), utc(WEEK["tue"], 12)) == []


def _max_overlap(config, weeks: int) -> int:
    start = round_number_on(config, WEEK["tue"])
    schedules = [round_schedule(config, number) for number in range(start, start + 5 * weeks)]
    opens = np.array([schedule.open_time.timestamp() for schedule in schedules])
    resolves = np.array([schedule.resolve_time.timestamp() for schedule in schedules])
    # Overlap only rises when a round opens; count at every open once the calendar is in steady state.
    steady = opens[opens >= resolves[0]]
    counts = [int(((opens <= moment) & (resolves > moment)).sum()) for moment in steady]
    return max(counts)


def test_at_most_25_rounds_overlap_with_a_20_day_horizon():
    overlap = _max_overlap(CLASSIC, weeks=15)
    assert overlap <= 25
    assert overlap == 23  # the Tuesday round opens while 22 earlier rounds still await resolution


def test_at_most_h_over_5_plus_1_weeks_of_rounds_overlap_with_a_60_day_horizon():
    assert _max_overlap(SIGNALS, weeks=30) <= (60 // 5 + 1) * 5


def test_active_rounds_are_the_opened_and_unresolved_ones():
    moment = utc(WEEK["fri"], 12)
    active = active_rounds(CLASSIC, moment)
    start = round_number_on(CLASSIC, WEEK["tue"]) - 40
    brute_force = [
        schedule.number
        for schedule in (round_schedule(CLASSIC, number) for number in range(start, start + 50))
        if schedule.open_time <= moment < schedule.resolve_time
    ]
    assert [schedule.number for schedule in active] == brute_force
    assert len(active) == 23
    assert active[-1].round_date == WEEK["fri"]


def test_a_round_opened_off_calendar_is_scored_from_its_open_date():
    opened = utc(WEEK["wed"], 15, 30)
    schedule = schedule_round(CLASSIC, 9999, opened, opened + timedelta(hours=1))
    calendar_round = round_schedule(CLASSIC, round_number_on(CLASSIC, WEEK["wed"]))
    assert schedule.score_times == calendar_round.score_times
    assert schedule.close_time == schedule.close_staking_time  # no next open known: no late window
    with pytest.raises(ValueError, match="must close after it opens"):
        schedule_round(CLASSIC, 1, opened, opened)
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule_round(CLASSIC, 1, opened.replace(tzinfo=None), opened + timedelta(hours=1))


def test_a_monday_to_friday_calendar_is_just_another_config():
    calendar = RoundCalendar(
        weekdays=(Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI),
        open=time(9),
        close=time(9, 30),
        overrides=(),
    )
    config = dataclasses.replace(
        CLASSIC,
        calendar=calendar,
        scoring_weekdays=calendar.weekdays,
        submissions=SubmissionRules(id_columns=("id",), prediction_columns=("prediction",)),
    )
    monday = WEEK["tue"] - timedelta(days=1)
    schedule = round_schedule(config, round_number_on(config, monday))
    assert (schedule.open_time, schedule.close_staking_time) == (utc(monday, 9), utc(monday, 9, 30))
    assert schedule.first_score_time.date() == monday + timedelta(days=4)  # the 4th weekday after: Friday
    assert latest_round(config, utc(monday + timedelta(days=5), 23)).round_date == monday + timedelta(days=4)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="now must be a timezone-aware datetime"):
        latest_round(CLASSIC, datetime(2026, 4, 7, 12))
