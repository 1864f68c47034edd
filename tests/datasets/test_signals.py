"""The Signals product: files and keys, exact neutralisers, sample weights, any-date risk model."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crowdalpha.datasets.errors import DatasetError
from crowdalpha.datasets.signals import (
    PRIVATE_FILES,
    PUBLISHED_FILES,
    build_signals,
    composite_id,
    figi_check_digit,
    neutralizers_and_sample_weights,
    numerai_tickers,
    weighted_orthonormal_basis,
)
from crowdalpha.market.factors import factor_exposures
from crowdalpha.market.panel import validate_panel
from crowdalpha.scoring import alpha, generate_neutralized_weights

COUNTRIES = ("US", "GB", "JP")
SECTORS = ("Energy", "Financials", "Health Care", "Industrials", "Tech")
BINS = {0.0, 0.25, 0.5, 0.75, 1.0}


def random_walk_panel(n_assets: int = 40, n_days: int = 320, *, seed: int = 0) -> pd.DataFrame:
    """Return a market + sector factor random-walk panel on business days (as tests/market/conftest.py).

    The last asset lists a third of the way in, the second-to-last delists two thirds of the way in;
    ``raw_book_to_price`` gives the panel a value factor.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n_days)
    sector = rng.integers(0, len(SECTORS), n_assets)
    country = rng.integers(0, len(COUNTRIES), n_assets)
    beta = rng.uniform(0.5, 1.5, n_assets)
    market = rng.normal(0.0003, 0.01, n_days)
    sector_moves = rng.normal(0.0, 0.006, (n_days, len(SECTORS)))
    idio = rng.standard_t(5, (n_days, n_assets)) * rng.uniform(0.008, 0.03, n_assets)
    close = rng.uniform(5, 200, n_assets) * np.exp(
        np.cumsum(market[:, None] * beta + sector_moves[:, sector] + idio, axis=0)
    )
    shares = rng.lognormal(17, 1.0, n_assets)
    volume = rng.lognormal(12, 0.7, (n_days, n_assets)) * (shares / shares.mean())
    present = np.ones((n_days, n_assets), dtype=bool)
    present[: n_days // 3, -1] = False
    present[2 * n_days // 3 :, -2] = False
    day, asset = np.nonzero(present)
    return pd.DataFrame(
        {
            "date": dates[day],
            "asset": [f"A{a:03d}" for a in asset],
            "ticker": [f"T{a}" for a in asset],
            "country": np.asarray(COUNTRIES)[country[asset]],
            "sector": np.asarray(SECTORS)[sector[asset]],
            "industry": "ind",
            "close": close[day, asset],
            "volume": np.round(volume[day, asset]),
            "market_cap": close[day, asset] * shares[asset],
            "raw_book_to_price": rng.lognormal(0, 0.5, n_assets)[asset] + rng.normal(0, 0.01, day.size),
        }
    )


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return validate_panel(random_walk_panel())


@pytest.fixture(scope="module")
def built(panel, tmp_path_factory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("signals")
    report = build_signals(panel, root / "public", private_dir=root / "private")
    return report.version_dir, report.private_dir, report


def read(directory: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(directory / f"{name}.parquet")


def one_date(frame: pd.DataFrame, date: pd.Timestamp) -> pd.DataFrame:
    return frame[frame["date"] == date].set_index("numerai_ticker")


def raw_exposures(panel: pd.DataFrame, date: pd.Timestamp, tickers: pd.Index) -> np.ndarray:
    """Return the market room's exposures (styles, country and sector one-hots) of ``tickers`` at a date."""
    at_date = (panel["date"] == date).to_numpy()
    exposures = factor_exposures(panel)[at_date].set_index(numerai_tickers(panel)[at_date])
    return exposures.drop(columns=["date", "asset"]).loc[tickers].to_numpy(dtype=float)


# ------------------------------------------------------------------------------------ files, keys


def test_files_and_columns_are_as_documented(built, panel):
    version_dir, private_dir, report = built
    assert sorted(p.name for p in version_dir.iterdir()) == sorted(PUBLISHED_FILES)
    assert sorted(p.name for p in private_dir.iterdir()) == sorted(PRIVATE_FILES)
    features = [
        "feature_country",
        "feature_beta_factor",
        "feature_size_factor",
        "feature_momentum_factor",
        "feature_volatility_factor",
        "feature_value_factor",
        "feature_adv_20d_factor",
        "feature_rsi_14d_country_ranknorm",
        "feature_ret_20d_country_ranknorm",
        "feature_close_avg_60d_country_ranknorm",
    ]
    targets = ["target"] + [
        f"target_{name}_{h}"
        for name in ("raw_return", "market_neutral", "country_sector_neutral", "factor_neutral")
        for h in (20, 60)
    ]
    keys = ["date", "numerai_ticker", "composite_figi", "data_type"]
    assert report.features == features
    assert list(read(version_dir, "live").columns) == keys + features
    neutralizer_columns = [
        *(f"neutralizer_country_{c.lower()}" for c in sorted(COUNTRIES)),
        *("neutralizer_sector_" + s.lower().replace(" ", "_") for s in sorted(SECTORS)),
        *(f"neutralizer_{s}" for s in ("beta", "size", "momentum", "volatility", "value")),
    ]
    for split in ("train", "validation"):
        data = read(version_dir, split)
        assert list(data.columns) == keys + features + targets
        assert set(data["data_type"]) == {split}
        assert data["date"].dtype == "datetime64[ns]"
        assert all(data[c].dtype == np.float32 for c in features[1:] + targets)
        assert not data.duplicated(["date", "numerai_ticker"]).any()
        assert data["target"].notna().all() and set(data["target"].unique()) <= BINS
        ranks = data[features[1:]].to_numpy()
        assert np.nanmin(ranks) > 0 and np.nanmax(ranks) < 1
        assert (data["numerai_ticker"].str.split(" ").str[1] == data["feature_country"]).all()
        neutralizers = read(version_dir, f"{split}_neutralizer")
        weights = read(version_dir, f"{split}_sample_weights")
        assert list(neutralizers.columns) == ["date", "numerai_ticker", *neutralizer_columns]
        assert list(weights.columns) == ["date", "numerai_ticker", "sample_weights"]
        assert all(neutralizers[c].dtype == np.float64 for c in neutralizer_columns)
        for frame in (neutralizers, weights):
            pd.testing.assert_frame_equal(frame[["date", "numerai_ticker"]], data[["date", "numerai_ticker"]])


def test_dates_are_weekly_with_an_embargo_and_live_is_the_latest_date(built, panel):
    version_dir, _, report = built
    train, validation = read(version_dir, "train"), read(version_dir, "validation")
    live = read(version_dir, "live")
    for frame in (train, validation):
        assert set(frame["date"].dt.day_name()) == {"Friday"}
    gap_weeks = (validation["date"].min() - train["date"].max()).days // 7
    assert gap_weeks == report.embargo_eras + 1 and report.embargo_eras == 13
    assert list(live["date"].unique()) == [panel["date"].max()]
    assert len(live) == int((panel["date"] == panel["date"].max()).sum())
    assert report.rows == {"train": len(train), "validation": len(validation), "live": len(live)}


def test_numerai_ticker_is_ticker_and_country_and_composite_id_is_stable(built, panel):
    version_dir, private_dir, _ = built
    assert numerai_tickers(panel.head(3)).tolist() == [
        f"{t} {c}" for t, c in zip(panel["ticker"].head(3), panel["country"].head(3), strict=True)
    ]
    data = pd.concat([read(version_dir, s) for s in ("train", "validation", "live")])
    per_ticker = data.groupby("numerai_ticker")["composite_figi"].nunique()
    assert (per_ticker == 1).all() and data.groupby("composite_figi")["numerai_ticker"].nunique().max() == 1
    pattern = re.compile(r"^CXG[BCDFGHJKLMNPQRSTVWXYZ0-9]{8}[0-9]$")
    assert all(pattern.match(c) and figi_check_digit(c[:11]) == int(c[11]) for c in data["composite_figi"])
    tickers = read(private_dir, "tickers")
    assert (tickers["composite_figi"] == [composite_id(a) for a in tickers["asset"]]).all()
    assert figi_check_digit("BBG000BLNNH") == 6 and figi_check_digit("BBG000B9XRY") == 4  # real FIGIs
    assert composite_id("A000") == composite_id("A000") != composite_id("A001")


def test_missing_ticker_falls_back_to_asset_id():
    frame = pd.DataFrame({"asset": ["X1", "X2"], "ticker": [None, "ABC"], "country": ["US", "KR"]})
    assert numerai_tickers(frame).tolist() == ["X1 US", "ABC KR"]


# ------------------------------------------------------------------------- neutralisers, weights


def test_neutralizers_are_orthonormal_under_the_sample_weights_and_span_the_exposures(built, panel):
    version_dir, _, _ = built
    neutralizers = read(version_dir, "validation_neutralizer")
    weights = read(version_dir, "validation_sample_weights")
    for date in neutralizers["date"].unique()[::4]:
        frame = one_date(neutralizers, date).drop(columns="date")
        n = frame.to_numpy()
        v = one_date(weights, date)["sample_weights"].to_numpy()
        nonzero = np.abs(n).sum(axis=0) > 0
        np.testing.assert_allclose(n.T @ (v[:, None] * n), np.diag(nonzero.astype(float)), atol=1e-10)
        # as many directions as the raw exposures have (sector one-hots sum to the countries' constant;
        # momentum is all zero until 250 days of history exist), and the same span
        raw = raw_exposures(panel, date, frame.index)
        assert nonzero.sum() == np.linalg.matrix_rank(raw) == np.linalg.matrix_rank(np.hstack([raw, n]))


def test_neutralized_weights_have_no_exposure_to_any_neutralizer_or_raw_factor(built, panel):
    version_dir, _, _ = built
    neutralizers = read(version_dir, "validation_neutralizer")
    weights = read(version_dir, "validation_sample_weights")
    date = neutralizers["date"].unique()[-1]
    n = one_date(neutralizers, date).drop(columns="date")
    v = one_date(weights, date)["sample_weights"]
    rng = np.random.default_rng(1)
    signals = pd.DataFrame(rng.random((len(n), 4)), index=n.index, columns=list("abcd"))
    w = generate_neutralized_weights(signals, n, v)
    assert np.abs(w.to_numpy()).sum(axis=0).min() > 1.0  # not vacuous
    np.testing.assert_allclose(n.to_numpy().T @ w.to_numpy(), 0.0, atol=1e-10)
    # the same holds for the raw exposures of crowdalpha.market.factors, incl. the constant
    raw = raw_exposures(panel, date, w.index)
    np.testing.assert_allclose(raw.T @ w.to_numpy(), 0.0, atol=1e-9)
    np.testing.assert_allclose(w.sum().to_numpy(), 0.0, atol=1e-10)


def test_alpha_of_a_neutralizer_signal_or_target_is_zero(built, panel):
    version_dir, _, _ = built
    data = read(version_dir, "validation")
    neutralizers = read(version_dir, "validation_neutralizer")
    weights = read(version_dir, "validation_sample_weights")
    date = data["date"].unique()[3]
    rows, n = one_date(data, date), one_date(neutralizers, date).drop(columns="date")
    v = one_date(weights, date)["sample_weights"]
    target = rows["target"].astype(float)
    at_date = panel[panel["date"] == date]
    sector = pd.Series(at_date["sector"].to_numpy(), index=numerai_tickers(at_date).to_numpy()).loc[
        rows.index
    ]
    group_signals = pd.DataFrame(
        {
            "is_us": (rows["feature_country"] == "US").astype(float),
            "is_tech": (sector == "Tech").astype(float),
        }
    )
    np.testing.assert_allclose(alpha(group_signals, n, v, target).to_numpy(), 0.0, atol=1e-12)
    # any signal earns no alpha on a target made of neutraliser exposures
    rng = np.random.default_rng(2)
    signals = pd.DataFrame(rng.random((len(rows), 3)), index=rows.index, columns=["x", "y", "z"])
    signals["size"] = rows["feature_size_factor"]
    exposure_target = 0.3 * n["neutralizer_beta"] - n["neutralizer_size"] + n["neutralizer_sector_tech"]
    np.testing.assert_allclose(alpha(signals, n, v, exposure_target).to_numpy(), 0.0, atol=1e-12)
    # while a signal that knows the target does earn alpha
    assert alpha(rows[["target"]].astype(float), n, v, target).iloc[0] > 1e-3


def test_sample_weights_are_positive_mean_one_and_follow_sqrt_adv(built, panel):
    version_dir, _, _ = built
    weights = pd.concat([read(version_dir, f"{s}_sample_weights") for s in ("train", "validation")])
    assert (weights["sample_weights"] > 0).all()
    np.testing.assert_allclose(weights.groupby("date")["sample_weights"].mean(), 1.0, rtol=1e-12)
    date = weights["date"].unique()[-2]
    wide = (panel["close"] * panel["volume"]).groupby([panel["date"], panel["asset"]]).sum().unstack()
    adv = wide.where(wide.notna()).rolling(20, min_periods=1).mean().loc[date]
    at_date = panel[panel["date"] == date]
    root_adv = pd.Series(
        np.sqrt(adv.loc[at_date["asset"]].to_numpy()), index=numerai_tickers(at_date).to_numpy()
    )
    got = one_date(weights, date)["sample_weights"]
    expected = root_adv.loc[got.index]
    np.testing.assert_allclose(got.to_numpy(), (expected / expected.mean()).to_numpy(), rtol=1e-12)


def test_weighted_orthonormal_basis_zeroes_dependent_columns():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((30, 3))
    exposures = np.column_stack([x, x[:, 0] + 2 * x[:, 1], np.zeros(30)])
    weights = rng.uniform(0.5, 2.0, 30)
    n = weighted_orthonormal_basis(exposures, weights)
    assert np.abs(n[:, 3:]).max() == 0.0
    np.testing.assert_allclose(n[:, :3].T @ (weights[:, None] * n[:, :3]), np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match="positive"):
        weighted_orthonormal_basis(exposures, np.zeros(30))


# ----------------------------------------------------------------------------- any-date function


def test_any_date_risk_model_matches_the_published_files(built, panel):
    version_dir, private_dir, _ = built
    neutralizers = read(version_dir, "validation_neutralizer")
    weights = read(version_dir, "validation_sample_weights")
    date = neutralizers["date"].unique()[2]
    expected_n = one_date(neutralizers, date).drop(columns="date")
    n, v = neutralizers_and_sample_weights(panel, date, members=list(expected_n.index))
    assert list(n.index) == list(expected_n.index) and list(n.columns) == list(expected_n.columns)
    np.testing.assert_allclose(n.to_numpy(), expected_n.to_numpy(), atol=1e-9)
    np.testing.assert_allclose(v.to_numpy(), one_date(weights, date)["sample_weights"], rtol=1e-9)
    # live: the private files hold the function's answer for the latest date, every asset of the day
    live_n, live_v = neutralizers_and_sample_weights(panel, panel["date"].max())
    stored_n = read(private_dir, "live_neutralizer").set_index("numerai_ticker").drop(columns="date")
    stored_v = read(private_dir, "live_sample_weights").set_index("numerai_ticker")["sample_weights"]
    np.testing.assert_allclose(live_n.to_numpy(), stored_n.loc[live_n.index].to_numpy(), atol=1e-9)
    np.testing.assert_allclose(live_v.to_numpy(), stored_v.loc[live_v.index].to_numpy(), rtol=1e-9)
    assert len(live_n) == len(read(version_dir, "live"))


def test_any_date_risk_model_has_no_look_ahead(panel):
    date = panel["date"].unique()[200]
    later = panel["date"] > date
    perturbed = panel.copy()
    perturbed.loc[later, "close"] *= np.random.default_rng(4).uniform(0.5, 2.0, int(later.sum()))
    perturbed.loc[later, "volume"] *= 3.0
    n, v = neutralizers_and_sample_weights(panel, date)
    n2, v2 = neutralizers_and_sample_weights(perturbed, date)
    pd.testing.assert_frame_equal(n, n2)
    pd.testing.assert_series_equal(v, v2)


def test_any_date_risk_model_rejects_bad_dates_and_members(panel):
    with pytest.raises(DatasetError, match="rule: the date must be a trading date"):
        neutralizers_and_sample_weights(panel, "2020-01-04")  # a Saturday
    with pytest.raises(DatasetError, match="rule: members must be numerai tickers"):
        neutralizers_and_sample_weights(panel, panel["date"].max(), members=["NOPE US"])


# --------------------------------------------------------------------------- determinism, errors


def test_same_panel_gives_identical_bytes(built, panel, tmp_path):
    version_dir, private_dir, _ = built
    again = build_signals(panel, tmp_path / "public", private_dir=tmp_path / "private")

    def digest(directory: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}

    assert digest(again.version_dir) == digest(version_dir)
    assert digest(again.private_dir) == digest(private_dir)


def test_duplicate_numerai_ticker_is_rejected_and_leaves_nothing(panel, tmp_path):
    clashing = panel.copy()
    clashing.loc[clashing["asset"] == "A001", ["ticker", "country"]] = (
        clashing.loc[clashing["asset"] == "A000", ["ticker", "country"]].iloc[0].to_numpy()
    )
    with pytest.raises(DatasetError, match=r"rule: numerai_ticker \(ticker \+ country\) must be unique"):
        build_signals(clashing, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_inputs_raise_a_rule(panel, tmp_path):
    with pytest.raises(DatasetError, match="rule: required columns must be present"):
        build_signals(panel.drop(columns="sector"), tmp_path / "a")
    with pytest.raises(DatasetError, match="rule: a version is named"):
        build_signals(panel, tmp_path / "b", version="latest")
    (tmp_path / "c" / "v1.0").mkdir(parents=True)
    with pytest.raises(DatasetError, match="rule: a dataset version is immutable"):
        build_signals(panel, tmp_path / "c")
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["v1.0"]
