"""The fund's universe at a date, from the market store: names, betas, sectors, countries, factor model.

Everything is known at the close of the date ``as_of``: style exposures
(:func:`crowdalpha.market.factors.style_exposure_matrices`, standardised, unknown → 0), sector
and country labels of that day's rows, the 60-day market beta, and the factor risk model fitted
to the ``risk_window`` daily returns ending at ``as_of``
(:func:`crowdalpha.fund.risk_model.estimate_universe`).
Target inputs of a panel through a later date give the same universe, since every piece looks
only backwards from its date; so one :class:`~crowdalpha.market.targets.TargetInputs` serves a
whole season.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from crowdalpha.fund import ConstraintSet, FundError, PortfolioOptimizer, Universe
from crowdalpha.fund.alpha import residual_alpha
from crowdalpha.fund.risk_model import estimate_universe
from crowdalpha.market.factors import BETA_WINDOW
from crowdalpha.market.features import market_return, rolling_beta
from crowdalpha.market.targets import TargetInputs, prepare_target_inputs
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.service.market import market_panel
from crowdalpha.tournament.config import FundRule
from crowdalpha.tournament.meta_model import cleaned_gaussian_ranks

DEFAULT_FUND = FundRule()


@dataclass(frozen=True, eq=False)
class MarketUniverse:
    """The fund's universe at a date: its asset ids (the universe's row order), factor names, risk model."""

    as_of: date
    assets: pd.Index
    factor_names: tuple[str, ...]
    universe: Universe


def date_position(inputs: TargetInputs, as_of: date) -> int:
    """Return the row of ``as_of`` in the inputs' trading dates; ``ServiceError`` if it is not one."""
    dates = inputs.grid.dates
    position = int(dates.searchsorted(pd.Timestamp(as_of)))
    if position == len(dates) or dates[position] != pd.Timestamp(as_of):
        raise ServiceError(
            "not_a_market_date", f"{as_of.isoformat()} is not a trading date of the market store"
        )
    return position


def universe_at(
    inputs: TargetInputs,
    as_of: date,
    assets: Sequence[str] | None = None,
    *,
    risk_window: int = DEFAULT_FUND.risk_window,
) -> MarketUniverse:
    """Return the universe of ``assets`` (default: all with a row) as known at the close of ``as_of``."""
    position = date_position(inputs, as_of)
    present = inputs.present[position]
    if assets is None:
        columns = np.flatnonzero(present)
    else:
        columns = inputs.grid.assets.get_indexer(pd.Index(assets))
        absent = [
            asset for asset, column in zip(assets, columns, strict=True) if column < 0 or not present[column]
        ]
        if absent:
            raise ServiceError(
                "asset_not_in_market",
                f"assets {absent[:5]} have no market row on {as_of.isoformat()} (rule: the fund trades"
                " only names the market store holds at the date)",
            )
    if position < 2:
        raise ServiceError(
            "risk_window_too_short",
            f"the market store has {position + 1} trading dates through {as_of.isoformat()};"
            " the risk model needs at least 3",
        )
    start = max(0, position - max(risk_window, BETA_WINDOW))
    with np.errstate(divide="ignore", invalid="ignore"):
        closes = inputs.close[start : position + 1]
        daily = closes[1:] / closes[:-1] - 1.0
    # only the date's own beta: its trailing window, not the rolling series down the whole slice
    betas = rolling_beta(daily[:, columns], market_return(daily), BETA_WINDOW, last=1)["beta"][-1]
    styles = tuple(inputs.styles)
    exposures = np.stack([inputs.styles[name][position, columns] for name in styles], axis=1)
    try:
        universe = estimate_universe(
            daily[-risk_window:, columns],
            exposures,
            inputs.groups["sector"][position, columns],
            inputs.groups["country"][position, columns],
            betas,
        )
    except FundError as error:
        raise ServiceError("risk_model_failed", f"the risk model of {as_of.isoformat()}: {error}") from None
    return MarketUniverse(as_of, inputs.grid.assets[columns], styles, universe)


def market_universe(
    ctx: Context, as_of: date, assets: Sequence[str] | None = None, *, rule: FundRule = DEFAULT_FUND
) -> MarketUniverse:
    """Return the fund's universe at ``as_of`` from the market store as the server knew it at that close."""
    panel = market_panel(ctx, through=as_of)
    if panel is None:
        raise ServiceError(
            "no_market_data", "the market store is empty; run `crowdalpha market ingest FILE` first"
        )
    return universe_at(prepare_target_inputs(panel), as_of, assets, risk_window=rule.risk_window)


def fund_alphas(rule: FundRule, predictions: np.ndarray, universe: MarketUniverse) -> np.ndarray:
    """Return each prediction column's alpha (ids × models, universe order; expected residual return).

    ``alpha_scale ×`` the cleaned Gaussianised ranks, minus their fit on the universe's risk
    exposures (:func:`crowdalpha.fund.alpha.residual_alpha`): the fund trades what the signals say
    about residual returns, never their sector, country, style or beta tilts.
    """
    ranks = cleaned_gaussian_ranks(np.asarray(predictions, dtype=np.float64))
    return rule.alpha_scale * residual_alpha(ranks, universe.universe)


def constraint_set(rule: FundRule) -> ConstraintSet:
    """Return the optimizer's limits of a tournament's fund rule."""
    return ConstraintSet(
        dollar_neutral=rule.dollar_neutral,
        beta_limit=rule.beta_limit,
        sector_limit=rule.sector_limit,
        country_limit=rule.country_limit,
        factor_limit=rule.factor_limit,
        name_cap=rule.name_cap,
        gross_leverage=rule.gross_leverage,
    )


def fund_optimizer(
    universe: MarketUniverse, rule: FundRule, solver_settings: dict | None = None
) -> PortfolioOptimizer:
    """Return the portfolio optimizer of ``rule`` over ``universe`` (built once, re-solved per alpha)."""
    return PortfolioOptimizer(
        universe.universe,
        constraint_set(rule),
        risk_aversion=rule.risk_aversion,
        solver_settings=solver_settings,
    )
