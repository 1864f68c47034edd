"""Accounts and API keys: the secret is shown once, never stored in the clear; authentication, scopes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from store_factories import T0

from crowdalpha.store import (
    AlreadyExists,
    AuthenticationError,
    PermissionDenied,
    Scope,
    transaction,
)
from crowdalpha.store.keys import hash_secret, verify_secret
from crowdalpha.store.schema import Base


def _every_stored_value(engine: Engine) -> str:
    """Return every value of every table as one string."""
    values: list[str] = []
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                values.extend(str(value) for value in row)
    return "\n".join(values)


def test_secret_is_never_stored_in_the_clear(engine: Engine, backend: str) -> None:
    with transaction(engine) as uow:
        new = uow.accounts.create_with_key("alice", now=T0)
        second = uow.accounts.create_api_key(new.account.id, now=T0, name="laptop")
    for key in (new.key, second):
        assert len(key.secret_key) == 64 and len(key.public_id) == 32
        assert key.token == f"{key.public_id}${key.secret_key}"
        assert key.secret_key not in _every_stored_value(engine)
        assert key.api_key.secret_hash.startswith("scrypt$")
        assert key.secret_key not in key.api_key.secret_hash
    if backend == "sqlite":
        database = Path(engine.url.database)
        files = sorted(database.parent.glob(f"{database.name}*"))  # the database, its WAL and shared memory
        assert database in files
        for path in files:
            assert new.key.secret_key.encode() not in path.read_bytes()


def test_hashes_are_salted_and_verified_in_constant_time_against_the_digest() -> None:
    first, second = hash_secret("S" * 64), hash_secret("S" * 64)
    assert first != second
    assert verify_secret("S" * 64, first) and verify_secret("S" * 64, second)
    assert not verify_secret("T" * 64, first)
    assert not verify_secret("S" * 64, "scrypt$bad")
    assert not verify_secret("S" * 64, first.replace("scrypt", "md5"))


def test_authenticate_returns_the_owner_of_the_key(engine: Engine) -> None:
    with transaction(engine) as uow:
        new = uow.accounts.create_with_key("alice", now=T0, email="alice@example.org")
    with transaction(engine, read_only=True) as uow:
        account = uow.accounts.authenticate(
            new.key.public_id, new.key.secret_key, scope=Scope.UPLOAD_SUBMISSION
        )
    assert account.id == new.account.id and account.username == "alice"


def test_wrong_secret_unknown_key_and_revoked_key_fail_with_the_same_message(engine: Engine) -> None:
    with transaction(engine) as uow:
        new = uow.accounts.create_with_key("alice", now=T0)
    attempts = [
        (new.key.public_id, "X" * 64),
        ("NOSUCHKEY" + "0" * 23, new.key.secret_key),
        (new.key.public_id, ""),
    ]
    with transaction(engine, read_only=True) as uow:
        for public_id, secret in attempts:
            with pytest.raises(AuthenticationError, match=r"^invalid API key$"):
                uow.accounts.authenticate(public_id, secret)
    with transaction(engine) as uow:
        uow.accounts.revoke_api_key(new.key.public_id, now=T0)
        assert uow.accounts.list_api_keys(new.account.id) == []
        with pytest.raises(AuthenticationError, match=r"^invalid API key$"):
            uow.accounts.authenticate(new.key.public_id, new.key.secret_key)


def test_a_key_without_the_scope_is_refused(engine: Engine) -> None:
    with transaction(engine) as uow:
        new = uow.accounts.create_with_key(
            "bob", now=T0, scopes=[Scope.READ_USER_INFO, "read_submission_info"]
        )
    assert new.key.api_key.scopes == ["read_submission_info", "read_user_info"]
    with transaction(engine, read_only=True) as uow:
        assert uow.accounts.authenticate(new.key.public_id, new.key.secret_key, scope="read_user_info")
        with pytest.raises(PermissionDenied, match=r"^API key lacks the scope 'upload_submission'$"):
            uow.accounts.authenticate(new.key.public_id, new.key.secret_key, scope=Scope.UPLOAD_SUBMISSION)
        with pytest.raises(PermissionDenied, match="'stake'"):
            uow.accounts.authenticate(new.key.public_id, new.key.secret_key, scope="stake")


def test_unknown_scope_and_taken_username_are_refused(engine: Engine) -> None:
    with transaction(engine) as uow:
        uow.accounts.create("carol", now=T0)
        with pytest.raises(AlreadyExists, match="'carol' already exists"):
            uow.accounts.create("carol", now=T0)
        with pytest.raises(ValueError, match="unknown API key scope 'admin'"):
            uow.accounts.create_api_key(uow.accounts.get_by_username("carol").id, now=T0, scopes=["admin"])


def test_secret_hash_column_holds_only_hashes(engine: Engine) -> None:
    with transaction(engine) as uow:
        for name in ("a", "b", "c"):
            uow.accounts.create_with_key(name, now=T0)
    with engine.connect() as connection:
        hashes = connection.execute(text("SELECT secret_hash FROM api_keys")).scalars().all()
    assert len(hashes) == 3 and all(value.count("$") == 5 for value in hashes)
