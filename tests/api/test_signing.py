"""Signed URLs: HMAC over (method, path, expiry), clear errors, and a server key persisted in the home."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from crowdalpha.api.signing import (
    BAD_SIGNATURE_MESSAGE,
    EXPIRED_MESSAGE,
    SIGNING_KEY_ENV,
    BadSignature,
    MissingSignature,
    SignatureExpired,
    UrlSigner,
    load_or_create_key_file,
    load_signing_key,
    sign,
    verify,
)
from crowdalpha.settings import Settings

KEY = b"k" * 32
NOW = 1_800_000_000
PATH = "/files/datasets/v5.0/train.parquet"


def params(query: str) -> tuple[str, str]:
    """Return (expires, signature) from a signed query string."""
    values = parse_qs(query)
    return values["expires"][0], values["signature"][0]


def test_a_signature_authorises_its_method_and_path_until_it_expires() -> None:
    expires, signature = params(sign(PATH, "GET", NOW + 60, KEY))
    assert expires == str(NOW + 60)
    assert len(signature) == 64
    verify(PATH, "GET", expires, signature, KEY, now=NOW)
    verify(PATH, "GET", expires, signature, KEY, now=NOW + 59)
    with pytest.raises(SignatureExpired, match=f"^{EXPIRED_MESSAGE}$"):
        verify(PATH, "GET", expires, signature, KEY, now=NOW + 60)


def test_head_is_authorised_by_the_get_signature_but_put_is_not() -> None:
    expires, signature = params(sign(PATH, "GET", NOW + 60, KEY))
    verify(PATH, "HEAD", expires, signature, KEY, now=NOW)
    with pytest.raises(BadSignature):
        verify(PATH, "PUT", expires, signature, KEY, now=NOW)


@pytest.mark.parametrize(
    ("path", "method", "expires_delta", "key", "signature_edit"),
    [
        ("/files/datasets/v5.0/live.parquet", "GET", 0, KEY, None),
        (PATH, "PUT", 0, KEY, None),
        (PATH, "GET", 3600, KEY, None),
        (PATH, "GET", 0, b"x" * 32, None),
        (PATH, "GET", 0, KEY, "flip"),
        (PATH, "GET", 0, KEY, "truncate"),
        (PATH, "GET", 0, KEY, "non-ascii"),
    ],
    ids=["other-path", "other-method", "later-expiry", "other-key", "flipped", "truncated", "non-ascii"],
)
def test_any_tampering_is_a_bad_signature(
    path: str, method: str, expires_delta: int, key: bytes, signature_edit: str | None
) -> None:
    expires, signature = params(sign(PATH, "GET", NOW + 60, KEY))
    if signature_edit == "flip":
        signature = ("0" if signature[0] != "0" else "1") + signature[1:]
    elif signature_edit == "truncate":
        signature = signature[:-2]
    elif signature_edit == "non-ascii":
        signature = "é" + signature[1:]
    with pytest.raises(BadSignature, match=f"^{BAD_SIGNATURE_MESSAGE}$"):
        verify(path, method, int(expires) + expires_delta, signature, key, now=NOW)


def test_a_forged_expiry_is_reported_as_tampering_even_when_the_original_has_expired() -> None:
    expires, signature = params(sign(PATH, "GET", NOW - 10, KEY))
    with pytest.raises(SignatureExpired):
        verify(PATH, "GET", expires, signature, KEY, now=NOW)
    with pytest.raises(BadSignature):
        verify(PATH, "GET", NOW + 3600, signature, KEY, now=NOW)
    with pytest.raises(BadSignature):
        verify(PATH, "GET", "soon", signature, KEY, now=NOW)


@pytest.mark.parametrize(("expires", "signature"), [(None, "ab"), ("123", None), ("", ""), ("123", "")])
def test_a_url_without_its_parameters_is_missing_a_signature(
    expires: str | None, signature: str | None
) -> None:
    with pytest.raises(MissingSignature, match=r"^missing signature"):
        verify(PATH, "GET", expires, signature, KEY, now=NOW)


def test_expiry_may_be_an_aware_datetime_but_not_a_naive_one() -> None:
    moment = datetime.fromtimestamp(NOW, UTC)
    assert sign(PATH, "GET", moment, KEY) == sign(PATH, "GET", NOW, KEY)
    with pytest.raises(ValueError, match="timezone-aware"):
        sign(PATH, "GET", moment.replace(tzinfo=None), KEY)


def test_url_signer_makes_urls_that_it_accepts_for_their_time_to_live() -> None:
    clock = [float(NOW)]
    signer = UrlSigner(KEY, download_ttl=timedelta(minutes=5), clock=lambda: clock[0])
    url = signer.download_url("http://127.0.0.1:8000/", "datasets/v5.0/train.parquet")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://127.0.0.1:8000" + PATH
    expires, signature = params(parts.query)
    assert int(expires) == NOW + 300
    signer.verify(parts.path, "HEAD", expires, signature)
    clock[0] += 300
    with pytest.raises(SignatureExpired):
        signer.verify(parts.path, "GET", expires, signature)

    upload = urlsplit(signer.upload_url("http://h", "uploads/x/predictions.csv"))
    assert upload.path == "/uploads/uploads/x/predictions.csv"
    assert int(params(upload.query)[0]) == NOW + 300 + 15 * 60
    assert repr(KEY) not in repr(signer)


def test_the_signing_key_is_created_once_in_the_home_with_owner_only_permissions(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", environ={})
    key = load_signing_key(settings, environ={})
    path = settings.home / "signing.key"
    assert len(key) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_signing_key(settings, environ={}) == key
    assert [p.name for p in settings.home.iterdir()] == ["signing.key"]


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_or_create_key_file(path), range(32)))
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["signing.key"]


def test_the_environment_key_wins_and_must_be_long_enough_hex(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path, environ={})
    assert load_signing_key(settings, environ={SIGNING_KEY_ENV: "ab" * 32}) == b"\xab" * 32
    assert not (tmp_path / "signing.key").exists()
    with pytest.raises(ValueError, match=f"^{SIGNING_KEY_ENV}: the signing key must be hex"):
        load_signing_key(settings, environ={SIGNING_KEY_ENV: "not hex"})
    with pytest.raises(ValueError, match="at least 16 bytes"):
        load_signing_key(settings, environ={SIGNING_KEY_ENV: "abcd"})
