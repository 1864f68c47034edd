"""Percentile ranks and their Gaussianisation, for every model at once.

A percentile rank is ``(rank - 0.5) / count`` — strictly inside (0, 1), so the normal quantile of it
is always finite. *Tie-kept* ranks give tied values the mean of their ranks (pandas
``method="average"``); *tie-broken* ranks order ties by position (``method="first"``).

The cost of every score is dominated by one sort per model. Each row is sorted once; a tie-kept
rank of ``n`` values can take only ``2n - 1`` distinct values (half-integer ranks), so the
Gaussianised ranks come from a table computed once per ``n`` instead of ``n`` quantile calls.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import ndtri

from crowdalpha.scoring._layout import as_rows, same_shape_as
from crowdalpha.scoring._parallel import for_row_chunks


@lru_cache(maxsize=64)
def _code_tables(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (percentile, gaussian, gaussian^1.5) for every tie-kept rank code of ``n`` values.

    A code is ``first + last`` of a tie group's sorted positions (0-based), so the group's mean rank
    is ``code / 2 + 1`` and its percentile ``(code + 1) / (2n)``.
    """
    percentile = (np.arange(2 * n - 1, dtype=np.float64) + 1.0) / (2.0 * n)
    gaussian = ndtri(percentile)
    gaussian_pow15 = np.sign(gaussian) * np.abs(gaussian) ** 1.5
    for table in (percentile, gaussian, gaussian_pow15):
        table.setflags(write=False)
    return percentile, gaussian, gaussian_pow15


@lru_cache(maxsize=64)
def _distinct_tables(n: int) -> tuple[np.ndarray, ...]:
    """Return the code tables restricted to the codes of ``n`` distinct values (no ties)."""
    return tuple(np.ascontiguousarray(table[::2]) for table in _code_tables(n))


def _sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (order, code of each sorted position) for a NaN-free 1-D array; codes are None
    when all values are distinct."""
    n = values.shape[0]
    order = np.argsort(values)  # quicksort: the order within a tie group does not matter here
    ordered = values[order]
    starts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    if starts.shape[0] == n - 1:
        return order, None
    starts = np.concatenate(([0], starts))
    ends = np.concatenate((starts[1:] - 1, [n - 1]))
    return order, np.repeat(starts + ends, ends - starts + 1)


_TABLE = {"percentile": 0, "gaussian": 1, "gaussian_pow15": 2}


def _transform_row(values: np.ndarray, outs: list[np.ndarray], tables: list[int], tie_broken: bool) -> None:
    finite = ~np.isnan(values)
    if finite.all():
        _transform_complete_row(values, outs, tables, tie_broken)
        return
    n_valid = int(finite.sum())
    valid_outs = [np.empty(n_valid) for _ in outs]
    if n_valid:
        _transform_complete_row(values[finite], valid_outs, tables, tie_broken)
    for out, valid_out in zip(outs, valid_outs, strict=True):
        out[~finite] = np.nan
        out[finite] = valid_out


def _transform_complete_row(
    values: np.ndarray, outs: list[np.ndarray], tables: list[int], tie_broken: bool
) -> None:
    n = values.shape[0]
    if tie_broken:
        order, codes = np.argsort(values, kind="stable"), None
    else:
        order, codes = _sorted_codes(values)
    if codes is None:
        distinct_tables = _distinct_tables(n)
        for out, table in zip(outs, tables, strict=True):
            out[order] = distinct_tables[table]
        return
    code_tables = _code_tables(n)
    for out, table in zip(outs, tables, strict=True):
        out[order] = code_tables[table][codes]


def transform_rows_many(
    rows: np.ndarray, to: tuple[str, ...], *, tie_broken: bool = False
) -> tuple[np.ndarray, ...]:
    """Rank every row once and return one array per requested mapping of the percentile.

    Mappings: ``"percentile"``, ``"gaussian"`` (normal quantile) and ``"gaussian_pow15"``
    (signed ``|g| ** 1.5``). NaN stays NaN and is excluded from the count, like pandas.
    """
    tables = [_TABLE[name] for name in to]
    outs = [np.empty_like(rows, dtype=np.float64) for _ in to]

    def work(start: int, stop: int) -> None:
        for k in range(start, stop):
            _transform_row(rows[k], [out[k] for out in outs], tables, tie_broken)

    for_row_chunks(rows.shape[0], work)
    return tuple(outs)


def transform_rows(rows: np.ndarray, *, to: str = "percentile", tie_broken: bool = False) -> np.ndarray:
    """Rank every row of ``(models, ids)`` rows and map the percentile through ``to``."""
    return transform_rows_many(rows, (to,), tie_broken=tie_broken)[0]


def tie_kept_rank(predictions: np.ndarray) -> np.ndarray:
    """Return percentile ranks in (0, 1) per column, ties sharing their mean rank; NaN stays NaN."""
    return same_shape_as(transform_rows(as_rows(predictions)), predictions)


def tie_broken_rank(predictions: np.ndarray) -> np.ndarray:
    """Return percentile ranks in (0, 1) per column, ties ordered by position; NaN stays NaN."""
    return same_shape_as(transform_rows(as_rows(predictions), tie_broken=True), predictions)


def rank_gaussianize(predictions: np.ndarray) -> np.ndarray:
    """Return the normal quantile of each column's tie-kept percentile rank (mean 0, std ≈ 1)."""
    return same_shape_as(transform_rows(as_rows(predictions), to="gaussian"), predictions)


def rank_gaussianize_pow15(predictions: np.ndarray) -> np.ndarray:
    """Return ``sign(g) * |g| ** 1.5`` of the Gaussianised tie-kept ranks, per column."""
    return same_shape_as(transform_rows(as_rows(predictions), to="gaussian_pow15"), predictions)
