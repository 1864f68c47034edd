"""Database engines: SQLite (WAL, foreign keys, busy timeout, ``BEGIN IMMEDIATE`` writes queued on a lock
file shared by every process) or PostgreSQL (psycopg 3, SERIALIZABLE), and how to tell a transaction
failure that is worth retrying.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DBAPIError

from crowdalpha.store.schema import SELECTED_SUBMISSION_INDEX

READ_ONLY_OPTION = "crowdalpha_read_only"
"""Execution option set on read-only units of work; SQLite then begins with a deferred lock."""

DEFAULT_BUSY_TIMEOUT_MS = 30_000

POOL_OPTIONS: dict[str, Any] = {"pool_size": 16, "max_overflow": 16}
"""Connections kept open per process: as many as the requests one server process runs at once. With
the default 5, the connections beyond them were opened and closed again for every transaction."""

_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_SQLITE_BUSY_MESSAGES = ("database is locked", "database is busy", "database table is locked")


def normalize_url(database_url: str | URL) -> URL:
    """Return the URL with PostgreSQL pointed at the psycopg 3 driver (``postgresql+psycopg``)."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql" and url.drivername != "postgresql+psycopg":
        url = url.set(drivername="postgresql+psycopg")
    return url


def create_engine(
    database_url: str | URL,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    echo: bool = False,
    **engine_options: Any,
) -> Engine:
    """Return an engine configured for crowdalpha's transaction discipline on SQLite or PostgreSQL."""
    url = normalize_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, busy_timeout_ms=busy_timeout_ms, echo=echo, **engine_options)
    if backend == "postgresql":
        # No pool_pre_ping: it costs a round trip per transaction. A connection the server dropped
        # fails its transaction as "invalidated" instead, which ``run_transaction`` re-runs on a new one.
        options: dict[str, Any] = {"isolation_level": "SERIALIZABLE", **POOL_OPTIONS}
        options.update(engine_options)
        return sqlalchemy.create_engine(url, echo=echo, **options)
    raise ValueError(
        f"unsupported database {url.render_as_string(hide_password=True)!r}: use sqlite or postgresql"
    )


def _sqlite_engine(url: URL, *, busy_timeout_ms: int, echo: bool, **engine_options: Any) -> Engine:
    """Return a SQLite engine whose writes take the database lock at BEGIN, so they never deadlock."""
    database = url.database
    on_disk = bool(database) and database != ":memory:" and not database.startswith("file:")
    if on_disk:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"timeout": busy_timeout_ms / 1000, "check_same_thread": False}
    connect_args.update(engine_options.pop("connect_args", {}))
    if on_disk:
        engine_options = {**POOL_OPTIONS, **engine_options}
    engine = sqlalchemy.create_engine(url, echo=echo, connect_args=connect_args, **engine_options)

    @event.listens_for(engine, "connect")
    def _configure_connection(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own implicit BEGIN is turned off so that the "begin" hook below decides the lock mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints run after a writer's locks are released (see ``writer_turn``); SQLite's own
            # stays as a backstop for a huge transaction.
            cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # A write transaction that starts DEFERRED and later upgrades its lock can fail with SQLITE_BUSY
        # without waiting; IMMEDIATE takes the write lock up front and waits for it (busy timeout).
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")

    lock_path = f"{Path(database).expanduser()}{WRITER_LOCK_SUFFIX}" if on_disk else None
    _WRITER_LOCKS[engine.dialect] = _WriterLock(threading.RLock(), busy_timeout_ms / 1000, lock_path)
    return engine


def engine_view(engine: Engine, *, read_only: bool = False, isolation_level: str | None = None) -> Engine:
    """Return the engine, or a view of it whose transactions are read-only and/or at another isolation level.

    Read-only transactions begin DEFERRED on SQLite and READ ONLY on PostgreSQL. ``isolation_level``
    (e.g. ``"READ COMMITTED"`` for a job claim) applies to PostgreSQL only: SQLite serialises writers.
    """
    options: dict[str, Any] = {}
    if read_only:
        options[READ_ONLY_OPTION] = True
        if engine.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
    if isolation_level is not None and engine.dialect.name == "postgresql":
        options["isolation_level"] = isolation_level
    return engine.execution_options(**options) if options else engine


@dataclass
class _WriterLock:
    """The writer locks of one SQLite engine: this process's, the file every process locks, the timeout."""

    lock: threading.RLock
    timeout_seconds: float
    lock_path: str | None
    """``<database>.writer-lock``, flock-ed by the writer holding ``lock`` (None: an in-memory database)."""
    depth: int = 0
    """How many nested write transactions the thread holding ``lock`` has open."""
    writes: int = 0
    """Write transactions of this engine so far (every ``CHECKPOINT_EVERY_WRITES``-th checkpoints)."""
    descriptor: int | None = None
    pid: int | None = None
    """The process that opened ``descriptor`` (a forked child opens its own: flocks follow the file)."""

    def lock_file(self) -> int | None:
        """Return the lock file's descriptor in this process (opened on first use), or None."""
        if self.lock_path is None:
            return None
        if self.descriptor is None or self.pid != os.getpid():
            self.descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self.pid = os.getpid()
            weakref.finalize(self, os.close, self.descriptor)  # closed with its engine's dialect
        return self.descriptor


WRITER_LOCK_SUFFIX = ".writer-lock"
CHECKPOINT_EVERY_WRITES = 64
"""A process checkpoints the WAL after every this many of its write transactions (PASSIVE, unlocked)."""
BACKSTOP_CHECKPOINT_PAGES = 10_000
_WRITER_LOCKS: WeakKeyDictionary[Dialect, _WriterLock] = WeakKeyDictionary()


@contextmanager
def writer_turn(engine: Engine, *, read_only: bool = False) -> Iterator[None]:
    """Hold the writer locks of a SQLite database for a write transaction (else: nothing).

    SQLite lets one writer in at a time and makes the others poll with growing sleeps (up to 100 ms
    each), so under load a write could wait seconds behind writers that arrived later — and the
    writers of a process whose next writer is always ready could keep another process's writer
    polling. So a writer queues first on its process's lock, then on an ``flock`` of the database's
    ``.writer-lock`` file that every process writing the database takes: the kernel wakes the next
    waiter the moment the lock is released, and the database lock is then free. A writer that waits
    longer than the busy timeout for its process's lock goes on without either lock, so SQLite's own
    timeout ("database is locked") still bounds that wait; the file lock is only ever held for one
    write transaction.

    WAL checkpoints: SQLite's automatic one runs inside the COMMIT of whichever writer fills the log,
    which here would hold every queued writer for its copy and fsyncs. Instead every
    ``CHECKPOINT_EVERY_WRITES``-th writer of a process runs a PASSIVE checkpoint after letting go of
    both locks: only that writer waits for it, and the others keep writing to the log meanwhile.
    """
    writer = None if read_only else _WRITER_LOCKS.get(engine.dialect)
    if writer is None or not writer.lock.acquire(timeout=writer.timeout_seconds):
        yield
        return
    descriptor = None
    outermost = writer.depth == 0
    try:
        if outermost:
            writer.writes += 1
            with contextlib.suppress(OSError):  # no lock file (e.g. a read-only directory): SQLite's wait
                descriptor = writer.lock_file()
                if descriptor is not None:
                    fcntl.flock(descriptor, fcntl.LOCK_EX)
        writer.depth += 1
        try:
            yield
        finally:
            writer.depth -= 1
            if descriptor is not None:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        checkpoint = outermost and writer.writes % CHECKPOINT_EVERY_WRITES == 0
        writer.lock.release()
    if checkpoint:
        _checkpoint(engine)


def _checkpoint(engine: Engine) -> None:
    """Copy what the WAL holds into the database as far as readers allow (PASSIVE: never waits)."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error:
        pass  # a checkpoint that cannot run now runs next time (or in SQLite's backstop)
    finally:
        raw.close()


def is_retryable(error: BaseException) -> bool:
    """Return True if a failed transaction can be run again (serialization, deadlock, busy, lost link)."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True  # the server dropped the connection (e.g. it restarted): the pool has let it go
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    if sqlstate == "23505":
        # Two concurrent "select latest" units of work can both try to select a submission of the same
        # (model, round); the loser sees the winner's committed row only after waiting on the index,
        # which PostgreSQL may report as a unique violation rather than a serialization failure.
        diag = getattr(original, "diag", None)
        return getattr(diag, "constraint_name", None) == SELECTED_SUBMISSION_INDEX
    message = str(original).lower()
    return any(busy in message for busy in _SQLITE_BUSY_MESSAGES)
