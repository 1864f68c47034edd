"""The trading calendar of a market panel: its dates, weekly era dates, and trading-day arithmetic.

The calendar is the set of dates on which the panel has at least one row — no exchange holiday
tables: a day is a trading day because the operator's data says so. Weeks run Monday to Sunday
(ISO weeks), so an era date is the last trading day of its week (usually a Friday; the Thursday
before a Good Friday; a Sunday for a crypto market that trades every day).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _as_calendar(calendar: pd.DataFrame | pd.DatetimeIndex | pd.Series) -> pd.DatetimeIndex:
    if isinstance(calendar, pd.DataFrame):
        return trading_dates(calendar)
    dates = pd.DatetimeIndex(pd.unique(pd.DatetimeIndex(calendar))).sort_values()
    return pd.DatetimeIndex(dates.normalize(), name="date")


def trading_dates(panel: pd.DataFrame) -> pd.DatetimeIndex:
    """Return the panel's trading dates (days with at least one row), ascending and unique."""
    dates = pd.DatetimeIndex(pd.unique(panel["date"])).sort_values()
    return pd.DatetimeIndex(dates, name="date")


def weekly_era_dates(
    calendar: pd.DataFrame | pd.DatetimeIndex | pd.Series, *, drop_incomplete_last_week: bool = True
) -> pd.DatetimeIndex:
    """Return one date per week: the last trading day of each Monday–Sunday week, ascending.

    The calendar's final week is *incomplete* when its last date falls on an earlier weekday than
    the latest weekday the calendar ever trades (e.g. data ends on a Wednesday in a Monday–Friday
    market); its era date would move as data arrives, so it is dropped unless asked otherwise.
    """
    dates = _as_calendar(calendar)
    if len(dates) == 0:
        return pd.DatetimeIndex([], name="date")
    week_start = (dates - pd.to_timedelta(dates.day_of_week, unit="D")).to_numpy()
    last_of_week = np.r_[week_start[1:] != week_start[:-1], True]
    eras = dates[last_of_week]
    if drop_incomplete_last_week and eras[-1].weekday() < int(dates.day_of_week.max()):
        eras = eras[:-1]
    return pd.DatetimeIndex(eras, name="date")


def trading_day_positions(
    dates: pd.DatetimeIndex | pd.Series | list, calendar: pd.DataFrame | pd.DatetimeIndex | pd.Series
) -> np.ndarray:
    """Return the 0-based position of each date in the calendar; raise ValueError for a non-trading date."""
    calendar = _as_calendar(calendar)
    wanted = pd.DatetimeIndex(dates).normalize()
    positions = calendar.get_indexer(wanted)
    if (positions < 0).any():
        missing = [d.strftime("%Y-%m-%d") for d in wanted[positions < 0][:3]]
        raise ValueError(f"rule: dates must be trading dates of the panel — not in the calendar: {missing}")
    return positions.astype(np.intp)


def shift_trading_days(
    dates: pd.DatetimeIndex | pd.Series | list,
    k: int,
    calendar: pd.DataFrame | pd.DatetimeIndex | pd.Series,
) -> pd.DatetimeIndex:
    """Return each date moved by ``k`` trading days (see :func:`add_trading_days`); NaT past either end."""
    calendar = _as_calendar(calendar)
    wanted = pd.DatetimeIndex(dates).normalize()
    if k > 0:
        positions = calendar.searchsorted(wanted, side="right") - 1 + k
    elif k < 0:
        positions = calendar.searchsorted(wanted, side="left") + k
    else:
        positions = calendar.get_indexer(wanted)
        if (positions < 0).any():
            missing = [d.strftime("%Y-%m-%d") for d in wanted[positions < 0][:3]]
            raise ValueError(f"rule: shifting by 0 trading days needs trading dates — not trading: {missing}")
    inside = (positions >= 0) & (positions < len(calendar))
    result = np.full(len(wanted), np.datetime64("NaT"), dtype="datetime64[ns]")
    result[inside] = calendar.to_numpy()[positions[inside]]
    return pd.DatetimeIndex(result, name="date")


def add_trading_days(
    date: pd.Timestamp | str, k: int, calendar: pd.DataFrame | pd.DatetimeIndex | pd.Series
) -> pd.Timestamp:
    """Return the trading date ``k`` trading days after ``date`` (before, for negative ``k``).

    From a non-trading day, ``k = 1`` is the next trading day and ``k = -1`` the previous one;
    ``k = 0`` requires a trading day. Raises ValueError when the result lies outside the calendar
    (e.g. the future, which a panel's calendar cannot know yet).
    """
    shifted = shift_trading_days([pd.Timestamp(date)], k, calendar)[0]
    if pd.isna(shifted):
        raise ValueError(
            f"rule: {pd.Timestamp(date):%Y-%m-%d} {k:+d} trading days lies outside the calendar "
            f"({_as_calendar(calendar)[0]:%Y-%m-%d} … {_as_calendar(calendar)[-1]:%Y-%m-%d})"
        )
    return pd.Timestamp(shifted)
