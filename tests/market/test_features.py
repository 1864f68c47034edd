"""Price-derived raw features: names, worked values, NaN on short history, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdalpha.market.features import (
    PRICE_FEATURE_NAMES,
    add_price_features,
    market_return,
    price_features,
    rolling,
    rolling_beta,
)
from crowdalpha.market.panel import PanelError, validate_panel, wide_matrix


@pytest.fixture(scope="module")
def features(panel) -> pd.DataFrame:
    return price_features(panel)


def _perturbed_after(panel: pd.DataFrame, cutoff: pd.Timestamp, seed: int = 1) -> pd.DataFrame:
    """Return the panel with close, volume and market cap scrambled on every date after ``cutoff``."""
    rng = np.random.default_rng(seed)
    later = (panel["date"] > cutoff).to_numpy()
    changed = panel.copy()
    for column in ("close", "volume", "market_cap"):
        values = changed[column].to_numpy(copy=True)
        values[later] *= rng.uniform(0.5, 2.0, later.sum())
        changed[column] = values
    return changed


def test_at_least_25_float32_raw_features_aligned_with_the_panel(panel, features):
    assert len(PRICE_FEATURE_NAMES) >= 25
    assert list(features.columns) == list(PRICE_FEATURE_NAMES)
    assert all(name.startswith("raw_") for name in features.columns)
    assert (features.dtypes == np.float32).all()
    assert features.index.equals(panel.index)
    late = features[(panel["date"] == panel["date"].iloc[-1]) & (panel["asset"] != "A039")]
    assert late.notna().all().all(), late.columns[late.isna().any()].tolist()


@pytest.mark.parametrize("cutoff_position", [30, 150, 260])
def test_no_look_ahead_prices_after_t_change_no_feature_up_to_t(panel, features, cutoff_position):
    cutoff = pd.DatetimeIndex(panel["date"].unique())[cutoff_position]
    scrambled = price_features(_perturbed_after(panel, cutoff))
    upto = (panel["date"] <= cutoff).to_numpy()
    np.testing.assert_array_equal(scrambled[upto].to_numpy(), features[upto].to_numpy())
    changed = ~np.isclose(scrambled[~upto].to_numpy(), features[~upto].to_numpy(), equal_nan=True)
    assert changed.any(axis=0).sum() >= 25, "the perturbation should reach later features"


def _one_asset(panel: pd.DataFrame, features: pd.DataFrame, asset: str = "A003") -> pd.DataFrame:
    rows = (panel["asset"] == asset).to_numpy()
    return pd.concat([panel[rows], features[rows]], axis=1).set_index("date")


def test_window_returns_and_volatility_match_their_definitions(panel, features):
    one = _one_asset(panel, features)
    close = one["close"]
    np.testing.assert_allclose(one["raw_ret_5d"], close / close.shift(5) - 1, rtol=2e-6)
    np.testing.assert_allclose(one["raw_mom_12_1"], close.shift(20) / close.shift(250) - 1, rtol=2e-6)
    daily = close.pct_change()
    np.testing.assert_allclose(one["raw_vol_20d"].iloc[40:], daily.rolling(20).std().iloc[40:], rtol=2e-6)
    np.testing.assert_allclose(
        one["raw_dist_high_250"].iloc[260:],
        (close / close.rolling(250).max() - 1).iloc[260:],
        rtol=2e-5,
        atol=1e-7,
    )
    assert (one["raw_dist_high_250"].dropna() <= 0).all()
    assert (one["raw_dist_low_250"].dropna() >= 0).all()
    assert one["raw_rsi_14"].dropna().between(0, 1).all()
    assert one["raw_range_position_60"].dropna().between(0, 1).all()
    dollar = (close * one["volume"]).rolling(20, min_periods=16).mean()
    np.testing.assert_allclose(one["raw_log_dollar_volume_20"], np.log(dollar), rtol=2e-6)


def test_beta_is_the_regression_slope_on_the_equal_weighted_market(panel, features):
    returns = wide_matrix(panel, "close").pct_change(fill_method=None)
    market = pd.Series(market_return(returns.to_numpy()), index=returns.index)
    one = _one_asset(panel, features)
    window = slice(len(market) - 60, len(market))
    slope = np.polyfit(market.iloc[window], returns["A003"].iloc[window], 1)[0]
    assert one["raw_beta_60"].iloc[-1] == pytest.approx(slope, rel=1e-4)
    residual = returns["A003"].iloc[window] - slope * market.iloc[window]
    assert one["raw_resid_vol_60"].iloc[-1] == pytest.approx(residual.std(ddof=0), rel=1e-3)


def test_features_are_nan_while_history_is_too_short(panel, features):
    one = _one_asset(panel, features)
    assert one["raw_ret_5d"].iloc[:5].isna().all() and one["raw_ret_5d"].iloc[5:].notna().all()
    assert one["raw_ret_250d"].iloc[:250].isna().all() and one["raw_ret_250d"].iloc[250:].notna().all()
    # window statistics need 80 % of the window: 16 of 20 returns, the first return being on day 1
    assert one["raw_vol_20d"].iloc[:16].isna().all() and one["raw_vol_20d"].iloc[16:].notna().all()
    listed_late = _one_asset(panel, features, "A039")
    assert listed_late["raw_ret_60d"].iloc[:60].isna().all()
    assert listed_late["raw_ret_60d"].iloc[60:].notna().all()


def test_a_return_only_panel_gives_the_same_return_features(panel, features):
    returns = wide_matrix(panel, "close").pct_change(fill_method=None)
    rows = returns.stack(future_stack=True).rename("return").reset_index()
    as_returns = validate_panel(panel.drop(columns="close").merge(rows, on=["date", "asset"]))
    from_returns = price_features(as_returns)
    # compounding starts after the first (unknown) return: compare once every window is full
    settled = ((panel["date"] > panel["date"].unique()[70]) & (panel["asset"] != "A039")).to_numpy()
    for name in (
        "raw_ret_20d",
        "raw_vol_60d",
        "raw_beta_60",
        "raw_rsi_14",
        "raw_price_to_ma_20",
        "raw_skew_60d",
    ):
        np.testing.assert_allclose(
            from_returns[name][settled], features[name][settled], rtol=1e-4, atol=1e-6, err_msg=name
        )


def test_added_features_pass_validation_and_refuse_duplicates(panel):
    with_features = add_price_features(panel)
    validate_panel(with_features)
    # a market that never has a flat day gives a zero-return share that is 0 everywhere: left out
    assert "raw_zero_return_share_60" not in with_features.columns
    assert "raw_zero_return_share_60" in add_price_features(panel, drop_constant=False).columns
    with pytest.raises(PanelError, match="raw feature names must be unique"):
        add_price_features(with_features)


@pytest.mark.parametrize("rows", [5, 70, 200])
@pytest.mark.parametrize("statistic", ["mean", "std"])
def test_the_last_rows_of_a_rolling_statistic_equal_the_rolled_ones(rows, statistic):
    rng = np.random.default_rng(rows)
    values = rng.normal(0.0, 0.02, (rows, 30))
    values[rng.random(values.shape) < 0.15] = np.nan  # gaps: windows short of 80 % observed are NaN
    values[:, 0] = np.nan
    for last in (1, 3, rows):
        expected = rolling(values, 60, statistic)[-last:]
        got = rolling(values, 60, statistic, last=last)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-15)


def test_the_last_rows_of_a_rolling_beta_equal_the_rolled_ones():
    rng = np.random.default_rng(4)
    returns = rng.normal(0.0, 0.02, (120, 25))
    returns[rng.random(returns.shape) < 0.1] = np.nan
    market = np.nanmean(returns, axis=1)
    expected = rolling_beta(returns, market, 60)
    got = rolling_beta(returns, market, 60, last=4)
    for name, matrix in expected.items():
        np.testing.assert_allclose(got[name], matrix[-4:], rtol=1e-9, atol=1e-12)
