"""Forward residual targets (kD2L): what the tournament scores predictions against.

For a date *t* (the close whose data built the features), lag ``L`` (default 2) and horizon *k*
trading days, the forward return is::

    r(t; k) = close[t + L + k] / close[t + L] − 1          (simple return, a fraction)

counted in trading days of the panel calendar. It is known only after the close of t + L + k —
before that, and for an asset without both closes (suspended, delisted), it is NaN.

Residualisation, per date and cross-sectionally: ordinary least squares of r(t; k) over the
assets with a row at *t* and a known return, on a constant (the market) plus the chosen exposures
*as known at t* (:mod:`crowdalpha.market.factors`: standardised styles, country and sector
one-hots); the target is the residual. Exactly collinear columns (one-hots summing to the
constant) are dropped from the basis; the residual is unique either way.

Targets (``h`` ∈ ``horizons``, default 20 and 60):

==================================  ============================================================
column                              neutral to (always plus a constant)
==================================  ============================================================
``target_raw_return_<h>``           nothing: the raw forward return, binned (demeaning is free)
``target_market_neutral_<h>``       market beta
``target_country_sector_neutral_    country and sector one-hots
<h>``
``target_factor_neutral_<h>``       beta, size, momentum, volatility, value (when the panel has a
                                    value column), country and sector: the fully residual target
``target``                          alias of ``target_factor_neutral_<h>`` for the first horizon
                                    (``target_factor_neutral_20`` by default)
==================================  ============================================================

Binning, per date: rank the values with ties broken by asset id (rank method "first" over the
assets sorted by id), then give the lowest ``c₀`` ranks 0, the next ``c₁`` ranks 0.25, the middle
0.5, and mirror at the top (``c₁`` ranks 0.75, ``c₀`` ranks 1.0), where for *n* known values
``c₀ = ⌊0.05·n + ½⌋`` and ``c₀ + c₁ = ⌊0.25·n + ½⌋`` (the cumulative shares 5 % and 25 % rounded
half up, in exact integer arithmetic). So the shares are exactly 5/20/50/20/5 % when *n* is a
multiple of 20, the outer bins are always equally full, and the middle bin absorbs the rounding.

Rounds are scored daily as returns arrive, so :func:`residual_returns` gives the kD2L residual for
any *k* on demand for a set of dates; :func:`build_targets` materialises only the full horizons.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crowdalpha.market.calendar import trading_day_positions
from crowdalpha.market.factors import (
    GROUP_FACTORS,
    group_code_matrices,
    style_exposure_matrices,
    style_exposure_rows,
    value_column,
)
from crowdalpha.market.panel import PRICE_COLUMN, RETURN_COLUMN, PanelGrid, close_matrix, panel_grid

LAG = 2
"""Trading days between a round's data date and the first close of its target window."""

HORIZONS: tuple[int, ...] = (20, 60)

NEUTRALIZATIONS: dict[str, tuple[str, ...]] = {
    "raw_return": (),
    "market_neutral": ("beta",),
    "country_sector_neutral": ("country", "sector"),
    "factor_neutral": ("beta", "size", "momentum", "volatility", "value", "country", "sector"),
}
"""Target name → the exposures it is neutral to (a constant is always included)."""

MAIN_NEUTRALIZATION = "factor_neutral"

BIN_VALUES: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
BIN_PERCENT: tuple[int, ...] = (5, 20, 50, 20, 5)

GRAM_RCOND = 1e-10
"""Relative eigenvalue cut-off of the per-date regressions' Gram matrix (drops exactly collinear columns)."""


@dataclass(frozen=True)
class TargetInputs:
    """What every target of a panel needs, computed once: closes, exposures known at each date."""

    grid: PanelGrid
    close: np.ndarray
    present: np.ndarray
    styles: dict[str, np.ndarray]
    groups: dict[str, np.ndarray]
    lag: int = LAG
    group_labels: dict[str, pd.Index] = field(default_factory=dict)
    """Each group's categories: ``groups`` holds their codes (positions in this index)."""
    value: str | None = None
    """The panel column the value exposure came from (None: no value factor)."""
    bases: dict = field(default_factory=dict, compare=False, repr=False)
    """Regression bases by (date position, exposures, known assets), kept across calls (see
    :func:`_residual_rows`); extended inputs share them, since a date's exposures never change."""


def prepare_target_inputs(panel: pd.DataFrame, *, lag: int = LAG, value: str | None = "auto") -> TargetInputs:
    """Return the closes (dates × assets) and exposures known at each date that targets of ``panel`` need."""
    if lag < 0:
        raise ValueError(f"rule: the lag must be ≥ 0 trading days — got {lag}")
    grid = panel_grid(panel)
    groups = group_code_matrices(panel, grid)
    styles = style_exposure_matrices(panel, grid, value=value)
    return TargetInputs(
        grid=grid,
        close=close_matrix(panel).to_numpy(),
        present=grid.present(),
        styles=styles,
        groups={name: codes for name, (codes, _) in groups.items()},
        lag=lag,
        group_labels={name: labels for name, (_, labels) in groups.items()},
        value=value_column(panel, value) if "value" in styles else None,
    )


def extend_target_inputs(inputs: TargetInputs, rows: pd.DataFrame) -> TargetInputs | None:
    """Return ``inputs`` extended by ``rows``, validated panel rows of dates after the inputs' last date.

    Every piece of a date's inputs looks only backwards (closes; exposures from trailing windows
    and that date's cross-section), so the extension computes the new dates' rows alone from the
    closes already held — the result equals :func:`prepare_target_inputs` of the whole panel (up
    to the floating-point rounding of the trailing windows). Returns None when that cannot be
    done from the rows alone and the caller must rebuild from the whole panel: a panel without
    ``close`` (or with a ``return`` column, which wins over it), a group category the inputs
    have not seen, or rows dated on or before the inputs' last date. A newly listed asset gets its
    column (absent on every earlier date), in asset-id order, as a rebuild would place it.
    """
    if rows.empty:
        return inputs
    if PRICE_COLUMN not in rows.columns or RETURN_COLUMN in rows.columns:
        return None
    if any(name not in inputs.group_labels for name in GROUP_FACTORS):
        return None
    if (inputs.value is None) != ("value" not in inputs.styles) or (
        inputs.value is not None and inputs.value not in rows.columns
    ):
        return None
    new_dates = pd.DatetimeIndex(pd.unique(rows["date"])).sort_values()
    if new_dates[0] <= inputs.grid.dates[-1]:
        return None
    codes = {name: inputs.group_labels[name].get_indexer(rows[name]) for name in GROUP_FACTORS}
    if any((code < 0).any() for code in codes.values()):
        return None
    inputs = _with_assets(inputs, pd.Index(pd.unique(rows["asset"])))
    row_asset = inputs.grid.assets.get_indexer(rows["asset"])
    first = len(inputs.grid.dates)
    row_date = first + new_dates.get_indexer(rows["date"])
    grid = PanelGrid(
        dates=pd.DatetimeIndex(inputs.grid.dates.append(new_dates), name="date"),
        assets=inputs.grid.assets,
        row_date=np.concatenate([inputs.grid.row_date, row_date]),
        row_asset=np.concatenate([inputs.grid.row_asset, row_asset]),
    )
    shape = (len(new_dates), len(inputs.grid.assets))
    local = (row_date - first, row_asset)

    def wide(values: np.ndarray | pd.Series, fill: float = np.nan, dtype: type = np.float64) -> np.ndarray:
        matrix = np.full(shape, fill, dtype=dtype)
        matrix[local] = np.asarray(values, dtype=dtype)
        return matrix

    present = wide(np.ones(len(rows), dtype=bool), False, bool)
    close = np.vstack([inputs.close, wide(rows[PRICE_COLUMN])])
    values = None if inputs.value is None else wide(rows[inputs.value])
    new_styles = style_exposure_rows(close, present, wide(rows["market_cap"]), values)
    return TargetInputs(
        grid=grid,
        close=close,
        present=np.vstack([inputs.present, present]),
        styles={name: np.vstack([matrix, new_styles[name]]) for name, matrix in inputs.styles.items()},
        groups={
            name: np.vstack([inputs.groups[name], wide(codes[name], -1, np.int64)]) for name in GROUP_FACTORS
        },
        lag=inputs.lag,
        group_labels=inputs.group_labels,
        value=inputs.value,
        bases=inputs.bases,
    )


def _with_assets(inputs: TargetInputs, assets: pd.Index) -> TargetInputs:
    """Return ``inputs`` with a column for each of ``assets`` it lacks (absent on every date held)."""
    listed = assets.difference(inputs.grid.assets)
    if listed.empty:
        return inputs
    columns = inputs.grid.assets.append(listed).sort_values()
    old = columns.get_indexer(inputs.grid.assets)

    def widened(matrix: np.ndarray, fill: object) -> np.ndarray:
        wide = np.full((matrix.shape[0], len(columns)), fill, dtype=matrix.dtype)
        wide[:, old] = matrix
        return wide

    grid = inputs.grid
    return TargetInputs(
        grid=PanelGrid(grid.dates, pd.Index(columns, name="asset"), grid.row_date, old[grid.row_asset]),
        close=widened(inputs.close, np.nan),
        present=widened(inputs.present, False),
        styles={name: widened(matrix, np.nan) for name, matrix in inputs.styles.items()},
        groups={name: widened(matrix, -1) for name, matrix in inputs.groups.items()},
        lag=inputs.lag,
        group_labels=inputs.group_labels,
        value=inputs.value,
        bases=inputs.bases,
    )


def target_name(neutralization: str, horizon: int) -> str:
    """Return the column name of a target, e.g. ``target_factor_neutral_20``."""
    return f"target_{neutralization}_{horizon}"


def bin_counts(n: int) -> tuple[int, int, int, int, int]:
    """Return how many of ``n`` values go to each of the five bins (5/20/50/20/5 %, rounding documented)."""
    outer = (5 * n + 50) // 100
    lower = (25 * n + 50) // 100
    return outer, lower - outer, n - 2 * lower, lower - outer, outer


def bin_cross_sections(values: np.ndarray) -> np.ndarray:
    """Return each row of a (dates, assets) matrix binned to {0, .25, .5, .75, 1} at 5/20/50/20/5 %.

    Ties are broken by column order (columns are assets sorted by id), i.e. rank method "first";
    NaN stays NaN and does not count.
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    known = np.isfinite(values)
    order = np.argsort(np.where(known, values, np.inf), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(values.shape[1])[None, :], axis=1)
    n = known.sum(axis=1, keepdims=True)
    outer = (5 * n + 50) // 100
    lower = (25 * n + 50) // 100
    bins = (ranks >= outer).astype(np.int8) + (ranks >= lower) + (ranks >= n - lower) + (ranks >= n - outer)
    return np.where(known, np.asarray(BIN_VALUES)[bins], np.nan)


def _date_positions(inputs: TargetInputs, dates: Iterable) -> np.ndarray:
    return trading_day_positions(pd.DatetimeIndex(list(dates)), inputs.grid.dates)


def forward_return_matrix(inputs: TargetInputs, positions: np.ndarray, k: int) -> np.ndarray:
    """Return close[t+L+k] / close[t+L] − 1 (fraction) per (date position, asset); NaN when unknown."""
    if k < 1:
        raise ValueError(f"rule: the horizon k must be ≥ 1 trading day — got {k}")
    n_dates = inputs.close.shape[0]
    start = positions + inputs.lag
    end = start + k
    known = end < n_dates
    result = np.full((len(positions), inputs.close.shape[1]), np.nan)
    if known.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            result[known] = inputs.close[end[known]] / inputs.close[start[known]] - 1.0
    result[~inputs.present[positions]] = np.nan
    return result


def _exposure_columns(
    inputs: TargetInputs, position: int, rows: np.ndarray, exposures: Sequence[str]
) -> np.ndarray:
    """Return the design matrix (constant, styles, one-hots) of one date for the selected asset rows."""
    columns = [np.ones((rows.size, 1))]
    for name in exposures:
        if name in GROUP_FACTORS:
            codes = inputs.groups[name][position, rows]
            _, compact = np.unique(codes, return_inverse=True)
            one_hot = np.zeros((rows.size, int(compact.max(initial=-1)) + 1))
            one_hot[np.arange(rows.size), compact] = 1.0
            columns.append(one_hot)
        elif name in inputs.styles:
            columns.append(np.nan_to_num(inputs.styles[name][position, rows], nan=0.0)[:, None])
    return np.hstack(columns)


def residualize_cross_section(values: np.ndarray, exposures: np.ndarray) -> np.ndarray:
    """Return the least-squares residuals of ``values`` (n,) or (n, m) on ``exposures`` (n, p), same units.

    The residual is ``values`` minus its projection on the column space of ``exposures``, found
    from an orthonormal basis of that space (:func:`orthonormal_basis`).
    """
    return residual_on_basis(values, orthonormal_basis(exposures))


def orthonormal_basis(exposures: np.ndarray) -> np.ndarray | None:
    """Return an orthonormal basis (n, r) of the column space of ``exposures`` (n, p); None if it is empty.

    Columns are scaled to unit length, and directions of the Gram matrix with eigenvalue below
    :data:`GRAM_RCOND` × the largest are dropped, so exactly collinear columns (one-hots that sum
    to the constant) cost nothing.
    """
    lengths = np.linalg.norm(exposures, axis=0)
    scaled = exposures[:, lengths > 0] / lengths[lengths > 0]
    if scaled.shape[1] == 0:
        return None
    eigenvalues, eigenvectors = np.linalg.eigh(scaled.T @ scaled)
    kept = eigenvalues > GRAM_RCOND * eigenvalues[-1]
    return scaled @ (eigenvectors[:, kept] / np.sqrt(eigenvalues[kept]))


def residual_on_basis(values: np.ndarray, basis: np.ndarray | None) -> np.ndarray:
    """Return ``values`` minus their projection on the orthonormal ``basis`` (None: nothing to remove)."""
    if basis is None:
        return np.array(values, dtype=np.float64)
    return values - basis @ (basis.T @ values)


BASES_BUDGET = 32_000_000
"""Values (assets × basis columns, float64; 256 MB) of the regression bases a :class:`TargetInputs`
keeps, least recently used dropped first: about 400 bases at 2,000 assets (160 at 5,000), so the
score days of every round in flight (a daily Classic round is scored for 60 days, with targets on
two residualisations) reuse their date's regressions. With first-in-first-out eviction and a
budget below what a day's rounds need, each day would have evicted exactly the bases the next day
asks for first."""


def _basis(
    inputs: TargetInputs, position: int, rows: np.ndarray, exposures: Sequence[str], *, keep: bool
) -> np.ndarray | None:
    """Return the regression basis of one date over the asset ``rows`` (kept on the inputs if ``keep``)."""
    key = (position, tuple(exposures), rows.size, hash(rows.tobytes()))
    kept = inputs.bases.get(key)
    if kept is not None and np.array_equal(kept[0], rows):
        inputs.bases[key] = inputs.bases.pop(key)  # most recently used last: evicted last
        return kept[1]
    basis = orthonormal_basis(_exposure_columns(inputs, position, rows, exposures))
    if keep and basis is not None:
        while (
            inputs.bases and sum(item[1].size for item in inputs.bases.values()) + basis.size > BASES_BUDGET
        ):
            del inputs.bases[next(iter(inputs.bases))]
        inputs.bases[key] = (rows, basis)
    return basis


def _residual_rows(
    inputs: TargetInputs,
    positions: np.ndarray,
    returns: list[np.ndarray],
    exposures: Sequence[str],
    *,
    keep: bool = True,
) -> list[np.ndarray]:
    """Residualise several (dates, assets) return matrices date by date against the same exposures.

    With ``keep`` each date's regression basis is kept on the inputs for the next call (a round
    is residualised on the same date every score day); a one-pass build passes False.
    """
    residuals = [np.full_like(matrix, np.nan) for matrix in returns]
    for row, position in enumerate(positions):
        known = [np.isfinite(matrix[row]) for matrix in returns]
        # returns with the same known assets share one regression (the usual case)
        groups: list[tuple[np.ndarray, list[int]]] = []
        for member, pattern in enumerate(known):
            for seen, members in groups:
                if np.array_equal(seen, pattern):
                    members.append(member)
                    break
            else:
                groups.append((pattern, [member]))
        for pattern, members in groups:
            rows = np.flatnonzero(pattern)
            if rows.size == 0:
                continue
            values = np.stack([returns[m][row, rows] for m in members], axis=1)
            fitted = residual_on_basis(values, _basis(inputs, position, rows, exposures, keep=keep))
            for column, member in enumerate(members):
                residuals[member][row, rows] = fitted[:, column]
    return residuals


def residual_returns(
    inputs: TargetInputs,
    dates: Iterable,
    k: int,
    *,
    neutral_to: str = MAIN_NEUTRALIZATION,
    binned: bool = False,
) -> pd.DataFrame:
    """Return the kD2L residual returns (fractions; or bins with ``binned``) as a dates × assets frame.

    ``neutral_to`` names an entry of :data:`NEUTRALIZATIONS`. NaN where the return is not known
    yet (t + L + k beyond the panel) or the asset had no row at t or misses a close.
    """
    if neutral_to not in NEUTRALIZATIONS:
        raise ValueError(f"rule: neutral_to must be one of {sorted(NEUTRALIZATIONS)} — got {neutral_to!r}")
    positions = _date_positions(inputs, dates)
    (residuals,) = _residual_rows(
        inputs, positions, [forward_return_matrix(inputs, positions, k)], NEUTRALIZATIONS[neutral_to]
    )
    values = bin_cross_sections(residuals) if binned else residuals
    return pd.DataFrame(values, index=inputs.grid.dates[positions], columns=inputs.grid.assets)


def build_targets(
    panel: pd.DataFrame,
    dates: Iterable | None,
    horizons: Sequence[int] = HORIZONS,
    *,
    lag: int = LAG,
    binned: bool = True,
    value: str | None = "auto",
    inputs: TargetInputs | None = None,
) -> pd.DataFrame:
    """Return per (date, asset) row at ``dates`` the main ``target`` and every ``target_<name>_<h>``.

    Values are float32 bins in {0, .25, .5, .75, 1} (with ``binned=False``: float64 residual
    returns as fractions); NaN where the future is not known yet. ``dates=None`` means every
    trading date. Rows follow the panel's (date, asset) order, with ``date`` and ``asset`` columns.
    Pass ``inputs`` (from :func:`prepare_target_inputs`) to reuse them; ``lag`` and ``value`` are
    then those of ``inputs``.
    """
    if not horizons or min(horizons) < 1:
        raise ValueError(f"rule: horizons must be one or more k ≥ 1 trading days — got {tuple(horizons)}")
    inputs = prepare_target_inputs(panel, lag=lag, value=value) if inputs is None else inputs
    positions = (
        np.arange(len(inputs.grid.dates)) if dates is None else np.unique(_date_positions(inputs, dates))
    )
    forward = [forward_return_matrix(inputs, positions, h) for h in horizons]
    frames: dict[str, np.ndarray] = {}
    for neutralization, exposures in NEUTRALIZATIONS.items():
        residuals = _residual_rows(inputs, positions, forward, exposures, keep=False)
        for horizon, matrix in zip(horizons, residuals, strict=True):
            frames[target_name(neutralization, horizon)] = (
                bin_cross_sections(matrix).astype(np.float32) if binned else matrix
            )
    main = target_name(MAIN_NEUTRALIZATION, horizons[0])
    present = inputs.present[positions]
    date_index, asset_index = np.nonzero(present)
    columns: dict[str, np.ndarray] = {
        "date": inputs.grid.dates[positions].to_numpy()[date_index],
        "asset": inputs.grid.assets.to_numpy()[asset_index],
        "target": frames[main][date_index, asset_index],
    }
    for neutralization in NEUTRALIZATIONS:
        for horizon in horizons:
            name = target_name(neutralization, horizon)
            columns[name] = frames[name][date_index, asset_index]
    return pd.DataFrame(columns)
