"""The explicit dependencies of every use case: database engine, blob store, clock, settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from crowdalpha.service.clock import home_clock
from crowdalpha.service.errors import ServiceError
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore, create_engine, current_revision, head_revision
from crowdalpha.tournament.clock import Clock


@dataclass
class Context:
    """What a use case works with; built once per process (or per test) and passed in explicitly."""

    engine: Engine
    blobs: BlobStore
    clock: Clock
    settings: Settings
    cache: dict[Any, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        """Return the clock's current moment (UTC)."""
        return self.clock.now()

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Context:
        """Return the context itself."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Release the database connections."""
        self.close()


def open_context(settings: Settings, *, clock: Clock | None = None) -> Context:
    """Return a Context on an initialised home; raise ``home_not_initialised`` before ``init``."""
    database = make_url(settings.database_url).database
    if settings.uses_default_database and database and not Path(database).exists():
        raise _not_initialised(settings)
    engine = create_engine(settings.database_url)
    try:
        if current_revision(engine) != head_revision():
            raise _not_initialised(settings)
    except BaseException:
        engine.dispose()
        raise
    return Context(
        engine=engine,
        blobs=BlobStore(settings.storage_url),
        clock=clock if clock is not None else home_clock(settings),
        settings=settings,
    )


def _not_initialised(settings: Settings) -> ServiceError:
    return ServiceError(
        "home_not_initialised",
        f"the database of {settings.home} is missing or not migrated;"
        f" run `crowdalpha init --home {settings.home}`",
    )
