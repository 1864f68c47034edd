"""API test fixtures: a files-only app on a live server (``live_server`` is in the shared conftest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from api_helpers import SIGNING_KEY, UPLOAD_LIMIT, ASGIApp, RecordingApp
from fastapi import FastAPI

from crowdalpha.api import UrlSigner, create_app
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore


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


@pytest.fixture
def recorded(app: FastAPI, live_server: Callable[[ASGIApp], str]) -> tuple[RecordingApp, str]:
    """Return (recorder, base URL) for a live server whose requests are recorded."""
    recorder = RecordingApp(app)
    return recorder, live_server(recorder)
