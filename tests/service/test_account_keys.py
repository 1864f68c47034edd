"""Accounts: the secret is shown once and stored only hashed; tokens are checked with exact messages."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from crowdalpha.service import Context, ServiceError, authenticate, create_account, user_message
from crowdalpha.store import AlreadyExists, AuthenticationError, PermissionDenied, transaction


def test_a_new_account_gets_a_key_pair_whose_secret_is_not_stored(ctx: Context, engine: Engine) -> None:
    account, public_id, secret_key = create_account(ctx, "alice", "alice@example.org")
    assert account.username == "alice" and len(public_id) == 32 and len(secret_key) == 64
    with engine.connect() as connection:
        dump = " ".join(
            str(row)
            for row in connection.execute(text("SELECT public_id, secret_hash, scopes FROM api_keys"))
        )
    assert public_id in dump and secret_key not in dump
    assert authenticate(ctx, f"Token {public_id}${secret_key}", "upload_submission").id == account.id


def test_usernames_are_unique_and_well_formed(ctx: Context) -> None:
    create_account(ctx, "alice")
    with pytest.raises(AlreadyExists, match=r"account 'alice' already exists"):
        create_account(ctx, "alice")
    with pytest.raises(ServiceError, match=r"^invalid_username: "):
        create_account(ctx, "no spaces")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing API key: send the header 'Authorization: Token PUBLIC$SECRET'"),
        ("", "missing API key: send the header 'Authorization: Token PUBLIC$SECRET'"),
        ("Bearer abc", "malformed API key: expected the header 'Authorization: Token PUBLIC$SECRET'"),
        ("Token nodollar", "malformed API key: expected the header 'Authorization: Token PUBLIC$SECRET'"),
        ("Token UNKNOWN$secret", "invalid API key"),
    ],
)
def test_bad_tokens_are_rejected_with_exact_messages(ctx: Context, header: str | None, message: str) -> None:
    create_account(ctx, "alice")
    with pytest.raises(AuthenticationError) as caught:
        authenticate(ctx, header, "upload_submission")
    assert str(caught.value) == message


def test_a_wrong_secret_is_an_invalid_key(ctx: Context) -> None:
    _, public_id, secret_key = create_account(ctx, "alice")
    wrong = secret_key[:-1] + ("Y" if secret_key.endswith("X") else "X")  # always differs from the secret
    with pytest.raises(AuthenticationError) as caught:
        authenticate(ctx, f"Token {public_id}${wrong}", "upload_submission")
    assert str(caught.value) == "invalid API key"
    assert user_message(caught.value) == "invalid_api_key: invalid API key"


def test_a_key_without_the_scope_is_denied(ctx: Context, engine: Engine) -> None:
    account, _, _ = create_account(ctx, "alice")
    with transaction(engine) as uow:
        key = uow.accounts.create_api_key(account.id, now=ctx.now(), scopes=["read_user_info"], name="ro")
    token = f"Token {key.public_id}${key.secret_key}"
    assert authenticate(ctx, token, "read_user_info").id == account.id
    with pytest.raises(PermissionDenied) as caught:
        authenticate(ctx, token, "upload_submission")
    assert str(caught.value) == "API key lacks the scope 'upload_submission'"
