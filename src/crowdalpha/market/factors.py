"""Risk-factor exposures known at each date: market beta, size, momentum, volatility, value, groups.

Style exposures of date *t* use only rows dated *t* or earlier:

==========  =====================================================================================
factor      raw exposure before standardisation
==========  =====================================================================================
beta        60-day beta of daily returns to the equal-weighted market (``raw_beta_60``)
size        log market cap at t
momentum    12-1 momentum: close_{t-20} / close_{t-250} − 1
volatility  60-day standard deviation of daily returns
value       the panel's own value column, when it has one: the first of :data:`VALUE_COLUMNS`
            present (e.g. ``raw_book_to_price``; by the panel contract it is known at its date).
            A panel without one has no value factor — prices alone cannot give book values.
==========  =====================================================================================

Each style exposure is standardised cross-sectionally per date over the assets with a row that
day: clip at the median ± 3 robust standard deviations (winsorise), then centre on the
equal-weighted mean and divide by the standard deviation (ddof 0). An exposure that cannot be
computed yet (short history, no market cap) is NaN, or the cross-sectional mean 0 with
``fill_missing=True`` — so a young asset counts as average rather than dropping out of every
regression.

Groups are one-hot columns ``country_<value>`` and ``sector_<value>`` (0/1 floats, not
standardised), one per category seen anywhere in the panel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crowdalpha.market.features import market_return, rolling, rolling_beta, window_return
from crowdalpha.market.panel import (
    PanelError,
    PanelGrid,
    close_matrix,
    panel_grid,
    return_matrix,
    returns_from_close,
)

STYLE_FACTORS: tuple[str, ...] = ("beta", "size", "momentum", "volatility", "value")
"""Style factor names, in output order (``value`` only when the panel has a value column)."""

GROUP_FACTORS: tuple[str, ...] = ("country", "sector")
"""Panel columns turned into one-hot group exposures."""

VALUE_COLUMNS: tuple[str, ...] = ("raw_book_to_price", "raw_value", "raw_earnings_yield")
"""Columns recognised as a value exposure, in order of preference."""

WINSOR_LIMIT = 3.0
"""Raw exposures are clipped at the median ± this many robust standard deviations before z-scoring."""

ROBUST_SCALE = 1.4826
"""MAD × this estimates the standard deviation of normal data."""

BETA_WINDOW = 60
VOLATILITY_WINDOW = 60
MOMENTUM_WINDOW, MOMENTUM_SKIP = 250, 20


def standardize_cross_section(values: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """Return each row (date) of a (dates, assets) matrix, robustly winsorised, as z-scores (mean 0, std 1).

    Only finite values of assets ``present`` that date take part; others are NaN in the result.
    Values are first clipped at the row's median ± 3 robust standard deviations (1.4826 × MAD, or
    the plain standard deviation when the MAD is 0), so one extreme asset cannot squash the rest.
    A date with fewer than two distinct values gets 0 for every asset with a value.
    """
    values = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(values) if present is None else np.isfinite(values) & present
    masked = np.where(valid, values, np.nan)
    any_valid = valid.any(axis=1)
    centre = np.zeros((values.shape[0], 1))
    spread = np.zeros((values.shape[0], 1))
    if any_valid.any():
        rows = masked[any_valid]
        median = np.nanmedian(rows, axis=1, keepdims=True)
        mad = ROBUST_SCALE * np.nanmedian(np.abs(rows - median), axis=1, keepdims=True)
        spread[any_valid] = np.where(mad > 0, mad, np.nanstd(rows, axis=1, keepdims=True))
        centre[any_valid] = median
    winsorised = np.clip(masked, centre - WINSOR_LIMIT * spread, centre + WINSOR_LIMIT * spread)
    return _zscore_rows(winsorised, valid)


def _zscore_rows(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    counts = valid.sum(axis=1, keepdims=True)
    filled = np.where(valid, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=1, keepdims=True) / counts
        centred = np.where(valid, values - mean, 0.0)
        std = np.sqrt((centred**2).sum(axis=1, keepdims=True) / counts)
        z = np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), centred / std, 0.0)
    return np.where(valid, z, np.nan)


def value_column(panel: pd.DataFrame, requested: str | None = "auto") -> str | None:
    """Return the panel column used as the value exposure: the first of VALUE_COLUMNS present, or None."""
    if requested is None:
        return None
    if requested != "auto":
        if requested not in panel.columns:
            raise PanelError(f"rule: the value column must be in the panel — {requested!r} is not")
        return requested
    return next((c for c in VALUE_COLUMNS if c in panel.columns), None)


def style_exposure_matrices(
    panel: pd.DataFrame, grid: PanelGrid | None = None, *, value: str | None = "auto"
) -> dict[str, np.ndarray]:
    """Return each style factor's standardised exposures as a (dates, assets) matrix, NaN where unknown."""
    grid = panel_grid(panel) if grid is None else grid
    present = grid.present()
    close = close_matrix(panel).to_numpy()
    returns = return_matrix(panel).to_numpy()
    column = value_column(panel, value)
    values = None if column is None else grid.to_wide(panel[column])
    return _standardized_styles(close, returns, present, grid.to_wide(panel["market_cap"]), values)


def style_exposure_rows(
    close: np.ndarray, present: np.ndarray, market_cap: np.ndarray, values: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Return the style exposures of the last dates of a close matrix only, as (new dates, assets) matrices.

    ``close`` is the whole (dates, assets) close matrix; ``present``, ``market_cap`` and
    ``values`` (the value column, None without one) cover its last ``len(present)`` dates. Only
    the trailing windows those dates need are computed, so the rows equal those of
    :func:`style_exposure_matrices` on the whole panel (up to the rolling windows' rounding).
    """
    new = present.shape[0]
    start = max(0, close.shape[0] - new - max(BETA_WINDOW, VOLATILITY_WINDOW))
    returns = returns_from_close(pd.DataFrame(close[start:], copy=False)).to_numpy()
    momentum_start = max(0, close.shape[0] - new - MOMENTUM_WINDOW)
    return _standardized_styles(close[momentum_start:], returns, present, market_cap, values, rows=new)


def _standardized_styles(
    close: np.ndarray,
    returns: np.ndarray,
    present: np.ndarray,
    market_cap: np.ndarray,
    values: np.ndarray | None,
    *,
    rows: int | None = None,
) -> dict[str, np.ndarray]:
    """Return the standardised style exposures of the last ``rows`` dates (default: every date)."""
    last = slice(-rows, None) if rows else slice(None)
    market = market_return(returns)
    raw = {
        "beta": rolling_beta(returns, market, BETA_WINDOW, last=rows)["beta"],
        "size": np.log(np.where(present, market_cap, np.nan)),
        "momentum": window_return(close, MOMENTUM_WINDOW, skip=MOMENTUM_SKIP)[last],
        "volatility": rolling(returns, VOLATILITY_WINDOW, "std", last=rows),
    }
    if values is not None:
        raw["value"] = values
    return {name: standardize_cross_section(matrix, present) for name, matrix in raw.items()}


def group_code_matrices(
    panel: pd.DataFrame, grid: PanelGrid | None = None
) -> dict[str, tuple[np.ndarray, pd.Index]]:
    """Return per group column an int (dates, assets) code matrix (-1 where absent) and its labels."""
    grid = panel_grid(panel) if grid is None else grid
    return {group: grid.codes(panel[group]) for group in GROUP_FACTORS}


def factor_exposures(
    panel: pd.DataFrame,
    *,
    value: str | None = "auto",
    groups: Sequence[str] = GROUP_FACTORS,
    fill_missing: bool = True,
) -> pd.DataFrame:
    """Return per panel row the standardised style exposures (z-scores) and 0/1 group one-hots.

    Columns: ``date``, ``asset``, the style factors of :data:`STYLE_FACTORS` the panel supports,
    then ``country_<c>`` and ``sector_<s>`` one-hots. The result has the panel's index.
    """
    grid = panel_grid(panel)
    styles = style_exposure_matrices(panel, grid, value=value)
    columns: dict[str, np.ndarray] = {"date": panel["date"].to_numpy(), "asset": panel["asset"].to_numpy()}
    for name, matrix in styles.items():
        values = grid.to_rows(matrix)
        columns[name] = np.nan_to_num(values, nan=0.0) if fill_missing else values
    frame = pd.DataFrame(columns, index=panel.index)
    one_hots = [
        pd.get_dummies(panel[group], prefix=group, prefix_sep="_", dtype=np.float64) for group in groups
    ]
    return pd.concat([frame, *one_hots], axis=1)
