"""The shipped PSE sample, and the cleaning rules that derived it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdalpha.market.panel import validate_panel
from crowdalpha.market.samples import (
    MIN_TRADED_VALUE_PHP,
    SampleError,
    adjust_price_jumps,
    available_samples,
    build_pse_panel,
    load_sample,
    sample_path,
    write_sample,
)


@pytest.fixture(scope="module")
def pse() -> pd.DataFrame:
    return load_sample("pse")


def test_shipped_pse_sample_is_a_valid_panel_of_about_250_stocks(pse):
    assert available_samples() == ["pse"]
    assert 240 <= pse["asset"].nunique() <= 257
    assert pse["date"].min() >= pd.Timestamp("2010-01-01") and pse["date"].max() <= pd.Timestamp("2021-12-31")
    assert pse["date"].nunique() > 2500
    assert (pse["close"] > 0).all() and np.isfinite(pse["close"]).all()
    assert not pse.duplicated(["date", "asset"]).any()
    assert (pse["country"] == "PH").all()
    assert pse["sector"].notna().all() and pse["sector"].nunique() >= 6
    assert {"Financials", "Property", "Holding Firms"} <= set(pse["sector"])
    assert pse.equals(validate_panel(pse))


def test_shipped_pse_sample_is_small_and_documented():
    path = sample_path("pse")
    assert path.stat().st_size < 5_000_000
    note = (path.parent / "PSE_PROVENANCE.md").read_text()
    assert "fastquant 0.1.8.1" in note and "MIT License" in note and "market_cap` is a proxy" in note


def test_pse_rows_are_liquid_and_have_no_impossible_single_session_moves(pse):
    traded_value = pse["close"] * pse["volume"]
    assert traded_value.median() > MIN_TRADED_VALUE_PHP / 4
    dates = pd.DatetimeIndex(np.sort(pse["date"].unique()))
    session = pd.Series(dates.searchsorted(pse["date"]), index=pse.index)
    consecutive = session.groupby(pse["asset"]).diff() == 1
    log_return = np.log(pse["close"].astype(float)).groupby(pse["asset"]).diff()
    assert log_return[consecutive].between(np.log(0.7) - 0.011, np.log(1.5) + 0.011).all()


def test_a_reverting_spike_is_dropped_and_a_split_adjusts_earlier_prices():
    dates = pd.bdate_range("2020-01-01", periods=7)
    close = pd.Series([10.0, 10.2, 55.0, 10.1, 10.0, 5.1, 5.0], index=dates)
    adjusted, events = adjust_price_jumps(close)
    assert [kind for _, kind, _ in events] == ["bad_print", "corporate_action"]
    assert dates[2] not in adjusted.index
    assert adjusted.iloc[-2:].tolist() == [5.1, 5.0]  # prices after the split are the quotes
    assert adjusted.iloc[3] == pytest.approx(5.1)  # the split session's return becomes 0
    assert adjusted.iloc[0] == pytest.approx(10.0 * 5.1 / 10.0)


def test_build_pse_panel_applies_every_rule():
    dates = pd.bdate_range("2020-01-01", periods=40)
    fields = ["open", "high", "low", "close", "value"]
    columns = pd.MultiIndex.from_product([["BIG", "TINY", "FUND"], fields])
    prices = pd.DataFrame(np.nan, index=dates, columns=columns)
    for symbol, value in (("BIG", 5e6), ("TINY", 1e4), ("FUND", 5e6)):
        prices[(symbol, "close")] = 10.0
        prices[(symbol, "value")] = value
    prices.loc[dates[3], ("BIG", "close")] = 0.0  # zero price: no trade
    prices.loc[dates[5], ("BIG", "value")] = -1.0  # negative traded value: missing volume
    table = pd.DataFrame(
        {
            "Stock Symbol": ["BIG", "TINY", "FUND"],
            "Sector": ["Property", "SME", "ETF-Equity"],
            "Subsector": ["Property", "SME", "ETF-Equity"],
        }
    )
    build = build_pse_panel(prices, table)
    panel = build.panel
    assert set(panel["asset"]) == {"BIG"}  # TINY is illiquid, FUND is an ETF
    assert dates[3] not in set(panel["date"])
    assert panel.loc[panel["date"] == dates[5], "volume"].isna().all()
    assert (panel["market_cap"] > 0).all()
    assert build.counts["excluded_symbols"] == ["FUND"] and build.counts["zero_or_negative_close_rows"] == 1
    assert panel.equals(validate_panel(panel))


def test_write_sample_copies_the_shipped_bytes_or_writes_csv(tmp_path, pse):
    parquet = write_sample("pse", tmp_path / "pse.parquet")
    assert parquet.read_bytes() == sample_path("pse").read_bytes()
    csv = write_sample("pse", tmp_path / "pse.csv")
    assert len(pd.read_csv(csv)) == len(pse)
    with pytest.raises(SampleError, match="unknown sample 'nyse'"):
        write_sample("nyse", tmp_path / "x.parquet")
    with pytest.raises(SampleError, match=r"\.parquet or \.csv"):
        write_sample("pse", tmp_path / "x.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pse.csv", "pse.parquet"]
