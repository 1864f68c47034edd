"""SQLite writers of one process wait their turn (no "database is locked" within the busy timeout)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import event, text

from crowdalpha.store import create_engine, transaction
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
