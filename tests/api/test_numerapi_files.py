"""numerapi's own file code (3.x, unmodified) against signed URLs on a live server.

GraphQL is not part of this layer yet, so ``raw_query`` is replaced by a stub that answers with
signed URLs, exactly what the ``dataset`` and ``submission_upload_auth`` queries will return; every
HTTP request for a file is numerapi's own.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any

import numerapi
import numpy as np
import pandas as pd
import pytest
from api_helpers import RecordingApp
from fastapi import FastAPI
from numerapi import utils as numerapi_utils

from crowdalpha.api import UrlSigner, get_upload_hook
from crowdalpha.store import BlobStore

DATASET_KEY = "datasets/v5.0/train.parquet"


@pytest.fixture
def train(blob_store: BlobStore) -> tuple[pd.DataFrame, bytes]:
    """Return a 30-era training frame and its Parquet bytes, stored under DATASET_KEY."""
    rng = np.random.default_rng(1)
    eras = np.repeat([f"{era:04d}" for era in range(1, 31)], 3_000)
    frame = pd.DataFrame(
        {f"feature_{i}": rng.integers(0, 5, eras.size, dtype=np.int8) for i in range(20)}
        | {"target": rng.choice(np.float32([0, 0.25, 0.5, 0.75, 1]), eras.size)},
        index=pd.Index([f"n{i:015x}" for i in range(eras.size)], name="id"),
    )
    frame.insert(0, "era", eras)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, row_group_size=3_000)
    blob_store.put_bytes(DATASET_KEY, buffer.getvalue())
    return frame, buffer.getvalue()


def test_download_file_fetches_a_dataset_and_checks_its_content_length(
    recorded: tuple[RecordingApp, str], signer: UrlSigner, train: tuple[pd.DataFrame, bytes], tmp_path: Path
) -> None:
    recorder, base_url = recorded
    dest = tmp_path / "train.parquet"
    url = signer.download_url(base_url, DATASET_KEY)
    assert numerapi_utils.download_file(url, str(dest), show_progress_bars=False) == str(dest)
    assert dest.read_bytes() == train[1]
    # Already complete: numerapi compares Content-Length with the file and downloads nothing more.
    numerapi_utils.download_file(url, str(dest), show_progress_bars=False)
    assert [(r["method"], r["range"], r["status"]) for r in recorder.requests] == [("GET", None, 200)] * 2
    assert not Path(f"{dest}.temp").exists()


def test_download_file_resumes_a_partial_download_with_a_range_request(
    recorded: tuple[RecordingApp, str], signer: UrlSigner, train: tuple[pd.DataFrame, bytes], tmp_path: Path
) -> None:
    recorder, base_url = recorded
    data = train[1]
    dest = tmp_path / "train.parquet"
    half = len(data) // 2
    Path(f"{dest}.temp").write_bytes(data[:half])
    numerapi_utils.download_file(
        signer.download_url(base_url, DATASET_KEY), str(dest), show_progress_bars=False
    )
    assert dest.read_bytes() == data
    assert [(r["method"], r["range"], r["status"]) for r in recorder.requests] == [
        ("GET", None, 200),
        ("GET", f"bytes={half}-", 206),
    ]


@pytest.fixture
def napi(monkeypatch: pytest.MonkeyPatch) -> numerapi.NumerAPI:
    """Return a NumerAPI client with API keys and no progress bars."""
    monkeypatch.delenv("NUMERAI_COMPUTE_ID", raising=False)
    client = numerapi.NumerAPI(
        public_id="PUBLIC", secret_key="SECRET", verbosity="warning", show_progress_bars=False
    )
    logging.getLogger("numerapi").setLevel(logging.WARNING)
    return client


def stub_graphql(
    monkeypatch: pytest.MonkeyPatch, client: numerapi.NumerAPI, answers: dict[str, Any]
) -> list[dict[str, Any]]:
    """Make ``client.raw_query`` answer each operation named in ``answers``; return the variables it saw."""
    seen: list[dict[str, Any]] = []

    def raw_query(query: str, variables: dict[str, Any] | None = None, *_: Any, **__: Any) -> dict[str, Any]:
        seen.append(dict(variables or {}))
        operation = next(name for name in answers if f"{name}(" in query)
        return {"data": {operation: answers[operation]}}

    monkeypatch.setattr(client, "raw_query", raw_query)
    return seen


def test_download_dataset_with_filters_reads_only_the_needed_eras(
    napi: numerapi.NumerAPI,
    monkeypatch: pytest.MonkeyPatch,
    recorded: tuple[RecordingApp, str],
    signer: UrlSigner,
    train: tuple[pd.DataFrame, bytes],
    tmp_path: Path,
) -> None:
    recorder, base_url = recorded
    stub_graphql(monkeypatch, napi, {"dataset": signer.download_url(base_url, DATASET_KEY)})
    dest = tmp_path / "two_eras.parquet"
    napi.download_dataset("v5.0/train.parquet", str(dest), filters=[("era", "in", ["0003", "0004"])])
    frame = train[0]
    pd.testing.assert_frame_equal(pd.read_parquet(dest), frame[frame["era"].isin(["0003", "0004"])])
    assert recorder.requests[0]["method"] == "HEAD"
    assert {(r["method"], r["status"]) for r in recorder.requests[1:]} == {("GET", 206)}


def test_upload_predictions_puts_the_file_to_the_signed_url(
    napi: numerapi.NumerAPI,
    monkeypatch: pytest.MonkeyPatch,
    app: FastAPI,
    base_url: str,
    signer: UrlSigner,
    blob_store: BlobStore,
    tmp_path: Path,
) -> None:
    stored: list[tuple[str, int, str]] = []
    app.dependency_overrides[get_upload_hook] = lambda: lambda *receipt: stored.append(receipt)
    key = "submissions/8/model-1/predictions.csv"
    seen = stub_graphql(
        monkeypatch,
        napi,
        {
            "submission_upload_auth": {"filename": key, "url": signer.upload_url(base_url, key)},
            "create_submission": {"id": "submission-1"},
        },
    )
    monkeypatch.setenv("NUMERAI_COMPUTE_ID", "compute-7")
    predictions = tmp_path / "predictions.csv"
    predictions.write_text("id,prediction\n" + "".join(f"n{i:015x},0.{i % 10}\n" for i in range(1_000)))

    assert napi.upload_predictions(str(predictions), model_id="model-1") == "submission-1"
    body = predictions.read_bytes()
    assert blob_store.read_bytes(key) == body
    assert stored == [(key, len(body), hashlib.sha256(body).hexdigest())]
    assert seen[1]["filename"] == key
