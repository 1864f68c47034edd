"""Risk-factor exposures: standardised per date, one-hot groups, value when present, no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdalpha.market.factors import (
    WINSOR_LIMIT,
    factor_exposures,
    standardize_cross_section,
    value_column,
)
from crowdalpha.market.panel import PanelError

STYLES = ["beta", "size", "momentum", "volatility"]


@pytest.fixture(scope="module")
def exposures(panel) -> pd.DataFrame:
    return factor_exposures(panel)


def test_columns_are_styles_then_country_and_sector_one_hots(panel, exposures):
    assert list(exposures.columns[:6]) == ["date", "asset", *STYLES]
    countries = [c for c in exposures.columns if c.startswith("country_")]
    sectors = [c for c in exposures.columns if c.startswith("sector_")]
    assert countries == [f"country_{c}" for c in sorted(panel["country"].unique())]
    assert sectors == [f"sector_{s}" for s in sorted(panel["sector"].unique())]
    assert (exposures[countries].sum(axis=1) == 1).all()
    assert (exposures[sectors].sum(axis=1) == 1).all()
    assert exposures.index.equals(panel.index)
    assert "value" not in exposures.columns


def test_styles_are_standardised_per_date(panel):
    exposures = factor_exposures(panel, fill_missing=False)
    late = exposures[exposures["date"] >= panel["date"].unique()[260]]
    by_date = late.groupby("date")[STYLES]
    np.testing.assert_allclose(by_date.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(by_date.std(ddof=0), 1.0, rtol=1e-9)
    assert late[STYLES].abs().max().max() < 2 * WINSOR_LIMIT


def test_size_orders_assets_like_market_cap(panel, exposures):
    day = panel["date"] == panel["date"].unique()[100]
    caps = panel.loc[day, "market_cap"].to_numpy()
    size = exposures.loc[day, "size"].to_numpy()
    assert np.all(np.diff(size[np.argsort(caps)]) >= -1e-12)


def test_unknown_exposures_are_zero_or_nan_on_request(panel, exposures):
    early = (panel["date"] < panel["date"].unique()[250]).to_numpy()
    assert (exposures.loc[early, "momentum"] == 0).all()
    raw = factor_exposures(panel, fill_missing=False)
    assert raw.loc[early, "momentum"].isna().all()
    assert raw.loc[~early & (panel["asset"] != "A039").to_numpy(), "momentum"].notna().all()


@pytest.mark.parametrize("cutoff_position", [60, 270])
def test_no_look_ahead_prices_after_t_change_no_exposure_up_to_t(panel, exposures, cutoff_position):
    cutoff = panel["date"].unique()[cutoff_position]
    later = (panel["date"] > cutoff).to_numpy()
    rng = np.random.default_rng(5)
    changed = panel.copy()
    for column in ("close", "volume", "market_cap"):
        values = changed[column].to_numpy(copy=True)
        values[later] *= rng.uniform(0.5, 2.0, later.sum())
        changed[column] = values
    again = factor_exposures(changed)
    pd.testing.assert_frame_equal(again[~later], exposures[~later])
    assert not np.allclose(again.loc[later, STYLES], exposures.loc[later, STYLES])


def test_a_value_column_becomes_the_value_factor(panel):
    book_to_price = np.random.default_rng(2).lognormal(0.0, 0.5, len(panel))
    with_value = panel.assign(raw_book_to_price=book_to_price)
    assert value_column(with_value) == "raw_book_to_price"
    exposures = factor_exposures(with_value)
    assert list(exposures.columns[2:7]) == [*STYLES, "value"]
    day = (panel["date"] == panel["date"].iloc[0]).to_numpy()
    expected = standardize_cross_section(book_to_price[day][None, :])[0]
    np.testing.assert_allclose(exposures.loc[day, "value"], expected)
    assert "value" not in factor_exposures(with_value, value=None).columns
    with pytest.raises(PanelError, match="value column must be in the panel"):
        factor_exposures(panel, value="raw_missing")


def test_standardising_clips_an_outlier_so_the_rest_keep_their_spread():
    values = np.r_[np.linspace(-1.0, 1.0, 99), 1000.0][None, :]
    z = standardize_cross_section(values)[0]
    assert z.mean() == pytest.approx(0.0, abs=1e-12)
    assert z.std() == pytest.approx(1.0)
    assert z[-1] == z.max() < 2 * WINSOR_LIMIT
    assert z[98] - z[0] > 3.0, "without clipping, the other 99 would sit within 0.07 of each other"
    assert np.all(np.diff(z) >= 0)


def test_standardising_ignores_absent_assets_and_flat_dates():
    values = np.array([[1.0, 2.0, np.nan, 3.0], [5.0, 5.0, 5.0, 5.0]])
    present = np.array([[True, True, True, False], [True] * 4])
    z = standardize_cross_section(values, present)
    np.testing.assert_allclose(z[0, :2], [-1.0, 1.0])
    assert np.isnan(z[0, 2:]).all()
    np.testing.assert_array_equal(z[1], 0.0)
