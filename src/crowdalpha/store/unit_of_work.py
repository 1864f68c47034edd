"""The unit of work: one database transaction with every repository bound to it, and a retrying runner.

``transaction(engine)`` commits when its block ends normally and rolls back on any exception.
Rows it returns stay readable after the block (they are not expired on commit), but relationships
are not loaded lazily: read what you need inside the block.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crowdalpha.store.engine import engine_view, is_retryable, writer_turn
from crowdalpha.store.repositories import (
    AccountRepository,
    DatasetRepository,
    JobRepository,
    MarketRepository,
    ModelRepository,
    ResolutionRepository,
    RoundRepository,
    ScoreRepository,
    SubmissionRepository,
    TournamentRepository,
)
from crowdalpha.store.repositories.ledger import LedgerRepository

T = TypeVar("T")

DEFAULT_ATTEMPTS = 10
_BASE_DELAY_SECONDS = 0.002
_MAX_DELAY_SECONDS = 0.2


class UnitOfWork:
    """One open transaction and the repositories that work inside it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.accounts = AccountRepository(session)
        self.tournaments = TournamentRepository(session)
        self.models = ModelRepository(session)
        self.datasets = DatasetRepository(session)
        self.rounds = RoundRepository(session)
        self.submissions = SubmissionRepository(session)
        self.jobs = JobRepository(session)
        self.ledger = LedgerRepository(session)
        self.market = MarketRepository(session)
        self.scores = ScoreRepository(session)
        self.resolution = ResolutionRepository(session)


@contextmanager
def transaction(
    engine: Engine, *, read_only: bool = False, isolation_level: str | None = None
) -> Iterator[UnitOfWork]:
    """Yield a unit of work in one transaction; commit on normal exit, roll back on an exception.

    The default isolation is the engine's (SERIALIZABLE on PostgreSQL, the single-writer lock on
    SQLite); ``isolation_level`` overrides it on PostgreSQL, e.g. ``"READ COMMITTED"`` for job claims.
    """
    bind = engine_view(engine, read_only=read_only, isolation_level=isolation_level)
    with (
        writer_turn(engine, read_only=read_only),
        Session(bind, expire_on_commit=False) as session,
        session.begin(),
    ):
        yield UnitOfWork(session)


def run_transaction(
    engine: Engine,
    work: Callable[[UnitOfWork], T],
    *,
    read_only: bool = False,
    isolation_level: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
) -> T:
    """Return ``work(uow)`` run in one transaction, re-run from scratch on serialization failures.

    ``work`` must have no effects outside the database (or only idempotent ones): it may run several
    times, and only the last run's database effects are kept. Gives up after ``attempts`` runs by
    re-raising the last error.
    """
    for attempt in range(1, attempts + 1):
        try:
            with transaction(engine, read_only=read_only, isolation_level=isolation_level) as uow:
                return work(uow)
        except Exception as error:
            if attempt == attempts or not is_retryable(error):
                raise
            delay = min(_MAX_DELAY_SECONDS, _BASE_DELAY_SECONDS * 2**attempt)
            time.sleep(random.uniform(0, delay))
    raise AssertionError("unreachable: the last attempt returns or raises")
