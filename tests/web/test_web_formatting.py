"""How the pages write times, sizes and durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crowdalpha.web.formatting import duration, filesize, when


def test_moments_are_written_in_utc_and_none_as_a_dash() -> None:
    assert when(datetime(2026, 1, 6, 12, 0, 5, tzinfo=UTC)) == "2026-01-06 12:00:05 UTC"
    assert when(None) == "—"


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (48_947, "47.8 KiB"), (3 * 1024**3 // 2, "1.5 GiB")],
)
def test_sizes_use_binary_units(size: int, text: str) -> None:
    assert filesize(size) == text


def test_huge_sizes_stay_in_the_largest_unit() -> None:
    assert filesize(5 * 1024**5) == "5120.0 TiB"


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(seconds=-5), "0m 0s"),
        (timedelta(minutes=50), "50m 0s"),
        (timedelta(hours=2, minutes=1, seconds=9), "2h 1m"),
        (timedelta(days=3, hours=4, minutes=59), "3d 4h"),
    ],
)
def test_durations_show_their_two_largest_units(span: timedelta, text: str) -> None:
    assert duration(span) == text
