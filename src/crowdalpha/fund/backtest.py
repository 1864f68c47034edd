"""The fund backtest: each day's portfolio from each signal's alpha, P&L from realised returns, costs.

A backtest is a sequence of holding days. On each day every portfolio (the SWMM, the benchmark
meta model, each single model, …) solves the optimizer for that day's alpha over the day's
universe (:meth:`~crowdalpha.fund.optimizer.PortfolioOptimizer.solve_weights`) and holds that
solution as one of ``holding_days`` tranches: its position is the mean of its last
``holding_days`` solutions (each tranche 1 / ``holding_days`` of the capital, so a signal meant
for a 20-day horizon is held for 20 days; a day without an alpha adds an empty tranche). The
position earns ``rᵀw`` (``r`` the names' realised simple returns over the day; an unknown return,
or a name outside the day's universe, earns 0) and pays ``cost_per_turnover × ‖w − w_prev‖₁``
(positions matched by name: arrays over the index of every name of the backtest). Beta and factor
exposures are the position's over the day's universe. Figures are NaN before a portfolio's first
alpha.

Statistics (:func:`portfolio_statistics`) are over the days a portfolio traded: mean and
annualised return (× ``periods_per_year``), annualised volatility, Sharpe (mean / std × √periods,
std with ddof 1), maximum drawdown of the compounded net wealth, mean turnover and mean gross
exposure. Everything is numpy in, numpy out; no I/O.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from crowdalpha.fund.optimizer import ConstraintSet, FundError, PortfolioOptimizer, Universe, checked_vector

PERIODS_PER_YEAR = 252
"""Trading days in a year: annualises daily figures."""

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, eq=False)
class BacktestDay:
    """One holding day: its label, the names (universe rows), their universe, alphas, realised returns.

    ``alphas`` maps portfolio name → expected residual return per name (the universe's row order);
    ``returns`` are the names' realised simple returns over the day (fractions, NaN unknown).
    Consecutive days may share one :class:`Universe` object: its optimizer is then built once.
    """

    label: str
    names: np.ndarray
    universe: Universe
    alphas: Mapping[str, np.ndarray]
    returns: np.ndarray


@dataclass(frozen=True, eq=False)
class PortfolioPath:
    """One portfolio's days: gross and net returns, costs, turnover, gross, beta and factor exposures.

    Arrays have one entry per backtest day (NaN on days the portfolio did not trade);
    ``factor_exposures`` is days × factors (the universe's factor order).
    """

    name: str
    labels: tuple[str, ...]
    gross_returns: np.ndarray
    costs: np.ndarray
    net_returns: np.ndarray
    turnover: np.ndarray
    gross_exposure: np.ndarray
    beta_exposure: np.ndarray
    factor_exposures: np.ndarray


@dataclass(frozen=True)
class PortfolioStatistics:
    """A portfolio's summary over the days it traded (returns are fractions; annualised where named)."""

    name: str
    days: int
    total_return: float
    annual_return: float
    annual_volatility: float
    sharpe: float
    max_drawdown: float
    mean_turnover: float
    mean_gross_exposure: float


@dataclass
class _Running:
    """A portfolio while the backtest runs: its tranches and positions over the backtest's names, arrays.

    Weights are dense vectors over every name of the backtest (its name index), so tranches add,
    and turnover compares positions name by name, as arrays; a name a tranche does not hold is 0.
    """

    days: int
    factors: int
    holding_days: int
    names: int
    tranches: deque = field(init=False)
    position: np.ndarray = field(init=False)
    last_solution: np.ndarray = field(init=False)
    started: bool = False

    def __post_init__(self) -> None:
        self.tranches = deque(maxlen=self.holding_days)
        self.position = np.zeros(self.names)
        self.last_solution = np.zeros(self.names)
        self.arrays = {
            name: np.full(self.days, np.nan)
            for name in ("gross", "costs", "net", "turnover", "gross_exposure", "beta")
        }
        self.factor_exposures = np.full((self.days, self.factors), np.nan)


def name_index(days: Sequence[BacktestDay]) -> list[np.ndarray]:
    """Return each day's names as positions in the sorted index of every name of the backtest."""
    sizes = [len(day.names) for day in days]
    _, codes = np.unique(np.concatenate([np.asarray(day.names) for day in days]), return_inverse=True)
    return np.split(codes.ravel(), np.cumsum(sizes)[:-1])


def run_backtest(
    days: Sequence[BacktestDay],
    constraints: ConstraintSet,
    *,
    risk_aversion: float,
    cost_per_turnover: float = 0.0,
    holding_days: int = 1,
    solver_settings: dict[str, float | int] | None = None,
    progress: Progress | None = None,
) -> dict[str, PortfolioPath]:
    """Return every portfolio's path over ``days`` (module doc); ``cost_per_turnover`` is a fraction."""
    if not days:
        raise FundError("a backtest needs at least one day")
    if not (math.isfinite(cost_per_turnover) and cost_per_turnover >= 0):
        raise FundError(f"cost_per_turnover must be a finite fraction ≥ 0; got {cost_per_turnover}")
    if holding_days < 1:
        raise FundError(f"holding_days must be ≥ 1; got {holding_days}")
    factors = days[0].universe.factor_count
    portfolios = sorted({name for day in days for name in day.alphas})
    columns = name_index(days)
    names = 1 + max(int(day_columns.max(initial=-1)) for day_columns in columns)
    running = {name: _Running(len(days), factors, holding_days, names) for name in portfolios}
    report = progress or (lambda stage, done, total: None)
    optimizer: PortfolioOptimizer | None = None
    for index, day in enumerate(days):
        report("backtesting the fund", index, len(days))
        if day.universe.factor_count != factors:
            raise FundError(
                f"day {day.label} has {day.universe.factor_count} factors; the backtest's first day {factors}"
            )
        if optimizer is None or optimizer.universe is not day.universe:
            optimizer = PortfolioOptimizer(
                day.universe, constraints, risk_aversion=risk_aversion, solver_settings=solver_settings
            )
        returns = np.nan_to_num(checked_returns(day.returns, day.universe.size, day.label), nan=0.0)
        for name, state in running.items():
            alpha = day.alphas.get(name)
            if alpha is not None:
                state.started = True
                state.tranches.append(_solved(state, day, columns[index], optimizer, alpha))
            elif state.started:
                state.tranches.append(None)  # no new portfolio today; the oldest tranche still expires
            if state.started:
                _hold(state, index, day, columns[index], returns, cost_per_turnover)
    report("backtesting the fund", len(days), len(days))
    labels = tuple(day.label for day in days)
    return {
        name: PortfolioPath(
            name,
            labels,
            state.arrays["gross"],
            state.arrays["costs"],
            state.arrays["net"],
            state.arrays["turnover"],
            state.arrays["gross_exposure"],
            state.arrays["beta"],
            state.factor_exposures,
        )
        for name, state in running.items()
    }


def checked_returns(returns: np.ndarray, n: int, label: str) -> np.ndarray:
    """Return a day's realised returns as a float vector of length ``n`` (NaN allowed, ±inf not)."""
    values = np.asarray(returns, dtype=np.float64)
    if values.shape != (n,):
        raise FundError(f"day {label}: returns have shape {values.shape}; expected ({n},)")
    if np.isinf(values).any():
        raise FundError(
            f"day {label}: returns must be finite or NaN; names {np.flatnonzero(np.isinf(values))[:5]}"
        )
    return values


def _solved(
    state: _Running, day: BacktestDay, columns: np.ndarray, optimizer: PortfolioOptimizer, alpha: np.ndarray
) -> np.ndarray:
    """Return the day's optimal portfolio for ``alpha`` over the backtest's names (the last: turnover)."""
    previous = state.last_solution[columns]
    weights = optimizer.solve_weights(
        checked_vector(alpha, day.universe.size, f"alpha on {day.label}"), previous
    )
    state.last_solution = np.zeros(state.names)
    state.last_solution[columns] = weights
    return state.last_solution


def _hold(
    state: _Running,
    index: int,
    day: BacktestDay,
    columns: np.ndarray,
    returns: np.ndarray,
    cost_per_turnover: float,
) -> None:
    """Record the day of the position held: the mean of the live tranches (each 1 / holding_days)."""
    position = np.zeros(state.names)
    for tranche in state.tranches:
        if tranche is not None:
            position += tranche
    position /= state.holding_days
    turnover = float(np.abs(position - state.position).sum())
    weights = position[columns]
    gross = float(returns @ weights)  # names held but outside the day's universe earn 0
    cost = cost_per_turnover * turnover
    state.arrays["gross"][index] = gross
    state.arrays["costs"][index] = cost
    state.arrays["net"][index] = gross - cost
    state.arrays["turnover"][index] = turnover
    state.arrays["gross_exposure"][index] = float(np.abs(position).sum())
    state.arrays["beta"][index] = float(day.universe.betas @ weights)
    state.factor_exposures[index] = day.universe.factor_exposures.T @ weights
    state.position = position


def max_drawdown(net_returns: np.ndarray) -> float:
    """Return the largest fall of compounded wealth ``Π(1 + r)`` from its running peak (a fraction ≥ 0)."""
    wealth = np.cumprod(1.0 + np.asarray(net_returns, dtype=np.float64))
    peak = np.maximum.accumulate(np.concatenate([[1.0], wealth]))[1:]
    return float(np.max(1.0 - wealth / peak)) if wealth.size else 0.0


def portfolio_statistics(
    path: PortfolioPath, *, periods_per_year: int = PERIODS_PER_YEAR
) -> PortfolioStatistics:
    """Return the portfolio's statistics over the days it traded (module doc)."""
    traded = np.isfinite(path.net_returns)
    net = path.net_returns[traded]
    days = int(traded.sum())
    mean = float(net.mean()) if days else math.nan
    std = float(net.std(ddof=1)) if days > 1 else math.nan
    return PortfolioStatistics(
        name=path.name,
        days=days,
        total_return=float(np.prod(1.0 + net) - 1.0) if days else math.nan,
        annual_return=mean * periods_per_year,
        annual_volatility=std * math.sqrt(periods_per_year),
        sharpe=mean / std * math.sqrt(periods_per_year) if std > 0 else math.nan,
        max_drawdown=max_drawdown(net),
        mean_turnover=float(path.turnover[traded].mean()) if days else math.nan,
        mean_gross_exposure=float(path.gross_exposure[traded].mean()) if days else math.nan,
    )
