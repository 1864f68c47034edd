"""The trading calendar: trading dates, weekly era dates, trading-day arithmetic."""

from __future__ import annotations

import pandas as pd
import pytest

from crowdalpha.market.calendar import (
    add_trading_days,
    shift_trading_days,
    trading_dates,
    trading_day_positions,
    weekly_era_dates,
)

# Mon 2024-03-25 … Fri 2024-04-12 with Good Friday (2024-03-29) and Easter Monday (2024-04-01) closed
CALENDAR = pd.DatetimeIndex(
    [
        d
        for d in pd.bdate_range("2024-03-25", "2024-04-12")
        if d not in (pd.Timestamp("2024-03-29"), pd.Timestamp("2024-04-01"))
    ]
)


def test_trading_dates_are_the_unique_panel_dates_ascending(panel):
    dates = trading_dates(panel)
    assert dates.is_monotonic_increasing and dates.is_unique
    assert len(dates) == panel["date"].nunique() == 320


def test_era_dates_are_the_last_trading_day_of_each_week():
    eras = weekly_era_dates(CALENDAR)
    assert list(eras.strftime("%Y-%m-%d")) == ["2024-03-28", "2024-04-05", "2024-04-12"]


def test_an_incomplete_last_week_is_dropped_unless_asked():
    calendar = CALENDAR[CALENDAR <= "2024-04-10"]
    assert weekly_era_dates(calendar)[-1] == pd.Timestamp("2024-04-05")
    assert weekly_era_dates(calendar, drop_incomplete_last_week=False)[-1] == pd.Timestamp("2024-04-10")


def test_a_seven_day_market_ends_its_weeks_on_sunday():
    calendar = pd.date_range("2024-01-01", "2024-01-21", freq="D")
    assert list(weekly_era_dates(calendar).day_name()) == ["Sunday"] * 3


def test_era_dates_of_a_panel_are_fridays(panel):
    eras = weekly_era_dates(panel)
    assert (eras.day_of_week == 4).all()
    assert len(eras) == 64


def test_add_trading_days_skips_holidays_and_weekends():
    assert add_trading_days("2024-03-28", 1, CALENDAR) == pd.Timestamp("2024-04-02")
    assert add_trading_days("2024-04-02", -1, CALENDAR) == pd.Timestamp("2024-03-28")
    assert add_trading_days("2024-03-25", 5, CALENDAR) == pd.Timestamp("2024-04-03")
    assert add_trading_days("2024-04-05", 0, CALENDAR) == pd.Timestamp("2024-04-05")


def test_from_a_non_trading_day_one_step_is_the_neighbouring_trading_day():
    assert add_trading_days("2024-03-30", 1, CALENDAR) == pd.Timestamp("2024-04-02")
    assert add_trading_days("2024-03-30", -1, CALENDAR) == pd.Timestamp("2024-03-28")
    with pytest.raises(ValueError, match="needs trading dates"):
        add_trading_days("2024-03-30", 0, CALENDAR)


def test_dates_beyond_the_calendar_are_unknown():
    with pytest.raises(ValueError, match="outside the calendar"):
        add_trading_days("2024-04-11", 2, CALENDAR)
    shifted = shift_trading_days(["2024-04-10", "2024-04-11"], 2, CALENDAR)
    assert shifted[0] == pd.Timestamp("2024-04-12")
    assert pd.isna(shifted[1])


def test_add_trading_days_accepts_a_panel(panel):
    first = panel["date"].iloc[0]
    assert add_trading_days(first, 5, panel) == trading_dates(panel)[5]


def test_positions_reject_non_trading_dates():
    assert list(trading_day_positions(["2024-03-25", "2024-04-02"], CALENDAR)) == [0, 4]
    with pytest.raises(ValueError, match=r"not in the calendar: \['2024-03-29'\]"):
        trading_day_positions(["2024-03-29"], CALENDAR)
