"""Short-lived signed URLs for file downloads and uploads.

A signature is HMAC-SHA256 over ``METHOD\\nPATH\\nEXPIRES`` with the server's key; it travels in the
query string as ``expires=<unix seconds>&signature=<hex>``. HEAD is signed and verified as GET, so
a download URL also answers the HEAD that fsspec sends first. Expiry is checked against the
machine's wall clock, never the tournament's settable clock: a URL is a transport credential, and a
simulated clock standing in 2020 must not make every fresh URL look expired.

The key is 32 random bytes, taken from ``CROWDALPHA_SIGNING_KEY`` (hex) if set, otherwise read from
``<home>/signing.key`` and created there on first use (mode 0600, created atomically, so several
workers starting together agree on one key).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from crowdalpha.settings import Settings

SIGNING_KEY_ENV = "CROWDALPHA_SIGNING_KEY"
SIGNING_KEY_FILENAME = "signing.key"
SIGNING_KEY_BYTES = 32
DOWNLOAD_PREFIX = "/files"
UPLOAD_PREFIX = "/uploads"
DEFAULT_DOWNLOAD_TTL = timedelta(hours=1)
DEFAULT_UPLOAD_TTL = timedelta(minutes=15)

EXPIRED_MESSAGE = "signature expired"
BAD_SIGNATURE_MESSAGE = "bad signature"
MISSING_SIGNATURE_MESSAGE = "missing signature: the URL needs its expires and signature parameters"


class SignatureError(Exception):
    """A signed URL cannot be used; the message is the one the client sees (with HTTP 403)."""


class SignatureExpired(SignatureError):
    """The URL was signed correctly but its expiry time has passed."""

    def __init__(self) -> None:
        super().__init__(EXPIRED_MESSAGE)


class BadSignature(SignatureError):
    """The signature does not match the method, path and expiry (tampered, or signed with another key)."""

    def __init__(self) -> None:
        super().__init__(BAD_SIGNATURE_MESSAGE)


class MissingSignature(SignatureError):
    """The URL has no ``expires`` or no ``signature`` parameter."""

    def __init__(self) -> None:
        super().__init__(MISSING_SIGNATURE_MESSAGE)


def _signed_method(method: str) -> str:
    """Return the method a signature covers (HEAD is covered by the GET signature)."""
    upper = method.upper()
    return "GET" if upper == "HEAD" else upper


def _expiry_seconds(expires_at: datetime | int) -> int:
    """Return an expiry as whole unix seconds (a datetime must be timezone-aware)."""
    if isinstance(expires_at, datetime):
        if expires_at.tzinfo is None:
            raise ValueError(f"expires_at must be timezone-aware, got {expires_at!r}")
        return int(expires_at.timestamp())
    return int(expires_at)


def signature(path: str, method: str, expires: int, key: bytes) -> str:
    """Return the hex HMAC-SHA256 of (method, path, expiry in unix seconds) under ``key``."""
    message = f"{_signed_method(method)}\n{path}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(path: str, method: str, expires_at: datetime | int, key: bytes) -> str:
    """Return the query string ``expires=…&signature=…`` that authorises ``method`` on ``path`` until then."""
    expires = _expiry_seconds(expires_at)
    return urlencode({"expires": expires, "signature": signature(path, method, expires, key)})


def verify(
    path: str,
    method: str,
    expires: str | int | None,
    signature_hex: str | None,
    key: bytes,
    *,
    now: float | None = None,
) -> None:
    """Return None if the signature authorises ``method`` on ``path`` now; raise a SignatureError if not."""
    if expires in (None, "") or not signature_hex:
        raise MissingSignature()
    try:
        expires_seconds = int(expires)
    except (TypeError, ValueError):
        raise BadSignature() from None
    expected = signature(path, method, expires_seconds, key)
    # Check the MAC before the expiry so that a forged expiry is reported as tampering.
    if not hmac.compare_digest(expected.encode(), signature_hex.encode("utf-8", "replace")):
        raise BadSignature()
    if (time.time() if now is None else now) >= expires_seconds:
        raise SignatureExpired()


def download_path(blob_key: str) -> str:
    """Return the URL path (relative to the app) that serves a blob."""
    return f"{DOWNLOAD_PREFIX}/{blob_key}"


def upload_path(blob_key: str) -> str:
    """Return the URL path (relative to the app) that accepts a PUT of a blob."""
    return f"{UPLOAD_PREFIX}/{blob_key}"


@dataclass(frozen=True)
class UrlSigner:
    """Makes and checks signed download/upload URLs with one key, timed by the wall clock."""

    key: bytes = field(repr=False)
    download_ttl: timedelta = DEFAULT_DOWNLOAD_TTL
    upload_ttl: timedelta = DEFAULT_UPLOAD_TTL
    clock: Callable[[], float] = time.time

    def download_url(self, base_url: str, blob_key: str, *, ttl: timedelta | None = None) -> str:
        """Return an absolute URL that GETs (or HEADs) the blob for ``ttl`` (default: download_ttl)."""
        return self._url(base_url, download_path(blob_key), "GET", ttl or self.download_ttl)

    def upload_url(self, base_url: str, blob_key: str, *, ttl: timedelta | None = None) -> str:
        """Return an absolute URL that accepts a PUT of the blob for ``ttl`` (default: upload_ttl)."""
        return self._url(base_url, upload_path(blob_key), "PUT", ttl or self.upload_ttl)

    def verify(self, path: str, method: str, expires: str | int | None, signature_hex: str | None) -> None:
        """Return None if the URL's signature is valid now; raise a SignatureError otherwise."""
        verify(path, method, expires, signature_hex, self.key, now=self.clock())

    def _url(self, base_url: str, path: str, method: str, ttl: timedelta) -> str:
        """Return ``base_url`` + ``path`` with a signature valid for ``ttl`` from now."""
        expires = int(self.clock() + ttl.total_seconds())
        return f"{base_url.rstrip('/')}{path}?{sign(path, method, expires, self.key)}"


def load_signing_key(settings: Settings, *, environ: Mapping[str, str] | None = None) -> bytes:
    """Return the server's signing key: from CROWDALPHA_SIGNING_KEY (hex), else ``<home>/signing.key``."""
    env = os.environ if environ is None else environ
    configured = env.get(SIGNING_KEY_ENV, "").strip()
    if configured:
        return _parse_key(configured, SIGNING_KEY_ENV)
    return load_or_create_key_file(settings.home / SIGNING_KEY_FILENAME)


def load_or_create_key_file(path: Path) -> bytes:
    """Return the key stored (hex) in ``path``, first creating it with a random key if absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(SIGNING_KEY_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link() fails if another process created the key first; then everyone reads theirs.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return _parse_key(path.read_text().strip(), str(path))


def _parse_key(text: str, source: str) -> bytes:
    """Return the key bytes from hex text; raise ValueError naming where the text came from."""
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{source}: the signing key must be hex, e.g. 64 hex digits") from None
    if len(key) < 16:
        raise ValueError(f"{source}: the signing key must be at least 16 bytes (32 hex digits)")
    return key
