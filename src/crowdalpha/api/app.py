"""The crowdalpha web application: file routes, health, and (later) GraphQL at ``/graphql``.

``create_app`` builds one FastAPI app from settings. Shared objects live on ``app.state`` and reach
routes through the dependencies in :mod:`crowdalpha.api.dependencies`, so tests and the service
layer replace them with ``app.dependency_overrides``. Serve it with uvicorn::

    uvicorn --factory crowdalpha.api.app:app_from_environment
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import Engine

from crowdalpha import __version__
from crowdalpha.api import files, health
from crowdalpha.api.errors import install_error_handlers
from crowdalpha.api.signing import DEFAULT_DOWNLOAD_TTL, DEFAULT_UPLOAD_TTL, UrlSigner, load_signing_key
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore


def create_app(
    settings: Settings,
    *,
    blob_store: BlobStore | None = None,
    signing_key: bytes | None = None,
    upload_limit: int | None = None,
    engine: Engine | None = None,
    download_ttl: timedelta = DEFAULT_DOWNLOAD_TTL,
    upload_ttl: timedelta = DEFAULT_UPLOAD_TTL,
) -> FastAPI:
    """Return the app: signed file routes over the blob store, ``/healthz``, JSON errors everywhere.

    Defaults come from ``settings``: the blob store at ``settings.storage_url``, the signing key from
    ``CROWDALPHA_SIGNING_KEY`` or ``<home>/signing.key`` (created on first use), the upload limit
    ``settings.upload_limit_bytes``. Without an ``engine`` the app serves files only and
    ``/healthz`` reports the database as "not configured".
    """
    app = FastAPI(
        title="crowdalpha",
        version=__version__,
        description="Self-hosted, numerapi-compatible tournament server",
    )
    app.state.settings = settings
    app.state.blob_store = blob_store if blob_store is not None else BlobStore(settings.storage_url)
    app.state.url_signer = UrlSigner(
        key=signing_key if signing_key is not None else load_signing_key(settings),
        download_ttl=download_ttl,
        upload_ttl=upload_ttl,
    )
    app.state.upload_limit = upload_limit if upload_limit is not None else settings.upload_limit_bytes
    app.state.engine = engine
    install_error_handlers(app)

    app.include_router(health.router)
    app.include_router(files.router)
    # GraphQL (numerapi-compatible, Ariadne) mounts here at /graphql. Its resolvers make file URLs
    # with the signer from `dependencies.get_url_signer` (download_url / upload_url), and the
    # service layer records uploads by overriding `dependencies.get_upload_hook` and
    # `dependencies.get_upload_rejected_hook` in `app.dependency_overrides`.
    return app


def app_from_environment() -> FastAPI:
    """Return the app for the settings in the environment (a factory for ``uvicorn --factory``)."""
    return create_app(Settings.resolve())
