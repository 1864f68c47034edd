"""Benchmark predictions of a round's fresh live file, made at open so the round's BMC can be scored.

When a Classic version was published with its benchmark models (the private
``benchmark_models.json`` that ``train_benchmark_models`` writes beside the version's private
pieces) and a round opens on a fresh live file, the server predicts that file with the models
(:func:`crowdalpha.datasets.benchmark_models.predict_live_bundle`) and publishes:

- ``live_benchmark_models_<round>.parquet``, the round's own file (index ``id``, ``era``, one
  column per benchmark) — what numerapi downloads as ``live_benchmark_models.parquet`` for the
  round;
- the version's ``live_benchmark_models.parquet``, rewritten to hold the predictions of every round
  still being scored (plus the version's own live rows): scoring finds a round's benchmark meta
  model there by the round's ids, and ids are unique across rounds (keyed by live date). A text
  ``round`` column says which round each row belongs to; resolved rounds' rows are dropped, so the
  file stays as small as the rounds in flight.
"""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crowdalpha.datasets.benchmark_models import (
    BUNDLE_FILE,
    FILES,
    predict_live_bundle,
    round_live_benchmarks_name,
)
from crowdalpha.service._tournaments import LoadedTournament
from crowdalpha.service.context import Context
from crowdalpha.service.datasets import PRIVATE_NAME_PREFIX
from crowdalpha.service.fresh_live import FreshLive
from crowdalpha.store import Round, RoundState, UnitOfWork
from crowdalpha.store.repositories import DatasetFileSpec

LIVE_BENCHMARKS = FILES["live"]
BUNDLE = PRIVATE_NAME_PREFIX + BUNDLE_FILE
ROUND_COLUMN = "round"
VERSION_ROWS = "version"
"""The ``round`` of the rows the version itself was published with."""
IN_FLIGHT = (RoundState.UPCOMING, RoundState.OPEN, RoundState.CLOSED, RoundState.SCORING)


def _parquet(frame: pd.DataFrame) -> tuple[bytes, str]:
    """Return the frame (index ``id``) as Parquet bytes and their SHA-256, with plain string columns.

    No pandas metadata is kept, so readers get ordinary (object) strings back: scoring looks each
    round's ids up in this file, and a lookup in Arrow-backed strings is an order slower.
    """
    columns = {"id": pa.array(np.asarray(frame.index, dtype=object).astype(str), pa.string())}
    for name in frame.columns:
        values = frame[name]
        numeric = pd.api.types.is_numeric_dtype(values)
        columns[name] = pa.array(
            values.to_numpy(np.float64) if numeric else values.astype(str).to_numpy(object)
        )
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    content = sink.getvalue()
    return content, hashlib.sha256(content).hexdigest()


def publish_live_benchmarks(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: Round, version_id: int, fresh: FreshLive
) -> bool:
    """Predict the round's fresh live file with the version's benchmark models and publish it (module doc).

    Returns False (and publishes nothing) when the version holds no benchmark models.
    """
    files = {item.name: item for item in uow.datasets.list_files(version_id, public_only=False)}
    if BUNDLE not in files:
        return False
    bundle = json.loads(ctx.blobs.read_bytes(files[BUNDLE].blob_key))
    with ctx.blobs.open(fresh.blob.key) as handle:
        live = pq.read_table(io.BytesIO(handle.read())).to_pandas()
    predictions = predict_live_bundle(bundle, live)
    predictions.index = predictions.index.astype(str).rename("id")
    content, digest = _parquet(predictions)
    prefix = f"datasets/{loaded.name}/rounds/{row.number}/benchmarks"
    blob = ctx.blobs.put_bytes(f"{prefix}/{digest}.parquet", content)
    uow.datasets.add_files(
        version_id,
        [DatasetFileSpec(round_live_benchmarks_name(row.number), blob.key, blob.size_bytes, digest)],
        round_id=row.id,
    )
    _update_in_flight(ctx, uow, loaded, row, files.get(LIVE_BENCHMARKS), version_id, predictions)
    return True


def _update_in_flight(
    ctx: Context,
    uow: UnitOfWork,
    loaded: LoadedTournament,
    row: Round,
    current,
    version_id: int,
    predictions: pd.DataFrame,
) -> None:
    """Rewrite the version's live benchmark file: the rounds in flight's rows and the new round's."""
    in_flight = {str(r.number) for r in uow.rounds.list(loaded.id, states=list(IN_FLIGHT))} | {VERSION_ROWS}
    kept = pd.DataFrame()
    if current is not None:
        with ctx.blobs.open(current.blob_key) as handle:
            kept = pq.read_table(io.BytesIO(handle.read())).to_pandas()
        if "id" in kept.columns:
            kept = kept.set_index("id")
        if ROUND_COLUMN not in kept.columns:
            kept[ROUND_COLUMN] = VERSION_ROWS
        kept = kept[kept[ROUND_COLUMN].isin(in_flight) & (kept[ROUND_COLUMN] != str(row.number))]
    combined = pd.concat([kept, predictions.assign(**{ROUND_COLUMN: str(row.number)})])
    content, digest = _parquet(combined)
    blob = ctx.blobs.put_bytes(f"datasets/{loaded.name}/benchmarks/{digest}.parquet", content)
    if current is None:
        uow.datasets.add_files(
            version_id, [DatasetFileSpec(LIVE_BENCHMARKS, blob.key, blob.size_bytes, digest)]
        )
    else:
        current.blob_key, current.size_bytes, current.sha256 = blob.key, blob.size_bytes, digest
        uow.session.flush()
