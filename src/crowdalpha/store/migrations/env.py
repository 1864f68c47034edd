"""Alembic environment for crowdalpha: migrate the engine handed over by ``crowdalpha.store.migrate``.

Every pending revision runs in one transaction, serialised against other migrators (an advisory
lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite). On SQLite foreign keys are switched off while
migrating, because batch-mode table rebuilds drop the old table, and with foreign keys on that drop
deletes (cascades to) the rows that reference it; ``PRAGMA foreign_key_check`` runs before commit.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from crowdalpha.settings import Settings
from crowdalpha.store.engine import create_engine
from crowdalpha.store.schema import Base

# Any constant works; it only has to be the same for every crowdalpha process migrating this database.
_MIGRATION_LOCK_ID = 0x63726F77  # "crow"

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    """Return the URL option if set, else the one crowdalpha's settings resolve to."""
    return config.get_main_option("sqlalchemy.url") or Settings.resolve().database_url


def run_migrations_offline() -> None:
    """Emit the migration SQL for the configured URL without connecting."""
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the engine passed in ``config.attributes["engine"]`` (or one built from the URL)."""
    engine = config.attributes.get("engine")
    owned = engine is None
    if owned:
        engine = create_engine(_database_url())
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        if owned:
            engine.dispose()


def _set_sqlite_foreign_keys(connection: Connection, enabled: bool) -> None:
    """Switch SQLite foreign key enforcement; done on the driver connection, outside any transaction."""
    connection.connection.driver_connection.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")


def _migrate(connection: Connection) -> None:
    """Run the pending migrations on one connection, in one transaction."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # READ COMMITTED so that a migrator that waited for the lock sees the other one's work.
        connection = connection.execution_options(isolation_level="READ COMMITTED")
    if dialect == "sqlite":
        _set_sqlite_foreign_keys(connection, enabled=False)
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=dialect == "sqlite",
            transactional_ddl=True,
            compare_type=True,
        )
        with context.begin_transaction():
            if dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            context.run_migrations()
            if dialect == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows with dangling foreign keys: {broken[:5]}")
    finally:
        if dialect == "sqlite":
            _set_sqlite_foreign_keys(connection, enabled=True)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
