"""The operator's REST API at ``/api/operator``: the operator commands over HTTP, documented in OpenAPI.

Each route mirrors a ``crowdalpha`` command and calls the same service function: accounts and their
API keys, models, dataset publishing (a version directory on the server), rounds (open with an
optional ``close_in`` such as ``1h``, close, status), the home's clock and the round tick. Every
route needs an API key with the ``operator`` scope (``crowdalpha account create --operator``) in
``Authorization: Token PUBLIC$SECRET``.

A refused request answers ``{"error": {"code": "<rule>", "message": "<rule>: <detail>"}}`` — the
service's rule code and the message the CLI prints — with 400 (bad input), 401 (missing or invalid
key), 403 (no operator scope), 404 (unknown account, model, tournament, round), 409 (the state
forbids it: a name taken, a round already open, outside the round window …) or 422 (a malformed
request body or parameter, naming the field).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from crowdalpha.api.dependencies import get_service, require_scope
from crowdalpha.service import (
    Context,
    RoundStatus,
    clear_clock,
    close_round,
    create_account,
    create_api_key,
    create_model,
    list_api_keys,
    open_round,
    publish_dataset,
    revoke_api_key,
    round_status,
    set_clock,
    tick,
    user_message,
)
from crowdalpha.service.clock import clock_state, parse_duration, parse_moment
from crowdalpha.service.errors import error_rule
from crowdalpha.store import Scope

logger = logging.getLogger(__name__)

PREFIX = "/api/operator"
INVALID_REQUEST = "invalid_request"
INTERNAL_ERROR = "internal_error"
INTERNAL_ERROR_MESSAGE = "internal_error: internal server error"

STATUS_OF_RULE: dict[str, int] = {
    "invalid_api_key": 401,
    "permission_denied": 403,
    "not_found": 404,
    "already_exists": 409,
    "model_name_taken": 409,
    "dataset_version_exists": 409,
    "round_already_open": 409,
    "round_already_opened": 409,
    "round_numbers_ahead": 409,
    "outside_round_window": 409,
    "no_open_round": 409,
    "no_dataset": 409,
    "no_live_file": 409,
    INVALID_REQUEST: 422,
    "no_database": 503,
}
"""The HTTP status of a refused request by its rule; every other rule is bad input (400)."""


def status_of_rule(rule: str) -> int:
    """Return the HTTP status that answers a request refused by ``rule``."""
    return STATUS_OF_RULE.get(rule, 400)


def error_body(code: str, message: str) -> dict[str, Any]:
    """Return the operator API's error document ``{"error": {"code", "message"}}``."""
    return {"error": {"code": code, "message": message}}


def _invalid_request(error: RequestValidationError) -> JSONResponse:
    problems = error.errors()
    first = problems[0] if problems else {}
    location = ".".join(str(part) for part in first.get("loc", ())) or "request"
    message = f"{INVALID_REQUEST}: {location}: {first.get('msg', 'invalid request')}"
    return JSONResponse(error_body(INVALID_REQUEST, message), status_code=status_of_rule(INVALID_REQUEST))


class OperatorRoute(APIRoute):
    """A route whose failures answer the operator error document, including those of its dependencies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return the route's handler wrapped so that every expected error names its rule."""
        handle = super().get_route_handler()

        async def handle_with_errors(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as error:
                return _invalid_request(error)
            except Exception as error:
                rule = error_rule(error)
                if rule is None:
                    logger.exception("operator API: %s %s failed", request.method, request.url.path)
                    return JSONResponse(error_body(INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE), status_code=500)
                message = user_message(error) or rule
                return JSONResponse(error_body(rule, message), status_code=status_of_rule(rule))

        return handle_with_errors


class ErrorDetail(BaseModel):
    """Why a request was refused: the rule's code and the message naming it."""

    code: str = Field(examples=["permission_denied"])
    message: str = Field(examples=["permission_denied: API key lacks the scope 'operator'"])


class ErrorOut(BaseModel):
    """The body of every refused operator request."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Bad input: the message names the rule broken."},
    401: {"model": ErrorOut, "description": "Missing, malformed or invalid API key."},
    403: {"model": ErrorOut, "description": "The API key lacks the operator scope."},
    404: {"model": ErrorOut, "description": "No such account, model, tournament or round."},
    409: {"model": ErrorOut, "description": "The tournament's state forbids it (e.g. a round is open)."},
    422: {"model": ErrorOut, "description": "A malformed body or parameter (the field is named)."},
}

router = APIRouter(
    prefix=PREFIX,
    tags=["operator"],
    route_class=OperatorRoute,
    dependencies=[Depends(require_scope(Scope.OPERATOR))],
    responses=ERROR_RESPONSES,
)

Service = Annotated[Context, Depends(get_service)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- accounts and keys ----------------------------------------------------------------------------------


class AccountIn(BaseModel):
    """A new account: its username (1-64 letters, digits, underscores), e-mail, and whether it operates."""

    username: str
    email: str | None = None
    operator: bool = False


class CreatedAccountOut(BaseModel):
    """The new account's first API key pair; the secret is shown in this answer only."""

    id: str
    username: str
    public_id: str
    secret_key: str
    operator: bool


@router.post(
    "/accounts",
    status_code=201,
    response_model=CreatedAccountOut,
    summary="Create an account",
    description="Create a participant account (or, with `operator: true`, another operator) and return its"
    " first API key pair, holding every numerapi scope. The secret key is shown only in this answer."
    " Mirrors `crowdalpha account create`.",
)
def post_account(body: AccountIn, service: Service) -> CreatedAccountOut:
    """Return the new account with its key pair."""
    created = create_account(service, body.username, body.email, operator=body.operator)
    return CreatedAccountOut(
        id=created.account.id,
        username=created.account.username,
        public_id=created.public_id,
        secret_key=created.secret_key,
        operator=body.operator,
    )


class ApiKeyOut(_Out):
    """An API key as listed (never its secret)."""

    name: str
    public_id: str
    scopes: list[str]
    created_at: datetime


class ApiKeyIn(BaseModel):
    """A new API key: its name and numerapi scopes (the operator scope is not granted here)."""

    name: str
    scopes: list[str]


class CreatedApiKeyOut(ApiKeyOut):
    """A new API key with its secret, shown in this answer only."""

    secret_key: str


@router.get(
    "/accounts/{username}/keys",
    response_model=list[ApiKeyOut],
    summary="List an account's API keys",
    description="Return the account's active API keys, oldest first: name, public id, scopes, creation"
    " time. Secrets are never stored, so never listed.",
)
def get_api_keys(username: str, service: Service) -> list[ApiKeyOut]:
    """Return the account's active keys."""
    return [ApiKeyOut.model_validate(key) for key in list_api_keys(service, username)]


@router.post(
    "/accounts/{username}/keys",
    status_code=201,
    response_model=CreatedApiKeyOut,
    summary="Create an API key",
    description="Create an API key for the account with the given numerapi scopes (`upload_submission`,"
    " `stake`, `read_submission_info`, `read_user_info`). The secret key is shown only in this answer.",
)
def post_api_key(username: str, body: ApiKeyIn, service: Service) -> CreatedApiKeyOut:
    """Return the new key with its secret."""
    created = create_api_key(service, username, body.name, body.scopes)
    listed = ApiKeyOut.model_validate(created.info)
    return CreatedApiKeyOut(**listed.model_dump(), secret_key=created.secret_key)


@router.delete(
    "/accounts/{username}/keys/{public_id}",
    status_code=204,
    summary="Revoke an API key",
    description="Revoke one of the account's API keys; requests signed with it are refused from now on.",
)
def delete_api_key(username: str, public_id: str, service: Service) -> Response:
    """Return an empty 204 answer once the key is revoked."""
    revoke_api_key(service, username, public_id)
    return Response(status_code=204)


# -- models and datasets --------------------------------------------------------------------------------


class ModelIn(BaseModel):
    """A new model: the owning account's username, the tournament and the model's name."""

    account: str
    name: str
    tournament: str = "classic"


class ModelOut(BaseModel):
    """A model: its id, name, tournament (numerapi id) and owner."""

    id: str
    name: str
    tournament: int
    account: str


@router.post(
    "/models",
    status_code=201,
    response_model=ModelOut,
    summary="Create a model",
    description="Create a model for an account in a tournament (`classic`, `signals`, `crypto` or a"
    " numerapi tournament id); names are unique within a tournament. Mirrors `crowdalpha model create`.",
)
def post_model(body: ModelIn, service: Service) -> ModelOut:
    """Return the new model."""
    model = create_model(service, body.account, body.tournament, body.name)
    return ModelOut(id=model.id, name=model.name, tournament=model.tournament_id, account=body.account)


class DatasetIn(BaseModel):
    """A built dataset version directory on the server (named ``vMAJOR.MINOR``) and its tournament."""

    directory: str
    tournament: str = "classic"


class DatasetFileOut(_Out):
    """A published file: its name as numerapi lists it, size in bytes, SHA-256."""

    name: str
    size_bytes: int
    sha256: str


class PublishedDatasetOut(_Out):
    """A published dataset version and its files."""

    tournament: str
    version: str
    files: list[DatasetFileOut]


@router.post(
    "/datasets",
    status_code=201,
    response_model=PublishedDatasetOut,
    summary="Publish a dataset version",
    description="Publish a built version directory that is on the server's file system (its public part,"
    " e.g. `out/public/v1.0`) as the tournament's newest dataset version; versions are never"
    " overwritten. Mirrors `crowdalpha dataset publish`.",
)
def post_dataset(body: DatasetIn, service: Service) -> PublishedDatasetOut:
    """Return the published version with its files."""
    return PublishedDatasetOut.model_validate(publish_dataset(service, body.directory, body.tournament))


# -- rounds, clock, tick --------------------------------------------------------------------------------


class RoundOpenIn(BaseModel):
    """How to open a round: on the calendar (no ``close_in``), or now, closing after ``close_in``."""

    close_in: str | None = Field(default=None, examples=["1h"], description="e.g. 1h, 30m, 90s or 1h30m")


RoundStatusOut = RoundStatus
"""The operator's view of a round is the service's own dataclass: FastAPI documents and serialises it."""


@router.post(
    "/rounds/{tournament}/open",
    response_model=RoundStatusOut,
    summary="Open a round",
    description="Open the round whose calendar window is open now, or — with `close_in` (e.g. `1h`) — a"
    " round now, off the calendar, closing after that long. Publishes the round's live data; the models'"
    " submission webhooks are called once it is open. Mirrors `crowdalpha round open`.",
)
def post_round_open(tournament: str, service: Service, body: RoundOpenIn | None = None) -> RoundStatusOut:
    """Return the opened round's status."""
    close_in = None if body is None or body.close_in is None else parse_duration(body.close_in)
    return open_round(service, tournament, close_in=close_in)


@router.post(
    "/rounds/{tournament}/close",
    response_model=RoundStatusOut,
    summary="Close the open round",
    description="Close the tournament's open round now; later uploads count as late."
    " Mirrors `crowdalpha round close`.",
)
def post_round_close(tournament: str, service: Service) -> RoundStatusOut:
    """Return the closed round's status."""
    return close_round(service, tournament)


@router.get(
    "/rounds/{tournament}",
    response_model=RoundStatusOut,
    summary="Show a round",
    description="Return a round's state, times, live data and number of selected submissions: round"
    " `number`, or the current (latest opened) round. Mirrors `crowdalpha round status`.",
)
def get_round(
    tournament: str,
    service: Service,
    number: Annotated[int | None, Query(description="A round number (default: the current round).")] = None,
) -> RoundStatusOut:
    """Return the round's status."""
    return round_status(service, tournament, number)


class ClockIn(BaseModel):
    """The moment to fix the home's clock at: ISO 8601, no offset meaning UTC."""

    now: str = Field(examples=["2026-01-06T12:30Z"])


class ClockOut(_Out):
    """The home's clock: ``set`` or ``wall``, and its current moment (UTC)."""

    clock: str
    now: datetime


@router.get(
    "/clock",
    response_model=ClockOut,
    summary="Show the clock",
    description="Return the home's current time and whether it is a set moment or the wall clock."
    " Mirrors `crowdalpha clock show`.",
)
def get_clock(service: Service) -> ClockOut:
    """Return the home's clock."""
    return ClockOut.model_validate(clock_state(service.settings))


@router.post(
    "/clock",
    response_model=ClockOut,
    summary="Set the clock",
    description="Fix the home's clock at a moment (for rehearsals and demos); the server, its tick and"
    " every later command on the home use it. Mirrors `crowdalpha clock set`.",
)
def post_clock(body: ClockIn, service: Service) -> ClockOut:
    """Return the clock after setting it."""
    set_clock(service.settings, parse_moment(body.now))
    return ClockOut.model_validate(clock_state(service.settings))


@router.delete(
    "/clock",
    response_model=ClockOut,
    summary="Clear the clock",
    description="Return the home to the wall clock. Mirrors `crowdalpha clock clear`.",
)
def delete_clock(service: Service) -> ClockOut:
    """Return the clock after clearing it."""
    clear_clock(service.settings)
    return ClockOut.model_validate(clock_state(service.settings))


class TickReportOut(_Out):
    """What one tick did: rounds created, job keys run, job keys failed with their message."""

    now: datetime
    created_rounds: list[str]
    ran: list[str]
    failed: dict[str, str]


@router.post(
    "/tick",
    response_model=TickReportOut,
    summary="Run the round tick",
    description="Run every round transition (open, close) that is due on the calendar, each once, as the"
    " server's background tick does. A failed job is reported under `failed`, not as an error."
    " Mirrors `crowdalpha round tick`.",
)
def post_tick(service: Service) -> TickReportOut:
    """Return the tick's report."""
    return TickReportOut.model_validate(tick(service))
