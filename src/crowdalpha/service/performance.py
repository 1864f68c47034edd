"""Read-only views of models' performance: public profiles, stored daily scores, reputations, leaderboards.

Scores are the ones the daily scoring stored (``submission_scores``, one value per submission,
score name and score day). A round's **final** score of a name is its value on the last scored
day. Reputations and leaderboards follow :mod:`crowdalpha.tournament.reputation` over the final
scores of **resolved** rounds, as of the context's clock; a round resolved on the date its
resolution was recorded (else its scheduled ``resolve_time``). A model's weight in its account's
round score is its at-risk stake snapshotted at the round's close (0 when it had none, e.g. late).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd

from crowdalpha.ledger import stake_account
from crowdalpha.service._tournaments import LoadedTournament, TournamentRef, load_tournament
from crowdalpha.service.accounts import AccountRef, resolve_account
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.store import Model, NotFound, RoundState, UnitOfWork, run_transaction
from crowdalpha.store import Round as RoundRow
from crowdalpha.store.schema import SubmissionScore
from crowdalpha.tournament.config import TournamentConfig
from crowdalpha.tournament.payouts import payout_scores, payouts
from crowdalpha.tournament.reputation import (
    ACCOUNT,
    AT_RISK,
    MODEL,
    RESOLVED_ON,
    ROUND,
    ReputationSettings,
    account_reputation,
    reputation,
)

SERVED_REPUTATION = ReputationSettings(bootstrap_samples=1)
"""The 1-year reputation; these views serve no interval, so one bootstrap resample keeps them cheap."""


@dataclass(frozen=True)
class ModelProfile:
    """A model's public profile: who owns it, since when, and its stake (nano, excluding pending release)."""

    model_id: str
    name: str
    tournament_id: int
    username: str
    created_at: datetime
    stake_nano: int


@dataclass(frozen=True)
class ScoreRecord:
    """One stored score of a model's submission: score name, score day k, market date, value, percentile."""

    round_id: str
    round_number: int
    submission_id: str
    score: str
    day: int
    date: date
    value: float
    percentile: float | None
    resolved: bool
    round_resolve_time: datetime | None
    round_score_time: datetime | None
    round_close_staking_time: datetime


@dataclass(frozen=True)
class PayoutMultiplier:
    """A payout score term of the tournament: ``multiplier × score``."""

    score: str
    display_name: str
    multiplier: float


@dataclass(frozen=True)
class RoundPerformance:
    """A round the model has a selected submission in: its final and its daily scores (all days)."""

    round_id: str
    round_number: int
    open_time: datetime
    resolve_time: datetime | None
    resolved: bool
    final_scores: tuple[ScoreRecord, ...]
    daily_scores: tuple[ScoreRecord, ...]
    payout_multipliers: tuple[PayoutMultiplier, ...]
    at_risk_nano: int | None = None
    payout_nano: int | None = None
    payout_factor: float | None = None
    projected_payout_nano: int | None = None
    """Before resolution, what the payout rule gives on the latest scores (staked rounds only)."""


@dataclass(frozen=True)
class Standing:
    """A leaderboard row: a model (or account), its stake, and per score its reputation and rank."""

    name: str
    owner: str
    stake_nano: int
    rank: int | None
    reputations: dict[str, float | None] = field(default_factory=dict)
    ranks: dict[str, int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class DailyPerformance:
    """A model's reputation and rank of each score as of one date a round of it resolved."""

    date: date
    reputations: dict[str, float | None]
    ranks: dict[str, int | None]


# -- profiles ------------------------------------------------------------------------------------------


def _model_by_name(uow: UnitOfWork, loaded: LoadedTournament, model_name: str) -> Model:
    model = uow.models.get_by_name(loaded.id, model_name)
    if model is None:
        raise NotFound(f"no model named {model_name!r} in {loaded.name}")
    return model


def _stakes(uow: UnitOfWork, model_ids: Iterable[str]) -> dict[str, int]:
    names = {stake_account(model_id): model_id for model_id in model_ids}
    held = {row.name: row.balance for row in uow.ledger.balances(names=list(names))}
    return {model_id: held.get(name, 0) for name, model_id in names.items()}


def model_profile(ctx: Context, tournament: TournamentRef, model_name: str) -> ModelProfile:
    """Return the public profile of the tournament's model called ``model_name``; ``not_found`` otherwise."""
    if not model_name:
        raise ServiceError("missing_model_name", "pass the name of a model")

    def work(uow: UnitOfWork) -> ModelProfile:
        model = _model_by_name(uow, load_tournament(uow, tournament), model_name)
        owner = uow.accounts.get(model.account_id)
        stake = _stakes(uow, [model.id])[model.id]
        return ModelProfile(
            model.id, model.name, model.tournament_id, owner.username, model.created_at, stake
        )

    return run_transaction(ctx.engine, work, read_only=True)


# -- stored scores -----------------------------------------------------------------------------------


def _record(score: SubmissionScore, market_date: date, row: RoundRow) -> ScoreRecord:
    return ScoreRecord(
        round_id=row.id,
        round_number=row.number,
        submission_id=score.submission_id,
        score=score.score,
        day=score.day,
        date=market_date,
        value=score.value,
        percentile=score.percentile,
        resolved=row.state == RoundState.RESOLVED.value,
        round_resolve_time=row.resolve_time,
        round_score_time=row.score_time,
        round_close_staking_time=row.close_staking_time,
    )


def _model_records(uow: UnitOfWork, model_id: str) -> list[ScoreRecord]:
    rounds: dict[str, RoundRow] = {}
    records = []
    for score, market_date in uow.scores.model_scores(model_id):
        if score.round_id not in rounds:
            rounds[score.round_id] = uow.rounds.get(score.round_id)
        records.append(_record(score, market_date, rounds[score.round_id]))
    return sorted(records, key=lambda r: (r.round_number, r.day, r.score))


def final_scores(records: Iterable[ScoreRecord]) -> list[ScoreRecord]:
    """Return each (round, score name)'s record of its last scored day, in the records' order."""
    latest: dict[tuple[str, str], ScoreRecord] = {}
    for record in records:
        key = (record.round_id, record.score)
        if key not in latest or record.day > latest[key].day:
            latest[key] = record
    return sorted(latest.values(), key=lambda r: (r.round_number, r.day, r.score))


def submission_scores(
    ctx: Context,
    model_id: str,
    *,
    tournament: TournamentRef | None = None,
    score: str | None = None,
    day: int | None = None,
    resolved: bool | None = None,
    last_n_rounds: int | None = None,
    distinct_on_round: bool = False,
) -> list[ScoreRecord]:
    """Return a model's stored scores by round, day and name, filtered as numerapi's submission_scores asks.

    ``last_n_rounds`` keeps the model's latest N scored rounds; ``distinct_on_round`` keeps, after
    the other filters, each round's latest day of each score name.
    """
    if last_n_rounds is not None and last_n_rounds < 1:
        raise ServiceError("invalid_last_n_rounds", f"lastNRounds must be ≥ 1; got {last_n_rounds}")

    def work(uow: UnitOfWork) -> list[ScoreRecord]:
        model = uow.models.get(model_id)
        return _model_records(uow, model.id) if _in_tournament(uow, model, tournament) else []

    records = run_transaction(ctx.engine, work, read_only=True)
    records = [
        r
        for r in records
        if (score is None or r.score == score)
        and (day is None or r.day == day)
        and (resolved is None or r.resolved == resolved)
    ]
    if last_n_rounds is not None:
        kept = sorted({r.round_number for r in records})[-last_n_rounds:]
        records = [r for r in records if r.round_number in kept]
    return final_scores(records) if distinct_on_round else records


def _in_tournament(uow: UnitOfWork, model: Model, tournament: TournamentRef | None) -> bool:
    return tournament is None or load_tournament(uow, tournament).id == model.tournament_id


def round_performances(
    ctx: Context, model_id: str, *, tournament: TournamentRef | None = None
) -> list[RoundPerformance]:
    """Return the rounds the model has a selected submission in, newest first, with their scores.

    A model of another tournament than ``tournament`` has none.
    """

    def work(uow: UnitOfWork) -> list[RoundPerformance]:
        model = uow.models.get(model_id)
        if not _in_tournament(uow, model, tournament):
            return []
        config = load_tournament(uow, model.tournament_id).config
        names = {item.name: item.display_name or item.name for item in config.scores}
        multipliers = tuple(
            PayoutMultiplier(term.score, names.get(term.score, term.score), term.multiplier)
            for term in config.payout.terms
        )
        records = _model_records(uow, model.id)
        round_ids = {s.round_id for s in uow.submissions.list_for_model(model.id) if s.selected}
        rows = sorted((uow.rounds.get(round_id) for round_id in round_ids), key=lambda r: -r.number)
        stakes = {stake.round_id: stake for stake in uow.resolution.model_stakes(model.id)}
        summaries = {row.id: uow.resolution.resolution(row.id) for row in rows}
        loaded = load_tournament(uow, model.tournament_id)
        projected = {
            row.id: _projected_payouts(uow, loaded, row).get(stakes[row.id].submission_id, 0)
            for row in rows
            if row.id in stakes
            and stakes[row.id].at_risk_nano > 0
            and row.state in (RoundState.CLOSED.value, RoundState.SCORING.value)
        }
        return [
            RoundPerformance(
                round_id=row.id,
                round_number=row.number,
                open_time=row.open_time,
                resolve_time=row.resolve_time,
                resolved=row.state == RoundState.RESOLVED.value,
                final_scores=tuple(final_scores(r for r in records if r.round_id == row.id)),
                daily_scores=tuple(r for r in records if r.round_id == row.id),
                payout_multipliers=multipliers,
                at_risk_nano=stakes[row.id].at_risk_nano if row.id in stakes else None,
                payout_nano=stakes[row.id].payout_nano if row.id in stakes else None,
                payout_factor=summary.payout_factor if (summary := summaries[row.id]) else None,
                projected_payout_nano=projected.get(row.id),
            )
            for row in rows
        ]

    return run_transaction(ctx.engine, work, read_only=True)


# -- reputations and leaderboards ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Resolved:
    loaded: LoadedTournament
    models: list[Model]
    usernames: dict[str, str]
    stakes: dict[str, int]
    frame: pd.DataFrame


def _resolved_frame(
    rows: list[tuple[SubmissionScore, Model, RoundRow]],
    scores: list[str],
    at_risk: dict[tuple[str, str], int],
    resolved_on: dict[str, date],
) -> pd.DataFrame:
    """Return one row per (model, resolved round): account, resolve date, at-risk stake, final scores."""
    finals: dict[tuple[str, int], dict] = {}
    days: dict[tuple[str, int, str], int] = {}
    for score, model, row in rows:
        key = (model.id, row.number)
        entry = finals.setdefault(
            key,
            {
                MODEL: model.id,
                ACCOUNT: model.account_id,
                ROUND: row.number,
                RESOLVED_ON: resolved_on[row.id],
                AT_RISK: at_risk.get((row.id, model.id), 0),
            },
        )
        if score.day >= days.get((model.id, row.number, score.score), 0):
            days[(model.id, row.number, score.score)] = score.day
            entry[score.score] = score.value
    columns = [MODEL, ACCOUNT, ROUND, RESOLVED_ON, AT_RISK, *scores]
    frame = pd.DataFrame(list(finals.values()), columns=columns)
    frame[AT_RISK] = frame[AT_RISK].astype(np.int64)
    frame[scores] = frame[scores].astype(np.float64)
    return frame


def _load_resolved(ctx: Context, tournament: TournamentRef) -> _Resolved:
    def work(uow: UnitOfWork) -> _Resolved:
        loaded = load_tournament(uow, tournament)
        models = uow.models.list(tournament_id=loaded.id)
        usernames = {owner: uow.accounts.get(owner).username for owner in {m.account_id for m in models}}
        scores = [item.name for item in loaded.config.scores]
        rows = uow.scores.resolved_scores(loaded.id)
        rounds = {row.id: row for _, _, row in rows}
        at_risk = {
            (stake.round_id, stake.model_id): stake.at_risk_nano
            for round_id in rounds
            for stake in uow.resolution.stakes(round_id)
        }
        resolved_on = {}
        for round_id, row in rounds.items():
            summary = uow.resolution.resolution(round_id)
            moment = summary.resolved_at if summary is not None else row.resolve_time or row.updated_at
            resolved_on[round_id] = moment.date()
        frame = _resolved_frame(rows, scores, at_risk, resolved_on)
        return _Resolved(loaded, models, usernames, _stakes(uow, [m.id for m in models]), frame)

    return run_transaction(ctx.engine, work, read_only=True)


def _entity_scores(
    key: str, tables: dict[str, pd.DataFrame]
) -> tuple[dict[str, float | None], dict[str, int | None]]:
    """Return an entity's reputation and rank of each score (None where unranked or not computed)."""
    reputations: dict[str, float | None] = {}
    ranks: dict[str, int | None] = {}
    for score, table in tables.items():
        value, rank = table["reputation"].get(key), table["rank"].get(key)
        reputations[score] = None if value is None or pd.isna(value) else float(value)
        ranks[score] = None if rank is None or pd.isna(rank) else int(rank)
    return reputations, ranks


def _tables(resolved: _Resolved, entity: str, as_of: date) -> dict[str, pd.DataFrame]:
    """Return each score's reputation table of the entity (empty tables before any round resolved)."""
    frame = resolved.frame
    tables = {}
    for item in resolved.loaded.config.scores:
        if frame.empty:
            tables[item.name] = pd.DataFrame(columns=["reputation", "rank"])
        elif entity == ACCOUNT:
            tables[item.name] = account_reputation(frame, item.name, as_of=as_of, settings=SERVED_REPUTATION)
        else:
            tables[item.name] = reputation(
                frame, item.name, as_of=as_of, entity=MODEL, settings=SERVED_REPUTATION
            )
    return tables


def _standing(
    key: str, name: str, owner: str, stake: int, tables: dict[str, pd.DataFrame], ranked_by: str
) -> Standing:
    reputations, ranks = _entity_scores(key, tables)
    return Standing(name, owner, stake, ranks.get(ranked_by), reputations, ranks)


def _ranked(standings: list[Standing], limit: int | None, offset: int) -> list[Standing]:
    if offset < 0 or (limit is not None and limit < 0):
        raise ServiceError(
            "invalid_page", f"limit and offset must be ≥ 0; got limit {limit}, offset {offset}"
        )
    ordered = sorted(standings, key=lambda s: (s.rank is None, s.rank or 0, s.name))
    return ordered[offset : None if limit is None else offset + limit]


def ranking_score(config: TournamentConfig, is_ranked: Callable[[str], bool]) -> str:
    """Return the score that ranks a leaderboard: the first payout score, else the first score, ranked.

    Candidates are the payout terms' scores, then the tournament's other scores, in config order;
    the first one ``is_ranked`` (some entity has a rank of it) wins (e.g. Signals' ALPHA before it
    is computed: MMC).
    """
    candidates = [term.score for term in config.payout.terms] + [item.name for item in config.scores]
    return next((score for score in candidates if is_ranked(score)), candidates[0])


def _ranking_score(loaded: LoadedTournament, tables: dict[str, pd.DataFrame]) -> str:
    return ranking_score(
        loaded.config, lambda score: score in tables and bool(tables[score]["rank"].notna().any())
    )


def model_leaderboard(
    ctx: Context, tournament: TournamentRef, *, limit: int | None = None, offset: int = 0
) -> list[Standing]:
    """Return the tournament's models by rank of reputation of the ranking score (unranked last)."""
    resolved = _load_resolved(ctx, tournament)
    tables = _tables(resolved, MODEL, ctx.now().date())
    ranked_by = _ranking_score(resolved.loaded, tables)
    standings = [
        _standing(m.id, m.name, resolved.usernames[m.account_id], resolved.stakes[m.id], tables, ranked_by)
        for m in resolved.models
    ]
    return _ranked(standings, limit, offset)


def account_leaderboard(
    ctx: Context, tournament: TournamentRef, *, limit: int | None = None, offset: int = 0
) -> list[Standing]:
    """Return the accounts with models in the tournament by rank of account reputation (unranked last)."""
    resolved = _load_resolved(ctx, tournament)
    tables = _tables(resolved, ACCOUNT, ctx.now().date())
    ranked_by = _ranking_score(resolved.loaded, tables)
    staked: dict[str, int] = {}
    for m in resolved.models:
        staked[m.account_id] = staked.get(m.account_id, 0) + resolved.stakes[m.id]
    standings = [
        _standing(
            account_id,
            resolved.usernames[account_id],
            resolved.usernames[account_id],
            stake,
            tables,
            ranked_by,
        )
        for account_id, stake in staked.items()
    ]
    return _ranked(standings, limit, offset)


def daily_performances(ctx: Context, tournament: TournamentRef, model_name: str) -> list[DailyPerformance]:
    """Return the model's reputation and rank of each score as of each date one of its rounds resolved."""
    profile = model_profile(ctx, tournament, model_name)
    resolved = _load_resolved(ctx, tournament)
    frame = resolved.frame
    today = ctx.now().date()
    dates = sorted({d for d in frame.loc[frame[MODEL] == profile.model_id, RESOLVED_ON] if d <= today})
    performances = []
    for day in dates:
        tables = _tables(resolved, MODEL, day)
        performances.append(DailyPerformance(day, *_entity_scores(profile.model_id, tables)))
    return performances


# -- payouts -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelPayout:
    """A model's payout of one round (nano-tokens; > 0 earned, < 0 burned): settled, or projected."""

    round_id: str
    round_number: int
    round_resolve_time: datetime | None
    model_id: str
    model_name: str
    payout_nano: int


@dataclass(frozen=True)
class ModelPayouts:
    """An account's payouts in a tournament: ``actual`` (resolved rounds), ``pending`` (rounds scoring)."""

    actual: tuple[ModelPayout, ...]
    pending: tuple[ModelPayout, ...]


def _latest_scores(uow: UnitOfWork, loaded: LoadedTournament, row: RoundRow) -> dict[str, dict[str, float]]:
    """Return each payout score's latest value so far (its last scored day ≤ its horizon) by submission."""
    horizons = {score.name: score.horizon for score in loaded.config.scores}
    latest: dict[str, dict[str, float]] = {}
    for term in loaded.config.payout.terms:
        days = [day for day in uow.scores.scored_days(row.id) if day <= horizons[term.score]]
        if not days:
            latest[term.score] = {}
            continue
        rows = uow.scores.list_scores(row.id, score=term.score, day=max(days))
        latest[term.score] = {score.submission_id: score.value for score in rows}
    return latest


def _projected_payouts(uow: UnitOfWork, loaded: LoadedTournament, row: RoundRow) -> dict[str, int]:
    """Return the payout each staked submission would get if the round resolved on its latest scores.

    The round's payout rule on its at-risk stakes at close and the latest stored value of each
    payout score (a submission lacking one projects 0); Signals gates are applied only at
    resolution, so a gated model's projection can differ from what it is paid.
    """
    stakes = [stake for stake in uow.resolution.stakes(row.id) if stake.at_risk_nano > 0]
    if not stakes:
        return {}
    latest = _latest_scores(uow, loaded, row)
    scores = {
        name: np.array([by_submission.get(stake.submission_id, np.nan) for stake in stakes])
        for name, by_submission in latest.items()
    }
    at_risk = np.array([stake.at_risk_nano for stake in stakes], dtype=np.int64)
    # as the resolution does: a stake without a payout score neither earns nor counts in the factor
    at_risk = np.where(np.isnan(payout_scores(loaded.config.payout, scores)), 0, at_risk)
    total = int(at_risk.sum(dtype=object))
    amounts = payouts(loaded.config.payout, at_risk, scores, total_at_risk_nano=total)
    return {stake.submission_id: int(amount) for stake, amount in zip(stakes, amounts, strict=True)}


def model_payouts(ctx: Context, account: AccountRef, tournament: TournamentRef) -> ModelPayouts:
    """Return the payouts of an account's models in a tournament: settled ones and projected ones.

    ``actual``: every resolved round a model was staked in, with the payout the resolution
    applied (0 when its scores netted nothing). ``pending``: every closed or scoring round a model
    is staked in, with the payout its latest scores project (:func:`_projected_payouts`).
    Newest round first.
    """

    def work(uow: UnitOfWork) -> ModelPayouts:
        loaded = load_tournament(uow, tournament)
        owner = resolve_account(uow, account)
        models = {model.id: model for model in uow.models.list(account_id=owner.id, tournament_id=loaded.id)}
        actual: list[ModelPayout] = []
        pending: list[ModelPayout] = []
        projections: dict[str, dict[str, int]] = {}
        for model in models.values():
            for stake in uow.resolution.model_stakes(model.id):
                if stake.at_risk_nano <= 0:
                    continue
                row = uow.rounds.get(stake.round_id)
                if row.state == RoundState.RESOLVED.value:
                    amount = stake.payout_nano or 0
                    target = actual
                elif row.state in (RoundState.CLOSED.value, RoundState.SCORING.value):
                    if row.id not in projections:
                        projections[row.id] = _projected_payouts(uow, loaded, row)
                    amount = projections[row.id].get(stake.submission_id, 0)
                    target = pending
                else:
                    continue
                target.append(ModelPayout(row.id, row.number, row.resolve_time, model.id, model.name, amount))

        def newest_first(items: list[ModelPayout]) -> tuple[ModelPayout, ...]:
            return tuple(sorted(items, key=lambda item: (-item.round_number, item.model_name)))

        return ModelPayouts(newest_first(actual), newest_first(pending))

    return run_transaction(ctx.engine, work, read_only=True)
