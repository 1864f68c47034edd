"""Reading long-format CSV/Parquet panels with a column mapping, and writing Parquet atomically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdalpha.market.loaders import parse_mapping, read_panel, write_panel
from crowdalpha.market.panel import PanelError, validate_panel


@pytest.fixture
def small(make_panel) -> pd.DataFrame:
    return make_panel(n_assets=5, n_days=15, listings=False)


def test_csv_with_a_mapping_reads_as_the_validated_panel(small, tmp_path):
    vendor = small.rename(columns={"close": "Adj_Close", "asset": "permno"})
    vendor["Close"] = vendor["Adj_Close"] * 1.01
    path = tmp_path / "vendor.csv"
    vendor.to_csv(path, index=False)
    panel = read_panel(path, {"close": "Adj_Close", "asset": "permno"})
    pd.testing.assert_series_equal(panel["close"], validate_panel(small)["close"], rtol=1e-12)
    assert "Adj_Close" not in panel.columns
    assert "Close" in panel.columns


def test_csv_ids_keep_their_leading_zeros(small, tmp_path):
    small = small.assign(asset=small["asset"].str.replace("A", "00"), ticker="000640")
    path = tmp_path / "panel.csv"
    small.to_csv(path, index=False)
    panel = read_panel(path)
    assert panel["asset"].iloc[0] == "00000"
    assert (panel["ticker"] == "000640").all()


def test_parquet_round_trip_is_lossless(small, tmp_path):
    path = write_panel(
        small.assign(raw_signal=np.arange(len(small), dtype=float)), tmp_path / "out" / "m.parquet"
    )
    assert path.exists()
    expected = validate_panel(small.assign(raw_signal=np.arange(len(small), dtype=float)))
    pd.testing.assert_frame_equal(read_panel(path), expected)


def test_a_mapped_column_replaces_a_file_column_of_the_same_name(small, tmp_path):
    vendor = small.assign(adj_close=small["close"] / 2)
    path = tmp_path / "both.parquet"
    vendor.to_parquet(path)
    panel = read_panel(path, {"close": "adj_close"})
    np.testing.assert_allclose(panel["close"], validate_panel(small)["close"] / 2)


@pytest.mark.parametrize(
    ("make_file", "mapping", "rule"),
    [
        (lambda d: d / "missing.csv", None, "rule: the panel file must exist"),
        (lambda d: d, None, "rule: the panel file must be a file"),
        (lambda d: _write(d / "empty.csv", b""), None, "rule: a panel must have at least one row"),
        (
            lambda d: _write(d / "header.csv", b"date,asset\n"),
            None,
            "rule: a panel must have at least one row",
        ),
        (
            lambda d: _write(d / "junk.parquet", b"not parquet at all"),
            None,
            "rule: the panel file must be readable",
        ),
        (lambda d: _write(d / "panel.xlsx", b"x"), None, "rule: a panel file is .csv or .parquet"),
        (
            lambda d: _write(d / "p.csv", b"date,asset,close\n"),
            {"close": "Adj_Close"},
            "mapped columns must exist",
        ),
        (lambda d: _write(d / "p.csv", b"date,asset,px\n"), {"price": "px"}, "mapping targets must be panel"),
    ],
)
def test_unreadable_inputs_name_the_rule(tmp_path, make_file, mapping, rule):
    with pytest.raises(PanelError, match=rule.replace(".", r"\.")):
        read_panel(make_file(tmp_path), mapping)


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


def test_mapped_columns_that_are_missing_are_listed(small, tmp_path):
    path = tmp_path / "p.csv"
    small.to_csv(path, index=False)
    with pytest.raises(PanelError, match=r"\['Adj_Close'\] not among the columns of p\.csv"):
        read_panel(path, {"close": "Adj_Close"})


def test_parse_mapping_reads_pairs_and_rejects_bad_items():
    assert parse_mapping(["close=Adj_Close", " asset = permno "]) == {"close": "Adj_Close", "asset": "permno"}
    with pytest.raises(PanelError, match="PANEL_COLUMN=FILE_COLUMN"):
        parse_mapping(["close"])
    with pytest.raises(PanelError, match="mapped once"):
        parse_mapping(["close=a", "close=b"])


def test_writing_an_invalid_panel_leaves_no_file(small, tmp_path):
    bad = small.copy()
    bad.loc[2, "close"] = -1.0
    with pytest.raises(PanelError, match="prices must be positive"):
        write_panel(bad, tmp_path / "m.parquet")
    assert list(tmp_path.iterdir()) == []
