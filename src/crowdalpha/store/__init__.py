"""Persistence: SQLAlchemy schema, packaged Alembic migrations, repositories, units of work and blob storage.

Typical use::

    engine = create_engine(settings.database_url)
    upgrade_to_head(engine)
    with transaction(engine) as uow:
        new = uow.accounts.create_with_key("alice", now=clock.now())
    blobs = BlobStore(settings.storage_url)
"""

from __future__ import annotations

from crowdalpha.store.blobs import BlobInfo, BlobStore, BlobWriter
from crowdalpha.store.engine import create_engine, engine_view, is_retryable
from crowdalpha.store.errors import (
    AlreadyExists,
    AuthenticationError,
    BlobTooLarge,
    InvalidBlobKey,
    LeaseLost,
    NotFound,
    PermissionDenied,
    StoreError,
)
from crowdalpha.store.migrate import current_revision, head_revision, upgrade_to_head
from crowdalpha.store.repositories import DatasetFileSpec, NewAccount, NewApiKey, job_key
from crowdalpha.store.schema import (
    ALL_SCOPES,
    Account,
    ApiKey,
    DatasetFile,
    DatasetVersion,
    Job,
    JobState,
    LiveUniverse,
    Model,
    Round,
    RoundState,
    Scope,
    Submission,
    SubmissionStatus,
    Tournament,
)
from crowdalpha.store.unit_of_work import UnitOfWork, run_transaction, transaction

__all__ = [
    "ALL_SCOPES",
    "Account",
    "AlreadyExists",
    "ApiKey",
    "AuthenticationError",
    "BlobInfo",
    "BlobStore",
    "BlobTooLarge",
    "BlobWriter",
    "DatasetFile",
    "DatasetFileSpec",
    "DatasetVersion",
    "InvalidBlobKey",
    "Job",
    "JobState",
    "LeaseLost",
    "LiveUniverse",
    "Model",
    "NewAccount",
    "NewApiKey",
    "NotFound",
    "PermissionDenied",
    "Round",
    "RoundState",
    "Scope",
    "StoreError",
    "Submission",
    "SubmissionStatus",
    "Tournament",
    "UnitOfWork",
    "create_engine",
    "current_revision",
    "engine_view",
    "head_revision",
    "is_retryable",
    "job_key",
    "run_transaction",
    "transaction",
    "upgrade_to_head",
]
