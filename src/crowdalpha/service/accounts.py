"""Accounts and API keys: create an account (its secret is shown once), authenticate a request's token.

Authentication remembers a verified token for :data:`VERIFIED_KEY_SECONDS` (per process, on the
Context), because every request of numerapi's upload carries the same token and verifying it costs
an scrypt hash plus two queries. Why that is safe: the cache is keyed by the SHA-256 of the *whole*
token (public id and secret; the secret is 64 random characters, ~330 bits, so its digest reveals
nothing and cannot be matched without the secret), only successful verifications are kept (a wrong
secret always pays the full check), and the scopes are kept with the entry so every request's scope
is still checked. The one cost: a key revoked by another process keeps working on this one for at
most that many seconds; a revocation through this Context clears the cache at once.

When an entry expires, the next request re-reads the key: still active, with the very hash its secret
verified against, it is accepted again without a new scrypt hash (the same secret and hash give the
same answer); revoked, or with another hash, it goes through the full check. Each process still sees
a revocation within those seconds, but no longer spends an scrypt per key every few seconds.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.store import (
    ALL_SCOPES,
    Account,
    ApiKey,
    AuthenticationError,
    NotFound,
    PermissionDenied,
    Scope,
    UnitOfWork,
    run_transaction,
)
from crowdalpha.store.repositories.accounts import require_scope

VERIFIED_KEY_SECONDS = 5.0
MAX_VERIFIED_KEYS = 10_000
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


def create_account(
    ctx: Context, username: str, email: str | None = None, *, operator: bool = False
) -> CreatedAccount:
    """Return a new account with an API key holding every numerapi scope (the secret is shown this once).

    ``operator=True`` adds the ``operator`` scope to that key: the operator REST API and console.
    """
    if not USERNAME_PATTERN.match(username):
        raise ServiceError(
            "invalid_username", f"a username is 1-64 letters, digits or underscores; got {username!r}"
        )
    now = ctx.now()
    scopes = (*ALL_SCOPES, Scope.OPERATOR) if operator else ALL_SCOPES
    new = run_transaction(
        ctx.engine, lambda uow: uow.accounts.create_with_key(username, now=now, email=email, scopes=scopes)
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
    keys = verified_keys(ctx)
    digest = _token_digest(public_id, secret_key)
    verified = keys.get(digest)
    if verified is None:
        expired = keys.expired(digest)
        verified = run_transaction(
            ctx.engine, lambda uow: _verify(uow, public_id, secret_key, expired), read_only=True
        )
        keys.put(digest, verified)
    require_scope(verified.scopes, scope)
    return verified.account


def authenticate_from_memory(
    ctx: Context, token_header: str | None, scope: Scope | str | None = None
) -> Account | None:
    """Return what :func:`authenticate` returns when the token was verified recently, else None.

    Never touches the database (an event loop may call it); raises as ``authenticate`` does for a
    malformed token or a recently verified one lacking the scope.
    """
    public_id, secret_key = parse_token(token_header)
    verified = verified_keys(ctx).get(_token_digest(public_id, secret_key))
    if verified is None:
        return None
    require_scope(verified.scopes, scope)
    return verified.account


def _token_digest(public_id: str, secret_key: str) -> bytes:
    return hashlib.sha256(f"{public_id}${secret_key}".encode()).digest()


@dataclass(frozen=True)
class VerifiedKey:
    """An API key that verified: its account, scopes and the stored hash its secret verified against."""

    account: Account
    scopes: tuple[str, ...]
    secret_hash: str | None = None


def _verify(uow: UnitOfWork, public_id: str, secret_key: str, expired: VerifiedKey | None) -> VerifiedKey:
    api_key = None
    if expired is not None and expired.secret_hash is not None:
        api_key = uow.accounts.still_active_key(public_id, expired.secret_hash)
    if api_key is None:
        api_key = uow.accounts.verify_key(public_id, secret_key)
    return VerifiedKey(uow.accounts.get(api_key.account_id), tuple(api_key.scopes), api_key.secret_hash)


class VerifiedKeys:
    """Tokens verified in the last ``seconds`` (by SHA-256 digest), at most ``max_entries``, oldest out."""

    def __init__(self, seconds: float = VERIFIED_KEY_SECONDS, max_entries: int = MAX_VERIFIED_KEYS) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[float, VerifiedKey]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: bytes) -> VerifiedKey | None:
        """Return the key verified under this token digest less than ``seconds`` ago, or None."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None or time.monotonic() >= entry[0]:
                return None
            return entry[1]

    def expired(self, digest: bytes) -> VerifiedKey | None:
        """Return the key verified under this token digest ``seconds`` ago or longer (kept till evicted)."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None or time.monotonic() < entry[0]:
                return None
            return entry[1]

    def put(self, digest: bytes, verified: VerifiedKey) -> None:
        """Remember a verified token for ``seconds``."""
        with self._lock:
            self._entries[digest] = (time.monotonic() + self.seconds, verified)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every verified token (after a revocation)."""
        with self._lock:
            self._entries.clear()


def verified_keys(ctx: Context) -> VerifiedKeys:
    """Return the Context's cache of verified tokens (created on first use)."""
    keys = ctx.cache.get("verified API keys")
    if keys is None:
        keys = ctx.cache.setdefault("verified API keys", VerifiedKeys())
    return keys


def resolve_account(uow: UnitOfWork, account: AccountRef) -> Account:
    """Return the account row for a row or a username (NotFound for an unknown username)."""
    if isinstance(account, Account):
        return uow.accounts.get(account.id)
    found = uow.accounts.get_by_username(account)
    if found is None:
        raise NotFound(f"no account named {account!r}")
    return found


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as its owner sees it (never the secret): name, public id, scopes, creation time."""

    name: str
    public_id: str
    scopes: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class CreatedApiKey:
    """A new API key; ``secret_key`` exists only here and is never stored."""

    info: ApiKeyInfo
    secret_key: str


API_KEY_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_ .-]{1,64}$")


def _key_info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(row.name, row.public_id, tuple(row.scopes), row.created_at)


def list_api_keys(ctx: Context, account: AccountRef) -> list[ApiKeyInfo]:
    """Return the account's active API keys, oldest first."""

    def work(uow: UnitOfWork) -> list[ApiKeyInfo]:
        owner = resolve_account(uow, account)
        return [_key_info(row) for row in uow.accounts.list_api_keys(owner.id)]

    return run_transaction(ctx.engine, work, read_only=True)


def create_api_key(
    ctx: Context, account: AccountRef, name: str, scopes: Iterable[Scope | str]
) -> CreatedApiKey:
    """Return a new API key of the account with these numerapi scopes (the secret is shown this once)."""
    if not API_KEY_NAME_PATTERN.match(name):
        raise ServiceError(
            "invalid_key_name", f"a key name is 1-64 letters, digits, spaces or ._-; got {name!r}"
        )
    wanted = set()
    for scope in scopes:
        try:
            wanted.add(Scope(scope))
        except ValueError:
            known = ", ".join(member.value for member in ALL_SCOPES)
            raise ServiceError("unknown_scope", f"unknown scope {scope!r}; the scopes are {known}") from None
    if not wanted:
        raise ServiceError("no_scopes", "an API key needs at least one scope")
    if Scope.OPERATOR in wanted:
        raise PermissionDenied("the operator scope is granted only by `crowdalpha account create --operator`")
    now = ctx.now()

    def work(uow: UnitOfWork) -> CreatedApiKey:
        owner = resolve_account(uow, account)
        new = uow.accounts.create_api_key(owner.id, now=now, scopes=sorted(wanted), name=name)
        return CreatedApiKey(_key_info(new.api_key), new.secret_key)

    return run_transaction(ctx.engine, work)


def revoke_api_key(ctx: Context, account: AccountRef, public_id: str) -> None:
    """Revoke one of the account's API keys; ``not_found`` for a key that is not the account's."""
    now = ctx.now()

    def work(uow: UnitOfWork) -> None:
        owner = resolve_account(uow, account)
        if public_id not in {row.public_id for row in uow.accounts.list_api_keys(owner.id)}:
            raise NotFound(f"account {owner.username!r} has no active API key {public_id!r}")
        uow.accounts.revoke_api_key(public_id, now=now)

    run_transaction(ctx.engine, work)
    verified_keys(ctx).clear()


def is_operator(ctx: Context, account: AccountRef) -> bool:
    """Return True if one of the account's active keys holds the operator scope."""

    def work(uow: UnitOfWork) -> bool:
        owner = resolve_account(uow, account)
        return any(Scope.OPERATOR.value in row.scopes for row in uow.accounts.list_api_keys(owner.id))

    return run_transaction(ctx.engine, work, read_only=True)
