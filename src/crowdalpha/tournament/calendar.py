"""The round calendar: when each round opens and closes, on which days it is scored, when it resolves.

Round numbers count the calendar's round days (Tue–Sat by default) from ``first_round``. A round
opening on day D accepts on-time uploads from ``open_time`` to ``close_staking_time`` and late ones
until ``close_time`` (the end of the late window, never after the next round opens). Score day k
(1 … ``config.scoring_days``) falls on the ``data_delay_days + lag_days + k − 1``-th scoring day
after D, at ``score_time`` UTC — scoring days skip Sunday and Monday by default — and the round
resolves at score day ``horizon``. With Numerai's defaults this reproduces the reference table
(§3.3): a Tuesday round is first scored the next Saturday and resolves 31 days later on a Friday.

Every function is pure: it takes the config and the moment to reason about; nothing here reads a
clock. Datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from crowdalpha.tournament.config import TournamentConfig, Weekday

_REFERENCE_MONDAY = date(1970, 1, 5)


def _days_in_set_before(day: date, weekdays: tuple[Weekday, ...]) -> int:
    """Count the days in [reference Monday, ``day``) whose weekday is in ``weekdays`` (negative before it)."""
    weeks, rest = divmod((day - _REFERENCE_MONDAY).days, 7)
    return weeks * len(weekdays) + sum(1 for weekday in weekdays if weekday < rest)


def _day_in_set_at(index: int, weekdays: tuple[Weekday, ...]) -> date:
    """Return the day whose :func:`_days_in_set_before` is ``index`` (the inverse, on days in the set)."""
    weeks, rest = divmod(index, len(weekdays))
    return _REFERENCE_MONDAY + timedelta(days=7 * weeks + int(weekdays[rest]))


def as_utc(moment: datetime, name: str = "now") -> datetime:
    """Return ``moment`` converted to UTC; raise ValueError for a naive datetime (``name`` labels it)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _at(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=UTC)


@dataclass(frozen=True)
class RoundSchedule:
    """The fixed times of one round: window, late window, score days and resolution (UTC datetimes)."""

    tournament: str
    number: int
    round_date: date
    open_time: datetime
    close_staking_time: datetime
    close_time: datetime
    score_times: tuple[datetime, ...]
    horizon: int

    @property
    def data_date(self) -> date:
        """Return the date whose market close built the round's live data (the day before the round opens)."""
        return self.round_date - timedelta(days=1)

    @property
    def data_datestamp(self) -> int:
        """Return :attr:`data_date` as numerapi's integer datestamp ``YYYYMMDD``."""
        return int(self.data_date.strftime("%Y%m%d"))

    @property
    def first_score_time(self) -> datetime:
        """Return when score day 1 is computed (UTC)."""
        return self.score_times[0]

    @property
    def resolve_time(self) -> datetime:
        """Return when the round resolves: the time of score day ``horizon`` (UTC)."""
        return self.score_times[self.horizon - 1]

    @property
    def score_dates(self) -> tuple[date, ...]:
        """Return the date of each score day, day 1 first."""
        return tuple(moment.date() for moment in self.score_times)


def is_round_day(config: TournamentConfig, day: date) -> bool:
    """Return whether a round opens on ``day`` (a round weekday on or after the first round)."""
    return Weekday(day.weekday()) in config.calendar.weekdays and day >= first_round_date(config)


def is_scoring_day(config: TournamentConfig, day: date) -> bool:
    """Return whether scores are computed on ``day`` (a scoring weekday)."""
    return Weekday(day.weekday()) in config.scoring_weekdays


def first_round_date(config: TournamentConfig) -> date:
    """Return the date the first round opens: the first round weekday on or after ``first_round_date``."""
    weekdays = config.calendar.weekdays
    return _day_in_set_at(_days_in_set_before(config.calendar.first_round_date, weekdays), weekdays)


def round_date(config: TournamentConfig, number: int) -> date:
    """Return the date round ``number`` opens on; raise ValueError before the first round."""
    calendar = config.calendar
    if number < calendar.first_round:
        raise ValueError(f"round {number} is before the first round {calendar.first_round} of {config.name}")
    first = _days_in_set_before(calendar.first_round_date, calendar.weekdays)
    return _day_in_set_at(first + number - calendar.first_round, calendar.weekdays)


def round_number_on(config: TournamentConfig, day: date) -> int:
    """Return the number of the round that opens on ``day``; raise ValueError if no round opens that day."""
    calendar = config.calendar
    if not is_round_day(config, day):
        raise ValueError(
            f"no {config.name} round opens on {day.isoformat()} ({Weekday(day.weekday()).label})"
        )
    return (
        _days_in_set_before(day, calendar.weekdays)
        - _days_in_set_before(calendar.first_round_date, calendar.weekdays)
        + calendar.first_round
    )


def scoring_day_after(config: TournamentConfig, day: date, n: int) -> date:
    """Return the ``n``-th scoring day strictly after ``day`` (``n`` ≥ 1)."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    weekdays = config.scoring_weekdays
    return _day_in_set_at(_days_in_set_before(day + timedelta(days=1), weekdays) + n - 1, weekdays)


SCHEDULE_CACHE_SIZE = 1024
"""Schedules and score times kept per (config, round): pure functions of frozen data, asked per upload."""


@lru_cache(maxsize=SCHEDULE_CACHE_SIZE)
def score_times(config: TournamentConfig, opened_on: date) -> tuple[datetime, ...]:
    """Return the UTC times of score days 1 … ``config.scoring_days`` of a round opened on ``opened_on``."""
    first = config.first_score_offset
    return tuple(
        _at(scoring_day_after(config, opened_on, first + k - 1), config.score_time)
        for k in range(1, config.scoring_days + 1)
    )


def late_close_time(
    config: TournamentConfig, close_staking_time: datetime, next_open_time: datetime | None
) -> datetime:
    """Return when a round's late window ends: close + late window, capped at the next round's open (UTC)."""
    hours = config.submissions.late_window_hours
    if hours is None:
        return next_open_time if next_open_time is not None else close_staking_time
    late_close = close_staking_time + timedelta(hours=hours)
    return min(late_close, next_open_time) if next_open_time is not None else late_close


def schedule_round(
    config: TournamentConfig,
    number: int,
    open_time: datetime,
    close_staking_time: datetime,
    *,
    next_open_time: datetime | None = None,
) -> RoundSchedule:
    """Return the schedule of a round with the given submission window (also for off-calendar rounds)."""
    open_time = as_utc(open_time, "open_time")
    close_staking_time = as_utc(close_staking_time, "close_staking_time")
    if close_staking_time <= open_time:
        raise ValueError(
            f"round {number} must close after it opens:"
            f" {close_staking_time.isoformat()} ≤ {open_time.isoformat()}"
        )
    if next_open_time is not None:
        next_open_time = as_utc(next_open_time, "next_open_time")
    return RoundSchedule(
        tournament=config.name,
        number=number,
        round_date=open_time.date(),
        open_time=open_time,
        close_staking_time=close_staking_time,
        close_time=late_close_time(config, close_staking_time, next_open_time),
        score_times=score_times(config, open_time.date()),
        horizon=config.horizon,
    )


def _window(config: TournamentConfig, day: date) -> tuple[datetime, datetime]:
    opens, closes, close_days_after = config.calendar.window(Weekday(day.weekday()))
    return _at(day, opens), _at(day + timedelta(days=close_days_after), closes)


@lru_cache(maxsize=SCHEDULE_CACHE_SIZE)
def round_schedule(config: TournamentConfig, number: int) -> RoundSchedule:
    """Return the calendar schedule of round ``number``."""
    day = round_date(config, number)
    open_time, close_staking_time = _window(config, day)
    next_open_time, _ = _window(config, round_date(config, number + 1))
    return schedule_round(config, number, open_time, close_staking_time, next_open_time=next_open_time)


def latest_round(config: TournamentConfig, now: datetime) -> RoundSchedule | None:
    """Return the most recent round that has opened at or before ``now``, or None before the first round."""
    now = as_utc(now)
    weekdays = config.calendar.weekdays
    index = _days_in_set_before(now.date() + timedelta(days=1), weekdays) - 1
    day = _day_in_set_at(index, weekdays)
    if _window(config, day)[0] > now:
        day = _day_in_set_at(index - 1, weekdays)
    if day < first_round_date(config):
        return None
    return round_schedule(config, round_number_on(config, day))


def next_round(config: TournamentConfig, now: datetime) -> RoundSchedule:
    """Return the first round that opens strictly after ``now``."""
    latest = latest_round(config, now)
    return round_schedule(config, config.calendar.first_round if latest is None else latest.number + 1)


def rounds_opening_between(config: TournamentConfig, start: datetime, end: datetime) -> list[RoundSchedule]:
    """Return the schedules of the rounds whose open_time lies in ``[start, end)``, oldest first."""
    start, end = as_utc(start, "start"), as_utc(end, "end")
    rounds: list[RoundSchedule] = []
    schedule = next_round(config, start - timedelta(microseconds=1))
    while schedule.open_time < end:
        rounds.append(schedule)
        schedule = round_schedule(config, schedule.number + 1)
    return rounds


def active_rounds(config: TournamentConfig, now: datetime) -> list[RoundSchedule]:
    """Return the rounds opened but not resolved at ``now`` (open, closed or scoring), oldest first."""
    now = as_utc(now)
    latest = latest_round(config, now)
    rounds: list[RoundSchedule] = []
    number = latest.number if latest is not None else config.calendar.first_round - 1
    # Resolve times grow with the round number, so walk back until a round has resolved.
    while number >= config.calendar.first_round:
        schedule = round_schedule(config, number)
        if schedule.resolve_time <= now:
            break
        rounds.append(schedule)
        number -= 1
    return rounds[::-1]
