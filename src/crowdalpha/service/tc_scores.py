"""True Contribution (TC) as a stored score: each model's contribution to the fund's realised return.

A tournament computes TC when its config lists a score of metric ``true_contribution`` and sets
``fund`` (:class:`~crowdalpha.tournament.config.FundRule`); both are off by default. For such a
score of horizon ``h`` and a round whose score day ``h`` is scored, :func:`store_tc_scores_in`
(called by the resolution step, inside its transaction, before the payout scores are read):

1. builds the fund's universe of the round's live assets at its data date from the market store
   (:func:`crowdalpha.service.fund_universe.universe_at`) and the fund's optimizer;
2. takes every selected submission's fund alpha
   (:func:`crowdalpha.service.fund_universe.fund_alphas`: ``alpha_scale ×`` the cleaned
   Gaussianised ranks less their fit on the universe's risk exposures) as ``P`` and the
   at-risk stakes at close as ``s`` (late submissions and stakes below the meta model's minimum
   count at zero stake), so the fund trades ``α = Σ sⱼPⱼ / Σ s`` — the round's SWMM in alpha units;
3. differentiates the realised portfolio return ``rᵀw*(α)``, with ``r`` the score target's residual
   return over the ``h`` days (fractions; an id without one counts 0), through the optimizer
   (:func:`crowdalpha.fund.true_contribution`) and stores, under the score's name on day ``h``,

       TC_j = Σs · ∂(rᵀw*)/∂s_j = gᵀ(P_j − α),

   the fund's realised return gained per whole stake pool moved to model j (a fraction, like CORR,
   independent of the stake unit), with its percentile among on-time submissions.

It stores a score once: a score already stored for the round is left as it is, so re-running the
resolution computes nothing twice. A score whose day is not scored yet is skipped (named in the
result), never an error, so it cannot hold up a resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from crowdalpha.fund import FundError, true_contribution
from crowdalpha.market.targets import residual_returns
from crowdalpha.service._tournaments import LoadedTournament
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.service.fund_universe import fund_alphas, fund_optimizer, universe_at
from crowdalpha.service.market import market_through
from crowdalpha.service.scoring import (
    NoLiveData,
    ScoresPending,
    _neutralization,
    _stored_scores,
    round_id_assets,
    round_predictions,
    target_inputs,
)
from crowdalpha.store import Round, UnitOfWork
from crowdalpha.store.schema import RoundLiveData
from crowdalpha.tournament.config import TRUE_CONTRIBUTION, FundRule, ScoreConfig
from crowdalpha.tournament.payouts import tokens_to_nano


@dataclass
class StoredContributions:
    """What :func:`store_tc_scores_in` did for one round: TC values stored per score, and scores skipped."""

    round_number: int
    stored: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def tc_scores(config_scores: tuple[ScoreConfig, ...]) -> list[ScoreConfig]:
    """Return the scores of a config computed through the fund (metric ``true_contribution``)."""
    return [score for score in config_scores if score.metric == TRUE_CONTRIBUTION]


def store_tc_scores_in(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: Round, *, now: datetime
) -> StoredContributions:
    """Store every TC score of the round not stored yet whose day is scored (module doc); report the rest."""
    result = StoredContributions(row.number)
    scores = tc_scores(loaded.config.scores)
    rule = loaded.config.fund
    if not scores or rule is None:
        return result
    live = uow.scores.live_data(row.id)
    if live is None:
        raise NoLiveData(
            "no_private_live_data", f"{loaded.name} round {row.number} has no private live data for TC"
        )
    scored_days = uow.scores.scored_days(row.id)
    for score in scores:
        if uow.scores.list_scores(row.id, score=score.name, day=score.horizon):
            continue
        if score.horizon not in scored_days:  # never blocks a resolution: a later call stores it
            result.skipped[score.name] = f"score day {score.horizon} is not scored yet"
            continue
        found = _round_contributions(ctx, uow, loaded, row, score, rule, live, result)
        if found is None:
            continue
        values, on_time = found
        result.stored[score.name] = uow.scores.add_scores(
            row.id, [_stored_scores(score.name, score.horizon, values, on_time)], now=now
        )
    return result


def _round_contributions(
    ctx: Context,
    uow: UnitOfWork,
    loaded: LoadedTournament,
    row: Round,
    score: ScoreConfig,
    rule: FundRule,
    live: RoundLiveData,
    result: StoredContributions,
) -> tuple[pd.Series, pd.Series] | None:
    """Return TC and on-time flags per submission id for one score of the round, or None (why: ``result``)."""
    selected = round_predictions(ctx, uow, loaded, row, {})
    predictions = selected.values
    if predictions.shape[1] == 0:
        result.skipped[score.name] = "the round has no scored submissions"
        return None
    minimum = tokens_to_nano(loaded.config.meta_model.min_stake)
    at_risk = {stake.submission_id: stake.at_risk_nano for stake in uow.resolution.stakes(row.id)}
    stakes = np.array(
        [
            at_risk.get(column, 0) if at_risk.get(column, 0) >= minimum else 0
            for column in predictions.columns
        ],
        dtype=np.float64,
    )
    if stakes.sum() <= 0:
        result.skipped[score.name] = "no submission is staked: the round has no meta model to differentiate"
        return None
    through = market_through(ctx)
    if through is None:
        raise ScoresPending(
            "no_market_data", "the market store is empty; run `crowdalpha market ingest FILE`"
        )
    inputs = target_inputs(ctx, loaded.config, through)
    assets = round_id_assets(ctx, live).reindex(predictions.index)
    universe = universe_at(inputs, live.live_date, list(assets), risk_window=rule.risk_window)
    realised = residual_returns(
        inputs, [pd.Timestamp(live.live_date)], score.horizon, neutral_to=_neutralization(score.target)
    ).iloc[0]
    returns = np.nan_to_num(realised.reindex(universe.assets).to_numpy(), nan=0.0)
    signals = fund_alphas(rule, predictions.to_numpy(np.float64), universe)
    try:
        contributions = true_contribution(
            fund_optimizer(universe, rule), signals, stakes, returns, bags=rule.bags, seed=row.number
        )
    except FundError as error:
        raise ServiceError("fund_failed", f"{loaded.name} round {row.number} TC: {error}") from None
    return pd.Series(contributions * stakes.sum(), index=predictions.columns), selected.on_time
