"""The synthetic market: contract, determinism, listings, hidden alpha that features carry, crypto tokens."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from crowdalpha.market import synthetic
from crowdalpha.market.panel import PANEL_COLUMNS, validate_panel
from crowdalpha.market.synthetic import (
    forward_sum,
    generate_market,
    read_market,
    truth_paths,
    write_market,
)

ASSETS, DAYS = 200, 400


@pytest.fixture(scope="module")
def equity() -> synthetic.SyntheticMarket:
    return generate_market(ASSETS, DAYS, seed=1)


@pytest.fixture(scope="module")
def crypto() -> synthetic.SyntheticMarket:
    return generate_market(ASSETS, DAYS, seed=2, kind="crypto")


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spearman_by_date(dates: pd.Series, left, right) -> pd.Series:
    """Per-date Spearman correlation of two columns, rows with NaN left out."""
    frame = pd.DataFrame(
        {"date": np.asarray(dates), "left": np.asarray(left, float), "right": np.asarray(right, float)}
    )
    frame = frame.dropna()
    ranks = frame.groupby("date")[["left", "right"]].rank()
    ranks -= ranks.groupby(frame["date"]).transform("mean")
    by_date = frame["date"]
    covariance = (ranks["left"] * ranks["right"]).groupby(by_date).sum()
    scale = np.sqrt(
        (ranks["left"] ** 2).groupby(by_date).sum() * (ranks["right"] ** 2).groupby(by_date).sum()
    )
    return covariance / scale


# --------------------------------------------------------------------------------------- determinism


def test_same_seed_writes_identical_bytes_and_another_seed_does_not(tmp_path):
    paths = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        path = tmp_path / f"{name}.parquet"
        write_market(generate_market(40, 120, seed=seed, n_raw_features=12), path)
        paths.append(path)
    first, second, other = paths
    assert digest(first) == digest(second)
    for truth_first, truth_second in zip(truth_paths(first), truth_paths(second), strict=True):
        assert digest(truth_first) == digest(truth_second)
    assert digest(first) != digest(other)


def test_written_market_reads_back_equal(tmp_path, crypto):
    path = tmp_path / "market.parquet"
    write_market(crypto, path)
    back = read_market(path)
    pd.testing.assert_frame_equal(back.panel, crypto.panel)
    pd.testing.assert_frame_equal(back.truth.signals, crypto.truth.signals)
    pd.testing.assert_frame_equal(back.truth.assets, crypto.truth.assets)
    pd.testing.assert_frame_equal(back.truth.strengths, crypto.truth.strengths)
    pd.testing.assert_frame_equal(back.truth.factor_returns, crypto.truth.factor_returns)
    assert back.truth.params == json.loads(json.dumps(crypto.truth.params))


def test_a_failed_write_leaves_no_file(tmp_path, equity, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(synthetic, "_truth_document", broken)
    with pytest.raises(OSError, match="disk full"):
        write_market(equity, tmp_path / "market.parquet")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------- contract


def test_panel_follows_the_contract(equity):
    panel = equity.panel
    assert tuple(panel.columns[: len(PANEL_COLUMNS)]) == PANEL_COLUMNS
    raw = [c for c in panel.columns if c.startswith("raw_")]
    assert raw == [f"raw_{i:03d}" for i in range(120)] and len(panel.columns) == len(PANEL_COLUMNS) + 120
    assert panel["date"].dtype == "datetime64[ns]"
    for column in ("asset", "ticker", "country", "sector", "industry"):
        assert pd.api.types.is_string_dtype(panel[column]), column
    assert all(panel[c].dtype == np.float64 for c in ("close", "volume", "market_cap"))
    assert all(panel[c].dtype == np.float32 for c in raw)
    assert not panel.duplicated(["date", "asset"]).any()
    assert panel.equals(panel.sort_values(["date", "asset"], kind="stable"))
    assert (panel["date"].dt.day_of_week < 5).all()
    assert panel["country"].nunique() >= 5 and panel["sector"].nunique() == 11
    assert panel["industry"].nunique() > 11
    assert (panel.groupby("date").size() == ASSETS).all()
    assert panel.equals(validate_panel(panel))


def test_prices_and_daily_volatility_are_realistic(equity):
    panel, truth = equity.panel, equity.truth.signals
    assert np.isfinite(panel["close"]).all() and (panel["close"] > 0).all()
    assert (panel["market_cap"] > 0).all() and (panel["volume"] >= 0).all()
    daily_vol = truth.groupby("asset")["return"].std().median()
    assert 0.01 < daily_vol < 0.03
    returns = truth["return"].dropna()
    excess_kurtosis = ((returns - returns.mean()) ** 4).mean() / returns.var() ** 2 - 3
    assert excess_kurtosis > 1  # fat tails


def test_rows_exist_exactly_while_an_asset_is_listed(equity):
    panel, assets = equity.panel, equity.truth.assets.set_index("asset")
    dates = pd.DatetimeIndex(np.sort(panel["date"].unique()))
    spans = panel.groupby("asset")["date"].agg(["min", "max", "size"])
    assert set(spans.index) == set(assets.index)
    assert (spans["min"] == assets.loc[spans.index, "first_date"]).all()
    assert (spans["max"] == assets.loc[spans.index, "last_date"]).all()
    expected_rows = dates.searchsorted(spans["max"]) - dates.searchsorted(spans["min"]) + 1
    assert (spans["size"].to_numpy() == expected_rows).all()  # no holes while listed
    delisted = assets["delisting_date"].notna()
    assert delisted.any() and (~assets["listed_before_start"]).any()
    assert (assets.loc[delisted, "delisting_date"] == assets.loc[delisted, "last_date"]).all()
    assert (assets["listing_date"] <= assets["first_date"]).all()


def test_truth_rows_align_with_the_panel(equity):
    truth = equity.truth
    assert truth.signals[["date", "asset"]].equals(equity.panel[["date", "asset"]])
    assert {"signal_0", "alpha_score", "alpha_return", "residual_return", "beta", "momentum"} <= set(
        truth.signals
    )
    assert len(truth.strengths) == DAYS and len(truth.factor_returns) == DAYS
    assert {"market", "size", "value", "momentum", "low_volatility"} <= set(truth.factor_returns)
    assert set(truth.features["kind"]) == {"technical", "signal_view", "nuisance_view"}


def test_alpha_strengths_drift_and_switch_regime():
    strengths = generate_market(30, 2500, seed=3, n_raw_features=4).truth.strengths
    values = strengths.filter(like="strength_")
    assert (values.std() > 0.05).all()
    regimes = strengths.filter(like="regime_")
    assert set(np.unique(regimes.to_numpy())) - {"on"}, "some signal leaves the 'on' regime in 10 years"
    assert (regimes.iloc[0] == "on").all()


# --------------------------------------------------------------------------------------- hidden alpha


def test_truth_signal_predicts_future_residual_returns(equity):
    panel, truth = equity.panel, equity.truth.signals
    for horizon in (20, 60):
        alpha_part = forward_sum(truth, horizon, "alpha_return", lag=2)
        assert spearman_by_date(panel["date"], truth["alpha_score"], alpha_part).mean() > 0.5
    residual = forward_sum(truth, 20, "residual_return", lag=2)
    correlation = spearman_by_date(panel["date"], truth["alpha_score"], residual).mean()
    assert 0.02 < correlation < 0.2  # clearly there, yet far from trivial


def test_raw_features_carry_the_hidden_alpha_out_of_sample(equity):
    panel, truth = equity.panel, equity.truth.signals
    raw = [c for c in panel.columns if c.startswith("raw_")]
    features = np.nan_to_num(panel[raw].groupby(panel["date"]).rank(pct=True).to_numpy() - 0.5)
    alpha_part = forward_sum(truth, 20, "alpha_return", lag=2)
    target = alpha_part.groupby(panel["date"]).rank(pct=True).to_numpy() - 0.5
    dates = np.sort(panel["date"].unique())
    train = (panel["date"] < dates[len(dates) // 2 - 25]).to_numpy() & np.isfinite(target)  # embargo
    test = (panel["date"] >= dates[len(dates) // 2]).to_numpy()
    weights = np.linalg.lstsq(features[train], target[train], rcond=None)[0]
    prediction = features @ weights
    on_alpha = spearman_by_date(panel["date"][test], prediction[test], alpha_part[test]).mean()
    residual = forward_sum(truth, 20, "residual_return", lag=2)
    on_residual = spearman_by_date(panel["date"][test], prediction[test], residual[test]).mean()
    assert on_alpha > 0.2
    assert on_residual > 0


def test_technical_features_use_only_past_prices(equity):
    panel, features = equity.panel, equity.truth.features.set_index("description")
    column = features.loc[["return_20d", "volatility_60d", "distance_from_high_250d"], "feature"]
    rng = np.random.default_rng(0)
    for asset in rng.choice(panel["asset"].unique(), 12, replace=False):
        rows = panel[panel["asset"] == asset].reset_index(drop=True)
        log_close = np.log(rows["close"].to_numpy())
        returns = np.r_[np.nan, np.diff(log_close)]
        for i in rng.integers(60, len(rows), 4) if len(rows) > 60 else []:
            history, past = log_close[: i + 1], returns[max(1, i - 59) : i + 1]
            assert rows.at[i, column["return_20d"]] == pytest.approx(history[-1] - history[-21], abs=1e-5)
            assert rows.at[i, column["volatility_60d"]] == pytest.approx(past.std(), rel=1e-3)
            distance = history[-1] - history[-250:].max()
            assert rows.at[i, column["distance_from_high_250d"]] == pytest.approx(distance, abs=1e-5)


def test_forward_sum_adds_the_next_days_of_the_same_asset():
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-02", "2020-01-02", "2020-01-03"]),
            "asset": ["A", "B", "A", "B", "A"],
            "residual_return": [1.0, 10.0, 2.0, 20.0, 3.0],
        }
    )
    assert forward_sum(frame, 2).tolist()[0] == 5.0
    assert np.isnan(forward_sum(frame, 2)).tolist() == [False, True, True, True, True]  # B delists
    assert forward_sum(frame, 1, lag=1).tolist()[0] == 3.0


# --------------------------------------------------------------------------------------- crypto


def test_crypto_market_has_the_tokens_universe_rules_need(crypto):
    panel, assets = crypto.panel, crypto.truth.assets
    per_date = panel.groupby("date")["ticker"].agg(set)
    assert all({"BTC", "ETH", "NMR"} <= tickers for tickers in per_date)
    assert {"stablecoin", "wrapped", "liquid-staking"} <= set(panel["industry"])
    assert (panel["country"] == "XX").all() and (panel["sector"] == "crypto").all()
    assert assets["is_stablecoin"].any() and assets["is_wrapped"].any() and assets["is_liquid_staking"].any()
    assert assets["is_young"].any() and assets["is_illiquid"].any()
    assert (assets["zero_market_cap"] != "never").any() and panel["market_cap"].isna().any()
    duplicated = panel.groupby(["date", "ticker"])["asset"].nunique()
    assert (duplicated > 1).any() and (assets["duplicate_symbol_of"] != "").any()
    dollar_volume = (panel["close"] * panel["volume"]).groupby(panel["asset"]).median()
    illiquid = assets.loc[assets["is_illiquid"], "asset"]
    assert dollar_volume[illiquid].max() < 500_000 < dollar_volume.median()


def test_crypto_prices_pegs_and_near_duplicates(crypto):
    panel, assets, truth = crypto.panel, crypto.truth.assets, crypto.truth.signals
    returns = truth.pivot(index="date", columns="asset", values="return")
    normal = assets.loc[assets["category"].isin(["layer1", "defi", "meme", "gaming"]), "asset"]
    assert 0.035 < returns[normal].std().median() < 0.09
    stable = panel[panel["asset"].isin(assets.loc[assets["is_stablecoin"], "asset"])]
    assert stable["close"].between(0.9, 1.1).all()
    for _, token in assets[assets["base_asset"] != ""].iterrows():
        assert returns[token["asset"]].corr(returns[token["base_asset"]]) > 0.98
