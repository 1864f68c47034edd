"""API test fixtures: a real uvicorn server on loopback in a background thread, and a files-only app.

``live_server(app)`` binds 127.0.0.1 on a free port (the socket is bound before uvicorn starts, so
there is no race for the port), serves ``app`` from a daemon thread and returns the base URL; every
server started in a test is shut down when the test ends.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from crowdalpha.api import UrlSigner, create_app
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore

SIGNING_KEY = bytes(range(32))
UPLOAD_LIMIT = 64 * 1024
STARTUP_TIMEOUT_SECONDS = 10.0

ASGIApp = Callable[..., Any]


@contextmanager
def serve_in_thread(app: ASGIApp, *, http: str = "auto") -> Iterator[str]:
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
def live_server() -> Iterator[Callable[[ASGIApp], str]]:
    """Return ``start(app) -> base URL``; every server started is shut down when the test ends."""
    with ExitStack() as servers:
        yield lambda app: servers.enter_context(serve_in_thread(app))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Return settings whose home, database and blobs all live in the test's temporary directory."""
    return Settings.resolve(home=tmp_path / "home", environ={})


@pytest.fixture
def blob_store(settings: Settings) -> BlobStore:
    """Return a local blob store in the test's home (not fsynced, for speed)."""
    return BlobStore(settings.storage_url, durable=False)


@pytest.fixture
def app(settings: Settings, blob_store: BlobStore) -> FastAPI:
    """Return a files-only app with a fixed signing key and a 64 KiB upload limit."""
    return create_app(settings, blob_store=blob_store, signing_key=SIGNING_KEY, upload_limit=UPLOAD_LIMIT)


@pytest.fixture
def signer(app: FastAPI) -> UrlSigner:
    """Return the app's URL signer."""
    return app.state.url_signer


@pytest.fixture
def base_url(app: FastAPI, live_server: Callable[[ASGIApp], str]) -> str:
    """Return the base URL of a live server running the files-only app."""
    return live_server(app)


class RecordingApp:
    """ASGI wrapper that records each HTTP request's method, Range header and response status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        entry: dict[str, Any] = {
            "method": scope["method"],
            "range": headers.get(b"range", b"").decode() or None,
            "status": None,
        }
        self.requests.append(entry)

        async def record_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        await self.app(scope, receive, record_status)


@pytest.fixture
def recorded(app: FastAPI, live_server: Callable[[ASGIApp], str]) -> tuple[RecordingApp, str]:
    """Return (recorder, base URL) for a live server whose requests are recorded."""
    recorder = RecordingApp(app)
    return recorder, live_server(recorder)
