"""Accounts and API keys: create an account (its secret is shown once), authenticate a request's token."""

from __future__ import annotations

import re
from typing import NamedTuple

from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.store import Account, AuthenticationError, NotFound, Scope, UnitOfWork, run_transaction

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MISSING_KEY_MESSAGE = "missing API key: send the header 'Authorization: Token PUBLIC$SECRET'"
MALFORMED_KEY_MESSAGE = "malformed API key: expected the header 'Authorization: Token PUBLIC$SECRET'"

AccountRef = Account | str
"""An account as callers name it: the row itself, or its username."""


class CreatedAccount(NamedTuple):
    """A new account with its first API key pair; the secret exists only here and is never stored."""

    account: Account
    public_id: str
    secret_key: str


def create_account(ctx: Context, username: str, email: str | None = None) -> CreatedAccount:
    """Return a new account with an API key holding every scope (the secret is shown this once)."""
    if not USERNAME_PATTERN.match(username):
        raise ServiceError(
            "invalid_username", f"a username is 1-64 letters, digits or underscores; got {username!r}"
        )
    now = ctx.now()
    new = run_transaction(
        ctx.engine, lambda uow: uow.accounts.create_with_key(username, now=now, email=email)
    )
    return CreatedAccount(new.account, new.key.public_id, new.key.secret_key)


def parse_token(token_header: str | None) -> tuple[str, str]:
    """Return ``(public_id, secret_key)`` from an ``Authorization`` value ``Token PUBLIC$SECRET``."""
    if token_header is None or not token_header.strip():
        raise AuthenticationError(MISSING_KEY_MESSAGE)
    scheme, _, token = token_header.strip().partition(" ")
    public_id, dollar, secret_key = token.strip().partition("$")
    if scheme != "Token" or not dollar or not public_id or not secret_key:
        raise AuthenticationError(MALFORMED_KEY_MESSAGE)
    return public_id, secret_key


def authenticate(ctx: Context, token_header: str | None, scope: Scope | str | None = None) -> Account:
    """Return the account whose API key is in ``token_header`` (``Token PUBLIC$SECRET``) and has ``scope``.

    Raises AuthenticationError ("missing API key…", "malformed API key…", "invalid API key") or
    PermissionDenied ("API key lacks the scope 'upload_submission'").
    """
    public_id, secret_key = parse_token(token_header)
    return run_transaction(
        ctx.engine, lambda uow: uow.accounts.authenticate(public_id, secret_key, scope=scope), read_only=True
    )


def resolve_account(uow: UnitOfWork, account: AccountRef) -> Account:
    """Return the account row for a row or a username (NotFound for an unknown username)."""
    if isinstance(account, Account):
        return uow.accounts.get(account.id)
    found = uow.accounts.get_by_username(account)
    if found is None:
        raise NotFound(f"no account named {account!r}")
    return found
