"""The fund backtest of a season: each round's meta model traded for a day, against single models.

For every closed, scoring or resolved round of a tournament (rounds by data date), the fund
solves its portfolio (:class:`~crowdalpha.tournament.config.FundRule`: the tournament's ``fund``,
else the defaults) over the round's live assets, with the universe and risk model known at the
round's data date *t* (:func:`crowdalpha.service.fund_universe.universe_at`), for each signal:

* ``meta_model`` — the round's published stake-weighted meta model (Classic SWMM);
* ``benchmark_meta_model`` — the benchmark models' meta model, when the round has one;
* ``model:<name>`` — each model's selected submission on its own.

Each signal's alpha is ``alpha_scale ×`` its cleaned Gaussianised ranks less their fit on the
universe's risk exposures (:func:`crowdalpha.service.fund_universe.fund_alphas`), so every
portfolio sees the same alpha distribution, differs only in residual ordering, and none takes the
crowd's common sector, country, style or beta tilts as bets. The round's portfolio starts on the
first day of its target window — earning from the close of t + L to the close of t + L + 1 the
raw simple return (L the config's lag) — and is held as one of ``holding_days`` tranches (by
default the tournament's horizon: a round's portfolio is kept for the days its target covers),
paying ``cost_bps`` per unit of turnover. A round whose first holding day is not in the market
store yet is left out. The figures are
:func:`crowdalpha.fund.backtest.run_backtest`'s; "best model" is the single model with the
highest Sharpe over the season (in hindsight; the highest total return when the season is too
short for a Sharpe), beside the median single model's Sharpe.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from crowdalpha.fund import FundError
from crowdalpha.fund.backtest import (
    BacktestDay,
    PortfolioPath,
    PortfolioStatistics,
    portfolio_statistics,
    run_backtest,
)
from crowdalpha.fund.blas import one_blas_thread
from crowdalpha.market.targets import TargetInputs, forward_return_matrix
from crowdalpha.service._tournaments import LoadedTournament, TournamentRef, load_tournament
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.service.fund_universe import (
    DEFAULT_FUND,
    constraint_set,
    date_position,
    fund_alphas,
    universe_at,
)
from crowdalpha.service.market import market_through
from crowdalpha.service.meta_models import META_MODEL_NAME, read_meta_model
from crowdalpha.service.scoring import (
    SCORED_KINDS,
    _benchmark_meta_model,
    round_id_assets,
    round_predictions,
    target_inputs,
)
from crowdalpha.store import RoundState, UnitOfWork, run_transaction
from crowdalpha.tournament.config import FundRule
from crowdalpha.tournament.meta_model import BENCHMARK_META_MODEL

DEFAULT_COST_BPS = 10.0
"""Trading cost per unit of turnover, in basis points."""
MODEL_PREFIX = "model:"
BACKTESTED_STATES = (RoundState.CLOSED, RoundState.SCORING, RoundState.RESOLVED)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RoundSignals:
    """A round as the backtest reads it: its data date, live id → asset map and signals by id."""

    number: int
    live_date: date
    id_assets: pd.Series
    signals: dict[str, pd.Series]


@dataclass
class SeasonBacktest:
    """A season's fund backtest: every portfolio's path and statistics, the best and median single model."""

    tournament: str
    rounds: tuple[int, ...]
    factor_names: tuple[str, ...]
    cost_bps: float
    holding_days: int
    paths: dict[str, PortfolioPath]
    statistics: dict[str, PortfolioStatistics]
    best_model: str | None
    median_model_sharpe: float
    skipped_rounds: dict[int, str] = field(default_factory=dict)

    def headline(self) -> list[PortfolioStatistics]:
        """Return the statistics of the meta model, the benchmark meta model and the best single model."""
        names = [META_MODEL_NAME, BENCHMARK_META_MODEL, self.best_model]
        return [self.statistics[name] for name in names if name in self.statistics]


def _round_signals(ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row) -> RoundSignals | str:
    """Return the round's signals, or why the round cannot be backtested."""
    live = uow.scores.live_data(row.id)
    if live is None:
        return "no private live data (id → asset map)"
    meta_model = read_meta_model(ctx, uow, row)
    if meta_model is None:
        return "no meta model (no staked submission at close)"
    ids = meta_model.index
    signals = {META_MODEL_NAME: meta_model}
    benchmark = _benchmark_meta_model(ctx, uow, row, ids)
    if benchmark is not None:
        signals[BENCHMARK_META_MODEL] = benchmark
    selected = round_predictions(ctx, uow, loaded, row, {}).values
    names = {
        item.id: uow.models.get(item.model_id).name
        for item in uow.submissions.list_selected(row.id, statuses=SCORED_KINDS)
    }
    for submission_id in selected.columns:
        signals[MODEL_PREFIX + names[submission_id]] = selected[submission_id].reindex(ids)
    return RoundSignals(row.number, live.live_date, round_id_assets(ctx, live).reindex(ids), signals)


def read_season_signals(
    ctx: Context, tournament: TournamentRef, progress: Progress | None = None
) -> tuple[LoadedTournament, list[RoundSignals], dict[int, str]]:
    """Return the tournament, its backtestable rounds' signals (by data date) and the rounds left out."""

    def listed(uow: UnitOfWork) -> tuple[LoadedTournament, list[str]]:
        loaded = load_tournament(uow, tournament)
        return loaded, [row.id for row in uow.rounds.list(loaded.id, states=BACKTESTED_STATES)]

    loaded, round_ids = run_transaction(ctx.engine, listed, read_only=True)
    report = progress or (lambda stage, done, total: None)
    rounds: list[RoundSignals] = []
    skipped: dict[int, str] = {}
    for done, round_id in enumerate(round_ids):
        report("reading the rounds", done, len(round_ids))

        def work(uow: UnitOfWork, round_id: str = round_id) -> tuple[int, RoundSignals | str]:
            row = uow.rounds.get(round_id)
            return row.number, _round_signals(ctx, uow, loaded, row)

        number, found = run_transaction(ctx.engine, work, read_only=True)
        if isinstance(found, str):
            skipped[number] = found
        else:
            rounds.append(found)
    report("reading the rounds", len(round_ids), len(round_ids))
    return loaded, sorted(rounds, key=lambda item: (item.live_date, item.number)), skipped


def backtest_season(
    ctx: Context,
    tournament: TournamentRef = "classic",
    *,
    rule: FundRule | None = None,
    cost_bps: float = DEFAULT_COST_BPS,
    holding_days: int | None = None,
    progress: Progress | None = None,
) -> SeasonBacktest:
    """Return the fund backtest of every backtestable round of ``tournament`` in the home (module doc)."""
    if not (math.isfinite(cost_bps) and cost_bps >= 0):
        raise ServiceError("invalid_cost", f"cost_bps must be a finite number ≥ 0; got {cost_bps}")
    loaded, rounds, skipped = read_season_signals(ctx, tournament, progress)
    rule = rule or loaded.config.fund or DEFAULT_FUND
    holding_days = loaded.config.horizon if holding_days is None else holding_days
    if holding_days < 1:
        raise ServiceError("invalid_holding_days", f"holding_days must be ≥ 1; got {holding_days}")
    through = market_through(ctx)
    if through is None:
        raise ServiceError("no_market_data", "the market store is empty; run `crowdalpha market ingest FILE`")
    inputs = target_inputs(ctx, loaded.config, through)
    with one_blas_thread():  # small factorisations and products: OpenBLAS's pool only contends
        days, numbers, factor_names = _backtest_days(inputs, rounds, rule, skipped)
        if not days:
            raise ServiceError(
                "nothing_to_backtest",
                f"{loaded.name} has no round with a meta model whose holding day is in the market store"
                f" (rounds left out: {dict(sorted(skipped.items())[:5])})",
            )
        try:
            paths = run_backtest(
                days,
                constraint_set(rule),
                risk_aversion=rule.risk_aversion,
                cost_per_turnover=cost_bps / 10_000,
                holding_days=holding_days,
                progress=progress,
            )
        except FundError as error:
            raise ServiceError("fund_failed", f"the {loaded.name} backtest: {error}") from None
    statistics = {name: portfolio_statistics(path) for name, path in paths.items()}
    models = {name: item for name, item in statistics.items() if name.startswith(MODEL_PREFIX)}
    sharpes = [item.sharpe for item in models.values() if math.isfinite(item.sharpe)]
    return SeasonBacktest(
        tournament=loaded.name,
        rounds=tuple(numbers),
        factor_names=factor_names,
        cost_bps=cost_bps,
        holding_days=holding_days,
        paths=paths,
        statistics=statistics,
        best_model=max(models, key=lambda name: _merit(models[name])) if models else None,
        median_model_sharpe=float(np.median(sharpes)) if sharpes else math.nan,
        skipped_rounds=skipped,
    )


def _backtest_days(
    inputs: TargetInputs, rounds: list[RoundSignals], rule: FundRule, skipped: dict[int, str]
) -> tuple[list[BacktestDay], list[int], tuple[str, ...]]:
    """Return each round's holding day (universe, alphas, returns), its number and the factor names.

    A round whose holding day is not in the market store yet is added to ``skipped``.
    """
    days: list[BacktestDay] = []
    numbers: list[int] = []
    factor_names: tuple[str, ...] = ()
    for signals in rounds:
        position = date_position(inputs, signals.live_date)
        holding = position + inputs.lag + 1
        if holding >= len(inputs.grid.dates):
            skipped[signals.number] = "its holding day is not in the market store yet"
            continue
        universe = universe_at(
            inputs, signals.live_date, list(signals.id_assets), risk_window=rule.risk_window
        )
        factor_names = universe.factor_names
        names = list(signals.signals)
        matrix = np.column_stack([signals.signals[name].to_numpy(np.float64) for name in names])
        alphas = fund_alphas(rule, matrix, universe)
        returns = forward_return_matrix(inputs, np.array([position]), 1)[0]
        columns = inputs.grid.assets.get_indexer(universe.assets)
        days.append(
            BacktestDay(
                label=inputs.grid.dates[holding].date().isoformat(),
                names=universe.assets.to_numpy(),
                universe=universe.universe,
                alphas={name: alphas[:, index] for index, name in enumerate(names)},
                returns=returns[columns],
            )
        )
        numbers.append(signals.number)
    return days, numbers, factor_names


def _merit(statistics: PortfolioStatistics) -> tuple[bool, float, float]:
    """Order single models by Sharpe; by total return when the season is too short for one."""
    sharpe = statistics.sharpe if math.isfinite(statistics.sharpe) else -math.inf
    total = statistics.total_return if math.isfinite(statistics.total_return) else -math.inf
    return math.isfinite(statistics.sharpe), sharpe, total


def statistics_table(result: SeasonBacktest) -> pd.DataFrame:
    """Return one row per portfolio (meta model, benchmark, models by Sharpe): the backtest's statistics."""
    order = [item.name for item in result.headline()]
    rest = sorted(
        (name for name in result.statistics if name not in order),
        key=lambda name: _merit(result.statistics[name]),
        reverse=True,
    )
    frame = pd.DataFrame([vars(result.statistics[name]) for name in [*order, *rest]])
    frame.insert(
        1, "role", ["meta model" if n == META_MODEL_NAME else _role(result, n) for n in frame["name"]]
    )
    return frame.rename(columns={"name": "portfolio"})


def _role(result: SeasonBacktest, name: str) -> str:
    if name == BENCHMARK_META_MODEL:
        return "benchmark meta model"
    return "best single model" if name == result.best_model else "single model"


def daily_table(result: SeasonBacktest) -> pd.DataFrame:
    """Return one row per (portfolio, holding day): returns, cost, turnover, gross/beta/factor exposures."""
    frames = []
    for name, path in result.paths.items():
        frame = pd.DataFrame(
            {
                "portfolio": name,
                "date": pd.to_datetime(list(path.labels)),
                "gross_return": path.gross_returns,
                "cost": path.costs,
                "net_return": path.net_returns,
                "turnover": path.turnover,
                "gross_exposure": path.gross_exposure,
                "beta_exposure": path.beta_exposure,
            }
        )
        for index, factor in enumerate(result.factor_names):
            frame[f"factor_{factor}"] = path.factor_exposures[:, index]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class BacktestFiles:
    """What :func:`write_backtest` wrote: the statistics (Parquet, CSV), the daily table, the charts."""

    statistics_parquet: Path
    statistics_csv: Path
    daily_parquet: Path
    charts: tuple[Path, ...]


def write_backtest(result: SeasonBacktest, directory: Path) -> BacktestFiles:
    """Write the backtest's tables (Parquet and CSV) and PNG charts into ``directory``; return the paths."""
    from crowdalpha.fund.charts import write_backtest_charts

    directory.mkdir(parents=True, exist_ok=True)
    table = statistics_table(result)
    files = BacktestFiles(
        directory / "fund_backtest.parquet",
        directory / "fund_backtest.csv",
        directory / "fund_backtest_daily.parquet",
        tuple(write_backtest_charts(result.paths, _chart_names(result), result.factor_names, directory)),
    )
    table.to_parquet(files.statistics_parquet, index=False)
    table.to_csv(files.statistics_csv, index=False)
    daily_table(result).to_parquet(files.daily_parquet, index=False)
    return files


def _chart_names(result: SeasonBacktest) -> dict[str, str]:
    """Return the portfolios the charts compare, by legend label."""
    labels = {META_MODEL_NAME: "meta model (SWMM)", BENCHMARK_META_MODEL: "benchmark meta model"}
    if result.best_model is not None:
        labels[result.best_model] = f"best model ({result.best_model.removeprefix(MODEL_PREFIX)})"
    return {name: label for name, label in labels.items() if name in result.paths}


def backtest_section(result: SeasonBacktest, directory: Path) -> tuple[str, str, list[Path]]:
    """Return the backtest as a report section: (title, HTML, PNG paths written into ``directory``)."""
    from crowdalpha.fund.charts import backtest_html

    files = write_backtest(result, directory)
    title = f"Fund backtest ({result.tournament}, {len(result.rounds)} rounds)"
    html = backtest_html(
        statistics_table(result),
        median_model_sharpe=result.median_model_sharpe,
        cost_bps=result.cost_bps,
        holding_days=result.holding_days,
    )
    return title, html, list(files.charts)


def season_report_section(
    ctx: Context,
    directory: Path,
    tournament: TournamentRef = "classic",
    *,
    cost_bps: float = DEFAULT_COST_BPS,
) -> tuple[str, str, list[Path]]:
    """Return the fund backtest of the home's season as a report section: (title, HTML, PNG paths)."""
    return backtest_section(backtest_season(ctx, tournament, cost_bps=cost_bps), directory)
