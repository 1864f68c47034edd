"""A season on a simulated clock: the market revealed day by day, rounds run by ``tick``, a crowd submitting.

For each market date D after the published history, :func:`run_season_day` does what the
operator's daily routine and the participants do in production, in order:

1. at D's market close the clock stands at D 22:00 UTC and D's rows are ingested
   (:func:`crowdalpha.service.ingest_market`, as ``crowdalpha market ingest``) — the equity
   market's, and those of every other market a tournament scores on (the Crypto tournament's
   token market, as ``crowdalpha market ingest FILE --market crypto``);
2. the clock moves to the calendar's open time of the round whose data is D (the round of D + 1)
   and :func:`crowdalpha.service.tick` runs every due job — open (a fresh Classic live file from
   D), and the score and resolve jobs that fall due;
3. every on-time participant reads the round's published live file through the service (the
   file numerapi downloads) and uploads through :func:`crowdalpha.service.submit_predictions`;
4. the clock moves to the close, ``tick`` closes the round (at-risk stakes, meta model), and the
   late participants upload in the late window.

Nothing here changes a rule: the season only moves the clock and calls the use cases. Stakes are
set before the first round (:func:`stake_crowd`); a participant's ``stake_changes`` raise or
release stake at the market close of the season day they name, through the same ledger use
cases a participant calls. The copycat reads the round's published ``meta_model.parquet`` (the
file numerapi downloads) once the round has closed and uploads it in the late window. After each
day the ledger's supply is recorded (:class:`SupplySnapshot`) for the report's supply chart.
"""

from __future__ import annotations

import io
import json
import time as timer
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd

from crowdalpha.ledger.accounts import BURN, SUPPLY, TREASURY, AccountKind
from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.service import (
    Context,
    TickReport,
    balances,
    create_account,
    create_model,
    grant,
    increase_stake,
    ingest_market,
    mint_genesis,
    open_dataset_file,
    request_release,
    round_status,
    submit_predictions,
    tick,
)
from crowdalpha.service.meta_models import META_MODEL_COLUMN
from crowdalpha.sim.participants import (
    ClassicModel,
    ClassicTraining,
    Participant,
    PriceView,
    classic_submission,
    copycat_submission,
    fit_classic,
    price_history,
    price_submission,
)
from crowdalpha.sim.score_worker import ScoreWorker
from crowdalpha.store import NotFound
from crowdalpha.tournament.calendar import RoundSchedule, is_round_day, round_number_on, round_schedule
from crowdalpha.tournament.clock import SettableClock
from crowdalpha.tournament.config import TournamentConfig
from crowdalpha.tournament.rounds import JobStep

MARKET_CLOSE = time(22, 0)
"""When a market date's close is known and ingested (UTC)."""
GRANT_MARGIN = 1000
"""Whole tokens granted to each crowd account on top of what its models stake."""
LIVE_FILE = "live.parquet"
META_MODEL_FILE = "meta_model.parquet"
PRICE_KEYS = {"signals": "numerai_ticker", "crypto": "symbol"}

Stage = Callable[[str, int, int], None]
"""Progress callback: (stage description, done, total)."""


@dataclass(frozen=True)
class CrowdMember:
    """A participant as the season runs it: its account, its model id and (Classic) its fitted model."""

    participant: Participant
    owner: str
    model_id: str
    seed: int
    classic_model: ClassicModel | None = None


@dataclass(frozen=True)
class SupplySnapshot:
    """The ledger's supply at the end of a season day, in nano-tokens."""

    minted: int
    burned: int
    treasury: int
    staked: int
    """Held in stake and releasing accounts."""

    @property
    def circulating(self) -> int:
        """Return minted − burned: every token that exists, wherever it is held."""
        return self.minted - self.burned


@dataclass
class SeasonDay:
    """What one market date did: the rounds it opened, the uploads, the jobs' outcomes, the supply after."""

    market_date: date
    opened: dict[str, int] = field(default_factory=dict)
    uploads: int = 0
    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)
    stake_changes: dict[str, int] = field(default_factory=dict)
    """Model name → nano-tokens raised (+) or asked to release (−) that day."""
    supply: SupplySnapshot | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    """Phase → wall seconds the day spent in it (see :data:`DAY_PHASES`)."""

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the wall time of the ``with`` block to the phase's seconds."""
        start = timer.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + timer.perf_counter() - start


DAY_PHASES = (
    "ingest",
    "stake changes",
    "open tick",
    "uploads",
    "waiting for scores",
    "close tick",
    "late uploads",
    "supply",
)
"""What a season day spends its time on, in order: the open tick runs the open and close jobs (and,
without a score worker, the score jobs); waiting for scores is the time the crowd's uploads ended
before the score worker's jobs; the close tick runs the resolutions and refreshes the leaderboards."""


@dataclass
class SeasonLog:
    """Every day of a season, in order."""

    days: list[SeasonDay] = field(default_factory=list)

    def phase_seconds(self) -> dict[str, float]:
        """Return the wall seconds of every day phase summed over the season, in :data:`DAY_PHASES` order."""
        totals = {phase: 0.0 for phase in DAY_PHASES}
        for day in self.days:
            for phase, seconds in day.seconds.items():
                totals[phase] = totals.get(phase, 0.0) + seconds
        return totals

    @property
    def failed(self) -> dict[str, str]:
        """Return every job that failed during the season (job key → message)."""
        return {key: message for day in self.days for key, message in day.failed.items()}


def classic_training(directory: Path) -> ClassicTraining:
    """Return the published training data of a Classic version a participant downloads once."""
    feature_sets = json.loads((directory / "features.json").read_text())["feature_sets"]
    features, small = feature_sets["medium"], feature_sets["small"]
    columns = list(dict.fromkeys(["era", *features, *small, "target"]))
    train = pd.read_parquet(directory / "train.parquet", columns=columns)
    return ClassicTraining(train=train, features=tuple(features), example_features=tuple(small))


def create_crowd(ctx: Context, crowd: list[Participant]) -> dict[str, tuple[str, str]]:
    """Create the crowd's accounts (one per strategy) and models; return model name → (owner, model id)."""
    owners: dict[str, tuple[str, str]] = {}
    accounts: set[str] = set()
    for participant in crowd:
        owner = f"{participant.strategy}_team"
        if owner not in accounts:
            create_account(ctx, owner)
            accounts.add(owner)
        model = create_model(ctx, owner, participant.tournament, participant.model)
        owners[participant.model] = (owner, model.id)
    return owners


def enroll_crowd(
    ctx: Context,
    crowd: list[Participant],
    training: ClassicTraining | None,
    seed: int,
    progress: Stage | None = None,
) -> list[CrowdMember]:
    """Create the crowd's accounts and models, fit each Classic model once, stake (:func:`stake_crowd`).

    ``training`` is the published Classic training data (None when the season runs no Classic).
    """
    report = progress or (lambda stage, done, total: None)
    if training is None and any(p.tournament == "classic" for p in crowd):
        raise ValueError("Classic participants need the published Classic training data; none was given")
    owners = create_crowd(ctx, crowd)
    members = []
    for done, participant in enumerate(crowd):
        report("fitting the crowd's models", done, len(crowd))
        owner, model_id = owners[participant.model]
        model = (
            fit_classic(participant.strategy, training, seed + done)
            if training is not None
            and participant.tournament == "classic"
            and not participant.copies_meta_model
            else None
        )
        members.append(CrowdMember(participant, owner, model_id, seed + done, model))
    report("fitting the crowd's models", len(crowd), len(crowd))
    stake_crowd(ctx, members)
    return members


def stake_crowd(ctx: Context, crowd: list[CrowdMember]) -> None:
    """Mint the genesis supply, grant every crowd account tokens and stake each model its ``stake``."""
    mint_genesis(ctx)
    needed: dict[str, int] = {}
    for member in crowd:
        needed[member.owner] = needed.get(member.owner, 0) + member.participant.stake
    for owner, tokens in needed.items():
        grant(ctx, owner, (tokens + GRANT_MARGIN) * NANO_PER_TOKEN, idempotency_key=f"season/grant/{owner}")
    for member in crowd:
        if member.participant.stake:
            increase_stake(
                ctx,
                member.owner,
                member.model_id,
                member.participant.stake * NANO_PER_TOKEN,
                idempotency_key=f"season/stake/{member.participant.model}",
            )


def round_of_data(config: TournamentConfig, market_date: date) -> RoundSchedule | None:
    """Return the calendar round whose live data is ``market_date`` (it opens the next day), if any."""
    day = market_date + timedelta(days=1)
    return round_schedule(config, round_number_on(config, day)) if is_round_day(config, day) else None


def _read_live(ctx: Context, tournament: str, number: int) -> pd.DataFrame:
    """Return the round's live file as a participant downloads it (``live.parquet`` of the round)."""
    opened = open_dataset_file(ctx, tournament, LIVE_FILE, number)
    with opened.open() as handle:
        return pd.read_parquet(io.BytesIO(handle.read()))


def read_published_meta_model(ctx: Context, tournament: str, number: int) -> pd.Series | None:
    """Return the round's published meta model by id (``meta_model.parquet`` of the round), if any."""
    try:
        opened = open_dataset_file(ctx, tournament, META_MODEL_FILE, number)
    except NotFound:
        return None
    with opened.open() as handle:
        frame = pd.read_parquet(io.BytesIO(handle.read()))
    if "id" in frame.columns:
        frame = frame.set_index("id")
    return frame[META_MODEL_COLUMN]


def supply_snapshot(ctx: Context) -> SupplySnapshot:
    """Return the ledger's supply now: minted, burned, the treasury and everything staked."""
    held = balances(ctx)
    by_name = {row.name: row.balance_nano for row in held}
    staked = sum(
        row.balance_nano for row in held if row.kind in (AccountKind.STAKE.value, AccountKind.RELEASING.value)
    )
    return SupplySnapshot(-by_name.get(SUPPLY, 0), by_name.get(BURN, 0), by_name.get(TREASURY, 0), staked)


def change_stakes(ctx: Context, crowd: list[CrowdMember], day_index: int) -> dict[str, int]:
    """Raise or release the stakes the crowd's ``stake_changes`` name for season day ``day_index``."""
    changed: dict[str, int] = {}
    for member in crowd:
        for when, tokens in member.participant.stake_changes:
            if when != day_index or tokens == 0:
                continue
            key = f"season/stake-change/{member.participant.model}/{day_index}"
            if tokens > 0:
                increase_stake(
                    ctx, member.owner, member.model_id, tokens * NANO_PER_TOKEN, idempotency_key=key
                )
            else:
                request_release(
                    ctx, member.owner, member.model_id, -tokens * NANO_PER_TOKEN, idempotency_key=key
                )
            changed[member.participant.model] = (
                changed.get(member.participant.model, 0) + tokens * NANO_PER_TOKEN
            )
    return changed


def _price_view(tournament: str, live: pd.DataFrame, panel: pd.DataFrame, market_date: date) -> PriceView:
    """Return what a Signals/Crypto participant works from: its prices through the date, the live keys."""
    key = PRICE_KEYS[tournament]
    keys = panel["ticker"] + " " + panel["country"] if tournament == "signals" else panel["ticker"]
    return PriceView(price_history(panel, market_date, keys), tuple(live[key].astype(str)), key)


_CSV_QUOTED_CHARACTERS = (",", '"', "\r", "\n")
"""The characters that make CSV quote a cell."""


def _unquoted_texts(values: pd.Series) -> list[str] | None:
    """Return a text column's cells as they are, or None when one is missing or CSV must quote it."""
    if values.isna().any():
        return None
    texts = values.astype(str).tolist()
    # One scan of all cells joined (in C) instead of a regular expression per cell.
    joined = "".join(texts)
    return None if any(character in joined for character in _CSV_QUOTED_CHARACTERS) else texts


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """Return a submission frame as the CSV ``frame.to_csv(index=False)`` writes, a few times faster.

    Text columns are written as they are and floats in full precision (``repr``); a frame with a
    value CSV must quote (a comma, a quote, a line break) or a missing value goes through pandas.
    """
    columns: list[list[str]] = []
    for name in frame.columns:
        values = frame[name]
        texts = None
        if pd.api.types.is_float_dtype(values.dtype) and not values.isna().any():
            texts = list(map(repr, values.tolist()))
        elif pd.api.types.is_string_dtype(values.dtype):
            texts = _unquoted_texts(values)
        if texts is None:
            return frame.to_csv(index=False).encode()
        columns.append(texts)
    header = ",".join(map(str, frame.columns)) + "\n"
    if not columns:
        return header.encode()
    # Every row's cells, each followed by its separator, laid out by slice assignment (no row tuples).
    step = 2 * len(columns)
    cells = [","] * (step * len(frame))
    for position, texts in enumerate(columns):
        cells[2 * position :: step] = texts
    cells[step - 1 :: step] = ["\n"] * len(frame)
    return (header + "".join(cells)).encode()


def _upload(ctx: Context, member: CrowdMember, frame: pd.DataFrame) -> None:
    submit_predictions(ctx, member.owner, member.model_id, "predictions.csv", csv_bytes(frame))


def _record(day: SeasonDay, report: TickReport) -> None:
    day.ran.extend(report.ran)
    day.failed.update(report.failed)
    day.waiting.update(report.waiting)


def _submit_all(
    ctx: Context,
    members: list[CrowdMember],
    opened: Mapping[str, int],
    prices: Mapping[str, pd.DataFrame],
    market_date: date,
) -> int:
    lives: dict[str, pd.DataFrame] = {}
    views: dict[str, PriceView] = {}
    uploads = 0
    for member in members:
        tournament = member.participant.tournament
        if tournament not in opened or member.participant.skips(opened[tournament]):
            continue
        if member.participant.copies_meta_model:
            published = read_published_meta_model(ctx, tournament, opened[tournament])
            if published is not None:
                _upload(ctx, member, copycat_submission(published))
                uploads += 1
            continue
        if tournament not in lives:
            lives[tournament] = _read_live(ctx, tournament, opened[tournament])
        if member.classic_model is not None:
            frame = classic_submission(member.classic_model, lives[tournament])
        else:
            if tournament not in views:
                views[tournament] = _price_view(
                    tournament, lives[tournament], prices[tournament], market_date
                )
            frame = price_submission(member.participant.strategy, views[tournament], member.seed)
        _upload(ctx, member, frame)
        uploads += 1
    return uploads


def run_season_day(
    ctx: Context,
    clock: SettableClock,
    rows: pd.DataFrame,
    crowd: list[CrowdMember],
    prices: Mapping[str, pd.DataFrame],
    configs: Mapping[str, TournamentConfig],
    *,
    close: bool = True,
    day_index: int = 0,
    other_rows: Mapping[str, pd.DataFrame] | None = None,
    score_worker: ScoreWorker | None = None,
) -> SeasonDay:
    """Run one market date: ingest, stake changes, open (tick), uploads, close (tick), late uploads.

    ``rows`` are the market store's rows of that one date; ``prices`` the panels Signals and Crypto
    participants compute their signals from; ``close=False`` leaves the day's rounds open;
    ``day_index`` is the date's place in the season (what ``stake_changes`` refer to);
    ``other_rows`` maps another market (``crypto``) to its rows of the same date, ingested too;
    ``score_worker`` runs the day's score jobs while the crowd uploads (the open tick then runs the
    open and close jobs only; the resolutions due run in the close tick, after the scores).
    """
    dates = pd.DatetimeIndex(rows["date"].drop_duplicates()) if len(rows) else pd.DatetimeIndex([])
    if len(dates) != 1:
        raise ValueError(f"a season day ingests the rows of one market date; got {len(dates)} dates")
    market_date = dates[0].date()
    day = SeasonDay(market_date)
    clock.set(max(clock.now(), datetime.combine(market_date, MARKET_CLOSE, tzinfo=UTC)))
    with day.timed("ingest"):
        ingest_market(ctx, rows)
        for market, market_rows in (other_rows or {}).items():
            if len(market_rows):
                ingest_market(ctx, market_rows, market=market)
    with day.timed("stake changes"):
        day.stake_changes = change_stakes(ctx, crowd, day_index)
    schedules = {name: round_of_data(config, market_date) for name, config in configs.items()}
    schedules = {name: schedule for name, schedule in schedules.items() if schedule is not None}
    if not schedules:
        with day.timed("supply"):
            day.supply = supply_snapshot(ctx)
        return day
    clock.set(max(clock.now(), min(schedule.open_time for schedule in schedules.values())))
    with day.timed("open tick"):
        if score_worker is None:
            _record(day, tick(ctx))
        else:  # the score jobs run in the worker while the crowd uploads; the resolutions wait for them
            _record(day, tick(ctx, steps=(JobStep.OPEN, JobStep.CLOSE)))
            score_worker.start(clock.now())
    with day.timed("uploads"):
        for name, schedule in schedules.items():
            status = round_status(ctx, name)
            if status.number == schedule.number and status.state == "open":
                day.opened[name] = status.number
        on_time = [member for member in crowd if not member.participant.late]
        day.uploads += _submit_all(ctx, on_time, day.opened, prices, market_date)
    if score_worker is not None:
        with day.timed("waiting for scores"):
            _record(day, score_worker.wait())
        if not close:
            with day.timed("close tick"):
                _record(day, tick(ctx))
    if close:
        clock.set(max(clock.now(), max(schedule.close_staking_time for schedule in schedules.values())))
        with day.timed("close tick"):
            _record(day, tick(ctx))
        with day.timed("late uploads"):
            late = [member for member in crowd if member.participant.late]
            day.uploads += _submit_all(ctx, late, day.opened, prices, market_date)
    with day.timed("supply"):
        day.supply = supply_snapshot(ctx)
    return day


def run_season(
    ctx: Context,
    clock: SettableClock,
    season: pd.DataFrame,
    crowd: list[CrowdMember],
    prices: Mapping[str, pd.DataFrame],
    configs: Mapping[str, TournamentConfig],
    progress: Stage | None = None,
    *,
    leave_open: bool = True,
    markets: Mapping[str, pd.DataFrame] | None = None,
    score_worker: ScoreWorker | None = None,
) -> SeasonLog:
    """Run every market date of ``season`` in order; with ``leave_open`` the last day's rounds stay open.

    ``season`` holds the equity market's rows; ``markets`` maps each other market a tournament
    scores on (``crypto``) to its season rows, ingested date by date beside the equity rows;
    ``score_worker`` runs each day's score jobs beside the uploads (:func:`run_season_day`).
    """
    report = progress or (lambda stage, done, total: None)
    dates = list(pd.DatetimeIndex(season["date"].drop_duplicates()).sort_values())
    log = SeasonLog()
    others = {
        market: dict(tuple(frame.groupby("date", sort=False))) for market, frame in (markets or {}).items()
    }
    empty = season.iloc[:0]
    for done, market_date in enumerate(dates):
        report("simulating the season", done, len(dates))
        rows = season[season["date"] == market_date].reset_index(drop=True)
        other_rows = {
            market: by_date.get(market_date, empty).reset_index(drop=True)
            for market, by_date in others.items()
        }
        last = done == len(dates) - 1
        log.days.append(
            run_season_day(
                ctx,
                clock,
                rows,
                crowd,
                prices,
                configs,
                close=not (leave_open and last),
                day_index=done,
                other_rows=other_rows,
                score_worker=score_worker,
            )
        )
    report("simulating the season", len(dates), len(dates))
    return log
