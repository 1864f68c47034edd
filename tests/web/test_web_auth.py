"""Web passwords: argon2id hashes, log-in checks, the password rules (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crowdalpha.service import Context, ServiceError, create_account
from crowdalpha.service.web_auth import (
    INVALID_LOGIN_MESSAGE,
    LOCKOUT,
    MAX_FAILED_LOGINS,
    log_in,
    session_account,
    set_password,
)
from crowdalpha.store import NotFound, transaction
from crowdalpha.store.schema import AccountPassword
from crowdalpha.tournament.clock import SettableClock


def stored_hash(ctx: Context, account_id: str) -> str:
    with transaction(ctx.engine) as uow:
        return uow.session.scalars(
            select(AccountPassword.password_hash).where(AccountPassword.account_id == account_id)
        ).one()


def test_a_password_is_stored_as_an_argon2id_hash_and_logs_in(ctx: Context) -> None:
    account = create_account(ctx, "alice").account
    set_password(ctx, "alice", "correct horse battery")
    password_hash = stored_hash(ctx, account.id)
    assert password_hash.startswith("$argon2id$") and "correct horse" not in password_hash
    assert "m=65536" in password_hash  # memory-hard: 64 MiB per check
    logged = log_in(ctx, "alice", "correct horse battery")
    assert (logged.id, logged.username, logged.operator) == (account.id, "alice", False)
    assert session_account(ctx, account.id) == logged


def test_wrong_passwords_unknown_names_and_accounts_without_a_password_get_one_message(ctx: Context) -> None:
    create_account(ctx, "alice")
    create_account(ctx, "nopass")
    set_password(ctx, "alice", "correct horse battery")
    for username, password in (("alice", "wrong horse battery"), ("nobody", "x" * 10), ("nopass", "x" * 10)):
        with pytest.raises(ServiceError, match=f"^invalid_login: {INVALID_LOGIN_MESSAGE}$"):
            log_in(ctx, username, password)


def test_a_new_password_replaces_the_old_one(ctx: Context) -> None:
    account = create_account(ctx, "alice").account
    set_password(ctx, "alice", "first password")
    first = stored_hash(ctx, account.id)
    set_password(ctx, account, "second password")
    assert stored_hash(ctx, account.id) != first
    log_in(ctx, "alice", "second password")
    with pytest.raises(ServiceError, match="invalid_login"):
        log_in(ctx, "alice", "first password")


def test_an_operator_account_logs_in_as_operator(ctx: Context) -> None:
    create_account(ctx, "root", operator=True)
    set_password(ctx, "root", "operator password")
    assert log_in(ctx, "root", "operator password").operator


@pytest.mark.parametrize("password", ["short", " " * 12, "x" * 1025])
def test_weak_passwords_are_refused_naming_the_rule(ctx: Context, password: str) -> None:
    create_account(ctx, "alice")
    with pytest.raises(ServiceError) as refused:
        set_password(ctx, "alice", password)
    assert refused.value.rule == "weak_password"


def test_setting_a_password_of_an_unknown_account_is_not_found(ctx: Context) -> None:
    with pytest.raises(NotFound, match="no account named 'ghost'"):
        set_password(ctx, "ghost", "a fine password")
    assert session_account(ctx, "no-such-id") is None


def test_ten_wrong_passwords_in_a_row_lock_the_log_in_for_a_while(ctx: Context) -> None:
    create_account(ctx, "alice")
    set_password(ctx, "alice", "the right password")
    for _ in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(ServiceError, match="invalid_login"):
            log_in(ctx, "alice", "a wrong password")
    log_in(ctx, "alice", "the right password")  # a right one resets the count
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(ServiceError, match="invalid_login"):
            log_in(ctx, "alice", "a wrong password")
    locked_until = ctx.now() + LOCKOUT
    with pytest.raises(ServiceError) as locked:
        log_in(ctx, "alice", "the right password")
    assert locked.value.rule == "too_many_attempts"
    assert locked_until.isoformat() in str(locked.value)
    assert isinstance(ctx.clock, SettableClock)
    ctx.clock.set(locked_until)
    assert log_in(ctx, "alice", "the right password").username == "alice"


def test_a_new_password_lifts_a_lock_out(ctx: Context) -> None:
    create_account(ctx, "alice")
    set_password(ctx, "alice", "the right password")
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(ServiceError, match="invalid_login"):
            log_in(ctx, "alice", "a wrong password")
    set_password(ctx, "alice", "a reset password")
    assert log_in(ctx, "alice", "a reset password").username == "alice"
