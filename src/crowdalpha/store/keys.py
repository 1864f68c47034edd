"""API key material: random public ids and secrets, and salted scrypt hashes of secrets.

A stored hash reads ``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>`` so the cost can be raised later
without a migration (old keys keep verifying with their own parameters). Secrets are 64 random
characters from a 36-letter alphabet (about 330 bits), so the work factor guards against nothing a
brute force could reach anyway; it is kept modest because every authenticated request pays it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

PUBLIC_ID_LENGTH = 32
SECRET_KEY_LENGTH = 64
_ALPHABET = string.ascii_uppercase + string.digits
_SCHEME = "scrypt"
SCRYPT_N = 2**10
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32


def generate_public_id() -> str:
    """Return a new random public id (32 upper-case letters and digits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(PUBLIC_ID_LENGTH))


def generate_secret_key() -> str:
    """Return a new random secret key (64 upper-case letters and digits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_KEY_LENGTH))


def hash_secret(secret: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """Return the storable salted scrypt hash of a secret, with its parameters and salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(secret, salt, n=n, r=r, p=p)
    return f"{_SCHEME}${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored_hash: str) -> bool:
    """Return True if the secret matches the stored hash (constant-time comparison of the digests)."""
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored_hash.split("$")
        if scheme != _SCHEME:
            return False
        expected = bytes.fromhex(digest_hex)
        actual = _scrypt(secret, bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def burn_verification_time(secret: str) -> None:
    """Spend the time of one verification, so an unknown public id answers as slowly as a wrong secret."""
    _scrypt(secret, b"\0" * _SALT_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)


def _scrypt(secret: str, salt: bytes, *, n: int, r: int, p: int) -> bytes:
    """Return the scrypt digest of a secret (32 bytes)."""
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_HASH_BYTES, maxmem=256 * n * r * p
    )
