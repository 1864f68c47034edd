"""Round close and resolution: at-risk stakes and the meta model at close, payouts at resolution.

**At close** (inside the close job's transaction): every selected on-time submission's model has its
stake read from the ledger — the *at-risk stake*, fixed for the round — and the tournament's meta
model (Classic SWMM, Signals SNWMMmin10, Crypto CNWMMmin1: ``tournament.meta_model``) is built from
those submissions and stakes and published as the round's ``meta_model_<round>.parquet``. Late
submissions are never staked and never part of the meta model.

**At resolution** (one transaction, with the state change): the final score day's scores feed
``tournament.payouts``; each non-zero payout moves through the ledger under the idempotency key
``payout/<round>/<model>`` (treasury → stake, or stake → burn) — all of them as one ledger batch, a
few bulk statements for ten thousand models — releases due at the round complete,
the payouts and the round's summary are stored, and the round becomes *resolved*. A crash before
the commit leaves nothing; a re-run after it finds the round resolved and pays nothing again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from crowdalpha.scoring.stability import churn
from crowdalpha.service._tournaments import LoadedTournament, TournamentRef, load_tournament
from crowdalpha.service._universes import prepared_universe
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.service.ledger import (
    Payout,
    apply_payouts_in,
    at_risk_stakes_in,
    complete_releases_in,
    payout_key,
)
from crowdalpha.service.meta_models import publish_meta_model
from crowdalpha.service.scoring import ScoresPending, round_predictions, scored_predictions
from crowdalpha.service.web_leaderboard import refresh_leaderboards
from crowdalpha.store import NotFound, RoundState, UnitOfWork, run_transaction
from crowdalpha.store import Round as RoundRow
from crowdalpha.store.repositories import NewStake
from crowdalpha.tournament.config import TRUE_CONTRIBUTION
from crowdalpha.tournament.meta_model import MetaModelError, meta_model
from crowdalpha.tournament.payouts import gated_at_risk, payout_factor, payout_scores, payouts
from crowdalpha.tournament.submissions import UploadKind, validate_submission

# -- at close -----------------------------------------------------------------------------------------


def close_round_in(ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: RoundRow) -> int:
    """Snapshot the round's at-risk stakes and publish its meta model; return how many submissions are staked.

    Idempotent: a round whose stakes were snapshotted already is left as it is.
    """
    if uow.resolution.has_stakes(row.id):
        return 0
    on_time = uow.submissions.list_selected(row.id, statuses=[UploadKind.ON_TIME])
    at_risk_now = at_risk_stakes_in(uow, [item.model_id for item in on_time])
    stakes = [NewStake(item.id, item.model_id, at_risk_now[item.model_id]) for item in on_time]
    uow.resolution.add_stakes(row.id, stakes)
    at_risk = {stake.submission_id: stake.at_risk_nano for stake in stakes}
    predictions = scored_predictions(ctx, uow, loaded, row, {})
    columns = [column for column in predictions.values.columns if column in at_risk]
    if columns:
        stake_array = np.array([at_risk[column] for column in columns], dtype=np.int64)
        try:
            values = meta_model(
                loaded.config.meta_model, predictions.values[columns].to_numpy(np.float64), stake_array
            )
        except MetaModelError:
            values = None  # no model has the minimum stake: the round has no meta model (and no MMC)
        if values is not None:
            publish_meta_model(ctx, uow, loaded.name, row, pd.Series(values, index=predictions.values.index))
    return len(stakes)


# -- at resolution ------------------------------------------------------------------------------------


@dataclass
class ResolvedRound:
    """What a resolution paid: per model (name → nano-tokens), totals, the payout factor."""

    tournament: str
    number: int
    payout_factor: float
    total_at_risk_nano: int
    paid_nano: int
    burned_nano: int
    payouts: dict[str, int] = field(default_factory=dict)
    already: bool = False


def _final_scores(
    uow: UnitOfWork, loaded: LoadedTournament, row: RoundRow, stakes: list
) -> dict[str, np.ndarray]:
    """Return each payout score's final value (on its horizon's day) per staked submission (NaN: none)."""
    horizons = {score.name: score.horizon for score in loaded.config.scores}
    positions = {stake.submission_id: index for index, stake in enumerate(stakes)}
    result = {}
    for term in loaded.config.payout.terms:
        values = np.full(len(stakes), np.nan)
        stored = uow.scores.score_values(row.id, score=term.score, day=horizons[term.score])
        for submission_id, value in stored.items():
            if submission_id in positions:
                values[positions[submission_id]] = value
        result[term.score] = values
    return result


def _previous_predictions(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, model_id: str, before: RoundRow, limit: int
) -> list[pd.Series]:
    """Return the model's staked predictions of its ``limit`` most recent earlier rounds, newest first."""
    earlier = []
    for stake in uow.resolution.model_stakes(model_id):
        other = uow.rounds.get(stake.round_id)
        if other.tournament_id == before.tournament_id and other.number < before.number:
            earlier.append((other.number, stake))
    series = []
    for _, stake in sorted(earlier, key=lambda item: item[0], reverse=True)[:limit]:
        universe = uow.rounds.get_live_universe(stake.round_id)
        if universe is None:
            continue
        content = ctx.blobs.read_bytes(uow.submissions.get(stake.submission_id).blob_key)
        validated = validate_submission(content, prepared_universe(ctx, universe), loaded.config.submissions)
        series.append(validated.to_series())
    return series


def _unit_gross_weights(values: pd.Series) -> pd.Series:
    centred = values.rank(pct=True) - values.rank(pct=True).mean()
    gross = centred.abs().sum()
    return centred / gross if gross > 0 else centred


def _gate_metrics(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: RoundRow, stakes: list
) -> dict[str, np.ndarray]:
    """Return churn / turnover per staked submission against its model's earlier submissions (NaN: none).

    Churn is ``1 − Spearman`` on the ids both submissions hold; turnover compares rank-demeaned
    weights scaled to unit gross exposure on those ids.
    """
    metrics = {gate.metric for gate in loaded.config.gates}
    lookback = max((gate.lookback_rounds for gate in loaded.config.gates), default=1)
    predictions = round_predictions(ctx, uow, loaded, row, {})
    out = {name: np.full((len(stakes), lookback), np.nan) for name in metrics}
    for index, stake in enumerate(stakes):
        if stake.submission_id not in predictions.values.columns:
            continue
        current = predictions.values[stake.submission_id].dropna()
        for back, previous in enumerate(
            _previous_predictions(ctx, uow, loaded, stake.model_id, row, lookback)
        ):
            common = current.index.intersection(previous.index)
            if len(common) < 2:
                continue
            if "churn" in out:
                out["churn"][index, back] = float(
                    churn(previous[common].to_numpy(), current[common].to_numpy())
                )
            if "turnover" in out:
                change = _unit_gross_weights(current[common]) - _unit_gross_weights(previous[common])
                out["turnover"][index, back] = float(change.abs().sum() / 2)
    return out


def resolve_round_in(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: RoundRow, *, now: datetime
) -> ResolvedRound:
    """Resolve a scoring round inside ``uow`` (module doc); ScoresPending until its last day is scored."""
    if row.state == RoundState.RESOLVED.value:
        summary = uow.resolution.resolution(row.id)
        return _summary(uow, loaded, row, summary, already=True)
    if row.state not in (RoundState.CLOSED.value, RoundState.SCORING.value):
        raise ServiceError(
            "round_not_scoring",
            f"{loaded.name} round {row.number} is {row.state};"
            " a round resolves after it closes and is scored",
        )
    final_day = loaded.config.horizon
    if row.state == RoundState.CLOSED.value or final_day not in uow.scores.scored_days(row.id):
        raise ScoresPending(
            "scores_pending",
            f"{loaded.name} round {row.number} resolves after score day {final_day}; it is not scored yet",
        )
    if any(score.metric == TRUE_CONTRIBUTION for score in loaded.config.scores):
        # TC needs the fund optimizer (cvxpy, slow to import): loaded only by configs that score it
        from crowdalpha.service.tc_scores import store_tc_scores_in

        store_tc_scores_in(ctx, uow, loaded, row, now=now)
    stakes = uow.resolution.stakes(row.id)
    at_risk = np.array([stake.at_risk_nano for stake in stakes], dtype=np.int64)
    scores = _final_scores(uow, loaded, row, stakes)
    if loaded.config.gates:
        at_risk = gated_at_risk(loaded.config.gates, at_risk, _gate_metrics(ctx, uow, loaded, row, stakes))
    combined = payout_scores(loaded.config.payout, scores) if stakes else np.zeros(0)
    # a staked model without a payout score (its file could not be scored) neither earns nor burns
    at_risk = np.where(np.isnan(combined), 0, at_risk)
    total = int(at_risk.sum(dtype=object))
    amounts = (
        payouts(loaded.config.payout, at_risk, scores, total_at_risk_nano=total)
        if stakes
        else np.zeros(0, np.int64)
    )
    batch = [
        Payout(stake.model_id, int(amount), payout_key(row.id, stake.model_id), burn_at_most_held=True)
        for stake, amount in zip(stakes, amounts, strict=True)
        if amount != 0
    ]
    applied: dict[str, int] = {}
    for payout, receipt in zip(batch, apply_payouts_in(uow, row.id, batch, now=now), strict=True):
        if not receipt.applied:
            raise ServiceError(
                receipt.rule or "payout_rejected", receipt.detail or "the ledger refused a payout"
            )
        applied[payout.model_id] = int(receipt.result["amount_nano"])
    # what moved: a burn larger than what the model still held took all of it and no more
    amounts = np.array([applied.get(stake.model_id, 0) for stake in stakes], dtype=np.int64)
    complete_releases_in(uow, row, now=now)
    uow.resolution.set_payouts(
        row.id,
        {
            stake.submission_id: (None if np.isnan(value) else float(value), int(amount))
            for stake, value, amount in zip(stakes, combined, amounts, strict=True)
        },
    )
    paid = int(amounts[amounts > 0].sum(dtype=object)) if len(amounts) else 0
    burned = int(-amounts[amounts < 0].sum(dtype=object)) if len(amounts) else 0
    summary = uow.resolution.add_resolution(
        row.id,
        total_at_risk_nano=total,
        payout_factor=payout_factor(total, loaded.config.payout.stake_threshold) if total else 1.0,
        paid_nano=paid,
        burned_nano=burned,
        models=int((at_risk > 0).sum()),
        now=now,
    )
    uow.rounds.transition(row.id, [RoundState.SCORING], RoundState.RESOLVED, now=now)
    return _summary(uow, loaded, row, summary, already=False)


def _summary(
    uow: UnitOfWork, loaded: LoadedTournament, row: RoundRow, summary, *, already: bool
) -> ResolvedRound:
    resolved = ResolvedRound(
        loaded.name,
        row.number,
        summary.payout_factor if summary else 1.0,
        summary.total_at_risk_nano if summary else 0,
        summary.paid_nano if summary else 0,
        summary.burned_nano if summary else 0,
        already=already,
    )
    resolved.payouts.update(uow.resolution.payouts_by_model_name(row.id))
    return resolved


def resolve_round(ctx: Context, tournament: TournamentRef, number: int) -> ResolvedRound:
    """Resolve a tournament's round ``number`` (payouts, releases, state) in one transaction; its summary."""
    now = ctx.now()

    def work(uow: UnitOfWork) -> ResolvedRound:
        loaded = load_tournament(uow, tournament)
        row = uow.rounds.get_by_number(loaded.id, number)
        if row is None:
            raise NotFound(f"{loaded.name} has no round {number}")
        return resolve_round_in(ctx, uow, loaded, row, now=now)

    resolved = run_transaction(ctx.engine, work)
    refresh_leaderboards(ctx)  # right after: the leaderboards the resolution changed (idempotent)
    return resolved
