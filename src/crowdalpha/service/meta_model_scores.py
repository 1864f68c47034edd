"""The meta model's own scores: its CORR on each score day, against the targets the round's submissions get.

When :func:`crowdalpha.service.scoring.plan_round_scores` computes a round's score days, it calls
:func:`meta_model_day_scores`, and storing the plan upserts them (:func:`upsert_meta_model_scores`,
in the same transaction as the days): the round's stake-weighted meta model, as published at
close, is scored like a submission — the same CORR (rank codes kept per round, as a submission's)
against the same day target (:func:`crowdalpha.service.scoring.day_targets`) — for every CORR
score of the config (metric ``numerai_corr``) whose horizon reaches the day, and
stored in ``meta_model_scores``. A round without a meta model (nobody staked) gets none; a day whose
meta model and target do not fit a scoring rule is skipped, like a submission's score.

The pages show the **meta model score**: one CORR score per tournament (:func:`meta_model_score`,
the payout's CORR term, else the config's first CORR score), a round's value being its last stored
day's, cumulative over the resolved rounds (:func:`meta_model_round_values`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from crowdalpha.scoring.errors import ScoringError
from crowdalpha.service._tournaments import LoadedTournament
from crowdalpha.service.context import Context
from crowdalpha.service.meta_models import META_MODEL_NAME, read_meta_model
from crowdalpha.store import Round, RoundState, UnitOfWork
from crowdalpha.store.schema import MetaModelScore, RoundLiveData
from crowdalpha.tournament.config import TournamentConfig

if TYPE_CHECKING:  # the scoring module calls this one: import it at run time only
    from crowdalpha.market.targets import TargetInputs

CORR_METRIC = "numerai_corr"


@dataclass(frozen=True)
class MetaModelDayScore:
    """One stored score of a round's meta model: score name, score day, value."""

    score: str
    day: int
    value: float


def meta_model_score(config: TournamentConfig) -> str | None:
    """Return the score shown as the meta model's: the payout's CORR term, else the first CORR score."""
    corr = [item.name for item in config.scores if item.metric == CORR_METRIC]
    paid = [term.score for term in config.payout.terms if term.score in corr]
    return (paid or corr or [None])[0]


def meta_model_day_scores(
    ctx: Context,
    uow: UnitOfWork,
    loaded: LoadedTournament,
    row: Round,
    inputs: TargetInputs,
    days: Sequence[int],
    *,
    targets: Mapping[tuple[int, str], pd.Series] | None = None,
    live: RoundLiveData | None = None,
    round_state: dict[object, object] | None = None,
) -> list[MetaModelDayScore]:
    """Return the round's meta model's CORR of each CORR score on each of ``days`` (reads only).

    ``targets`` are day targets already computed for the round's submissions, by (score day,
    residualisation); the others are computed here. ``live``: the round's live data, when the caller
    has read it. ``round_state``: the round's store kept across score days, where the meta model's
    rank codes are kept (its CORR is then that of a one-model round scorer, as a submission's).
    A day whose meta model and target break a scoring rule is left out.
    """
    from crowdalpha.service.scoring import _neutralization, _RoundScorer, day_targets, round_id_assets

    scores = [item for item in loaded.config.scores if item.metric == CORR_METRIC and item.target]
    if not days or not scores:
        return []
    meta_model = read_meta_model(ctx, uow, row)
    live = live or uow.scores.live_data(row.id)
    if meta_model is None or live is None:
        return []
    predictions = meta_model.dropna().sort_index().to_frame(META_MODEL_NAME)
    id_assets = round_id_assets(ctx, live)
    kept: dict[object, object] = {} if round_state is None else round_state.setdefault("meta model", {})  # type: ignore[assignment]
    if kept.get("predictions") is None or not kept["predictions"].equals(predictions):
        kept.clear()
        kept["predictions"] = predictions
    scorer = _RoundScorer(predictions, {}, round_state=kept)
    found = []
    known = dict(targets or {})  # scores on the same residual share the day's target, as in scoring
    for day in days:
        for item in scores:
            if item.horizon < day:
                continue
            slot = (day, _neutralization(item.target))
            if slot not in known:
                known[slot] = day_targets(inputs, live.live_date, day, slot[1], id_assets)
            try:
                value = float(scorer.corr(known[slot]).iloc[0])
            except ScoringError:
                continue
            found.append(MetaModelDayScore(item.name, day, value))
    return found


def upsert_meta_model_scores(
    uow: UnitOfWork, round_id: str, scores: Sequence[MetaModelDayScore], *, now: datetime
) -> None:
    """Store a round's meta-model scores in one statement, replacing a (score, day) stored before."""
    if not scores:
        return
    rows = [
        {"round_id": round_id, "score": item.score, "day": item.day, "value": item.value, "scored_at": now}
        for item in scores
    ]
    dialect = uow.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(MetaModelScore).values(rows)
    uow.session.execute(
        statement.on_conflict_do_update(
            index_elements=["round_id", "score", "day"],
            set_={"value": statement.excluded.value, "scored_at": statement.excluded.scored_at},
        )
    )


def round_meta_model_scores(uow: UnitOfWork, round_id: str) -> list[MetaModelDayScore]:
    """Return a round's stored meta-model scores, by score name then day."""
    query = (
        select(MetaModelScore.score, MetaModelScore.day, MetaModelScore.value)
        .where(MetaModelScore.round_id == round_id)
        .order_by(MetaModelScore.score, MetaModelScore.day)
    )
    return [MetaModelDayScore(score, day, value) for score, day, value in uow.session.execute(query)]


def meta_model_round_values(
    uow: UnitOfWork, loaded: LoadedTournament, *, through: int | None = None
) -> list[tuple[int, float]]:
    """Return ``(round number, value)`` of the meta model score of each resolved round (≤ ``through``).

    A round's value is its last stored day's; rounds without one are left out.
    """
    score = meta_model_score(loaded.config)
    if score is None:
        return []
    last = (
        select(MetaModelScore.round_id, func.max(MetaModelScore.day).label("day"))
        .where(MetaModelScore.score == score)
        .group_by(MetaModelScore.round_id)
        .subquery()
    )
    query = (
        select(Round.number, MetaModelScore.value)
        .join(last, last.c.round_id == Round.id)
        .join(
            MetaModelScore,
            (MetaModelScore.round_id == Round.id)
            & (MetaModelScore.score == score)
            & (MetaModelScore.day == last.c.day),
        )
        .where(Round.tournament_id == loaded.id, Round.state == RoundState.RESOLVED.value)
        .order_by(Round.number)
    )
    if through is not None:
        query = query.where(Round.number <= through)
    return [(number, float(value)) for number, value in uow.session.execute(query)]
