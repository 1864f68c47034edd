"""Read-only views behind the home, model and round pages (one read-only transaction each, plain dataclasses).

* :func:`home_overview` — each tournament's open round, rounds in scoring, totals (models, stake
  at risk now, the last resolution's payouts), the crowd's cumulative stake-weighted payout score
  and the meta model's cumulative score (:mod:`crowdalpha.service.meta_model_scores`).
* :func:`model_overview` — a model's profile, its rounds with daily scores, stakes and payouts,
  the cumulative payout-score series over resolved rounds (the chart), and its submission receipts.
* :func:`round_overview` — a round's step timeline (when each job ran), payout factor and totals,
  each score's distribution on its last scored day, its meta-model file and the meta model's
  scores (each day, and the cumulative meta model score through the round).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import func, select

from crowdalpha.ledger.accounts import AccountKind
from crowdalpha.service._tournaments import LoadedTournament, TournamentRef, load_tournament
from crowdalpha.service.context import Context
from crowdalpha.service.datasets import DatasetFileInfo, file_info
from crowdalpha.service.meta_model_scores import (
    MetaModelDayScore,
    meta_model_round_values,
    meta_model_score,
    round_meta_model_scores,
)
from crowdalpha.service.meta_models import meta_model_file
from crowdalpha.service.performance import ModelProfile, RoundPerformance, model_profile, round_performances
from crowdalpha.service.submissions import SubmissionInfo, list_submissions
from crowdalpha.store import NotFound, RoundState, UnitOfWork, run_transaction
from crowdalpha.store.schema import (
    DatasetVersion,
    Job,
    LedgerAccount,
    Model,
    Round,
    RoundResolution,
    RoundStake,
    SubmissionScore,
)
from crowdalpha.tournament.payouts import payout_factor

HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class SeriesPoint:
    """A point of a cumulative score series: the round number and the running sum after it."""

    round_number: int
    value: float
    cumulative: float


@dataclass(frozen=True)
class ScoreSeries:
    """A cumulative score over resolved rounds, for a chart: score name, display name, points."""

    score: str
    display_name: str
    points: tuple[SeriesPoint, ...]


@dataclass(frozen=True)
class TournamentOverview:
    """A tournament on the home page: open round, rounds in scoring, totals, the crowd's cumulative score."""

    name: str
    display_name: str
    id: int
    open_round: int | None
    open_round_closes: datetime | None
    scoring_rounds: tuple[int, ...]
    resolved_rounds: int
    models: int
    staked_nano: int
    last_resolved_round: int | None
    last_paid_nano: int | None
    last_burned_nano: int | None
    crowd_score: ScoreSeries
    meta_model_score: ScoreSeries

    @property
    def meta_model_cumulative(self) -> float | None:
        """Return the meta model's cumulative score after the last resolved round (None before one)."""
        points = self.meta_model_score.points
        return points[-1].cumulative if points else None


@dataclass(frozen=True)
class ModelOverview:
    """Everything the model page shows."""

    tournament: str
    profile: ModelProfile
    rounds: tuple[RoundPerformance, ...]
    series: tuple[ScoreSeries, ...]
    submissions: tuple[SubmissionInfo, ...]
    score_names: dict[str, str]


@dataclass(frozen=True)
class RoundStep:
    """A step of a round's life as its job recorded it: step, job key, state, attempts, when it finished."""

    step: str
    key: str
    state: str
    attempts: int
    due_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ScoreDistribution:
    """One score's values over a round's submissions on the last day it was scored."""

    score: str
    display_name: str
    day: int
    count: int
    quantiles: dict[str, float]
    bin_edges: tuple[float, ...]
    bin_counts: tuple[int, ...]


@dataclass(frozen=True)
class RoundOverview:
    """What the round page shows beyond the round's status."""

    tournament: str
    number: int
    steps: tuple[RoundStep, ...]
    total_at_risk_nano: int | None
    payout_factor: float | None
    payout_factor_final: bool
    paid_nano: int | None
    burned_nano: int | None
    distributions: tuple[ScoreDistribution, ...]
    meta_model: DatasetFileInfo | None
    meta_model_scores: tuple[MetaModelDayScore, ...] = ()
    meta_model_score: str | None = None
    meta_model_cumulative: float | None = None
    """The cumulative meta model score over the resolved rounds up to this one (None without one)."""
    score_names: dict[str, str] = field(default_factory=dict)


def cumulative_series(score: str, display_name: str, values: list[tuple[int, float]]) -> ScoreSeries:
    """Return the running sum of ``(round number, value)`` pairs in round order."""
    points, total = [], 0.0
    for number, value in sorted(values):
        total += value
        points.append(SeriesPoint(number, value, total))
    return ScoreSeries(score, display_name, tuple(points))


def _display_names(loaded: LoadedTournament) -> dict[str, str]:
    return {item.name: item.display_name or item.name for item in loaded.config.scores}


def _meta_model_series(
    uow: UnitOfWork, loaded: LoadedTournament, *, through: int | None = None
) -> ScoreSeries:
    """Return the meta model score's cumulative series over the resolved rounds (up to ``through``)."""
    score = meta_model_score(loaded.config) or ""
    label = f"meta model {_display_names(loaded).get(score, score)}".strip()
    return cumulative_series(score, label, meta_model_round_values(uow, loaded, through=through))


# -- home ------------------------------------------------------------------------------------------------


def _tournament_overview(uow: UnitOfWork, loaded: LoadedTournament) -> TournamentOverview:
    rows = uow.session.execute(
        select(Round.number, Round.state, Round.close_staking_time).where(Round.tournament_id == loaded.id)
    ).all()
    open_rounds = [(number, close) for number, state, close in rows if state == RoundState.OPEN.value]
    scoring = tuple(sorted(number for number, state, _ in rows if state == RoundState.SCORING.value))
    models = uow.session.scalar(
        select(func.count()).select_from(Model).where(Model.tournament_id == loaded.id)
    )
    staked = uow.session.scalar(
        select(func.coalesce(func.sum(LedgerAccount.balance), 0))
        .join(Model, Model.id == LedgerAccount.owner_id)
        .where(Model.tournament_id == loaded.id, LedgerAccount.kind == AccountKind.STAKE.value)
    )
    resolutions = uow.session.execute(
        select(Round.number, RoundResolution.paid_nano, RoundResolution.burned_nano)
        .join(RoundResolution, RoundResolution.round_id == Round.id)
        .where(Round.tournament_id == loaded.id)
        .order_by(Round.number.desc())
        .limit(1)
    ).first()
    weighted = uow.session.execute(
        select(
            Round.number,
            func.sum(RoundStake.payout_score * RoundStake.at_risk_nano),
            func.sum(RoundStake.at_risk_nano),
        )
        .join(Round, Round.id == RoundStake.round_id)
        .where(
            Round.tournament_id == loaded.id,
            Round.state == RoundState.RESOLVED.value,
            RoundStake.payout_score.is_not(None),
            RoundStake.at_risk_nano > 0,
        )
        .group_by(Round.number)
    ).all()
    crowd = cumulative_series(
        "payout",
        "stake-weighted payout score",
        [(number, float(s) / float(w)) for number, s, w in weighted if w],
    )
    latest_open = max(open_rounds, default=None)
    return TournamentOverview(
        name=loaded.name,
        display_name=loaded.config.display_name,
        id=loaded.id,
        open_round=None if latest_open is None else latest_open[0],
        open_round_closes=None if latest_open is None else latest_open[1],
        scoring_rounds=scoring,
        resolved_rounds=sum(1 for _, state, _ in rows if state == RoundState.RESOLVED.value),
        models=int(models or 0),
        staked_nano=int(staked or 0),
        last_resolved_round=None if resolutions is None else resolutions[0],
        last_paid_nano=None if resolutions is None else int(resolutions[1]),
        last_burned_nano=None if resolutions is None else int(resolutions[2]),
        crowd_score=crowd,
        meta_model_score=_meta_model_series(uow, loaded),
    )


def home_overview(ctx: Context) -> list[TournamentOverview]:
    """Return every tournament's overview for the home page, by numerapi id."""

    def work(uow: UnitOfWork) -> list[TournamentOverview]:
        loaded = [load_tournament(uow, row.id) for row in uow.tournaments.list()]
        return [_tournament_overview(uow, item) for item in sorted(loaded, key=lambda t: t.id)]

    return run_transaction(ctx.engine, work, read_only=True)


# -- a model ---------------------------------------------------------------------------------------------


def model_overview(ctx: Context, tournament: TournamentRef, model_name: str) -> ModelOverview:
    """Return the model page's data: profile, rounds, cumulative payout-score series, submission receipts."""
    profile = model_profile(ctx, tournament, model_name)

    def work(uow: UnitOfWork) -> LoadedTournament:
        return load_tournament(uow, tournament)

    loaded = run_transaction(ctx.engine, work, read_only=True)
    rounds = tuple(round_performances(ctx, profile.model_id, tournament=loaded.id))
    names = _display_names(loaded)
    series = []
    for term in loaded.config.payout.terms:
        values = [
            (item.round_number, record.value)
            for item in rounds
            if item.resolved
            for record in item.final_scores
            if record.score == term.score
        ]
        series.append(cumulative_series(term.score, names.get(term.score, term.score), values))
    submissions = tuple(list_submissions(ctx, profile.username, profile.model_id))
    return ModelOverview(loaded.name, profile, rounds, tuple(series), submissions, names)


# -- a round ---------------------------------------------------------------------------------------------


def _distribution(score: str, display_name: str, day: int, values: np.ndarray) -> ScoreDistribution:
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    quantiles = dict(
        zip(("min", "p25", "median", "p75", "max"), np.quantile(values, [0, 0.25, 0.5, 0.75, 1]), strict=True)
    )
    return ScoreDistribution(
        score, display_name, day, int(values.size), {k: float(v) for k, v in quantiles.items()},
        tuple(float(e) for e in edges), tuple(int(c) for c in counts),
    )  # fmt: skip


def round_overview(ctx: Context, tournament: TournamentRef, number: int) -> RoundOverview:
    """Return the round page's data: step timeline, payout factor and totals, score distributions, meta model.

    Before resolution the payout factor is the one the at-risk stakes snapshotted at close imply
    (``payout_factor_final`` False); after it, the recorded one.
    """

    def work(uow: UnitOfWork) -> RoundOverview:
        loaded = load_tournament(uow, tournament)
        row = uow.rounds.get_by_number(loaded.id, number)
        if row is None:
            raise NotFound(f"{loaded.name} has no round {number}")
        prefix = f"{loaded.name}/{number}/"
        jobs = uow.session.scalars(select(Job).where(Job.key.startswith(prefix, autoescape=True)))
        steps = tuple(
            sorted(
                (RoundStep(j.step, j.key, j.state, j.attempts, j.due_at, j.finished_at) for j in jobs),
                key=lambda step: (step.due_at, step.key),
            )
        )
        resolution = uow.resolution.resolution(row.id)
        stakes = uow.resolution.stakes(row.id)
        total = resolution.total_at_risk_nano if resolution else sum(s.at_risk_nano for s in stakes)
        if resolution is not None:
            factor: float | None = resolution.payout_factor
        elif uow.resolution.has_stakes(row.id):
            factor = payout_factor(total, loaded.config.payout.stake_threshold)
        else:
            factor = None
        names = _display_names(loaded)
        distributions = []
        for item in loaded.config.scores:
            last = uow.session.scalar(
                select(func.max(SubmissionScore.day)).where(
                    SubmissionScore.round_id == row.id, SubmissionScore.score == item.name
                )
            )
            if last is None:
                continue
            values = np.asarray(
                [score.value for score in uow.scores.list_scores(row.id, score=item.name, day=last)],
                dtype=np.float64,
            )
            values = values[np.isfinite(values)]
            if values.size:
                distributions.append(_distribution(item.name, names[item.name], last, values))
        meta = None
        if row.dataset_version_id is not None:
            version = uow.session.get(DatasetVersion, row.dataset_version_id)
            for stored in uow.datasets.list_files(row.dataset_version_id, round_id=row.id):
                if stored.name == meta_model_file(number) and stored.round_id == row.id:
                    meta = file_info(version, stored, number)
        meta_points = _meta_model_series(uow, loaded, through=number).points
        return RoundOverview(
            tournament=loaded.name,
            number=number,
            steps=steps,
            total_at_risk_nano=total if (resolution or stakes) else None,
            payout_factor=factor,
            payout_factor_final=resolution is not None,
            paid_nano=None if resolution is None else resolution.paid_nano,
            burned_nano=None if resolution is None else resolution.burned_nano,
            distributions=tuple(distributions),
            meta_model=meta,
            meta_model_scores=tuple(round_meta_model_scores(uow, row.id)),
            meta_model_score=meta_model_score(loaded.config),
            meta_model_cumulative=meta_points[-1].cumulative if meta_points else None,
            score_names=names,
        )

    return run_transaction(ctx.engine, work, read_only=True)
