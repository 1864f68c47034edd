"""SQLite writers of one process wait their turn (no "database is locked" within the busy timeout)."""

from __future__ import annotations

import fcntl
import os
import threading
import time

from sqlalchemy import Engine, event, text

from crowdalpha.store import create_engine, transaction
from crowdalpha.store import engine as engine_module
from crowdalpha.store.migrate import upgrade_to_head


def test_a_second_writer_waits_for_the_first_and_both_commit_in_order(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout_ms=5_000)
    upgrade_to_head(engine)
    begins: list[tuple[str, float]] = []
    commits: list[tuple[str, float]] = []

    def record(moments: list[tuple[str, float]]):
        return lambda _connection: moments.append((threading.current_thread().name, time.monotonic()))

    event.listen(engine, "begin", record(begins))
    event.listen(engine, "commit", record(commits))
    holding = threading.Event()

    def first() -> None:
        with transaction(engine) as uow:
            uow.session.execute(text("SELECT 1"))
            holding.set()
            time.sleep(0.3)

    def second() -> None:
        assert holding.wait(10)
        with transaction(engine) as uow:
            uow.session.execute(text("SELECT 1"))

    threads = [threading.Thread(target=first, name="first"), threading.Thread(target=second, name="second")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert [name for name, _ in commits] == ["first", "second"]
        first_commit = commits[0][1]
        second_begin = next(moment for name, moment in begins if name == "second")
        assert second_begin >= first_commit
    finally:
        engine.dispose()


def test_readers_do_not_wait_for_the_writer_lock(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout_ms=5_000)
    upgrade_to_head(engine)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction(engine) as uow:
            uow.session.execute(text("SELECT 1"))
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        start = time.monotonic()
        with transaction(engine, read_only=True) as uow:
            assert uow.session.execute(text("SELECT count(*) FROM accounts")).scalar_one() == 0
        assert time.monotonic() - start < 1.0
    finally:
        release.set()
        holder.join()
        engine.dispose()


def test_a_writer_of_another_engine_waits_on_the_writer_lock_file_not_on_sqlite_polling(tmp_path) -> None:
    """Two engines on one file stand for two server processes: the second writer waits for the first to
    commit on the shared lock file, so even a busy timeout far shorter than the first transaction is
    never hit ("database is locked" would be raised after 50 ms of SQLite's own polling)."""
    path = tmp_path / "x.db"
    holder_engine = create_engine(f"sqlite:///{path}", busy_timeout_ms=5_000)
    upgrade_to_head(holder_engine)
    waiter_engine = create_engine(f"sqlite:///{path}", busy_timeout_ms=50)
    holding = threading.Event()
    committed_at: list[float] = []
    event.listen(holder_engine, "commit", lambda _connection: committed_at.append(time.monotonic()))

    def hold() -> None:
        with transaction(holder_engine) as uow:
            uow.session.execute(
                text("INSERT INTO accounts (id, username, created_at) VALUES ('a', 'a', '2026-01-01')")
            )
            holding.set()
            time.sleep(0.4)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with transaction(waiter_engine) as uow:
            begun_at = time.monotonic()
            assert uow.session.execute(text("SELECT count(*) FROM accounts")).scalar_one() == 1
        holder.join(10)
        assert committed_at and begun_at >= committed_at[-1]
        assert path.with_name("x.db.writer-lock").exists()
    finally:
        holder.join()
        holder_engine.dispose()
        waiter_engine.dispose()


def test_every_64th_writer_checkpoints_the_log_after_letting_go_of_the_locks(tmp_path, monkeypatch) -> None:
    path = tmp_path / "x.db"
    engine = create_engine(f"sqlite:///{path}")
    upgrade_to_head(engine)
    lock_file = os.open(f"{path}{engine_module.WRITER_LOCK_SUFFIX}", os.O_RDWR | os.O_CREAT)
    free_when_checkpointing: list[bool] = []
    checkpoint = engine_module._checkpoint

    def observed_checkpoint(checkpointed: Engine) -> None:
        try:  # another process could take the writer lock file now
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(lock_file, fcntl.LOCK_UN)
            free_when_checkpointing.append(True)
        except BlockingIOError:
            free_when_checkpointing.append(False)
        checkpoint(checkpointed)

    monkeypatch.setattr(engine_module, "_checkpoint", observed_checkpoint)
    try:
        for k in range(engine_module.CHECKPOINT_EVERY_WRITES * 2 + 1):
            with transaction(engine) as uow:
                uow.session.execute(
                    text("INSERT INTO accounts (id, username, created_at) VALUES (:k, :k, '2026-01-01')"),
                    {"k": str(k)},
                )
        assert free_when_checkpointing == [True, True]
        raw = engine.raw_connection()
        try:
            assert raw.driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10_000
            busy, logged, copied = raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            raw.close()
        assert busy == 0 and logged == copied
    finally:
        os.close(lock_file)
        engine.dispose()
