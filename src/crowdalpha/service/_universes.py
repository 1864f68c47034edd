"""Live universes: extract a round's universe from a live file, store it as a blob, read it back (cached)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.store import BlobInfo, LiveUniverse
from crowdalpha.tournament.submissions import PreparedUniverse, prepare_universe


def extract_universe(ctx: Context, live_blob_key: str, id_columns: Sequence[str]) -> tuple[str, pa.Table]:
    """Return ``(main id column, table of the id columns)`` of a live file, the ids as text."""
    with ctx.blobs.open(live_blob_key) as handle:
        names = pq.read_schema(handle).names
        present = [column for column in id_columns if column in names]
        if not present:
            raise ServiceError(
                "no_live_ids", f"the live file has none of the id columns {list(id_columns)}; got {names}"
            )
        handle.seek(0)
        table = pq.read_table(handle, columns=present)
    columns = [pc.cast(table.column(name), pa.string()) for name in present]
    return present[0], pa.table(dict(zip(present, columns, strict=True)))


def store_universe(ctx: Context, tournament: str, table: pa.Table) -> BlobInfo:
    """Return the stored universe blob; content-addressed, so storing it again (a retry) is harmless."""
    sink = io.BytesIO()
    pq.write_table(table, sink)
    content = sink.getvalue()

    digest = hashlib.sha256(content).hexdigest()
    return ctx.blobs.put_bytes(f"universes/{tournament}/{digest}.parquet", content)


def read_universe(ctx: Context, universe: LiveUniverse) -> dict[str, np.ndarray]:
    """Return a stored universe as ``{id column: ids}`` (cached on the context: the blob never changes)."""
    cache_key = ("universe", universe.blob_key)
    cached = ctx.cache.get(cache_key)
    if cached is None:
        with ctx.blobs.open(universe.blob_key) as handle:
            table = pq.read_table(handle)
        cached = {
            name: np.asarray(table.column(name).to_pylist(), dtype=object) for name in table.column_names
        }
        ctx.cache[cache_key] = cached
    return cached


def prepared_universe(ctx: Context, universe: LiveUniverse) -> PreparedUniverse:
    """Return a stored universe prepared for validating uploads (cached on the context, like its ids)."""
    cache_key = ("prepared universe", universe.blob_key)
    cached = ctx.cache.get(cache_key)
    if cached is None:
        cached = ctx.cache[cache_key] = prepare_universe(read_universe(ctx, universe))
    return cached
