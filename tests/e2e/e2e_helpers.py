"""Set-up shared by the end-to-end suites (a module of its own, so imports never hit another conftest)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from crowdalpha.service import Context, init_home
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore
from crowdalpha.tournament import SettableClock


def new_home(engine: Engine, tmp_path: Path) -> tuple[Settings, SettableClock, Context]:
    """Return (settings, clock, context) of a fresh home on ``engine``, its clock at the wall clock.

    numerapi's check_round_open compares with the wall clock, so the server's clock starts at it.
    """
    settings = Settings(
        home=tmp_path / "home",
        database_url=engine.url.render_as_string(hide_password=False),
        storage_url=str(tmp_path / "blobs"),
    )
    clock = SettableClock(datetime.now(UTC))
    init_home(settings, clock=clock)
    ctx = Context(
        engine=engine, blobs=BlobStore(settings.storage_url, durable=False), clock=clock, settings=settings
    )
    return settings, clock, ctx
