"""FastAPI dependencies: the shared objects (settings, blob store, URL signer, limit, engine) and hooks.

``create_app`` puts the shared objects on ``app.state``; routes ask for them with ``Depends`` so a test
or the service layer can replace any of them through ``app.dependency_overrides``.

The upload hooks are the seam to the service layer: after a PUT is stored, the files router calls
``on_upload(key, size, sha256)``; when a PUT is refused (over the size limit, client gone), it calls
``on_upload_rejected(key, message)`` so that a later ``create_submission`` can tell the participant
why — numerapi ignores the PUT's status code. Both may be plain or ``async`` functions; plain ones
run in the thread pool (they may touch the database). The defaults record nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from sqlalchemy import Engine

from crowdalpha.api.signing import UrlSigner
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore

UploadHook = Callable[[str, int, str], Awaitable[None] | None]
"""Called as ``on_upload(key, size, sha256)`` after an uploaded blob is stored."""

UploadRejectedHook = Callable[[str, str], Awaitable[None] | None]
"""Called as ``on_upload_rejected(key, message)`` after a PUT was refused and nothing was stored."""


def get_settings(request: Request) -> Settings:
    """Return the app's settings."""
    return request.app.state.settings


def get_blob_store(request: Request) -> BlobStore:
    """Return the blob store that file routes read from and write to."""
    return request.app.state.blob_store


def get_url_signer(request: Request) -> UrlSigner:
    """Return the signer that makes and checks the app's signed URLs."""
    return request.app.state.url_signer


def get_upload_limit(request: Request) -> int:
    """Return the largest upload accepted, in bytes."""
    return request.app.state.upload_limit


def get_engine(request: Request) -> Engine | None:
    """Return the database engine, or None when the app runs without one (files only)."""
    return request.app.state.engine


def record_nothing(*_: object) -> None:
    """Return None; the default upload hooks (no service layer attached)."""
    return None


def get_upload_hook() -> UploadHook:
    """Return the hook called after an upload is stored (the service layer overrides this dependency)."""
    return record_nothing


def get_upload_rejected_hook() -> UploadRejectedHook:
    """Return the hook called after an upload is refused (the service layer overrides this dependency)."""
    return record_nothing
