"""The errors the store raises; each message is fit to show to the person who caused it."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every store error."""


class NotFound(StoreError, LookupError):
    """A row the caller named does not exist."""


class AlreadyExists(StoreError):
    """A row with the same unique name or key exists already."""


class AuthenticationError(StoreError):
    """An API key's public id and secret do not match an active key."""


class PermissionDenied(StoreError):
    """An authenticated API key lacks the scope an operation needs."""


class LeaseLost(StoreError):
    """A job worker tried to finish a job whose lease it no longer holds."""


class BlobTooLarge(StoreError):
    """A blob grew past its size limit while streaming; nothing was stored."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"upload exceeds the size limit of {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


class InvalidBlobKey(StoreError, ValueError):
    """A blob key is not a safe relative path of simple segments."""
