"""RankCodes: one sort per row, then any subset's tie-kept transforms and products without sorting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdalpha.scoring.ranking import RankCodes, transform_rows_many

KINDS = ("gaussian_pow15", "gaussian", "percentile")


def _check_against_ranking_the_subset(codes: RankCodes, rows: np.ndarray, columns: np.ndarray) -> None:
    expected = transform_rows_many(np.ascontiguousarray(rows[:, columns]), KINDS)
    vectors = np.random.default_rng(len(columns)).standard_normal((len(columns), 2))
    for kind, want in zip(KINDS, expected, strict=True):
        np.testing.assert_array_equal(codes.transform(kind, columns), want)
        np.testing.assert_allclose(codes.products(kind, columns, vectors), want @ vectors, rtol=0, atol=1e-12)
        sums, squares = codes.moments(kind)
        np.testing.assert_allclose(sums, want.sum(axis=1), rtol=0, atol=1e-10)
        np.testing.assert_allclose(squares, np.einsum("ij,ij->i", want, want), rtol=1e-13)


@settings(max_examples=60, deadline=None)
@given(
    models=st.integers(1, 150),
    ids=st.integers(2, 80),
    decimals=st.sampled_from([0, 1, 6]),
    seed=st.integers(0, 2**32 - 1),
)
def test_nested_subsets_restricted_from_the_codes_equal_ranking_each_subset(
    models: int, ids: int, decimals: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((models, ids)).round(decimals)  # few decimals: many ties
    codes = RankCodes(rows.T.copy().T)  # a column-major view, as a frame's values are
    columns = np.arange(ids)
    for _ in range(3):  # ids drop out day by day, as targets go missing
        columns = np.sort(rng.permutation(columns)[: rng.integers(1, len(columns) + 1)])
        codes = codes.restricted(rng.permutation(columns))
        _check_against_ranking_the_subset(codes, rows, rng.permutation(columns))


def test_codes_built_over_a_subset_equal_the_full_codes_restricted() -> None:
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 5, size=(7, 30)).astype(np.float64)
    columns = np.array([29, 0, 4, 5, 17, 11])
    direct, restricted = RankCodes(rows, columns), RankCodes(rows).restricted(columns)
    np.testing.assert_array_equal(direct.codes, restricted.codes)
    np.testing.assert_array_equal(direct.columns(), np.sort(columns))
    _check_against_ranking_the_subset(direct, rows, columns)


def test_worked_codes_with_ties_and_a_dropped_column() -> None:
    rows = np.array([[3.0, 1.0, 2.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    codes = RankCodes(rows)
    np.testing.assert_array_equal(codes.codes, [[6, 1, 4, 1], [3, 3, 3, 3]])
    np.testing.assert_array_equal(
        codes.transform("percentile"), [[7 / 8, 2 / 8, 5 / 8, 2 / 8], [0.5, 0.5, 0.5, 0.5]]
    )
    dropped = codes.restricted(np.array([2, 0, 3]))  # a tied 1.0 goes: the other one is alone
    np.testing.assert_array_equal(dropped.codes, [[4, 0, 2, 0], [2, 0, 2, 2]])
    reordered = dropped.transform("percentile", np.array([2, 0]))
    np.testing.assert_array_equal(reordered, [[0.5, 5 / 6], [0.5, 0.5]])
    empty = codes.restricted(np.array([], dtype=np.int64))
    assert empty.transform("gaussian").shape == (2, 0)


def test_rules_are_named() -> None:
    with pytest.raises(ValueError, match=r"^RankCodes needs NaN-free rows \(rule: rank complete"):
        RankCodes(np.array([[1.0, np.nan]]))
    codes = RankCodes(np.eye(3)).restricted(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"subset of the kept columns \(rule: no new ids\)"):
        codes.restricted(np.array([1, 2]))
    with pytest.raises(ValueError, match=r"every kept column once \(rule: same ids\)"):
        codes.products("gaussian", np.array([0]), np.ones((1, 1)))
