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


_BLOCK_ROWS = 64
"""Rows processed together: a block of codes and its gathered values stay in cache."""
REMOVALS_BEFORE_RESORT = 32
"""Above this many dropped columns, restricting codes costs more than sorting the rows again."""


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


def _code_dtype(n_columns: int) -> type[np.signedinteger]:
    """Return the smallest integer type holding every code of ``n_columns`` values (at most 2n − 2)."""
    return np.int16 if 2 * n_columns < np.iinfo(np.int16).max else np.int32


class RankCodes:
    """Every row's tie-kept rank codes over a set of kept columns, from which the rank transforms of
    those columns, and their products with vectors, follow by table look-up.

    A row's code of a value is ``first + last`` of its tie group's sorted positions among the kept
    columns (:func:`_code_tables`): ``2 × rank`` when it has no tie. Daily scoring ranks the same
    predictions over a slightly smaller set of ids most days (the ids whose target has arrived).
    Dropping a column ``d`` lowers every code above ``d``'s by 2 and every other code equal to it by 1,
    so :meth:`restricted` needs a few passes of integer arithmetic instead of a sort per row, and the
    codes of a few thousand ids fit in 16 bits. The results equal ``transform_rows_many`` on the kept
    columns exactly.

    Codes are laid out over the full set of columns the rows were built with; a dropped column's
    code is 0 and never counts (the vectors a product takes are 0 there).
    """

    def __init__(self, rows: np.ndarray, columns: np.ndarray | None = None) -> None:
        """Sort each row of a NaN-free ``(models, ids)`` array over ``columns`` (default: all) once."""
        if np.isnan(rows).any():
            raise ValueError("RankCodes needs NaN-free rows (rule: rank complete predictions only)")
        n_full = rows.shape[1]
        kept = np.arange(n_full) if columns is None else np.unique(np.asarray(columns, dtype=np.int64))
        self.kept = np.zeros(n_full, dtype=bool)
        self.kept[kept] = True
        self.count = int(kept.shape[0])
        self.codes = np.zeros(rows.shape, dtype=_code_dtype(n_full))
        self.tied = np.zeros(rows.shape[0], dtype=bool)
        """Rows with a tie among the kept columns (a restriction can only remove ties)."""
        positions = np.arange(self.count)
        everything = self.count == n_full

        def work(start: int, stop: int) -> None:
            for low in range(start, stop, _BLOCK_ROWS):
                high = min(stop, low + _BLOCK_ROWS)
                block = rows[low:high] if everything else rows[low:high][:, kept]
                block = np.ascontiguousarray(block)
                order = np.argsort(block, axis=1)
                ordered = np.take_along_axis(block, order, axis=1)
                differs = ordered[:, 1:] != ordered[:, :-1]
                codes = np.broadcast_to(2 * positions, order.shape).copy()
                tied = np.flatnonzero(~differs.all(axis=1))
                if tied.shape[0]:
                    codes[tied] = _tie_codes(differs[tied], positions)
                    self.tied[low + tied] = True
                spread = np.empty_like(codes)
                np.put_along_axis(spread, order, codes, axis=1)
                self.codes[low:high, kept] = spread

        for_row_chunks(rows.shape[0], work)

    def columns(self) -> np.ndarray:
        """Return the kept columns' positions, increasing."""
        return np.flatnonzero(self.kept)

    def restricted(self, columns: np.ndarray) -> RankCodes:
        """Return the codes over a subset of the kept columns (the ranks the subset alone has).

        ValueError if ``columns`` holds a column that is not kept.
        """
        keep = np.zeros_like(self.kept)
        keep[np.asarray(columns, dtype=np.int64)] = True
        if (keep & ~self.kept).any():
            raise ValueError("RankCodes.restricted takes a subset of the kept columns (rule: no new ids)")
        dropped = np.flatnonzero(self.kept & ~keep)
        result = object.__new__(RankCodes)
        result.kept, result.count, result.tied = keep, int(keep.sum()), self.tied.copy()
        if dropped.shape[0] == 0:
            result.codes = self.codes.copy()
            return result
        codes = result.codes = np.empty_like(self.codes)
        cleared = np.flatnonzero(~keep)

        def work(start: int, stop: int) -> None:
            above = np.empty((_BLOCK_ROWS, codes.shape[1]), dtype=bool)
            lowered = np.empty((_BLOCK_ROWS, codes.shape[1]), dtype=codes.dtype)
            for low in range(start, stop, _BLOCK_ROWS):
                high = min(stop, low + _BLOCK_ROWS)
                size = high - low
                block, step, test = self.codes[low:high], lowered[:size], above[:size]
                dropped_codes = block[:, dropped]
                step[...] = 0
                for k in range(dropped.shape[0]):
                    code = dropped_codes[:, k : k + 1]
                    # code above d's: −2 (both ends of its tie group move); equal (d's own group): −1
                    np.greater(block, code, out=test)
                    np.add(step, test, out=step, casting="unsafe")
                    np.greater_equal(block, code, out=test)
                    np.add(step, test, out=step, casting="unsafe")
                np.subtract(block, step, out=codes[low:high])
                codes[low:high, cleared] = 0

        for_row_chunks(codes.shape[0], work)
        return result

    def _table(self, to: str) -> np.ndarray:
        return _code_tables(self.count)[_TABLE[to]] if self.count else np.zeros(1)

    def transform(self, to: str, columns: np.ndarray | None = None) -> np.ndarray:
        """Return the ``(models, len(columns))`` transform of the kept columns (default: all, increasing)."""
        columns = self.columns() if columns is None else np.asarray(columns, dtype=np.int64)
        n_full = self.codes.shape[1]
        every = columns.shape[0] == n_full and bool((columns == np.arange(n_full)).all())
        table = self._table(to)
        out = np.empty((self.codes.shape[0], columns.shape[0]))

        def work(start: int, stop: int) -> None:
            for low in range(start, stop, _BLOCK_ROWS):
                high = min(stop, low + _BLOCK_ROWS)
                codes = self.codes[low:high] if every else self.codes[low:high][:, columns]
                np.take(table, codes, out=out[low:high])

        for_row_chunks(self.codes.shape[0], work)
        return out

    def products(self, to: str, columns: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Return ``transform(to, columns) @ vectors`` without building the transform: ``(models, k)``.

        ``columns`` must be the kept columns (in any order); ``vectors`` is ``(len(columns), k)``.
        """
        columns = np.asarray(columns, dtype=np.int64)
        if columns.shape[0] != self.count or not self.kept[columns].all():
            raise ValueError("RankCodes.products takes every kept column once (rule: same ids)")
        vectors = np.asarray(vectors, dtype=np.float64)
        spread = np.zeros((self.codes.shape[1], vectors.shape[1]))
        spread[columns] = vectors
        table = self._table(to)
        out = np.empty((self.codes.shape[0], vectors.shape[1]))

        def work(start: int, stop: int) -> None:
            block = np.empty((_BLOCK_ROWS // 4, self.codes.shape[1]))
            for low in range(start, stop, block.shape[0]):
                high = min(stop, low + block.shape[0])
                values = block[: high - low]
                np.take(table, self.codes[low:high], out=values)
                np.matmul(values, spread, out=out[low:high])

        for_row_chunks(self.codes.shape[0], work)
        return out

    def moments(self, to: str) -> tuple[np.ndarray, np.ndarray]:
        """Return each row's (sum, sum of squares) of its transform over the kept columns.

        A row without ties holds every distinct-rank value once, so its moments are the table's.
        """
        n_rows = self.codes.shape[0]
        distinct = _distinct_tables(self.count)[_TABLE[to]] if self.count else np.zeros(0)
        sums = np.full(n_rows, distinct.sum())
        squares = np.full(n_rows, distinct @ distinct)
        tied = np.flatnonzero(self.tied)
        if tied.shape[0]:
            values = np.take(self._table(to), self.codes[tied][:, self.kept])
            sums[tied] = values.sum(axis=1)
            squares[tied] = np.einsum("ij,ij->i", values, values)
        return sums, squares
