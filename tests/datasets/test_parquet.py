"""Dataset Parquet files: pandas reads id as the index, eras stay whole, era iteration across row groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crowdalpha.datasets.parquet import ClassicFileWriter, iter_eras, repeated_string


def write_eras(path, eras: int, rows: int, row_group_rows: int) -> None:
    with ClassicFileWriter(
        path, ["feature_a", "feature_b"], ["target"], row_group_rows=row_group_rows
    ) as writer:
        for era in range(eras):
            ids = pa.array([f"n{era:03d}{i:012x}" for i in range(rows)])
            features = np.full((2, rows), era % 5, dtype=np.int8)
            writer.write_era(f"{era + 1:04d}", "train", ids, features, np.full((1, rows), 0.5, np.float32))


def test_pandas_reads_numerai_dtypes_with_id_as_index(tmp_path):
    path = tmp_path / "train.parquet"
    write_eras(path, eras=3, rows=4, row_group_rows=100)
    frame = pd.read_parquet(path)
    assert frame.index.name == "id" and list(frame.columns) == [
        "era",
        "data_type",
        "feature_a",
        "feature_b",
        "target",
    ]
    assert frame["feature_a"].dtype == np.int8 and frame["target"].dtype == np.float32
    assert list(frame["era"].unique()) == ["0001", "0002", "0003"]


def test_row_groups_hold_whole_eras(tmp_path):
    path = tmp_path / "train.parquet"
    write_eras(path, eras=7, rows=5, row_group_rows=12)
    parquet = pq.ParquetFile(path)
    sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
    assert sizes == [15, 15, 5]


def test_iter_eras_joins_eras_split_across_row_groups(tmp_path):
    path = tmp_path / "odd.parquet"
    table = pa.table({"era": [f"{e:04d}" for e in (1, 1, 1, 2, 2, 3, 3, 3, 3)], "x": list(range(9))})
    pq.write_table(table, path, row_group_size=2)
    eras = [(era, part.column("x").to_pylist()) for era, part in iter_eras(path)]
    assert eras == [("0001", [0, 1, 2]), ("0002", [3, 4]), ("0003", [5, 6, 7, 8])]


def test_repeated_string_builds_without_a_loop():
    assert repeated_string("0042", 3).to_pylist() == ["0042"] * 3
    assert repeated_string("", 2).to_pylist() == ["", ""]
    assert repeated_string("x", 0).to_pylist() == []
