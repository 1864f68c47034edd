"""The market-panel contract: each validation rule, its message, normalised dtypes, wide views."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from crowdalpha.market.panel import (
    PANEL_COLUMNS,
    PanelError,
    close_from_returns,
    close_matrix,
    panel_grid,
    raw_feature_columns,
    return_matrix,
    returns_from_close,
    validate_panel,
    wide_matrix,
)


@pytest.fixture
def small(make_panel) -> pd.DataFrame:
    return make_panel(n_assets=6, n_days=12, listings=False)


def test_panel_columns_are_the_contract():
    assert PANEL_COLUMNS == (
        "date",
        "asset",
        "ticker",
        "country",
        "sector",
        "industry",
        "close",
        "volume",
        "market_cap",
    )


def test_valid_panel_comes_back_with_normalised_dtypes(small):
    raw = small.assign(
        date=small["date"].dt.strftime("%Y-%m-%d"),
        asset=small["asset"].astype(object),
        volume=small["volume"].astype(np.int64),
        raw_signal=np.arange(len(small)) % 7,
    )
    panel = validate_panel(raw)
    assert panel["date"].dtype == np.dtype("datetime64[ns]")
    assert (panel["date"] == panel["date"].dt.normalize()).all()
    for column in ("asset", "ticker", "country", "sector", "industry"):
        assert pd.api.types.is_string_dtype(panel[column]), column
    for column in ("close", "volume", "market_cap", "raw_signal"):
        assert panel[column].dtype == np.float64, column
    assert list(panel.columns[: len(PANEL_COLUMNS)]) == list(PANEL_COLUMNS)
    assert raw_feature_columns(panel) == ["raw_signal"]


def test_rows_are_sorted_by_asset_within_a_date_and_the_input_is_untouched(small):
    shuffled = small.sort_values(["date", "asset"], ascending=[True, False]).reset_index(drop=True)
    before = shuffled.copy()
    panel = validate_panel(shuffled)
    assert panel["asset"].iloc[:6].tolist() == sorted(small["asset"].unique())
    pd.testing.assert_frame_equal(shuffled, before)
    assert panel.index.equals(pd.RangeIndex(len(panel)))


def _drop(column: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda p: p.drop(columns=column)


def _set(row: int, column: str, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(p: pd.DataFrame) -> pd.DataFrame:
        p = p.copy()
        if column not in p.columns:
            p[column] = np.linspace(0.0, 1.0, len(p))
        p[column] = p[column].astype(object)
        p.loc[row, column] = value
        return p

    return mutate


def _duplicate(p: pd.DataFrame) -> pd.DataFrame:
    p = p.copy()
    p.loc[3, "asset"] = p.loc[2, "asset"]
    return p


def _unsorted(p: pd.DataFrame) -> pd.DataFrame:
    p = p.copy()
    p.loc[7, "date"] = p["date"].iloc[0] - pd.Timedelta(days=3)
    return p


def _raw(values: Callable[[pd.DataFrame], np.ndarray]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda p: p.assign(raw_x=values(p))


@pytest.mark.parametrize(
    ("mutate", "rule", "where"),
    [
        (lambda p: p.iloc[:0], "rule: a panel must have at least one row", "empty"),
        (_drop("sector"), "rule: required columns must be present", "'sector'"),
        (_drop("close"), "rule: required columns must be present", "close (or return)"),
        (_set(4, "date", None), "rule: dates must be present and parseable", "row 4"),
        (_set(5, "date", "not-a-date"), "rule: dates must be present and parseable", "row 5"),
        (_set(5, "date", "2020-01-01 10:30"), "rule: dates must be whole trading days", "row 5"),
        (_duplicate, "rule: (date, asset) must be unique", "first duplicates: 2020-01-01 A002 (row 3)"),
        (_unsorted, "rule: dates must be sorted ascending", "2019-12-29 A001 (row 7)"),
        (_set(8, "close", 0.0), "rule: prices must be positive", "2020-01-02 A002 (row 8, close=0.0)"),
        (_set(8, "close", -3.5), "rule: prices must be positive", "row 8, close=-3.5"),
        (_set(8, "close", np.inf), "rule: prices must be positive", "row 8"),
        (_set(9, "close", "n/a"), "rule: close/return/volume/market_cap must be numeric", "row 9"),
        (_set(9, "volume", -1.0), "rule: volume must be finite and non-negative", "row 9"),
        (_set(9, "market_cap", 0.0), "rule: market_cap must be positive", "row 9"),
        (_set(10, "sector", None), "rule: every row needs a sector", "2020-01-02 A004 (row 10)"),
        (_set(10, "sector", "  "), "rule: every row needs a sector", "row 10"),
        (_set(11, "country", None), "rule: every row needs a country", "row 11"),
        (_set(11, "asset", None), "rule: every row needs an asset id", "row 11"),
        (
            _set(12, "raw_x", "abc"),
            "rule: raw_* features must be numeric",
            "2020-01-03 A000 (row 12, raw_x='abc')",
        ),
        (_raw(lambda p: np.full(len(p), 1.5)), "rule: raw features must vary across assets", "'raw_x'"),
        (
            _raw(lambda p: np.full(len(p), np.nan)),
            "rule: raw features must vary across assets",
            "no finite value",
        ),
        (
            _raw(lambda p: p["date"].dt.day.to_numpy(dtype=float)),
            "rule: raw features must vary across assets",
            "constant within every date",
        ),
    ],
)
def test_each_rule_is_rejected_with_its_name_and_first_offending_rows(small, mutate, rule, where):
    with pytest.raises(PanelError) as raised:
        validate_panel(mutate(small))
    message = str(raised.value)
    assert message.startswith(rule), message
    assert where in message, message


def test_integer_dates_are_read_as_yyyymmdd(small):
    panel = validate_panel(small.assign(date=small["date"].dt.strftime("%Y%m%d").astype(int)))
    pd.testing.assert_series_equal(panel["date"], validate_panel(small)["date"])


def test_panel_error_is_a_value_error():
    assert issubclass(PanelError, ValueError)


def test_messages_list_three_rows_then_count_the_rest(small):
    panel = small.copy()
    panel.loc[[5, 9, 13, 17, 21], "close"] = -1.0
    with pytest.raises(PanelError, match=r"row 5.*row 9.*row 13.*\(2 more\)"):
        validate_panel(panel)


def test_a_raw_feature_varying_on_one_date_only_is_accepted(small):
    values = np.zeros(len(small))
    values[:2] = [1.0, 2.0]
    panel = validate_panel(small.assign(raw_x=values))
    assert "raw_x" in panel.columns


def test_missing_values_are_allowed_in_prices_industry_and_features(small):
    panel = small.copy()
    panel.loc[3, ["close", "volume", "market_cap"]] = np.nan
    panel["industry"] = panel["industry"].astype(object)
    panel.loc[4, "industry"] = None
    panel["raw_x"] = np.where(np.arange(len(panel)) % 3 == 0, np.nan, np.arange(len(panel), dtype=float))
    checked = validate_panel(panel)
    assert np.isnan(checked.loc[3, "close"])
    assert pd.isna(checked.loc[4, "industry"])


def test_a_return_panel_is_valid_and_compounds_to_prices(small):
    close = wide_matrix(validate_panel(small), "close")
    returns = returns_from_close(close)
    rows = returns.stack(future_stack=True).rename("return").reset_index()
    as_returns = small.drop(columns="close").merge(rows, on=["date", "asset"])
    panel = validate_panel(as_returns)
    compounded = close_matrix(panel)
    # the first return is unknown, so the levels start at 1 + r₁ = close₁ / close₀
    expected = close / close.iloc[0]
    np.testing.assert_allclose(compounded.iloc[1:], expected.iloc[1:], rtol=1e-12)
    np.testing.assert_allclose(return_matrix(panel).iloc[1:], returns.iloc[1:], rtol=1e-12)


def test_a_return_at_or_below_minus_one_is_a_non_positive_price(small):
    panel = small.drop(columns="close").assign(**{"return": 0.01})
    panel.loc[6, "return"] = -1.0
    with pytest.raises(PanelError, match=r"rule: prices must be positive: a return .*\(row 6, return=-1.0\)"):
        validate_panel(panel)


def test_wide_views_put_missing_rows_as_nan(make_panel):
    panel = validate_panel(make_panel(n_assets=5, n_days=30))
    close = wide_matrix(panel, "close")
    assert close.shape == (30, 5)
    assert list(close.columns) == sorted(panel["asset"].unique())
    assert close.iloc[:10, -1].isna().all()
    assert close.iloc[20:, -2].isna().all()
    assert close.notna().sum().sum() == len(panel)
    grid = panel_grid(panel)
    np.testing.assert_array_equal(grid.to_rows(close.to_numpy()), panel["close"].to_numpy())
    assert grid.present().sum() == len(panel)


def test_returns_from_close_are_simple_returns_and_nan_after_a_gap():
    close = pd.DataFrame({"A": [10.0, 11.0, np.nan, 12.0, 6.0]})
    returns = returns_from_close(close)["A"].to_numpy()
    np.testing.assert_allclose(returns, [np.nan, 0.1, np.nan, np.nan, -0.5])


def test_close_from_returns_restarts_after_a_missing_return():
    returns = pd.DataFrame({"A": [0.1, 0.1, np.nan, 0.5, -0.5]})
    levels = close_from_returns(returns)["A"].to_numpy()
    np.testing.assert_allclose(levels, [1.1, 1.21, np.nan, 1.5, 0.75])
