"""Upload timing as a function of the round schedule: on time, late (and queued), or queued for the next."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta

import pytest

from crowdalpha.tournament import (
    CLASSIC,
    UploadKind,
    UploadTiming,
    classify_upload,
    round_number_on,
    schedule_round,
    upload_timing,
)

TUESDAY = date(2026, 4, 7)
SATURDAY = date(2026, 4, 11)
TUE = round_number_on(CLASSIC, TUESDAY)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def with_late_window(hours: float | None):
    return dataclasses.replace(
        CLASSIC, submissions=dataclasses.replace(CLASSIC.submissions, late_window_hours=hours)
    )


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (
            at(TUESDAY, 11, 59),
            UploadTiming(UploadKind.LATE, TUE - 1, queued_for=TUE),
        ),  # Saturday's late window
        (at(TUESDAY, 12), UploadTiming(UploadKind.ON_TIME, TUE)),
        (at(TUESDAY, 12, 59), UploadTiming(UploadKind.ON_TIME, TUE)),
        (at(TUESDAY, 13), UploadTiming(UploadKind.LATE, TUE, queued_for=TUE + 1)),
        (at(TUESDAY + timedelta(days=1), 11, 59), UploadTiming(UploadKind.LATE, TUE, queued_for=TUE + 1)),
        (at(TUESDAY + timedelta(days=1), 12), UploadTiming(UploadKind.ON_TIME, TUE + 1)),
        (at(SATURDAY + timedelta(days=1), 13, 59), UploadTiming(UploadKind.ON_TIME, TUE + 4)),  # Sunday
        (
            at(SATURDAY + timedelta(days=2), 9),
            UploadTiming(UploadKind.LATE, TUE + 4, queued_for=TUE + 5),
        ),  # Monday
    ],
)
def test_by_default_uploads_between_rounds_are_late_and_queued_for_the_next(moment, expected):
    assert upload_timing(CLASSIC, moment) == expected


def test_with_no_late_window_uploads_after_close_are_only_queued():
    config = with_late_window(0)
    assert upload_timing(config, at(TUESDAY, 13)) == UploadTiming(
        UploadKind.QUEUED, TUE + 1, queued_for=TUE + 1
    )
    assert upload_timing(config, at(TUESDAY, 12, 30)) == UploadTiming(UploadKind.ON_TIME, TUE)


def test_a_two_hour_late_window_then_queues():
    config = with_late_window(2)
    assert upload_timing(config, at(TUESDAY, 14, 59)).kind == UploadKind.LATE
    assert upload_timing(config, at(TUESDAY, 15)) == UploadTiming(
        UploadKind.QUEUED, TUE + 1, queued_for=TUE + 1
    )


def test_uploads_before_the_first_round_are_queued_for_it():
    assert upload_timing(CLASSIC, at(date(2000, 1, 3), 12)) == UploadTiming(
        UploadKind.QUEUED, 1, queued_for=1
    )


def test_an_off_calendar_round_without_a_successor_queues_for_the_next_number():
    opened = at(TUESDAY, 15)
    adhoc = schedule_round(CLASSIC, 7000, opened, opened + timedelta(hours=1))
    assert classify_upload([adhoc], opened + timedelta(minutes=30)).kind == UploadKind.ON_TIME
    assert classify_upload([adhoc], opened + timedelta(hours=2)) == UploadTiming(
        UploadKind.QUEUED, 7001, queued_for=7001
    )
    assert classify_upload([adhoc], opened - timedelta(hours=2)) == UploadTiming(
        UploadKind.QUEUED, 7000, queued_for=7000
    )
    with pytest.raises(ValueError, match="at least one round"):
        classify_upload([], opened)
