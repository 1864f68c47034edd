"""Web log-in: set an account's password (an argon2id hash), check a username and password, load a session.

Passwords are hashed with argon2id (argon2-cffi's defaults: 64 MiB of memory, 3 passes), a
memory-hard KDF, so a stolen table is expensive to brute-force. An unknown username costs as much
time as a wrong password, so the answer does not tell which accounts exist. The web layer keeps
only the account id and a tag of the password hash in its signed cookie: changing the password
ends every session opened with the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from crowdalpha.service.accounts import AccountRef, resolve_account
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.store import NotFound, Scope, UnitOfWork, run_transaction
from crowdalpha.store.schema import AccountPassword

MAX_FAILED_LOGINS = 10
"""Wrong passwords in a row after which an account's log-in is locked for LOCKOUT."""
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
INVALID_LOGIN_MESSAGE = "invalid username or password"

_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Return a hash to verify against when the username is unknown (same cost as a real check)."""
    return _HASHER.hash("crowdalpha-no-such-account")


@dataclass(frozen=True)
class WebAccount:
    """A logged-in account as the web pages see it: id, username, operator or not, its password hash."""

    id: str
    username: str
    operator: bool
    password_hash: str


def check_password_rules(password: str) -> None:
    """Return None if ``password`` may be used; raise ``weak_password`` naming the broken rule."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise ServiceError(
            "weak_password",
            f"a password has {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters; got {len(password)}",
        )
    if not password.strip():
        raise ServiceError("weak_password", "a password cannot be only spaces")


def set_password(ctx: Context, account: AccountRef, password: str) -> None:
    """Store the argon2id hash of the account's new web password (replacing any old one)."""
    check_password_rules(password)
    password_hash = _HASHER.hash(password)
    now = ctx.now()

    def work(uow: UnitOfWork) -> None:
        owner = resolve_account(uow, account)
        row = uow.session.get(AccountPassword, owner.id)
        if row is None:
            row = AccountPassword(account_id=owner.id, password_hash=password_hash, updated_at=now)
            uow.session.add(row)
        row.password_hash = password_hash
        row.updated_at = now
        row.failed_logins = 0  # a new password also lifts a lock-out
        row.locked_until = None
        uow.session.flush()

    run_transaction(ctx.engine, work)


def _web_account(uow: UnitOfWork, account_id: str) -> WebAccount | None:
    row = uow.session.get(AccountPassword, account_id)
    if row is None:
        return None
    owner = uow.accounts.get(account_id)
    operator = any(Scope.OPERATOR.value in key.scopes for key in uow.accounts.list_api_keys(owner.id))
    return WebAccount(owner.id, owner.username, operator, row.password_hash)


def _record_attempt(ctx: Context, account_id: str, *, succeeded: bool) -> None:
    """Count a wrong password (locking log-ins at MAX_FAILED_LOGINS in a row), or reset after a right one."""
    now = ctx.now()

    def work(uow: UnitOfWork) -> None:
        row = uow.session.get(AccountPassword, account_id)
        if row is None:
            return
        row.failed_logins = 0 if succeeded else row.failed_logins + 1
        row.locked_until = now + LOCKOUT if row.failed_logins >= MAX_FAILED_LOGINS else None
        if row.locked_until is not None:
            row.failed_logins = 0
        uow.session.flush()

    run_transaction(ctx.engine, work)


def log_in(ctx: Context, username: str, password: str) -> WebAccount:
    """Return the account if ``password`` is its web password; raise ``invalid_login`` otherwise.

    After MAX_FAILED_LOGINS wrong passwords in a row the account's log-in is refused with
    ``too_many_attempts`` for LOCKOUT, even with the right password.
    """
    now = ctx.now()

    def work(uow: UnitOfWork) -> tuple[WebAccount | None, datetime | None, int]:
        owner = uow.accounts.get_by_username(username)
        found = None if owner is None else _web_account(uow, owner.id)
        row = None if found is None else uow.session.get(AccountPassword, found.id)
        return found, None if row is None else row.locked_until, 0 if row is None else row.failed_logins

    found, locked_until, failed_logins = run_transaction(ctx.engine, work, read_only=True)
    if found is not None and locked_until is not None and now < locked_until:
        raise ServiceError(
            "too_many_attempts",
            f"too many wrong passwords for {username!r} in a row; try again after {locked_until.isoformat()}",
        )
    try:
        _HASHER.verify(found.password_hash if found is not None else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        if found is not None:
            _record_attempt(ctx, found.id, succeeded=False)
        raise ServiceError("invalid_login", INVALID_LOGIN_MESSAGE) from None
    if found is None:
        raise ServiceError("invalid_login", INVALID_LOGIN_MESSAGE)
    if failed_logins:
        _record_attempt(ctx, found.id, succeeded=True)
    return found


def session_account(ctx: Context, account_id: str) -> WebAccount | None:
    """Return the account a web session names, or None if it is gone or has no password any more."""

    def work(uow: UnitOfWork) -> WebAccount | None:
        try:
            return _web_account(uow, account_id)
        except NotFound:
            return None

    return run_transaction(ctx.engine, work, read_only=True)


__all__ = [
    "INVALID_LOGIN_MESSAGE",
    "WebAccount",
    "check_password_rules",
    "log_in",
    "session_account",
    "set_password",
]
