"""The web leaderboards: every model (or account) of a tournament with each score's reputation and interval.

A leaderboard row holds, per score of the tournament's config, the reputation (the mean final
score over the rounds resolved in the last year, :func:`crowdalpha.tournament.reputation.reputation`),
its 90 % round-bootstrap interval, the number of resolved rounds in it and its rank; the current
stake; and the 13- and 52-week returns (payouts of the rounds resolved in the window over the mean
stake at risk in them).

Speed with 10,000 models: reputations change only when a round resolves, a resolved round is scored
again (Classic CORR60) or a round leaves a window as the days pass, so the table of reputations and
returns is computed then — by :func:`refresh_leaderboards`, which the tick runs right after its jobs
and ``resolve_round`` right after its transaction — and stored as a **snapshot** (Parquet in
``leaderboard_snapshots``) with a digest of its inputs and the last date it holds for. A page reads the
snapshot (kept in memory once read) when its digest is current, and computes the table itself only
when none is (a database never ticked). Each round's final scores are read once per process and kept
(:func:`_round_finals`), so a refresh after a resolution reads only the new round's scores. The rows
joined with the roster (names, owners, stakes) and each sort order of them are kept too, until a model
is added or the ledger records a transaction (every stake change is one): a request then costs a few
aggregate queries, a search over the sorted names and the page's rows.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Select, func, select

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
    ReputationSettings,
    account_reputation,
    reputation,
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
_SNAPSHOT_FORMAT = 1
"""Bump when a snapshot's columns change: older snapshots then no longer hold."""


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


def _inputs_version(rounds: list[_ResolvedRound]) -> str:
    """Return a digest of what a leaderboard table is computed from (and of how it is computed)."""
    text = repr((_SNAPSHOT_FORMAT, LEADERBOARD_REPUTATION, RETURN_WINDOWS, [item.version for item in rounds]))
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
    """Return a query's rows as plain tuples (pandas builds a frame from them several times faster)."""
    return [tuple(row) for row in uow.session.execute(query)]


def _read_round_finals(
    uow: UnitOfWork, loaded: LoadedTournament, item: _ResolvedRound
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return a resolved round's final scores per model (with at-risk stake) and its staked rows' payouts.

    A round's final score of a name is its value on the last day that name was scored in the round.
    """
    scores = [score.name for score in loaded.config.scores]
    last_days = _rows(
        uow,
        select(SubmissionScore.score, func.max(SubmissionScore.day))
        .where(SubmissionScore.round_id == item.id)
        .group_by(SubmissionScore.score),
    )
    series: dict[str, pd.Series] = {}
    for score, day in last_days:
        if score not in scores:
            continue
        # one (score, day) at a time: each is a range of the (round_id, score, day) index
        values = _rows(
            uow,
            select(Submission.model_id, SubmissionScore.value)
            .join(Submission, Submission.id == SubmissionScore.submission_id)
            .where(
                SubmissionScore.round_id == item.id,
                SubmissionScore.score == score,
                SubmissionScore.day == day,
            ),
        )
        model_ids, numbers = zip(*values, strict=True) if values else ((), ())
        series[score] = pd.Series(numbers, index=model_ids, dtype=np.float64)
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
    finals[AT_RISK] = np.array([at_risk.get(model_id, 0) for model_id in finals[MODEL]], dtype=np.int64)
    return finals, stakes


_ROUND_FINALS_KEY = "web leaderboard round finals"


def _round_finals(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, item: _ResolvedRound
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return :func:`_read_round_finals`, read once per process and round version."""
    cache = ctx.cache.setdefault(_ROUND_FINALS_KEY, {})
    found = cache.get(item.id)
    if found is None or found[0] != item.version:
        found = cache[item.id] = (item.version, *_read_round_finals(uow, loaded, item))
    return found[1], found[2]


def _resolved_frames(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, rounds: list[_ResolvedRound]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the final scores (one row per model and resolved round) and the staked rows with payouts.

    Final scores: ``model, account, round, resolved_on, at_risk_nano`` and each score; staked rows:
    ``model, account, round, resolved_on, at_risk_nano, payout_nano``.
    """
    scores = [item.name for item in loaded.config.scores]
    finals_columns = [MODEL, ACCOUNT, ROUND, RESOLVED_ON, AT_RISK, *scores]
    payout_columns = [MODEL, ACCOUNT, ROUND, RESOLVED_ON, AT_RISK, "payout_nano"]
    parts = [_round_finals(ctx, uow, loaded, item) for item in rounds]
    finals = [part[0] for part in parts if not part[0].empty]
    staked = [part[1] for part in parts if not part[1].empty]
    accounts = dict(_rows(uow, select(Model.id, Model.account_id).where(Model.tournament_id == loaded.id)))
    if finals:
        wide = pd.concat(finals, ignore_index=True)
        wide[ACCOUNT] = wide[MODEL].map(accounts)
        wide[AT_RISK] = wide[AT_RISK].astype(np.int64)
        wide = wide[finals_columns]
    else:
        wide = pd.DataFrame(columns=finals_columns)
    if staked:
        payouts = pd.concat(staked, ignore_index=True)
        payouts[ACCOUNT] = payouts[MODEL].map(accounts)
        payouts = payouts[payout_columns]
    else:
        payouts = pd.DataFrame(columns=payout_columns)
    return wide, payouts


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


def _reputation_table(resolved: pd.DataFrame, payouts: pd.DataFrame, loaded: LoadedTournament, entity: str,
           as_of: date) -> pd.DataFrame:  # fmt: skip
    """Return per entity each score's ``<score>_rep/_low/_high/_rounds/_rank`` and the return columns."""
    parts = []
    for item in loaded.config.scores:
        if resolved.empty:
            continue
        if entity == ACCOUNT:
            table = account_reputation(resolved, item.name, as_of=as_of, settings=LEADERBOARD_REPUTATION)
        else:
            table = reputation(
                resolved, item.name, as_of=as_of, entity=MODEL, settings=LEADERBOARD_REPUTATION
            )
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
    """Return the reputation table of each entity kind, from one read of the resolved rounds."""
    resolved, payouts = _resolved_frames(ctx, uow, loaded, rounds)
    return {entity: _reputation_table(resolved, payouts, loaded, entity, as_of) for entity in entities}


# -- snapshots: the tables computed when their inputs change ----------------------------------------


@dataclass(frozen=True)
class _SnapshotHeader:
    version: str
    as_of: date
    valid_through: date

    def holds(self, version: str, as_of: date) -> bool:
        """Return whether the snapshot is the table of these inputs on that date."""
        return self.version == version and self.as_of <= as_of <= self.valid_through


def _snapshot_headers(uow: UnitOfWork, tournament_id: int) -> dict[str, _SnapshotHeader]:
    query = select(
        LeaderboardSnapshot.entity,
        LeaderboardSnapshot.version,
        LeaderboardSnapshot.as_of,
        LeaderboardSnapshot.valid_through,
    ).where(LeaderboardSnapshot.tournament_id == tournament_id)
    return {entity: _SnapshotHeader(*rest) for entity, *rest in uow.session.execute(query)}


def _to_parquet(table: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(table, preserve_index=True), sink, compression="zstd")
    return sink.getvalue()


def _from_parquet(content: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(content)).to_pandas()


def _stale_entities(
    uow: UnitOfWork, tournament_id: int, as_of: date
) -> tuple[list[_ResolvedRound], str, list[str]]:
    """Return the resolved rounds, their digest and the entity kinds without a snapshot holding ``as_of``."""
    rounds = _resolved_rounds(uow, tournament_id)
    version = _inputs_version(rounds)
    headers = _snapshot_headers(uow, tournament_id)
    stale = [
        entity for entity in ENTITIES if entity not in headers or not headers[entity].holds(version, as_of)
    ]
    return rounds, version, stale


def refresh_leaderboards_in(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, *, now: datetime
) -> list[str]:
    """Store the tournament's leaderboard snapshots that do not hold today; return the entity kinds stored.

    Idempotent: a snapshot of the same inputs that holds today is left as it is.
    """
    as_of = now.date()
    rounds, version, stale = _stale_entities(uow, loaded.id, as_of)
    if not stale:
        return []
    tables = _computed_tables(ctx, uow, loaded, rounds, stale, as_of)
    valid_through = _valid_through(rounds, as_of)
    for entity, table in tables.items():
        uow.session.merge(
            LeaderboardSnapshot(
                tournament_id=loaded.id,
                entity=entity,
                version=version,
                as_of=as_of,
                valid_through=valid_through,
                computed_at=now,
                table_parquet=_to_parquet(table),
            )
        )
        _tables(ctx).put(("snapshot", loaded.id, entity, version, as_of), table)
    uow.session.flush()
    return stale


def refresh_leaderboards(ctx: Context) -> list[str]:
    """Refresh every tournament's leaderboard snapshots that do not hold today; return ``name/entity`` stored.

    A read-only look first, so a tick with nothing new costs two small queries per tournament.
    """
    now = ctx.now()

    def stale(uow: UnitOfWork) -> list[int]:
        tournaments = [item.id for item in uow.tournaments.list()]
        return [tid for tid in tournaments if _stale_entities(uow, tid, now.date())[2]]

    refreshed = []
    for tournament_id in run_transaction(ctx.engine, stale, read_only=True):

        def work(uow: UnitOfWork, tournament_id: int = tournament_id) -> list[str]:
            loaded = load_tournament(uow, tournament_id)
            return [
                f"{loaded.name}/{entity}" for entity in refresh_leaderboards_in(ctx, uow, loaded, now=now)
            ]

        refreshed.extend(run_transaction(ctx.engine, work))
    return refreshed


def _current_table(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, entity: str, as_of: date
) -> tuple[Hashable, pd.DataFrame]:
    """Return the entity kind's reputation table as of today and its cache key: the snapshot if it holds."""
    tables = _tables(ctx)
    rounds = _resolved_rounds(uow, loaded.id)
    version = _inputs_version(rounds)
    header = _snapshot_headers(uow, loaded.id).get(entity)
    if header is not None and header.holds(version, as_of):
        key: Hashable = ("snapshot", loaded.id, entity, version, header.as_of)
        table = tables.get(key)
        if table is None:
            content = uow.session.scalar(
                select(LeaderboardSnapshot.table_parquet).where(
                    LeaderboardSnapshot.tournament_id == loaded.id, LeaderboardSnapshot.entity == entity
                )
            )
            table = _from_parquet(content)
            tables.put(key, table)
        return key, table
    key = ("computed", loaded.id, entity, version, as_of)  # no snapshot yet (never ticked): compute it
    table = tables.get(key)
    if table is None:
        table = _computed_tables(ctx, uow, loaded, rounds, [entity], as_of)[entity]
        tables.put(key, table)
    return key, table


# -- the roster and a page ---------------------------------------------------------------------------


def _roster(uow: UnitOfWork, loaded: LoadedTournament, entity: str) -> pd.DataFrame:
    """Return the tournament's models (or accounts with models): key, name, owner, stake in nano."""
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
    if entity == MODEL:
        return models.set_index("key")[["name", "owner", "stake_nano"]]
    accounts = models.groupby(["account_id", "owner"], as_index=False)["stake_nano"].sum()
    accounts["name"] = accounts["owner"]
    return accounts.rename(columns={"account_id": "key"}).set_index("key")[["name", "owner", "stake_nano"]]


def _roster_version(uow: UnitOfWork, tournament_id: int) -> tuple[Any, ...]:
    """Return what changes whenever the roster does: the models (count, newest), the last ledger transaction.

    Every stake change is a ledger transaction, so a new one means the stakes may have moved.
    """
    models = uow.session.execute(
        select(func.count(Model.id), func.max(Model.created_at)).where(Model.tournament_id == tournament_id)
    ).one()
    return (*models, uow.session.scalar(select(func.max(LedgerTransaction.id))))


class _Board:
    """A leaderboard's joined rows (roster and reputation table), with each sort order computed once."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.names = frame["name"].str.lower()
        self.owners = frame["owner"].str.lower()
        self.orders: dict[tuple[str, bool], np.ndarray] = {}

    def positions(self, sort: str, descending: bool, search: str) -> np.ndarray:
        """Return the row positions sorted by ``sort``, only those whose name or owner contains ``search``.

        Orders are kept as positions (not sorted copies of the rows); a benign race may compute one twice.
        """
        key = (sort, descending)
        if key not in self.orders:
            self.orders[key] = _order(self.frame, sort, descending)
        order = self.orders[key]
        if not search:
            return order
        found = (
            self.names.str.contains(search, regex=False) | self.owners.str.contains(search, regex=False)
        ).to_numpy()
        return order[found[order]]


def _sort_values(frame: pd.DataFrame, sort: str) -> pd.Series:
    if sort == "name":
        return frame["name"].str.lower()
    if sort == "stake":
        return frame["stake_nano"].astype(np.float64)
    if sort in RETURN_WINDOWS:
        return frame[sort] if sort in frame.columns else pd.Series(np.nan, index=frame.index)
    column = f"{sort}_rep"
    return frame[column] if column in frame.columns else pd.Series(np.nan, index=frame.index)


def _order(frame: pd.DataFrame, sort: str, descending: bool) -> np.ndarray:
    """Return the row positions sorted by ``sort`` (missing values last in either direction, then by name)."""
    values = _sort_values(frame, sort)
    missing = values.isna().to_numpy()
    if sort == "name":
        order = np.lexsort((frame.index.to_numpy(), values.to_numpy()))
        order = order[::-1] if descending else order
    else:
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        key = np.where(missing, np.inf, -numbers if descending else numbers)
        order = np.lexsort((frame["name"].str.lower().to_numpy(), key))
    return order


def _optional(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)  # type: ignore[arg-type]


def _row(record: pd.Series, scores: tuple[ScoreColumn, ...]) -> LeaderboardRow:
    reputations = {}
    for score in scores:
        rank = record.get(f"{score.name}_rank")
        rounds = record.get(f"{score.name}_rounds")
        reputations[score.name] = ScoreReputation(
            value=_optional(record.get(f"{score.name}_rep")),
            low=_optional(record.get(f"{score.name}_low")),
            high=_optional(record.get(f"{score.name}_high")),
            rounds=0 if rounds is None or pd.isna(rounds) else int(rounds),
            rank=None if rank is None or pd.isna(rank) else int(rank),
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


def _board(ctx: Context, tournament: TournamentRef, entity: str) -> tuple[LoadedTournament, _Board]:
    """Return the tournament and its leaderboard rows of models (or accounts) joined with the roster."""
    as_of = ctx.now().date()
    tables = _tables(ctx)

    def work(uow: UnitOfWork) -> tuple[LoadedTournament, _Board]:
        loaded = load_tournament(uow, tournament)
        table_key, table = _current_table(ctx, uow, loaded, entity, as_of)
        board_key = ("board", table_key, _roster_version(uow, loaded.id))
        board = tables.get(board_key)
        if board is None:
            roster = _roster(uow, loaded, entity)
            board = _Board(roster.join(table, how="left") if not table.empty else roster)
            tables.put(board_key, board)
        return loaded, board

    return run_transaction(ctx.engine, work, read_only=True)


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
    as_of = ctx.now().date()
    scores = _score_columns(loaded)
    sort = sort or loaded.config.payout.terms[0].score
    sorts = (*FIXED_SORTS, *(score.name for score in scores))
    _check_request(sort, sorts, offset, limit)
    positions = board.positions(sort, descending, search.strip().lower())
    page = board.frame.iloc[positions[offset : offset + limit]]
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
        as_of=as_of,
        rows=tuple(_row(record, scores) for _, record in page.iterrows()),
    )


def ranked_leaderboard(
    ctx: Context, tournament: TournamentRef, *, entity: str = MODEL, limit: int | None = None, offset: int = 0
) -> tuple[str, list[LeaderboardRow]]:
    """Return the ranking score and the rows by its rank (unranked last, then by name): numerapi's order.

    The ranking score is :func:`crowdalpha.service.performance.ranking_score`; the rows come from
    the same tables as the pages (the snapshot when it holds).
    """
    if offset < 0 or (limit is not None and limit < 0):
        raise ServiceError(
            "invalid_page", f"limit and offset must be ≥ 0; got limit {limit}, offset {offset}"
        )
    loaded, board = _board(ctx, tournament, entity)
    frame = board.frame

    def is_ranked(score: str) -> bool:
        column = f"{score}_rank"
        return column in frame.columns and bool(frame[column].notna().any())

    ranked_by = ranking_score(loaded.config, is_ranked)
    positions = board.positions(ranked_by, True, "")
    page = frame.iloc[positions[offset : None if limit is None else offset + limit]]
    return ranked_by, [_row(record, _score_columns(loaded)) for _, record in page.iterrows()]
