"""Published price technicals of the Signals and Crypto products, and their per-date normalisations.

Each technical of date *t* uses only closes, returns and volumes dated *t* or earlier (trailing
windows of trading days, the helpers of :mod:`crowdalpha.market.features`). Definitions, with
``w`` the window in trading days:

=====================  =========================================================================
name                   value at date t
=====================  =========================================================================
``ret_<w>d``           close_t / close_{t-w} − 1 (fraction), w ∈ {5, 20, 60}
``volatility_20d``     standard deviation (ddof 1) of daily returns over 20 days
``rsi_14d``            mean gain / (mean gain + mean loss) of daily returns over 14 days (0.5 flat)
``bollinger_20d``      (close_t − mean₂₀(close)) / std₂₀(close)
``close_avg_60d``      close_t / mean₆₀(close) − 1
``dollar_volume_20d``  log of the 20-day average dollar volume (ADV, see :func:`average_dollar_volume`)
``market_cap``         log market cap at t
=====================  =========================================================================

Two normalisations turn a cross-section into a published feature: :func:`rank_normalize`
((average rank − ½) / count within a group, in (0, 1)) and :func:`quarter_bins` (equal-frequency
quintiles as 0, .25, .5, .75, 1 with missing → 0.5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crowdalpha.datasets.obfuscate import equal_frequency_bins
from crowdalpha.market.features import rolling, window_return
from crowdalpha.market.panel import PRICE_COLUMN, PanelGrid, close_matrix, return_matrix

ADV_WINDOW = 20
"""Trading days in the average dollar volume behind liquidity features and sample weights."""

TECHNICALS: tuple[str, ...] = (
    "ret_5d",
    "ret_20d",
    "ret_60d",
    "volatility_20d",
    "rsi_14d",
    "bollinger_20d",
    "close_avg_60d",
    "dollar_volume_20d",
    "market_cap",
)
"""Every technical this module computes, in a stable order."""


def dollar_volume_matrix(panel: pd.DataFrame, grid: PanelGrid) -> np.ndarray:
    """Return daily traded value (close × volume, currency units) as a (dates, assets) matrix.

    A panel with ``return`` but no ``close`` has no price level, so its ``volume`` is taken to be
    traded value already (the convention of :mod:`crowdalpha.market.features`).
    """
    volume = grid.to_wide(panel["volume"])
    if PRICE_COLUMN not in panel.columns:
        return volume
    return grid.to_wide(panel[PRICE_COLUMN]) * volume


def average_dollar_volume(dollar_volume: np.ndarray, window: int = ADV_WINDOW) -> np.ndarray:
    """Return the trailing mean daily traded value (currency units) over ``window`` days, NaN if none."""
    return rolling(dollar_volume, window, "mean", min_periods=1)


def _rsi(returns: np.ndarray, window: int) -> np.ndarray:
    observed = ~np.isnan(returns)
    gains = rolling(np.where(observed, np.maximum(returns, 0.0), np.nan), window, "mean")
    losses = rolling(np.where(observed, np.maximum(-returns, 0.0), np.nan), window, "mean")
    total = gains + losses
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, gains / total, np.where(np.isnan(total), np.nan, 0.5))


def technical_matrices(
    panel: pd.DataFrame, grid: PanelGrid, names: Sequence[str] = TECHNICALS
) -> dict[str, np.ndarray]:
    """Return the named technicals (units in the module docstring) as (dates, assets) float64 matrices."""
    unknown = sorted(set(names) - set(TECHNICALS))
    if unknown:
        raise ValueError(f"rule: technicals are among {list(TECHNICALS)} — unknown {unknown}")
    close = close_matrix(panel).to_numpy()
    returns = return_matrix(panel).to_numpy()
    result: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for name in names:
            if name.startswith("ret_"):
                values = window_return(close, int(name[4:-1]))
            elif name == "volatility_20d":
                values = rolling(returns, 20, "std")
            elif name == "rsi_14d":
                values = _rsi(returns, 14)
            elif name == "bollinger_20d":
                values = (close - rolling(close, 20, "mean")) / rolling(close, 20, "std")
            elif name == "close_avg_60d":
                values = close / rolling(close, 60, "mean") - 1.0
            elif name == "dollar_volume_20d":
                adv = average_dollar_volume(dollar_volume_matrix(panel, grid))
                values = np.log(np.where(adv > 0, adv, np.nan))
            else:
                cap = grid.to_wide(panel["market_cap"])
                values = np.log(np.where(cap > 0, cap, np.nan))
            result[name] = np.where(np.isfinite(values), values, np.nan)
    return result


def rank_normalize(values: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
    """Return (average rank − ½) / count of each finite value within its group, in (0, 1); NaN stays NaN."""
    values = np.asarray(values, dtype=np.float64)
    keys = np.zeros(values.shape, dtype=np.int64) if groups is None else np.asarray(groups)
    frame = pd.DataFrame({"key": keys, "value": np.where(np.isfinite(values), values, np.nan)})
    by_group = frame.groupby("key", sort=False)["value"]
    ranks = by_group.rank(method="average").to_numpy()
    counts = by_group.transform("count").to_numpy()
    with np.errstate(invalid="ignore"):
        return (ranks - 0.5) / counts


def quarter_bins(values: np.ndarray) -> np.ndarray:
    """Return equal-frequency quintiles of one cross-section as float32 0, .25, .5, .75, 1 (missing → .5)."""
    bins = equal_frequency_bins(np.asarray(values, dtype=np.float64)[None, :])[0]
    return (bins.astype(np.float32) * np.float32(0.25)).astype(np.float32)
