"""Service fixtures: a Context on the shared ``engine`` (SQLite and PostgreSQL), a built Classic version."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from scoring_factories import Market, build_market
from service_factories import TUESDAY_OPEN, World
from sqlalchemy import Engine

from crowdalpha.service import (
    Context,
    create_account,
    create_model,
    init_home,
    open_round,
    publish_dataset,
)
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore
from crowdalpha.tournament.clock import SettableClock


@pytest.fixture(scope="session")
def version_dir(classic_version_dir: Path) -> Path:
    """Return the shared small built Classic version directory ``…/v1.0``."""
    return classic_version_dir


@pytest.fixture(scope="session")
def live_ids(version_dir: Path) -> list[str]:
    """Return the live ids of the built version, sorted."""
    return sorted(pd.read_parquet(version_dir / "live.parquet").index.astype(str))


@pytest.fixture
def ctx(engine: Engine, tmp_path: Path) -> Iterator[Context]:
    """Yield a Context on an initialised database of the variant's backend, with a settable clock."""
    settings = Settings(
        home=tmp_path / "home",
        database_url=engine.url.render_as_string(hide_password=False),
        storage_url=str(tmp_path / "blobs"),
    )
    clock = SettableClock(TUESDAY_OPEN)
    init_home(settings, clock=clock)
    yield Context(
        engine=engine, blobs=BlobStore(settings.storage_url, durable=False), clock=clock, settings=settings
    )


@pytest.fixture
def world(ctx: Context, version_dir: Path) -> World:
    """Return a world ready for rounds and submissions."""
    publish_dataset(ctx, version_dir, "classic")
    created = create_account(ctx, "alice")
    model = create_model(ctx, "alice", "classic", "alice_model")
    assert isinstance(ctx.clock, SettableClock)
    return World(ctx, ctx.clock, "alice", created.public_id, created.secret_key, model.id)


@pytest.fixture(scope="session")
def market(
    tmp_path_factory: pytest.TempPathFactory, make_market_panel: Callable[..., pd.DataFrame]
) -> Market:
    """Return a 40-asset market and the Classic version built from its first HISTORY_DAYS dates."""
    return build_market(tmp_path_factory.mktemp("scoreday"), make_market_panel)


@pytest.fixture
def open_world(world: World) -> World:
    """Return the world with the Classic round of TUESDAY_OPEN open on the calendar at 12:30."""
    world.clock.set(TUESDAY_OPEN + timedelta(minutes=30))
    open_round(world.ctx, "classic")
    return world
