"""The crowdalpha web application: file routes, health, and GraphQL at ``/graphql`` (numerapi-compatible).

``create_app`` builds one FastAPI app from settings. Shared objects live on ``app.state`` and reach
routes through the dependencies in :mod:`crowdalpha.api.dependencies`, so tests and the service
layer replace them with ``app.dependency_overrides``. Serve it with uvicorn::

    uvicorn --factory crowdalpha.api.app:app_from_environment
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import Engine

from crowdalpha import __version__
from crowdalpha.api import files, health, operator
from crowdalpha.api.errors import install_error_handlers
from crowdalpha.api.graphql import install_graphql
from crowdalpha.api.signing import DEFAULT_DOWNLOAD_TTL, DEFAULT_UPLOAD_TTL, UrlSigner, load_signing_key
from crowdalpha.service import Context, HomeClock
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore
from crowdalpha.tournament.clock import Clock


def create_app(
    settings: Settings,
    *,
    blob_store: BlobStore | None = None,
    signing_key: bytes | None = None,
    upload_limit: int | None = None,
    engine: Engine | None = None,
    download_ttl: timedelta = DEFAULT_DOWNLOAD_TTL,
    upload_ttl: timedelta = DEFAULT_UPLOAD_TTL,
    clock: Clock | None = None,
    freeze_startup_objects: bool = False,
) -> FastAPI:
    """Return the app: signed file routes over the blob store, ``/healthz``, JSON errors everywhere.

    Defaults come from ``settings``: the blob store at ``settings.storage_url``, the signing key from
    ``CROWDALPHA_SIGNING_KEY`` or ``<home>/signing.key`` (created on first use), the upload limit
    ``settings.upload_limit_bytes``, the clock the home's (re-read at every request, so
    ``crowdalpha clock set`` reaches a running server). Without an ``engine`` the app serves files
    only, ``/healthz`` reports the database as "not configured" and GraphQL answers ``no_database``.
    ``freeze_startup_objects`` (for a server process, see :func:`_frozen_at_startup`) takes the
    objects alive at startup out of the garbage collector's scans.
    """
    app = FastAPI(
        title="crowdalpha",
        version=__version__,
        description="Self-hosted, numerapi-compatible tournament server",
        lifespan=_frozen_at_startup if freeze_startup_objects else None,
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
    app.state.service = (
        None
        if engine is None
        else Context(
            engine=engine,
            blobs=app.state.blob_store,
            clock=clock if clock is not None else HomeClock(settings),
            settings=settings,
        )
    )
    install_error_handlers(app)

    # The routes numerapi's uploads hit come first: routing tries the routes in order, every request.
    install_graphql(app)
    app.include_router(files.router)
    app.include_router(health.router)
    app.include_router(operator.router)
    from crowdalpha.web import install_web  # here: the web pages import the API's dependencies

    install_web(app)
    return app


@asynccontextmanager
async def _frozen_at_startup(_: FastAPI) -> AsyncIterator[None]:
    """Move every object alive at startup to the collector's permanent generation, then serve.

    A server process holds some 250,000 long-lived objects (modules, the schema, SQLAlchemy's and
    pandas' machinery); each full collection walked all of them with the GIL held — about 100-200 ms
    during which no request moved, several times a minute under upload load. Frozen, they are still
    freed by reference counting, only no longer scanned for cycles.
    """
    gc.collect()
    gc.freeze()
    yield


def app_from_environment() -> FastAPI:
    """Return the app for the settings in the environment (a factory for ``uvicorn --factory``)."""
    return create_app(Settings.resolve(), freeze_startup_objects=True)
