"""FastAPI dependencies: the shared objects (settings, blob store, URL signer, limit, engine) and hooks.

``create_app`` puts the shared objects on ``app.state``; routes ask for them with ``Depends`` so a test
or the service layer can replace any of them through ``app.dependency_overrides``.

The upload hooks are the seam to the service layer: after a PUT is stored, the files router calls
``on_upload(key, size, sha256)``; when a PUT is refused (over the size limit, client gone), it calls
``on_upload_rejected(key, message)`` so that a later ``create_submission`` can tell the participant
why — numerapi ignores the PUT's status code. Both may be plain or ``async`` functions; plain ones
run in the thread pool (they may touch the database). The defaults record nothing. The app sets
them as ``app.state.upload_hook`` / ``app.state.upload_rejected_hook`` rather than through
``dependency_overrides``: while any override is registered, FastAPI re-inspects the signature of
every dependency of every request.

The getters of shared objects are ``async`` although they do not wait for anything: FastAPI runs a
plain dependency in the thread pool, a round trip per dependency per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import Engine

from crowdalpha.api.signing import UrlSigner
from crowdalpha.service import Context, ServiceError, authenticate
from crowdalpha.settings import Settings
from crowdalpha.store import Account, BlobStore, Scope

UploadHook = Callable[[str, int, str], Awaitable[None] | None]
"""Called as ``on_upload(key, size, sha256)`` after an uploaded blob is stored."""

UploadRejectedHook = Callable[[str, str], Awaitable[None] | None]
"""Called as ``on_upload_rejected(key, message)`` after a PUT was refused and nothing was stored."""


async def get_settings(request: Request) -> Settings:
    """Return the app's settings."""
    return request.app.state.settings


async def get_blob_store(request: Request) -> BlobStore:
    """Return the blob store that file routes read from and write to."""
    return request.app.state.blob_store


async def get_url_signer(request: Request) -> UrlSigner:
    """Return the signer that makes and checks the app's signed URLs."""
    return request.app.state.url_signer


async def get_upload_limit(request: Request) -> int:
    """Return the largest upload accepted, in bytes."""
    return request.app.state.upload_limit


async def get_engine(request: Request) -> Engine | None:
    """Return the database engine, or None when the app runs without one (files only)."""
    return request.app.state.engine


def record_nothing(*_: object) -> None:
    """Return None; the default upload hooks (no service layer attached)."""
    return None


async def get_upload_hook(request: Request) -> UploadHook:
    """Return the hook called after an upload is stored (``app.state.upload_hook``; default: none)."""
    return getattr(request.app.state, "upload_hook", record_nothing)


async def get_upload_rejected_hook(request: Request) -> UploadRejectedHook:
    """Return the hook called after an upload is refused (``app.state.upload_rejected_hook``)."""
    return getattr(request.app.state, "upload_rejected_hook", record_nothing)


def get_service(request: Request) -> Context:
    """Return the app's service Context; raise ``no_database`` when the app serves files only."""
    service: Context | None = request.app.state.service
    if service is None:
        raise ServiceError("no_database", "this server runs without a database (files only)")
    return service


api_key_header = APIKeyHeader(
    name="Authorization",
    scheme_name="ApiKey",
    description="An API key as numerapi sends it: `Token PUBLIC$SECRET`.",
    auto_error=False,
)


def require_scope(scope: Scope) -> Callable[..., Account]:
    """Return a dependency yielding the account whose API key (``Authorization`` header) holds ``scope``."""

    def authenticated_account(
        authorization: Annotated[str | None, Security(api_key_header)],
        service: Annotated[Context, Depends(get_service)],
    ) -> Account:
        return authenticate(service, authorization, scope)

    return authenticated_account
