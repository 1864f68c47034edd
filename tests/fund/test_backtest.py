"""The fund backtest: the meta model's portfolio beats the median model's; P&L, costs and turnover add up."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fund_problems import ALPHA_SCALE

from crowdalpha.fund import ConstraintSet, FundError, PortfolioOptimizer, stake_weighted_alpha
from crowdalpha.fund.backtest import BacktestDay, max_drawdown, portfolio_statistics, run_backtest
from crowdalpha.fund.synthetic import synthetic_season, synthetic_universe

LIMITS = ConstraintSet(
    dollar_neutral=True, beta_limit=0.0, sector_limit=0.05, factor_limit=0.05, name_cap=0.05
)
RISK_AVERSION = 300.0


def _season_days(season) -> list[BacktestDay]:
    names = np.array([f"N{i}" for i in range(season.universe.size)])
    days = []
    for day, (returns, predictions) in enumerate(
        zip(season.realised_returns, season.predictions, strict=True)
    ):
        alphas = {f"model_{j}": ALPHA_SCALE * predictions[:, j] for j in range(predictions.shape[1])}
        alphas["meta_model"] = stake_weighted_alpha(ALPHA_SCALE * predictions, season.stakes)
        days.append(BacktestDay(f"d{day:03d}", names, season.universe, alphas, returns))
    return days


def test_on_a_market_with_hidden_alpha_the_meta_model_portfolio_beats_the_median_single_model() -> None:
    season = synthetic_season(40, 120, 9, seed=5)
    paths = run_backtest(_season_days(season), LIMITS, risk_aversion=RISK_AVERSION, cost_per_turnover=0.0005)
    statistics = {name: portfolio_statistics(path) for name, path in paths.items()}
    singles = [statistics[f"model_{j}"].sharpe for j in range(9)]
    assert statistics["meta_model"].sharpe > np.median(singles)
    assert statistics["meta_model"].sharpe > 0  # the hidden alpha is tradable after costs
    assert statistics["meta_model"].days == 40


def test_net_return_is_the_realised_return_of_the_solved_portfolio_minus_turnover_costs() -> None:
    rng = np.random.default_rng(1)
    universe = synthetic_universe(rng, 60, factors=3, sectors=3, countries=2)
    names = np.array([f"N{i}" for i in range(60)])
    steady = ALPHA_SCALE * rng.normal(size=60)
    moving = [ALPHA_SCALE * rng.normal(size=60) for _ in range(3)]
    returns = [rng.normal(0, 0.02, 60) for _ in range(3)]
    days = [
        BacktestDay(f"d{i}", names, universe, {"steady": steady, "moving": moving[i]}, returns[i])
        for i in range(3)
    ]
    paths = run_backtest(days, LIMITS, risk_aversion=RISK_AVERSION, cost_per_turnover=0.001)
    optimizer = PortfolioOptimizer(universe, LIMITS, risk_aversion=RISK_AVERSION)
    previous = np.zeros(60)
    for i in range(3):
        weights = optimizer.solve(moving[i], previous).weights
        path = paths["moving"]
        assert math.isclose(path.gross_returns[i], returns[i] @ weights, rel_tol=1e-6, abs_tol=1e-12)
        assert math.isclose(path.turnover[i], np.abs(weights - previous).sum(), rel_tol=1e-6)
        assert math.isclose(
            path.net_returns[i], path.gross_returns[i] - 0.001 * path.turnover[i], rel_tol=1e-9
        )
        assert abs(path.beta_exposure[i]) < 1e-6  # beta neutral
        previous = weights
    steady_path = paths["steady"]
    assert math.isclose(steady_path.turnover[0], steady_path.gross_exposure[0], rel_tol=1e-9)
    assert np.all(steady_path.turnover[1:] < 1e-6)  # the same alpha every day: no trading after day one


def test_a_day_without_alpha_sells_the_expiring_tranche_and_names_outside_the_universe_earn_nothing() -> None:
    rng = np.random.default_rng(2)
    first = synthetic_universe(rng, 40, factors=2, sectors=2, countries=2)
    second = synthetic_universe(rng, 30, factors=2, sectors=2, countries=2)
    alpha = ALPHA_SCALE * rng.normal(size=40)
    returns = rng.normal(0, 0.02, 40)
    days = [
        BacktestDay("d0", np.array([f"N{i}" for i in range(40)]), first, {"a": alpha}, returns),
        BacktestDay("d1", np.array([f"N{i}" for i in range(30)]), second, {}, returns[:30]),
        BacktestDay("d2", np.array([f"N{i}" for i in range(30)]), second, {"a": alpha[:30]}, returns[:30]),
    ]
    path = run_backtest(days, LIMITS, risk_aversion=RISK_AVERSION)["a"]
    before = PortfolioOptimizer(first, LIMITS, risk_aversion=RISK_AVERSION).solve(alpha).weights
    after = PortfolioOptimizer(second, LIMITS, risk_aversion=RISK_AVERSION).solve(alpha[:30], before[:30])
    assert math.isclose(path.turnover[1], np.abs(before).sum(), rel_tol=1e-6)  # flat: everything sold
    assert path.gross_returns[1] == 0.0 and portfolio_statistics(path).days == 3
    assert math.isclose(path.turnover[2], np.abs(after.weights).sum(), rel_tol=1e-5)

    held = [
        BacktestDay("d0", np.array([f"N{i}" for i in range(40)]), first, {"a": alpha}, returns),
        BacktestDay("d1", np.array([f"N{i}" for i in range(30)]), second, {"a": alpha[:30]}, returns[:30]),
    ]
    two_day = run_backtest(held, LIMITS, risk_aversion=RISK_AVERSION, holding_days=2)["a"]
    position = before / 2
    position[:30] += after.weights / 2
    # N30…N39 are still held from day 0 but are outside day 1's universe: they earn 0
    assert math.isclose(two_day.gross_returns[1], returns[:30] @ position[:30], rel_tol=1e-6)
    assert math.isclose(two_day.gross_exposure[1], np.abs(position).sum(), rel_tol=1e-6)


def test_tranches_build_the_position_over_the_holding_days() -> None:
    rng = np.random.default_rng(3)
    universe = synthetic_universe(rng, 30, factors=2, sectors=2, countries=2)
    names = np.array([f"N{i}" for i in range(30)])
    alpha = ALPHA_SCALE * rng.normal(size=30)
    days = [BacktestDay(f"d{i}", names, universe, {"a": alpha}, rng.normal(0, 0.02, 30)) for i in range(5)]
    path = run_backtest(days, LIMITS, risk_aversion=RISK_AVERSION, holding_days=3, cost_per_turnover=0.001)[
        "a"
    ]
    full = np.abs(
        PortfolioOptimizer(universe, LIMITS, risk_aversion=RISK_AVERSION).solve(alpha).weights
    ).sum()
    np.testing.assert_allclose(path.gross_exposure, full * np.array([1, 2, 3, 3, 3]) / 3, rtol=1e-5)
    np.testing.assert_allclose(path.turnover, full * np.array([1, 1, 1, 0, 0]) / 3, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(path.costs, 0.001 * path.turnover)


def test_statistics_pin_worked_values() -> None:
    assert math.isclose(max_drawdown(np.array([0.1, -0.5, 0.2])), 0.5)
    assert max_drawdown(np.array([0.01, 0.02])) == 0.0
    rng = np.random.default_rng(0)
    universe = synthetic_universe(rng, 20, factors=2, sectors=2, countries=2)
    names = np.array([f"N{i}" for i in range(20)])
    alpha = ALPHA_SCALE * rng.normal(size=20)
    days = [BacktestDay(f"d{i}", names, universe, {"a": alpha}, rng.normal(0, 0.02, 20)) for i in range(5)]
    path = run_backtest(days, LIMITS, risk_aversion=RISK_AVERSION)["a"]
    statistics = portfolio_statistics(path, periods_per_year=252)
    net = path.net_returns
    assert math.isclose(statistics.sharpe, net.mean() / net.std(ddof=1) * math.sqrt(252), rel_tol=1e-12)
    assert math.isclose(statistics.total_return, np.prod(1 + net) - 1, rel_tol=1e-12)


def test_bad_returns_name_the_day() -> None:
    rng = np.random.default_rng(0)
    universe = synthetic_universe(rng, 10, factors=2, sectors=2, countries=2)
    names = np.array([f"N{i}" for i in range(10)])
    returns = np.zeros(10)
    returns[3] = np.inf
    day = BacktestDay("2024-01-05", names, universe, {"a": np.zeros(10)}, returns)
    with pytest.raises(FundError, match="day 2024-01-05: returns must be finite or NaN"):
        run_backtest([day], LIMITS, risk_aversion=RISK_AVERSION)
    with pytest.raises(FundError, match="cost_per_turnover"):
        run_backtest([day], LIMITS, risk_aversion=RISK_AVERSION, cost_per_turnover=-1.0)


def _replayed_by_name(days, holding_days: int, cost: float) -> dict[str, dict[str, list[float]]]:
    """The backtest as the module doc says it, by name and dict: each day's interior-point portfolio
    held as one of ``holding_days`` tranches, P&L and turnover over the names."""
    figures: dict[str, dict[str, list[float]]] = {}
    for name in sorted({name for day in days for name in day.alphas}):
        tranches: list[dict] = []
        held: dict = {}
        last: dict = {}
        rows: dict[str, list[float]] = {
            "gross": [],
            "turnover": [],
            "net": [],
            "gross_exposure": [],
            "beta": [],
        }
        for day in days:
            if name in day.alphas:
                previous = np.array([last.get(asset, 0.0) for asset in day.names])
                optimizer = PortfolioOptimizer(day.universe, LIMITS, risk_aversion=RISK_AVERSION)
                last = dict(zip(day.names, optimizer.solve(day.alphas[name], previous).weights, strict=True))
                tranches.append(last)
            elif tranches:
                tranches.append({})
            if not tranches:
                for values in rows.values():
                    values.append(math.nan)
                continue
            tranches = tranches[-holding_days:]
            position: dict = {}
            for tranche in tranches:
                for asset, weight in tranche.items():
                    position[asset] = position.get(asset, 0.0) + weight / holding_days
            turnover = sum(abs(position.get(a, 0.0) - held.get(a, 0.0)) for a in set(position) | set(held))
            weights = np.array([position.get(asset, 0.0) for asset in day.names])
            gross = float(np.nan_to_num(day.returns) @ weights)
            rows["gross"].append(gross)
            rows["turnover"].append(turnover)
            rows["net"].append(gross - cost * turnover)
            rows["gross_exposure"].append(sum(abs(weight) for weight in position.values()))
            rows["beta"].append(float(day.universe.betas @ weights))
            held = position
        figures[name] = rows
    return figures


def test_the_backtest_equals_a_replay_by_name_through_the_interior_point() -> None:
    rng = np.random.default_rng(8)
    pool = np.array([f"N{i:03d}" for i in range(90)])
    universes = []
    for size in (70, 80, 60):
        names = np.sort(rng.choice(pool, size, replace=False))
        universes.append((names, synthetic_universe(rng, size, factors=3, sectors=4, countries=3)))
    days = []
    for index in range(9):
        names, universe = universes[index // 3]  # three days on each universe (one optimizer each)
        alphas = {
            "a": ALPHA_SCALE * rng.normal(size=names.size),
            "b": ALPHA_SCALE * rng.normal(size=names.size),
        }
        if index in (2, 3):
            del alphas["b"]  # b skips two days: its tranches expire without new ones
        returns = rng.normal(0, 0.02, names.size)
        returns[rng.random(names.size) < 0.1] = np.nan  # unknown returns earn 0
        days.append(BacktestDay(f"d{index}", names, universe, alphas, returns))
    days[0] = BacktestDay("d0", days[0].names, days[0].universe, {"b": days[0].alphas["b"]}, days[0].returns)
    paths = run_backtest(days, LIMITS, risk_aversion=RISK_AVERSION, cost_per_turnover=0.001, holding_days=3)
    expected = _replayed_by_name(days, 3, 0.001)
    for name, path in paths.items():
        rows = expected[name]
        for field, values in {
            "gross": path.gross_returns,
            "turnover": path.turnover,
            "net": path.net_returns,
            "gross_exposure": path.gross_exposure,
            "beta": path.beta_exposure,
        }.items():
            np.testing.assert_allclose(values, rows[field], atol=1e-7, err_msg=f"{name} {field}")
    assert np.isnan(paths["a"].net_returns[0]) and np.isfinite(paths["a"].net_returns[1:]).all()
