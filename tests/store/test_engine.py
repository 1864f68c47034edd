"""Engines and units of work: SQLite WAL/foreign keys/immediate writes, PostgreSQL SERIALIZABLE, retries."""

from __future__ import annotations

import threading

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError
from store_factories import T0

from crowdalpha.store import (
    create_engine,
    is_retryable,
    run_transaction,
    transaction,
    upgrade_to_head,
)
from crowdalpha.store.engine import normalize_url
from crowdalpha.store.schema import Account


def test_postgresql_urls_use_psycopg_3() -> None:
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        create_engine("mysql://root@127.0.0.1/test")


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'nested' / 'x.db'}", busy_timeout_ms=1234)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
    finally:
        engine.dispose()


def test_sqlite_write_transactions_take_the_lock_at_begin_and_readers_are_not_blocked(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout_ms=100)
    upgrade_to_head(engine)
    holding, release = threading.Event(), threading.Event()

    def hold_write_lock() -> None:
        with transaction(engine) as uow:
            uow.session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock is held from here
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_write_lock)
    holder.start()
    try:
        assert holding.wait(10)
        with transaction(engine, read_only=True) as uow:
            assert uow.session.execute(text("SELECT count(*) FROM accounts")).scalar_one() == 0
        with pytest.raises(OperationalError, match="locked") as raised, transaction(engine) as uow:
            uow.session.execute(text("SELECT 1"))
        assert is_retryable(raised.value)
    finally:
        release.set()
        holder.join()
        engine.dispose()


def test_postgresql_transactions_are_serializable(postgres_engine: Engine) -> None:
    engine = postgres_engine
    with transaction(engine) as uow:
        assert uow.session.execute(text("SHOW transaction_isolation")).scalar_one() == "serializable"
        assert uow.session.execute(text("SHOW transaction_read_only")).scalar_one() == "off"
    with transaction(engine, read_only=True) as uow:
        assert uow.session.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
    with transaction(engine, isolation_level="READ COMMITTED") as uow:
        assert uow.session.execute(text("SHOW transaction_isolation")).scalar_one() == "read committed"
    with transaction(engine) as uow:  # the pooled connection is back at the engine's level
        assert uow.session.execute(text("SHOW transaction_isolation")).scalar_one() == "serializable"


def test_transaction_commits_on_success_and_rolls_back_on_error(engine: Engine) -> None:
    with transaction(engine) as uow:
        uow.accounts.create("kept", now=T0)
    with pytest.raises(RuntimeError), transaction(engine) as uow:
        uow.accounts.create("dropped", now=T0)
        raise RuntimeError("boom")
    with transaction(engine, read_only=True) as uow:
        assert uow.accounts.get_by_username("kept") is not None
        assert uow.accounts.get_by_username("dropped") is None


def test_rows_stay_readable_after_the_transaction(engine: Engine) -> None:
    with transaction(engine) as uow:
        account = uow.accounts.create("reader", now=T0)
    assert isinstance(account, Account)
    assert account.username == "reader" and account.created_at == T0


def test_run_transaction_reruns_work_after_a_serialization_failure(engine: Engine) -> None:
    calls: list[int] = []

    def work(uow) -> str:
        calls.append(len(calls))
        account = uow.accounts.create(f"attempt{len(calls)}", now=T0)
        if len(calls) == 1:
            raise OperationalError("COMMIT", {}, psycopg.errors.SerializationFailure("conflict"))
        return account.username

    assert run_transaction(engine, work) == "attempt2"
    assert len(calls) == 2
    with transaction(engine, read_only=True) as uow:
        assert uow.accounts.get_by_username("attempt1") is None  # the failed run left nothing
        assert uow.accounts.get_by_username("attempt2") is not None


def test_run_transaction_does_not_retry_other_errors(engine: Engine) -> None:
    calls: list[int] = []

    def work(uow) -> None:
        calls.append(1)
        uow.session.add(Account(username="dup", created_at=T0))
        uow.session.add(Account(username="dup", created_at=T0))
        uow.session.flush()

    with pytest.raises(IntegrityError):
        run_transaction(engine, work)
    assert calls == [1]


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(IntegrityError), transaction(engine) as uow:
        uow.session.execute(
            text(
                "INSERT INTO models (id, account_id, tournament_id, name, created_at) "
                "VALUES ('m', 'no-such-account', 8, 'x', :now)"
            ),
            {"now": T0},
        )
