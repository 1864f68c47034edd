"""GraphQL at ``/graphql``: the operations numerapi 3.x sends, answered by the service layer (Ariadne).

The schema (``schema.graphql``) is the contract: root fields, arguments and selected fields exactly
as numerapi declares them (reference §2.3). Every answer is HTTP 200; a refused request is a GraphQL
error whose message is the service's ``<rule>: <detail>``, which numerapi raises as ``ValueError``.

Uploads follow numerapi's three steps. ``submission_upload_auth`` returns a signed PUT URL for a
fresh blob key ``uploads/<model id>/<uuid>-<file name>`` and that key as ``filename``; numerapi
PUTs the file there and hands the key back to ``create_submission``, which checks that the key
names the same model, validates the file and renames it into place as the submission
(``submit_upload``; the upload key is gone afterwards, accepted or not). A PUT the file routes
refuse (too large, interrupted) leaves ``<key>.rejected`` holding the reason, so
``create_submission`` can say why — numerapi ignores the PUT's status.

Stakes: numerapi sends no idempotency key, so each stake request gets a fresh one scoped to the
account (``api/<account id>/<uuid4>``). Amounts arrive as token text and are parsed exactly
(``parse_tokens``). A decrease or drain is a release request: ``status`` "pending" with the due
round's resolve time as ``dueDate``, or "completed" when the model had no active round. Scores,
reputations are read from :mod:`crowdalpha.service.performance`, leaderboards from the snapshots of
:mod:`crowdalpha.service.web_leaderboard` (the web pages' tables).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from functools import partial, wraps
from importlib import resources
from typing import Any

import anyio
import anyio.to_thread
from ariadne import MutationType, ObjectType, QueryType, make_executable_schema
from ariadne.asgi import GraphQL
from ariadne.asgi.handlers import GraphQLHTTPHandler
from fastapi import FastAPI
from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crowdalpha.api.dependencies import get_service
from crowdalpha.api.documents import DocumentCache
from crowdalpha.api.signing import UrlSigner
from crowdalpha.ledger import AmountError, format_tokens, parse_tokens
from crowdalpha.service import (
    Context,
    LedgerReceipt,
    ServiceError,
    account_entries,
    authenticate,
    authenticate_from_memory,
    create_diagnostics,
    get_diagnostics,
    increase_stake,
    list_api_keys,
    list_dataset_files,
    list_models,
    list_submissions,
    open_dataset_file,
    public_models,
    request_release,
    set_submission_webhook,
    user_message,
)
from crowdalpha.service._tournaments import load_tournament
from crowdalpha.service.models import owned_model
from crowdalpha.service.performance import (
    ModelPayout,
    ScoreRecord,
    daily_performances,
    model_payouts,
    model_profile,
    round_performances,
    submission_scores,
)
from crowdalpha.service.submissions import (
    UploadModel,
    submit_upload,
    upload_model,
    upload_model_from_memory,
)
from crowdalpha.service.uploads import new_upload_key, record_rejected_upload
from crowdalpha.service.web_leaderboard import LeaderboardRow, ranked_leaderboard
from crowdalpha.store import Account, Model, RoundState, Scope, run_transaction
from crowdalpha.store import Round as RoundRow
from crowdalpha.tournament.reputation import ACCOUNT, MODEL

logger = logging.getLogger(__name__)

GRAPHQL_PATH = "/graphql"
CLASSIC_TOURNAMENT = 8
SIGNALS_TOURNAMENT = 11
INTERNAL_ERROR_MESSAGE = "internal server error"

STATES_OF_STATUS: dict[str, tuple[RoundState, ...]] = {
    "UPCOMING": (RoundState.UPCOMING,),
    "OPEN": (RoundState.OPEN,),
    "RESOLVING": (RoundState.CLOSED, RoundState.SCORING),
    "RESOLVED": (RoundState.RESOLVED,),
}
"""numerapi's RoundStatus enum in terms of our round states."""

query = QueryType()
mutation = MutationType()
model_type = ObjectType("Model")
account_type = ObjectType("Account")
profile_type = ObjectType("UserProfile")
signals_profile_type = ObjectType("SignalsProfile")


def load_schema_text() -> str:
    """Return the SDL of the numerapi-compatible schema (package data)."""
    return resources.files("crowdalpha.api").joinpath("schema.graphql").read_text()


# -- plumbing ------------------------------------------------------------------------------------------


def _service(info: GraphQLResolveInfo) -> Context:
    """Return the app's service Context; raise ``no_database`` when the app serves files only."""
    return get_service(info.context["request"])


def _account(info: GraphQLResolveInfo, scope: Scope) -> Account:
    """Return the account of the request's API key, which must hold ``scope``."""
    request: Request = info.context["request"]
    return authenticate(_service(info), request.headers.get("authorization"), scope)


def _iso(moment: datetime | None) -> str | None:
    """Return a moment as ISO 8601 text in UTC (None stays None)."""
    if moment is None:
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def threaded(resolver: Callable[..., Any]) -> Callable[..., Any]:
    """Return an async resolver running ``resolver`` in the thread pool (it blocks on the database)."""

    @wraps(resolver)
    async def run(obj: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
        return await run_in_threadpool(resolver, obj, info, **arguments)

    return run


SUBMISSION_THREADS = int(os.environ.get("CROWDALPHA_SUBMISSION_THREADS", "3"))
"""Threads per server process that validate and record submitted files at once (the rest queue, first
come first served). Each submission is a few milliseconds of CPU; with every waiting one in its own
thread they fought over the interpreter lock, starving the event loop (so the small requests waited
too) and finishing in no particular order."""


def _submission_limiter(request: Request) -> anyio.CapacityLimiter:
    """Return this app's limiter of submission threads on the running event loop (made on first use)."""
    loop = asyncio.get_running_loop()
    found = getattr(request.app.state, "submission_limiter", None)
    if found is None or found[0] is not loop:
        found = (loop, anyio.CapacityLimiter(SUBMISSION_THREADS))
        request.app.state.submission_limiter = found
    return found[1]


def submitting(resolver: Callable[..., Any]) -> Callable[..., Any]:
    """Return an async resolver running ``resolver`` on one of the few submission threads (see above)."""

    @wraps(resolver)
    async def run(obj: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
        limiter = _submission_limiter(info.context["request"])
        return await anyio.to_thread.run_sync(partial(resolver, obj, info, **arguments), limiter=limiter)

    return run


def _required_model_id(model_id: str | None) -> str:
    """Return the request's modelId; ``missing_model_id`` when it sent none."""
    if not model_id:
        raise ServiceError("missing_model_id", "pass the modelId of one of your models")
    return model_id


def _owned_model(ctx: Context, account: Account, model_id: str | None) -> Model:
    """Return the account's model with this id; ``not_found`` or ``permission_denied`` otherwise."""
    return owned_model(ctx, account, _required_model_id(model_id))


# -- rounds and datasets -------------------------------------------------------------------------------


def _round_fields(row: RoundRow) -> dict[str, Any]:
    """Return a stored round with numerapi's field names."""
    resolved = row.state == RoundState.RESOLVED.value
    return {
        "id": row.id,
        "tournament": row.tournament_id,
        "number": row.number,
        "target": None,
        "openTime": _iso(row.open_time),
        "closeTime": _iso(row.close_time),
        "closeStakingTime": _iso(row.close_staking_time),
        "scoreTime": _iso(row.score_time),
        "resolveTime": _iso(row.resolve_time),
        "resolvedGeneral": resolved,
        "resolvedStaking": resolved,
        "payoutFactor": None,
        "stakeThreshold": None,
        "dataDatestamp": row.data_datestamp,
        "roundScoreConfigs": [],
    }


@query.field("rounds")
@threaded
def resolve_rounds(
    _: Any,
    info: GraphQLResolveInfo,
    tournament: int | None = None,
    number: int | None = None,
    status: str | None = None,
    limit: int | None = None,
    **__: Any,
) -> list[dict[str, Any]]:
    """Return rounds newest first; ``number: 0`` is the current round (an error when none has opened)."""
    ctx = _service(info)

    def work(uow: Any) -> list[dict[str, Any]]:
        loaded = load_tournament(uow, tournament if tournament is not None else CLASSIC_TOURNAMENT)
        if number == 0:
            current = uow.rounds.current(loaded.id)
            if current is None:
                raise ServiceError("no_round_opened", f"no {loaded.name} round has opened yet")
            return [_round_fields(current)]
        states = STATES_OF_STATUS[status] if status is not None else None
        rows = uow.rounds.list(loaded.id, number=number, states=states, limit=limit)
        return [_round_fields(row) for row in rows]

    return run_transaction(ctx.engine, work, read_only=True)


@query.field("listDatasets")
@threaded
def resolve_list_datasets(
    _: Any, info: GraphQLResolveInfo, round: int | None = None, tournament: int | None = None
) -> list[str]:
    """Return the names of the dataset files of the round (default: the current round)."""
    files = list_dataset_files(_service(info), tournament or CLASSIC_TOURNAMENT, round)
    return [item.name for item in files]


@query.field("dataset")
@threaded
def resolve_dataset(
    _: Any, info: GraphQLResolveInfo, filename: str, round: int | None = None, tournament: int | None = None
) -> str:
    """Return a signed download URL (GET/HEAD, with Range) of one dataset file."""
    opened = open_dataset_file(_service(info), tournament or CLASSIC_TOURNAMENT, filename, round)
    request: Request = info.context["request"]
    signer: UrlSigner = request.app.state.url_signer
    return signer.download_url(str(request.base_url), opened.info.blob_key)


# -- account, models, submissions ----------------------------------------------------------------------


def _model_fields(model: Model) -> dict[str, Any]:
    return {"id": model.id, "name": model.name, "tournament": model.tournament_id}


@query.field("account")
@threaded
def resolve_account(_: Any, info: GraphQLResolveInfo) -> dict[str, Any]:
    """Return the key's account with its models."""
    ctx = _service(info)
    account = _account(info, Scope.READ_USER_INFO)
    return {
        "id": account.id,
        "username": account.username,
        "email": account.email,
        "insertedAt": _iso(account.created_at),
        "walletAddress": None,
        "mfaEnabled": False,
        "status": "active",
        "models": [_model_fields(model) for model in list_models(ctx, account)],
        "apiTokens": [
            {"name": key.name, "public_id": key.public_id, "scopes": list(key.scopes)}
            for key in list_api_keys(ctx, account)
        ],
    }


@query.field("accountProfile")
@threaded
def resolve_account_profile(
    _: Any, info: GraphQLResolveInfo, username: str, tournament: int | None = None
) -> dict[str, Any]:
    """Return an account's public profile: its models in the tournament (all tournaments without one)."""
    models = public_models(_service(info), username, tournament)
    return {
        "username": username,
        "models": [
            {"id": model.id, "displayName": model.name, "tournament": model.tournament_id} for model in models
        ],
    }


@mutation.field("setSubmissionWebhook")
@threaded
def resolve_set_submission_webhook(
    _: Any, info: GraphQLResolveInfo, modelId: str, newSubmissionWebhook: str | None = None
) -> str:
    """Set or clear the model's submission webhook; return "true" as numerapi expects."""
    account = _account(info, Scope.UPLOAD_SUBMISSION)
    set_submission_webhook(_service(info), account, modelId, newSubmissionWebhook)
    return "true"


@query.field("model")
@threaded
def resolve_model(_: Any, info: GraphQLResolveInfo, modelId: str | None = None) -> dict[str, Any]:
    """Return one of the key's account's models."""
    account = _account(info, Scope.READ_USER_INFO)
    return _model_fields(_owned_model(_service(info), account, modelId))


def _submission_fields(item: Any) -> dict[str, Any]:
    return {
        "id": item.submission_id,
        "filename": item.filename,
        "insertedAt": _iso(item.received_at),
        "firstEffectiveDate": None,
        "selected": item.selected,
        "round": {"tournament": item.tournament_id, "number": item.round_number},
        "sha256": item.sha256,
        "status": item.status,
    }


@model_type.field("submissions")
@threaded
def resolve_model_submissions(model: dict[str, Any], info: GraphQLResolveInfo) -> list[dict[str, Any]]:
    """Return a model's submissions, newest first."""
    account = _account(info, Scope.READ_USER_INFO)
    return [_submission_fields(item) for item in list_submissions(_service(info), account, model["id"])]


@query.field("submissions")
@threaded
def resolve_submissions(_: Any, info: GraphQLResolveInfo, modelId: str | None = None) -> list[dict[str, Any]]:
    """Return the submissions of one model (or of every model of the account), newest first."""
    ctx = _service(info)
    account = _account(info, Scope.READ_SUBMISSION_INFO)
    model_ids = [modelId] if modelId else [model.id for model in list_models(ctx, account)]
    return [
        _submission_fields(item)
        for model_id in model_ids
        for item in list_submissions(ctx, account, model_id)
    ]


# -- uploads --------------------------------------------------------------------------------------------


def _upload_url(info: GraphQLResolveInfo, model: UploadModel, filename: str, tournament: int | None) -> dict:
    """Return ``{filename, url}``: a fresh upload key of the model and the signed URL to PUT it to."""
    _require_tournament(model, tournament)
    key = new_upload_key(model.id, filename)
    request: Request = info.context["request"]
    signer: UrlSigner = request.app.state.url_signer
    return {"filename": key, "url": signer.upload_url(str(request.base_url), key)}


def _upload_auth(
    info: GraphQLResolveInfo, filename: str, tournament: int | None, model_id: str | None
) -> dict:
    ctx = _service(info)
    account = _account(info, Scope.UPLOAD_SUBMISSION)
    return _upload_url(info, upload_model(ctx, account, _required_model_id(model_id)), filename, tournament)


async def _upload_auth_soon(
    info: GraphQLResolveInfo, filename: str, tournament: int | None, model_id: str | None
) -> dict:
    """Answer an upload-URL request on the event loop when its token and model are known from memory.

    numerapi asks for a URL before every file with the same token and model: that answer needs no
    database, so it skips the thread-pool round trip; anything else goes through ``_upload_auth``.
    """
    ctx = _service(info)
    request: Request = info.context["request"]
    account = authenticate_from_memory(ctx, request.headers.get("authorization"), Scope.UPLOAD_SUBMISSION)
    model = None if account is None else upload_model_from_memory(ctx, account, _required_model_id(model_id))
    if model is None:
        return await run_in_threadpool(_upload_auth, info, filename, tournament, model_id)
    return _upload_url(info, model, filename, tournament)


@query.field("submission_upload_auth")
async def resolve_submission_upload_auth(
    _: Any, info: GraphQLResolveInfo, filename: str, tournament: int, modelId: str | None = None
) -> dict[str, str]:
    """Return ``{filename, url}``: where to PUT a Classic or Crypto file, and the name to submit it by."""
    return await _upload_auth_soon(info, filename, tournament, modelId)


@query.field("submissionUploadSignalsAuth")
async def resolve_signals_upload_auth(
    _: Any,
    info: GraphQLResolveInfo,
    filename: str,
    tournament: int | None = None,
    modelId: str | None = None,
) -> dict[str, str]:
    """Return ``{filename, url}``: where to PUT a Signals file, and the name to submit it by."""
    return await _upload_auth_soon(info, filename, tournament, modelId)


def _submit_upload(
    info: GraphQLResolveInfo, key: str, model_id: str | None, data_datestamp: int | None
) -> dict[str, Any]:
    ctx = _service(info)
    account = _account(info, Scope.UPLOAD_SUBMISSION)
    receipt = submit_upload(ctx, account, _required_model_id(model_id), key, data_datestamp=data_datestamp)
    return {
        "id": receipt.submission_id,
        "filename": receipt.filename,
        "insertedAt": _iso(receipt.received_at),
        "firstEffectiveDate": None,
        "selected": receipt.selected,
        "round": {"tournament": receipt.tournament_id, "number": receipt.round_number},
        "sha256": receipt.sha256,
        "status": receipt.status,
    }


@mutation.field("create_submission")
@submitting
def resolve_create_submission(
    _: Any,
    info: GraphQLResolveInfo,
    filename: str,
    modelId: str | None = None,
    dataDatestamp: int | None = None,
    **__: Any,
) -> dict[str, Any]:
    """Return the new submission of the uploaded Classic or Crypto file; a rejection names its rule."""
    return _submit_upload(info, filename, modelId, dataDatestamp)


@mutation.field("createSignalsSubmission")
@submitting
def resolve_create_signals_submission(
    _: Any,
    info: GraphQLResolveInfo,
    filename: str,
    modelId: str | None = None,
    dataDatestamp: int | None = None,
    **__: Any,
) -> dict[str, Any]:
    """Return the new submission of the uploaded Signals file; a rejection names its rule."""
    return _submit_upload(info, filename, modelId, dataDatestamp)


# -- diagnostics ----------------------------------------------------------------------------------------

PER_ERA_FIELDS = {
    "validationCorr": "corr",
    "validationMmc": "mmc",
    "validationBmc": "bmc",
    "validationFeatureNeutralCorr": "fnc",
    "validationFeatureCorrMax": "feature_exposure",
    "examplePredsCorr": "example_corr",
}
"""numerapi's per-era field → the stored score name (other per-era fields are null)."""

SUMMARY_FIELDS = {
    "validationCorrMean": ("corr", "mean"),
    "validationCorrStd": ("corr", "std"),
    "validationCorrSharpe": ("corr", "sharpe"),
    "validationCorrMaxDrawdown": ("corr", "max_drawdown"),
    "validationMaxDrawdown": ("corr", "max_drawdown"),
    "validationAutocorr": ("corr", "autocorrelation"),
    "validationMmcMean": ("mmc", "mean"),
    "validationMmcStd": ("mmc", "std"),
    "validationMmcSharpe": ("mmc", "sharpe"),
    "validationCorrPlusMmcMean": ("corr_plus_mmc", "mean"),
    "validationCorrPlusMmcStd": ("corr_plus_mmc", "std"),
    "validationCorrPlusMmcSharpe": ("corr_plus_mmc", "sharpe"),
    "validationBmcMean": ("bmc", "mean"),
    "validationFeatureNeutralCorrMean": ("fnc", "mean"),
    "validationFeatureCorrMax": ("feature_exposure", "mean"),
    "examplePredsCorrMean": ("example_corr", "mean"),
}
"""numerapi's summary field → (stored score, statistic); every other schema field is null."""


def _diagnostics_fields(record: dict[str, Any]) -> dict[str, Any]:
    """Return stored diagnostics with numerapi's field names (null where not computed)."""
    summary = record.get("summary") or {}
    fields: dict[str, Any] = {
        "id": record["id"],
        "status": record["status"],
        "message": record.get("message"),
        "updatedAt": record.get("updated_at"),
        "trainedOnVal": None,
        "erasAcceptedCount": record.get("eras_accepted", 0),
        "perEraDiagnostics": [
            {"era": row["era"], **{field: row.get(score) for field, score in PER_ERA_FIELDS.items()}}
            for row in record.get("per_era") or []
        ],
    }
    for field, (score, statistic) in SUMMARY_FIELDS.items():
        fields[field] = (summary.get(score) or {}).get(statistic)
    return fields


@query.field("diagnosticsUploadAuth")
@threaded
def resolve_diagnostics_upload_auth(
    _: Any, info: GraphQLResolveInfo, filename: str, tournament: int, modelId: str | None = None
) -> dict[str, str]:
    """Return ``{filename, url}``: where to PUT validation predictions, and the name to score them by."""
    return _upload_auth(info, filename, tournament, modelId)


@mutation.field("createDiagnostics")
@threaded
def resolve_create_diagnostics(
    _: Any, info: GraphQLResolveInfo, filename: str, modelId: str | None = None, **__: Any
) -> dict[str, Any]:
    """Score the uploaded validation predictions; a file breaking a rule gets status error."""
    ctx = _service(info)
    account = _account(info, Scope.UPLOAD_SUBMISSION)
    model = _owned_model(ctx, account, modelId)
    try:
        return {"id": create_diagnostics(ctx, account, model.id, filename)}
    finally:
        ctx.blobs.delete(filename)


@query.field("diagnostics")
@threaded
def resolve_diagnostics(
    _: Any, info: GraphQLResolveInfo, modelId: str, id: str | None = None
) -> dict[str, Any]:
    """Return the model's diagnostics with this id, or its newest."""
    ctx = _service(info)
    account = _account(info, Scope.READ_SUBMISSION_INFO)
    model = _owned_model(ctx, account, modelId)
    return _diagnostics_fields(get_diagnostics(ctx, account, model.id, id))


def make_rejection_recorder(app: FastAPI) -> Callable[[str, str], None]:
    """Return the upload-rejected hook: it leaves ``<key>.rejected`` with the reason for create_submission."""

    def record_rejection(key: str, message: str) -> None:
        record_rejected_upload(app.state.blob_store, key, message)

    return record_rejection


# -- staking and wallet --------------------------------------------------------------------------------

WALLET_TXNS_LIMIT = 1000
STAKE_CHANGE_TYPES = ("increase", "decrease")


def _require_tournament(model: Model | UploadModel, tournament: int | None) -> None:
    """Refuse a model of another tournament than the one the request names."""
    if tournament is not None and tournament != model.tournament_id:
        raise ServiceError(
            "wrong_tournament",
            f"model {model.name!r} is in tournament {model.tournament_id}, not {tournament}",
        )


def _tokens_argument(value: Any, where: str) -> int:
    """Return the nano-tokens of a token amount numerapi sent (text of a decimal or a float)."""
    try:
        return parse_tokens(str(value), where=where)
    except AmountError as error:
        raise ServiceError(error.rule, error.detail) from None


def _stake_key(account: Account) -> str:
    """Return a fresh idempotency key of one API stake request (numerapi sends none), scoped by account."""
    return f"api/{account.id}/{uuid.uuid4()}"


def _stake_model(
    info: GraphQLResolveInfo, model_id: str | None, tournament: int | None
) -> tuple[Account, Model]:
    account = _account(info, Scope.STAKE)
    model = _owned_model(_service(info), account, model_id)
    _require_tournament(model, tournament)
    return account, model


def _release_fields(receipt: LedgerReceipt) -> dict[str, Any]:
    """Return a release request's receipt with numerapi's stake-change field names."""
    result = receipt.result
    due = result.get("due_date")
    return {
        "id": str(receipt.transaction_id),
        "dueDate": _iso(datetime.fromisoformat(due)) if due else None,
        "dueRound": result.get("due_round"),
        "requestedAmount": format_tokens(result["amount_nano"]),
        "status": "completed" if result["completed"] else "pending",
        "type": "decrease",
        "drain": bool(result["drain"]),
    }


@mutation.field("v2ChangeStake")
@threaded
def resolve_change_stake(
    _: Any,
    info: GraphQLResolveInfo,
    value: str,
    type: str,
    tournamentNumber: int,
    modelId: str | None = None,
) -> dict[str, Any]:
    """Increase a model's stake from the wallet now, or request the release of part of it (decrease)."""
    if type not in STAKE_CHANGE_TYPES:
        raise ServiceError("invalid_stake_change", f"type must be 'increase' or 'decrease'; got {type!r}")
    amount = _tokens_argument(value, "value")
    account, model = _stake_model(info, modelId, tournamentNumber)
    ctx = _service(info)
    if type == "decrease":
        return _release_fields(
            request_release(ctx, account, model.id, amount, idempotency_key=_stake_key(account))
        )
    receipt = increase_stake(ctx, account, model.id, amount, idempotency_key=_stake_key(account))
    return {
        "id": str(receipt.transaction_id),
        "dueDate": None,
        "dueRound": None,
        "requestedAmount": format_tokens(amount),
        "status": "completed",
        "type": "increase",
        "drain": False,
    }


@mutation.field("releaseStake")
@threaded
def resolve_release_stake(
    _: Any, info: GraphQLResolveInfo, drain: Any, modelId: str | None = None, amount: str | None = None
) -> dict[str, Any]:
    """Request the release of ``amount`` tokens of a model's stake, or of all of it with ``drain``."""
    if not isinstance(drain, bool):
        raise ServiceError("invalid_drain", f"drain must be true or false; got {drain!r}")
    if not drain and amount is None:
        raise ServiceError("missing_amount", "pass the amount to release, or drain: true to release all")
    nano = None if drain else _tokens_argument(amount, "amount")
    account, model = _stake_model(info, modelId, None)
    receipt = request_release(_service(info), account, model.id, nano, idempotency_key=_stake_key(account))
    return _release_fields(receipt)


@account_type.field("walletTxns")
@threaded
def resolve_wallet_txns(_: Any, info: GraphQLResolveInfo) -> list[dict[str, Any]]:
    """Return the ledger entries that moved the key's account's wallet or its models' stakes, newest first."""
    ctx = _service(info)
    account = _account(info, Scope.READ_USER_INFO)
    tournaments = {model.id: model.tournament_id for model in list_models(ctx, account)}
    return [
        {
            "amount": format_tokens(entry.amount_nano),
            "from": entry.debit,
            "to": entry.credit,
            "status": "confirmed",
            "time": _iso(entry.created_at),
            "tournament": tournaments.get(entry.model_id) if entry.model_id else None,
            "txHash": str(entry.transaction_id),
            "type": entry.reason,
        }
        for entry in account_entries(ctx, account, limit=WALLET_TXNS_LIMIT)
    ]


# -- profiles, scores and leaderboards ------------------------------------------------------------------

DAILY_REPUTATION_FIELDS = {"corr": "corr20v2", "mmc": "mmc", "fnc": "fnc", "fncV3": "fnc_v3", "tc": "tc"}
"""Classic dailyModelPerformances' ``<field>Rep`` / ``<field>Rank`` → the stored score name."""

SIGNALS_DAILY_REPUTATION_FIELDS = {
    "corr": "corr_v4",
    "mmc": "mmc",
    "corr20d": "corr_v4",
    "corr60": "corr60",
    "ic": "ic_v2",
    "tc": "tc",
    "mmc20d": "mmc",
}
"""Signals dailyModelPerformances' ``<field>Rep`` / ``<field>Rank`` → the stored score name."""

LEADERBOARD_FIELDS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "v2Leaderboard": (
        {
            "corr20Rep": "corr20",
            "corr20V2Rep": "corr20v2",
            "corj60Rep": "corj60",
            "fncRep": "fnc",
            "fncV3Rep": "fnc_v3",
            "tcRep": "tc",
            "mmcRep": "mmc",
            "bmcRep": "bmc",
        },
        {},
    ),
    "signalsLeaderboard": (
        {"mmc": "mmc", "icRep": "ic_v2", "tcRep": "tc"},
        {"mmcRank": "mmc", "icRank": "ic_v2", "tcRank": "tc"},
    ),
    "cryptosignalsLeaderboard": ({"corrRep": "corr20", "mmcRep": "mmc"}, {}),
    "accountLeaderboard": (
        {
            "v2Corr20": "corr20v2",
            "cort20": "cort20",
            "corJ60": "corj60",
            "corrV4": "corr_v4",
            "fncV4": "fnc_v4",
            "icV2": "ic_v2",
            "mmc": "mmc",
            "ric": "ric",
        },
        {},
    ),
}
"""Per leaderboard root field: its reputation fields and its rank fields → the stored score name.

A field whose score the tournament does not compute is null; fields crowdalpha has no figure for
(1-day and all-time returns, returns in NMR, sharpe, today, prevRank) are null too.
"""

LEADERBOARD_TOURNAMENTS = {
    "v2Leaderboard": CLASSIC_TOURNAMENT,
    "signalsLeaderboard": SIGNALS_TOURNAMENT,
    "cryptosignalsLeaderboard": 12,
    "accountLeaderboard": CLASSIC_TOURNAMENT,
}


def _day_iso(day: date) -> str | None:
    """Return a calendar date as an ISO 8601 moment at midnight UTC."""
    return _iso(datetime.combine(day, time(), UTC))


def _profile_fields(info: GraphQLResolveInfo, tournament: int, model_name: str) -> dict[str, Any]:
    """Return a model's public profile by name, with its stake at risk as token text."""
    profile = model_profile(_service(info), tournament, model_name)
    return {
        "id": profile.model_id,
        "username": profile.name,
        "startDate": _iso(profile.created_at),
        "bio": None,
        "nmrStaked": format_tokens(profile.stake_nano),
        "stakeValue": format_tokens(profile.stake_nano) if profile.stake_nano else None,
        "tournament": profile.tournament_id,
    }


@query.field("v3UserProfile")
@threaded
def resolve_user_profile(
    _: Any,
    info: GraphQLResolveInfo,
    model_name: str | None = None,
    modelName: str | None = None,
    tournament: int | None = None,
) -> dict[str, Any]:
    """Return a model's public profile by name (Classic unless ``tournament`` says otherwise)."""
    return _profile_fields(info, tournament or CLASSIC_TOURNAMENT, model_name or modelName or "")


@query.field("v2SignalsProfile")
@threaded
def resolve_signals_profile(_: Any, info: GraphQLResolveInfo, modelName: str) -> dict[str, Any]:
    """Return a Signals model's public profile by name."""
    return _profile_fields(info, SIGNALS_TOURNAMENT, modelName)


def _daily_performances(fields: dict[str, str]) -> Callable[..., Any]:
    """Return the dailyModelPerformances resolver of a profile type whose fields name these scores."""

    @threaded
    def resolve(profile: dict[str, Any], info: GraphQLResolveInfo) -> list[dict[str, Any]]:
        performances = daily_performances(_service(info), profile["tournament"], profile["username"])
        return [
            {
                "date": _day_iso(item.date),
                **{f"{field}Rep": item.reputations.get(score) for field, score in fields.items()},
                **{f"{field}Rank": item.ranks.get(score) for field, score in fields.items()},
            }
            for item in performances
        ]

    resolve.__doc__ = "Return the model's reputations and ranks as of each date one of its rounds resolved."
    return resolve


profile_type.set_field("dailyModelPerformances", _daily_performances(DAILY_REPUTATION_FIELDS))
signals_profile_type.set_field("dailyModelPerformances", _daily_performances(SIGNALS_DAILY_REPUTATION_FIELDS))


def _score_fields(record: ScoreRecord) -> dict[str, Any]:
    return {
        "roundId": record.round_id,
        "submissionId": record.submission_id,
        "roundNumber": record.round_number,
        "roundResolveTime": _iso(record.round_resolve_time),
        "roundScoreTime": _iso(record.round_score_time),
        "roundCloseStakingTime": _iso(record.round_close_staking_time),
        "value": record.value,
        "percentile": record.percentile,
        "displayName": record.score,
        "version": None,
        "date": _day_iso(record.date),
        "day": record.day,
        "resolveDate": _iso(record.round_resolve_time) if record.resolved else None,
        "resolved": record.resolved,
    }


@query.field("submissionScores")
@threaded
def resolve_submission_scores(
    _: Any,
    info: GraphQLResolveInfo,
    modelId: str,
    displayName: str | None = None,
    version: str | None = None,
    day: int | None = None,
    resolved: bool | None = None,
    tournament: int | None = None,
    lastNRounds: int | None = None,
    distinctOnRound: bool | None = None,
) -> list[dict[str, Any]]:
    """Return a model's stored scores, filtered; scores have no version, so a version filter matches none."""
    records = submission_scores(
        _service(info),
        modelId,
        tournament=tournament,
        score=displayName,
        day=day,
        resolved=resolved,
        last_n_rounds=lastNRounds,
        distinct_on_round=bool(distinctOnRound),
    )
    return [] if version is not None else [_score_fields(record) for record in records]


def _tokens_or_none(nano: int | None) -> str | None:
    """Return nano-tokens as token text (None stays None)."""
    return None if nano is None else format_tokens(nano)


def _round_score_fields(record: ScoreRecord) -> dict[str, Any]:
    return {
        "date": _day_iso(record.date),
        "day": record.day,
        "displayName": record.score,
        "payoutPending": None,
        "payoutSettled": None,
        "percentile": record.percentile,
        "value": record.value,
    }


@query.field("v2RoundModelPerformances")
@threaded
def resolve_round_model_performances(
    _: Any, info: GraphQLResolveInfo, modelId: str, tournament: int
) -> list[dict[str, Any]]:
    """Return the rounds of a model, newest first, with final scores and every daily score."""
    return [
        {
            "atRisk": _tokens_or_none(item.at_risk_nano),
            "payoutMultipliers": [
                {
                    "id": None,
                    "scoreConfigId": None,
                    "name": term.score,
                    "version": None,
                    "displayName": term.display_name,
                    "multiplier": term.multiplier,
                }
                for term in item.payout_multipliers
            ],
            "roundPayoutFactor": None if item.payout_factor is None else str(item.payout_factor),
            "roundNumber": item.round_number,
            "roundOpenTime": _iso(item.open_time),
            "roundResolveTime": _iso(item.resolve_time),
            "roundResolved": item.resolved,
            "roundTarget": None,
            "submissionScores": [
                {
                    **_round_score_fields(record),
                    "payoutPending": _tokens_or_none(item.projected_payout_nano),
                    "payoutSettled": _tokens_or_none(item.payout_nano),
                }
                for record in item.final_scores
            ],
            "intraRoundSubmissionScores": [_round_score_fields(record) for record in item.daily_scores],
        }
        for item in round_performances(_service(info), modelId, tournament=tournament)
    ]


RETURN_FIELDS = {
    "v2Leaderboard": {"return_13_weeks": "return_13_weeks", "return_52_weeks": "return_52_weeks"},
    "cryptosignalsLeaderboard": {"return_13_weeks": "return_13_weeks", "return_52_weeks": "return_52_weeks"},
    "accountLeaderboard": {"return3m": "return_13_weeks", "return1y": "return_52_weeks"},
}
"""Per leaderboard root field: its return fields → the leaderboard's return column (a fraction of stake)."""


def _leaderboard_fields(root: str, ranked_by: str, row: LeaderboardRow) -> dict[str, Any]:
    """Return a leaderboard row with the root field's names (no figure: null)."""
    reputations, ranks = LEADERBOARD_FIELDS[root]

    def figure(score: str, part: str) -> Any:
        found = row.reputations.get(score)
        return None if found is None else getattr(found, part)

    return {
        "rank": figure(ranked_by, "rank"),
        "username": row.name,
        "displayName": row.name,
        "nmrStaked": format_tokens(row.stake_nano),
        "team": False,
        **{field: figure(score, "value") for field, score in reputations.items()},
        **{field: figure(score, "rank") for field, score in ranks.items()},
        **{field: getattr(row, column) for field, column in RETURN_FIELDS.get(root, {}).items()},
    }


def _leaderboard(root: str, entity: str) -> Callable[..., Any]:
    @threaded
    def resolve(
        _: Any, info: GraphQLResolveInfo, limit: int, offset: int, tournament: int | None = None
    ) -> list[dict[str, Any]]:
        ranked_by, rows = ranked_leaderboard(
            _service(info),
            tournament or LEADERBOARD_TOURNAMENTS[root],
            entity=entity,
            limit=limit,
            offset=offset,
        )
        return [_leaderboard_fields(root, ranked_by, row) for row in rows]

    resolve.__doc__ = f"Return the {root} rows by rank (unranked last), a page of them."
    return resolve


for _root in LEADERBOARD_TOURNAMENTS:
    query.set_field(_root, _leaderboard(_root, ACCOUNT if _root == "accountLeaderboard" else MODEL))


# -- the app -------------------------------------------------------------------------------------------


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    """Return a GraphQL error whose message is the rule's message (unexpected errors: a plain message)."""
    formatted = error.formatted
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return formatted
    formatted["message"] = user_message(original) or INTERNAL_ERROR_MESSAGE
    return formatted


class ResolverErrorLog(logging.LoggerAdapter):
    """Ariadne's error log: a refused request is one INFO line, only an unexpected error a traceback."""

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Log ``msg``; with a traceback only when the error is not an expected (rule-naming) one."""
        failure = kwargs.get("exc_info")
        original = getattr(failure, "original_error", None) if isinstance(failure, GraphQLError) else None
        if original is not None and user_message(original) is not None:
            self.logger.info("refused: %s", user_message(original))
            return
        self.logger.error(msg, *args, **kwargs)


class AlwaysOkHandler(GraphQLHTTPHandler):
    """Answers every GraphQL result with HTTP 200, as numerapi expects (it drops non-200 bodies)."""

    async def create_json_response(self, request: Request, result: dict, success: bool) -> Response:
        """Return the result as JSON with status 200, errors included."""
        return JSONResponse(result, status_code=200)


def build_schema() -> GraphQLSchema:
    """Return the executable numerapi-compatible schema."""
    return make_executable_schema(
        load_schema_text(), query, mutation, model_type, account_type, profile_type, signals_profile_type
    )


def _context_value(request: Request, _: Any = None) -> dict[str, Any]:
    return {"request": request}


def install_graphql(app: FastAPI) -> None:
    """Mount ``/graphql`` on the app and attach the upload-rejected hook that create_submission reads."""
    documents = DocumentCache()
    graphql_app = GraphQL(
        build_schema(),
        query_parser=documents.parse,
        query_validator=documents.validate,
        context_value=_context_value,
        error_formatter=format_error,
        http_handler=AlwaysOkHandler(),
        debug=False,
        logger=ResolverErrorLog(logger, {}),
    )
    app.add_route(GRAPHQL_PATH, graphql_app, methods=["GET", "POST"])
    app.state.upload_rejected_hook = make_rejection_recorder(app)


# -- payouts -------------------------------------------------------------------------------------------

TOKEN_SYMBOL = "NMR"
"""The currency numerapi's payout queries name; payouts are in the server's own token, NMR-like."""


def _payout_fields(payout: ModelPayout) -> dict[str, Any]:
    amount = format_tokens(payout.payout_nano)
    return {
        "roundId": payout.round_id,
        "roundNumber": payout.round_number,
        "roundResolveTime": _iso(payout.round_resolve_time),
        "modelId": payout.model_id,
        "modelName": payout.model_name,
        "modelDisplayName": payout.model_name,
        "payoutNmr": amount,
        "payoutValue": amount,
        "currencySymbol": TOKEN_SYMBOL,
    }


@query.field("pendingModelPayouts")
@threaded
def resolve_pending_model_payouts(_: Any, info: GraphQLResolveInfo, tournament: int) -> dict[str, Any]:
    """Return the key's account's settled and projected payouts in the tournament."""
    ctx = _service(info)
    found = model_payouts(ctx, _account(info, Scope.READ_USER_INFO), tournament)
    return {
        "actual": [_payout_fields(item) for item in found.actual],
        "pending": [_payout_fields(item) for item in found.pending],
    }
