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


_ORDER_BLOCK_ROWS = 256


def _tie_codes(differs: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Return each sorted position's code (first + last position of its tie group) per row.

    ``differs[r, i]`` says sorted values ``i`` and ``i + 1`` of row ``r`` differ.
    """
    n = positions.shape[0]
    starts = np.empty((differs.shape[0], n), dtype=np.int64)
    starts[:, 0] = 0
    starts[:, 1:] = np.where(differs, positions[1:], 0)
    np.maximum.accumulate(starts, axis=1, out=starts)
    ends = np.empty_like(starts)
    ends[:, -1] = n - 1
    ends[:, :-1] = np.where(differs, positions[:-1], n - 1)
    ends = np.minimum.accumulate(ends[:, ::-1], axis=1)[:, ::-1]
    return starts + ends


class RowOrder:
    """Every row's sort order over a full set of columns, found once, from which the tie-kept
    transforms of any subset of those columns follow without sorting again.

    Daily scoring ranks the same predictions over a slightly different set of ids most days (the
    ids whose target has arrived). Restricting a row's sorted order to a subset keeps it sorted,
    so each day needs only a gather, the tie groups of the kept values and a scatter — linear work
    instead of a sort per row. The results equal ``transform_rows_many`` on the subset exactly.
    """

    def __init__(self, rows: np.ndarray) -> None:
        """Sort each row of a NaN-free ``(models, ids)`` array (a view is fine; it is not copied)."""
        if np.isnan(rows).any():
            raise ValueError("RowOrder needs NaN-free rows (rule: rank complete predictions only)")
        self.rows = rows
        self.order = np.empty(rows.shape, dtype=np.int32 if rows.shape[1] < 2**31 else np.int64)

        def work(start: int, stop: int) -> None:
            for low in range(start, stop, _ORDER_BLOCK_ROWS):
                high = min(stop, low + _ORDER_BLOCK_ROWS)
                self.order[low:high] = np.argsort(np.ascontiguousarray(rows[low:high]), axis=1)

        for_row_chunks(rows.shape[0], work)

    def transform_columns(self, columns: np.ndarray, to: tuple[str, ...]) -> tuple[np.ndarray, ...]:
        """Return, per requested mapping, the ``(models, len(columns))`` transforms of those columns.

        ``columns`` are distinct positions into the full set, in the order the output keeps.
        """
        n_full = self.rows.shape[1]
        n = int(columns.shape[0])
        if n == 0:
            return tuple(np.empty((self.rows.shape[0], 0)) for _ in to)
        output_position = np.full(n_full, -1, dtype=np.int64)
        output_position[columns] = np.arange(n)
        tables = [_code_tables(n)[_TABLE[name]] for name in to]
        outs = [np.empty((self.rows.shape[0], n), dtype=np.float64) for _ in to]
        positions = np.arange(n)

        def work(start: int, stop: int) -> None:
            for low in range(start, stop, _ORDER_BLOCK_ROWS):
                high = min(stop, low + _ORDER_BLOCK_ROWS)
                order = self.order[low:high]
                kept = output_position[order]
                mask = kept >= 0
                block = high - low
                # flat indices: each row keeps exactly n columns, still in sorted order
                sources = order[mask].reshape(block, n) + (np.arange(block) * n_full)[:, None]
                targets = kept[mask].reshape(block, n) + (np.arange(block) * n)[:, None]
                ordered = np.ascontiguousarray(self.rows[low:high]).ravel()[sources]
                differs = ordered[:, 1:] != ordered[:, :-1]
                codes = np.broadcast_to(2 * positions, (block, n)).copy()
                tied = np.flatnonzero(~differs.all(axis=1))
                if tied.shape[0]:
                    codes[tied] = _tie_codes(differs[tied], positions)
                flat_targets = targets.ravel()
                for out, table in zip(outs, tables, strict=True):
                    out[low:high].reshape(-1)[flat_targets] = table[codes.ravel()]

        for_row_chunks(self.rows.shape[0], work)
        return tuple(outs)
