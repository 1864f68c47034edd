"""Participants' models: create one in a tournament (names unique per tournament), list them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from crowdalpha.service._tournaments import TournamentRef, load_tournament
from crowdalpha.service.accounts import AccountRef, resolve_account
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.store import (
    Account,
    AlreadyExists,
    Model,
    NotFound,
    PermissionDenied,
    UnitOfWork,
    run_transaction,
)

MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def create_model(ctx: Context, account: AccountRef, tournament: TournamentRef, name: str) -> Model:
    """Return a new model of ``account`` in ``tournament``; ``model_name_taken`` if the name is used."""
    if not MODEL_NAME_PATTERN.match(name):
        raise ServiceError(
            "invalid_model_name", f"a model name is 1-64 letters, digits or underscores; got {name!r}"
        )
    now = ctx.now()

    def work(uow: UnitOfWork) -> Model:
        owner = resolve_account(uow, account)
        loaded = load_tournament(uow, tournament)
        try:
            return uow.models.create(owner.id, loaded.id, name, now=now)
        except AlreadyExists:
            raise ServiceError(
                "model_name_taken", f"a model named {name!r} already exists in {loaded.name}"
            ) from None

    return run_transaction(ctx.engine, work)


def list_models(ctx: Context, account: AccountRef, tournament: TournamentRef | None = None) -> list[Model]:
    """Return the account's models, in every tournament or in one, ordered by tournament then name."""

    def work(uow: UnitOfWork) -> list[Model]:
        owner = resolve_account(uow, account)
        tournament_id = None if tournament is None else load_tournament(uow, tournament).id
        return uow.models.list(account_id=owner.id, tournament_id=tournament_id)

    return run_transaction(ctx.engine, work, read_only=True)


def model_of_account(uow: UnitOfWork, owner: Account, model_id: str) -> Model:
    """Return the model with this id if ``owner`` owns it; NotFound or PermissionDenied otherwise."""
    model = uow.models.get(model_id)
    require_owner(owner, model_id, model.account_id)
    return model


def require_owner(owner: Account, model_id: str, model_account_id: str) -> None:
    """Return None if the model (owned by ``model_account_id``) is ``owner``'s; else PermissionDenied."""
    if model_account_id != owner.id:
        raise PermissionDenied(f"model {model_id!r} does not belong to account {owner.username!r}")


def owned_model(ctx: Context, account: Account, model_id: str) -> Model:
    """Return the (authenticated) account's model with this id; NotFound or PermissionDenied otherwise."""
    return run_transaction(ctx.engine, lambda uow: model_of_account(uow, account, model_id), read_only=True)


MAX_WEBHOOK_CHARS = 2048


def set_submission_webhook(ctx: Context, account: AccountRef, model_id: str, url: str | None) -> Model:
    """Return the account's model after setting (or clearing, with None/"") the URL called at round open.

    The URL must be ``http://`` or ``https://`` with a host; the server POSTs a JSON notice
    (tournament, round number and times, model id and name, trigger id) to it when a round of the
    model's tournament opens (:mod:`crowdalpha.service.webhooks`).
    """
    cleaned = (url or "").strip() or None
    if cleaned is not None:
        parsed = urlsplit(cleaned)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or len(cleaned) > MAX_WEBHOOK_CHARS:
            raise ServiceError(
                "invalid_webhook",
                f"a submission webhook is an http(s) URL with a host, at most {MAX_WEBHOOK_CHARS}"
                f" characters; got {cleaned[:80]!r}",
            )

    def work(uow: UnitOfWork) -> Model:
        model = model_of_account(uow, resolve_account(uow, account), model_id)
        return uow.models.set_submission_webhook(model.id, cleaned)

    return run_transaction(ctx.engine, work)


def public_models(ctx: Context, username: str, tournament: TournamentRef | None = None) -> list[Model]:
    """Return the models of the account called ``username`` (public information), by name."""

    def work(uow: UnitOfWork) -> list[Model]:
        owner = uow.accounts.get_by_username(username)
        if owner is None:
            raise NotFound(f"no account named {username!r}")
        tournament_id = None if tournament is None else load_tournament(uow, tournament).id
        return uow.models.list(account_id=owner.id, tournament_id=tournament_id)

    return run_transaction(ctx.engine, work, read_only=True)
