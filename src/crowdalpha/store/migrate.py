"""Run the Alembic migrations shipped inside the package, without an alembic.ini."""

from __future__ import annotations

import threading

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from crowdalpha.store.engine import create_engine

SCRIPT_LOCATION = "crowdalpha.store:migrations"
# Alembic keeps its migration context in module globals: one upgrade at a time per process. Other
# processes are serialised by the database (advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite).
_UPGRADE_LOCK = threading.Lock()


def alembic_config(engine: Engine | None = None) -> Config:
    """Return an Alembic config for the packaged migrations, bound to ``engine`` if given."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade_to_head(database: str | Engine) -> str:
    """Migrate a database (URL or engine) to the newest revision and return that revision id; idempotent."""
    engine = create_engine(database) if isinstance(database, str) else database
    try:
        with _UPGRADE_LOCK:
            command.upgrade(alembic_config(engine), "head")
    finally:
        if isinstance(database, str):
            engine.dispose()
    return head_revision()


def head_revision() -> str:
    """Return the id of the newest shipped migration."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations are shipped with crowdalpha.store")
    return head


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None if it was never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
