"""Migrations: the packaged revisions build the schema the ORM declares, and running them again is a no-op."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from crowdalpha.store import create_engine, current_revision, head_revision, upgrade_to_head
from crowdalpha.store.schema import SELECTED_SUBMISSION_INDEX, Base

EXPECTED_TABLES = {
    "accounts",
    "api_keys",
    "tournaments",
    "models",
    "dataset_versions",
    "dataset_files",
    "rounds",
    "live_universes",
    "submissions",
    "jobs",
    "ledger_accounts",
    "ledger_transactions",
    "ledger_entries",
    "ledger_releases",
    "market_ingests",
    "round_live_data",
    "round_score_days",
    "submission_scores",
    "round_stakes",
    "round_resolutions",
    "account_passwords",
    "meta_model_scores",
    "leaderboard_snapshots",
}


def test_upgrade_to_head_creates_the_schema_and_is_idempotent(empty_database_url: Callable[[], str]) -> None:
    url = empty_database_url()
    assert upgrade_to_head(url) == head_revision()
    assert upgrade_to_head(url) == head_revision()
    engine = create_engine(url)
    try:
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert tables == EXPECTED_TABLES | {"alembic_version"}
        assert set(Base.metadata.tables) == EXPECTED_TABLES
    finally:
        engine.dispose()


def test_never_migrated_database_has_no_revision(empty_database_url: Callable[[], str]) -> None:
    engine = create_engine(empty_database_url())
    try:
        assert current_revision(engine) is None
    finally:
        engine.dispose()


def test_schema_from_migrations_equals_the_orm_metadata(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_selected_submission_index_is_partial_and_unique(engine: Engine) -> None:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            definition = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"),
                {"name": SELECTED_SUBMISSION_INDEX},
            ).scalar_one()
        else:
            definition = connection.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"),
                {"name": SELECTED_SUBMISSION_INDEX},
            ).scalar_one()
    assert "UNIQUE" in definition.upper()
    assert "WHERE" in definition.upper() and "selected" in definition


def test_concurrent_migrating_processes_all_succeed(empty_database_url: Callable[[], str]) -> None:
    url = empty_database_url()
    script = "import sys; from crowdalpha.store import upgrade_to_head; print(upgrade_to_head(sys.argv[1]))"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outcomes = [(process.wait(60), *process.communicate()) for process in processes]
    assert [(code, out.strip()) for code, out, _ in outcomes] == [(0, head_revision())] * 3, outcomes
    engine = create_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_threads_in_one_process_can_call_upgrade_to_head_together(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    results: list[object] = []

    def migrate() -> None:
        try:
            results.append(upgrade_to_head(url))
        except BaseException as error:  # surfaced below
            results.append(error)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [head_revision()] * 3


def test_sqlite_foreign_keys_are_back_on_after_migrating(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'fk.db'}", pool_size=1, max_overflow=0)
    try:
        upgrade_to_head(engine)
        with engine.connect() as connection:  # the very connection the migration used
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
