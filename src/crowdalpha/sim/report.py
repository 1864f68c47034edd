"""What a season left in the store, as plain figures: round states, every score, payouts, a leaderboard.

The figures are keyed by names and numbers (tournament, round number, model name), never by the
store's generated ids, so two runs of the same season compare equal exactly when they computed
the same thing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from crowdalpha.service import Context, model_stake
from crowdalpha.store import UnitOfWork, run_transaction
from crowdalpha.store.schema import SubmissionScore
from crowdalpha.tournament.config import TournamentConfig

RoundKey = tuple[str, int]
"""(tournament, round number)."""
ModelKey = tuple[str, int, str]
"""(tournament, round number, model name)."""
ScoreKey = tuple[str, int, str, str, int]
"""(tournament, round number, model name, score name, score day)."""


@dataclass
class SeasonFigures:
    """Every figure of a season, keyed by names: states, selected uploads, score days, scores, payouts."""

    states: dict[RoundKey, str] = field(default_factory=dict)
    uploads: dict[ModelKey, str] = field(default_factory=dict)
    """The selected upload of each model in each round, and its status (on_time, late)."""
    score_days: dict[RoundKey, tuple[int, ...]] = field(default_factory=dict)
    scores: dict[ScoreKey, float] = field(default_factory=dict)
    payouts: dict[ModelKey, int] = field(default_factory=dict)
    """Nano-tokens paid (+) or burned (−) to each staked model at each resolution."""
    at_risk: dict[ModelKey, int] = field(default_factory=dict)
    model_ids: dict[tuple[str, str], str] = field(default_factory=dict)

    _index: tuple[int, dict[tuple[str, str, str], dict[int, dict[int, float]]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def states_count(self, tournament: str) -> Counter[str]:
        """Return how many rounds of ``tournament`` are in each state."""
        return Counter(state for (name, _), state in self.states.items() if name == tournament)

    def model_scores(self, tournament: str, model: str, score: str) -> dict[int, dict[int, float]]:
        """Return the model's ``score`` by round number, then score day (an index built once, in order)."""
        if self._index is None or self._index[0] != len(self.scores):
            index: dict[tuple[str, str, str], dict[int, dict[int, float]]] = {}
            for (name, number, scored_model, scored, day), value in sorted(self.scores.items()):
                index.setdefault((name, scored_model, scored), {}).setdefault(number, {})[day] = value
            self._index = (len(self.scores), index)
        return self._index[1].get((tournament, model, score), {})


def season_figures(ctx: Context) -> SeasonFigures:
    """Return the figures of every round of every tournament in the store."""

    def work(uow: UnitOfWork) -> SeasonFigures:
        figures = SeasonFigures()
        for tournament in uow.tournaments.list():
            names = {}
            for model in uow.models.list(tournament_id=tournament.id):
                names[model.id] = model.name
                figures.model_ids[(tournament.name, model.name)] = model.id
            for row in uow.rounds.list(tournament.id):
                key = (tournament.name, row.number)
                figures.states[key] = row.state
                submissions = {item.id: item for item in uow.submissions.list_selected(row.id)}
                for item in submissions.values():
                    figures.uploads[(*key, names[item.model_id])] = item.status
                figures.score_days[key] = tuple(sorted(uow.scores.scored_days(row.id)))
                for submission_id, score, day, value in uow.session.execute(
                    select(
                        SubmissionScore.submission_id,
                        SubmissionScore.score,
                        SubmissionScore.day,
                        SubmissionScore.value,
                    )
                    .where(SubmissionScore.round_id == row.id)
                    .order_by(SubmissionScore.day, SubmissionScore.score, SubmissionScore.submission_id)
                ):  # a long season holds millions of scores: plain rows, not ORM objects
                    figures.scores[(*key, names[submissions[submission_id].model_id], score, day)] = value
                for stake in uow.resolution.stakes(row.id):
                    figures.at_risk[(*key, names[stake.model_id])] = stake.at_risk_nano
                    if stake.payout_nano is not None:
                        figures.payouts[(*key, names[stake.model_id])] = stake.payout_nano
        return figures

    return run_transaction(ctx.engine, work, read_only=True)


@dataclass(frozen=True)
class LeaderboardRow:
    """One model's season: mean final CORR and MMC over resolved rounds, its stake now, total payout."""

    model: str
    resolved_rounds: int
    mean_corr: float
    mean_mmc: float
    stake_nano: int
    payout_nano: int


def final_scores(figures: SeasonFigures, config: TournamentConfig, score: str, model: str) -> list[float]:
    """Return the model's final ``score`` (its horizon's day) in every resolved round, oldest first."""
    horizon = next(item.horizon for item in config.scores if item.name == score)
    return [
        days[horizon]
        for number, days in figures.model_scores(config.name, model, score).items()
        if horizon in days and figures.states[(config.name, number)] == "resolved"
    ]


def leaderboard(
    ctx: Context, figures: SeasonFigures, config: TournamentConfig, *, corr: str, mmc: str
) -> list[LeaderboardRow]:
    """Return the tournament's models ranked by mean final ``corr`` over its resolved rounds (best first)."""
    rows = []
    uploaded = {key[::2] for key in figures.uploads}
    payouts: dict[tuple[str, str], int] = {}
    for key, nano in figures.payouts.items():
        payouts[key[::2]] = payouts.get(key[::2], 0) + nano
    for (tournament, model), model_id in figures.model_ids.items():
        if tournament != config.name or (tournament, model) not in uploaded:
            continue
        corrs = final_scores(figures, config, corr, model)
        mmcs = final_scores(figures, config, mmc, model)
        payout = payouts.get((tournament, model), 0)
        rows.append(
            LeaderboardRow(
                model,
                len(corrs),
                float(np.mean(corrs)) if corrs else float("nan"),
                float(np.mean(mmcs)) if mmcs else float("nan"),
                model_stake(ctx, model_id).stake_nano,
                payout,
            )
        )
    return sorted(rows, key=lambda row: (-np.nan_to_num(row.mean_corr, nan=-np.inf), row.model))


def round_scores(figures: SeasonFigures, tournament: str, score: str, model: str) -> dict[int, float]:
    """Return the model's latest ``score`` in every round that has one (the final one once resolved)."""
    return {
        number: days[max(days)] for number, days in figures.model_scores(tournament, model, score).items()
    }


def scored_models(figures: SeasonFigures, tournament: str) -> list[str]:
    """Return the names of the tournament's models that have any score, sorted."""
    return sorted({model for (name, _, model, _, _) in figures.scores if name == tournament})


def total_payouts(figures: SeasonFigures, tournament: str) -> dict[str, int]:
    """Return each staked model's payouts summed over the season, in nano-tokens (− burned)."""
    totals: dict[str, int] = {}
    for (name, _, model), nano in figures.payouts.items():
        if name == tournament:
            totals[model] = totals.get(model, 0) + nano
    return totals
