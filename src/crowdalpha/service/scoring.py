"""Daily scoring of closed rounds: each score day's realised target, every selected submission scored at once.

A round's live era is the market date *t* its live file was built from. Its score day k (1 … the
tournament's ``scoring_days``) is computable once the market store holds the close of t + L + k
(L = the config's ``lag_days``, counted in the store's trading dates): the returns t+L … t+L+k are
then known. The day's target is the dataset's definition
(:func:`crowdalpha.market.targets.residual_returns`, binned): a score's target ``"target"`` is the
main factor-neutral residual, ``target_<name>_<h>`` the ``<name>`` residual, both over k days, for
the round's live assets, mapped to the round's live ids through its private id map.

Each score of the config whose horizon reaches day k is computed for all selected submissions in
one vectorised call of :mod:`crowdalpha.scoring`: ``numerai_corr`` (CORR), and
``correlation_contribution`` against the meta model the score names. The benchmark meta model
(BMC) is :func:`crowdalpha.tournament.meta_model.benchmark_meta_model` of the version's
``live_benchmark_models.parquet`` (equal weights: benchmarks hold no stake); a score whose meta
model the round does not have — the stake-weighted meta model needs stakes at close, which no
store records yet — is skipped and reported.

Stored per (submission, score, day): the value and the percentile among the round's **on-time**
submissions (average rank / count, in (0, 1]; None for late ones, which are scored but not
ranked). A day is stored once, with its ``round_score_days`` row, in one transaction: re-running
adds and replaces nothing. The first scored day moves the round closed → scoring; the row of day
``horizon`` tells the resolve step the round is resolvable.

Private data: opening a round records (``record_round_live_data``) the live date and the live id →
asset map from the version's private ``ids.parquet`` (published with ``dataset publish --private``);
neither is ever served.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.stats import rankdata

from crowdalpha import scoring
from crowdalpha.datasets.classic import PRIVATE_IDS
from crowdalpha.datasets.obfuscate import LIVE, TARGET_COLUMN
from crowdalpha.market.targets import (
    MAIN_NEUTRALIZATION,
    NEUTRALIZATIONS,
    TargetInputs,
    prepare_target_inputs,
    residual_returns,
)
from crowdalpha.scoring.contribution import contribution_scores_rows
from crowdalpha.scoring.correlations import corr_of_transformed
from crowdalpha.scoring.frame import require_target_power_correlated
from crowdalpha.scoring.ranking import transform_rows, transform_rows_many
from crowdalpha.scoring.transforms import orthogonalize_rows
from crowdalpha.service._tournaments import LoadedTournament, TournamentRef, load_tournament
from crowdalpha.service._universes import prepared_universe
from crowdalpha.service.context import Context
from crowdalpha.service.datasets import PRIVATE_NAME_PREFIX
from crowdalpha.service.errors import ServiceError
from crowdalpha.service.market import market_panel, market_through
from crowdalpha.service.meta_models import META_MODEL_NAME, read_meta_model
from crowdalpha.store import Round, RoundState, UnitOfWork, run_transaction
from crowdalpha.store.repositories.scores import NewScore
from crowdalpha.store.schema import LiveUniverse, RoundLiveData
from crowdalpha.tournament.config import ScoreConfig, TournamentConfig
from crowdalpha.tournament.meta_model import BENCHMARK_META_MODEL, benchmark_meta_model
from crowdalpha.tournament.submissions import SubmissionError, UploadKind, validate_submission

PRIVATE_IDS_FILE = PRIVATE_NAME_PREFIX + PRIVATE_IDS
SCORED_STATES = (RoundState.CLOSED, RoundState.SCORING)
SCORED_KINDS = (UploadKind.ON_TIME, UploadKind.LATE)
BENCHMARK_MODELS_FILE = "live_benchmark_models.parquet"
NON_MODEL_COLUMNS = frozenset({"id", "era", "data_type"})
DAILY_METRICS = frozenset({"numerai_corr", "correlation_contribution"})
_INPUTS_CACHE_KEY = "score_target_inputs"
SHARED_RANK_KINDS = ("gaussian_pow15", "gaussian")


class ScoresPending(ServiceError):
    """A score day is not computable yet: the market store lacks the close it needs."""


class NoLiveData(ServiceError):
    """A round cannot be scored: it was opened without private live data (an operator must act)."""


@dataclass(frozen=True)
class ScoredDay:
    """A score day stored: round, day k, the market date it needed, how many submissions, which scores."""

    round_number: int
    day: int
    market_date: date
    submissions: int
    scores: tuple[str, ...]


@dataclass
class ScoreDayReport:
    """What ``score_day`` did: the market date it scored through, the days stored, rounds left waiting."""

    tournament: str
    through: date
    scored: list[ScoredDay] = field(default_factory=list)
    waiting: dict[int, str] = field(default_factory=dict)
    skipped_scores: dict[str, str] = field(default_factory=dict)
    unscored_submissions: dict[str, str] = field(default_factory=dict)


# -- private live data ------------------------------------------------------------------------------


def record_round_live_data(
    ctx: Context, uow: UnitOfWork, round_row: Round, version_id: int, *, now: datetime
) -> RoundLiveData | None:
    """Record the round's live date and id → asset map from the version's private ids; None without them."""
    files = {item.name: item for item in uow.datasets.list_files(version_id, public_only=False)}
    private_ids = files.get(PRIVATE_IDS_FILE)
    if private_ids is None:
        return None
    with ctx.blobs.open(private_ids.blob_key) as handle:
        table = pq.read_table(handle, columns=["data_type", "id", "date", "asset"])
    table = table.filter(pc.equal(table.column("data_type"), LIVE))
    dates = sorted(set(table.column("date").to_pylist()))
    if len(dates) != 1:
        raise ServiceError(
            "invalid_private_ids",
            f"{PRIVATE_IDS_FILE} must hold exactly one live date; it holds {dates[:3]}",
        )
    return store_round_live_data(
        ctx, uow, round_row, date.fromisoformat(dates[0]), table.select(["id", "asset"]), now=now
    )


def store_round_live_data(
    ctx: Context, uow: UnitOfWork, round_row: Round, live_date: date, id_map: pa.Table, *, now: datetime
) -> RoundLiveData:
    """Store a round's live id → asset map as a private blob and record it with the live date."""
    id_map = id_map.select(["id", "asset"]).sort_by("id")
    sink = io.BytesIO()
    pq.write_table(id_map, sink)
    content = sink.getvalue()
    digest = hashlib.sha256(content).hexdigest()
    blob = ctx.blobs.put_bytes(f"private/rounds/{round_row.tournament_id}/{digest}.parquet", content)
    return uow.scores.set_live_data(
        round_row.id,
        live_date=live_date,
        member_count=id_map.num_rows,
        blob_key=blob.key,
        size_bytes=blob.size_bytes,
        sha256=blob.sha256,
        now=now,
    )


def round_id_assets(ctx: Context, live: RoundLiveData) -> pd.Series:
    """Return the round's live ids → asset ids (private)."""
    with ctx.blobs.open(live.blob_key) as handle:
        table = pq.read_table(handle)
    return pd.Series(
        np.asarray(table.column("asset").to_pylist(), dtype=object),
        index=pd.Index(table.column("id").to_pylist(), name="id"),
    )


# -- one round ----------------------------------------------------------------------------------------


def _neutralization(target: str) -> str:
    """Return the residualisation a score's target column names (``target`` = the main one)."""
    if target == TARGET_COLUMN:
        return MAIN_NEUTRALIZATION
    for name in NEUTRALIZATIONS:
        if target.startswith(f"target_{name}_"):
            return name
    raise ServiceError(
        "unknown_score_target",
        f"score target {target!r} is neither 'target' nor target_<name>_<h> with <name> in"
        f" {sorted(NEUTRALIZATIONS)}",
    )


@dataclass(frozen=True)
class _RoundPredictions:
    """A round's selected on-time and late submissions: ids × submission-id values, and who was on time."""

    values: pd.DataFrame
    on_time: pd.Series


@dataclass(frozen=True)
class _PredictionMatrix:
    """Validated submission files of a round: ``values[k]`` is submission ``submissions[k]`` over ``ids``.

    NaN where a submission has no prediction for an id; ``unscored`` names the files that did not
    validate, with the reason.
    """

    ids: np.ndarray
    submissions: np.ndarray
    values: np.ndarray
    unscored: dict[str, str]


def _prediction_matrix_key(row: Round, universe_row: LiveUniverse) -> str:
    universe = hashlib.sha256(universe_row.blob_key.encode()).hexdigest()[:16]
    return f"private/rounds/{row.tournament_id}/{row.id}/predictions-{universe}.npy"


def _read_prediction_matrix(ctx: Context, key: str) -> _PredictionMatrix | None:
    """Return the round's stored prediction matrix, or None if none is stored yet."""
    if not ctx.blobs.exists(key):
        return None
    with ctx.blobs.open(key) as handle:
        arrays = [np.lib.format.read_array(handle, allow_pickle=False) for _ in range(5)]
    ids, submissions, values, unscored_ids, reasons = arrays
    return _PredictionMatrix(
        ids, submissions, values, dict(zip(unscored_ids.tolist(), reasons.tolist(), strict=True))
    )


def _write_prediction_matrix(ctx: Context, key: str, matrix: _PredictionMatrix) -> None:
    """Store the matrix as five ``.npy`` arrays in one blob (streamed; no pickles)."""
    unscored_ids = np.array(list(matrix.unscored), dtype=str)
    reasons = np.array(list(matrix.unscored.values()), dtype=str)
    with ctx.blobs.writer(key) as writer:
        for array in (matrix.ids, matrix.submissions, matrix.values, unscored_ids, reasons):
            np.lib.format.write_array(writer, np.ascontiguousarray(array), allow_pickle=False)


def _validated_rows(
    ctx: Context, loaded: LoadedTournament, row: Round, universe_row: LiveUniverse, submissions: list
) -> _PredictionMatrix:
    """Return the submissions' files read and validated, one row each, filled in place (no per-file frame)."""
    universe = prepared_universe(ctx, universe_row)
    index = pd.Index([], dtype=object)  # ids in order of first appearance
    values = np.full((len(submissions), 0), np.nan)
    kept: list[str] = []
    failed: dict[str, str] = {}
    for submission in submissions:
        content = ctx.blobs.read_bytes(submission.blob_key)
        try:
            validated = validate_submission(content, universe, loaded.config.submissions)
        except SubmissionError as error:
            failed[submission.id] = f"round {row.number}: {error}"
            continue
        file_ids = np.asarray(validated.ids, dtype=object)
        positions = index.get_indexer(file_ids)
        if (positions < 0).any():  # the first file, or one predicting ids no earlier file did
            index = index.append(pd.Index(file_ids[positions < 0], dtype=object))
            grown = np.full((len(submissions), len(index)), np.nan)
            grown[:, : values.shape[1]] = values
            values, positions = grown, index.get_indexer(file_ids)
        values[len(kept), positions] = validated.values
        kept.append(submission.id)
    return _PredictionMatrix(
        np.asarray(index, dtype=str), np.array(kept, dtype=str), values[: len(kept)], failed
    )


def _merged_prediction_matrix(old: _PredictionMatrix | None, new: _PredictionMatrix) -> _PredictionMatrix:
    """Return the stored matrix with the newly read rows added, over the sorted union of their ids."""
    parts = [new] if old is None else [old, new]
    ids = np.unique(np.concatenate([part.ids for part in parts]))
    values = np.full((sum(len(part.submissions) for part in parts), len(ids)), np.nan)
    start = 0
    for part in parts:
        values[start : start + len(part.submissions), np.searchsorted(ids, part.ids)] = part.values
        start += len(part.submissions)
    return _PredictionMatrix(
        ids,
        np.concatenate([part.submissions for part in parts]).astype(str),
        values,
        {key: reason for part in parts for key, reason in part.unscored.items()},
    )


def round_predictions(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: Round, unscored: dict[str, str]
) -> _RoundPredictions:
    """Return the round's selected on-time and late submissions, from the round's prediction matrix.

    Every stored file is read and validated once: the first call (the round's close) stores the
    validated values as the round's private prediction matrix, and later calls (each score day,
    the resolution) load it, reading only files submitted since (late ones), which are then added.
    A stored file that does not fit the round's live universe (a queued upload made for the
    previous live ids that could not be carried over) is left out and named in ``unscored``.
    """
    submissions = uow.submissions.list_selected(row.id, statuses=SCORED_KINDS)
    universe_row = uow.rounds.get_live_universe(row.id)
    if not submissions or universe_row is None:
        return _RoundPredictions(pd.DataFrame(), pd.Series(dtype=bool))
    key = _prediction_matrix_key(row, universe_row)
    matrix = _read_prediction_matrix(ctx, key)
    known = set() if matrix is None else {*matrix.submissions.tolist(), *matrix.unscored}
    unread = [submission for submission in submissions if submission.id not in known]
    if unread:
        matrix = _merged_prediction_matrix(matrix, _validated_rows(ctx, loaded, row, universe_row, unread))
        _write_prediction_matrix(ctx, key, matrix)
    assert matrix is not None  # read, or built from the files just now
    unscored.update({s.id: matrix.unscored[s.id] for s in submissions if s.id in matrix.unscored})
    positions = {submission_id: k for k, submission_id in enumerate(matrix.submissions.tolist())}
    submissions = [s for s in submissions if s.id in positions]
    if not submissions:
        return _RoundPredictions(pd.DataFrame(), pd.Series(dtype=bool))
    chosen = [positions[s.id] for s in submissions]
    values = matrix.values if chosen == list(range(len(matrix.submissions))) else matrix.values[chosen]
    held = ~np.isnan(values).all(axis=0)  # the ids some chosen submission predicts
    if not held.all():
        values = values[:, held]
    frame = pd.DataFrame(
        values.T,
        index=pd.Index(matrix.ids[held], dtype=object, name="id").astype(str),
        columns=pd.Index([s.id for s in submissions], dtype=object),
        copy=False,
    )
    on_time = pd.Series({s.id: s.status == UploadKind.ON_TIME.value for s in submissions}, dtype=bool)
    return _RoundPredictions(frame, on_time)


def _meta_models(ctx: Context, uow: UnitOfWork, row: Round, ids: pd.Index) -> dict[str, pd.Series]:
    """Return the meta models the round has, by the name scores use in ``against``, as Series by id."""
    if row.dataset_version_id is None or len(ids) == 0:
        return {}
    found: dict[str, pd.Series] = {}
    stake_weighted = read_meta_model(ctx, uow, row)
    if stake_weighted is not None and ids.isin(stake_weighted.index).all():
        found[META_MODEL_NAME] = stake_weighted.reindex(ids)
    benchmark = _benchmark_meta_model(ctx, uow, row, ids)
    if benchmark is not None:
        found[BENCHMARK_META_MODEL] = benchmark
    return found


def _benchmark_meta_model(ctx: Context, uow: UnitOfWork, row: Round, ids: pd.Index) -> pd.Series | None:
    """Return the benchmark meta model of the round's live benchmark predictions, or None without them."""
    files = {item.name: item for item in uow.datasets.list_files(row.dataset_version_id, round_id=row.id)}
    if BENCHMARK_MODELS_FILE not in files:
        return None
    with ctx.blobs.open(files[BENCHMARK_MODELS_FILE].blob_key) as handle:
        benchmarks = pq.read_table(handle).to_pandas()
    if "id" in benchmarks.columns:
        benchmarks = benchmarks.set_index("id")
    benchmarks.index = benchmarks.index.astype(str)
    columns = [
        c
        for c in benchmarks.columns
        if c not in NON_MODEL_COLUMNS and pd.api.types.is_numeric_dtype(benchmarks[c])
    ]
    if not columns or not ids.isin(benchmarks.index).all():
        return None  # no benchmark predictions, or ones made for another live file than the round's
    values = benchmarks[columns].reindex(ids).to_numpy(dtype=np.float64)
    return pd.Series(benchmark_meta_model(values), index=ids, name=BENCHMARK_META_MODEL)


def _percentiles(values: pd.Series, on_time: pd.Series) -> pd.Series:
    """Return each on-time value's percentile among on-time values (average rank / count); NaN if late."""
    ranked = values[on_time.reindex(values.index, fill_value=False)]
    result = pd.Series(np.nan, index=values.index)
    if len(ranked):
        result[ranked.index] = rankdata(ranked.to_numpy(), method="average") / len(ranked)
    return result


def _stored_scores(name: str, day: int, values: pd.Series, on_time: pd.Series) -> list[NewScore]:
    percentiles = _percentiles(values, on_time)
    return [
        NewScore(
            submission_id=str(submission_id),
            score=name,
            day=day,
            value=float(value),
            percentile=None if np.isnan(percentiles[submission_id]) else float(percentiles[submission_id]),
        )
        for submission_id, value in values.items()
    ]


def _unscorable(score: ScoreConfig, meta_models: dict[str, pd.Series], count: int) -> str | None:
    """Return why a score cannot be computed for the round (None if it can)."""
    if score.metric not in DAILY_METRICS:
        return f"{score.metric} is not computed by the daily scoring yet"
    if score.against is not None and score.against not in meta_models and count > 0:
        return f"the round has no {score.against} to measure {score.name} against"
    return None


def day_targets(
    inputs: TargetInputs, live_date: date, day: int, neutralization: str, id_assets: pd.Series
) -> pd.Series:
    """Return score day ``day``'s binned realised target of a round's live ids (NaN-free, by id)."""
    by_asset = residual_returns(
        inputs, [pd.Timestamp(live_date)], day, neutral_to=neutralization, binned=True
    ).iloc[0]
    values = by_asset.reindex(id_assets.to_numpy()).to_numpy()
    return pd.Series(values, index=id_assets.index, name="target").dropna().sort_index()


def computable_days(config: TournamentConfig, inputs: TargetInputs, live_date: date) -> int:
    """Return the last score day (≤ scoring days) whose returns ``inputs`` hold; 0 if none."""
    dates = inputs.grid.dates
    position = int(dates.searchsorted(pd.Timestamp(live_date)))
    if position == len(dates) or dates[position] != pd.Timestamp(live_date):
        return 0
    return max(0, min(config.scoring_days, len(dates) - 1 - position - inputs.lag))


class _RoundScorer:
    """Scores a round's predictions day after day, transforming them once per set of scored ids.

    The predictions do not change between score days, only the targets do; while the ids with a
    known target stay the same, the rank → Gaussianise (→ ^1.5) transforms and the orthogonalisation
    to each meta model are computed once and every further day costs one matrix-vector product.
    The results equal ``crowdalpha.scoring.numerai_corr`` / ``correlation_contribution`` on the frame
    (the same alignment and rules); a frame with missing predictions takes those functions directly.
    """

    def __init__(self, values: pd.DataFrame, meta_models: dict[str, pd.Series]) -> None:
        self.values = values
        self.meta_models = meta_models
        self.complete = not values.isna().to_numpy().any()
        self._ids: pd.Index | None = None
        self._cache: dict[object, np.ndarray] = {}

    def _rows(self, ids: pd.Index, kind: str) -> np.ndarray:
        if self._ids is None or not self._ids.equals(ids):
            self._ids, self._cache = ids, {}
        if kind not in self._cache:
            rows = np.ascontiguousarray(self.values.loc[ids].to_numpy(np.float64).T)
            # one sort per set of ids serves both CORR's and MMC's transforms
            kinds = (kind, *(other for other in SHARED_RANK_KINDS if other not in (kind, *self._cache)))
            self._cache.update(zip(kinds, transform_rows_many(rows, kinds), strict=True))
        return self._cache[kind]

    def corr(self, target: pd.Series) -> pd.Series:
        """Return CORR per submission against one day's target."""
        if not self.complete:
            return scoring.numerai_corr(self.values, target)
        aligned, _ = scoring.filter_sort_index(
            target, self.values.iloc[:, :1], names=("targets", "predictions")
        )
        values, mean = aligned.to_numpy(np.float64), float(target.mean())
        require_target_power_correlated(values - mean)
        rows = self._rows(aligned.index, "gaussian_pow15")
        return pd.Series(corr_of_transformed(rows, values, target_mean=mean), index=self.values.columns)

    def contribution(self, against: str, target: pd.Series) -> pd.Series:
        """Return MMC (or BMC) per submission against one day's target and the named meta model."""
        meta_model = self.meta_models[against]
        if not self.complete:
            return scoring.correlation_contribution(self.values, meta_model, target)
        aligned, reference = scoring.filter_sort_index(
            target, meta_model, names=("live_targets", "meta_model")
        )
        aligned, _ = scoring.filter_sort_index(
            aligned, self.values.iloc[:, :1], names=("live_targets", "predictions")
        )
        gaussianized = self._rows(aligned.index, "gaussian")
        key = ("neutral", against)
        if key not in self._cache:
            direction = transform_rows(
                reference.loc[aligned.index].to_numpy(np.float64).reshape(1, -1), to="gaussian"
            )
            self._cache[key] = orthogonalize_rows(gaussianized, direction[0])
        scores = contribution_scores_rows(self._cache[key], aligned.to_numpy(np.float64))
        return pd.Series(scores, index=self.values.columns)


def score_round(
    ctx: Context,
    uow: UnitOfWork,
    loaded: LoadedTournament,
    row: Round,
    inputs: TargetInputs,
    *,
    now: datetime,
    report: ScoreDayReport | None = None,
) -> list[ScoredDay]:
    """Store every computable, not yet scored day of one round (in ``uow``); return the days stored."""
    config = loaded.config
    live = uow.scores.live_data(row.id)
    if live is None:
        raise NoLiveData(
            "no_private_live_data",
            f"{loaded.name} round {row.number} has no private live data; publish its dataset version"
            " with `crowdalpha dataset publish DIR --private PRIVATE_DIR` before opening rounds",
        )
    last = computable_days(config, inputs, live.live_date)
    done = uow.scores.scored_days(row.id)
    days = [day for day in range(1, last + 1) if day not in done]
    if not days:
        return []
    unscored: dict[str, str] = {} if report is None else report.unscored_submissions
    predictions = round_predictions(ctx, uow, loaded, row, unscored)
    count = predictions.values.shape[1]
    meta_models = _meta_models(ctx, uow, row, predictions.values.index)
    id_assets = round_id_assets(ctx, live)
    position = int(inputs.grid.dates.searchsorted(pd.Timestamp(live.live_date)))
    scorer = _RoundScorer(predictions.values, meta_models)
    stored: list[ScoredDay] = []
    for day in days:
        targets: dict[str, pd.Series] = {}  # scores on the same residual share the day's target
        new_scores: list[NewScore] = []
        names: list[str] = []
        for score in config.scores:
            if score.horizon < day:
                continue
            reason = _unscorable(score, meta_models, count)
            if reason is not None:
                if report is not None:
                    report.skipped_scores[score.name] = reason
                continue
            names.append(score.name)
            if count == 0:
                continue
            neutralization = _neutralization(score.target)
            if neutralization not in targets:
                targets[neutralization] = day_targets(inputs, live.live_date, day, neutralization, id_assets)
            target = targets[neutralization]
            if score.metric == "numerai_corr":
                values = scorer.corr(target)
            else:
                assert score.against is not None  # a contribution score names its meta model (config rule)
                values = scorer.contribution(score.against, target)
            new_scores.extend(_stored_scores(score.name, day, values, predictions.on_time))
        market_date = inputs.grid.dates[position + inputs.lag + day].date()
        if uow.scores.add_day(row.id, day, new_scores, market_date=market_date, submissions=count, now=now):
            stored.append(ScoredDay(row.number, day, market_date, count, tuple(names)))
    uow.rounds.transition(row.id, [RoundState.CLOSED], RoundState.SCORING, now=now)
    return stored


# -- use cases ----------------------------------------------------------------------------------------


def target_inputs(ctx: Context, config: TournamentConfig, through: date) -> TargetInputs:
    """Return the target inputs of the market store as known at ``through`` (cached: one slot per context)."""
    key = (through, config.lag_days, market_through(ctx))
    cached = ctx.cache.get(_INPUTS_CACHE_KEY)
    if cached is not None and cached[0] == key:
        return cached[1]
    panel = market_panel(ctx, through=through)
    if panel is None:
        raise ServiceError(
            "no_market_data", "the market store is empty; run `crowdalpha market ingest FILE` first"
        )
    inputs = prepare_target_inputs(panel, lag=config.lag_days)
    ctx.cache[_INPUTS_CACHE_KEY] = (key, inputs)
    return inputs


def _scorable_rounds(uow: UnitOfWork, tournament: TournamentRef) -> tuple[LoadedTournament, list[str]]:
    loaded = load_tournament(uow, tournament)
    return loaded, [row.id for row in uow.rounds.list(loaded.id, states=SCORED_STATES)]


def score_day(ctx: Context, tournament: TournamentRef, *, date: date | None = None) -> ScoreDayReport:
    """Score every closed or scoring round on each day the market data (through ``date``) makes computable."""
    through = market_through(ctx)
    if through is None:
        raise ServiceError(
            "no_market_data", "the market store is empty; run `crowdalpha market ingest FILE` first"
        )
    if date is not None:
        through = min(through, date)
    loaded, round_ids = run_transaction(
        ctx.engine, lambda uow: _scorable_rounds(uow, tournament), read_only=True
    )
    report = ScoreDayReport(tournament=loaded.name, through=through)
    if not round_ids:
        return report
    inputs = target_inputs(ctx, loaded.config, through)
    now = ctx.now()
    for round_id in round_ids:

        def work(uow: UnitOfWork, round_id: str = round_id) -> list[ScoredDay]:
            return score_round(ctx, uow, loaded, uow.rounds.get(round_id), inputs, now=now, report=report)

        try:
            report.scored.extend(run_transaction(ctx.engine, work))
        except (ScoresPending, NoLiveData) as pending:
            number = run_transaction(
                ctx.engine, lambda uow, r=round_id: uow.rounds.get(r).number, read_only=True
            )
            report.waiting[number] = str(pending)
    return report


def score_round_job(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: Round, day: int, *, now: datetime
) -> list[ScoredDay]:
    """Score a round through score day ``day`` inside a job's unit of work; ScoresPending if data lacks."""
    through = market_through(ctx)
    if through is None:
        raise ScoresPending(
            "no_market_data", "the market store is empty; run `crowdalpha market ingest FILE`"
        )
    stored = score_round(ctx, uow, loaded, row, target_inputs(ctx, loaded.config, through), now=now)
    if day not in uow.scores.scored_days(row.id):
        raise ScoresPending(
            "market_data_pending",
            f"{loaded.name} round {row.number} score day {day} needs market data after"
            f" {through.isoformat()}; run `crowdalpha market ingest FILE`",
        )
    return stored
