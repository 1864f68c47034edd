"""``crowdalpha serve``: the API server (GraphQL for numerapi, file routes, health) plus the tick loop.

The tick loop runs ``service.tick`` every ``--tick-every`` seconds in a background thread, so rounds
open and close on the calendar while the server runs; several servers on one home are safe (each
transition is a job that runs once). ``--no-tick`` leaves the transitions to another process.

``--workers N`` (N > 1) serves with N uvicorn worker processes sharing the port, so requests use
every core (one process is bound to one core by the GIL). Each worker opens the home itself
(:func:`worker_app`, from the settings this process puts in the environment); the tick loop stays in
this, the supervising, process. Each worker listens on its own socket bound with ``SO_REUSEPORT``,
so the kernel spreads new connections evenly over the workers (see :func:`serve_workers`; Linux only,
elsewhere uvicorn's shared socket).

``--access-log`` prints uvicorn's line per request (off by default: see :data:`ACCESS_LOG_HELP`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import typer
import uvicorn
from fastapi import FastAPI

from crowdalpha.api import create_app
from crowdalpha.api.signing import load_signing_key
from crowdalpha.commands._operator import HOME_OPTION, UsageProblem, home_context, operator_errors
from crowdalpha.service import Context, HomeClock, open_context, tick, user_message
from crowdalpha.settings import DATABASE_URL_ENV, HOME_ENV, STORAGE_URL_ENV, UPLOAD_LIMIT_ENV, Settings

DEFAULT_TICK_SECONDS = 30.0
ACCESS_LOG_HELP = (
    "Print one line per HTTP request (uvicorn's access log). Off by default: numerapi sends nearly"
    " everything as 'POST /graphql 200' (GraphQL refusals are HTTP 200 too, and are logged on their own"
    " with their rule), and the line cost about 5 % of the server's CPU under upload load."
)


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


def serving_app(ctx: Context) -> FastAPI:
    """Return the app serving the home of ``ctx`` (its engine, blobs and the home's clock)."""
    return create_app(
        ctx.settings, engine=ctx.engine, blob_store=ctx.blobs, clock=ctx.clock, freeze_startup_objects=True
    )


def worker_app() -> FastAPI:
    """Return the app of one worker process: the home named by the environment (``uvicorn --factory``)."""
    settings = Settings.resolve()
    return serving_app(open_context(settings, clock=HomeClock(settings)))


BALANCED_REUSE_PORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
"""Linux spreads connections over the listening sockets sharing a port; other systems do not (or lack it)."""
WORKER_RESTART_SECONDS = 1.0
WORKER_STOP_SECONDS = 10.0
WORKER_START_SECONDS = 60.0


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    """Return a TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (not listening yet)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _run_worker(host: str, port: int, access_log: bool, started: Any = None) -> None:
    """Serve :func:`worker_app` on this process's own listening socket of the shared port.

    ``started`` (a barrier of the first workers) holds the listen until every one of them has its
    socket: the first worker up would otherwise take every connection opened before the others listen,
    for as long as those connections are kept alive.
    """
    sock = _reuse_port_socket(host, port)
    if started is not None:
        with contextlib.suppress(threading.BrokenBarrierError):  # a worker that failed: serve anyway
            started.wait(WORKER_START_SECONDS)
    sock.listen(2048)
    config = uvicorn.Config(
        f"{__name__}:worker_app", factory=True, host=host, port=port, log_level="info", access_log=access_log
    )
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(host: str, port: int, workers: int, *, access_log: bool) -> None:
    """Run ``workers`` server processes on ``host:port`` until SIGINT or SIGTERM; restart any that dies.

    uvicorn's own ``--workers`` hands every worker one shared listening socket, and whichever worker
    is on a core when a connection arrives accepts it — under load, the busy one: 32 kept-alive
    clients split 21/11 or 24/7, so one worker did two or three times the other's work while its
    clients waited. With a ``SO_REUSEPORT`` socket per worker the kernel assigns each new connection
    by a hash of its addresses, independent of who is busy. This process holds the port bound (not
    listening: it accepts nothing) for as long as it serves, and refuses to start on a port in use.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))  # a port already in use fails here, as with a single process
        except OSError as error:
            raise UsageProblem(f"cannot listen on {host}:{port}: {error.strerror}") from None
    holder = _reuse_port_socket(host, port)
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes: list[multiprocessing.process.BaseProcess] = []
    started = spawn.Barrier(workers)
    try:
        for _ in range(workers):
            processes.append(spawn.Process(target=_run_worker, args=(host, port, access_log, started)))
            processes[-1].start()
        while not stop.wait(WORKER_RESTART_SECONDS):
            for index, process in enumerate(processes):
                if not process.is_alive():
                    typer.echo(
                        f"worker {process.pid} exited with {process.exitcode}; starting another", err=True
                    )
                    processes[index] = spawn.Process(target=_run_worker, args=(host, port, access_log))
                    processes[index].start()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(WORKER_STOP_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        holder.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _export_settings(settings: Settings) -> None:
    """Put the settings in this process's environment, where worker processes read them."""
    os.environ[HOME_ENV] = str(settings.home)
    os.environ[DATABASE_URL_ENV] = settings.database_url
    os.environ[STORAGE_URL_ENV] = settings.storage_url
    os.environ[UPLOAD_LIMIT_ENV] = str(settings.upload_limit_bytes)


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
    workers: int = typer.Option(
        1, "--workers", min=1, help="Worker processes serving requests (use up to one per core)."
    ),
    access_log: bool = typer.Option(False, "--access-log/--no-access-log", help=ACCESS_LOG_HELP),
) -> None:
    """Serve the tournament API (numerapi-compatible GraphQL at /graphql) and run the round tick."""
    with operator_errors(), home_context(home) as opened:
        ctx = Context(
            engine=opened.engine,
            blobs=opened.blobs,
            clock=HomeClock(opened.settings),
            settings=opened.settings,
        )
        stop = threading.Event()
        if not no_tick:
            threading.Thread(
                target=run_tick_loop, args=(ctx, tick_every, stop), daemon=True, name="crowdalpha-tick"
            ).start()
        url = f"http://{host}:{port}"
        typer.echo(f"crowdalpha serving {ctx.settings.home} at {url} (numerapi: {url}/graphql)")
        typer.echo("round tick: off" if no_tick else f"round tick: every {tick_every:g} s")
        if workers > 1:
            typer.echo(f"workers: {workers} processes")
        typer.echo("access log: on" if access_log else "access log: off (--access-log: a line per request)")
        try:
            if workers == 1:
                uvicorn.run(serving_app(ctx), host=host, port=port, log_level="info", access_log=access_log)
            else:
                _export_settings(ctx.settings)
                load_signing_key(ctx.settings)  # create it now, so every worker signs with the same key
                if BALANCED_REUSE_PORT:
                    serve_workers(host, port, workers, access_log=access_log)
                else:  # no kernel balancing of SO_REUSEPORT sockets here: uvicorn's shared socket
                    uvicorn.run(
                        f"{__name__}:worker_app",
                        factory=True,
                        workers=workers,
                        host=host,
                        port=port,
                        log_level="info",
                        access_log=access_log,
                    )
        finally:
            stop.set()
