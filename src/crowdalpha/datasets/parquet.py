"""Parquet writers and readers for dataset files: Numerai's layout, deterministic bytes, streamed eras.

Published frames carry pandas metadata that makes ``id`` the index, written by hand in the form
every pandas version reads the same way (strings as ``object``), so ``pd.read_parquet`` gives
what Numerai's example code expects whatever pandas the participant runs. Files are written
with zstd, one row group per chunk of whole eras (chunks cut by row count, never by time), so
the same input gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from crowdalpha import __version__

ID_COLUMN = "id"
ERA_COLUMN = "era"
DATA_TYPE_COLUMN = "data_type"
PREDICTION_COLUMN = "prediction"
ROW_GROUP_ROWS = 25_000
"""A row group closes after the first whole era that brings it to at least this many rows."""
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3

_PANDAS_TYPES = {
    pa.string(): ("unicode", "object"),
    pa.int8(): ("int8", "int8"),
    pa.float32(): ("float32", "float32"),
    pa.float64(): ("float64", "float64"),
}


def _pandas_metadata(schema: pa.Schema, index: str | None) -> bytes:
    columns = []
    for field in schema:
        pandas_type, numpy_type = _PANDAS_TYPES[field.type]
        columns.append(
            {
                "name": field.name,
                "field_name": field.name,
                "pandas_type": pandas_type,
                "numpy_type": numpy_type,
                "metadata": None,
            }
        )
    document = {
        "index_columns": [index] if index else [],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": columns,
        "attributes": {},
        "creator": {"library": "crowdalpha", "version": __version__},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def frame_schema(fields: Sequence[tuple[str, pa.DataType]], *, index: str | None = ID_COLUMN) -> pa.Schema:
    """Return an Arrow schema of ``fields`` plus the ``index`` column, which pandas reads as the index."""
    all_fields = [pa.field(name, dtype) for name, dtype in fields]
    if index is not None:
        all_fields.append(pa.field(index, pa.string()))
    schema = pa.schema(all_fields)
    return schema.with_metadata({b"pandas": _pandas_metadata(schema, index)})


def classic_schema(features: Sequence[str], targets: Sequence[str]) -> pa.Schema:
    """Return the schema of a Classic data file: era, data_type, int8 features, float32 targets, index id."""
    return frame_schema(
        [
            (ERA_COLUMN, pa.string()),
            (DATA_TYPE_COLUMN, pa.string()),
            *((name, pa.int8()) for name in features),
            *((name, pa.float32()) for name in targets),
        ]
    )


def predictions_schema() -> pa.Schema:
    """Return the schema of an example-predictions file: ``prediction`` (float64), index ``id``."""
    return frame_schema([(PREDICTION_COLUMN, pa.float64())])


def repeated_string(value: str, length: int) -> pa.StringArray:
    """Return an Arrow string array holding ``value`` ``length`` times (built without a Python loop)."""
    encoded = value.encode()
    offsets = np.arange(length + 1, dtype=np.int32) * np.int32(len(encoded))
    return pa.StringArray.from_buffers(length, pa.py_buffer(offsets), pa.py_buffer(encoded * length))


class EraChunkWriter:
    """A Parquet file written era by era: eras are buffered and flushed as one row group per chunk.

    A full chunk is encoded and written on a background thread while the caller prepares the
    next one (at most one chunk in flight, so memory stays bounded and row groups keep their
    order). Statistics are kept for the string columns only, so readers can skip row groups by
    era; dictionary encoding is used for every column but the unique ``id``.
    """

    def __init__(self, path: Path, schema: pa.Schema, *, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        self.path = Path(path)
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.rows = 0
        self._tables: list[pa.Table] = []
        self._buffered = 0
        strings = [field.name for field in schema if field.type == pa.string()]
        self._writer = pq.ParquetWriter(
            self.path,
            schema,
            compression=COMPRESSION,
            compression_level=COMPRESSION_LEVEL,
            write_statistics=strings or False,
            use_dictionary=[name for name in schema.names if name != ID_COLUMN] or False,
        )
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-writer")
        self._in_flight: Future | None = None

    def write(self, table: pa.Table) -> None:
        """Append one era's table (columns in schema order); flush a row group once the chunk is full."""
        if table.schema != self.schema:
            table = table.select(self.schema.names).cast(self.schema)
        self._tables.append(table)
        self._buffered += table.num_rows
        self.rows += table.num_rows
        if self._buffered >= self.row_group_rows:
            self.flush()

    def flush(self) -> None:
        """Send the buffered eras to be written as one row group."""
        if not self._tables:
            return
        self._write_row_group(pa.concat_tables(self._tables).combine_chunks())
        self._tables = []
        self._buffered = 0

    def _write_row_group(self, table: pa.Table) -> None:
        self._wait()
        self._in_flight = self._background.submit(
            self._writer.write_table, table, row_group_size=max(table.num_rows, 1)
        )

    def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()

    def close(self) -> None:
        """Flush, wait for the last row group and close the file."""
        try:
            self.flush()
            self._wait()
        finally:
            self._background.shutdown(wait=True)
            self._writer.close()

    def __enter__(self) -> EraChunkWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
            return
        self._background.shutdown(wait=True)
        self._writer.close()


class ClassicFileWriter(EraChunkWriter):
    """A Classic data file written era by era from numpy blocks, one Arrow column per chunk of eras."""

    def __init__(
        self,
        path: Path,
        features: Sequence[str],
        targets: Sequence[str],
        *,
        row_group_rows: int = ROW_GROUP_ROWS,
    ) -> None:
        super().__init__(path, classic_schema(features, targets), row_group_rows=row_group_rows)
        self._eras: list[tuple[str, str, int]] = []
        self._ids: list[pa.Array] = []
        self._features: list[np.ndarray] = []
        self._targets: list[np.ndarray] = []

    def write_era(
        self, era: str, data_type: str, ids: pa.Array, features: np.ndarray, targets: np.ndarray
    ) -> None:
        """Append one era: ids, int8 features ``(features, rows)``, float32 targets ``(targets, rows)``."""
        self._eras.append((era, data_type, len(ids)))
        self._ids.append(ids)
        self._features.append(np.asarray(features, dtype=np.int8))
        self._targets.append(np.asarray(targets, dtype=np.float32))
        self._buffered += len(ids)
        self.rows += len(ids)
        if self._buffered >= self.row_group_rows:
            self.flush()

    def flush(self) -> None:
        """Write the buffered eras as one row group."""
        if not self._eras:
            super().flush()
            return
        table = classic_era_table(
            self.schema,
            pa.concat_arrays([repeated_string(era, rows) for era, _, rows in self._eras]),
            pa.concat_arrays([repeated_string(kind, rows) for _, kind, rows in self._eras]),
            pa.concat_arrays(self._ids),
            np.concatenate(self._features, axis=1),
            np.concatenate(self._targets, axis=1),
        )
        self._write_row_group(table)
        self._eras, self._ids, self._features, self._targets = [], [], [], []
        self._buffered = 0


def write_table(path: Path, table: pa.Table) -> int:
    """Write a whole table deterministically (zstd, one row group per ROW_GROUP_ROWS); return its bytes."""
    pq.write_table(
        table,
        path,
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        row_group_size=ROW_GROUP_ROWS,
    )
    return Path(path).stat().st_size


def iter_eras(path: Path, columns: Sequence[str] | None = None) -> Iterator[tuple[str, pa.Table]]:
    """Yield (era, table of its rows) from a file whose rows are grouped by era, one row group at a time."""
    parquet = pq.ParquetFile(path)
    wanted = None if columns is None else list(dict.fromkeys([ERA_COLUMN, *columns]))
    carry: pa.Table | None = None
    for group in range(parquet.num_row_groups):
        table = parquet.read_row_group(group, columns=wanted)
        if carry is not None:
            table = pa.concat_tables([carry, table])
        eras = table.column(ERA_COLUMN).to_numpy(zero_copy_only=False)
        if len(eras) == 0:
            continue
        starts = np.flatnonzero(np.r_[True, eras[1:] != eras[:-1]])
        stops = np.r_[starts[1:], len(eras)]
        for start, stop in zip(starts[:-1], stops[:-1], strict=True):
            yield str(eras[start]), table.slice(int(start), int(stop - start))
        carry = table.slice(int(starts[-1]), int(stops[-1] - starts[-1]))
    if carry is not None and carry.num_rows:
        yield str(carry.column(ERA_COLUMN)[0].as_py()), carry


def read_json(path: Path) -> Any:
    """Return the parsed JSON document at ``path``."""
    return json.loads(Path(path).read_text())


def write_json(path: Path, document: Any) -> int:
    """Write ``document`` as indented JSON with a trailing newline; return its bytes."""
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    Path(path).write_text(text)
    return len(text.encode())


def classic_era_table(
    schema: pa.Schema,
    era: str | pa.Array,
    data_type: str | pa.Array,
    ids: pa.Array,
    features: np.ndarray,
    targets: np.ndarray,
) -> pa.Table:
    """Return rows as a table of ``schema``: features ``(features, rows)`` int8, targets float32."""
    rows = len(ids)
    columns: list[pa.Array] = [
        repeated_string(era, rows) if isinstance(era, str) else era,
        repeated_string(data_type, rows) if isinstance(data_type, str) else data_type,
    ]
    columns.extend(_numeric_columns(np.asarray(features, dtype=np.int8), pa.int8()))
    columns.extend(_numeric_columns(np.asarray(targets, dtype=np.float32), pa.float32()))
    columns.append(ids)
    return pa.Table.from_arrays(columns, schema=schema)


def _numeric_columns(matrix: np.ndarray, dtype: pa.DataType) -> list[pa.Array]:
    """Return each row of a ``(columns, rows)`` matrix as a zero-copy Arrow array (NaN stays a value)."""
    matrix = np.ascontiguousarray(matrix)
    columns, rows = matrix.shape
    buffer = pa.py_buffer(matrix)
    return [pa.Array.from_buffers(dtype, rows, [None, buffer], offset=i * rows) for i in range(columns)]
