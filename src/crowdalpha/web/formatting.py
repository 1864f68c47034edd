"""How the pages write times, sizes, durations, tokens, scores and returns (the templates' Jinja2 filters)."""

from __future__ import annotations

from datetime import datetime, timedelta

from crowdalpha.ledger.amounts import format_tokens

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def when(moment: datetime | None) -> str:
    """Return a UTC moment as ``2026-01-06 12:00:00 UTC`` (an em dash for none)."""
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def filesize(size_bytes: int) -> str:
    """Return a size in bytes in binary units: ``512 B``, ``47.8 KiB``, ``1.5 GiB``."""
    if size_bytes < 1024:
        return f"{size_bytes} B"
    value = float(size_bytes)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            break
    return f"{value:.1f} {unit}"


def duration(span: timedelta) -> str:
    """Return a span in its two largest units: ``2d 3h``, ``1h 5m``, ``4m 20s`` (negative spans are 0)."""
    seconds = max(int(span.total_seconds()), 0)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s"


def tokens(nano: int | None) -> str:
    """Return nano-tokens as exact token text (``12.5``), an em dash for none."""
    return "—" if nano is None else format_tokens(nano)


def score(value: float | None, digits: int = 4) -> str:
    """Return a score with ``digits`` decimals and its sign (``+0.0123``), an em dash for none."""
    return "—" if value is None else f"{value:+.{digits}f}"


def percent(fraction: float | None) -> str:
    """Return a fraction as a signed percentage with two decimals (``+1.25 %``), an em dash for none."""
    return "—" if fraction is None else f"{fraction * 100:+.2f} %"
