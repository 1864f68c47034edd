"""``crowdalpha simulate CONFIG.toml``: replay a season with a simulated crowd; write tables and a report."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

from crowdalpha.commands._progress import stage_bars
from crowdalpha.commands.demo import render_integrity
from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.service import ServiceError, user_message
from crowdalpha.sim.counterfactual import counterfactual_totals
from crowdalpha.sim.simulate import SimulationError, run_simulation
from crowdalpha.sim.simulate_config import load_simulation_spec
from crowdalpha.tournament.submissions import SubmissionError


def simulate_command(
    config: Path = typer.Argument(..., help="The season's TOML file (see examples/season.toml)."),
    home: Path | None = typer.Option(
        None, "--home", help="Directory for the season's home, report and tables (overrides the file's home)."
    ),
) -> None:
    """Run the season a TOML file declares; write every score, stake and payout to Parquet, and a report."""
    console = Console()
    errors = Console(stderr=True)
    started = time.monotonic()
    try:
        spec = load_simulation_spec(config, home=home)
        with stage_bars(errors) as bars:
            result = run_simulation(spec, bars)
    except (SimulationError, ServiceError, SubmissionError) as problem:
        typer.echo(f"error: {user_message(problem) or problem}", err=True)
        raise typer.Exit(code=2) from None
    outcome = result.outcome
    days = result.season.days
    console.print(
        f"season of {len(days)} trading days simulated in {time.monotonic() - started:.0f} s;"
        f" home {result.settings.home}"
    )
    ledger = outcome.ledger
    console.print(
        f"ledger check: {'ok' if ledger.ok else f'{len(ledger.breaks)} breaks'} —"
        f" burned {ledger.totals.burned / NANO_PER_TOKEN:,.2f} tokens,"
        f" {ledger.transactions:,} transactions"
    )
    render_integrity(console, outcome.integrity)
    if outcome.counterfactual is not None and len(outcome.counterfactual):
        totals = counterfactual_totals(outcome.counterfactual) / NANO_PER_TOKEN
        totals.columns = [column.removeprefix("payout_") for column in totals.columns]
        console.print("counterfactual payouts (season totals in tokens):")
        console.print(totals.round(2).to_string())
    for tournament, reason in result.skipped.items():
        console.print(f"{tournament}: published, no round run — {reason}")
    for name, path in sorted(outcome.tables.items()):
        console.print(f"table {name}: {path}")
    console.print(f"report: {outcome.report}")
