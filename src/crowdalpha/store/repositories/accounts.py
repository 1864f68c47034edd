"""Accounts and their API keys: create an account with a key (the secret is returned once), authenticate."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdalpha.store.errors import AlreadyExists, AuthenticationError, NotFound, PermissionDenied
from crowdalpha.store.keys import (
    burn_verification_time,
    generate_public_id,
    generate_secret_key,
    hash_secret,
    verify_secret,
)
from crowdalpha.store.schema import ALL_SCOPES, Account, ApiKey, Scope

INVALID_KEY_MESSAGE = "invalid API key"


@dataclass(frozen=True)
class NewApiKey:
    """A freshly created API key; ``secret_key`` exists only here and is never stored in the clear."""

    api_key: ApiKey
    secret_key: str

    @property
    def public_id(self) -> str:
        """Return the key's public id."""
        return self.api_key.public_id

    @property
    def token(self) -> str:
        """Return the value numerapi sends after ``Token ``: ``PUBLIC$SECRET``."""
        return f"{self.api_key.public_id}${self.secret_key}"


@dataclass(frozen=True)
class NewAccount:
    """A freshly created account with its first API key."""

    account: Account
    key: NewApiKey


class AccountRepository:
    """Accounts and API keys in one unit of work."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, username: str, *, now: datetime, email: str | None = None) -> Account:
        """Return a new account; raise AlreadyExists if the username is taken."""
        if self.get_by_username(username) is not None:
            raise AlreadyExists(f"account {username!r} already exists")
        account = Account(username=username, email=email, created_at=now)
        self.session.add(account)
        self.session.flush()
        return account

    def create_with_key(
        self,
        username: str,
        *,
        now: datetime,
        email: str | None = None,
        scopes: Iterable[Scope | str] = ALL_SCOPES,
        key_name: str = "default",
    ) -> NewAccount:
        """Return a new account and its first API key (the secret is shown this once)."""
        account = self.create(username, now=now, email=email)
        return NewAccount(
            account=account, key=self.create_api_key(account.id, now=now, scopes=scopes, name=key_name)
        )

    def get(self, account_id: str) -> Account:
        """Return the account with this id; raise NotFound otherwise."""
        account = self.session.get(Account, account_id)
        if account is None:
            raise NotFound(f"no account with id {account_id!r}")
        return account

    def get_by_username(self, username: str) -> Account | None:
        """Return the account with this username, or None."""
        return self.session.scalars(select(Account).where(Account.username == username)).one_or_none()

    def create_api_key(
        self,
        account_id: str,
        *,
        now: datetime,
        scopes: Iterable[Scope | str] = ALL_SCOPES,
        name: str = "default",
    ) -> NewApiKey:
        """Return a new API key of the account; only a salted hash of its secret is stored."""
        self.get(account_id)
        scope_values = _validated_scopes(scopes)
        secret = generate_secret_key()
        api_key = ApiKey(
            public_id=generate_public_id(),
            account_id=account_id,
            name=name,
            secret_hash=hash_secret(secret),
            scopes=scope_values,
            created_at=now,
        )
        self.session.add(api_key)
        self.session.flush()
        return NewApiKey(api_key=api_key, secret_key=secret)

    def list_api_keys(self, account_id: str, *, include_revoked: bool = False) -> list[ApiKey]:
        """Return the account's API keys, oldest first."""
        query = select(ApiKey).where(ApiKey.account_id == account_id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        return list(self.session.scalars(query.order_by(ApiKey.id)))

    def revoke_api_key(self, public_id: str, *, now: datetime) -> None:
        """Revoke a key so it no longer authenticates; raise NotFound if no such key."""
        api_key = self.session.scalars(select(ApiKey).where(ApiKey.public_id == public_id)).one_or_none()
        if api_key is None:
            raise NotFound(f"no API key with public id {public_id!r}")
        if api_key.revoked_at is None:
            api_key.revoked_at = now
            self.session.flush()

    def verify_key(self, public_id: str, secret_key: str) -> ApiKey:
        """Return the active API key with this public id and secret; raise AuthenticationError otherwise.

        The error has the same message for an unknown id, a revoked key or a wrong secret.
        """
        api_key = self.session.scalars(select(ApiKey).where(ApiKey.public_id == public_id)).one_or_none()
        if api_key is None:
            burn_verification_time(secret_key)
            raise AuthenticationError(INVALID_KEY_MESSAGE)
        if not verify_secret(secret_key, api_key.secret_hash) or api_key.revoked_at is not None:
            raise AuthenticationError(INVALID_KEY_MESSAGE)
        return api_key

    def still_active_key(self, public_id: str, secret_hash: str) -> ApiKey | None:
        """Return the key with this public id if it is active and still has this stored hash, else None.

        For a secret that verified against ``secret_hash`` before: the same hash verifies it again, so
        only the revocation (and a changed hash) needs the database.
        """
        api_key = self.session.scalars(select(ApiKey).where(ApiKey.public_id == public_id)).one_or_none()
        if api_key is None or api_key.revoked_at is not None or api_key.secret_hash != secret_hash:
            return None
        return api_key

    def authenticate(self, public_id: str, secret_key: str, *, scope: Scope | str | None = None) -> Account:
        """Return the account owning an active key with this secret (and scope); raise otherwise.

        Raises AuthenticationError with the same message for an unknown id, a revoked key or a wrong
        secret, and PermissionDenied when the key is valid but lacks ``scope``.
        """
        api_key = self.verify_key(public_id, secret_key)
        require_scope(api_key.scopes, scope)
        return self.get(api_key.account_id)


def require_scope(scopes: Iterable[str], scope: Scope | str | None) -> None:
    """Raise PermissionDenied unless ``scope`` (None: any) is one of a key's ``scopes``."""
    if scope is not None and Scope(scope).value not in scopes:
        raise PermissionDenied(f"API key lacks the scope {Scope(scope).value!r}")


def _validated_scopes(scopes: Iterable[Scope | str]) -> list[str]:
    """Return the scopes as sorted unique strings; raise ValueError naming an unknown scope."""
    values: set[str] = set()
    for scope in scopes:
        try:
            values.add(Scope(scope).value)
        except ValueError:
            known = ", ".join(member.value for member in Scope)
            raise ValueError(f"unknown API key scope {scope!r}; known scopes: {known}") from None
    return sorted(values)
