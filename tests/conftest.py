"""Shared database fixtures: a test asking for ``engine`` runs on SQLite (a temp file) and on PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432. A session fixture creates a fresh database
``crowdalpha_test_<random>`` and drops it at the end; tests share it and find it emptied. If the
server is unreachable the PostgreSQL variants are skipped with a visible reason, except under
``CI=true``, where that is a failure.

``live_server(app)`` binds 127.0.0.1 on a free port (the socket is bound before uvicorn starts, so
there is no race for the port), serves ``app`` from a daemon thread and returns the base URL; every
server started in a test is shut down when the test ends.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
import uvicorn
from sqlalchemy import Engine, text

from crowdalpha.datasets.classic import build_classic
from crowdalpha.datasets.crypto import CryptoUniverseRules, build_crypto
from crowdalpha.datasets.signals import build_signals
from crowdalpha.store import create_engine, upgrade_to_head
from crowdalpha.store.schema import Base

POSTGRES_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_UNAVAILABLE = "PostgreSQL not available at 127.0.0.1:5432"
BACKENDS = ("sqlite", "postgresql")
DATASET_SECRET = b"shared-test-secret-0123456789ab"
STARTUP_TIMEOUT_SECONDS = 10.0

ServedApp = Callable[..., Any]


class PostgresServer:
    """Creates throw-away databases on the test server and drops them all at the end."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    def create_database(self, *, template: str | None = None) -> str:
        """Return the SQLAlchemy URL of a new database ``crowdalpha_test_<random>`` (empty, or a copy).

        ``template`` is the URL of a database to copy; nothing may be connected to it meanwhile.
        """
        name = f"crowdalpha_test_{secrets.token_hex(6)}"
        copy = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
        with psycopg.connect(self.server_url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"{copy}')
        self.created.append(name)
        return self.server_url.rsplit("/", 1)[0] + f"/{name}"

    def drop_all(self) -> None:
        """Drop every database this fixture created (closing other sessions on it first)."""
        with psycopg.connect(self.server_url, autocommit=True) as connection:
            for name in self.created:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Yield the PostgreSQL test server; skip (fail under CI=true) if it cannot be reached."""
    try:
        with psycopg.connect(POSTGRES_SERVER_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{POSTGRES_UNAVAILABLE} (required when CI=true): {error}")
        pytest.skip(POSTGRES_UNAVAILABLE)
    server = PostgresServer(POSTGRES_SERVER_URL)
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def postgres_engine(postgres_server: PostgresServer) -> Iterator[Engine]:
    """Yield an engine on the session's migrated PostgreSQL test database."""
    engine = create_engine(postgres_server.create_database(), pool_size=12, max_overflow=4)
    upgrade_to_head(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Return the database backend this test variant runs on."""
    return request.param


@pytest.fixture
def engine(backend: str, request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """Yield an engine on an empty, migrated database of the variant's backend."""
    if backend == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
        upgrade_to_head(engine)
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("postgres_engine")
    yield engine
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def empty_database_url(backend: str, request: pytest.FixtureRequest, tmp_path) -> Callable[[], str]:
    """Return a factory of URLs of new, never-migrated databases of the variant's backend."""
    if backend == "sqlite":
        counter = iter(range(1_000))
        return lambda: f"sqlite:///{tmp_path / f'empty-{next(counter)}.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database


def small_market_panel(*, assets: int = 30, days: int = 200, seed: int = 0) -> pd.DataFrame:
    """Return a small market panel in the crowdalpha contract (business days, random-walk prices)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=days)
    close = 10 * np.exp(np.cumsum(0.01 * rng.standard_normal((days, assets)), axis=0))
    panel = pd.DataFrame(
        {
            "date": np.repeat(dates, assets),
            "asset": np.tile([f"ASSET{i:04d}" for i in range(assets)], days),
            "ticker": np.tile([f"T{i}" for i in range(assets)], days),
            "country": "US",
            "sector": np.tile([f"S{i % 4}" for i in range(assets)], days),
            "industry": "I",
            "close": close.ravel(),
            "volume": rng.integers(1000, 5000, days * assets).astype(float),
            "market_cap": (close * 1e6).ravel(),
        }
    )
    for j in range(4):
        panel[f"raw_x{j}"] = rng.standard_normal(len(panel))
    return panel


@pytest.fixture(scope="session")
def make_market_panel() -> Callable[..., pd.DataFrame]:
    """Return :func:`small_market_panel`, for test modules that build their own panels."""
    return small_market_panel


@pytest.fixture(scope="session")
def classic_version_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a small built Classic version directory ``…/public/v1.0`` (30 live ids)."""
    root = tmp_path_factory.mktemp("classic")
    panel = small_market_panel()
    return build_classic(
        panel, root / "public", secret=DATASET_SECRET, private_dir=root / "private"
    ).version_dir


@pytest.fixture(scope="session")
def universe_version_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Return small built Crypto and Signals versions (120 symbols/tickers, every one in the universe)."""
    root = tmp_path_factory.mktemp("universes")
    panel = small_market_panel(assets=120)
    loose = CryptoUniverseRules(min_age_days=0, min_volume_usd=0, max_correlation=1.0)
    crypto = build_crypto(panel, root / "crypto", private_dir=root / "crypto_private", rules=loose)
    signals = build_signals(panel, root / "signals", private_dir=root / "signals_private")
    return {"crypto": Path(crypto.version_dir), "signals": Path(signals.version_dir)}


@contextmanager
def serve_in_thread(app: ServedApp, *, http: str = "auto") -> Iterator[str]:
    """Yield the base URL of a uvicorn server running ``app`` on 127.0.0.1; stop it on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, http=http, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"uvicorn:{port}"
    )
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_SECONDS)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture
def live_server() -> Iterator[Callable[[ServedApp], str]]:
    """Return ``start(app) -> base URL``; every server started is shut down when the test ends."""
    with ExitStack() as servers:
        yield lambda app: servers.enter_context(serve_in_thread(app))
