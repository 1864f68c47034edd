"""The ``crowdalpha`` command: thin entry points that parse, call the rooms below, and print."""

from __future__ import annotations

import typer

import crowdalpha.commands.market_data  # noqa: F401  (registers market synth/sample)
from crowdalpha import __version__
from crowdalpha.commands.accounts import account_app
from crowdalpha.commands.benchmarks import benchmarks_app
from crowdalpha.commands.dataset import dataset_app
from crowdalpha.commands.demo import demo_command
from crowdalpha.commands.fund import fund_app
from crowdalpha.commands.home import clock_app, init_command
from crowdalpha.commands.ledger import ledger_app
from crowdalpha.commands.market import market_app
from crowdalpha.commands.models import model_app
from crowdalpha.commands.rounds import round_app, round_tick
from crowdalpha.commands.score import score_command
from crowdalpha.commands.serve import serve_command
from crowdalpha.commands.simulate import simulate_command

app = typer.Typer(
    name="crowdalpha",
    help="Self-hostable server for a crowdsourced prediction tournament in the style of Numerai.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crowdalpha {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Self-hostable server for a crowdsourced prediction tournament in the style of Numerai."""


app.command("score", help="Score predictions era by era against a Numerai-format data file.")(score_command)
app.add_typer(market_app, name="market")
app.add_typer(dataset_app, name="dataset")
app.add_typer(benchmarks_app, name="benchmarks")
app.command("init", help="Create a tournament home: database, blob store, default tournaments.")(init_command)
app.add_typer(account_app, name="account")
app.add_typer(model_app, name="model")
app.add_typer(round_app, name="round")
app.command(
    "tick", help="Run every due round job once: opens, closes, scores, resolves (what the scheduler calls)."
)(round_tick)
app.add_typer(clock_app, name="clock")
app.add_typer(ledger_app, name="ledger")
app.command("serve", help="Serve the tournament API (numerapi-compatible GraphQL) and run the round tick.")(
    serve_command
)


app.command("demo", help="Run a demo tournament with a simulated crowd, then serve it.")(demo_command)
app.command("simulate", help="Replay a season from a TOML file; write its Parquet tables and report.")(
    simulate_command
)
app.add_typer(fund_app, name="fund")
