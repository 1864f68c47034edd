"""The Crypto product: every universe rule with its reason, BTC/ETH/NMR kept, top N, files, targets."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crowdalpha.datasets.crypto import (
    DEFAULT_RULES,
    PRIVATE_FILES,
    PUBLISHED_FILES,
    RULE_ORDER,
    CryptoUniverseRules,
    build_crypto,
    pairwise_correlation,
    select_crypto_universe,
)
from crowdalpha.datasets.errors import DatasetError
from crowdalpha.market.targets import bin_counts, bin_cross_sections

DAYS = 260
TOP_N = 20
N_NORMAL = 24


def token_panel(seed: int = 0) -> pd.DataFrame:
    """Return a token panel (business days) where each special token breaks exactly one universe rule.

    ``N00``…``N23`` are ordinary tokens (independent returns, falling market caps). The rest, at the
    last date: ETH moves with BTC (would be ``correlated``) and NMR trades thinly (would fail
    ``min_volume``) — both must be kept anyway; ``FAKE`` also calls itself BTC; see ``EXPECTED``.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=DAYS)
    tokens: list[dict] = []

    def token(asset, symbol, cap, *, industry="defi", returns=None, turnover=0.02, first=0, cap_nan=0):
        returns = rng.normal(0.001, 0.03, DAYS) if returns is None else returns
        close = 10.0 * np.exp(np.cumsum(returns))
        caps = cap * close / close[-1]
        if cap_nan:
            caps[-cap_nan:] = np.nan
        tokens.append(
            dict(
                asset=asset,
                ticker=symbol,
                industry=industry,
                close=close,
                cap=caps,
                turnover=turnover,
                first=first,
            )
        )
        return returns

    btc = token("C_BTC", "BTC", 5e11)
    token("C_ETH", "ETH", 2e11, returns=btc + rng.normal(0, 0.001, DAYS))
    token("C_NMR", "NMR", 1e8, turnover=0.0005)
    normal = [token(f"N{i:02d}", f"N{i:02d}", 5e9 * 0.85**i) for i in range(N_NORMAL)]
    token("Z_FAKE", "BTC", 1.2e9)
    token("S_USDT", "USDT", 8e10, industry="stablecoin", returns=rng.normal(0, 1e-3, DAYS))
    token("S_WRAP", "WXYZ", 4e9, industry="Wrapped")
    token("S_LST", "STXYZ", 3e9, industry="liquid_staking")
    token("S_FLAT", "FLAT", 3e9, returns=np.zeros(DAYS))
    token("S_YOUNG", "YOUNG", 3e9, first=100)
    token("S_NEWBIE", "NEWB", 3e9, first=DAYS - 20)
    token("S_NOCAP", "NOCAP", 3e9, cap_nan=5)
    token("S_THIN", "THIN", 3e9, turnover=1e-5)
    token("S_AAA1", "AAA", 2e9)
    token("S_AAA2", "AAA", 1.8e9)
    token("S_TWIN", "TWIN", 1.5e9, returns=normal[0] + rng.normal(0, 0.002, DAYS))
    token("S_NOSYM", None, 3e9)
    frames = []
    for t in tokens:
        days = np.arange(t["first"], DAYS)
        frames.append(
            pd.DataFrame(
                {
                    "date": dates[days],
                    "asset": t["asset"],
                    "ticker": t["ticker"],
                    "country": "XX",
                    "sector": "crypto",
                    "industry": t["industry"],
                    "close": t["close"][days],
                    "volume": t["turnover"] * t["cap"][days] / t["close"][days],
                    "market_cap": t["cap"][days],
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame["volume"] = frame["volume"].fillna(1e6)
    return frame.sort_values(["date", "asset"], kind="stable").reset_index(drop=True)


EXPECTED = {
    "S_NOSYM": "missing_symbol",
    "S_USDT": "excluded_category",
    "S_WRAP": "excluded_category",
    "S_LST": "excluded_category",
    "S_NEWBIE": "min_data_points",
    "S_YOUNG": "min_age",
    "S_NOCAP": "zero_market_cap",
    "S_THIN": "min_volume",
    "S_FLAT": "min_abs_mean_return",
    "Z_FAKE": "duplicate_symbol",
    "S_AAA2": "duplicate_symbol",
    "S_TWIN": "correlated",
    "C_BTC": "always_keep",
    "C_ETH": "always_keep",
    "C_NMR": "always_keep",
    "S_AAA1": "kept",
}


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return token_panel()


@pytest.fixture(scope="module")
def universe(panel) -> pd.DataFrame:
    return select_crypto_universe(panel, panel["date"].max(), top_n=TOP_N).set_index("asset")


# ------------------------------------------------------------------------------------- the rules


def test_each_rule_drops_the_token_that_breaks_it_with_its_reason(universe):
    assert universe.loc[list(EXPECTED), "reason"].to_dict() == EXPECTED
    assert set(universe["reason"]) - {"kept", "always_keep"} == set(RULE_ORDER)
    assert (universe["kept"] == universe["reason"].isin(["kept", "always_keep"])).all()
    details = universe["detail"]
    assert details["S_USDT"] == "category 'stablecoin'"
    assert details["S_NEWBIE"] == "20 < 30" and details["S_YOUNG"].endswith("days < 730")
    assert details["S_THIN"].endswith("< $500,000")
    assert details["S_AAA2"] == "S_AAA1 has a larger market cap" and details["Z_FAKE"].startswith("C_BTC")
    assert details["S_TWIN"].endswith("with N00 (N00)") and float(details["S_TWIN"].split()[0]) >= 0.95


def test_btc_eth_nmr_are_kept_even_when_they_break_a_rule(panel, universe):
    assert universe.loc[["C_BTC", "C_ETH", "C_NMR"], "kept"].all()
    unprotected = select_crypto_universe(
        panel, panel["date"].max(), rules=dataclasses.replace(DEFAULT_RULES, always_keep=(), top_n=TOP_N)
    ).set_index("asset")
    assert unprotected.loc["C_ETH", "reason"] == "correlated"
    assert unprotected.loc["C_ETH", "detail"].endswith("with BTC (C_BTC)")
    assert unprotected.loc["C_NMR", "reason"] == "min_volume"
    assert unprotected.loc["Z_FAKE", "reason"] == "duplicate_symbol"


def test_top_n_keeps_the_largest_survivors_and_counts_the_protected(universe):
    kept = universe[universe["kept"]]
    assert len(kept) == TOP_N and kept["symbol"].is_unique
    cut = universe[universe["reason"] == "top_n"]
    assert len(cut) == N_NORMAL + 1 - (TOP_N - 3)
    assert kept.loc[kept["reason"] == "kept", "market_cap"].min() > cut["market_cap"].max()
    assert cut["detail"].iloc[0] == f"rank {TOP_N + 1} > {TOP_N}"
    assert list(universe["market_cap"].dropna()) == sorted(universe["market_cap"].dropna(), reverse=True)


def test_rules_are_data(panel):
    day = panel["date"].max()
    loose = dataclasses.replace(DEFAULT_RULES, min_volume_usd=0.0, min_age_days=0, excluded_categories=())
    universe = select_crypto_universe(panel, day, rules=loose, top_n=100).set_index("asset")
    assert universe.loc[["S_THIN", "S_YOUNG", "S_WRAP", "S_LST", "S_USDT"], "kept"].all()
    strict = dataclasses.replace(DEFAULT_RULES, min_abs_mean_return=1e-3)
    universe = select_crypto_universe(panel, day, rules=strict, top_n=100).set_index("asset")
    flat = universe["mean_return"].abs() < 1e-3
    first_rules = RULE_ORDER[: RULE_ORDER.index("min_abs_mean_return") + 1]
    assert flat[universe.index.str.startswith("N")].any()
    assert universe.loc[flat, "reason"].isin([*first_rules, "always_keep"]).all()
    with pytest.raises(DatasetError, match="rule: top_n must be ≥ 1"):
        CryptoUniverseRules(top_n=0)
    with pytest.raises(DatasetError, match=r"rule: max_correlation lies in \(0, 1\]"):
        CryptoUniverseRules(max_correlation=1.5)


def test_listing_dates_override_the_first_row_for_the_age_rule(panel):
    day = panel["date"].max()
    recent = pd.Series({"N01": day - pd.Timedelta(days=100)})
    universe = select_crypto_universe(panel, day, top_n=TOP_N, listing_dates=recent).set_index("asset")
    assert universe.loc["N01", "reason"] == "min_age"
    assert np.isnan(universe.loc["N02", "age_days"])  # trading since the panel's first day: old enough


def test_the_universe_of_a_date_reads_no_later_rows(panel):
    day = panel["date"].unique()[200]
    later = panel["date"] > day
    perturbed = panel.copy()
    perturbed.loc[later, "close"] *= np.random.default_rng(1).uniform(0.5, 2, int(later.sum()))
    perturbed.loc[later, "market_cap"] = np.nan
    pd.testing.assert_frame_equal(
        select_crypto_universe(panel, day, top_n=TOP_N), select_crypto_universe(perturbed, day, top_n=TOP_N)
    )


def test_pairwise_correlation_handles_missing_values():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((50, 3))
    x[:, 2] = x[:, 0] * 2 + 1
    gappy = x.copy()
    gappy[:10, 1] = np.nan
    full = pairwise_correlation(x, 30)
    np.testing.assert_allclose(full, np.corrcoef(x.T), atol=1e-12)
    partial = pairwise_correlation(gappy, 30)
    np.testing.assert_allclose(partial[0, 1], np.corrcoef(x[10:, 0], x[10:, 1])[0, 1], atol=1e-12)
    np.testing.assert_allclose(partial[0, 2], 1.0, atol=1e-12)
    assert np.isnan(pairwise_correlation(gappy, 45)[0, 1])


def test_bad_dates_are_rejected(panel):
    with pytest.raises(DatasetError, match="rule: the date must be a trading date"):
        select_crypto_universe(panel, "2022-01-08")


# ------------------------------------------------------------------------------------------ build


@pytest.fixture(scope="module")
def built(panel, tmp_path_factory):
    root = tmp_path_factory.mktemp("crypto")
    return build_crypto(panel, root / "public", private_dir=root / "private", top_n=TOP_N)


def read(directory: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(directory / f"{name}.parquet")


def test_files_and_columns_are_as_documented(built, panel, universe):
    version = built.version_dir
    assert sorted(p.name for p in version.iterdir()) == sorted(PUBLISHED_FILES)
    assert sorted(p.name for p in built.private_dir.iterdir()) == sorted(PRIVATE_FILES)
    features = built.features
    assert "feature_bollinger_20d" in features and "feature_close_avg_60d" in features
    targets, train = read(version, "train_targets"), read(version, "train")
    live, live_universe = read(version, "live"), read(version, "live_universe")
    assert list(targets.columns) == ["symbol", "date", "target"]
    assert list(train.columns) == ["symbol", "date", *features, "target"]
    assert list(live.columns) == ["symbol", "date", *features]
    assert list(live_universe.columns) == ["symbol"]
    pd.testing.assert_frame_equal(train[["symbol", "date", "target"]], targets)
    assert targets["target"].dtype == np.float32 and not targets.duplicated(["date", "symbol"]).any()
    assert set(np.unique(train[features].to_numpy())) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert set(targets["date"].dt.day_name()) == {"Friday"}
    assert targets["date"].nunique() == built.dates and len(targets) == built.rows
    assert list(live_universe["symbol"]) == sorted(universe.loc[universe["kept"], "symbol"])
    assert list(live["symbol"]) == list(live_universe["symbol"])
    assert set(live["date"]) == {panel["date"].max()}
    report = read(built.private_dir, "live_universe_report").set_index("asset")
    pd.testing.assert_series_equal(report["reason"], universe["reason"], check_dtype=False)


def test_targets_are_20d2l_returns_binned_over_each_dates_universe(built, panel):
    targets = read(built.version_dir, "train_targets")
    close = panel.pivot(index="date", columns="asset", values="close")
    for date in targets["date"].unique()[[2, -1]]:
        members = select_crypto_universe(panel, date, top_n=TOP_N)
        members = members[members["kept"]].set_index("asset").sort_index()
        p = close.index.get_loc(date)
        forward = close.iloc[p + 22] / close.iloc[p + 2] - 1.0
        expected = bin_cross_sections(forward.loc[members.index].to_numpy())[0]
        got = targets[targets["date"] == date].set_index("symbol")["target"]
        np.testing.assert_array_equal(got.loc[members["symbol"]].to_numpy(), expected.astype(np.float32))
        counts = [int((got == b).sum()) for b in (0.0, 0.25, 0.5, 0.75, 1.0)]
        assert tuple(counts) == bin_counts(len(got))
    # the first weeks (fewer than 10 tokens with 30 days of history) are not published
    assert targets["date"].min() > panel["date"].min() + pd.Timedelta(days=30)
    assert targets.groupby("date").size().min() >= 10


def test_features_are_quintiles_over_the_universe(built):
    live = read(built.version_dir, "live")
    counts = live["feature_ret_20d"].value_counts().sort_index()
    assert list(counts) == [len(live) // 5] * 5


def test_same_panel_gives_identical_bytes(built, panel, tmp_path):
    again = build_crypto(panel, tmp_path / "public", private_dir=tmp_path / "private", top_n=TOP_N)

    def digest(directory: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}

    assert digest(again.version_dir) == digest(built.version_dir)
    assert digest(again.private_dir) == digest(built.private_dir)


def test_bad_inputs_raise_a_rule_and_leave_nothing(panel, tmp_path):
    with pytest.raises(DatasetError, match="rule: required columns must be present"):
        build_crypto(panel.drop(columns="market_cap"), tmp_path / "a")
    with pytest.raises(DatasetError, match="rule: frequency is"):
        build_crypto(panel, tmp_path / "b", frequency="hourly")
    assert not (tmp_path / "b").exists()
    with pytest.raises(DatasetError, match="rule: target_neutral_to is one of"):
        build_crypto(panel, tmp_path / "c", target_neutral_to="everything")


# ------------------------------------------------------------------------------ synthetic market


def test_synthetic_crypto_market_universe_obeys_the_rules(tmp_path):
    synthetic = pytest.importorskip("crowdalpha.market.synthetic")
    market = synthetic.generate_market(assets=120, days=600, seed=5, kind="crypto", n_raw_features=4)
    truth = market.truth.assets.set_index("asset")
    day = market.panel["date"].max()
    universe = select_crypto_universe(
        market.panel, day, top_n=60, listing_dates=truth["listing_date"]
    ).set_index("asset")
    flags = truth.loc[universe.index]
    kept = universe["kept"]
    assert set(universe.loc[kept, "symbol"]) >= {"BTC", "ETH", "NMR"} and kept.sum() <= 60
    assert universe.loc[kept, "symbol"].is_unique
    special = flags["is_stablecoin"] | flags["is_wrapped"] | flags["is_liquid_staking"]
    assert not (kept & special).any() and not (kept & flags["is_young"]).any()
    assert (universe.loc[special, "reason"] == "excluded_category").all()
    assert (universe.loc[flags["is_young"] & ~special, "reason"].isin(["min_data_points", "min_age"])).all()
    at_day = market.panel[market.panel["date"] == day].set_index("asset")
    assert at_day.loc[universe.index[kept], "market_cap"].gt(0).all()
    assert {"excluded_category", "min_age", "min_volume", "zero_market_cap"} <= set(universe["reason"])
    report = build_crypto(market.panel, tmp_path / "out", top_n=60, listing_dates=truth["listing_date"])
    assert report.live_symbols == kept.sum() and report.rows > 0
