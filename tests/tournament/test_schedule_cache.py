"""Round schedules are computed once per (config, round) and equal what a fresh computation gives."""

from __future__ import annotations

import dataclasses
from datetime import date

from crowdalpha.tournament.calendar import round_schedule, score_times
from crowdalpha.tournament.config import DEFAULT_TOURNAMENTS

CLASSIC = DEFAULT_TOURNAMENTS["classic"]


def test_a_schedule_asked_again_is_the_same_object_and_equals_a_fresh_one():
    first = round_schedule(CLASSIC, 1200)
    assert round_schedule(CLASSIC, 1200) is first
    assert round_schedule.__wrapped__(CLASSIC, 1200) == first
    assert score_times(CLASSIC, first.round_date) == first.score_times


def test_an_equal_config_shares_the_cache_and_a_different_one_does_not():
    copy = dataclasses.replace(CLASSIC)
    assert round_schedule(copy, 1201) is round_schedule(CLASSIC, 1201)
    lagged = dataclasses.replace(CLASSIC, lag_days=CLASSIC.lag_days + 1)
    opened_on = date(2026, 1, 6)
    assert score_times(lagged, opened_on)[:-1] == score_times(CLASSIC, opened_on)[1:]
    assert score_times(lagged, opened_on) == score_times.__wrapped__(lagged, opened_on)
