"""``crowdalpha init`` and ``crowdalpha clock …``: create a tournament home; set or clear its clock."""

from __future__ import annotations

from pathlib import Path

import typer

from crowdalpha.commands._operator import (
    HOME_OPTION,
    JSON_OPTION,
    emit,
    operator_errors,
    parse_moment,
    settings_for,
)
from crowdalpha.service import clear_clock, home_clock, init_home, set_clock
from crowdalpha.service.clock import clock_state

clock_app = typer.Typer(
    help="The home's clock: the wall clock, or a moment fixed for rehearsals.", no_args_is_help=True
)


def init_command(home: Path | None = HOME_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Create the home: directory, migrated database, blob store and the default tournaments (idempotent)."""
    with operator_errors():
        report = init_home(settings_for(home))
    created = ", ".join(report.created_tournaments) or "none (all present)"
    emit(
        report,
        as_json,
        f"home {report.home}\ndatabase {report.database_url} (revision {report.revision})\n"
        f"blobs {report.storage_url}\ntournaments {', '.join(report.tournaments)}; added: {created}",
    )


@clock_app.command("set")
def clock_set(
    moment: str = typer.Argument(..., help="ISO 8601 date-time, e.g. 2026-01-06T12:30Z (no offset = UTC)."),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Fix the home's clock at a moment; every later command on this home uses it."""
    with operator_errors():
        now = set_clock(settings_for(home), parse_moment(moment))
    emit({"clock": "set", "now": now}, as_json, f"clock set to {now.isoformat()}")


@clock_app.command("clear")
def clock_clear(home: Path | None = HOME_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Return the home to the wall clock."""
    with operator_errors():
        settings = settings_for(home)
        cleared = clear_clock(settings)
        now = home_clock(settings).now()
    emit(
        {"clock": "wall", "cleared": cleared, "now": now},
        as_json,
        f"clock back to wall time ({now.isoformat()})" if cleared else "the clock was not set; wall time",
    )


@clock_app.command("show")
def clock_show(home: Path | None = HOME_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Print the home's current time and whether it is set or the wall clock."""
    with operator_errors():
        state = clock_state(settings_for(home))
    emit(state, as_json, f"{state.now.isoformat()} ({state.clock} clock)")
