"""RowOrder: one sort per row over every id, then any subset's tie-kept transforms without sorting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdalpha.scoring.ranking import RowOrder, transform_rows_many

KINDS = ("gaussian_pow15", "gaussian", "percentile")


@settings(max_examples=60, deadline=None)
@given(
    models=st.integers(1, 300),
    ids=st.integers(1, 80),
    decimals=st.sampled_from([0, 1, 6]),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_subset_ranked_from_the_full_order_equals_ranking_the_subset(
    models: int, ids: int, decimals: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((models, ids)).round(decimals)  # few decimals: many ties
    order = RowOrder(rows.T.copy().T)  # a column-major view, as a frame's values are
    columns = rng.permutation(ids)[: rng.integers(1, ids + 1)]
    expected = transform_rows_many(np.ascontiguousarray(rows[:, columns]), KINDS)
    for got, want in zip(order.transform_columns(columns, KINDS), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_every_column_in_its_own_order_and_the_empty_subset() -> None:
    rows = np.array([[3.0, 1.0, 2.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    [percentile] = RowOrder(rows).transform_columns(np.array([0, 1, 2, 3]), ("percentile",))
    np.testing.assert_array_equal(percentile, [[7 / 8, 2 / 8, 5 / 8, 2 / 8], [0.5, 0.5, 0.5, 0.5]])
    [reordered] = RowOrder(rows).transform_columns(np.array([2, 0]), ("percentile",))
    np.testing.assert_array_equal(reordered, [[0.25, 0.75], [0.5, 0.5]])
    [empty] = RowOrder(rows).transform_columns(np.array([], dtype=np.int64), ("percentile",))
    assert empty.shape == (2, 0)


def test_rows_with_nan_are_refused_naming_the_rule() -> None:
    with pytest.raises(ValueError, match=r"^RowOrder needs NaN-free rows \(rule: rank complete"):
        RowOrder(np.array([[1.0, np.nan]]))
