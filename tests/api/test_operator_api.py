"""The operator REST API against a real server on loopback (SQLite and PostgreSQL).

The server's clock is the home's (``HomeClock``), so ``POST /api/operator/clock`` moves it exactly as
``crowdalpha clock set`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from api_helpers import SIGNING_KEY, ASGIApp
from sqlalchemy import Engine

from crowdalpha.api import create_app
from crowdalpha.service import Context, HomeClock, authenticate, create_account, init_home, set_clock
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore, Scope

TUESDAY_AFTERNOON = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)
"""A Tuesday after the Classic window (12:00-13:00 UTC): a round opens only with ``close_in``."""


@dataclass
class Operated:
    """A live server, its service context, and an operator's and a participant's Authorization headers."""

    base_url: str
    ctx: Context
    operator: dict[str, str]
    participant: dict[str, str]

    def call(self, method: str, path: str, *, as_operator: bool = True, **kwargs: Any) -> requests.Response:
        """Return the server's answer to ``method /api/operator<path>`` (with the operator's key)."""
        headers = self.operator if as_operator else self.participant
        return requests.request(
            method, f"{self.base_url}/api/operator{path}", headers=headers, timeout=30, **kwargs
        )


def token(public_id: str, secret_key: str) -> dict[str, str]:
    """Return the Authorization header of an API key pair."""
    return {"Authorization": f"Token {public_id}${secret_key}"}


@pytest.fixture
def operated(engine: Engine, tmp_path: Path, live_server: Callable[[ASGIApp], str]) -> Operated:
    """Return a live server on a fresh home of the variant's database, its clock set to Tuesday 15:00."""
    settings = Settings(
        home=tmp_path / "home",
        database_url=engine.url.render_as_string(hide_password=False),
        storage_url=str(tmp_path / "blobs"),
    )
    init_home(settings)
    set_clock(settings, TUESDAY_AFTERNOON)
    blobs = BlobStore(settings.storage_url, durable=False)
    ctx = Context(engine=engine, blobs=blobs, clock=HomeClock(settings), settings=settings)
    root = create_account(ctx, "root", operator=True)
    participant = create_account(ctx, "carol")
    app = create_app(settings, blob_store=blobs, signing_key=SIGNING_KEY, engine=engine)
    return Operated(
        live_server(app),
        ctx,
        token(root.public_id, root.secret_key),
        token(participant.public_id, participant.secret_key),
    )


def error_of(response: requests.Response) -> tuple[int, str, str]:
    """Return (status, code, message) of an operator API error answer."""
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def test_an_operator_runs_a_round_over_rest(operated: Operated, classic_version_dir: Path) -> None:
    account = operated.call("POST", "/accounts", json={"username": "alice", "email": "a@example.org"})
    assert account.status_code == 201
    keys = account.json()
    assert (keys["username"], keys["operator"]) == ("alice", False)
    alice = authenticate(operated.ctx, token(keys["public_id"], keys["secret_key"])["Authorization"])
    assert alice.username == "alice" and alice.id == keys["id"]

    model = operated.call("POST", "/models", json={"account": "alice", "name": "alpha"})
    assert model.status_code == 201
    assert {key: model.json()[key] for key in ("name", "tournament", "account")} == {
        "name": "alpha",
        "tournament": 8,
        "account": "alice",
    }

    published = operated.call("POST", "/datasets", json={"directory": str(classic_version_dir)})
    assert published.status_code == 201
    assert published.json()["version"] == "v1.0" and len(published.json()["files"]) == 6
    assert {item["name"] for item in published.json()["files"]} >= {"v1.0/train.parquet", "v1.0/live.parquet"}

    assert error_of(operated.call("POST", "/rounds/classic/open"))[:2] == (409, "outside_round_window")
    opened = operated.call("POST", "/rounds/classic/open", json={"close_in": "1h"})
    assert opened.status_code == 200
    status = opened.json()
    assert (status["state"], status["universe_size"]) == ("open", 30)
    assert status["open_time"] == "2026-01-06T15:00:00Z"
    assert status["close_staking_time"] == "2026-01-06T16:00:00Z"
    assert status["live_file"] == f"v1.0/live_{status['number']}.parquet"

    shown = operated.call("GET", "/rounds/classic")
    assert shown.status_code == 200 and shown.json() == status
    assert operated.call("GET", f"/rounds/8?number={status['number']}").json() == status

    clock = operated.call("POST", "/clock", json={"now": "2026-01-06T16:30"})
    assert clock.json() == {"clock": "set", "now": "2026-01-06T16:30:00Z"}
    assert operated.call("GET", "/clock").json() == clock.json()
    ticked = operated.call("POST", "/tick")
    assert ticked.status_code == 200
    assert ticked.json()["ran"] == [f"classic/{status['number']}/close/2026-01-06"]
    assert ticked.json()["failed"] == {} and ticked.json()["now"] == "2026-01-06T16:30:00Z"
    assert operated.call("GET", "/rounds/classic").json()["state"] == "closed"
    assert error_of(operated.call("POST", "/rounds/classic/close")) == (
        409,
        "no_open_round",
        "no_open_round: no classic round is open",
    )

    cleared = operated.call("DELETE", "/clock")
    assert cleared.json()["clock"] == "wall"
    assert abs(datetime.fromisoformat(cleared.json()["now"]) - datetime.now(UTC)).total_seconds() < 60


def test_closing_a_round_over_rest(operated: Operated, classic_version_dir: Path) -> None:
    operated.call("POST", "/datasets", json={"directory": str(classic_version_dir), "tournament": "classic"})
    number = operated.call("POST", "/rounds/classic/open", json={"close_in": "2h"}).json()["number"]
    operated.call("POST", "/clock", json={"now": "2026-01-06T15:20:00+00:00"})
    closed = operated.call("POST", "/rounds/classic/close")
    assert closed.status_code == 200
    assert (closed.json()["number"], closed.json()["state"]) == (number, "closed")
    assert closed.json()["close_staking_time"] == "2026-01-06T15:20:00Z"


def test_api_keys_are_created_listed_and_revoked(operated: Operated) -> None:
    operated.call("POST", "/accounts", json={"username": "alice"})
    created = operated.call(
        "POST", "/accounts/alice/keys", json={"name": "ci", "scopes": ["upload_submission"]}
    )
    assert created.status_code == 201
    key = created.json()
    assert (key["name"], key["scopes"]) == ("ci", ["upload_submission"]) and len(key["secret_key"]) == 64
    header = token(key["public_id"], key["secret_key"])["Authorization"]
    assert authenticate(operated.ctx, header, Scope.UPLOAD_SUBMISSION).username == "alice"

    listed = operated.call("GET", "/accounts/alice/keys").json()
    assert [item["name"] for item in listed] == ["default", "ci"] and "secret_key" not in listed[1]
    assert operated.call("DELETE", f"/accounts/alice/keys/{key['public_id']}").status_code == 204
    assert [item["name"] for item in operated.call("GET", "/accounts/alice/keys").json()] == ["default"]
    assert error_of(operated.call("DELETE", f"/accounts/alice/keys/{key['public_id']}")) == (
        404,
        "not_found",
        f"not_found: account 'alice' has no active API key '{key['public_id']}'",
    )
    assert error_of(
        operated.call("POST", "/accounts/alice/keys", json={"name": "root", "scopes": ["operator"]})
    ) == (
        403,
        "permission_denied",
        "permission_denied: the operator scope is granted only by `crowdalpha account create --operator`",
    )


def test_a_missing_or_wrong_key_is_refused_with_401(operated: Operated) -> None:
    url = f"{operated.base_url}/api/operator/tick"
    assert error_of(requests.post(url, timeout=30)) == (
        401,
        "invalid_api_key",
        "invalid_api_key: missing API key: send the header 'Authorization: Token PUBLIC$SECRET'",
    )
    public_id = operated.operator["Authorization"].removeprefix("Token ").split("$")[0]
    wrong = token(public_id, "X" * 64)
    assert error_of(requests.post(url, headers=wrong, timeout=30)) == (
        401,
        "invalid_api_key",
        "invalid_api_key: invalid API key",
    )
    assert error_of(requests.post(url, headers={"Authorization": "Bearer abc"}, timeout=30)) == (
        401,
        "invalid_api_key",
        "invalid_api_key: malformed API key: expected the header 'Authorization: Token PUBLIC$SECRET'",
    )


def test_a_participant_key_without_the_operator_scope_is_refused_with_403(operated: Operated) -> None:
    forbidden = (403, "permission_denied", "permission_denied: API key lacks the scope 'operator'")
    assert error_of(operated.call("POST", "/tick", as_operator=False)) == forbidden
    refused = operated.call("POST", "/accounts", as_operator=False, json={"username": "mallory"})
    assert error_of(refused) == forbidden
    # The refusal comes before any work: no account was created.
    assert operated.call("GET", "/accounts/mallory/keys").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        (
            "POST",
            "/accounts",
            {"username": "no spaces"},
            (
                400,
                "invalid_username",
                "invalid_username: a username is 1-64 letters, digits or underscores; got 'no spaces'",
            ),
        ),
        (
            "POST",
            "/accounts",
            {"email": "x@example.org"},
            (422, "invalid_request", "invalid_request: body.username: Field required"),
        ),
        (
            "POST",
            "/rounds/classic/open",
            {"close_in": "soon"},
            (
                400,
                "invalid_duration",
                "invalid_duration: write a duration like 1h, 30m, 90s or 1h30m; got 'soon'",
            ),
        ),
        (
            "POST",
            "/clock",
            {"now": "tuesday"},
            (
                400,
                "invalid_datetime",
                "invalid_datetime: write an ISO 8601 date-time such as 2026-01-06T12:30Z; got 'tuesday'",
            ),
        ),
        (
            "GET",
            "/rounds/chess",
            None,
            (
                404,
                "not_found",
                "not_found: no tournament named 'chess'; the tournaments are: classic, signals, crypto",
            ),
        ),
        (
            "GET",
            "/rounds/classic?number=many",
            None,
            (
                422,
                "invalid_request",
                "invalid_request: query.number: Input should be a valid integer,"
                " unable to parse string as an integer",
            ),
        ),
        (
            "POST",
            "/models",
            {"account": "nobody", "name": "alpha"},
            (404, "not_found", "not_found: no account named 'nobody'"),
        ),
        (
            "POST",
            "/datasets",
            {"directory": "/nonexistent/v1.0"},
            (
                400,
                "dataset_directory_missing",
                "dataset_directory_missing: /nonexistent/v1.0 is not a directory",
            ),
        ),
        (
            "POST",
            "/rounds/classic/open",
            {"close_in": "1h"},
            (
                409,
                "no_dataset",
                "no_dataset: classic has no dataset version to publish live data from;"
                " run `crowdalpha dataset publish DIR --tournament classic` first",
            ),
        ),
    ],
)
def test_bad_input_is_refused_naming_the_rule(
    operated: Operated, method: str, path: str, body: dict[str, Any] | None, expected: tuple[int, str, str]
) -> None:
    assert error_of(operated.call(method, path, json=body)) == expected


def test_a_taken_model_name_is_a_conflict(operated: Operated) -> None:
    operated.call("POST", "/accounts", json={"username": "alice"})
    assert operated.call("POST", "/models", json={"account": "alice", "name": "alpha"}).status_code == 201
    again = operated.call("POST", "/models", json={"account": "root", "name": "alpha", "tournament": "8"})
    assert error_of(again) == (
        409,
        "model_name_taken",
        "model_name_taken: a model named 'alpha' already exists in classic",
    )


EXPECTED_ROUTES = {
    ("post", "/api/operator/accounts"),
    ("get", "/api/operator/accounts/{username}/keys"),
    ("post", "/api/operator/accounts/{username}/keys"),
    ("delete", "/api/operator/accounts/{username}/keys/{public_id}"),
    ("post", "/api/operator/models"),
    ("post", "/api/operator/datasets"),
    ("post", "/api/operator/rounds/{tournament}/open"),
    ("post", "/api/operator/rounds/{tournament}/close"),
    ("get", "/api/operator/rounds/{tournament}"),
    ("get", "/api/operator/clock"),
    ("post", "/api/operator/clock"),
    ("delete", "/api/operator/clock"),
    ("post", "/api/operator/tick"),
}


def test_openapi_documents_every_operator_route(operated: Operated) -> None:
    document = requests.get(f"{operated.base_url}/openapi.json", timeout=30).json()
    routes = {
        (method, path): operation
        for path, operations in document["paths"].items()
        if path.startswith("/api/operator")
        for method, operation in operations.items()
    }
    assert set(routes) == EXPECTED_ROUTES
    for (method, path), operation in routes.items():
        assert operation["summary"] and len(operation["description"]) > 40, (method, path)
        assert operation["tags"] == ["operator"]
        assert operation["security"] == [{"ApiKey": []}]
        for status in ("401", "403", "422"):
            schema = operation["responses"][status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, status)
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "An API key as numerapi sends it: `Token PUBLIC$SECRET`.",
    }


def test_a_files_only_server_answers_that_it_has_no_database(base_url: str) -> None:
    assert error_of(requests.post(f"{base_url}/api/operator/tick", timeout=30)) == (
        503,
        "no_database",
        "no_database: this server runs without a database (files only)",
    )
