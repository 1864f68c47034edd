"""Presigned uploads: where a participant's PUT lands, and claiming it afterwards.

An upload key is ``uploads/<model id>/<uuid>-<safe name>``: flat under the model, so a PUT creates no
directory and an upload leaves none behind. A PUT the file layer refused leaves ``<key>.rejected``
holding the reason, so the follow-up call (create_submission, createDiagnostics) can report it —
numerapi ignores the PUT's own status.
"""

from __future__ import annotations

import re
import uuid
from pathlib import PurePosixPath

from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.store import BlobStore

UPLOAD_KEY_PREFIX = "uploads"
REJECTED_SUFFIX = ".rejected"
MAX_UPLOAD_NAME_CHARS = 128
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._=+-]+")


def upload_name(filename: str) -> str:
    """Return a file name safe as one blob-key segment (basename, unusual characters replaced)."""
    base = PurePosixPath(filename.replace("\\", "/")).name
    safe = _UNSAFE_NAME_CHARS.sub("_", base).lstrip(".")[:MAX_UPLOAD_NAME_CHARS]
    return safe or "predictions.csv"


def new_upload_key(model_id: str, filename: str) -> str:
    """Return a fresh upload key for the model: ``uploads/<model id>/<uuid>-<safe name>``."""
    return f"{UPLOAD_KEY_PREFIX}/{model_id}/{uuid.uuid4().hex}-{upload_name(filename)}"


def record_rejected_upload(blobs: BlobStore, key: str, message: str) -> None:
    """Leave the reason a PUT to an upload key was refused, for the follow-up call to report."""
    if key.startswith(f"{UPLOAD_KEY_PREFIX}/"):
        blobs.put_bytes(f"{key}{REJECTED_SUFFIX}", message.encode())


def claim_upload(ctx: Context, model_id: str, model_name: str, key: str, auth_field: str) -> str:
    """Return the uploaded file's name if ``key`` is the model's upload and its PUT arrived; else raise."""
    parts = key.split("/")
    token, _, name = parts[-1].partition("-")
    if len(parts) != 3 or parts[0] != UPLOAD_KEY_PREFIX or parts[1] != model_id or not token or not name:
        raise ServiceError(
            "unknown_upload",
            f"{key!r} is not an upload of model {model_name!r}; ask {auth_field} for a URL first",
        )
    rejected = f"{key}{REJECTED_SUFFIX}"
    if ctx.blobs.exists(rejected):
        reason = ctx.blobs.read_bytes(rejected).decode()
        ctx.blobs.delete(rejected)
        raise ServiceError("upload_rejected", reason)
    if not ctx.blobs.exists(key):
        raise ServiceError(
            "upload_missing", f"no file was uploaded to {key!r}; PUT it to the upload URL first"
        )
    return name
