"""The obfuscation core: equal-frequency bins, keyed names and ids, one era at a time."""

from __future__ import annotations

import hmac

import numpy as np
import pandas as pd
import pytest
from dataset_factories import OTHER_SECRET, SECRET
from scipy.stats import rankdata

from crowdalpha.datasets.errors import DatasetError
from crowdalpha.datasets.obfuscate import (
    MISSING_BIN,
    EraRows,
    SecretKeys,
    equal_frequency_bins,
    id_strings,
    obfuscate_era,
    obfuscate_eras,
    validate_era_frame,
)


def reference_bins(values: np.ndarray) -> np.ndarray:
    """Return bins from the definition: floor(5 · (average rank − 0.5) / n) over finite values, else 2."""
    out = np.full(values.shape, MISSING_BIN, dtype=np.int8)
    for row, series in enumerate(values):
        finite = np.isfinite(series)
        if finite.any():
            ranks = rankdata(series[finite], method="average")
            out[row, finite] = np.minimum(np.floor(5 * (ranks - 0.5) / finite.sum()), 4)
    return out


def test_bins_match_the_average_rank_definition_on_continuous_discrete_and_gappy_data():
    rng = np.random.default_rng(1)
    for trial in range(200):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 50)))
        kind = trial % 4
        if kind == 0:
            values = rng.standard_normal(shape)
        elif kind == 1:
            values = rng.integers(0, 4, shape).astype(float)
        elif kind == 2:
            values = rng.integers(0, 3, shape).astype(np.float32)
            values[rng.random(shape) < 0.3] = np.nan
        else:
            values = rng.standard_normal(shape)
            values[rng.random(shape) < 0.2] = np.inf
            values[:, :2] = 1.0
        np.testing.assert_array_equal(equal_frequency_bins(values), reference_bins(values))


def test_float32_fast_path_matches_the_definition_with_ties_zeros_and_gaps():
    rng = np.random.default_rng(4)
    for trial in range(100):
        values = rng.standard_normal((int(rng.integers(1, 6)), int(rng.integers(5, 400)))).astype(np.float32)
        values[:, ::7] = np.round(values[:, ::7], 1)  # sprinkled ties
        values[:, ::11] = 0.0
        values[:, ::13] = -0.0
        if trial % 2:
            values[rng.random(values.shape) < 0.1] = np.nan
        expected = reference_bins(values)
        np.testing.assert_array_equal(equal_frequency_bins(values), expected)
        np.testing.assert_array_equal(equal_frequency_bins(values.astype(np.float64)), expected)


def test_bins_are_int8_zero_to_four_with_equal_counts():
    values = np.random.default_rng(2).standard_normal((7, 1000)).astype(np.float32)
    bins = equal_frequency_bins(values)
    assert bins.dtype == np.int8
    for row in bins:
        np.testing.assert_array_equal(np.bincount(row, minlength=5), [200] * 5)


def test_missing_and_constant_features_land_in_the_middle_bin():
    values = np.array([[np.nan, 1.0, 2.0, 3.0, np.inf], [5.0, 5.0, 5.0, 5.0, 5.0], [np.nan] * 5])
    bins = equal_frequency_bins(values)
    assert bins[0, 0] == bins[0, 4] == MISSING_BIN
    np.testing.assert_array_equal(bins[1], [2] * 5)
    np.testing.assert_array_equal(bins[2], [2] * 5)


def test_ties_share_a_bin_whatever_the_row_order():
    values = np.array([[0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 3.0, 4.0, 5.0, 6.0]])
    bins = equal_frequency_bins(values)
    assert len(set(bins[0, :3])) == 1 and bins[0, 5] == bins[0, 6]
    order = np.random.default_rng(3).permutation(values.shape[1])
    np.testing.assert_array_equal(equal_frequency_bins(values[:, order]), bins[:, order])


def test_prf_is_hmac_sha256():
    keys = SecretKeys(SECRET)
    value = keys.row_ids("2021-01-08", ["ASSET0001"])[0]
    digest = hmac.digest(SECRET, b"crowdalpha/row-id/v1\x002021-01-08\x00ASSET0001", "sha256")
    assert int(value) == int.from_bytes(digest[:8], "big") >> 4
    assert id_strings(np.array([value])).to_pylist() == ["n" + digest.hex()[:15]]


def test_feature_names_are_keyed_stable_and_numerai_shaped():
    raw = [f"raw_{i}" for i in range(50)]
    names = SecretKeys(SECRET).feature_names(raw)
    assert names == SecretKeys(SECRET).feature_names(raw)
    other = SecretKeys(OTHER_SECRET).feature_names(raw)
    assert not set(names.values()) & set(other.values())
    for name in names.values():
        words = name.split("_")
        assert words[0] == "feature" and len(words) == 4
        assert all(word.isalpha() and word.islower() for word in words[1:])


def test_a_short_secret_is_refused():
    with pytest.raises(DatasetError, match="at least 16 bytes"):
        SecretKeys(b"short")


def _era(assets: list[str], *, date: str = "2021-01-08", data_type: str = "train") -> EraRows:
    rng = np.random.default_rng(len(assets))
    return EraRows(
        era="0001",
        date=date,
        data_type=data_type,
        assets=np.array(assets, dtype=object),
        features=rng.standard_normal((3, len(assets))),
        targets=np.full((1, len(assets)), 0.5),
    )


def test_an_era_is_sorted_by_id_and_independent_of_input_order():
    assets = [f"A{i}" for i in range(100)]
    era = obfuscate_era(_era(assets), SecretKeys(SECRET))
    assert np.all(np.diff(era.ids.astype(np.float64)) > 0)
    shuffled = _era(assets)
    order = np.random.default_rng(0).permutation(100)
    reversed_rows = EraRows(
        era="0001",
        date=shuffled.date,
        data_type="train",
        assets=shuffled.assets[order],
        features=shuffled.features[:, order],
        targets=shuffled.targets[:, order],
    )
    again = obfuscate_era(reversed_rows, SecretKeys(SECRET))
    np.testing.assert_array_equal(again.ids, era.ids)
    np.testing.assert_array_equal(again.features, era.features)
    np.testing.assert_array_equal(again.assets, era.assets)


def test_live_ids_differ_from_the_same_date_in_history():
    keys = SecretKeys(SECRET)
    history = obfuscate_era(_era(["A", "B"]), keys)
    live = obfuscate_era(_era(["A", "B"], data_type="live"), keys)
    assert not set(history.ids) & set(live.ids)


def test_an_id_collision_stops_the_build(monkeypatch):
    keys = SecretKeys(SECRET)
    monkeypatch.setattr(keys, "row_ids", lambda tag, assets: np.zeros(len(assets), dtype=np.uint64))
    with pytest.raises(DatasetError, match="ids must be unique within an era"):
        obfuscate_era(_era(["A", "B"]), keys)


def test_parallel_obfuscation_keeps_era_order():
    keys = SecretKeys(SECRET)
    eras = [_era([f"A{i}" for i in range(20 + k)], date=f"2021-01-{k + 1:02d}") for k in range(9)]
    serial = [e.ids for e in obfuscate_eras(eras, keys, workers=1)]
    threaded = [e.ids for e in obfuscate_eras(eras, keys, workers=3)]
    for a, b in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("frame", "rule"),
    [
        (pd.DataFrame(), "at least one row"),
        (pd.DataFrame({"date": ["2021-01-08"], "raw_a": [1.0]}), "required columns"),
        (pd.DataFrame({"date": ["2021-01-08"], "asset": ["A"]}), "raw_\\* feature column"),
        (pd.DataFrame({"date": [None, "2021-01-08"], "asset": ["A", "B"], "raw_a": [1.0, 2.0]}), "dates"),
        (pd.DataFrame({"date": ["2021-01-08"] * 2, "asset": ["A", "A"], "raw_a": [1.0, 2.0]}), "unique"),
        (pd.DataFrame({"date": ["2021-01-08"] * 2, "asset": ["A", "B"], "raw_a": ["x", 2.0]}), "numeric"),
    ],
)
def test_bad_era_frames_name_the_rule(frame, rule):
    with pytest.raises(DatasetError, match=rule):
        validate_era_frame(frame)
