"""A round's meta model file: published at close as ``meta_model_<round>.parquet``, read by scoring."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crowdalpha.datasets.parquet import frame_schema
from crowdalpha.service._derived import derived
from crowdalpha.service.context import Context
from crowdalpha.store import Round as RoundRow
from crowdalpha.store import UnitOfWork
from crowdalpha.store.repositories import DatasetFileSpec
from crowdalpha.tournament.meta_model import meta_model_percentiles

META_MODEL_COLUMN = "numerai_meta_model"
META_MODEL_NAME = "meta_model"
"""The name scores use (``against="meta_model"``) for the round's stake-weighted meta model."""


def meta_model_file(round_number: int) -> str:
    """Return the published name of a round's meta model, e.g. ``meta_model_812.parquet``."""
    return f"meta_model_{round_number}.parquet"


def publish_meta_model(
    ctx: Context, uow: UnitOfWork, tournament: str, row: RoundRow, values: pd.Series
) -> None:
    """Store the round's meta model (values by id) and list it as the round's public dataset file."""
    schema = frame_schema([(META_MODEL_COLUMN, pa.float64())])
    percentiles = pa.array(meta_model_percentiles(values.to_numpy()), pa.float64())
    table = pa.Table.from_arrays([percentiles, pa.array(values.index.astype(str))], schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    content = sink.getvalue()
    digest = hashlib.sha256(content).hexdigest()
    blob = ctx.blobs.put_bytes(f"meta_models/{tournament}/{digest}.parquet", content)
    if row.dataset_version_id is None:
        return
    name = meta_model_file(row.number)
    existing = uow.datasets.find_files(row.dataset_version_id, [name], public_only=False, round_id=row.id)
    if name not in existing:
        uow.datasets.add_files(
            row.dataset_version_id,
            [DatasetFileSpec(name, blob.key, blob.size_bytes, digest)],
            round_id=row.id,
        )


def read_meta_model(ctx: Context, uow: UnitOfWork, row: RoundRow) -> pd.Series | None:
    """Return the round's published meta model by id, or None if it has none (read once per context)."""
    if row.dataset_version_id is None:
        return None
    name = meta_model_file(row.number)
    found = uow.datasets.find_files(row.dataset_version_id, [name], public_only=False, round_id=row.id).get(
        name
    )
    if found is None:
        return None

    def read() -> pd.Series:
        with ctx.blobs.open(found.blob_key) as handle:
            table = pq.read_table(handle)
        ids = np.asarray(table.column("id").to_pylist(), dtype=object)
        return pd.Series(
            table.column(META_MODEL_COLUMN).to_numpy(), index=pd.Index(ids, name="id"), name=META_MODEL_NAME
        )

    return derived(ctx, "meta model", found.blob_key, read)  # shared: read-only
