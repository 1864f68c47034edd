"""The home's clock: the wall clock, unless an operator set a fixed moment with ``crowdalpha clock set``.

The moment is persisted as ``<home>/clock.json`` so that every later command (and the server)
started on the same home sees the same "now" — a settable clock for demos, rehearsals and tests.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from crowdalpha.settings import Settings
from crowdalpha.tournament.calendar import as_utc
from crowdalpha.tournament.clock import Clock, SettableClock, WallClock

CLOCK_FILENAME = "clock.json"


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


class HomeClock:
    """The home's clock, read afresh at every ``now()`` so a running server follows ``clock set``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def now(self) -> datetime:
        """Return the home's current moment (UTC)."""
        return home_clock(self.settings).now()
