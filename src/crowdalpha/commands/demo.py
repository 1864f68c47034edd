"""``crowdalpha demo``: build a demo tournament with a simulated crowd, print it, then serve it."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from crowdalpha.commands._progress import stage_bars
from crowdalpha.service import ServiceError, user_message
from crowdalpha.sim.demo import DEMO_ACCOUNT, DemoError, DemoOptions, DemoResult, run_demo
from crowdalpha.tournament.submissions import SubmissionError

DEFAULT_DEMO_HOME = Path(".crowdalpha-demo")


def numerapi_lines(url: str, public_id: str, secret_key: str) -> str:
    """Return the three lines of Python that point numerapi at ``url`` with the given key."""
    return (
        "import numerapi, numerapi.base_api\n"
        f'numerapi.base_api.API_TOURNAMENT_URL = "{url}/graphql"\n'
        f'napi = numerapi.NumerAPI(public_id="{public_id}", secret_key="{secret_key}")'
    )


def _render(console: Console, result: DemoResult, seconds: float) -> None:
    table = Table(title=f"demo home {result.settings.home} — built in {seconds:.0f} s")
    for column in ("tournament", "round", "model", "strategy", "rows", "receipt sha256"):
        table.add_column(column)
    for item in result.submissions:
        table.add_row(
            item.tournament,
            str(result.rounds[item.tournament]),
            item.model,
            item.strategy,
            f"{item.rows:,}",
            item.sha256[:16] + "…",
        )
    console.print(table)
    for tournament, reason in result.skipped.items():
        console.print(f"{tournament}: published, no round run — {reason}")


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
    no_serve: bool = typer.Option(False, "--no-serve", help="Build and print, then exit without serving."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to serve on."),
    port: int = typer.Option(8000, "--port", help="TCP port to serve on."),
) -> None:
    """Run a demo tournament: markets, datasets, a simulated crowd submitting, then the server."""
    console = Console()
    errors = Console(stderr=True)
    started = time.monotonic()
    options = DemoOptions(home=home, assets=assets, days=days, seed=seed, market=market)
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
