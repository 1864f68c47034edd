"""The app around the routes: /healthz with and without a database, and JSON errors instead of tracebacks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import sqlalchemy
from api_helpers import SIGNING_KEY, ASGIApp
from fastapi import FastAPI

from crowdalpha import __version__
from crowdalpha.api import create_app
from crowdalpha.api.signing import SIGNING_KEY_ENV
from crowdalpha.settings import Settings

TIMEOUT = 10


def test_healthz_without_a_database(base_url: str) -> None:
    response = requests.get(f"{base_url}/healthz", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__, "database": "not configured"}


def test_healthz_checks_the_database(
    settings: Settings, tmp_path: Path, live_server: Callable[[ASGIApp], str]
) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/crowdalpha.db")
    base_url = live_server(create_app(settings, signing_key=SIGNING_KEY, engine=engine))
    response = requests.get(f"{base_url}/healthz", timeout=TIMEOUT)
    assert (response.status_code, response.json()["database"]) == (200, "ok")


def test_healthz_is_503_when_the_database_is_unreachable(
    settings: Settings, tmp_path: Path, live_server: Callable[[ASGIApp], str]
) -> None:
    unreachable = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/no/such/directory/db.sqlite")
    base_url = live_server(create_app(settings, signing_key=SIGNING_KEY, engine=unreachable))
    response = requests.get(f"{base_url}/healthz", timeout=TIMEOUT)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "version": __version__, "database": "unreachable"}


def test_every_error_is_json_and_an_unexpected_one_hides_its_traceback(
    app: FastAPI, live_server: Callable[[ASGIApp], str]
) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    def typed(count: int) -> int:
        return count

    app.add_api_route("/boom", boom)
    app.add_api_route("/typed", typed)
    base_url = live_server(app)

    crash = requests.get(f"{base_url}/boom", timeout=TIMEOUT)
    assert (crash.status_code, crash.json()) == (500, {"detail": "internal server error"})
    invalid = requests.get(f"{base_url}/typed?count=many", timeout=TIMEOUT)
    assert invalid.status_code == 422
    assert invalid.json()["detail"].startswith("invalid query.count: ")
    assert requests.get(f"{base_url}/healthz", timeout=TIMEOUT).status_code == 200


def test_the_app_reads_its_defaults_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    settings = Settings.resolve(home=tmp_path / "home", upload_limit="2MiB", environ={})
    app = create_app(settings)
    assert app.state.upload_limit == 2 * 1024 * 1024
    assert app.state.blob_store.url == settings.storage_url
    assert app.state.url_signer.key == bytes.fromhex((settings.home / "signing.key").read_text())
    assert create_app(settings).state.url_signer.key == app.state.url_signer.key
    assert {"/healthz", "/files/{key}", "/uploads/{key}"} <= set(app.openapi()["paths"])
