"""``init_home``: create a tournament home — directory, migrated database, blob store, default tournaments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from crowdalpha.service.clock import home_clock
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore, create_engine, transaction, upgrade_to_head
from crowdalpha.tournament.clock import Clock
from crowdalpha.tournament.config import DEFAULT_TOURNAMENTS, to_dict


@dataclass(frozen=True)
class HomeReport:
    """What ``init_home`` found or made: where things live, the schema revision, the tournaments added."""

    home: Path
    database_url: str
    storage_url: str
    revision: str
    created_tournaments: tuple[str, ...]
    tournaments: tuple[str, ...]


def init_home(settings: Settings, *, clock: Clock | None = None) -> HomeReport:
    """Create the home, migrate the database and add the default tournaments; safe to run again."""
    settings.home.mkdir(parents=True, exist_ok=True)
    BlobStore(settings.storage_url)
    now = (clock if clock is not None else home_clock(settings)).now()
    engine = create_engine(settings.database_url)
    try:
        revision = upgrade_to_head(engine)
        with transaction(engine) as uow:
            existing = {tournament.id for tournament in uow.tournaments.list()}
            created = []
            # An existing tournament keeps its config: the operator may have changed its rules.
            for config in DEFAULT_TOURNAMENTS.values():
                if config.tournament_id not in existing:
                    uow.tournaments.upsert(config.tournament_id, config.name, to_dict(config), now=now)
                    created.append(config.name)
            names = tuple(tournament.name for tournament in uow.tournaments.list())
    finally:
        engine.dispose()
    return HomeReport(
        home=settings.home,
        database_url=make_url(settings.database_url).render_as_string(hide_password=True),
        storage_url=settings.storage_url,
        revision=revision,
        created_tournaments=tuple(created),
        tournaments=names,
    )
