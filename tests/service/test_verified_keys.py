"""The verified-token cache: a token that verified skips the database for a few seconds, nothing else does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event

from crowdalpha.service import Context, authenticate, create_account, create_api_key, revoke_api_key
from crowdalpha.service import accounts as accounts_module
from crowdalpha.service.accounts import VerifiedKey, VerifiedKeys, verified_keys
from crowdalpha.store import AuthenticationError, PermissionDenied, Scope
from crowdalpha.store.repositories import accounts as store_accounts


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    """Record every SQL statement the engine runs."""
    seen: list[str] = []

    def record(_connection, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_verified_token_is_not_checked_against_the_database_again(
    ctx: Context, statements: list[str]
) -> None:
    account, public_id, secret_key = create_account(ctx, "alice")
    token = f"Token {public_id}${secret_key}"
    statements.clear()
    assert authenticate(ctx, token, Scope.UPLOAD_SUBMISSION).id == account.id
    assert statements, "the first check reads the key"
    statements.clear()
    assert authenticate(ctx, token, Scope.READ_USER_INFO).id == account.id
    assert statements == []


def test_a_wrong_secret_is_never_answered_from_the_cache(ctx: Context) -> None:
    _, public_id, secret_key = create_account(ctx, "alice")
    authenticate(ctx, f"Token {public_id}${secret_key}")
    wrong = secret_key[:-1] + ("A" if secret_key[-1] != "A" else "B")
    with pytest.raises(AuthenticationError, match=r"^invalid API key$"):
        authenticate(ctx, f"Token {public_id}${wrong}")


def test_a_cached_key_still_needs_the_scope_of_each_request(ctx: Context) -> None:
    create_account(ctx, "alice")
    limited = create_api_key(ctx, "alice", "reader", [Scope.READ_USER_INFO])
    token = f"Token {limited.info.public_id}${limited.secret_key}"
    assert authenticate(ctx, token, Scope.READ_USER_INFO).username == "alice"
    with pytest.raises(PermissionDenied, match="API key lacks the scope 'upload_submission'"):
        authenticate(ctx, token, Scope.UPLOAD_SUBMISSION)


def test_revoking_a_key_through_the_context_stops_it_at_once(ctx: Context) -> None:
    create_account(ctx, "alice")
    extra = create_api_key(ctx, "alice", "laptop", [Scope.UPLOAD_SUBMISSION])
    token = f"Token {extra.info.public_id}${extra.secret_key}"
    authenticate(ctx, token, Scope.UPLOAD_SUBMISSION)
    revoke_api_key(ctx, "alice", extra.info.public_id)
    with pytest.raises(AuthenticationError, match=r"^invalid API key$"):
        authenticate(ctx, token, Scope.UPLOAD_SUBMISSION)


def test_a_verified_token_expires_after_the_cache_seconds(
    ctx: Context, statements: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, public_id, secret_key = create_account(ctx, "alice")
    token = f"Token {public_id}${secret_key}"
    now = [1000.0]
    monkeypatch.setattr(accounts_module.time, "monotonic", lambda: now[0])
    authenticate(ctx, token)
    now[0] += verified_keys(ctx).seconds - 0.01
    statements.clear()
    authenticate(ctx, token)
    assert statements == []
    now[0] += 0.02
    authenticate(ctx, token)
    assert statements, "an expired entry is verified against the database again"


def test_an_expired_token_is_accepted_again_without_hashing_its_secret_again(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    account, public_id, secret_key = create_account(ctx, "alice")
    token = f"Token {public_id}${secret_key}"
    now = [1000.0]
    monkeypatch.setattr(accounts_module.time, "monotonic", lambda: now[0])
    authenticate(ctx, token)
    hashed: list[tuple] = []
    real_verify = store_accounts.verify_secret
    monkeypatch.setattr(store_accounts, "verify_secret", lambda *a: hashed.append(a) or real_verify(*a))
    for _ in range(3):
        now[0] += verified_keys(ctx).seconds + 0.01
        assert authenticate(ctx, token, Scope.UPLOAD_SUBMISSION).id == account.id
    assert hashed == []  # the secret was hashed once, at the first check


def test_a_key_revoked_elsewhere_is_refused_once_its_entry_expires(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_account(ctx, "alice")
    extra = create_api_key(ctx, "alice", "laptop", [Scope.UPLOAD_SUBMISSION])
    token = f"Token {extra.info.public_id}${extra.secret_key}"
    now = [1000.0]
    monkeypatch.setattr(accounts_module.time, "monotonic", lambda: now[0])
    authenticate(ctx, token, Scope.UPLOAD_SUBMISSION)
    other_process = Context(engine=ctx.engine, blobs=ctx.blobs, clock=ctx.clock, settings=ctx.settings)
    revoke_api_key(other_process, "alice", extra.info.public_id)
    assert authenticate(ctx, token, Scope.UPLOAD_SUBMISSION).username == "alice"  # cached a while longer
    now[0] += verified_keys(ctx).seconds + 0.01
    with pytest.raises(AuthenticationError, match=r"^invalid API key$"):
        authenticate(ctx, token, Scope.UPLOAD_SUBMISSION)
    wrong = extra.secret_key[:-1] + ("A" if extra.secret_key[-1] != "A" else "B")
    with pytest.raises(AuthenticationError, match=r"^invalid API key$"):
        authenticate(ctx, f"Token {extra.info.public_id}${wrong}", Scope.UPLOAD_SUBMISSION)


def test_the_cache_keeps_at_most_max_entries_tokens() -> None:
    keys = VerifiedKeys(max_entries=2)
    entries = [VerifiedKey(account=None, scopes=(str(k),)) for k in range(3)]  # type: ignore[arg-type]
    for number, entry in enumerate(entries):
        keys.put(bytes([number]), entry)
    assert keys.get(b"\x00") is None
    assert keys.get(b"\x01") is entries[1] and keys.get(b"\x02") is entries[2]
