"""The home's clock: the wall clock, unless an operator set a fixed moment with ``crowdalpha clock set``.

The moment is persisted as ``<home>/clock.json`` so that every later command (and the server)
started on the same home sees the same "now" — a settable clock for demos, rehearsals and tests.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crowdalpha.service.errors import ServiceError
from crowdalpha.settings import Settings
from crowdalpha.tournament.calendar import as_utc
from crowdalpha.tournament.clock import Clock, SettableClock, WallClock

CLOCK_FILENAME = "clock.json"
_DURATION_PART = re.compile(r"(\d+)\s*([dhms])")
_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def clock_path(settings: Settings) -> Path:
    """Return the path of the file that holds the home's set clock."""
    return settings.home / CLOCK_FILENAME


def set_clock(settings: Settings, moment: datetime) -> datetime:
    """Fix the home's clock at ``moment`` (timezone-aware) and return it in UTC."""
    moment = as_utc(moment, "moment")
    settings.home.mkdir(parents=True, exist_ok=True)
    path = clock_path(settings)
    temporary = path.with_suffix(".json.partial")
    temporary.write_text(json.dumps({"now": moment.isoformat()}) + "\n")
    os.replace(temporary, path)
    return moment


def clear_clock(settings: Settings) -> bool:
    """Return the home to the wall clock; return whether a set clock was cleared."""
    try:
        clock_path(settings).unlink()
    except FileNotFoundError:
        return False
    return True


def home_clock(settings: Settings) -> Clock:
    """Return the home's clock: a SettableClock at the persisted moment, else the wall clock."""
    try:
        document = json.loads(clock_path(settings).read_text())
    except FileNotFoundError:
        return WallClock()
    return SettableClock(datetime.fromisoformat(document["now"]))


@dataclass(frozen=True)
class ClockState:
    """The home's clock as an operator sees it: ``set`` (a fixed moment) or ``wall``, and its now (UTC)."""

    clock: str
    now: datetime


def clock_state(settings: Settings) -> ClockState:
    """Return whether the home's clock is set or the wall clock, and its current moment."""
    clock = home_clock(settings)
    return ClockState("set" if isinstance(clock, SettableClock) else "wall", clock.now())


class HomeClock:
    """The home's clock, read afresh at every ``now()`` so a running server follows ``clock set``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def now(self) -> datetime:
        """Return the home's current moment (UTC)."""
        return home_clock(self.settings).now()


def parse_duration(value: str) -> timedelta:
    """Return a duration written like ``1h``, ``30m``, ``90s``, ``2d`` or ``1h30m``; else invalid_duration."""
    text = value.strip().lower()
    parts = _DURATION_PART.findall(text)
    if not parts or _DURATION_PART.sub("", text).strip():
        raise ServiceError("invalid_duration", f"write a duration like 1h, 30m, 90s or 1h30m; got {value!r}")
    return sum((timedelta(**{_DURATION_UNITS[unit]: int(amount)}) for amount, unit in parts), timedelta(0))


def parse_moment(value: str) -> datetime:
    """Return an ISO 8601 date-time (``2026-01-06T12:30``, ``…Z``, ``…+02:00``) in UTC; no offset is UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ServiceError(
            "invalid_datetime", f"write an ISO 8601 date-time such as 2026-01-06T12:30Z; got {value!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
