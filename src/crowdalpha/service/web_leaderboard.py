"""The web leaderboards: every model (or account) of a tournament with each score's reputation and interval.

A leaderboard row holds, per score of the tournament's config, the reputation (the mean final
score over the rounds resolved in the last year, :func:`crowdalpha.tournament.reputation.reputation`),
its 90 % round-bootstrap interval, the number of resolved rounds in it and its rank; the current
stake; and the 13- and 52-week returns (payouts of the rounds resolved in the window over the mean
stake at risk in them).

Speed with 10,000 models: reputations change only when a round resolves, a resolved round is scored
again (Classic CORR60) or a round leaves a window as the days pass, so the table of reputations and
returns is computed then — by :func:`refresh_leaderboards`, which the tick runs right after its jobs
and ``resolve_round`` right after its transaction. Each round's final scores are read once per process
and kept (:func:`_round_finals`), so a refresh after a resolution reads only the new round's scores.
Kept with them are the arrays the reputations take — each score's column and, for the account view,
each account's round score (grouped once per round and score) — so a refresh lays the window's
``rounds × entities`` matrix out of them with numpy and runs only the numeric core
(:func:`crowdalpha.tournament.reputation.matrix_reputation`): no long table is concatenated or pivoted.
The refresh stores a **board** per tournament and entity kind in ``leaderboard_snapshots``: the table
joined with the roster (names, owners, stakes) and the row positions of every sort order, both
directions, as Arrow IPC (the ``table_parquet`` column), with digests of its inputs and of the roster
and the last date it holds for. A page then checks the digests (a few small aggregate queries), reads
the board (kept in memory once read), searches its names, slices the order and converts only the
page's rows. When only the roster moved since the refresh (a stake change, a new model), the stored
reputations are joined with the current roster (and the next tick stores that board); when no
snapshot holds (a database never ticked), the page computes the table itself.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Select, func, select
from threadpoolctl import threadpool_limits

from crowdalpha.ledger.accounts import AccountKind
from crowdalpha.service._tournaments import LoadedTournament, TournamentRef, load_tournament
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.service.performance import ranking_score
from crowdalpha.store import RoundState, UnitOfWork, run_transaction
from crowdalpha.store.schema import (
    Account,
    LeaderboardSnapshot,
    LedgerAccount,
    LedgerTransaction,
    Model,
    Round,
    RoundResolution,
    RoundScoreDay,
    RoundStake,
    Submission,
    SubmissionScore,
)
from crowdalpha.tournament.reputation import (
    ACCOUNT,
    AT_RISK,
    MODEL,
    RESOLVED_ON,
    ROUND,
    ReputationError,
    ReputationSettings,
    account_round_score_table,
    matrix_reputation,
    require_finite,
)

LEADERBOARD_REPUTATION = ReputationSettings()
"""The served reputation: 365-day window, 90 % interval from 1,000 round-bootstrap resamples."""
RETURN_WINDOWS = {"return_13_weeks": 13, "return_52_weeks": 52}
"""The return columns and their window in weeks."""
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
ENTITIES = (MODEL, ACCOUNT)
FIXED_SORTS = ("name", "stake", *RETURN_WINDOWS)
_CACHED_TABLES = 16
_SNAPSHOT_FORMAT = 2
"""Bump when a snapshot's columns change: older snapshots then no longer hold (2: Arrow IPC boards)."""


@dataclass(frozen=True)
class ScoreColumn:
    """A score shown on the leaderboard: its config name and display name."""

    name: str
    display_name: str


@dataclass(frozen=True)
class ScoreReputation:
    """One score's reputation of a row: value, 90 % interval, resolved rounds in the window, rank."""

    value: float | None
    low: float | None
    high: float | None
    rounds: int
    rank: int | None


@dataclass(frozen=True)
class LeaderboardRow:
    """A leaderboard row: model (or account) name, owner, stake (nano), reputations, returns (fractions)."""

    name: str
    owner: str
    stake_nano: int
    reputations: dict[str, ScoreReputation]
    return_13_weeks: float | None
    return_52_weeks: float | None


@dataclass(frozen=True)
class LeaderboardPage:
    """A page of a sorted, searched leaderboard and how it was asked for; ``total`` rows match the search."""

    tournament: str
    entity: str
    scores: tuple[ScoreColumn, ...]
    sort: str
    descending: bool
    search: str
    offset: int
    limit: int
    total: int
    as_of: date
    rows: tuple[LeaderboardRow, ...]

    @property
    def sorts(self) -> tuple[str, ...]:
        """Return every column the leaderboard sorts by."""
        return (*FIXED_SORTS, *(score.name for score in self.scores))


# -- the cached table of reputations and returns -----------------------------------------------------


class _TableCache:
    """A small thread-safe LRU of computed reputation tables, keyed by database, tournament, day, rounds."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.tables: OrderedDict[Hashable, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self.lock:
            table = self.tables.get(key)
            if table is not None:
                self.tables.move_to_end(key)
            return table

    def put(self, key: Hashable, table: Any) -> None:
        with self.lock:
            self.tables[key] = table
            self.tables.move_to_end(key)
            while len(self.tables) > self.size:
                self.tables.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.tables.clear()


_CACHE_KEY = "web leaderboard tables"


def _tables(ctx: Context) -> _TableCache:
    """Return the context's cache of reputation tables (one per process and database)."""
    cached = ctx.cache.get(_CACHE_KEY)
    if cached is None:
        cached = ctx.cache.setdefault(_CACHE_KEY, _TableCache(_CACHED_TABLES))
    return cached


def clear_leaderboard_cache(ctx: Context) -> None:
    """Forget the context's computed reputation tables (the next page computes them again)."""
    _tables(ctx).clear()


@dataclass(frozen=True)
class _ResolvedRound:
    id: str
    number: int
    resolved_on: date
    score_days: int
    last_scored: str

    @property
    def version(self) -> tuple[str, str, int, str]:
        """Return what changes whenever this round's final scores may: its resolve date and score days."""
        return (self.id, self.resolved_on.isoformat(), self.score_days, self.last_scored)


def _resolved_rounds(uow: UnitOfWork, tournament_id: int) -> list[_ResolvedRound]:
    """Return the tournament's resolved rounds: resolve date (recorded, else scheduled), score days stored."""
    days = (
        select(
            RoundScoreDay.round_id,
            func.count(RoundScoreDay.id).label("days"),
            func.max(RoundScoreDay.scored_at).label("last"),
        )
        .group_by(RoundScoreDay.round_id)
        .subquery()
    )
    query = (
        select(Round.id, Round.number, Round.resolve_time, Round.updated_at, RoundResolution.resolved_at,
               days.c.days, days.c.last)
        .outerjoin(RoundResolution, RoundResolution.round_id == Round.id)
        .outerjoin(days, days.c.round_id == Round.id)
        .where(Round.tournament_id == tournament_id, Round.state == RoundState.RESOLVED.value)
        .order_by(Round.number)
    )  # fmt: skip
    return [
        _ResolvedRound(
            round_id, number, (resolved_at or resolve_time or updated_at).date(), count or 0, str(last)
        )
        for round_id, number, resolve_time, updated_at, resolved_at, count, last in uow.session.execute(query)
    ]


def _inputs_version(rounds: list[_ResolvedRound], sorts: Sequence[str]) -> str:
    """Return a digest of what a leaderboard table is computed from (and of how it is computed)."""
    text = repr(
        (
            _SNAPSHOT_FORMAT,
            LEADERBOARD_REPUTATION,
            RETURN_WINDOWS,
            tuple(sorts),
            [item.version for item in rounds],
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _valid_through(rounds: list[_ResolvedRound], as_of: date) -> date:
    """Return the last date a table computed ``as_of`` holds: before a round enters or leaves a window."""
    windows = [LEADERBOARD_REPUTATION.window_days or 0, *(7 * weeks for weeks in RETURN_WINDOWS.values())]
    ends = [item.resolved_on - timedelta(days=1) for item in rounds if item.resolved_on > as_of]
    ends += [
        item.resolved_on + timedelta(days=days - 1)
        for item in rounds
        for days in windows
        if as_of - timedelta(days=days) < item.resolved_on <= as_of
    ]
    return min(ends, default=date.max)


def _rows(uow: UnitOfWork, query: Select) -> list[tuple]:
    """Return a query's rows as plain tuples (pandas builds a frame from them several times faster).

    Run on the session's connection: a query of plain columns needs none of the ORM's row handling.
    """
    return [tuple(row) for row in uow.session.connection().execute(query)]


def _read_round_finals(
    uow: UnitOfWork,
    loaded: LoadedTournament,
    item: _ResolvedRound,
    known: dict[str, tuple[int, pd.Series]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, tuple[int, pd.Series]]]:
    """Return a resolved round's final scores per model (with at-risk stake), its staked rows' payouts,
    and each score's last day and values (pass them back as ``known``: a score whose last day is the
    same is not read again — past its resolution a round's longer scores (CORR60) gain days, the
    others do not).

    A round's final score of a name is its value on the last day that name was scored in the round.
    """
    scores = [score.name for score in loaded.config.scores]
    last_days = _rows(
        uow,
        select(SubmissionScore.score, func.max(SubmissionScore.day))
        .where(SubmissionScore.round_id == item.id)
        .group_by(SubmissionScore.score),
    )
    model_of = dict(
        _rows(uow, select(Submission.id, Submission.model_id).where(Submission.round_id == item.id))
    )
    series: dict[str, pd.Series] = {}
    read: dict[str, tuple[int, pd.Series]] = {}
    for score, day in last_days:
        if score not in scores:
            continue
        if known and score in known and known[score][0] == day:
            series[score] = known[score][1]
            read[score] = known[score]
            continue
        # one (score, day) at a time: each is a range of the (round_id, score, day) index; no join,
        # the round's submissions were read once above
        values = _rows(
            uow,
            select(SubmissionScore.submission_id, SubmissionScore.value).where(
                SubmissionScore.round_id == item.id,
                SubmissionScore.score == score,
                SubmissionScore.day == day,
            ),
        )
        submission_ids, numbers = zip(*values, strict=True) if values else ((), ())
        model_ids = pd.Index(submission_ids, dtype=object).map(model_of)
        series[score] = pd.Series(numbers, index=model_ids, dtype=np.float64)
        read[score] = (day, series[score])
    stakes = pd.DataFrame(
        _rows(
            uow,
            select(RoundStake.model_id, RoundStake.at_risk_nano, RoundStake.payout_nano).where(
                RoundStake.round_id == item.id
            ),
        ),
        columns=[MODEL, AT_RISK, "payout_nano"],
    )
    stakes[ROUND] = item.number
    stakes[RESOLVED_ON] = item.resolved_on
    stakes["payout_nano"] = stakes["payout_nano"].fillna(0)
    finals = pd.DataFrame(series).reindex(columns=scores).astype(np.float64)
    finals.index.name = MODEL
    finals = finals.reset_index()
    at_risk = dict(zip(stakes[MODEL], stakes[AT_RISK], strict=True))
    finals[ROUND] = item.number
    finals[RESOLVED_ON] = item.resolved_on
    finals[AT_RISK] = finals[MODEL].map(at_risk).fillna(0).astype(np.int64)
    return finals, stakes, read


_ROUND_FINALS_KEY = "web leaderboard round finals"


class _EntityCodes:
    """Integer codes of a tournament's models (or accounts), in the order first seen: a window's score
    matrix is laid out from its rounds' codes with numpy, not pivoted from a long frame."""

    def __init__(self) -> None:
        self.code_of: dict[Hashable, int] = {}
        self.names: list[Hashable] = []
        self.lock = threading.Lock()

    def encode(self, ids: Sequence[Hashable]) -> np.ndarray:
        """Return the codes of these ids (new ids get the next codes)."""
        codes = np.empty(len(ids), dtype=np.int64)
        with self.lock:
            for position, name in enumerate(ids):
                code = self.code_of.get(name)
                if code is None:
                    code = self.code_of[name] = len(self.names)
                    self.names.append(name)
                codes[position] = code
        return codes


def _entity_codes(ctx: Context, tournament_id: int, entity: str) -> _EntityCodes:
    key = ("web leaderboard entity codes", tournament_id, entity)
    found = ctx.cache.get(key)
    return found if found is not None else ctx.cache.setdefault(key, _EntityCodes())


@dataclass
class _RoundFinals:
    """A resolved round's final scores as read (kept per process) and the arrays the matrices take.

    ``models`` and ``model_codes`` are the finals' rows; ``scores`` each score's column of them;
    ``account_scores`` each score's per-account round score (:func:`account_round_scores`) as
    ``(account codes, scores)``, filled when first needed.
    """

    version: tuple[str, str, int, str]
    number: int
    resolved_on: date
    finals: pd.DataFrame
    stakes: pd.DataFrame
    read: dict[str, tuple[int, pd.Series]]
    models: np.ndarray
    model_codes: np.ndarray
    scores: dict[str, np.ndarray]
    account_scores: dict[str, tuple[np.ndarray, np.ndarray]]

    @classmethod
    def of(
        cls,
        codes: _EntityCodes,
        item: _ResolvedRound,
        finals: pd.DataFrame,
        stakes: pd.DataFrame,
        read: dict[str, tuple[int, pd.Series]],
        previous: _RoundFinals | None,
    ) -> _RoundFinals:
        """Return the kept finals of a round read (again); a previous read's account scores of a score
        whose day, rows and stakes are the same carry over."""
        models = finals[MODEL].to_numpy()
        same_rows = (
            previous is not None
            and np.array_equal(previous.models, models)
            and np.array_equal(previous.finals[AT_RISK].to_numpy(), finals[AT_RISK].to_numpy())
        )
        account_scores = {}
        if same_rows:
            assert previous is not None
            account_scores = {
                score: kept
                for score, kept in previous.account_scores.items()
                if score in read and previous.read.get(score, (None,))[0] == read[score][0]
            }
        return cls(
            version=item.version,
            number=item.number,
            resolved_on=item.resolved_on,
            finals=finals,
            stakes=stakes,
            read=read,
            models=models,
            model_codes=previous.model_codes if same_rows and previous is not None else codes.encode(models),
            scores={name: finals[name].to_numpy() for name in finals.columns if name not in _FINALS_KEYS},
            account_scores=account_scores,
        )


_FINALS_KEYS = (MODEL, ROUND, RESOLVED_ON, AT_RISK)
"""The columns of a round's finals that are not scores."""


def _kept_finals(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, rounds: Sequence[_ResolvedRound]
) -> list[_RoundFinals]:
    """Return :func:`_round_finals` of every round; the last days of the longer scores of the rounds
    that gained score days since they were kept are read by one query for all of them."""
    cache = ctx.cache.setdefault(_ROUND_FINALS_KEY, {})
    rescored = [
        item.id
        for item in rounds
        if (found := cache.get(item.id)) is not None
        and found.version != item.version
        and found.version[1] == item.version[1]
    ]
    config = loaded.config
    longer = [score.name for score in config.scores if score.horizon > config.horizon]
    last_days: dict[tuple[str, str], int] = {}
    if rescored and longer:
        query = (
            select(SubmissionScore.round_id, SubmissionScore.score, func.max(SubmissionScore.day))
            .where(SubmissionScore.round_id.in_(rescored), SubmissionScore.score.in_(longer))
            .group_by(SubmissionScore.round_id, SubmissionScore.score)
        )
        last_days = {(round_id, score): day for round_id, score, day in _rows(uow, query)}
    pending = set(rescored)
    return [
        _round_finals(ctx, uow, loaded, item, last_days if item.id in pending else None) for item in rounds
    ]


def _round_finals(
    ctx: Context,
    uow: UnitOfWork,
    loaded: LoadedTournament,
    item: _ResolvedRound,
    last_days: dict[tuple[str, str], int] | None = None,
) -> _RoundFinals:
    """Return :func:`_read_round_finals`, read once per process and round version (a new version
    reads only the scores that gained days; ``last_days`` of its longer scores when read already)."""
    cache = ctx.cache.setdefault(_ROUND_FINALS_KEY, {})
    codes = _entity_codes(ctx, loaded.id, MODEL)
    found: _RoundFinals | None = cache.get(item.id)
    if found is not None and found.version != item.version and found.version[1] == item.version[1]:
        # resolved on the same date, it gained score days since: only its longer scores can have
        updated = _longer_scores_updated(uow, loaded, item, found.finals, found.read, last_days)
        if updated is not None:
            found = cache[item.id] = _RoundFinals.of(codes, item, updated[0], found.stakes, updated[1], found)
    if found is None or found.version != item.version:
        known = None if found is None else found.read
        finals, stakes, read = _read_round_finals(uow, loaded, item, known)
        found = cache[item.id] = _RoundFinals.of(codes, item, finals, stakes, read, found)
    return found


def _longer_scores_updated(
    uow: UnitOfWork,
    loaded: LoadedTournament,
    item: _ResolvedRound,
    finals: pd.DataFrame,
    known: dict[str, tuple[int, pd.Series]],
    last_days: dict[tuple[str, str], int] | None = None,
) -> tuple[pd.DataFrame, dict[str, tuple[int, pd.Series]]] | None:
    """Return a resolved round's finals with its longer scores (horizon past the round's resolution,
    CORR60) read again where they gained days, and the scores' last days; None when the stored
    finals cannot simply be updated (a score not seen before, a model not in them).

    A round resolves once its score day ``horizon`` is stored, so only scores with a longer horizon
    are scored after it; each is read by two index ranges (its last day, that day's values), or one
    when ``last_days`` holds the round's last days of its longer scores (a score absent: none stored).
    """
    config = loaded.config
    finals = finals.copy()
    read = dict(known)
    for score in config.scores:
        if score.horizon <= config.horizon:
            continue
        if last_days is not None:
            day = last_days.get((item.id, score.name))
        else:
            day = uow.session.scalar(
                select(func.max(SubmissionScore.day)).where(
                    SubmissionScore.round_id == item.id, SubmissionScore.score == score.name
                )
            )
        if day is None or (score.name in known and known[score.name][0] == day):
            continue
        if score.name not in known:
            return None
        values = _rows(
            uow,
            select(Submission.model_id, SubmissionScore.value)
            .join(Submission, Submission.id == SubmissionScore.submission_id)
            .where(
                SubmissionScore.round_id == item.id,
                SubmissionScore.score == score.name,
                SubmissionScore.day == day,
            ),
        )
        model_ids, numbers = zip(*values, strict=True) if values else ((), ())
        series = pd.Series(numbers, index=pd.Index(model_ids, dtype=object), dtype=np.float64)
        if not series.index.isin(finals[MODEL]).all():
            return None
        finals[score.name] = finals[MODEL].map(series).astype(np.float64)
        read[score.name] = (day, series)
    return finals, read


def _payouts(kept: Sequence[_RoundFinals], accounts: dict[str, str]) -> pd.DataFrame:
    """Return the resolved rounds' staked rows with payouts: ``model, account, round, resolved_on,
    at_risk_nano, payout_nano``."""
    payout_columns = [MODEL, ACCOUNT, ROUND, RESOLVED_ON, AT_RISK, "payout_nano"]
    staked = [entry.stakes for entry in kept if not entry.stakes.empty]
    if not staked:
        return pd.DataFrame(columns=payout_columns)
    payouts = pd.concat(staked, ignore_index=True)
    payouts[ACCOUNT] = payouts[MODEL].map(accounts)
    return payouts[payout_columns]


def _fill_account_scores(
    window: Sequence[_RoundFinals], scores: Sequence[str], accounts: dict[str, str], codes: _EntityCodes
) -> None:
    """Compute the per-account round scores the window's rounds have none kept of, one grouping per
    set of missing scores (a newly resolved round misses all, a round scored again its longer ones).

    :func:`account_round_score_table` groups by account and round, so the rounds computed together
    get the values each would get alone (or among every resolved round).
    """
    pending: dict[tuple[str, ...], list[_RoundFinals]] = {}
    for entry in window:
        missing = tuple(score for score in scores if score not in entry.account_scores)
        if missing:
            pending.setdefault(missing, []).append(entry)
    for missing, entries in pending.items():
        columns = [MODEL, ROUND, RESOLVED_ON, AT_RISK, *missing]
        rows = pd.concat([entry.finals[columns] for entry in entries], ignore_index=True)
        rows[ACCOUNT] = rows[MODEL].map(accounts)
        table = account_round_score_table(rows, missing)
        order = np.argsort(table[ROUND].to_numpy(), kind="stable")  # each round's accounts keep their order
        rounds, ids = table[ROUND].to_numpy()[order], table[ACCOUNT].to_numpy()[order]
        numbers = [entry.number for entry in entries]
        starts, stops = np.searchsorted(rounds, numbers, "left"), np.searchsorted(rounds, numbers, "right")
        values = {score: table[score].to_numpy()[order] for score in missing}
        for entry, start, stop in zip(entries, starts, stops, strict=True):
            found = codes.encode(ids[start:stop])
            # one array for every score of the round when the accounts are the same: one matrix layout
            same = (kept for kept, _ in entry.account_scores.values() if np.array_equal(kept, found))
            found = next(same, found)
            for score in missing:
                entry.account_scores[score] = (found, values[score][start:stop])


@dataclass(frozen=True)
class _MatrixLayout:
    """Where each round's entities go in a window's ``rounds × entities`` matrix (rounds ascending,
    entities sorted, as :func:`crowdalpha.tournament.reputation.score_matrix` pivots them)."""

    entities: pd.Index
    rows: np.ndarray
    columns: np.ndarray

    @classmethod
    def of(cls, codes: _EntityCodes, rounds: Sequence[np.ndarray]) -> _MatrixLayout:
        """Return the layout of these rounds' entity codes (each round one row, in this order)."""
        every = np.concatenate(rounds) if rounds else np.empty(0, dtype=np.int64)
        names = codes.names
        order = np.array(sorted(np.unique(every).tolist(), key=names.__getitem__), dtype=np.int64)
        column_of = np.empty(len(names), dtype=np.int64)
        column_of[order] = np.arange(len(order))
        rows = np.repeat(np.arange(len(rounds)), [len(item) for item in rounds])
        columns = column_of[every]
        if np.unique(rows * len(order) + columns).size != len(every):
            raise ReputationError("one score per entity and round is allowed; a round repeats one")
        return cls(pd.Index([names[code] for code in order]), rows, columns)

    def matrix(self, values: Sequence[np.ndarray], score: str) -> np.ndarray:
        """Return the matrix of the rounds' values (NaN where an entity is not in a round)."""
        matrix = np.full((int(self.rows[-1]) + 1 if len(self.rows) else 0, len(self.entities)), np.nan)
        if len(self.rows):
            matrix[self.rows, self.columns] = np.concatenate(values)
        require_finite(matrix, score)
        return matrix


def _in_window(kept: Sequence[_RoundFinals], as_of: date) -> list[_RoundFinals]:
    """Return the rounds the served reputation counts on ``as_of``, as
    :func:`crowdalpha.tournament.reputation.resolved_in_window` keeps them (a window of days)."""
    days = LEADERBOARD_REPUTATION.window_days
    assert days is not None, "the served reputation's window is in days"
    return [entry for entry in kept if as_of - timedelta(days=days) < entry.resolved_on <= as_of]


def stake_returns(payouts: pd.DataFrame, entity: str, *, as_of: date, weeks: int) -> pd.Series:
    """Return each entity's return over the last ``weeks``: payouts ÷ mean at-risk stake (a fraction).

    The window holds the rounds resolved in the ``7 × weeks`` days up to ``as_of``; an entity's
    at-risk stake of a round is the sum over its models; rounds it had nothing at risk in are
    left out of the mean. Entities without stake in the window have no return (absent).
    """
    if payouts.empty:
        return pd.Series(dtype=np.float64)
    days = pd.to_datetime(payouts[RESOLVED_ON]).dt.date
    inside = (days <= as_of) & (days > as_of - timedelta(weeks=weeks))
    per_round = payouts[inside.to_numpy()].groupby([entity, ROUND])[[AT_RISK, "payout_nano"]].sum()
    staked = per_round[per_round[AT_RISK] > 0]
    grouped = staked.groupby(level=entity)
    return (grouped["payout_nano"].sum() / grouped[AT_RISK].mean()).astype(np.float64)


def _score_reputations(
    ctx: Context,
    loaded: LoadedTournament,
    window: Sequence[_RoundFinals],
    accounts: dict[str, str],
    entity: str,
) -> list[pd.DataFrame]:
    """Return each score's reputation table of the entity kind (as :func:`reputation` of the long table
    of final scores computes it), from the window's kept round arrays."""
    codes = _entity_codes(ctx, loaded.id, entity)
    if entity == ACCOUNT:
        _fill_account_scores(window, [item.name for item in loaded.config.scores], accounts, codes)
    layouts: dict[tuple[int, ...], _MatrixLayout] = {}
    tables = []
    for item in loaded.config.scores:
        if entity == ACCOUNT:
            arrays = [entry.account_scores[item.name] for entry in window]
        else:
            arrays = [(entry.model_codes, entry.scores[item.name]) for entry in window]
        arrays = [(ids, values) for ids, values in arrays if len(ids)]
        key = tuple(id(ids) for ids, _ in arrays)
        layout = layouts.get(key)
        if layout is None:
            layout = layouts[key] = _MatrixLayout.of(codes, [ids for ids, _ in arrays])
        matrix = layout.matrix([values for _, values in arrays], item.name)
        tables.append(
            matrix_reputation(matrix, layout.entities, entity=entity, settings=LEADERBOARD_REPUTATION)
        )
    return tables


def _reputation_table(
    ctx: Context,
    loaded: LoadedTournament,
    kept: Sequence[_RoundFinals],
    payouts: pd.DataFrame,
    accounts: dict[str, str],
    entity: str,
    as_of: date,
) -> pd.DataFrame:
    """Return per entity each score's ``<score>_rep/_low/_high/_rounds/_rank`` and the return columns."""
    parts = []
    if any(len(entry.models) for entry in kept):
        window = _in_window(kept, as_of)
        for item, table in zip(
            loaded.config.scores, _score_reputations(ctx, loaded, window, accounts, entity), strict=True
        ):
            parts.append(
                table.rename(columns={"reputation": "rep", "ci_low": "low", "ci_high": "high"})[
                    ["rep", "low", "high", "rounds", "rank"]
                ].add_prefix(f"{item.name}_")
            )
    for column, weeks in RETURN_WINDOWS.items():
        parts.append(stake_returns(payouts, entity, as_of=as_of, weeks=weeks).rename(column).to_frame())
    return pd.concat(parts, axis=1) if parts else pd.DataFrame()


def _computed_tables(
    ctx: Context,
    uow: UnitOfWork,
    loaded: LoadedTournament,
    rounds: list[_ResolvedRound],
    entities: Sequence[str],
    as_of: date,
) -> dict[str, pd.DataFrame]:
    """Return the reputation table of each entity kind, from the kept finals of the resolved rounds.

    On one BLAS thread: the bootstrap's products are short (the inner dimension is the rounds) and
    the refresh runs beside the server's requests; measured at 10,000 models on this 2-core machine
    under load, two threads took twice the CPU and 2.5 times as long.
    """
    kept = _kept_finals(ctx, uow, loaded, rounds)
    accounts = dict(_rows(uow, select(Model.id, Model.account_id).where(Model.tournament_id == loaded.id)))
    payouts = _payouts(kept, accounts)
    with threadpool_limits(limits=1, user_api="blas"):
        return {
            entity: _reputation_table(ctx, loaded, kept, payouts, accounts, entity, as_of)
            for entity in entities
        }


# -- boards: the roster joined with the reputation table, every sort order computed -------------------

_ORDER_COLUMN = "order:"
"""Prefix of a stored board's order columns: ``order:<sort>:desc`` and ``order:<sort>:asc``."""
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


def _sorts(loaded: LoadedTournament) -> tuple[str, ...]:
    return (*FIXED_SORTS, *(item.name for item in loaded.config.scores))


class _Board:
    """A leaderboard's rows — the roster (names, owners, stakes) joined with the reputation table — as an
    Arrow table, with the row positions of every sort order: a page is a search, a slice and its rows.
    """

    def __init__(self, table: pa.Table, orders: dict[tuple[str, bool], np.ndarray]) -> None:
        self.table = table
        self.orders = orders
        self._lower: tuple[pa.Array, pa.Array] | None = None

    @classmethod
    def build(cls, roster: pd.DataFrame, reputations: pd.DataFrame, sorts: Sequence[str]) -> _Board:
        """Return the board of a roster and a reputation table, each sort order computed."""
        frame = roster.join(reputations, how="left") if not reputations.empty else roster
        frame = frame.rename_axis("key")
        orders = {(sort, down): _order(frame, sort, down) for sort in sorts for down in (True, False)}
        table = pa.Table.from_pandas(frame.reset_index(), preserve_index=False)
        for position, column in enumerate(table.schema):
            if pa.types.is_null(column.type) and column.name in ("key", "name", "owner"):  # no rows
                table = table.set_column(position, column.name, table.column(position).cast(pa.string()))
        return cls(table, orders)

    def to_bytes(self) -> bytes:
        """Return the board as Arrow IPC (LZ4): the rows, then one column of positions per sort order."""
        table = self.table
        for (sort, down), order in self.orders.items():
            name = f"{_ORDER_COLUMN}{sort}:{'desc' if down else 'asc'}"
            table = table.append_column(name, pa.array(order, type=pa.int32()))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()

    @classmethod
    def from_bytes(cls, content: bytes) -> _Board:
        """Return the board stored by :meth:`to_bytes`."""
        table = pa.ipc.open_stream(pa.py_buffer(content)).read_all()
        orders, rows = {}, []
        for name in table.column_names:
            if name.startswith(_ORDER_COLUMN):
                sort, _, direction = name[len(_ORDER_COLUMN) :].rpartition(":")
                orders[(sort, direction == "desc")] = table.column(name).to_numpy()
            else:
                rows.append(name)
        return cls(table.select(rows), orders)

    def reputations(self) -> pd.DataFrame:
        """Return the board's reputation and return columns by key (to join with a newer roster)."""
        roster = {"key", "name", "owner", "stake_nano"}
        columns = [name for name in self.table.column_names if name not in roster]
        return self.table.select(["key", *columns]).to_pandas().set_index("key")

    def positions(self, sort: str, descending: bool, search: str) -> np.ndarray:
        """Return the row positions sorted by ``sort``, only those whose name or owner contains ``search``.

        A benign race may compute a missing order (a config's new score) twice.
        """
        key = (sort, descending)
        if key not in self.orders:
            self.orders[key] = _order(self.table.to_pandas(), sort, descending)
        order = self.orders[key]
        if not search:
            return order
        if self._lower is None:
            self._lower = (
                pc.utf8_lower(self.table.column("name")),
                pc.utf8_lower(self.table.column("owner")),
            )
        names, owners = self._lower
        found = pc.or_(pc.match_substring(names, search), pc.match_substring(owners, search)).to_numpy(
            zero_copy_only=False
        )
        return order[found[order]]

    def has_values(self, column: str) -> bool:
        """Return whether the board has the column and a value (not null, not NaN) in it."""
        if column not in self.table.column_names:
            return False
        values = self.table.column(column).drop_null()
        if pa.types.is_floating(values.type):
            values = values.filter(pc.invert(pc.is_nan(values)))
        return len(values) > 0

    def records(self, positions: np.ndarray) -> list[dict[str, Any]]:
        """Return the rows at these positions as dicts (only they are converted)."""
        return self.table.take(pa.array(positions, type=pa.int64())).to_pylist()


def _sort_values(frame: pd.DataFrame, sort: str) -> pd.Series:
    if sort == "name":
        return frame["name"].str.lower()
    if sort == "stake":
        return frame["stake_nano"].astype(np.float64)
    column = sort if sort in RETURN_WINDOWS else f"{sort}_rep"
    return frame[column] if column in frame.columns else pd.Series(np.nan, index=frame.index)


def _order(frame: pd.DataFrame, sort: str, descending: bool) -> np.ndarray:
    """Return the row positions sorted by ``sort`` (missing values last in either direction, then by name)."""
    values = _sort_values(frame, sort)
    if sort == "name":
        keys = frame.index.to_numpy() if "key" not in frame.columns else frame["key"].to_numpy()
        order = np.lexsort((keys, values.to_numpy()))
        return order[::-1] if descending else order
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    key = np.where(np.isnan(numbers), np.inf, -numbers if descending else numbers)
    return np.lexsort((frame["name"].str.lower().to_numpy(), key))


def _roster(
    uow: UnitOfWork, loaded: LoadedTournament, entity: str, models: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return the tournament's models (or accounts with models): key, name, owner, stake in nano.

    ``models`` is :func:`_roster_models` when read already (a refresh builds both entity kinds' boards).
    """
    models = _roster_models(uow, loaded) if models is None else models
    if entity == MODEL:
        return models.set_index("key")[["name", "owner", "stake_nano"]]
    accounts = models.groupby(["account_id", "owner"], as_index=False)["stake_nano"].sum()
    accounts["name"] = accounts["owner"]
    return accounts.rename(columns={"account_id": "key"}).set_index("key")[["name", "owner", "stake_nano"]]


def _roster_models(uow: UnitOfWork, loaded: LoadedTournament) -> pd.DataFrame:
    """Return the tournament's models: key, name, account id, owner, stake in nano."""
    query = (
        select(Model.id, Model.name, Model.account_id, Account.username, LedgerAccount.balance)
        .join(Account, Account.id == Model.account_id)
        .outerjoin(
            LedgerAccount,
            (LedgerAccount.owner_id == Model.id) & (LedgerAccount.kind == AccountKind.STAKE.value),
        )
        .where(Model.tournament_id == loaded.id)
    )
    models = pd.DataFrame(_rows(uow, query), columns=["key", "name", "account_id", "owner", "stake_nano"])
    models["stake_nano"] = models["stake_nano"].fillna(0).astype(np.int64)
    return models


def _roster_version(uow: UnitOfWork, tournament_id: int) -> str:
    """Return a digest of what changes whenever the roster does: the models (count, newest), the ledger.

    Every stake change is a ledger transaction, so a new one means the stakes may have moved.
    """
    models = uow.session.execute(
        select(func.count(Model.id), func.max(Model.created_at)).where(Model.tournament_id == tournament_id)
    ).one()
    last = uow.session.scalar(select(func.max(LedgerTransaction.id)))
    return hashlib.sha256(repr((*models, last)).encode()).hexdigest()


# -- snapshots: the boards stored when their inputs change ---------------------------------------------


@dataclass(frozen=True)
class _BoardVersion:
    """What a board is made of: the reputations' inputs and the roster, as two digests."""

    inputs: str
    roster: str

    def __str__(self) -> str:
        return self.inputs[:32] + self.roster[:32]  # the 64 characters of the snapshot's version


@dataclass(frozen=True)
class _SnapshotHeader:
    version: str
    as_of: date
    valid_through: date

    def holds_reputations(self, version: _BoardVersion, as_of: date) -> bool:
        """Return whether the snapshot's reputations are those of these inputs on that date."""
        return self.version[:32] == str(version)[:32] and self.as_of <= as_of <= self.valid_through

    def holds(self, version: _BoardVersion, as_of: date) -> bool:
        """Return whether the snapshot is the board of these inputs and this roster on that date."""
        return self.version == str(version) and self.holds_reputations(version, as_of)


def _current_version(uow: UnitOfWork, loaded: LoadedTournament) -> tuple[list[_ResolvedRound], _BoardVersion]:
    rounds = _resolved_rounds(uow, loaded.id)
    inputs = _inputs_version(rounds, _sorts(loaded))
    return rounds, _BoardVersion(inputs, _roster_version(uow, loaded.id))


def _snapshot_headers(uow: UnitOfWork, tournament_id: int) -> dict[str, _SnapshotHeader]:
    query = select(
        LeaderboardSnapshot.entity,
        LeaderboardSnapshot.version,
        LeaderboardSnapshot.as_of,
        LeaderboardSnapshot.valid_through,
    ).where(LeaderboardSnapshot.tournament_id == tournament_id)
    return {entity: _SnapshotHeader(*rest) for entity, *rest in uow.session.execute(query)}


def _stored_board(uow: UnitOfWork, tournament_id: int, entity: str) -> _Board:
    content = uow.session.scalar(
        select(LeaderboardSnapshot.table_parquet).where(
            LeaderboardSnapshot.tournament_id == tournament_id, LeaderboardSnapshot.entity == entity
        )
    )
    return _Board.from_bytes(content)


def refresh_leaderboards_in(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, *, now: datetime
) -> list[str]:
    """Store the tournament's leaderboard boards that do not hold today; return the entity kinds stored.

    Reputations are computed again only when their inputs changed (or a round left a window); when
    only the roster did (a stake change, a new model), the stored reputations are joined with it.
    Idempotent: a snapshot of the same inputs and roster that holds today is left as it is.
    """
    as_of = now.date()
    rounds, version = _current_version(uow, loaded)
    headers = _snapshot_headers(uow, loaded.id)
    stale = [
        entity for entity in ENTITIES if entity not in headers or not headers[entity].holds(version, as_of)
    ]
    kept = [
        entity for entity in stale if entity in headers and headers[entity].holds_reputations(version, as_of)
    ]
    computed = [entity for entity in stale if entity not in kept]
    tables = _computed_tables(ctx, uow, loaded, rounds, computed, as_of) if computed else {}
    models = _roster_models(uow, loaded) if stale else None
    for entity in stale:
        if entity in kept:
            header = headers[entity]
            reputations, table_as_of, valid_through = (
                _stored_board(uow, loaded.id, entity).reputations(),
                header.as_of,
                header.valid_through,
            )
        else:
            reputations, table_as_of, valid_through = tables[entity], as_of, _valid_through(rounds, as_of)
        board = _Board.build(_roster(uow, loaded, entity, models), reputations, _sorts(loaded))
        uow.session.merge(
            LeaderboardSnapshot(
                tournament_id=loaded.id,
                entity=entity,
                version=str(version),
                as_of=table_as_of,
                valid_through=valid_through,
                computed_at=now,
                table_parquet=board.to_bytes(),
            )
        )
        _tables(ctx).put(("board", loaded.id, entity, str(version), table_as_of), board)
    uow.session.flush()
    return stale


def refresh_leaderboards(ctx: Context) -> list[str]:
    """Refresh every tournament's leaderboard snapshots that do not hold today; return ``name/entity`` stored.

    A read-only look first, so a tick with nothing new costs a few small queries per tournament.
    """
    now = ctx.now()

    def stale(uow: UnitOfWork) -> list[int]:
        found = []
        for item in uow.tournaments.list():
            loaded = load_tournament(uow, item.id)
            _, version = _current_version(uow, loaded)
            headers = _snapshot_headers(uow, loaded.id)
            if any(e not in headers or not headers[e].holds(version, now.date()) for e in ENTITIES):
                found.append(item.id)
        return found

    refreshed = []
    for tournament_id in run_transaction(ctx.engine, stale, read_only=True):

        def work(uow: UnitOfWork, tournament_id: int = tournament_id) -> list[str]:
            loaded = load_tournament(uow, tournament_id)
            return [
                f"{loaded.name}/{entity}" for entity in refresh_leaderboards_in(ctx, uow, loaded, now=now)
            ]

        refreshed.extend(run_transaction(ctx.engine, work))
    return refreshed


def _board(ctx: Context, tournament: TournamentRef, entity: str) -> tuple[LoadedTournament, _Board]:
    """Return the tournament and its board of models (or accounts): from memory, the snapshot, or computed.

    The snapshot when it holds today; its reputations joined with the current roster when only that
    moved since the last refresh; computed when no snapshot holds (a database never ticked).
    """
    as_of = ctx.now().date()
    tables = _tables(ctx)

    def work(uow: UnitOfWork) -> tuple[LoadedTournament, _Board]:
        loaded = load_tournament(uow, tournament)
        rounds, version = _current_version(uow, loaded)
        header = _snapshot_headers(uow, loaded.id).get(entity)
        day = header.as_of if header is not None and header.holds_reputations(version, as_of) else as_of
        key = ("board", loaded.id, entity, str(version), day)
        board = tables.get(key)
        if board is not None:
            return loaded, board
        if header is not None and header.holds(version, as_of):
            board = _stored_board(uow, loaded.id, entity)
        else:
            if header is not None and header.holds_reputations(version, as_of):
                reputations = _stored_board(uow, loaded.id, entity).reputations()
            else:
                reputations = _computed_tables(ctx, uow, loaded, rounds, [entity], as_of)[entity]
            board = _Board.build(_roster(uow, loaded, entity), reputations, _sorts(loaded))
        tables.put(key, board)
        return loaded, board

    return run_transaction(ctx.engine, work, read_only=True)


# -- a page ------------------------------------------------------------------------------------------


def _optional(value: object) -> float | None:
    return None if value is None or value != value else float(value)  # type: ignore[arg-type]  # NaN


def _row(record: dict[str, Any], scores: tuple[ScoreColumn, ...]) -> LeaderboardRow:
    reputations = {}
    for score in scores:
        rank = _optional(record.get(f"{score.name}_rank"))
        rounds = _optional(record.get(f"{score.name}_rounds"))
        reputations[score.name] = ScoreReputation(
            value=_optional(record.get(f"{score.name}_rep")),
            low=_optional(record.get(f"{score.name}_low")),
            high=_optional(record.get(f"{score.name}_high")),
            rounds=0 if rounds is None else int(rounds),
            rank=None if rank is None else int(rank),
        )
    return LeaderboardRow(
        name=str(record["name"]),
        owner=str(record["owner"]),
        stake_nano=int(record["stake_nano"]),
        reputations=reputations,
        return_13_weeks=_optional(record.get("return_13_weeks")),
        return_52_weeks=_optional(record.get("return_52_weeks")),
    )


def _check_request(sort: str, sorts: tuple[str, ...], offset: int, limit: int) -> None:
    if sort not in sorts:
        raise ServiceError("invalid_sort", f"sort by one of {', '.join(sorts)}; got {sort!r}")
    if offset < 0 or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ServiceError(
            "invalid_page",
            f"offset must be ≥ 0 and limit 1-{MAX_PAGE_SIZE}; got offset {offset}, limit {limit}",
        )


def _score_columns(loaded: LoadedTournament) -> tuple[ScoreColumn, ...]:
    return tuple(ScoreColumn(item.name, item.display_name or item.name) for item in loaded.config.scores)


def leaderboard_page(
    ctx: Context,
    tournament: TournamentRef,
    *,
    entity: str = MODEL,
    sort: str | None = None,
    descending: bool = True,
    search: str = "",
    offset: int = 0,
    limit: int = PAGE_SIZE,
) -> LeaderboardPage:
    """Return a page of the tournament's leaderboard of models (or accounts), searched and sorted.

    ``sort`` is ``name``, ``stake``, ``return_13_weeks``, ``return_52_weeks`` or a score name (by its
    reputation; default the first payout score); ``search`` keeps rows whose name or owner contains it.
    """
    if entity not in ENTITIES:
        raise ServiceError("invalid_entity", f"a leaderboard is of {' or '.join(ENTITIES)}; got {entity!r}")
    loaded, board = _board(ctx, tournament, entity)
    scores = _score_columns(loaded)
    sort = sort or loaded.config.payout.terms[0].score
    _check_request(sort, _sorts(loaded), offset, limit)
    positions = board.positions(sort, descending, search.strip().lower())
    return LeaderboardPage(
        tournament=loaded.name,
        entity=entity,
        scores=scores,
        sort=sort,
        descending=descending,
        search=search.strip(),
        offset=offset,
        limit=limit,
        total=len(positions),
        as_of=ctx.now().date(),
        rows=tuple(_row(record, scores) for record in board.records(positions[offset : offset + limit])),
    )


def ranked_leaderboard(
    ctx: Context, tournament: TournamentRef, *, entity: str = MODEL, limit: int | None = None, offset: int = 0
) -> tuple[str, list[LeaderboardRow]]:
    """Return the ranking score and the rows by its rank (unranked last, then by name): numerapi's order.

    The ranking score is :func:`crowdalpha.service.performance.ranking_score`; the rows come from
    the same boards as the pages (the snapshot when it holds).
    """
    if offset < 0 or (limit is not None and limit < 0):
        raise ServiceError(
            "invalid_page", f"limit and offset must be ≥ 0; got limit {limit}, offset {offset}"
        )
    loaded, board = _board(ctx, tournament, entity)
    ranked_by = ranking_score(loaded.config, lambda score: board.has_values(f"{score}_rank"))
    positions = board.positions(ranked_by, True, "")
    page = positions[offset : None if limit is None else offset + limit]
    scores = _score_columns(loaded)
    return ranked_by, [_row(record, scores) for record in board.records(page)]
