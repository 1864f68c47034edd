"""HTTP entry point: the FastAPI app, signed file routes (download with ranges, upload by PUT), health.

Typical use::

    app = create_app(Settings.resolve(), engine=engine)
    signer = app.state.url_signer
    url = signer.download_url("http://127.0.0.1:8000", "datasets/v5.0/train.parquet")
"""

from __future__ import annotations

from crowdalpha.api.app import app_from_environment, create_app
from crowdalpha.api.dependencies import (
    UploadHook,
    UploadRejectedHook,
    get_blob_store,
    get_engine,
    get_settings,
    get_upload_hook,
    get_upload_limit,
    get_upload_rejected_hook,
    get_url_signer,
)
from crowdalpha.api.files import UploadReceipt
from crowdalpha.api.signing import (
    BadSignature,
    MissingSignature,
    SignatureError,
    SignatureExpired,
    UrlSigner,
    load_signing_key,
    sign,
    verify,
)

__all__ = [
    "BadSignature",
    "MissingSignature",
    "SignatureError",
    "SignatureExpired",
    "UploadHook",
    "UploadReceipt",
    "UploadRejectedHook",
    "UrlSigner",
    "app_from_environment",
    "create_app",
    "get_blob_store",
    "get_engine",
    "get_settings",
    "get_upload_hook",
    "get_upload_limit",
    "get_upload_rejected_hook",
    "get_url_signer",
    "load_signing_key",
    "sign",
    "verify",
]
