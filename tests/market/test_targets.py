"""Forward residual targets: kD2L returns, exact 5/20/50/20/5 bins, neutrality to their factors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdalpha.market.calendar import trading_dates, weekly_era_dates
from crowdalpha.market.factors import factor_exposures
from crowdalpha.market.panel import validate_panel, wide_matrix
from crowdalpha.market.targets import (
    NEUTRALIZATIONS,
    bin_counts,
    bin_cross_sections,
    build_targets,
    extend_target_inputs,
    forward_return_matrix,
    prepare_target_inputs,
    residual_returns,
    residualize_cross_section,
)

STYLES = ["beta", "size", "momentum", "volatility"]
TARGETS = [f"target_{name}_{h}" for name in NEUTRALIZATIONS for h in (20, 60)]


@pytest.fixture(scope="module")
def inputs(panel):
    return prepare_target_inputs(panel)


@pytest.fixture(scope="module")
def eras(panel) -> pd.DatetimeIndex:
    return weekly_era_dates(panel)


@pytest.fixture(scope="module")
def targets(panel, eras, inputs) -> pd.DataFrame:
    return build_targets(panel, eras, inputs=inputs)


@pytest.fixture(scope="module")
def residuals(panel, eras, inputs) -> pd.DataFrame:
    """Unbinned targets joined with the exposures known at each date and the panel's groups."""
    unbinned = build_targets(panel, eras, binned=False, inputs=inputs)
    groups = panel[["date", "asset", "country", "sector"]]
    return unbinned.merge(factor_exposures(panel), on=["date", "asset"]).merge(groups, on=["date", "asset"])


def test_columns_are_the_main_target_and_eight_auxiliary_targets(targets, eras):
    assert list(targets.columns) == ["date", "asset", "target", *TARGETS]
    assert (targets[TARGETS].dtypes == np.float32).all()
    assert set(targets["date"].unique()) == set(eras)
    pd.testing.assert_series_equal(targets["target"], targets["target_factor_neutral_20"], check_names=False)


@pytest.mark.parametrize(
    ("n", "counts"),
    [
        (20, (1, 4, 10, 4, 1)),
        (40, (2, 8, 20, 8, 2)),
        (100, (5, 20, 50, 20, 5)),
        (30, (2, 6, 14, 6, 2)),
        (10, (1, 2, 4, 2, 1)),
        (3, (0, 1, 1, 1, 0)),
        (1, (0, 0, 1, 0, 0)),
        (0, (0, 0, 0, 0, 0)),
    ],
)
def test_bin_counts_follow_the_documented_rounding(n, counts):
    assert bin_counts(n) == counts


def test_bin_counts_are_symmetric_and_exact_for_multiples_of_20():
    for n in range(0, 501):
        counts = bin_counts(n)
        assert sum(counts) == n and counts[0] == counts[4] and counts[1] == counts[3] and min(counts) >= 0
        if n % 20 == 0:
            assert counts == (n // 20, n // 5, n // 2, n // 5, n // 20)


def test_every_era_has_exactly_the_bin_counts_of_its_known_assets(targets):
    for name in ["target", *TARGETS]:
        for _, values in targets.groupby("date")[name]:
            known = values.dropna()
            if known.empty:
                continue
            observed = tuple(int((known == b).sum()) for b in (0.0, 0.25, 0.5, 0.75, 1.0))
            assert observed == bin_counts(len(known)), name


def test_a_full_universe_of_40_is_binned_2_8_20_8_2(make_panel):
    panel = validate_panel(make_panel(n_assets=40, n_days=120, listings=False, seed=3))
    targets = build_targets(panel, None, horizons=(20,))
    known = targets.dropna(subset=["target"])
    assert known["date"].nunique() == 120 - 22
    shares = known.groupby("date")["target"].value_counts().unstack()
    assert (shares[[0.0, 0.25, 0.5, 0.75, 1.0]].to_numpy() == [2, 8, 20, 8, 2]).all()


def test_ties_are_broken_by_asset_id_deterministically():
    tied = np.zeros((2, 40))
    tied[1, ::2] = 1.0  # 20 assets tied low, 20 tied high
    bins = bin_cross_sections(tied)
    np.testing.assert_array_equal(bins[0], np.repeat([0.0, 0.25, 0.5, 0.75, 1.0], [2, 8, 20, 8, 2]))
    low, high = bins[1, 1::2], bins[1, ::2]
    np.testing.assert_array_equal(low, np.repeat([0.0, 0.25, 0.5], [2, 8, 10]))
    np.testing.assert_array_equal(high, np.repeat([0.5, 0.75, 1.0], [10, 8, 2]))
    np.testing.assert_array_equal(bin_cross_sections(tied), bins)


def test_tied_returns_in_a_panel_still_give_exact_bins(make_panel):
    panel = make_panel(n_assets=40, n_days=80, listings=False, seed=4)
    flat = panel["asset"].isin([f"A{i:03d}" for i in range(0, 40, 2)])
    panel.loc[flat, "close"] = 10.0  # half the assets never move: their forward returns tie at 0
    targets = build_targets(validate_panel(panel), None, horizons=(20,))
    for _, day in targets.dropna(subset=["target_raw_return_20"]).groupby("date"):
        values = day["target_raw_return_20"].to_numpy()
        assert tuple(int((values == b).sum()) for b in (0.0, 0.25, 0.5, 0.75, 1.0)) == (2, 8, 20, 8, 2)


def test_the_forward_return_runs_from_t_plus_lag_to_t_plus_lag_plus_k(panel, inputs):
    close = wide_matrix(panel, "close")
    positions = np.array([0, 100, 250])
    for k in (1, 5, 20):
        forward = forward_return_matrix(inputs, positions, k)
        expected = close.to_numpy()[positions + 2 + k] / close.to_numpy()[positions + 2] - 1
        expected[~inputs.present[positions]] = np.nan
        np.testing.assert_allclose(forward, expected, rtol=1e-12)
    unbinned = build_targets(panel, trading_dates(panel)[positions], horizons=(20,), binned=False)
    demeaned = forward_return_matrix(inputs, positions, 20)
    demeaned = demeaned - np.nanmean(demeaned, axis=1, keepdims=True)
    known = ~np.isnan(demeaned)
    np.testing.assert_allclose(unbinned["target_raw_return_20"].to_numpy(), demeaned[known], atol=1e-12)


def test_targets_are_nan_until_their_horizon_has_closed(panel, targets):
    dates = trading_dates(panel)
    by_date = targets.groupby("date")[["target_factor_neutral_20", "target_factor_neutral_60"]].count()
    known_20 = dates[len(dates) - 1 - 22]  # the last date whose t + 2 + 20 is in the panel
    known_60 = dates[len(dates) - 1 - 62]
    assert (by_date.loc[by_date.index > known_20, "target_factor_neutral_20"] == 0).all()
    assert (by_date.loc[by_date.index <= known_20, "target_factor_neutral_20"] > 0).all()
    assert (by_date.loc[by_date.index > known_60, "target_factor_neutral_60"] == 0).all()
    assert (by_date.loc[by_date.index <= known_60, "target_factor_neutral_60"] > 0).all()


def _coefficients(day: pd.DataFrame, target: str, exposures: list[str]) -> np.ndarray:
    day = day.dropna(subset=[target])
    design = [np.ones(len(day))] + [day[name].to_numpy() for name in exposures if name in STYLES]
    for group in ("country", "sector"):
        if group in exposures:
            design += [(day[group] == value).to_numpy(float) for value in sorted(day[group].unique())[1:]]
    coefficients, *_ = np.linalg.lstsq(np.column_stack(design), day[target].to_numpy(), rcond=None)
    return coefficients


@pytest.mark.parametrize("name", list(NEUTRALIZATIONS))
@pytest.mark.parametrize("horizon", [20, 60])
def test_residual_targets_have_no_exposure_to_the_factors_they_are_neutral_to(residuals, name, horizon):
    target = f"target_{name}_{horizon}"
    exposures = [e for e in NEUTRALIZATIONS[name] if e != "value"]
    checked = 0
    for _, day in residuals.groupby("date"):
        if day[target].notna().sum() < 10:
            continue
        np.testing.assert_allclose(_coefficients(day, target, exposures), 0.0, atol=1e-12)
        known = day.dropna(subset=[target])
        for style in (e for e in exposures if e in STYLES and known[e].std() > 0):
            assert abs(np.corrcoef(known[target], known[style])[0, 1]) < 1e-10
        for group in (e for e in exposures if e in ("country", "sector")):
            np.testing.assert_allclose(known.groupby(group)[target].mean(), 0.0, atol=1e-12)
        checked += 1
    assert checked >= 40


def test_targets_that_are_not_neutral_to_a_factor_keep_some_exposure(residuals):
    late = residuals[residuals["date"] == residuals["date"].unique()[55]].dropna(
        subset=["target_raw_return_20"]
    )
    assert abs(np.corrcoef(late["target_raw_return_20"], late["beta"])[0, 1]) > 1e-3
    assert np.abs(late.groupby("sector")["target_market_neutral_20"].mean()).max() > 1e-4


@pytest.mark.parametrize("horizon", [20, 60])
def test_kd2l_at_k_equal_h_is_the_h_day_target_before_binning(panel, eras, inputs, horizon):
    unbinned = build_targets(panel, eras, binned=False, inputs=inputs)
    binned = build_targets(panel, eras, inputs=inputs)
    for neutralization in NEUTRALIZATIONS:
        name = f"target_{neutralization}_{horizon}"
        kd2l = residual_returns(inputs, eras, horizon, neutral_to=neutralization)
        long = kd2l.stack(future_stack=True).rename("kd2l").reset_index()
        joined = unbinned[["date", "asset", name]].merge(long, on=["date", "asset"], how="left")
        np.testing.assert_allclose(joined["kd2l"], joined[name], rtol=1e-12, atol=1e-15, err_msg=name)
        kd2l_bins = residual_returns(inputs, eras, horizon, neutral_to=neutralization, binned=True)
        long_bins = kd2l_bins.stack(future_stack=True).rename("bins").reset_index()
        joined = binned[["date", "asset", name]].merge(long_bins, on=["date", "asset"], how="left")
        np.testing.assert_array_equal(joined["bins"].to_numpy(np.float32), joined[name].to_numpy())


def test_kd2l_is_available_for_every_k_as_returns_arrive(panel, inputs):
    dates = trading_dates(panel)
    round_date = dates[-10]  # t + 2 + k is in the panel for k ≤ 7 only
    for k in range(1, 21):
        values = residual_returns(inputs, [round_date], k)
        assert values.shape == (1, panel["asset"].nunique())
        assert values.notna().to_numpy().any() == (k <= 7), k
    assert not residual_returns(inputs, [dates[0]], 1).equals(residual_returns(inputs, [dates[0]], 2))


def test_targets_do_not_depend_on_prices_after_their_window(panel, eras, targets):
    era = eras[30]
    end = trading_dates(panel)[trading_dates(panel).get_loc(era) + 2 + 20]
    changed = panel.copy()
    later = (changed["date"] > end).to_numpy()
    changed.loc[later, "close"] *= np.random.default_rng(9).uniform(0.5, 2.0, later.sum())
    again = build_targets(changed, [era], horizons=(20,))
    original = targets[targets["date"] == era].reset_index(drop=True)
    pd.testing.assert_series_equal(again["target"], original["target"])


def test_lag_zero_starts_the_window_at_t(panel):
    inputs = prepare_target_inputs(panel, lag=0)
    close = wide_matrix(panel, "close").to_numpy()
    forward = forward_return_matrix(inputs, np.array([10]), 3)
    np.testing.assert_allclose(forward[0], close[13] / close[10] - 1)


def test_bad_requests_name_the_rule(inputs, panel):
    with pytest.raises(ValueError, match="neutral_to must be one of"):
        residual_returns(inputs, trading_dates(panel)[:1], 5, neutral_to="alpha")
    with pytest.raises(ValueError, match="k must be ≥ 1"):
        residual_returns(inputs, trading_dates(panel)[:1], 0)
    with pytest.raises(ValueError, match="must be trading dates"):
        residual_returns(inputs, ["2020-01-04"], 5)
    with pytest.raises(ValueError, match="horizons must be one or more"):
        build_targets(panel, None, horizons=(), inputs=inputs)


def test_the_factor_neutral_target_is_neutral_to_value_when_the_panel_has_it(panel, eras):
    with_value = panel.assign(raw_book_to_price=np.random.default_rng(8).lognormal(0.0, 0.5, len(panel)))
    unbinned = build_targets(with_value, eras[:20], horizons=(20,), binned=False)
    joined = unbinned.merge(factor_exposures(with_value), on=["date", "asset"]).dropna(subset=["target"])
    for _, day in joined.groupby("date"):
        assert abs(np.corrcoef(day["target"], day["value"])[0, 1]) < 1e-10


def test_residualising_handles_collinear_columns_like_least_squares():
    rng = np.random.default_rng(11)
    groups = rng.integers(0, 4, 200)
    one_hots = np.eye(4)[groups]
    design = np.column_stack(
        [np.ones(200), rng.standard_normal(200), one_hots, np.zeros(200), one_hots[:, 0]]
    )
    values = rng.standard_normal((200, 3))
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    np.testing.assert_allclose(
        residualize_cross_section(values, design), values - design @ coefficients, atol=1e-12
    )
    np.testing.assert_allclose(design.T @ residualize_cross_section(values, design), 0.0, atol=1e-11)


def _split(panel: pd.DataFrame, at: int) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Return the panel's rows before its ``at``-th date and the rows of each later date."""
    dates = pd.DatetimeIndex(panel["date"].drop_duplicates()).sort_values()
    history = panel[panel["date"] < dates[at]].reset_index(drop=True)
    return history, [panel[panel["date"] == day].reset_index(drop=True) for day in dates[at:]]


def _assert_same_inputs(extended, rebuilt) -> None:
    assert extended.grid.dates.equals(rebuilt.grid.dates)
    assert extended.grid.assets.equals(rebuilt.grid.assets)
    np.testing.assert_array_equal(extended.grid.row_date, rebuilt.grid.row_date)
    np.testing.assert_array_equal(extended.grid.row_asset, rebuilt.grid.row_asset)
    np.testing.assert_array_equal(extended.close, rebuilt.close)
    np.testing.assert_array_equal(extended.present, rebuilt.present)
    assert extended.groups.keys() == rebuilt.groups.keys()
    for name, codes in rebuilt.groups.items():
        np.testing.assert_array_equal(extended.groups[name], codes)
    assert list(extended.styles) == list(rebuilt.styles)
    for name, matrix in rebuilt.styles.items():
        np.testing.assert_array_equal(np.isnan(extended.styles[name]), np.isnan(matrix))
        np.testing.assert_allclose(extended.styles[name], matrix, rtol=0, atol=1e-12)


@pytest.mark.parametrize("at", [30, 150, 300])
def test_inputs_extended_day_by_day_equal_inputs_rebuilt_from_the_whole_panel(panel, at):
    # the conftest panel lists an asset a third of the way in: extending from day 30 meets it
    history, days = _split(panel, at)
    extended = prepare_target_inputs(history)
    for rows in days:
        extended = extend_target_inputs(extended, rows)
        assert extended is not None
    _assert_same_inputs(extended, prepare_target_inputs(panel))


def test_extended_inputs_carry_the_value_exposure(panel):
    with_value = panel.assign(raw_book_to_price=np.random.default_rng(3).lognormal(0.0, 0.5, len(panel)))
    history, days = _split(with_value, 250)
    extended = extend_target_inputs(prepare_target_inputs(history), pd.concat(days, ignore_index=True))
    assert extended is not None and "value" in extended.styles
    _assert_same_inputs(extended, prepare_target_inputs(with_value))


def test_extended_inputs_give_the_rebuilt_targets(panel):
    history, days = _split(panel, 200)
    extended = extend_target_inputs(prepare_target_inputs(history), pd.concat(days, ignore_index=True))
    rebuilt = prepare_target_inputs(panel)
    dates = pd.DatetimeIndex(panel["date"].drop_duplicates()).sort_values()[190:260]
    for k in (1, 7, 20):
        pd.testing.assert_frame_equal(
            residual_returns(extended, dates, k, binned=True),
            residual_returns(rebuilt, dates, k, binned=True),
        )


def test_inputs_that_cannot_be_extended_from_new_rows_alone_ask_for_a_rebuild(panel):
    history, days = _split(panel, 200)
    inputs = prepare_target_inputs(history)
    assert extend_target_inputs(inputs, days[0].assign(sector="Utilities")) is None  # a new category
    assert extend_target_inputs(inputs, history[history["date"] == history["date"].max()]) is None
    as_returns = days[0].drop(columns="close").assign(**{"return": 0.01})
    assert extend_target_inputs(inputs, as_returns) is None  # levels compound from the first date


def test_kept_regression_bases_give_the_same_residuals_as_fresh_ones(panel, inputs):
    dates = pd.DatetimeIndex(panel["date"].drop_duplicates()).sort_values()[100:110]
    first = residual_returns(inputs, dates, 5)
    assert inputs.bases  # the dates' regressions are kept for the next score day
    again = residual_returns(inputs, dates, 5)
    fresh = residual_returns(prepare_target_inputs(panel), dates, 5)
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first, fresh)
