"""``crowdalpha serve``: the API server (GraphQL for numerapi, file routes, health) plus the tick loop.

The tick loop runs ``service.tick`` every ``--tick-every`` seconds in a background thread, so rounds
open and close on the calendar while the server runs; several servers on one home are safe (each
transition is a job that runs once). ``--no-tick`` leaves the transitions to another process.
"""

from __future__ import annotations

import threading
from pathlib import Path

import typer
import uvicorn

from crowdalpha.api import create_app
from crowdalpha.commands._operator import HOME_OPTION, home_context, operator_errors
from crowdalpha.service import Context, HomeClock, tick, user_message

DEFAULT_TICK_SECONDS = 30.0


def run_tick_loop(ctx: Context, every_seconds: float, stop: threading.Event) -> None:
    """Run ``tick`` now and then every ``every_seconds`` until ``stop`` is set; report what it did."""
    while not stop.is_set():
        try:
            report = tick(ctx)
        except Exception as error:  # the loop must outlive a failed tick (e.g. the database restarting)
            typer.echo(f"tick failed: {user_message(error) or repr(error)}", err=True)
        else:
            for key in report.ran:
                typer.echo(f"tick: ran {key}")
            for key, message in report.failed.items():
                typer.echo(f"tick: FAILED {key}: {message}", err=True)
        stop.wait(every_seconds)


def serve_command(
    home: Path | None = HOME_OPTION,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8000, "--port", help="TCP port to listen on."),
    tick_every: float = typer.Option(
        DEFAULT_TICK_SECONDS, "--tick-every", min=0.1, help="Seconds between two runs of the round tick."
    ),
    no_tick: bool = typer.Option(
        False,
        "--no-tick",
        "--no-scheduler",
        help="Do not run the round tick (the scheduler) in this process.",
    ),
) -> None:
    """Serve the tournament API (numerapi-compatible GraphQL at /graphql) and run the round tick."""
    with operator_errors(), home_context(home) as opened:
        ctx = Context(
            engine=opened.engine,
            blobs=opened.blobs,
            clock=HomeClock(opened.settings),
            settings=opened.settings,
        )
        app = create_app(ctx.settings, engine=ctx.engine, blob_store=ctx.blobs, clock=ctx.clock)
        stop = threading.Event()
        if not no_tick:
            threading.Thread(
                target=run_tick_loop, args=(ctx, tick_every, stop), daemon=True, name="crowdalpha-tick"
            ).start()
        url = f"http://{host}:{port}"
        typer.echo(f"crowdalpha serving {ctx.settings.home} at {url} (numerapi: {url}/graphql)")
        typer.echo("round tick: off" if no_tick else f"round tick: every {tick_every:g} s")
        try:
            uvicorn.run(app, host=host, port=port, log_level="info")
        finally:
            stop.set()
