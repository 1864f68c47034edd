"""``crowdalpha round …``: open, close and inspect rounds; ``tick`` runs the transitions that are due."""

from __future__ import annotations

from pathlib import Path

import typer

from crowdalpha.commands._operator import (
    HOME_OPTION,
    JSON_OPTION,
    emit,
    home_context,
    operator_errors,
    parse_duration,
)
from crowdalpha.service import RoundStatus, close_round, open_round, round_status, tick

round_app = typer.Typer(help="Rounds: open, close, status, and the scheduler's tick.", no_args_is_help=True)

TOURNAMENT_HELP = "classic, signals, crypto (or a numerapi tournament id)."


def _describe(status: RoundStatus) -> str:
    lines = [
        f"{status.tournament} round {status.number}: {status.state}",
        f"  opens       {status.open_time.isoformat()}",
        f"  closes      {status.close_staking_time.isoformat()}"
        f" (late uploads until {status.close_time.isoformat()})",
        f"  live data   {status.live_file or '-'} ({status.universe_size or 0} ids in the universe)",
        f"  submissions {status.selected_submissions} selected",
        f"  now         {status.now.isoformat()}",
    ]
    return "\n".join(lines)


@round_app.command("open")
def round_open(
    tournament: str = typer.Option("classic", "--tournament", help=TOURNAMENT_HELP),
    close_in: str | None = typer.Option(
        None, "--close-in", help="Open a round now, off the calendar, closing after this long (e.g. 1h)."
    ),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Open the round whose calendar window is open now (or, with --close-in, one now); publish its data."""
    with operator_errors():
        duration = parse_duration(close_in) if close_in is not None else None
        with home_context(home) as ctx:
            status = open_round(ctx, tournament, close_in=duration)
    emit(status, as_json, _describe(status))


@round_app.command("close")
def round_close(
    tournament: str = typer.Option("classic", "--tournament", help=TOURNAMENT_HELP),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Close the open round now; later uploads count as late."""
    with operator_errors(), home_context(home) as ctx:
        status = close_round(ctx, tournament)
    emit(status, as_json, _describe(status))


@round_app.command("status")
def round_status_command(
    tournament: str = typer.Option("classic", "--tournament", help=TOURNAMENT_HELP),
    number: int | None = typer.Option(None, "--round", help="A round number (default: the current round)."),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a round's state, times, live data and submissions."""
    with operator_errors(), home_context(home) as ctx:
        status = round_status(ctx, tournament, number)
    emit(status, as_json, _describe(status))


@round_app.command("tick")
def round_tick(home: Path | None = HOME_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Run the round transitions (open, close) that are due on the calendar, each once."""
    with operator_errors(), home_context(home) as ctx:
        report = tick(ctx)
    text = [f"tick at {report.now.isoformat()}"]
    text += [f"  created {name}" for name in report.created_rounds]
    text += [f"  ran     {key}" for key in report.ran]
    text += [f"  FAILED  {key}: {message}" for key, message in report.failed.items()]
    emit(report, as_json, "\n".join(text) if len(text) > 1 else f"{text[0]}: nothing due")
    if report.failed:
        raise typer.Exit(code=2)
