"""``crowdalpha demo``: run a demo season with a simulated crowd, print its results, then serve it."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from crowdalpha.commands._progress import stage_bars
from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.service import ServiceError, user_message
from crowdalpha.sim.demo import (
    DEFAULT_ROUNDS,
    DEMO_ACCOUNT,
    TOURNAMENTS,
    DemoError,
    DemoOptions,
    DemoResult,
    run_demo,
)
from crowdalpha.sim.integrity import IntegrityCheck
from crowdalpha.tournament.submissions import SubmissionError

DEFAULT_DEMO_HOME = Path(".crowdalpha-demo")
ROUND_STATES = ("upcoming", "open", "closed", "scoring", "resolved")


def numerapi_lines(url: str, public_id: str, secret_key: str) -> str:
    """Return the three lines of Python that point numerapi at ``url`` with the given key."""
    return (
        "import numerapi, numerapi.base_api\n"
        f'numerapi.base_api.API_TOURNAMENT_URL = "{url}/graphql"\n'
        f'napi = numerapi.NumerAPI(public_id="{public_id}", secret_key="{secret_key}")'
    )


def _tokens(nano: int) -> str:
    return f"{nano / NANO_PER_TOKEN:,.2f}"


def _render(console: Console, result: DemoResult, seconds: float) -> None:
    figures = result.figures
    days = result.season.days
    console.print(
        f"demo home {result.settings.home} — {len(days)} trading days simulated"
        f" ({days[0].market_date} … {days[-1].market_date}) in {seconds:.0f} s"
        if days
        else f"demo home {result.settings.home} — no trading day simulated, built in {seconds:.0f} s"
    )
    states = Table(title="rounds per state")
    states.add_column("tournament")
    for state in ROUND_STATES:
        states.add_column(state, justify="right")
    for tournament in TOURNAMENTS:
        counts = figures.states_count(tournament)
        states.add_row(tournament, *(str(counts.get(state, 0)) for state in ROUND_STATES))
    console.print(states)
    board = Table(title="Classic leaderboard (final CORR20v2 and MMC over resolved rounds)")
    for column in ("model", "resolved", "mean CORR", "mean MMC", "stake now", "total payout"):
        board.add_column(column, justify="left" if column == "model" else "right")
    for row in result.leaderboards.get("classic", []):
        board.add_row(
            row.model,
            str(row.resolved_rounds),
            f"{row.mean_corr:+.4f}",
            f"{row.mean_mmc:+.4f}",
            _tokens(row.stake_nano),
            f"{row.payout_nano / NANO_PER_TOKEN:+,.2f}",
        )
    console.print(board)
    ledger, totals = result.ledger, result.ledger.totals
    console.print(
        f"ledger check: {'ok' if ledger.ok else f'{len(ledger.breaks)} breaks'} —"
        f" {ledger.transactions:,} transactions; minted {_tokens(totals.minted)},"
        f" burned {_tokens(totals.burned)}, treasury {_tokens(totals.treasury)},"
        f" circulating {_tokens(totals.circulating)} of the cap {_tokens(totals.cap)}"
    )
    failed = result.season.failed
    for key, message in sorted(failed.items())[:5]:
        console.print(f"job {key} failed: {message}")
    if len(failed) > 5:
        console.print(f"… and {len(failed) - 5} more failed jobs")
    for tournament, reason in result.skipped.items():
        console.print(f"{tournament}: published, no round run — {reason}")
    render_integrity(console, result.integrity)
    if result.report is not None:
        console.print(f"report: {result.report}")


def render_integrity(console: Console, integrity: Mapping[str, Sequence[IntegrityCheck]]) -> None:
    """Print each tournament's integrity checks: pass, fail or not measured, with their figures."""
    for tournament, checks in integrity.items():
        if all(check.passed is None for check in checks):
            console.print(
                f"{tournament} integrity checks: not measured (no resolved or scored rounds to judge)"
            )
            continue
        table = Table(title=f"{tournament} integrity checks")
        for column in ("result", "claim", "figures"):
            table.add_column(column)
        for check in checks:
            verdict = "not measured" if check.passed is None else ("pass" if check.passed else "FAIL")
            table.add_row(verdict, check.claim, check.detail)
        console.print(table)


def demo_command(
    home: Path = typer.Option(
        DEFAULT_DEMO_HOME, "--home", help="Demo home directory; an earlier demo home there is replaced."
    ),
    assets: int = typer.Option(400, "--assets", min=120, help="Synthetic equity assets per date."),
    days: int = typer.Option(800, "--days", min=300, help="Synthetic trading days of history."),
    seed: int = typer.Option(7, "--seed", help="Random seed of the markets and the crowd."),
    market: str = typer.Option(
        "synthetic", "--market", help="synthetic, or pse for the shipped real sample."
    ),
    rounds: int = typer.Option(
        DEFAULT_ROUNDS, "--rounds", min=1, help="Trading days of the season simulated after the history."
    ),
    no_serve: bool = typer.Option(False, "--no-serve", help="Build and print, then exit without serving."),
    fund: bool = typer.Option(
        False, "--fund", help="Add the fund backtest of the meta model to the report (about a minute more)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to serve on."),
    port: int = typer.Option(8000, "--port", help="TCP port to serve on."),
) -> None:
    """Run a demo season: markets, datasets, a crowd through rounds that score and resolve, then serve."""
    console = Console()
    errors = Console(stderr=True)
    started = time.monotonic()
    options = DemoOptions(
        home=home, assets=assets, days=days, seed=seed, market=market, rounds=rounds, fund_backtest=fund
    )
    try:
        with stage_bars(errors) as bars:
            result = run_demo(options, bars)
    except (DemoError, ServiceError, SubmissionError) as problem:
        typer.echo(f"error: {user_message(problem) or problem}", err=True)
        raise typer.Exit(code=2) from None
    _render(console, result, time.monotonic() - started)
    url = f"http://{host}:{port}"
    # plain echo, not rich: the key and the Python lines must never wrap, so they copy and paste
    typer.echo(f"\ndemo participant: {DEMO_ACCOUNT}, API key public id {result.demo_public_id}")
    typer.echo(f"                  secret key {result.demo_secret_key}")
    typer.echo("point numerapi at the demo server with:\n")
    typer.echo(numerapi_lines(url, result.demo_public_id, result.demo_secret_key))
    if no_serve:
        typer.echo(f"\nserve it later with: crowdalpha serve --home {result.settings.home} --port {port}")
        return
    from crowdalpha.commands.serve import serve_command

    serve_command(home=result.settings.home, host=host, port=port, tick_every=30.0, no_tick=False)
