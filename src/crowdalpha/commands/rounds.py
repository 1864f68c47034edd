"""``crowdalpha round …``: open, close and inspect rounds; ``tick`` runs the transitions that are due."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from crowdalpha.commands._operator import (
    HOME_OPTION,
    JSON_OPTION,
    UsageProblem,
    emit,
    home_context,
    operator_errors,
    parse_duration,
)
from crowdalpha.ledger.amounts import format_tokens
from crowdalpha.service import (
    RoundStatus,
    ScoreDayReport,
    close_round,
    open_round,
    round_status,
    score_day,
    tick,
)
from crowdalpha.service.resolution import ResolvedRound, resolve_round
from crowdalpha.service.rounds import TICK_STEPS
from crowdalpha.tournament.rounds import JobStep

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


def _tick_steps(text: str | None) -> tuple[JobStep, ...]:
    """Return the job steps a comma-separated ``--steps`` names; a usage error names an unknown one."""
    if text is None:
        return TICK_STEPS
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = {step.value: step for step in TICK_STEPS}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise typer.BadParameter(
            f"unknown step {', '.join(map(repr, unknown)) or '(none given)'};"
            f" name some of {', '.join(known)}, comma-separated",
            param_hint="--steps",
        )
    return tuple(known[name] for name in names)


@round_app.command("tick")
def round_tick(
    steps: str | None = typer.Option(
        None,
        "--steps",
        help="Run only these job steps, comma-separated (open,close,score,resolve; default: all)."
        " Every due job is still enqueued: e.g. one process ticks `--steps score` as a score worker"
        " while another ticks `--steps open,close,resolve`.",
    ),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the round jobs (open, close, score, resolve) that are due on the calendar, each once."""
    chosen = _tick_steps(steps)
    with operator_errors(), home_context(home) as ctx:
        report = tick(ctx, steps=chosen)
    text = [f"tick at {report.now.isoformat()}"]
    text += [f"  created {name}" for name in report.created_rounds]
    text += [f"  ran     {key}" for key in report.ran]
    text += [f"  waiting {key}: {message}" for key, message in report.waiting.items()]
    text += [f"  FAILED  {key}: {message}" for key, message in report.failed.items()]
    emit(report, as_json, "\n".join(text) if len(text) > 1 else f"{text[0]}: nothing due")
    if report.failed:
        raise typer.Exit(code=2)


def _describe_scores(report: ScoreDayReport) -> str:
    lines = [f"{report.tournament}: scored with market data through {report.through.isoformat()}"]
    lines += [
        f"  round {day.round_number} day {day.day:>2} (returns through {day.market_date.isoformat()}):"
        f" {day.submissions} submissions, {', '.join(day.scores)}"
        for day in report.scored
    ]
    lines += [f"  round {number} waiting: {reason}" for number, reason in report.waiting.items()]
    lines += [f"  {name} not computed: {reason}" for name, reason in report.skipped_scores.items()]
    lines += [f"  submission {sid} not scored: {why}" for sid, why in report.unscored_submissions.items()]
    if not report.scored:
        lines.append("  no new score day was computable")
    return "\n".join(lines)


@round_app.command("score")
def round_score(
    tournament: str = typer.Option("classic", "--tournament", help=TOURNAMENT_HELP),
    on: str | None = typer.Option(
        None,
        "--date",
        help="Score with the market data through this date (YYYY-MM-DD; default: all ingested).",
    ),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Store every score day of the closed rounds that the ingested market data makes computable."""
    with operator_errors():
        through = _parse_date(on) if on is not None else None
        with home_context(home) as ctx:
            report = score_day(ctx, tournament, date=through)
    emit(report, as_json, _describe_scores(report))


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UsageProblem(f"invalid_date: write a date as YYYY-MM-DD; got {value!r}") from None


def _describe_resolution(resolved: ResolvedRound) -> str:
    word = "was resolved already" if resolved.already else "resolved"
    lines = [
        f"{resolved.tournament} round {resolved.number} {word}: payout factor {resolved.payout_factor:.6g},"
        f" {format_tokens(resolved.total_at_risk_nano)} tokens at risk,"
        f" {format_tokens(resolved.paid_nano)} paid, {format_tokens(resolved.burned_nano)} burned"
    ]
    lines += [f"  {model}: {format_tokens(amount)}" for model, amount in sorted(resolved.payouts.items())]
    return "\n".join(lines)


@round_app.command("resolve")
def round_resolve(
    tournament: str = typer.Option("classic", "--tournament", help=TOURNAMENT_HELP),
    number: int = typer.Option(..., "--round", help="The round number to resolve."),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Resolve a fully scored round: pay or burn every at-risk stake through the ledger, exactly once."""
    with operator_errors(), home_context(home) as ctx:
        resolved = resolve_round(ctx, tournament, number)
    emit(resolved, as_json, _describe_resolution(resolved))
