"""File routes: signed downloads (GET/HEAD with byte ranges) and signed uploads (raw-body PUT) of blobs.

What numerapi needs (reference §2.2): ``utils.download_file`` reads ``Content-Length`` to detect a
finished download and resumes with ``Range: bytes=N-``; ``download_dataset(filters=...)`` reads
Parquet footers through fsspec's HTTP filesystem (a HEAD, then ``Range: bytes=a-b`` reads); uploads
PUT the raw file to the URL returned by ``*UploadAuth`` and ignore the response status. Bodies are
streamed in both directions, never held whole in memory, and an upload's size limit is enforced
while it streams.
"""

from __future__ import annotations

import hashlib
import inspect
import mimetypes
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from crowdalpha.api.dependencies import (
    UploadHook,
    UploadRejectedHook,
    get_blob_store,
    get_upload_hook,
    get_upload_limit,
    get_upload_rejected_hook,
    get_url_signer,
    record_nothing,
)
from crowdalpha.api.signing import DOWNLOAD_PREFIX, UPLOAD_PREFIX, UrlSigner, download_path, upload_path
from crowdalpha.store import BlobInfo, BlobStore, BlobTooLarge
from crowdalpha.store.blobs import BlobWriter, validate_key

STREAM_CHUNK_BYTES = 1024 * 1024
"""Bytes read from the blob store per chunk of a download, and buffered before each upload write."""

INTERRUPTED_MESSAGE = "upload interrupted: the client disconnected before sending the whole body"

_RANGE = re.compile(r"^\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*$", re.IGNORECASE | re.ASCII)

router = APIRouter(tags=["files"])


class UploadReceipt(BaseModel):
    """What the server stored for a PUT: the blob key, its size in bytes and the SHA-256 (hex) of its body."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ByteRange:
    """An inclusive range of byte offsets ``start..end`` within a blob."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """Return the number of bytes in the range."""
        return self.end - self.start + 1


class RangeNotSatisfiable(Exception):
    """A Range header is well formed but asks for bytes the blob does not have (HTTP 416)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"requested range not satisfiable: the file has {size} bytes")
        self.size = size


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """Return the one byte range a Range header asks for, or None to serve the whole blob.

    ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` are honoured (``b`` past the end is clipped);
    raises RangeNotSatisfiable when the range starts at or past the end (or asks for the last 0
    bytes). Anything else — another unit, several ranges, ``b < a``, malformed text — is ignored,
    as RFC 9110 allows, and the whole blob is served with 200.
    """
    match = _RANGE.match(header) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return ByteRange(start, size - 1 if not last else min(int(last), size - 1))


@dataclass(frozen=True)
class _OpenBlob:
    """A blob opened for reading with the size and ETag of exactly the version that is open."""

    handle: BinaryIO
    size: int
    etag: str


def _open_blob(store: BlobStore, key: str) -> _OpenBlob:
    """Return the blob opened for reading; raise NotFound or InvalidBlobKey."""
    handle = store.open(key)
    try:
        if store.is_local:
            # fstat of the open descriptor: an atomic replace during the download cannot mix versions.
            status = os.fstat(handle.fileno())
            size, version = status.st_size, f"{status.st_ino}:{status.st_mtime_ns}"
        else:
            info = store.fs.info(f"{store.root.rstrip('/')}/{validate_key(key)}")
            size = int(info["size"])
            version = str(info.get("ETag") or info.get("LastModified") or info.get("mtime") or "")
    except BaseException:
        handle.close()
        raise
    digest = hashlib.sha256(f"{key}\n{size}\n{version}".encode()).hexdigest()[:32]
    return _OpenBlob(handle=handle, size=size, etag=f'"{digest}"')


async def _read_range(handle: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
    """Yield ``length`` bytes from ``start`` in chunks; close the handle at the end or on abort."""
    try:
        await run_in_threadpool(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await run_in_threadpool(handle.read, min(STREAM_CHUNK_BYTES, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _content_type(key: str) -> str:
    """Return the media type for a blob from its file extension."""
    if key.endswith(".parquet"):
        return "application/vnd.apache.parquet"
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


_DOWNLOAD_ROUTE: dict[str, Any] = {
    "path": f"{DOWNLOAD_PREFIX}/{{key:path}}",
    "response_class": Response,
    "responses": {
        200: {"description": "The whole blob", "content": {"application/octet-stream": {}}},
        206: {"description": "The requested byte range (see Content-Range)"},
        403: {"description": "Signature missing, expired or bad"},
        404: {"description": "No such blob"},
        416: {"description": "Range not satisfiable"},
    },
}


@router.get(summary="Download a blob through a signed URL", **_DOWNLOAD_ROUTE)
@router.head(summary="Size and ETag of a blob through a signed URL", **_DOWNLOAD_ROUTE)
async def download_blob(
    key: str,
    request: Request,
    store: Annotated[BlobStore, Depends(get_blob_store)],
    signer: Annotated[UrlSigner, Depends(get_url_signer)],
    expires: str | None = None,
    signature: str | None = None,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
    if_range: Annotated[str | None, Header(alias="If-Range")] = None,
) -> Response:
    """Return the blob (or one byte range of it) with Content-Length, Accept-Ranges and ETag."""
    signer.verify(download_path(key), request.method, expires, signature)
    blob = await run_in_threadpool(_open_blob, store, key)
    headers = {"Accept-Ranges": "bytes", "ETag": blob.etag}
    try:
        # A stale If-Range (the file changed since the client's first part) means: send it all again.
        byte_range = parse_range(range_header if if_range in (None, blob.etag) else None, blob.size)
    except RangeNotSatisfiable as error:
        blob.handle.close()
        headers["Content-Range"] = f"bytes */{blob.size}"
        return JSONResponse({"detail": str(error)}, status_code=416, headers=headers)
    status = 200 if byte_range is None else 206
    start, length = (0, blob.size) if byte_range is None else (byte_range.start, byte_range.length)
    headers["Content-Length"] = str(length)
    if byte_range is not None:
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{blob.size}"
    media_type = _content_type(key)
    if request.method == "HEAD":
        blob.handle.close()
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(
        _read_range(blob.handle, start, length), status_code=status, headers=headers, media_type=media_type
    )


async def _call_hook(hook: Any, *arguments: object) -> None:
    """Call a plain or async hook; plain hooks run in the thread pool (they may block on the database)."""
    if hook is record_nothing:
        return  # the default hook: no thread-pool round trip for nothing
    if inspect.iscoroutinefunction(hook):
        await hook(*arguments)
        return
    result = await run_in_threadpool(hook, *arguments)
    if inspect.isawaitable(result):
        await result


def _write_and_commit(writer: BlobWriter, rest: bytes) -> BlobInfo:
    """Return the stored blob's info after writing the last buffered bytes (one thread-pool call)."""
    if rest:
        writer.write(rest)
    return writer.commit()


async def _store_body(request: Request, store: BlobStore, key: str, limit: int) -> UploadReceipt:
    """Return the receipt after streaming the body into the blob store; raise BlobTooLarge past the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BlobTooLarge(limit)
    writer = store.writer(key, limit_bytes=limit)
    with writer:
        received = 0
        pending: list[bytes] = []
        pending_bytes = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise BlobTooLarge(limit)
            pending.append(chunk)
            pending_bytes += len(chunk)
            if pending_bytes >= STREAM_CHUNK_BYTES:
                await run_in_threadpool(writer.write, b"".join(pending))
                pending, pending_bytes = [], 0
        info = await run_in_threadpool(_write_and_commit, writer, b"".join(pending))
    return UploadReceipt(key=info.key, size=info.size_bytes, sha256=info.sha256)


@router.put(
    f"{UPLOAD_PREFIX}/{{key:path}}",
    summary="Upload a blob through a signed URL (raw body)",
    response_model=UploadReceipt,
    responses={
        403: {"description": "Signature missing, expired or bad"},
        413: {"description": "Body larger than the upload limit; nothing was stored"},
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": {}}}}
    },
)
async def upload_blob(
    key: str,
    request: Request,
    store: Annotated[BlobStore, Depends(get_blob_store)],
    signer: Annotated[UrlSigner, Depends(get_url_signer)],
    limit: Annotated[int, Depends(get_upload_limit)],
    on_upload: Annotated[UploadHook, Depends(get_upload_hook)],
    on_upload_rejected: Annotated[UploadRejectedHook, Depends(get_upload_rejected_hook)],
    expires: str | None = None,
    signature: str | None = None,
    x_compute_id: Annotated[str | None, Header(alias="x_compute_id", convert_underscores=False)] = None,
) -> UploadReceipt:
    """Return the receipt of the stored body; the service layer's ``on_upload`` hook has recorded it."""
    signer.verify(upload_path(key), request.method, expires, signature)
    validate_key(key)
    try:
        receipt = await _store_body(request, store, key, limit)
    except BlobTooLarge as error:
        await _call_hook(on_upload_rejected, key, str(error))
        raise
    except ClientDisconnect:
        await _call_hook(on_upload_rejected, key, INTERRUPTED_MESSAGE)
        raise
    try:
        await _call_hook(on_upload, receipt.key, receipt.size, receipt.sha256)
    except BaseException:
        # The service refused (or failed to record) the upload: leave no unrecorded blob behind.
        await run_in_threadpool(store.delete, key)
        raise
    return receipt
