"""Signed session cookies and CSRF tokens for the web pages (no server-side session table).

Every browser gets a session cookie, logged in or not: ``<payload>.<HMAC-SHA256>`` where the
payload (URL-safe base64 JSON) holds a random nonce, the expiry (Unix seconds) and, once logged in,
the account id and a tag of its password hash (so a password change ends old sessions). The CSRF
token of a form is an HMAC of the session's nonce: a page from another site cannot read it, and
logging in issues a new nonce, so a token seen before the log-in is useless after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

COOKIE_NAME = "crowdalpha_session"
SESSION_TTL_SECONDS = 7 * 24 * 3600
_KEY_CONTEXT = b"crowdalpha web session v1"


@dataclass(frozen=True)
class WebSession:
    """One browser's session: its nonce, expiry (Unix seconds), and the logged-in account if any."""

    nonce: str
    expires: int
    account_id: str | None = None
    password_tag: str | None = None
    is_new: bool = False


@dataclass(frozen=True)
class SessionSigner:
    """Signs and checks session cookies and CSRF tokens with a key derived from the server's signing key."""

    server_key: bytes = field(repr=False)
    clock: Callable[[], float] = time.time

    @property
    def key(self) -> bytes:
        """Return the session key: an HMAC of a fixed label under the server key (never the key itself)."""
        return hmac.new(self.server_key, _KEY_CONTEXT, hashlib.sha256).digest()

    def _mac(self, label: str, message: str) -> str:
        return hmac.new(self.key, f"{label}:{message}".encode(), hashlib.sha256).hexdigest()

    def new_session(self, account_id: str | None = None, password_hash: str | None = None) -> WebSession:
        """Return a fresh session (a new nonce), logged in to ``account_id`` when one is given."""
        return WebSession(
            nonce=secrets.token_urlsafe(24),
            expires=int(self.clock()) + SESSION_TTL_SECONDS,
            account_id=account_id,
            password_tag=None if password_hash is None else self.password_tag(password_hash),
            is_new=True,
        )

    def password_tag(self, password_hash: str) -> str:
        """Return the short tag of a password hash kept in the cookie (changes when the password does)."""
        return self._mac("password", password_hash)[:32]

    def dumps(self, session: WebSession) -> str:
        """Return the cookie value of a session."""
        document = {
            "n": session.nonce,
            "e": session.expires,
            "a": session.account_id,
            "p": session.password_tag,
        }
        payload = base64.urlsafe_b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()
        return f"{payload}.{self._mac('session', payload)}"

    def loads(self, value: str | None) -> WebSession | None:
        """Return the session of a cookie value, or None if it is missing, forged, malformed or expired."""
        if not value:
            return None
        payload, dot, mac = value.rpartition(".")
        if not dot or not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            document = json.loads(base64.urlsafe_b64decode(payload.encode()))
            session = WebSession(
                nonce=str(document["n"]),
                expires=int(document["e"]),
                account_id=document.get("a"),
                password_tag=document.get("p"),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > self.clock() else None

    def csrf_token(self, session: WebSession) -> str:
        """Return the CSRF token that forms of this session must send back."""
        return self._mac("csrf", session.nonce)

    def csrf_ok(self, session: WebSession, token: str | None) -> bool:
        """Return True if ``token`` is this session's CSRF token (constant-time comparison)."""
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))

    def logged_out(self, session: WebSession) -> WebSession:
        """Return the session without its account (and a new nonce, to be stored)."""
        return replace(self.new_session(), expires=session.expires)
