"""Signed session cookies and CSRF tokens (pure: no server)."""

from __future__ import annotations

from dataclasses import replace

from crowdalpha.web.sessions import SESSION_TTL_SECONDS, SessionSigner

KEY = bytes(range(32))


def signer_at(moment: float, key: bytes = KEY) -> SessionSigner:
    return SessionSigner(key, clock=lambda: moment)


def test_a_cookie_round_trips_and_carries_the_login() -> None:
    signer = signer_at(1_000.0)
    session = signer.new_session("account-1", "$argon2id$hash")
    loaded = signer.loads(signer.dumps(session))
    assert loaded == replace(session, is_new=False)
    assert loaded.account_id == "account-1" and loaded.password_tag == signer.password_tag("$argon2id$hash")
    assert loaded.expires == 1_000 + SESSION_TTL_SECONDS


def test_a_tampered_forged_or_expired_cookie_is_ignored() -> None:
    signer = signer_at(1_000.0)
    value = signer.dumps(signer.new_session("account-1", "h"))
    payload, mac = value.rsplit(".", 1)
    other = signer.dumps(signer.new_session("account-2", "h"))
    assert signer.loads(f"{other.rsplit('.', 1)[0]}.{mac}") is None  # someone else's payload, my MAC
    assert signer.loads(f"{payload}.{'0' * len(mac)}") is None
    assert signer.loads(value + "x") is None
    assert signer.loads("garbage") is None and signer.loads("") is None and signer.loads(None) is None
    assert signer_at(1_000.0, key=bytes(32)).loads(value) is None  # another server's key
    assert signer_at(1_000.0 + SESSION_TTL_SECONDS + 1).loads(value) is None


def test_csrf_tokens_belong_to_one_session_and_change_at_login() -> None:
    signer = signer_at(1_000.0)
    anonymous = signer.new_session()
    token = signer.csrf_token(anonymous)
    assert signer.csrf_ok(anonymous, token)
    assert (
        not signer.csrf_ok(anonymous, None)
        and not signer.csrf_ok(anonymous, "")
        and not signer.csrf_ok(anonymous, token[:-1])
    )
    logged_in = signer.new_session("account-1", "h")
    assert not signer.csrf_ok(logged_in, token)
    assert not signer.csrf_ok(signer.logged_out(logged_in), signer.csrf_token(logged_in))


def test_the_session_key_is_derived_never_the_signing_key_itself() -> None:
    signer = signer_at(0.0)
    assert signer.key != KEY and len(signer.key) == 32
    assert signer_at(0.0, key=bytes(32)).key != signer.key
