"""File routes on a live uvicorn server: signed downloads with byte ranges, signed uploads by PUT."""

from __future__ import annotations

import hashlib
import io
import random
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from api_helpers import UPLOAD_LIMIT, RecordingApp
from fastapi import FastAPI, HTTPException

from crowdalpha.api import UrlSigner, get_upload_hook, get_upload_rejected_hook
from crowdalpha.api.files import INTERRUPTED_MESSAGE, STREAM_CHUNK_BYTES, ByteRange, parse_range
from crowdalpha.store import BlobStore

KEY = "datasets/v5.0/blob.bin"
SIZE = 3 * STREAM_CHUNK_BYTES + 12_345
TIMEOUT = 10


@pytest.fixture
def content(blob_store: BlobStore) -> bytes:
    """Return the bytes of a 3 MiB + 12 345 B blob stored under KEY."""
    data = random.Random(0).randbytes(SIZE)
    blob_store.put_bytes(KEY, data)
    return data


def get(url: str, range_: str | None = None, **headers: str) -> requests.Response:
    """Return the response to a GET, with a Range header if given."""
    if range_ is not None:
        headers["Range"] = range_
    return requests.get(url, headers=headers, timeout=TIMEOUT)


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Return True as soon as ``condition()`` holds, False if it still does not after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def nothing_left_behind(store: BlobStore, key: str) -> bool:
    """Return True if neither the blob nor any partial upload file exists."""
    partial = Path(store.root, ".partial")
    return not store.exists(key) and not any(partial.iterdir())


# --- parse_range, the pure part ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-100", ByteRange(900, 999)),
        ("bytes=-5000", ByteRange(0, 999)),
        ("bytes=990-5000", ByteRange(990, 999)),
        ("Bytes = 5 - 5", ByteRange(5, 5)),
        (None, None),
        ("bytes=5-2", None),
        ("bytes=0-1,5-6", None),
        ("items=0-5", None),
        ("bytes=abc", None),
        ("bytes=-", None),
        ("bytes=¹-2", None),
    ],
)
def test_parse_range_honours_one_range_and_ignores_what_it_cannot_serve(
    header: str | None, expected: ByteRange | None
) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=0-", 0)])
def test_parse_range_refuses_ranges_past_the_end(header: str, size: int) -> None:
    with pytest.raises(Exception, match="requested range not satisfiable"):
        parse_range(header, size)


# --- downloads -------------------------------------------------------------------------------


def test_download_streams_the_whole_blob_with_content_length_and_etag(
    base_url: str, signer: UrlSigner, content: bytes
) -> None:
    with requests.get(signer.download_url(base_url, KEY), stream=True, timeout=TIMEOUT) as response:
        assert response.status_code == 200
        assert response.headers["Content-Length"] == str(SIZE)
        assert response.headers["Accept-Ranges"] == "bytes"
        assert response.headers["ETag"].startswith('"')
        assert response.headers["Content-Type"] == "application/octet-stream"
        chunks = list(response.iter_content(None))
    assert b"".join(chunks) == content


def test_a_download_resumes_from_where_it_stopped(base_url: str, signer: UrlSigner, content: bytes) -> None:
    url = signer.download_url(base_url, KEY)
    half = SIZE // 2
    first = get(url, f"bytes=0-{half - 1}")
    rest = get(url, f"bytes={half}-")
    assert (first.status_code, rest.status_code) == (206, 206)
    assert first.headers["Content-Range"] == f"bytes 0-{half - 1}/{SIZE}"
    assert rest.headers["Content-Range"] == f"bytes {half}-{SIZE - 1}/{SIZE}"
    assert rest.headers["Content-Length"] == str(SIZE - half)
    assert first.content + rest.content == content


def test_head_reports_size_and_etag_without_a_body(base_url: str, signer: UrlSigner, content: bytes) -> None:
    url = signer.download_url(base_url, KEY)
    head = requests.head(url, timeout=TIMEOUT)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(content))
    assert head.headers["Accept-Ranges"] == "bytes"
    assert head.content == b""
    assert head.headers["ETag"] == get(url, "bytes=0-0").headers["ETag"]
    partial = requests.head(url, headers={"Range": "bytes=-10"}, timeout=TIMEOUT)
    assert partial.status_code == 206
    assert partial.headers["Content-Range"] == f"bytes {SIZE - 10}-{SIZE - 1}/{SIZE}"


def test_suffix_and_clipped_ranges(base_url: str, signer: UrlSigner, content: bytes) -> None:
    url = signer.download_url(base_url, KEY)
    last = get(url, "bytes=-1000")
    assert (last.status_code, last.content) == (206, content[-1000:])
    everything = get(url, f"bytes=-{SIZE + 10}")
    assert everything.headers["Content-Range"] == f"bytes 0-{SIZE - 1}/{SIZE}"
    assert everything.content == content
    clipped = get(url, f"bytes={SIZE - 5}-{SIZE * 2}")
    assert clipped.headers["Content-Range"] == f"bytes {SIZE - 5}-{SIZE - 1}/{SIZE}"
    assert clipped.content == content[-5:]


@pytest.mark.parametrize("range_", [f"bytes={SIZE}-", f"bytes={SIZE + 1}-{SIZE + 9}", "bytes=-0"])
def test_a_range_past_the_end_is_416_with_the_size(
    base_url: str, signer: UrlSigner, content: bytes, range_: str
) -> None:
    response = get(signer.download_url(base_url, KEY), range_)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    assert response.json() == {"detail": f"requested range not satisfiable: the file has {SIZE} bytes"}


def test_an_empty_blob_downloads_but_has_no_ranges(
    base_url: str, signer: UrlSigner, blob_store: BlobStore
) -> None:
    blob_store.put_bytes("empty.csv", b"")
    url = signer.download_url(base_url, "empty.csv")
    whole = get(url)
    assert (whole.status_code, whole.headers["Content-Length"], whole.content) == (200, "0", b"")
    assert whole.headers["Content-Type"].startswith("text/csv")
    assert get(url, "bytes=0-").status_code == 416


@pytest.mark.parametrize("range_", ["bytes=5-2", "bytes=0-1,5-6", "items=0-5", "bytes=abc"])
def test_ranges_the_server_cannot_serve_are_ignored(
    base_url: str, signer: UrlSigner, content: bytes, range_: str
) -> None:
    response = get(signer.download_url(base_url, KEY), range_)
    assert (response.status_code, response.content) == (200, content)


def test_a_stale_if_range_gets_the_whole_current_file(
    base_url: str, signer: UrlSigner, content: bytes
) -> None:
    url = signer.download_url(base_url, KEY)
    etag = get(url, "bytes=0-0").headers["ETag"]
    assert get(url, "bytes=10-", **{"If-Range": etag}).status_code == 206
    stale = get(url, "bytes=10-", **{"If-Range": '"something-else"'})
    assert (stale.status_code, stale.content) == (200, content)


def test_parquet_blobs_have_the_parquet_media_type(
    base_url: str, signer: UrlSigner, blob_store: BlobStore
) -> None:
    blob_store.put_bytes("d/train.parquet", b"PAR1")
    response = requests.head(signer.download_url(base_url, "d/train.parquet"), timeout=TIMEOUT)
    assert response.headers["Content-Type"] == "application/vnd.apache.parquet"


# --- signatures ------------------------------------------------------------------------------


def with_query(url: str, **replace: str) -> str:
    """Return the URL with some query parameters replaced."""
    parts = urlsplit(url)
    query = dict(pair.split("=", 1) for pair in parts.query.split("&"))
    query.update(replace)
    return parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())).geturl()


def test_expired_and_tampered_urls_are_403_with_the_reason(
    base_url: str, app: FastAPI, content: bytes
) -> None:
    signer: UrlSigner = app.state.url_signer
    expired = UrlSigner(signer.key, clock=lambda: 1_000_000_000.0).download_url(base_url, KEY)
    url = signer.download_url(base_url, KEY)
    signature = dict(pair.split("=") for pair in urlsplit(url).query.split("&"))["signature"]
    cases = {
        expired: "signature expired",
        with_query(url, signature=signature[::-1]): "bad signature",
        with_query(url, expires="99999999999"): "bad signature",
        url.replace("blob.bin", "blob.bix"): "bad signature",
        url.split("?")[0]: "missing signature: the URL needs its expires and signature parameters",
        signer.upload_url(base_url, KEY).replace("/uploads/", "/files/"): "bad signature",
    }
    for bad_url, message in cases.items():
        for method in ("GET", "HEAD"):
            response = requests.request(method, bad_url, timeout=TIMEOUT)
            assert response.status_code == 403, (bad_url, method)
            if method == "GET":
                assert response.json() == {"detail": message}


def test_a_signed_url_for_a_missing_or_invalid_key_is_404_or_400(base_url: str, signer: UrlSigner) -> None:
    missing = get(signer.download_url(base_url, "datasets/none.parquet"))
    assert (missing.status_code, missing.json()) == (404, {"detail": "no blob 'datasets/none.parquet'"})
    invalid = get(signer.download_url(base_url, "datasets/.secret"))
    assert invalid.status_code == 400
    assert invalid.json()["detail"].startswith("invalid blob key 'datasets/.secret'")


# --- fsspec: how numerapi reads Parquet with filters -----------------------------------------


@pytest.fixture
def parquet_blob(blob_store: BlobStore) -> pd.DataFrame:
    """Return a 40-era frame stored as Parquet (one row group per era) under datasets/train.parquet."""
    rng = np.random.default_rng(0)
    eras = np.repeat([f"{era:04d}" for era in range(1, 41)], 2_000)
    frame = pd.DataFrame(
        {f"feature_{i}": rng.random(eras.size, dtype=np.float32) for i in range(5)},
        index=pd.Index([f"n{i:015x}" for i in range(eras.size)], name="id"),
    )
    frame.insert(0, "era", eras)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame), buffer, row_group_size=2_000)
    blob_store.put_bytes("datasets/train.parquet", buffer.getvalue())
    return frame


def range_length(header: str) -> int:
    """Return the number of bytes a ``bytes=a-b`` header asks for."""
    first, last = header.removeprefix("bytes=").split("-")
    return int(last) - int(first) + 1


def test_fsspec_reads_a_parquet_file_with_filters_through_range_requests(
    app: FastAPI, recorded: tuple[RecordingApp, str], parquet_blob: pd.DataFrame, blob_store: BlobStore
) -> None:
    recorder, base_url = recorded
    url = app.state.url_signer.download_url(base_url, "datasets/train.parquet")
    with fsspec.open(url, "rb", block_size=64 * 1024) as handle:
        subset = pd.read_parquet(handle, filters=[("era", "in", ["0002", "0039"])])
    expected = parquet_blob[parquet_blob["era"].isin(["0002", "0039"])]
    pd.testing.assert_frame_equal(subset, expected)

    methods = [(request["method"], request["status"]) for request in recorder.requests]
    assert methods[0] == ("HEAD", 200)
    assert set(methods[1:]) == {("GET", 206)}
    fetched = sum(range_length(request["range"]) for request in recorder.requests[1:])
    assert fetched < blob_store.size("datasets/train.parquet") / 2


def test_fsspec_and_pandas_read_whole_files_from_signed_urls(
    base_url: str, signer: UrlSigner, parquet_blob: pd.DataFrame, content: bytes
) -> None:
    url = signer.download_url(base_url, "datasets/train.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(url), parquet_blob)
    with fsspec.open(signer.download_url(base_url, KEY), "rb") as handle:
        assert handle.size == SIZE
        handle.seek(SIZE - 100)
        assert handle.read() == content[-100:]


# --- uploads ---------------------------------------------------------------------------------


@pytest.fixture
def hook_calls(app: FastAPI) -> dict[str, list[tuple[Any, ...]]]:
    """Return the calls the upload hooks receive (installed as dependency overrides)."""
    calls: dict[str, list[tuple[Any, ...]]] = {"stored": [], "rejected": []}

    async def on_upload(key: str, size: int, sha256: str) -> None:
        calls["stored"].append((key, size, sha256))

    def on_upload_rejected(key: str, message: str) -> None:
        calls["rejected"].append((key, message))

    app.dependency_overrides[get_upload_hook] = lambda: on_upload
    app.dependency_overrides[get_upload_rejected_hook] = lambda: on_upload_rejected
    return calls


UPLOAD_KEY = "submissions/8/model/0001.csv"


def test_a_put_stores_the_raw_body_and_returns_its_receipt(
    base_url: str, signer: UrlSigner, blob_store: BlobStore, hook_calls: dict[str, list[tuple[Any, ...]]]
) -> None:
    body = b"id,prediction\n" + b"".join(b"n%015x,0.%d\n" % (i, i % 10) for i in range(2_000))
    assert len(body) < UPLOAD_LIMIT
    response = requests.put(
        signer.upload_url(base_url, UPLOAD_KEY), data=body, headers={"x_compute_id": "c-1"}, timeout=TIMEOUT
    )
    digest = hashlib.sha256(body).hexdigest()
    assert response.status_code == 200
    assert response.json() == {"key": UPLOAD_KEY, "size": len(body), "sha256": digest}
    assert blob_store.read_bytes(UPLOAD_KEY) == body
    assert hook_calls == {"stored": [(UPLOAD_KEY, len(body), digest)], "rejected": []}


def chunks(total: int, size: int = 8_192) -> Iterator[bytes]:
    """Yield ``total`` bytes in chunks (requests then sends them with chunked transfer encoding)."""
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def test_a_chunked_put_of_exactly_the_limit_is_stored(
    base_url: str, signer: UrlSigner, blob_store: BlobStore
) -> None:
    url = signer.upload_url(base_url, UPLOAD_KEY)
    response = requests.put(url, data=chunks(UPLOAD_LIMIT), timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json()["size"] == blob_store.size(UPLOAD_KEY) == UPLOAD_LIMIT


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda: b"x" * (UPLOAD_LIMIT + 1), id="content-length-one-over"),
        pytest.param(lambda: b"x" * (20 * 1024 * 1024), id="content-length-20MiB"),
        pytest.param(lambda: chunks(UPLOAD_LIMIT + 1), id="chunked-one-over"),
        pytest.param(lambda: chunks(4 * 1024 * 1024), id="chunked-4MiB"),
    ],
)
def test_a_put_over_the_limit_is_413_and_leaves_nothing_behind(
    base_url: str,
    signer: UrlSigner,
    blob_store: BlobStore,
    hook_calls: dict[str, list[tuple[Any, ...]]],
    body: Callable[[], Any],
) -> None:
    message = f"upload exceeds the size limit of {UPLOAD_LIMIT} bytes"
    response = requests.put(signer.upload_url(base_url, UPLOAD_KEY), data=body(), timeout=TIMEOUT)
    assert (response.status_code, response.json()) == (413, {"detail": message})
    assert nothing_left_behind(blob_store, UPLOAD_KEY)
    assert hook_calls == {"stored": [], "rejected": [(UPLOAD_KEY, message)]}
    assert requests.get(f"{base_url}/healthz", timeout=TIMEOUT).status_code == 200


def test_a_put_needs_a_put_signature_for_that_key(
    base_url: str, signer: UrlSigner, blob_store: BlobStore
) -> None:
    other_key = signer.upload_url(base_url, "submissions/other.csv").replace("other.csv", "mine.csv")
    download_url = signer.download_url(base_url, "submissions/mine.csv").replace("/files/", "/uploads/")
    for url in (other_key, download_url):
        response = requests.put(url, data=b"id,prediction\n", timeout=TIMEOUT)
        assert (response.status_code, response.json()) == (403, {"detail": "bad signature"})
    assert blob_store.keys() == []


def test_a_put_the_service_refuses_leaves_no_blob(
    app: FastAPI, base_url: str, signer: UrlSigner, blob_store: BlobStore
) -> None:
    def refuse(key: str, size: int, sha256: str) -> None:
        raise HTTPException(409, f"{key} was already submitted")

    app.dependency_overrides[get_upload_hook] = lambda: refuse
    response = requests.put(signer.upload_url(base_url, UPLOAD_KEY), data=b"id,prediction\n", timeout=TIMEOUT)
    assert (response.status_code, response.json()) == (409, {"detail": f"{UPLOAD_KEY} was already submitted"})
    assert nothing_left_behind(blob_store, UPLOAD_KEY)


# --- robustness ------------------------------------------------------------------------------


def raw_request(base_url: str, data: bytes, *, read: bool = True) -> bytes:
    """Send raw bytes to the server and return what it answers (or nothing, hanging up at once)."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as connection:
        connection.sendall(data)
        if not read:
            return b""
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65_536):
            answer += chunk
        return answer


def test_the_server_stays_up_after_bad_and_abandoned_requests(
    base_url: str,
    signer: UrlSigner,
    content: bytes,
    blob_store: BlobStore,
    hook_calls: dict[str, list[tuple[Any, ...]]],
) -> None:
    download = urlsplit(signer.download_url(base_url, KEY))
    upload = urlsplit(signer.upload_url(base_url, UPLOAD_KEY))
    # A download abandoned after its first bytes, and an upload whose client hangs up mid-body.
    with requests.get(download.geturl(), stream=True, timeout=TIMEOUT) as response:
        assert len(next(response.iter_content(1024))) == 1024
    head = f"PUT {upload.path}?{upload.query} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
    raw_request(base_url, head.encode() + b"x" * 100)
    assert raw_request(base_url, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert get(f"{base_url}/files/{KEY}?expires=never&signature=%00").status_code == 403
    assert get(download.geturl(), "bytes=--5").status_code == 200
    assert requests.post(download.geturl(), timeout=TIMEOUT).json() == {"detail": "Method Not Allowed"}
    assert get(f"{base_url}/nowhere").json() == {"detail": "Not Found"}

    assert requests.get(f"{base_url}/healthz", timeout=TIMEOUT).status_code == 200
    assert get(download.geturl()).content == content
    assert eventually(lambda: hook_calls["rejected"] == [(UPLOAD_KEY, INTERRUPTED_MESSAGE)])
    assert nothing_left_behind(blob_store, UPLOAD_KEY)
