"""Raw features from prices and volume, for panels that bring no ``raw_*`` columns of their own.

Every feature of date *t* uses only rows dated *t* or earlier (trailing windows, no centring, no
full-sample statistics), so a dataset built from them has no look-ahead. Windows count trading
days of the panel calendar (rows of the wide matrix). A window statistic needs at least 80 % of
its window observed (:data:`MIN_OBSERVED_SHARE`) and is NaN before that; a k-day return needs the
close exactly k trading days back.

All computations run on wide ``(dates, assets)`` float64 matrices with numpy and pandas' compiled
trailing rolling kernels (one compiled pass down each column) — no Python loop over dates.

Units: returns are simple fractions (0.01 = 1 %), volatilities are daily standard deviations of
simple returns, oscillators lie in [0, 1], liquidity features are natural logs of the currency of
``close`` (or of ``volume`` itself when a panel has only returns; then ``volume`` should be traded
value). The market return is the equal-weighted mean of the daily returns of the assets traded
that day.

Features (41), by their definition at date t (``w`` is the window in trading days):

- ``raw_ret_{1,5,20,60,120,250}d``: close_t / close_{t-w} − 1
- ``raw_mom_12_1``: close_{t-20} / close_{t-250} − 1 (12-month momentum skipping the last month);
  ``raw_mom_6_1``: close_{t-20} / close_{t-120} − 1; ``raw_ret_20d_skip_5``: close_{t-5} / close_{t-20} − 1
- ``raw_excess_ret_{20,60}d``: the w-day return minus the compounded w-day market return
- ``raw_vol_{20,60,250}d``: standard deviation (ddof 1) of daily returns; ``raw_vol_ratio_20_60``:
  raw_vol_20d / raw_vol_60d; ``raw_downside_vol_60d``: √ mean(min(r, 0)²)
- ``raw_skew_60d``, ``raw_kurt_60d``: sample skewness and excess kurtosis of daily returns
- ``raw_max_ret_20d``, ``raw_min_ret_20d``: largest and smallest daily return
- ``raw_rsi_{14,50}``: mean gain / (mean gain + mean loss) of daily returns (0.5 when flat)
- ``raw_price_to_ma_{20,60,250}``: close_t / mean(close over w) − 1; ``raw_ma_cross_20_60``:
  mean(close, 20) / mean(close, 60) − 1; ``raw_bollinger_20``: (close_t − mean₂₀) / std₂₀ of close
- ``raw_dist_high_250`` (≤ 0), ``raw_dist_low_250`` (≥ 0): close_t / max (min) of close over 250 − 1;
  ``raw_range_position_60``: (close_t − min₆₀) / (max₆₀ − min₆₀)
- ``raw_log_dollar_volume_{20,60}``: log mean(close × volume); ``raw_volume_trend_5_60``:
  log(mean volume₅ / mean volume₆₀); ``raw_turnover_20``: mean(close × volume)₂₀ / market_cap_t;
  ``raw_amihud_20``: log mean(|r| / (close × volume)) over days with trading (at least 8 of 20);
  ``raw_zero_return_share_60``: share of days with a zero return; ``raw_log_market_cap``
- ``raw_beta_{60,250}``: cov(r, market) / var(market); ``raw_corr_market_60``: their correlation;
  ``raw_resid_vol_60``: √(var(r) − β²·var(market)), the volatility beta does not explain
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from crowdalpha.market.panel import (
    PRICE_COLUMN,
    RETURN_COLUMN,
    PanelError,
    close_from_returns,
    constant_raw_features,
    panel_grid,
    raw_feature_columns,
)

MIN_OBSERVED_SHARE = 0.8
"""Share of a window that must be observed for a window statistic to be defined."""

RETURN_WINDOWS: tuple[int, ...] = (5, 20, 60, 120, 250)


def min_observed(window: int) -> int:
    """Return how many observations (count) a window of ``window`` trading days needs."""
    return max(1, math.ceil(MIN_OBSERVED_SHARE * window))


def rolling(
    values: np.ndarray,
    window: int,
    statistic: str,
    *,
    min_periods: int | None = None,
    last: int | None = None,
) -> np.ndarray:
    """Return a trailing rolling statistic (mean, std, max, …) down each column of a (dates, assets) array.

    With ``last``, only the last ``last`` rows' statistic is returned (``mean`` or ``std``),
    computed from their own windows instead of rolling down the whole array — what a day's new
    rows need; it equals the rolled rows up to floating-point rounding.
    """
    needed = min_observed(window) if min_periods is None else min_periods
    if last is not None:
        return _trailing_rows(np.asarray(values, dtype=np.float64), window, statistic, needed, last)
    frame = pd.DataFrame(values, copy=False)
    window_view = frame.rolling(window, min_periods=needed)
    return getattr(window_view, statistic)().to_numpy()


def _trailing_rows(values: np.ndarray, window: int, statistic: str, needed: int, last: int) -> np.ndarray:
    """Return the trailing-window ``mean`` or ``std`` of the last ``last`` rows (NaN below ``needed``)."""
    if statistic not in ("mean", "std"):
        raise ValueError(f"rule: the last rows' statistic is mean or std — got {statistic!r}")
    tail = values[max(0, values.shape[0] - last - window + 1) :]
    missing = last + window - 1 - tail.shape[0]
    padded = np.vstack([np.full((missing, values.shape[1]), np.nan), tail]) if missing > 0 else tail
    windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)  # (last, assets, window)
    known = np.isfinite(windows)
    counts = known.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(known, windows, 0.0).sum(axis=-1) / counts
        if statistic == "mean":
            result = mean
        else:
            deviations = np.where(known, windows - mean[..., None], 0.0)
            result = np.sqrt((deviations**2).sum(axis=-1) / (counts - 1))
            result[counts < 2] = np.nan
    result[counts < max(needed, 1)] = np.nan
    return result


def lagged(values: np.ndarray, lag: int) -> np.ndarray:
    """Return the matrix shifted down by ``lag`` rows (the value ``lag`` trading days earlier), NaN on top."""
    shifted = np.full_like(values, np.nan, dtype=np.float64)
    if lag < values.shape[0]:
        shifted[lag:] = values[: values.shape[0] - lag]
    return shifted


def window_return(close: np.ndarray, window: int, *, skip: int = 0) -> np.ndarray:
    """Return close_{t-skip} / close_{t-window} − 1 as a fraction (NaN when either close is missing)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return lagged(close, skip) / lagged(close, window) - 1.0


def market_return(returns: np.ndarray) -> np.ndarray:
    """Return the equal-weighted mean daily return (fraction) of the assets traded each date: (dates,)."""
    observed = ~np.isnan(returns)
    counts = observed.sum(axis=1)
    totals = np.where(observed, returns, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def rolling_beta(
    returns: np.ndarray, market: np.ndarray, window: int, *, last: int | None = None
) -> dict[str, np.ndarray]:
    """Return trailing ``beta``, ``corr``, ``resid_vol`` (daily) and ``vol`` of returns against the market.

    With ``last``, only the last ``last`` rows (see :func:`rolling`).
    """
    market_wide = np.broadcast_to(market[:, None], returns.shape)
    both = ~np.isnan(returns) & ~np.isnan(market_wide)
    x = np.where(both, returns, np.nan)
    y = np.where(both, market_wide, np.nan)
    mean_x = rolling(x, window, "mean", last=last)
    mean_y = rolling(y, window, "mean", last=last)
    covariance = rolling(x * y, window, "mean", last=last) - mean_x * mean_y
    variance_x = np.maximum(rolling(x * x, window, "mean", last=last) - mean_x**2, 0.0)
    variance_y = np.maximum(rolling(y * y, window, "mean", last=last) - mean_y**2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = covariance / variance_y
        corr = covariance / np.sqrt(variance_x * variance_y)
        resid_vol = np.sqrt(np.maximum(variance_x - beta**2 * variance_y, 0.0))
    return {"beta": beta, "corr": corr, "resid_vol": resid_vol, "vol": np.sqrt(variance_x)}


def _ratio_log(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = numerator / denominator
    return np.log(np.where(ratio > 0, ratio, np.nan))


def _safe_log(values: np.ndarray) -> np.ndarray:
    return np.log(np.where(values > 0, values, np.nan))


def _returns_features(close: np.ndarray, returns: np.ndarray, market: np.ndarray) -> dict[str, np.ndarray]:
    features: dict[str, np.ndarray] = {"raw_ret_1d": returns}
    for window in RETURN_WINDOWS:
        features[f"raw_ret_{window}d"] = window_return(close, window)
    features["raw_mom_12_1"] = window_return(close, 250, skip=20)
    features["raw_mom_6_1"] = window_return(close, 120, skip=20)
    features["raw_ret_20d_skip_5"] = window_return(close, 20, skip=5)
    market_level = np.exp(np.cumsum(np.log1p(np.nan_to_num(market, nan=0.0))))[:, None]
    for window in (20, 60):
        features[f"raw_excess_ret_{window}d"] = features[f"raw_ret_{window}d"] - window_return(
            market_level, window
        )
    return features


def _risk_features(returns: np.ndarray) -> dict[str, np.ndarray]:
    features = {f"raw_vol_{w}d": rolling(returns, w, "std") for w in (20, 60, 250)}
    with np.errstate(divide="ignore", invalid="ignore"):
        features["raw_vol_ratio_20_60"] = features["raw_vol_20d"] / features["raw_vol_60d"]
    downside = np.where(np.isnan(returns), np.nan, np.minimum(returns, 0.0) ** 2)
    features["raw_downside_vol_60d"] = np.sqrt(rolling(downside, 60, "mean"))
    features["raw_skew_60d"] = rolling(returns, 60, "skew")
    features["raw_kurt_60d"] = rolling(returns, 60, "kurt")
    features["raw_max_ret_20d"] = rolling(returns, 20, "max")
    features["raw_min_ret_20d"] = rolling(returns, 20, "min")
    for window in (14, 50):
        gains = rolling(np.where(np.isnan(returns), np.nan, np.maximum(returns, 0.0)), window, "mean")
        losses = rolling(np.where(np.isnan(returns), np.nan, np.maximum(-returns, 0.0)), window, "mean")
        total = gains + losses
        with np.errstate(divide="ignore", invalid="ignore"):
            features[f"raw_rsi_{window}"] = np.where(
                total > 0, gains / total, np.where(np.isnan(total), np.nan, 0.5)
            )
    return features


def _trend_features(close: np.ndarray) -> dict[str, np.ndarray]:
    averages = {w: rolling(close, w, "mean") for w in (20, 60, 250)}
    with np.errstate(divide="ignore", invalid="ignore"):
        features = {f"raw_price_to_ma_{w}": close / averages[w] - 1.0 for w in (20, 60, 250)}
        features["raw_ma_cross_20_60"] = averages[20] / averages[60] - 1.0
        features["raw_bollinger_20"] = (close - averages[20]) / rolling(close, 20, "std")
        high_250, low_250 = rolling(close, 250, "max"), rolling(close, 250, "min")
        features["raw_dist_high_250"] = close / high_250 - 1.0
        features["raw_dist_low_250"] = close / low_250 - 1.0
        high_60, low_60 = rolling(close, 60, "max"), rolling(close, 60, "min")
        features["raw_range_position_60"] = (close - low_60) / (high_60 - low_60)
    return features


def _liquidity_features(
    returns: np.ndarray, volume: np.ndarray, dollar_volume: np.ndarray, market_cap: np.ndarray
) -> dict[str, np.ndarray]:
    features = {f"raw_log_dollar_volume_{w}": _safe_log(rolling(dollar_volume, w, "mean")) for w in (20, 60)}
    features["raw_volume_trend_5_60"] = _ratio_log(rolling(volume, 5, "mean"), rolling(volume, 60, "mean"))
    with np.errstate(divide="ignore", invalid="ignore"):
        features["raw_turnover_20"] = rolling(dollar_volume, 20, "mean") / market_cap
        impact = np.where(dollar_volume > 0, np.abs(returns) / dollar_volume, np.nan)
    features["raw_amihud_20"] = _safe_log(rolling(impact, 20, "mean", min_periods=min_observed(20) // 2))
    zero = np.where(np.isnan(returns), np.nan, (returns == 0).astype(np.float64))
    features["raw_zero_return_share_60"] = rolling(zero, 60, "mean")
    features["raw_log_market_cap"] = _safe_log(market_cap)
    return features


def _market_features(returns: np.ndarray, market: np.ndarray) -> dict[str, np.ndarray]:
    short = rolling_beta(returns, market, 60)
    return {
        "raw_beta_60": short["beta"],
        "raw_beta_250": rolling_beta(returns, market, 250)["beta"],
        "raw_corr_market_60": short["corr"],
        "raw_resid_vol_60": short["resid_vol"],
    }


def price_feature_matrices(
    close: np.ndarray,
    returns: np.ndarray,
    volume: np.ndarray,
    market_cap: np.ndarray,
    *,
    dollar_volume: np.ndarray | None = None,
    dtype: type = np.float32,
) -> dict[str, np.ndarray]:
    """Return every price-derived feature as a (dates, assets) matrix (units in the module docstring).

    ``close``, ``returns`` (simple daily), ``volume`` and ``market_cap`` are (dates, assets) float
    matrices with NaN where unknown; ``dollar_volume`` defaults to close × volume. Infinite values
    (e.g. a ratio over a flat window) become NaN.
    """
    close = np.asarray(close, dtype=np.float64)
    returns = np.asarray(returns, dtype=np.float64)
    volume = np.asarray(volume, dtype=np.float64)
    market_cap = np.asarray(market_cap, dtype=np.float64)
    dollar_volume = close * volume if dollar_volume is None else np.asarray(dollar_volume, dtype=np.float64)
    market = market_return(returns)
    features: dict[str, np.ndarray] = {}
    for group in (
        _returns_features(close, returns, market),
        _risk_features(returns),
        _trend_features(close),
        _liquidity_features(returns, volume, dollar_volume, market_cap),
        _market_features(returns, market),
    ):
        for name, matrix in group.items():
            features[name] = np.where(np.isfinite(matrix), matrix, np.nan).astype(dtype, copy=False)
    return features


def price_features(panel: pd.DataFrame) -> pd.DataFrame:
    """Return the price-derived ``raw_*`` features (float32, units as documented) for each panel row.

    The result has the panel's index and row order. The panel must be validated
    (:func:`~crowdalpha.market.panel.validate_panel`).
    """
    grid = panel_grid(panel)
    if PRICE_COLUMN in panel.columns:
        close = grid.to_wide(panel[PRICE_COLUMN])
        dollar_volume = None
    else:
        returns_frame = pd.DataFrame(grid.to_wide(panel[RETURN_COLUMN]))
        close = close_from_returns(returns_frame).to_numpy()
        dollar_volume = grid.to_wide(panel["volume"])
    if RETURN_COLUMN in panel.columns:
        returns = grid.to_wide(panel[RETURN_COLUMN])
    else:
        returns = np.full_like(close, np.nan)
        returns[1:] = close[1:] / close[:-1] - 1.0
    matrices = price_feature_matrices(
        close,
        returns,
        grid.to_wide(panel["volume"]),
        grid.to_wide(panel["market_cap"]),
        dollar_volume=dollar_volume,
    )
    columns = {name: grid.to_rows(matrix) for name, matrix in matrices.items()}
    return pd.DataFrame(columns, index=panel.index)


def add_price_features(panel: pd.DataFrame, *, drop_constant: bool = True) -> pd.DataFrame:
    """Return the panel with the price-derived ``raw_*`` features appended as float32 columns.

    With ``drop_constant``, features that vary across assets on no date (e.g. the zero-return
    share of a market that never has a flat day) are left out, as the panel contract rejects them.
    """
    features = price_features(panel)
    clash = sorted(set(features.columns) & set(raw_feature_columns(panel)))
    if clash:
        raise PanelError(f"rule: raw feature names must be unique — the panel already has {clash[:5]}")
    if drop_constant:
        constant = constant_raw_features(pd.concat([panel[["date"]], features], axis=1))
        features = features.drop(columns=constant)
    return pd.concat([panel, features], axis=1)


_ONE = np.ones((2, 1))
PRICE_FEATURE_NAMES: tuple[str, ...] = tuple(price_feature_matrices(_ONE, _ONE, _ONE, _ONE))
"""Names of the price-derived features, in output order."""
