"""Daily scoring of closed rounds: each score day's realised target, every selected submission scored at once.

A round's live era is the market date *t* its live file was built from. Its score day k (1 … the
tournament's ``scoring_days``) is computable once the market store holds the close of t + L + k
(L = the config's ``lag_days``, counted in the store's trading dates): the returns t+L … t+L+k are
then known. The day's target is the dataset's definition
(:func:`crowdalpha.market.targets.residual_returns`, binned): a score's target ``"target"`` is the
main factor-neutral residual, ``target_<name>_<h>`` the ``<name>`` residual, both over k days, for
the round's live assets, mapped to the round's live ids through its private id map.

Each score of the config whose horizon reaches day k is computed for all selected submissions in
one vectorised call of :mod:`crowdalpha.scoring`: ``numerai_corr`` (CORR, CORRv4, ICv2, RIC),
``correlation_contribution`` against the meta model the score names (MMC, BMC),
``feature_neutral_corr`` against the live file's feature set or the round's risk neutralisers
(FNC, FNCv4), ``alpha`` and ``meta_portfolio_contribution`` with the round's neutralisers, sample
weights and at-risk stakes (Signals ALPHA, MPC), and — once per round, on day 1, over every live
id — ``cwmm``, ``mcwnm`` and ``apcwnm`` (the crowd is the on-time submissions). The benchmark meta
model (BMC) is :func:`crowdalpha.tournament.meta_model.benchmark_meta_model` of the version's
``live_benchmark_models.parquet`` (equal weights: benchmarks hold no stake). A score the round
cannot have — no meta model (nobody staked), no stakes, no feature set, or inputs breaking a
scoring rule — is skipped and reported; the others are stored.

Signals and Crypto submissions cover part of a universe of real tickers or symbols: they are
cleaned as Numerai does before scoring and before the meta model at close
(:func:`scored_predictions`), and their targets are binned over the round's own assets.
Resolved rounds keep being scored on their longer scores' days (Classic CORR60) until
``scoring_days`` (:func:`rounds_scored_after_resolution`); payouts are never touched again.

Stored per (submission, score, day): the value and the percentile among the round's **on-time**
submissions (average rank / count, in (0, 1]; None for late ones, which are scored but not
ranked). A day is stored once, with its ``round_score_days`` row, in one transaction: re-running
adds and replaces nothing. The first scored day moves the round closed → scoring; the row of day
``horizon`` tells the resolve step the round is resolvable.

Private data: opening a round records (``record_round_live_data``) the live date and the live id →
asset map — Classic from the version's private ``ids.parquet`` (published with ``dataset publish
--private``), Signals and Crypto from the market store on the live file's date; neither is ever
served.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.stats import rankdata
from sqlalchemy import func, select

from crowdalpha import scoring
from crowdalpha.datasets.benchmark_models import round_live_benchmarks_name
from crowdalpha.datasets.classic import PRIVATE_IDS
from crowdalpha.datasets.obfuscate import LIVE, TARGET_COLUMN
from crowdalpha.datasets.signals import composite_id, neutralizers_and_sample_weights, numerai_tickers
from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.market.targets import (
    MAIN_NEUTRALIZATION,
    NEUTRALIZATIONS,
    TargetInputs,
    bin_cross_sections,
    extend_target_inputs,
    prepare_target_inputs,
    residual_returns,
)
from crowdalpha.scoring._layout import require_no_nan
from crowdalpha.scoring.contribution import contribution_targets
from crowdalpha.scoring.correlations import centered_target, pearson_of_moments
from crowdalpha.scoring.crowd import pairwise_crowd_correlations
from crowdalpha.scoring.errors import ScoringError
from crowdalpha.scoring.frame import require_overlap, require_target_power_correlated
from crowdalpha.scoring.ranking import REMOVALS_BEFORE_RESORT, RankCodes, transform_rows
from crowdalpha.scoring.transforms import Neutralizer, power
from crowdalpha.service._derived import derived
from crowdalpha.service._tournaments import LoadedTournament, TournamentRef, load_tournament
from crowdalpha.service._universes import prepared_universe, read_universe
from crowdalpha.service.context import Context
from crowdalpha.service.datasets import PRIVATE_NAME_PREFIX
from crowdalpha.service.errors import ServiceError
from crowdalpha.service.market import EQUITY, market_batches, market_panel, market_through, read_batches
from crowdalpha.service.meta_model_scores import (
    MetaModelDayScore,
    meta_model_day_scores,
    upsert_meta_model_scores,
)
from crowdalpha.service.meta_models import META_MODEL_NAME, read_meta_model
from crowdalpha.store import Round, RoundState, UnitOfWork, run_transaction
from crowdalpha.store.repositories.scores import NewScoreColumn
from crowdalpha.store.schema import LiveUniverse, RoundLiveData, RoundScoreDay
from crowdalpha.tournament.config import (
    ROUND_NEUTRALIZERS,
    TARGET_FREE_METRICS,
    ScoreConfig,
    TournamentConfig,
)
from crowdalpha.tournament.meta_model import BENCHMARK_META_MODEL, benchmark_meta_model
from crowdalpha.tournament.submissions import SubmissionError, UploadKind, validate_submission

PRIVATE_IDS_FILE = PRIVATE_NAME_PREFIX + PRIVATE_IDS
SCORED_STATES = (RoundState.CLOSED, RoundState.SCORING)
SCORED_KINDS = (UploadKind.ON_TIME, UploadKind.LATE)
BENCHMARK_MODELS_FILE = "live_benchmark_models.parquet"
NON_MODEL_COLUMNS = frozenset({"id", "era", "data_type"})
DAILY_METRICS = frozenset(
    {
        "numerai_corr",
        "correlation_contribution",
        "feature_neutral_corr",
        "alpha",
        "meta_portfolio_contribution",
        *TARGET_FREE_METRICS,
    }
)
FEATURES_FILE = "features.json"
LIVE_FILE = "live.parquet"
_INPUTS_CACHE_KEY = "score_target_inputs"
_ROUND_STATE_KEY = "score_round_state"
ROUND_STATE_BUDGET = 20_000_000
"""Prediction values (ids × submissions) whose rounds' derived rows a context keeps across score days."""


@dataclass
class ScoreBatch:
    """What the score jobs run in one transaction share: each market's last date and target inputs.

    Read by the first job of the batch that needs them, then trusted by the rest: the batch is one
    transaction, so one snapshot of the market store serves all its jobs.
    """

    inputs: dict[tuple[str, int], tuple[date | None, TargetInputs | None]] = field(default_factory=dict)

    def target_inputs(
        self, ctx: Context, config: TournamentConfig
    ) -> tuple[date | None, TargetInputs | None]:
        """Return (the market's last ingested date, the target inputs through it); (None, None) if empty."""
        slot = (config.market, config.lag_days)
        if slot not in self.inputs:
            through = market_through(ctx, config.market)
            self.inputs[slot] = (through, None if through is None else target_inputs(ctx, config, through))
        return self.inputs[slot]


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
    ctx: Context, uow: UnitOfWork, round_row: Round, version_id: int, *, now: datetime, market: str = EQUITY
) -> RoundLiveData | None:
    """Record the round's live date and id → asset map; None when neither source has them.

    Classic: from the version's private ``ids.parquet``. A universe tournament (Signals, Crypto:
    real tickers or symbols, no private ids) maps its live universe through the market store
    on the live file's date (:func:`universe_id_assets`) in the tournament's ``market`` store.
    """
    files = {item.name: item for item in uow.datasets.list_files(version_id, public_only=False)}
    private_ids = files.get(PRIVATE_IDS_FILE)
    if private_ids is None:
        return _record_universe_live_data(ctx, uow, round_row, files, now=now, market=market)
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


UNIVERSE_KEYS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "numerai_ticker": lambda rows: numerai_tickers(rows),
    "composite_figi": lambda rows: rows["asset"].astype(str).map(composite_id),
    "symbol": lambda rows: rows["ticker"].astype(str),
    "ticker": lambda rows: rows["ticker"].astype(str),
}
"""How a universe id column is derived from a market row (the Signals / Crypto builders' keys)."""


def universe_id_assets(rows: pd.DataFrame, id_column: str, ids: np.ndarray) -> pd.Series:
    """Return the asset of each universe id, from the market rows of the live date (NaN: not found).

    A key shared by several assets (a Crypto symbol) names the largest by market cap, as the
    Crypto universe keeps the larger of duplicate symbols.
    """
    if id_column not in UNIVERSE_KEYS:
        return pd.Series(np.nan, index=pd.Index(ids), dtype=object)
    ordered = rows.sort_values(["market_cap", "asset"], ascending=[False, True], na_position="last")
    keys = pd.Series(
        ordered["asset"].astype(str).to_numpy(), index=UNIVERSE_KEYS[id_column](ordered).to_numpy()
    )
    keys = keys[~keys.index.duplicated(keep="first")]
    return keys.reindex(pd.Index(np.asarray(ids, dtype=object).astype(str)))


def _record_universe_live_data(
    ctx: Context, uow: UnitOfWork, round_row: Round, files: dict, *, now: datetime, market: str
) -> RoundLiveData | None:
    universe_row = uow.rounds.get_live_universe(round_row.id)
    live = files.get(LIVE_FILE)
    if universe_row is None or live is None:
        return None
    with ctx.blobs.open(live.blob_key) as handle:
        if "date" not in pq.read_schema(handle).names:
            return None
        handle.seek(0)
        dates = pc.unique(pq.read_table(handle, columns=["date"]).column("date")).to_pylist()
    if len(dates) != 1:
        return None
    live_date = pd.Timestamp(dates[0]).date()
    panel = market_panel(ctx, through=live_date, market=market)
    if panel is None or panel["date"].iloc[-1] < pd.Timestamp(live_date):
        return None  # the market store does not reach the live date yet: the round cannot be scored
    rows = panel[panel["date"] == pd.Timestamp(live_date)]
    ids = read_universe(ctx, universe_row)[universe_row.id_column]
    assets = universe_id_assets(rows, universe_row.id_column, ids).dropna()
    if assets.empty:
        return None
    id_map = pa.table(
        {"id": pa.array(assets.index.astype(str)), "asset": pa.array(assets.to_numpy().astype(str))}
    )
    return store_round_live_data(ctx, uow, round_row, live_date, id_map, now=now)


def _no_live_data_message(loaded: LoadedTournament, row: Round) -> str:
    """Return what the operator must do for a round opened without private live data."""
    if loaded.config.submissions.min_tickers is not None:
        return (
            f"{loaded.name} round {row.number} has no live id → asset map; its live universe is mapped"
            f" through the {loaded.config.market} market store on the live file's date: ingest the"
            f" market data of that date (`crowdalpha market ingest FILE --market {loaded.config.market}`)"
            " before the round opens"
        )
    return (
        f"{loaded.name} round {row.number} has no private live data; publish its dataset version"
        " with `crowdalpha dataset publish DIR --private PRIVATE_DIR` before opening rounds"
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
    """Return the round's live ids → asset ids (private; read once per context, shared: read-only)."""

    def read() -> pd.Series:
        with ctx.blobs.open(live.blob_key) as handle:
            table = pq.read_table(handle)
        return pd.Series(
            np.asarray(table.column("asset").to_pylist(), dtype=object),
            index=pd.Index(table.column("id").to_pylist(), name="id"),
        )

    return derived(ctx, "round id assets", live.blob_key, read)


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
    selected = tuple((s.id, s.status) for s in submissions)
    # the same selection of the same round reads the same matrix: kept per context across score days
    predictions, failed = derived(
        ctx,
        "round predictions",
        (key, selected),
        lambda: _selected_predictions(ctx, loaded, row, universe_row, key, submissions),
    )
    unscored.update(failed)
    return predictions


def _selected_predictions(
    ctx: Context,
    loaded: LoadedTournament,
    row: Round,
    universe_row: LiveUniverse,
    key: str,
    submissions: list,
) -> tuple[_RoundPredictions, dict[str, str]]:
    """Return the selected submissions' predictions from the stored matrix (grown by unread files) and
    the submissions left unscored, with the reason."""
    unscored: dict[str, str] = {}
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
        return _RoundPredictions(pd.DataFrame(), pd.Series(dtype=bool)), unscored
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
    return _RoundPredictions(frame, on_time), unscored


def _meta_models(ctx: Context, uow: UnitOfWork, row: Round, ids: pd.Index) -> dict[str, pd.Series]:
    """Return the meta models the round has, by the name scores use in ``against``, as Series by id."""
    if row.dataset_version_id is None or len(ids) == 0:
        return {}
    found: dict[str, pd.Series] = {}
    stake_weighted = read_meta_model(ctx, uow, row)
    if stake_weighted is not None and (stake_weighted.index.get_indexer(ids) >= 0).any():
        found[META_MODEL_NAME] = stake_weighted.reindex(ids)
    benchmark = _benchmark_meta_model(ctx, uow, row, ids)
    if benchmark is not None:
        found[BENCHMARK_META_MODEL] = benchmark
    return found


def _benchmark_meta_model(ctx: Context, uow: UnitOfWork, row: Round, ids: pd.Index) -> pd.Series | None:
    """Return the benchmark meta model of the round's live benchmark predictions, or None without them."""
    own = round_live_benchmarks_name(row.number)
    files = uow.datasets.find_files(row.dataset_version_id, [own, BENCHMARK_MODELS_FILE], round_id=row.id)
    # a round opened on a fresh live file has its own predictions; else the version's live ones
    found = files.get(own) or files.get(BENCHMARK_MODELS_FILE)
    if found is None:
        return None
    index, values = derived(
        ctx, "benchmark predictions", found.blob_key, lambda: _benchmark_values(ctx, found)
    )
    positions = index.get_indexer(ids)
    if values.shape[1] == 0 or (positions < 0).any():
        return None  # no benchmark predictions, or ones made for another live file than the round's
    return pd.Series(benchmark_meta_model(values[positions]), index=ids, name=BENCHMARK_META_MODEL)


def _benchmark_values(ctx: Context, found) -> tuple[pd.Index, np.ndarray]:
    """Return a live benchmark predictions file's ids and its models' values (ids × models, float64)."""
    with ctx.blobs.open(found.blob_key) as handle:
        benchmarks = pq.read_table(handle).to_pandas()
    if "id" in benchmarks.columns:
        benchmarks = benchmarks.set_index("id")
    benchmarks.index = benchmarks.index.astype(str)
    columns = [
        c
        for c in benchmarks.columns
        if c not in NON_MODEL_COLUMNS and pd.api.types.is_numeric_dtype(benchmarks[c])
    ]
    return benchmarks.index, benchmarks[columns].to_numpy(dtype=np.float64)


def _percentiles(values: np.ndarray, on_time: np.ndarray) -> np.ndarray:
    """Return each on-time value's percentile among on-time values (average rank / count); NaN if late."""
    ranked = on_time & ~np.isnan(values)
    result = np.full(values.shape, np.nan)
    if ranked.any():
        result[ranked] = rankdata(values[ranked], method="average") / int(ranked.sum())
    return result


def _stored_scores(name: str, day: int, values: pd.Series, on_time: pd.Series) -> NewScoreColumn:
    """Return the rows to store of one score and day; a submission whose value is NaN gets no row."""
    array = values.to_numpy(np.float64)
    percentiles = _percentiles(array, on_time.reindex(values.index, fill_value=False).to_numpy(bool))
    kept = np.flatnonzero(~np.isnan(array))
    pcts = percentiles[kept].astype(object)
    pcts[np.isnan(percentiles[kept])] = None
    return NewScoreColumn(
        name, day, values.index.to_numpy()[kept].astype(str).tolist(), array[kept].tolist(), pcts.tolist()
    )


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
    """Return score day ``day``'s realised target of a round's live ids (NaN-free, by id).

    The residual return over the day's window is binned to {0, .25, .5, .75, 1} over the round's
    own assets with a known return (ties by asset id, as the dataset builder bins), so a round
    scored on part of the market (a Crypto universe) has its own 5/20/50/20/5 % target.
    """
    residuals = residual_returns(inputs, [pd.Timestamp(live_date)], day, neutral_to=neutralization)
    layout = _target_layout(inputs.grid.assets, id_assets)
    by_member = np.where(layout.columns >= 0, residuals.to_numpy()[0, layout.columns], np.nan)
    binned = bin_cross_sections(by_member[None, :])[0]
    values = binned[layout.member_of_sorted_id]
    known = ~np.isnan(values)
    return pd.Series(values[known], index=layout.known_ids(known), name="target")


@dataclass(frozen=True, eq=False)
class _TargetLayout:
    """Where a round's targets come from: its assets' market columns, each sorted id's asset."""

    assets: pd.Index
    id_assets: pd.Series
    columns: np.ndarray
    """Market column of each of the round's distinct assets (sorted), −1 if the market lacks it."""
    member_of_sorted_id: np.ndarray
    sorted_ids: pd.Index
    _known: dict[bytes, pd.Index] = field(default_factory=dict)

    def known_ids(self, known: np.ndarray) -> pd.Index:
        """Return the sorted ids where ``known`` holds: the same Index object for the same mask, so a
        scorer aligns a day target whose ids did not change without looking them up again."""
        key = np.packbits(known).tobytes()
        found = self._known.get(key)
        if found is None:
            if len(self._known) >= 4:
                self._known.clear()
            found = self._known[key] = self.sorted_ids[known]
        return found


_TARGET_LAYOUTS: dict[tuple[int, int], _TargetLayout] = {}
_TARGET_LAYOUTS_KEPT = 256


def _target_layout(assets: pd.Index, id_assets: pd.Series) -> _TargetLayout:
    """Return the layout of a round's ids over the market's assets, kept for the objects' lifetime."""
    slot = (id(assets), id(id_assets))
    found = _TARGET_LAYOUTS.get(slot)
    if found is not None and found.assets is assets and found.id_assets is id_assets:
        return found
    members = pd.Index(pd.unique(id_assets.to_numpy())).sort_values()
    order = id_assets.index.argsort()
    layout = _TargetLayout(
        assets,
        id_assets,
        assets.get_indexer(members),
        members.get_indexer(id_assets.to_numpy()[order]),
        id_assets.index[order],
    )
    if len(_TARGET_LAYOUTS) >= _TARGET_LAYOUTS_KEPT:
        del _TARGET_LAYOUTS[next(iter(_TARGET_LAYOUTS))]
    _TARGET_LAYOUTS[slot] = layout
    return layout


def computable_days(config: TournamentConfig, inputs: TargetInputs, live_date: date) -> int:
    """Return the last score day (≤ scoring days) whose returns ``inputs`` hold; 0 if none."""
    dates = inputs.grid.dates
    position = int(dates.searchsorted(pd.Timestamp(live_date)))
    if position == len(dates) or dates[position] != pd.Timestamp(live_date):
        return 0
    return max(0, min(config.scoring_days, len(dates) - 1 - position - inputs.lag))


class _RoundScorer:
    """Scores a round's predictions day after day from rank codes kept per set of scored ids.

    The predictions do not change between score days, only the targets do, and the ids with a known
    target shrink by a few now and then. Each model's rows are sorted once per round into tie-kept
    rank codes (:class:`crowdalpha.scoring.ranking.RankCodes`), the same for FNC's neutralised
    rows; a day whose ids differ only restricts the codes, and every score is then a product of the
    codes' transform with a vector (the day's target, the meta model) and the transform's moments,
    so nothing of ids × models size is built per day. Scores that do not depend on a target (CWMM,
    MCWNM, APCWNM) are computed once, over every live id. The results equal ``crowdalpha.scoring``
    on the frame (the same alignment and rules) up to rounding; a frame with missing predictions
    takes those functions directly.
    """

    def __init__(
        self,
        values: pd.DataFrame,
        meta_models: dict[str, pd.Series],
        *,
        peers: pd.Series | None = None,
        neutralizers: Callable[[str], pd.DataFrame] | None = None,
        round_state: dict[object, object] | None = None,
    ) -> None:
        self.values = values
        self.meta_models = meta_models
        self.peers = peers
        self.neutralizers = neutralizers
        self.complete = not values.isna().to_numpy().any()
        self._products: dict[object, np.ndarray] = {}
        self._round: dict[object, object] = {} if round_state is None else round_state
        """What depends only on the round's predictions (rank codes, FNC's neutral rows): kept across days."""

    # -- rank codes per set of ids

    def _prediction_rows(self) -> np.ndarray:
        return self.values.to_numpy(np.float64).T  # (models, ids): a view of the frame's values

    def _codes(self, source: object, positions: np.ndarray, rows: Callable[[], np.ndarray]) -> RankCodes:
        """Return ``source``'s rank codes over the ids at ``positions``, restricted from the codes kept
        (the last set's, or every live id's) or, when many ids differ, sorted again."""
        wanted = np.zeros(len(self.values.index), dtype=bool)
        wanted[positions] = True
        kept: dict[str, RankCodes] = self._round.setdefault(("codes", source), {})  # type: ignore[assignment]
        for codes in kept.values():
            if np.array_equal(codes.kept, wanted):
                return codes
        if "every id" not in kept and (~wanted).sum() <= REMOVALS_BEFORE_RESORT:
            kept["every id"] = RankCodes(rows())  # the crowd scores and later days need every id too
            if wanted.all():
                return kept["every id"]
        for codes in kept.values():
            if not (wanted & ~codes.kept).any() and (codes.kept & ~wanted).sum() <= REMOVALS_BEFORE_RESORT:
                found = codes.restricted(positions)
                break
        else:
            found = RankCodes(rows(), None if wanted.all() else positions)
        kept["every id" if wanted.all() else "last"] = found
        return found

    def _row_products(
        self, source: object, codes: RankCodes, to: str, positions: np.ndarray, vectors: list[np.ndarray]
    ) -> list[np.ndarray]:
        """Return ``transform(to) @ vector`` per vector, computing the ones not seen yet in one pass."""
        keys = [
            (source, to, hashlib.sha1(positions.tobytes() + vector.tobytes()).hexdigest())
            for vector in vectors
        ]
        missing = [k for k, key in enumerate(keys) if key not in self._products]
        if missing:
            products = codes.products(to, positions, np.stack([vectors[k] for k in missing], axis=1))
            for column, k in enumerate(missing):
                self._products[keys[k]] = products[:, column]
        return [self._products[key] for key in keys]

    def _corr(
        self, source: object, codes: RankCodes, positions: np.ndarray, target: np.ndarray, mean: float
    ) -> np.ndarray:
        """Return CORR of ``source``'s rows (ranked over ``positions``) with the day's target values."""
        powered = power(centered_target(target, mean), 1.5)
        centered = powered - powered.mean()
        [products] = self._row_products(source, codes, "gaussian_pow15", positions, [centered])
        sums, squares = codes.moments("gaussian_pow15")
        return pearson_of_moments(products, sums, squares, centered)

    def _positions(self, ids: pd.Index) -> np.ndarray:
        """Return the positions of ``ids`` among the predictions' (kept per Index object for the round)."""
        kept: dict[int, tuple[pd.Index, np.ndarray]] = self._round.setdefault("positions", {})  # type: ignore[assignment]
        found = kept.get(id(ids))
        if found is not None and found[0] is ids:
            return found[1]
        positions = self.values.index.get_indexer(ids)
        positions.flags.writeable = False  # shared by every score of the round on these ids
        if len(kept) >= 8:
            kept.clear()
        kept[id(ids)] = (ids, positions)  # the Index is held, so its id is not reused while kept
        return positions

    def _target_positions(self, target: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
        """Return a day target's values and their ids' positions among the predictions' when it is
        aligned as it is (sorted, NaN-free, within the live ids: :func:`day_targets`), else None."""
        values = target.to_numpy(np.float64)
        positions = self._positions(target.index)
        aligned = len(values) and (positions >= 0).all() and (np.diff(positions) > 0).all()
        return (values, positions) if aligned and not np.isnan(values).any() else None

    def _aligned_target(self, target: pd.Series) -> tuple[np.ndarray, np.ndarray, float]:
        """Return the target's values on the ids it shares with the predictions (sorted by id), those
        ids' positions among the predictions' and the whole target's mean; the rules of
        :func:`crowdalpha.scoring.filter_sort_index` (enough overlap) hold."""
        found = self._target_positions(target)
        if found is not None:
            values, positions = found
            require_overlap(len(values), len(self.values.index), "predictions", "targets")
            return values, positions, float(values.mean())
        aligned, _ = scoring.filter_sort_index(
            target, self.values.iloc[:, :1], names=("targets", "predictions")
        )
        return aligned.to_numpy(np.float64), self._positions(aligned.index), float(target.mean())

    # -- scores

    def corr(self, target: pd.Series) -> pd.Series:
        """Return CORR per submission against one day's target."""
        if not self.complete:
            return scoring.numerai_corr(self.values, target)
        values, positions, mean = self._aligned_target(target)
        require_target_power_correlated(values - mean)
        codes = self._codes("predictions", positions, self._prediction_rows)
        return pd.Series(self._corr("predictions", codes, positions, values, mean), index=self.values.columns)

    def contribution(self, against: str, target: pd.Series) -> pd.Series:
        """Return MMC (or BMC) per submission against one day's target and the named meta model.

        A model's part orthogonal to the meta model m is ``g − c·m`` with ``c = (g·m)/(m·m)``, so
        its covariance with the target is ``(g·t − c·(m·t)) / n``: ``g·m`` is kept per set of ids,
        ``g·t`` (shared by MMC and BMC) per day.
        """
        meta_model = self.meta_models[against]
        if not self.complete:
            return scoring.correlation_contribution(self.values, meta_model, target)
        values, positions, reference = self._contribution_inputs(meta_model, target)
        codes = self._codes("predictions", positions, self._prediction_rows)
        direction = transform_rows(reference.reshape(1, -1), to="gaussian")[0]
        centered = contribution_targets(values)
        on_target, on_meta = self._row_products(
            "predictions", codes, "gaussian", positions, [centered, direction]
        )
        coefficients = on_meta / (direction @ direction)
        scores = (on_target - coefficients * (direction @ centered)) / centered.shape[0]
        return pd.Series(scores, index=self.values.columns)

    def _contribution_inputs(
        self, meta_model: pd.Series, target: pd.Series
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the target's values, their ids' positions among the predictions' and the meta
        model's values there: the ids non-NaN in target and meta model, sorted (the overlap rules of
        :func:`crowdalpha.scoring.filter_sort_index` hold)."""
        found = self._target_positions(target)
        same_ids = meta_model.index is self.values.index or meta_model.index.equals(self.values.index)
        if found is not None and same_ids:
            values, positions = found
            reference = meta_model.to_numpy(np.float64)[positions]
            if not np.isnan(reference).any():  # the meta model of the round's ids: aligned as well
                require_overlap(len(values), len(meta_model), "meta_model", "live_targets")
                require_overlap(len(values), len(self.values.index), "predictions", "live_targets")
                return values, positions, reference
        aligned, reference_series = scoring.filter_sort_index(
            target, meta_model, names=("live_targets", "meta_model")
        )
        aligned, _ = scoring.filter_sort_index(
            aligned, self.values.iloc[:, :1], names=("live_targets", "predictions")
        )
        return (
            aligned.to_numpy(np.float64),
            self._positions(aligned.index),
            reference_series.loc[aligned.index].to_numpy(np.float64),
        )

    def _neutral_rows(self, neutral_to: str) -> np.ndarray:
        """Return the Gaussianised predictions neutralised to ``neutral_to`` over every live id (models, ids);
        rows that came out constant are 0 and marked unscorable."""
        assert self.neutralizers is not None  # score_round passes them for a neutralised score
        every_id = np.arange(len(self.values.index))
        gaussianized = self._codes("predictions", every_id, self._prediction_rows).transform("gaussian")
        features = self.neutralizers(neutral_to).loc[self.values.index].to_numpy(np.float64)
        neutral = Neutralizer(features).residual_rows(gaussianized)
        del gaussianized
        scorable = ~np.isnan(neutral[:, 0])  # a constant model's neutral row is all NaN
        neutral[~scorable] = 0.0
        self._round[("fnc_scorable", neutral_to)] = scorable
        return neutral

    def feature_neutral_corr(self, neutral_to: str, target: pd.Series) -> pd.Series:
        """Return FNC per submission: CORR after neutralising to ``neutral_to`` over every live id."""
        assert self.neutralizers is not None  # score_round passes them for a neutralised score
        if not self.complete:
            return scoring.feature_neutral_corr(self.values, self.neutralizers(neutral_to), target)
        values, positions, mean = self._aligned_target(target)
        source = ("fnc", neutral_to)
        codes = self._codes(source, positions, lambda: self._neutral_rows(neutral_to))
        scores = self._corr(source, codes, positions, values, mean)
        scores[~self._round[("fnc_scorable", neutral_to)]] = np.nan  # type: ignore[operator]
        return pd.Series(scores, index=self.values.columns)

    def crowd(self, metric: str, against: str | None) -> pd.Series:
        """Return a crowd score over every live id: CWMM against a meta model, MCWNM or APCWNM."""
        if not self.complete:
            raise ScoringError(f"{metric} needs complete predictions (rule: clean submissions first)")
        every_id = np.arange(len(self.values.index))
        codes = self._codes("predictions", every_id, self._prediction_rows)
        if metric == "cwmm":
            assert against is not None  # CWMM names its meta model (config rule)
            reference = self.meta_models[against].reindex(self.values.index).to_numpy(np.float64)
            require_no_nan(reference, name="meta model values")
            centered = reference - reference.mean()
            [products] = self._row_products("predictions", codes, "gaussian_pow15", every_id, [centered])
            sums, squares = codes.moments("gaussian_pow15")
            return pd.Series(pearson_of_moments(products, sums, squares, centered), index=self.values.columns)
        if "pairwise" not in self._round:
            peers = None if self.peers is None else self.peers.reindex(self.values.columns, fill_value=False)
            self._round["pairwise"] = pairwise_crowd_correlations(
                codes.transform("gaussian_pow15"),
                peers=None if peers is None else peers.to_numpy(bool),
                in_place=True,
            )
        maxima, means = self._round["pairwise"]  # type: ignore[misc]
        return pd.Series(maxima if metric == "mcwnm" else means, index=self.values.columns)

    def portfolio(
        self,
        metric: str,
        target: pd.Series,
        risk: tuple[pd.DataFrame, pd.Series],
        stakes: pd.Series | None = None,
    ) -> pd.Series:
        """Return Signals ALPHA or MPC per submission with the round's neutralisers and sample weights.

        MPC is the gradient of the stake-weighted portfolio's alpha with respect to each stake; a
        submission without a stake (late, or unstaked) is given stake 0, so it gets the gradient
        at 0 without moving the portfolio.
        """
        neutralizers, sample_weights = risk
        if metric == "alpha":
            return scoring.alpha(self.values, neutralizers, sample_weights, target)
        assert stakes is not None  # score_round passes the at-risk stakes for MPC
        return scoring.meta_portfolio_contribution(
            self.values, stakes, neutralizers, sample_weights, target
        ).reindex(self.values.columns)


# -- what a round's scores are measured with ---------------------------------------------------------


def universe_predictions(
    values: pd.DataFrame, universe: dict[str, np.ndarray], id_column: str
) -> pd.DataFrame:
    """Return submissions cleaned over the whole universe: ids × submissions, by ``id_column``'s ids.

    As Numerai cleans Signals and Crypto submissions before scoring (reference §3.8): each
    submission's ids (any of the universe's id columns: the file's own) are mapped to the
    universe's main ids, its values tie-kept ranked over the ids it covers, and the ids it does
    not cover filled with 0.5.
    """
    canonical = pd.Index(np.asarray(universe[id_column], dtype=object).astype(str))
    lookups = [pd.Index(np.asarray(ids, dtype=object).astype(str)) for ids in universe.values()]
    matrix = np.full((len(values.columns), len(canonical)), np.nan)
    for k, column in enumerate(values.columns):
        submitted = values[column].dropna()
        for lookup in lookups:
            positions = lookup.get_indexer(submitted.index.astype(str))
            if len(positions) and (positions >= 0).all():
                matrix[k, positions] = submitted.to_numpy(np.float64)
                break
    ranked = transform_rows(matrix, to="percentile")
    ranked[np.isnan(ranked)] = 0.5
    return pd.DataFrame(ranked.T, index=canonical, columns=values.columns).sort_index()


def scored_predictions(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: Round, unscored: dict[str, str]
) -> _RoundPredictions:
    """Return the round's selected submissions as scores and meta models see them.

    Classic: as stored (every live id). A tournament whose submissions cover part of the universe
    (Signals, Crypto: ``min_tickers``) gets them cleaned over the universe first
    (:func:`universe_predictions`).
    """
    predictions = round_predictions(ctx, uow, loaded, row, unscored)
    universe_row = uow.rounds.get_live_universe(row.id)
    if loaded.config.submissions.min_tickers is None or universe_row is None or predictions.values.empty:
        return predictions
    universe = read_universe(ctx, universe_row)
    values = universe_predictions(predictions.values, universe, universe_row.id_column)
    return _RoundPredictions(values, predictions.on_time)


def _feature_set_frame(
    ctx: Context, uow: UnitOfWork, row: Round, feature_set: str, ids: pd.Index
) -> pd.DataFrame:
    """Return the round's live features of a ``features.json`` feature set, by id (float64)."""
    if row.dataset_version_id is None:
        raise ServiceError("no_dataset", f"round {row.number} has no dataset version")
    own_live = f"live_{row.number}.parquet"
    files = uow.datasets.find_files(
        row.dataset_version_id, [FEATURES_FILE, own_live, LIVE_FILE], public_only=False, round_id=row.id
    )
    if FEATURES_FILE not in files:
        raise ServiceError("no_feature_sets", f"the round's dataset version has no {FEATURES_FILE}")
    sets = json.loads(ctx.blobs.read_bytes(files[FEATURES_FILE].blob_key)).get("feature_sets", {})
    if feature_set not in sets:
        raise ServiceError(
            "unknown_feature_set",
            f"{FEATURES_FILE} has no feature set {feature_set!r}; it has {sorted(sets)[:8]}",
        )
    live = files.get(own_live, files.get(LIVE_FILE))
    if live is None:
        raise ServiceError("no_live_file", f"round {row.number} has no live file")
    with ctx.blobs.open(live.blob_key) as handle:
        table = pq.read_table(handle, columns=["id", *sets[feature_set]])
    frame = table.to_pandas()
    if "id" in frame.columns:
        frame = frame.set_index("id")
    frame.index = frame.index.astype(str)
    features = frame.reindex(ids).astype(np.float64)
    if features.isna().to_numpy().any():
        raise ServiceError(
            "incomplete_features",
            f"the live features of set {feature_set!r} miss values for some scored ids"
            " (rule: neutralisers must be complete)",
        )
    return features


SIGNALS_RISK_CACHE = "crowdalpha.service.scoring.signals_risk"
SIGNALS_RISK_KEPT = 32
"""Rounds whose neutralisers a context keeps (about the rounds a Signals tournament scores at once)."""


def _signals_risk(ctx: Context, live_date: date, id_assets: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """Return the round's neutralisers and sample weights (from the market store at its live date), by id.

    They depend only on the market up to the live date, which never changes once ingested, so a
    context computes them once per round and reuses them on every later score day.
    """
    kept: dict[tuple[object, ...], tuple[pd.DataFrame, pd.Series]] = ctx.cache.setdefault(
        SIGNALS_RISK_CACHE, {}
    )
    key = (
        live_date,
        int(pd.util.hash_pandas_object(id_assets.astype(str), index=True).sum()),
        len(id_assets),
    )
    if key not in kept:
        if len(kept) >= SIGNALS_RISK_KEPT:
            kept.pop(next(iter(kept)))
        kept[key] = _compute_signals_risk(ctx, live_date, id_assets)
    neutralizers, weights = kept[key]
    return neutralizers.copy(), weights.copy()


def _compute_signals_risk(
    ctx: Context, live_date: date, id_assets: pd.Series
) -> tuple[pd.DataFrame, pd.Series]:
    panel = market_panel(ctx, through=live_date)
    if panel is None:
        raise ServiceError("no_market_data", "the market store is empty")
    rows = panel[panel["date"] == pd.Timestamp(live_date)]
    tickers = pd.Series(numerai_tickers(rows).to_numpy(), index=rows["asset"].astype(str).to_numpy())
    members = tickers.reindex(id_assets.astype(str).to_numpy())
    if members.isna().any():
        raise ServiceError(
            "assets_not_in_market",
            f"{int(members.isna().sum())} of the round's assets have no market row on"
            f" {live_date.isoformat()}",
        )
    neutralizers, weights = neutralizers_and_sample_weights(
        panel, pd.Timestamp(live_date), members=list(members), validate=False
    )
    by_ticker = pd.Series(id_assets.index, index=members.to_numpy())
    neutralizers.index = pd.Index(by_ticker.reindex(neutralizers.index).to_numpy(), name="id")
    weights.index = neutralizers.index
    return neutralizers.sort_index(), weights.sort_index()


class _RoundData:
    """The round's neutralisers, risk data and stakes, each read the first time a score needs it."""

    def __init__(
        self,
        ctx: Context,
        uow: UnitOfWork,
        row: Round,
        live: RoundLiveData,
        id_assets: pd.Series,
        ids: pd.Index,
    ) -> None:
        self.ctx, self.uow, self.row, self.live, self.id_assets, self.ids = (
            ctx,
            uow,
            row,
            live,
            id_assets,
            ids,
        )
        self._found: dict[str, object] = {}

    def risk(self) -> tuple[pd.DataFrame, pd.Series]:
        """Return (neutralisers, sample weights) of the round's live universe."""
        if "risk" not in self._found:
            self._found["risk"] = _signals_risk(self.ctx, self.live.live_date, self.id_assets)
        return self._found["risk"]  # type: ignore[return-value]

    def neutralizers(self, neutral_to: str) -> pd.DataFrame:
        """Return what a neutralised score neutralises to: a feature set, or the round's neutralisers."""
        if neutral_to == ROUND_NEUTRALIZERS:
            return self.risk()[0].reindex(self.ids)
        key = f"features/{neutral_to}"
        if key not in self._found:
            self._found[key] = _feature_set_frame(self.ctx, self.uow, self.row, neutral_to, self.ids)
        return self._found[key]  # type: ignore[return-value]

    def stakes(self, submissions: pd.Index) -> pd.Series:
        """Return each submission's at-risk stake (tokens; 0 when it has none); ScoringError if all are 0."""
        at_risk = {
            stake.submission_id: stake.at_risk_nano for stake in self.uow.resolution.stakes(self.row.id)
        }
        stakes = pd.Series([at_risk.get(s, 0) / NANO_PER_TOKEN for s in submissions], index=submissions)
        if not (stakes > 0).any():
            raise ScoringError("no submission of the round has a stake at close (rule: MPC needs stakes)")
        return stakes


def _score_values(
    score: ScoreConfig, scorer: _RoundScorer, target: pd.Series | None, data: _RoundData
) -> pd.Series:
    """Return one score of every submission (NaN where a submission has none)."""
    if score.metric in TARGET_FREE_METRICS:
        return scorer.crowd(score.metric, score.against)
    assert target is not None  # every other metric has a target (config rule)
    if score.metric == "numerai_corr":
        return scorer.corr(target)
    if score.metric == "correlation_contribution":
        assert score.against is not None  # a contribution score names its meta model (config rule)
        return scorer.contribution(score.against, target)
    if score.metric == "feature_neutral_corr":
        assert score.neutral_to is not None  # config rule
        return scorer.feature_neutral_corr(score.neutral_to, target)
    stakes = data.stakes(scorer.values.columns) if score.metric == "meta_portfolio_contribution" else None
    return scorer.portfolio(score.metric, target, data.risk(), stakes)


def _round_state(ctx: Context, row: Round, values: pd.DataFrame) -> dict[object, object] | None:
    """Return the context's store of what a round's scorer derives from its predictions alone.

    Kept per round across score days (one context runs many): the row order and the neutral rows
    depend only on the predictions, which a round keeps once closed (a late upload is a new
    submission id, so a new key). Rounds are kept while their matrices total at most
    ``ROUND_STATE_BUDGET`` values, oldest first out; a larger round is not kept (None).
    """
    if values.size > ROUND_STATE_BUDGET:
        return None
    states: dict[str, tuple[tuple, int, dict[object, object]]] = ctx.cache.setdefault(_ROUND_STATE_KEY, {})
    fingerprint = (tuple(values.columns), tuple(values.index[[0, -1]]) if len(values) else (), values.shape)
    kept = states.pop(row.id, None)
    state = kept[2] if kept is not None and kept[0] == fingerprint else {}
    states[row.id] = (fingerprint, values.size, state)
    while sum(size for _, size, _ in states.values()) > ROUND_STATE_BUDGET:
        del states[next(iter(states))]
    return state


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
    """Store every computable, not yet scored day of one round (in ``uow``); return the days stored.

    A score that cannot be computed for the round (its meta model, stakes or neutralisers are
    missing, or its inputs break a scoring rule) is skipped and named in the report; the others
    are stored.
    """
    return store_round_scores(uow, plan_round_scores(ctx, uow, loaded, row, inputs, report=report), now=now)


@dataclass
class RoundScorePlan:
    """A round's new score days, computed in a read and not stored yet (:func:`store_round_scores`)."""

    round_id: str
    number: int
    closed: bool
    """The round is still closed: storing its first day moves it to scoring."""
    days: list[tuple[ScoredDay, list[NewScoreColumn]]]
    scored: set[int]
    """Every score day of the round once the plan is stored."""
    meta_model_scores: list[MetaModelDayScore]


def plan_round_scores(
    ctx: Context,
    uow: UnitOfWork,
    loaded: LoadedTournament,
    row: Round,
    inputs: TargetInputs,
    *,
    report: ScoreDayReport | None = None,
) -> RoundScorePlan:
    """Compute every computable, not yet scored day of one round, reading only (see :func:`score_round`).

    The reads and the computing can run outside the write transaction that stores the plan, so a
    database's single writer is held only for the inserts.
    """
    config = loaded.config
    live = uow.scores.live_data(row.id)
    if live is None:
        raise NoLiveData("no_private_live_data", _no_live_data_message(loaded, row))
    last = computable_days(config, inputs, live.live_date)
    done = set(uow.scores.scored_days(row.id))
    days = [day for day in range(1, last + 1) if day not in done]
    closed = row.state == RoundState.CLOSED.value
    if not days:
        return RoundScorePlan(row.id, row.number, closed, [], done, [])
    unscored: dict[str, str] = {} if report is None else report.unscored_submissions
    predictions = scored_predictions(ctx, uow, loaded, row, unscored)
    values = predictions.values
    count = values.shape[1]
    # past the main horizon only the longer scores (CORR60) are due, and they need no meta model
    needed = any(score.against is not None for score in config.scores if score.horizon >= days[0])
    meta_models = _meta_models(ctx, uow, row, values.index) if needed else {}
    id_assets = round_id_assets(ctx, live)
    position = int(inputs.grid.dates.searchsorted(pd.Timestamp(live.live_date)))
    data = _RoundData(ctx, uow, row, live, id_assets, values.index)
    round_state = _round_state(ctx, row, values)
    scorer = _RoundScorer(
        values,
        meta_models,
        peers=predictions.on_time,
        neutralizers=data.neutralizers,
        round_state=round_state,
    )
    skipped = {} if report is None else report.skipped_scores
    planned: list[tuple[ScoredDay, list[NewScoreColumn]]] = []
    day_target_values: dict[tuple[int, str], pd.Series] = {}  # the meta model's scores reuse them
    for day in days:
        targets: dict[str, pd.Series] = {}  # scores on the same residual share the day's target
        new_scores: list[NewScoreColumn] = []
        names: list[str] = []
        for score in config.scores:
            if score.horizon < day:
                continue
            reason = _unscorable(score, meta_models, count)
            if reason is not None:
                skipped[score.name] = reason
                continue
            if count == 0:
                names.append(score.name)
                continue
            target = None
            if score.target:
                neutralization = _neutralization(score.target)
                if neutralization not in targets:
                    targets[neutralization] = day_target_values[day, neutralization] = day_targets(
                        inputs, live.live_date, day, neutralization, id_assets
                    )
                target = targets[neutralization]
            try:
                score_values = _score_values(score, scorer, target, data)
            except (ScoringError, ServiceError) as error:
                skipped[score.name] = f"round {row.number} day {day}: {error}"
                continue
            names.append(score.name)
            new_scores.append(_stored_scores(score.name, day, score_values, predictions.on_time))
        market_date = inputs.grid.dates[position + inputs.lag + day].date()
        planned.append((ScoredDay(row.number, day, market_date, count, tuple(names)), new_scores))
    meta_model_scores = meta_model_day_scores(
        ctx, uow, loaded, row, inputs, days, targets=day_target_values, live=live, round_state=round_state
    )
    return RoundScorePlan(row.id, row.number, closed, planned, done | set(days), meta_model_scores)


def store_round_scores(uow: UnitOfWork, plan: RoundScorePlan, *, now: datetime) -> list[ScoredDay]:
    """Store a plan's score days (each once: a day stored meanwhile is left as it is); return those stored.

    The first day stored moves a closed round to scoring; the meta model's scores are upserted.
    """
    if not plan.days:
        return []
    known = set(uow.scores.scored_days(plan.round_id))
    stored = []
    for day, new_scores in plan.days:
        if uow.scores.add_day(
            plan.round_id,
            day.day,
            new_scores,
            market_date=day.market_date,
            submissions=day.submissions,
            now=now,
            scored=known,
        ):
            stored.append(day)
    if plan.closed:
        uow.rounds.transition(plan.round_id, [RoundState.CLOSED], RoundState.SCORING, now=now)
    upsert_meta_model_scores(uow, plan.round_id, plan.meta_model_scores, now=now)
    return stored


# -- use cases ----------------------------------------------------------------------------------------


def _empty_market_message(market: str) -> str:
    return f"the {market} market store is empty; run `crowdalpha market ingest FILE --market {market}` first"


def target_inputs(ctx: Context, config: TournamentConfig, through: date) -> TargetInputs:
    """Return the target inputs of the market store as known at ``through`` (cached: one slot per market).

    The slot holds the inputs of the batches ingested so far; a later call extends them by the
    batches ingested since (:func:`crowdalpha.market.targets.extend_target_inputs`: only the
    new dates' rows are computed), and rebuilds from the whole panel when they cannot be extended.
    """
    slot = (_INPUTS_CACHE_KEY, config.market, config.lag_days)
    cached = ctx.cache.get(slot)
    if cached is not None and cached[1] == through:
        # batches are append-only: the same count and last batch are the same batches (two small reads)
        count, last_key = run_transaction(
            ctx.engine, lambda uow: uow.market.last_started(config.market, through=through), read_only=True
        )
        if (count, last_key) == (len(cached[0]), cached[0][-1]):
            return cached[2]
    batches = market_batches(ctx, config.market, through=through)
    if not batches:
        raise ServiceError("no_market_data", _empty_market_message(config.market))
    keys = tuple(batch.blob_key for batch in batches)
    last = min(through, batches[-1].last_date)
    if cached is not None and cached[:2] == (keys, last):
        return cached[2]
    inputs = None
    if cached is not None and keys[: len(cached[0])] == cached[0] and last == batches[-1].last_date:
        held, held_last, held_inputs = cached
        if held_last == batches[len(held) - 1].last_date:  # the held inputs cover their batches whole
            inputs = extend_target_inputs(held_inputs, read_batches(ctx, keys[len(held) :]))
    if inputs is None:
        panel = market_panel(ctx, through=through, market=config.market)
        assert panel is not None  # the store has batches through the date
        inputs = prepare_target_inputs(panel, lag=config.lag_days)
    ctx.cache[slot] = (keys, last, inputs)
    return inputs


def rounds_scored_after_resolution(uow: UnitOfWork, loaded: LoadedTournament) -> list[Round]:
    """Return the resolved rounds whose longer scores (Classic CORR60) have score days left.

    A round resolves at score day ``horizon``; scores with a longer horizon keep being scored
    until ``scoring_days``, without touching the payouts (the round stays resolved).
    """
    scoring_days = loaded.config.scoring_days
    if scoring_days <= loaded.config.horizon:
        return []
    days = (
        select(func.count(RoundScoreDay.id))
        .where(RoundScoreDay.round_id == Round.id)
        .correlate(Round)
        .scalar_subquery()
    )
    query = (
        select(Round)
        .where(
            Round.tournament_id == loaded.id, Round.state == RoundState.RESOLVED.value, days < scoring_days
        )
        .order_by(Round.number.desc())
    )
    return list(uow.session.scalars(query))


def _scorable_rounds(uow: UnitOfWork, tournament: TournamentRef) -> tuple[LoadedTournament, list[str]]:
    loaded = load_tournament(uow, tournament)
    rows = [*uow.rounds.list(loaded.id, states=SCORED_STATES), *rounds_scored_after_resolution(uow, loaded)]
    return loaded, [row.id for row in rows]


def score_day(ctx: Context, tournament: TournamentRef, *, date: date | None = None) -> ScoreDayReport:
    """Score every closed or scoring round on each day the market data (through ``date``) makes computable."""
    loaded, round_ids = run_transaction(
        ctx.engine, lambda uow: _scorable_rounds(uow, tournament), read_only=True
    )
    through = market_through(ctx, loaded.config.market)
    if through is None:
        raise ServiceError("no_market_data", _empty_market_message(loaded.config.market))
    if date is not None:
        through = min(through, date)
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


def plan_score_job(
    ctx: Context,
    uow: UnitOfWork,
    loaded: LoadedTournament,
    row: Round,
    day: int,
    *,
    batch: ScoreBatch | None = None,
) -> RoundScorePlan:
    """Return the plan of a round's score job for day ``day`` (reads only); ScoresPending if data lacks.

    ``batch`` shares the market reads of the score jobs planned in the same transaction.
    """
    through, inputs = (batch or ScoreBatch()).target_inputs(ctx, loaded.config)
    if through is None or inputs is None:
        raise ScoresPending("no_market_data", _empty_market_message(loaded.config.market))
    plan = plan_round_scores(ctx, uow, loaded, row, inputs)
    if day not in plan.scored:
        raise ScoresPending(
            "market_data_pending",
            f"{loaded.name} round {row.number} score day {day} needs market data after"
            f" {through.isoformat()}; run `crowdalpha market ingest FILE --market {loaded.config.market}`",
        )
    return plan
