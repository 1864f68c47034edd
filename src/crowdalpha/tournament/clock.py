"""The clock, as an interface: the one place the tournament's notion of "now" comes from.

Rules never read the time themselves; the service asks a :class:`Clock` and passes the moment in.
Production uses :class:`WallClock`; tests and the simulator use :class:`SettableClock`, which only
moves when told to — so the same code runs a live tournament and a season replay (DESIGN, "One
pipeline, two clocks"). Both return timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from crowdalpha.tournament.calendar import as_utc


@runtime_checkable
class Clock(Protocol):
    """Anything that can say what time it is."""

    def now(self) -> datetime:
        """Return the current moment as a timezone-aware UTC datetime."""
        ...


class WallClock:
    """The real time of the machine."""

    def now(self) -> datetime:
        """Return the machine's current time (UTC)."""
        return datetime.now(UTC)


class SettableClock:
    """A clock that stands still until set or advanced (tests, simulations, ``crowdalpha clock set``)."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start, "start")

    def now(self) -> datetime:
        """Return the moment the clock was last set to (UTC)."""
        return self._now

    def set(self, moment: datetime) -> datetime:
        """Move the clock to ``moment`` (forwards or back) and return it in UTC."""
        self._now = as_utc(moment, "moment")
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` (≥ 0) and return the new time (UTC)."""
        if delta < timedelta(0):
            raise ValueError(f"a clock only advances forwards; got {delta}")
        self._now = self._now + delta
        return self._now
