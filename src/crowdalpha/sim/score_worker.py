"""A score worker: a process of its own that runs a season day's due score jobs beside the crowd's uploads.

In production the server takes uploads while ``tick`` runs the jobs, in other processes. A season
on one process would run them one after the other, so :func:`crowdalpha.sim.season.run_season_day`
can hand each day's score jobs to a :class:`ScoreWorker`: a child process with its own context on
the same home (database and blobs) and its own settable clock, which runs
:func:`crowdalpha.service.run_score_jobs` at the clock time it is sent — the code ``tick`` runs for
score jobs — while the parent opens the round and the crowd uploads. The parent waits for the
worker before anything that reads the scores (the resolutions and the leaderboards of the close
tick), so every figure is the one a single process would store. Score jobs only read until they
store their scores in short writes (:func:`crowdalpha.service.rounds.tick`), so the two
processes share the database's single writer without holding each other up.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import traceback
from datetime import datetime
from multiprocessing.connection import Connection

from crowdalpha.service import TickReport
from crowdalpha.settings import Settings

OWNER = "season-score-worker"


class ScoreWorkerError(RuntimeError):
    """The score worker raised: its traceback is the message."""


class ScoreWorker:
    """A child process that runs the due score jobs at the clock times it is sent (a context manager)."""

    def __init__(self, settings: Settings, start: datetime) -> None:
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no threads or pools forked
        self._connection, child = spawn.Pipe()
        self._process = spawn.Process(
            target=_serve, args=(settings, start, child), name="crowdalpha-score-worker", daemon=True
        )
        self._process.start()
        child.close()
        self._running = False

    def start(self, now: datetime) -> None:
        """Have the worker run every score job due at ``now``; collect the outcome with :meth:`wait`."""
        if self._running:
            raise ScoreWorkerError("the score worker is still running the previous request")
        self._connection.send(now)
        self._running = True

    def wait(self) -> TickReport:
        """Return what the worker ran since :meth:`start`; ScoreWorkerError if it raised or died."""
        self._running = False
        try:
            outcome = self._connection.recv()
        except EOFError as error:
            raise ScoreWorkerError(f"the score worker exited (code {self._process.exitcode})") from error
        if isinstance(outcome, str):
            raise ScoreWorkerError(outcome)
        return outcome

    def close(self) -> None:
        """Stop the worker process and wait for it."""
        with contextlib.suppress(BrokenPipeError, OSError):  # the worker may be gone already
            self._connection.send(None)
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()

    def __enter__(self) -> ScoreWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(settings: Settings, start: datetime, connection: Connection) -> None:
    """The worker's loop: for each clock time received, run the due score jobs and send the report."""
    from threadpoolctl import threadpool_limits

    from crowdalpha.service import open_context, run_score_jobs
    from crowdalpha.tournament.clock import SettableClock

    clock = SettableClock(start)
    with threadpool_limits(limits=1, user_api="blas"), open_context(settings, clock=clock) as ctx:
        while (now := connection.recv()) is not None:
            try:
                clock.set(max(clock.now(), now))
                connection.send(run_score_jobs(ctx, owner=OWNER))
            except BaseException:
                connection.send(traceback.format_exc())
