"""A Classic season through the real service, on SQLite and PostgreSQL: states, scores, ledger, replay."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from crowdalpha.datasets.benchmark_models import (
    MODELS_DIRNAME,
    LightGBMParams,
    predict_live,
    train_benchmark_models,
)
from crowdalpha.datasets.classic import build_classic
from crowdalpha.ledger.amounts import NANO_PER_TOKEN as NANO
from crowdalpha.market.synthetic import generate_market
from crowdalpha.service import (
    Context,
    LedgerReport,
    check_ledger,
    ingest_market,
    init_home,
    open_dataset_file,
    publish_dataset,
)
from crowdalpha.settings import Settings
from crowdalpha.sim.counterfactual import counterfactual_payouts, default_variants
from crowdalpha.sim.integrity import integrity_checks
from crowdalpha.sim.participants import Participant
from crowdalpha.sim.report import SeasonFigures, final_scores, season_figures
from crowdalpha.sim.score_worker import ScoreWorker
from crowdalpha.sim.season import (
    MARKET_CLOSE,
    SeasonLog,
    classic_training,
    csv_bytes,
    enroll_crowd,
    round_of_data,
    run_season,
    run_season_day,
)
from crowdalpha.sim.simulate import SEASON_ALPHA
from crowdalpha.store import BlobStore, create_engine, run_transaction, upgrade_to_head
from crowdalpha.tournament.clock import SettableClock
from crowdalpha.tournament.config import CLASSIC

SECRET = b"season-test-secret-0123456789abc"
HISTORY_DAYS = 320
SHORT_SEASON = 7  # the first rounds get their first score days
SEASON_DAYS = 25  # the first rounds resolve: score day 20 lands 23 scoring days after the round
SEED = 11
SKIP_EVERY = 3
RAISED_ON, RAISED_BY = 2, 400
RELEASED_ON, RELEASED_BY = 1, 50
CROWD = [
    Participant("classic_gbm", "classic", "lightgbm", 1500, stake_changes=((RAISED_ON, RAISED_BY),)),
    Participant("classic_ridge", "classic", "ridge", 600),
    Participant("classic_noise", "classic", "noise", 200, stake_changes=((RELEASED_ON, -RELEASED_BY),)),
    Participant("classic_contrarian", "classic", "contrarian", 300),
    Participant("classic_skipper", "classic", "ridge", 300, skip_every=SKIP_EVERY),
    Participant("classic_unstaked", "classic", "example", 0),
    Participant("classic_late", "classic", "ridge", late=True),
    Participant("classic_copycat", "classic", "copycat", late=True),
]
STEP_ORDER = {"open": 0, "close": 1, "score": 2, "resolve": 3}


@dataclass(frozen=True)
class SeasonMarket:
    """A synthetic market split into its published history and the season's trading dates."""

    history: pd.DataFrame
    season: pd.DataFrame
    version_dir: Path
    private_dir: Path


@dataclass(frozen=True)
class PlayedSeason:
    """What a season left: its day log, every figure, the ledger check, and its jobs (key, step, finish)."""

    log: SeasonLog
    figures: SeasonFigures
    ledger: LedgerReport
    jobs: list[tuple[str, str, str, datetime | None]]
    settings: Settings

    def context(self) -> Context:
        """Return a Context on the season's home as it was left (dispose its engine after use)."""
        engine = create_engine(self.settings.database_url)
        clock = SettableClock(datetime(2030, 1, 1, tzinfo=UTC))
        return Context(engine, BlobStore(self.settings.storage_url, durable=False), clock, self.settings)


def _download(ctx: Context, name: str, number: int | None) -> pd.DataFrame:
    """Return a published Classic file as a participant downloads it (of round ``number``, if given)."""
    with open_dataset_file(ctx, "classic", name, number).open() as handle:
        frame = pd.read_parquet(io.BytesIO(handle.read()))
    return frame.set_index("id") if "id" in frame.columns else frame


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> SeasonMarket:
    """Return a 150-asset synthetic market (hidden alpha) and the Classic version built from its history."""
    root = tmp_path_factory.mktemp("season")
    panel = generate_market(
        150, HISTORY_DAYS + SEASON_DAYS, SEED, "equity", "2019-01-01", 20, alpha_strength=SEASON_ALPHA
    ).panel
    dates = pd.DatetimeIndex(panel["date"].drop_duplicates()).sort_values()
    history = panel[panel["date"] < dates[HISTORY_DAYS]].reset_index(drop=True)
    season = panel[panel["date"] >= dates[HISTORY_DAYS]].reset_index(drop=True)
    report = build_classic(history, root / "public", secret=SECRET, private_dir=root / "private")
    train_benchmark_models(
        report.version_dir, report.private_dir, chunk_eras=26, params=LightGBMParams(n_estimators=40)
    )
    return SeasonMarket(history, season, Path(report.version_dir), root / "private")


def play_season(
    database_url: str, root: Path, market: SeasonMarket, days: int, *, score_worker: bool = False
) -> PlayedSeason:
    """Run the first ``days`` of the Classic season on a fresh home whose database is ``database_url``.

    With ``score_worker`` the score jobs run in a :class:`ScoreWorker` process beside the uploads.
    """
    settings = Settings(home=root / "home", database_url=database_url, storage_url=str(root / "blobs"))
    start = pd.Timestamp(market.history["date"].max()).date()
    clock = SettableClock(datetime.combine(start, MARKET_CLOSE, tzinfo=UTC))
    init_home(settings, clock=clock)
    engine = create_engine(database_url)
    ctx = Context(engine, BlobStore(settings.storage_url, durable=False), clock, settings)
    try:
        publish_dataset(ctx, market.version_dir, "classic", private_dir=market.private_dir, secret=SECRET)
        ingest_market(ctx, market.history)
        members = enroll_crowd(ctx, CROWD, classic_training(market.version_dir), SEED)
        dates = pd.DatetimeIndex(market.season["date"].drop_duplicates()).sort_values()
        season = market.season[market.season["date"] <= dates[days - 1]]
        with ScoreWorker(settings, clock.now()) if score_worker else contextlib.nullcontext() as worker:
            log = run_season(
                ctx, clock, season, members, {}, {"classic": CLASSIC}, leave_open=False, score_worker=worker
            )

        def jobs(uow) -> list[tuple[str, str, str, datetime | None]]:
            return [(job.key, job.step, job.state, job.finished_at) for job in uow.jobs.list()]

        return PlayedSeason(
            log,
            season_figures(ctx),
            check_ledger(ctx),
            run_transaction(engine, jobs, read_only=True),
            settings,
        )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def seasons(
    market: SeasonMarket, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Callable[[int], dict[str, PlayedSeason]]:
    """Return ``play(days)``: the season's first days played on SQLite and on PostgreSQL (same seed), once.

    The SQLite season runs its score jobs in a score worker process, the PostgreSQL one in-process:
    the figures compared between them also show the worker changes none.
    """
    played: dict[int, dict[str, PlayedSeason]] = {}

    def play(days: int) -> dict[str, PlayedSeason]:
        if days not in played:
            root = tmp_path_factory.mktemp(f"played{days}")
            runs = {
                "sqlite": play_season(
                    f"sqlite:///{root / 'sqlite.db'}", root / "sqlite", market, days, score_worker=True
                )
            }
            url = request.getfixturevalue("postgres_server").create_database()
            engine: Engine = create_engine(url)
            upgrade_to_head(engine)
            engine.dispose()
            runs["postgresql"] = play_season(url, root / "postgresql", market, days)
            played[days] = runs
        return played[days]

    return play


@pytest.fixture(
    params=[SHORT_SEASON, pytest.param(SEASON_DAYS, marks=pytest.mark.slow)], ids=["short", "full"]
)
def played(
    request: pytest.FixtureRequest, seasons: Callable[[int], dict[str, PlayedSeason]]
) -> dict[str, PlayedSeason]:
    """Return a short season (first score days) or, marked slow, a season long enough to resolve rounds."""
    return seasons(request.param)


@pytest.fixture
def full_season(seasons: Callable[[int], dict[str, PlayedSeason]]) -> dict[str, PlayedSeason]:
    """Return the season long enough for its first rounds to resolve."""
    return seasons(SEASON_DAYS)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_round_passes_through_its_states_in_order(
    played: dict[str, PlayedSeason], backend: str
) -> None:
    season = played[backend]
    assert not season.log.failed
    states = {number: state for (_, number), state in season.figures.states.items()}
    assert len(states) == len(season.log.days)  # one round per trading day of the season
    assert "scoring" in states.values()
    assert ("resolved" in states.values()) == (len(states) >= SEASON_DAYS)
    order = ["closed", "scoring", "resolved"]
    by_number = [order.index(states[number]) for number in sorted(states)]
    assert by_number == sorted(by_number, reverse=True)  # older rounds are further along
    for number, state in states.items():
        steps = [
            (STEP_ORDER[step], finished)
            for key, step, job_state, finished in season.jobs
            if key.startswith(f"classic/{number}/") and job_state == "done"
        ]
        done = [step for step, _ in sorted(steps, key=lambda item: (item[1], item[0]))]
        resolved_at = done.index(3) + 1 if 3 in done else len(done)
        before, after = done[:resolved_at], done[resolved_at:]
        assert before == sorted(before), f"round {number} ran its jobs out of order: {done}"
        # a resolved round keeps scoring its longer scores (CORR60) until their horizon; nothing else
        assert set(after) <= {2}, f"round {number} ran jobs other than scoring after resolving: {done}"
        expected = {"closed": {0, 1}, "scoring": {0, 1, 2}, "resolved": {0, 1, 2, 3}}[state]
        assert set(done) == expected, f"round {number} ({state}) ran steps {sorted(set(done))}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_on_time_and_late_upload_is_scored_on_every_computed_day(
    played: dict[str, PlayedSeason], backend: str
) -> None:
    figures = played[backend].figures
    kinds = {status for status in figures.uploads.values()}
    assert kinds == {"on_time", "late"}
    for (tournament, number), days in figures.score_days.items():
        assert days == tuple(range(1, len(days) + 1))  # no gap in the computed days
        uploads = [model for (t, n, model) in figures.uploads if (t, n) == (tournament, number)]
        expected = {p.model for p in CROWD if not p.skips(number)}
        assert set(uploads) == expected, number  # the skipper sits out every third round
        for day in days:
            scored = {
                model: {score for (t, n, m, score, d) in figures.scores if (t, n, m, d) == (*key, model, day)}
                for key in [(tournament, number)]
                for model in uploads
            }
            # every upload, on time or late, has the day's same scores, CORR, MMC and BMC among them
            # (BMC: the server predicted each round's fresh live file with the benchmark models)
            names = set.union(*scored.values())
            assert ({"corr20v2", "mmc", "bmc"} <= names) == (day <= CLASSIC.horizon), names
            assert all(found == names for found in scored.values()), (number, day, scored)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_ledger_balances_and_resolved_rounds_pay_only_staked_on_time_models(
    played: dict[str, PlayedSeason], backend: str
) -> None:
    season = played[backend]
    assert season.ledger.ok, season.ledger.breaks
    staked = {p.model for p in CROWD if p.stake and not p.late}
    assert {model for (_, _, model), nano in season.figures.at_risk.items() if nano} == staked
    resolved = {number for (_, number), state in season.figures.states.items() if state == "resolved"}
    paid = {model for (_, number, model), nano in season.figures.payouts.items() if nano}
    assert paid <= staked  # late and unstaked models never earn or burn
    assert {number for (_, number, _) in season.figures.payouts} == resolved
    assert bool(paid) == bool(resolved)


def test_replaying_the_season_reproduces_every_score_and_payout(played: dict[str, PlayedSeason]) -> None:
    first, second = played["sqlite"].figures, played["postgresql"].figures
    assert first.states == second.states and first.score_days == second.score_days
    assert first.uploads == second.uploads
    # submissions are stacked in model-name order, so every sum runs in the same order: bit for bit
    assert first.scores == second.scores
    assert first.payouts == second.payouts and first.at_risk == second.at_risk  # nano-tokens, exactly
    supply = [[day.supply for day in season.log.days] for season in (played["sqlite"], played["postgresql"])]
    assert supply[0] == supply[1] and all(snapshot is not None for snapshot in supply[0])


@pytest.mark.slow
def test_noise_scores_about_zero_and_the_informed_model_scores_positive(
    full_season: dict[str, PlayedSeason],
) -> None:
    figures = full_season["sqlite"].figures

    def mean_corr(model: str) -> float:
        latest = {}
        for (_, number, name, score, day), value in figures.scores.items():
            if name == model and score == "corr20v2" and day >= latest.get(number, (0, 0.0))[0]:
                latest[number] = (day, value)
        return float(np.mean([value for _, value in latest.values()]))

    noise, informed = mean_corr("classic_noise"), mean_corr("classic_gbm")
    assert abs(noise) < 0.05, noise
    assert informed > 0.0, informed
    assert final_scores(figures, CLASSIC, "corr20v2", "classic_gbm")  # resolved rounds have final scores


@pytest.mark.parametrize(
    ("market_date", "opens", "closes"),
    [
        ("2020-06-01", "2020-06-02T12:00", "2020-06-02T13:00"),  # Monday's data → Tuesday's round
        ("2020-06-05", "2020-06-06T12:00", "2020-06-07T14:00"),  # Friday's → Saturday's, closing Sunday
    ],
)
def test_a_market_date_feeds_the_round_opening_the_next_day_at_the_calendar_time(
    market_date: str, opens: str, closes: str
) -> None:
    schedule = round_of_data(CLASSIC, date.fromisoformat(market_date))
    assert schedule is not None
    assert schedule.data_date == date.fromisoformat(market_date)
    assert schedule.open_time == datetime.fromisoformat(opens).replace(tzinfo=UTC)
    assert schedule.close_staking_time == datetime.fromisoformat(closes).replace(tzinfo=UTC)


def test_a_saturday_market_date_feeds_no_round() -> None:
    assert round_of_data(CLASSIC, date(2020, 6, 6)) is None  # Sunday opens no round


def test_a_season_day_refuses_rows_of_several_dates(market: SeasonMarket) -> None:
    rows = market.season[market.season["date"].isin(market.season["date"].unique()[:2])]
    clock = SettableClock(datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="one market date; got 2 dates"):
        run_season_day(None, clock, rows, [], {}, {"classic": CLASSIC})  # type: ignore[arg-type]


@pytest.fixture
def short_season(seasons: Callable[[int], dict[str, PlayedSeason]]) -> dict[str, PlayedSeason]:
    """Return the short season (no round resolves yet, so stakes move only by the crowd's own changes)."""
    return seasons(SHORT_SEASON)


def _round_opened_on(season: PlayedSeason, day_index: int) -> int:
    return season.log.days[day_index].opened["classic"]


def test_the_copycat_uploads_each_closed_rounds_meta_model_late_and_earns_no_mmc(
    short_season: dict[str, PlayedSeason],
) -> None:
    figures = short_season["sqlite"].figures
    closed = [number for (_, number), state in figures.states.items() if state != "open"]
    assert all(figures.uploads[("classic", number, "classic_copycat")] == "late" for number in closed)
    copycat_mmc = [
        v for (_, _, m, s, _), v in figures.scores.items() if m == "classic_copycat" and s == "mmc"
    ]
    others_mmc = [v for (_, _, m, s, _), v in figures.scores.items() if m == "classic_ridge" and s == "mmc"]
    assert copycat_mmc and max(abs(v) for v in copycat_mmc) < 1e-9  # the meta model adds nothing to itself
    assert max(abs(v) for v in others_mmc) > 1e-4


def test_stakes_raised_and_released_mid_season_change_the_at_risk_stake_from_that_day(
    short_season: dict[str, PlayedSeason],
) -> None:
    season = short_season["sqlite"]
    assert season.log.days[RAISED_ON].stake_changes == {"classic_gbm": RAISED_BY * NANO}
    assert season.log.days[RELEASED_ON].stake_changes == {"classic_noise": -RELEASED_BY * NANO}
    at_risk = season.figures.at_risk
    for index in range(len(season.log.days) - 1):
        number = _round_opened_on(season, index)
        gbm = 1500 + (RAISED_BY if index >= RAISED_ON else 0)
        noise = 200 - (RELEASED_BY if index >= RELEASED_ON else 0)  # stake pending release is not at risk
        assert at_risk[("classic", number, "classic_gbm")] == gbm * NANO, index
        assert at_risk[("classic", number, "classic_noise")] == noise * NANO, index
    staked = [day.supply.staked for day in season.log.days]
    assert staked[RAISED_ON] - staked[RAISED_ON - 1] == RAISED_BY * NANO  # releasing stake still counts


@pytest.mark.slow
def test_integrity_holds_on_the_market_with_hidden_alpha(full_season: dict[str, PlayedSeason]) -> None:
    figures = full_season["sqlite"].figures
    checks = integrity_checks(figures, CROWD, CLASSIC, corr="corr20v2", mmc="mmc")
    assert [check.passed for check in checks] == [True] * 4, [(c.claim, c.detail) for c in checks]


@pytest.mark.slow
def test_the_actual_payout_rule_re_applied_reproduces_the_ledgers_payouts(
    full_season: dict[str, PlayedSeason],
) -> None:
    figures = full_season["sqlite"].figures
    table = counterfactual_payouts(figures, CLASSIC, default_variants(CLASSIC))
    assert len(table) and set(table["round"]) == {
        n for (_, n), s in figures.states.items() if s == "resolved"
    }
    recorded = {(row.round, row.model): row.payout_actual for row in table.itertuples()}
    assert recorded == {(n, m): nano for (_, n, m), nano in figures.payouts.items()}
    only_corr = table["payout_corr_only"].to_numpy()
    assert not np.array_equal(only_corr, table["payout_actual"].to_numpy())


def test_each_round_publishes_benchmark_predictions_of_its_own_fresh_live_file(
    short_season: dict[str, PlayedSeason], market: SeasonMarket
) -> None:
    season = short_season["sqlite"]
    ctx = season.context()
    try:
        models_dir = market.private_dir / market.version_dir.name / MODELS_DIRNAME
        for day in season.log.days:
            number = day.opened["classic"]
            live = _download(ctx, "live.parquet", number)
            benchmarks = _download(
                ctx, "live_benchmark_models.parquet", number
            )  # numerapi's name, the round's file
            assert list(benchmarks.index) == list(live.index)  # the round's fresh ids, not the version's
            expected = predict_live(models_dir, live)
            pd.testing.assert_frame_equal(benchmarks, expected, check_names=False, check_index_type=False)
        in_flight = _download(ctx, "live_benchmark_models.parquet", None)
        assert set(in_flight["round"]) >= {str(day.opened["classic"]) for day in season.log.days}
    finally:
        ctx.engine.dispose()


@pytest.mark.slow
def test_the_in_flight_benchmark_file_drops_the_rows_of_resolved_rounds(
    full_season: dict[str, PlayedSeason],
) -> None:
    season = full_season["sqlite"]
    ctx = season.context()
    try:
        in_flight = _download(ctx, "live_benchmark_models.parquet", None)
    finally:
        ctx.engine.dispose()
    states = {str(number): state for (_, number), state in season.figures.states.items()}
    resolved = {number for number, state in states.items() if state == "resolved"}
    kept = set(in_flight["round"]) - {"version"}
    assert kept >= set(states) - resolved  # every round still being scored finds its benchmark rows
    # rounds that had resolved when the last round opened were dropped (some resolve after that open)
    assert resolved and kept & resolved != resolved, (sorted(kept & resolved), sorted(resolved))


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"id": [f"n{i:015x}" for i in range(50)], "prediction": np.linspace(1e-7, 1.0, 50)}),
        pd.DataFrame({"numerai_ticker": ["AAA US", "BBB, LN", 'C"C'], "prediction": [0.5, 0.25, 1.0]}),
        pd.DataFrame({"symbol": ["AAA", "BBB"], "prediction": [0.5, np.nan]}),
        pd.DataFrame({"symbol": ["AAA", None], "prediction": [0.5, 0.25]}),
        pd.DataFrame({"symbol": ["A\nA", "B\rB"], "prediction": [0.5, 0.25]}),
        pd.DataFrame({"id": np.array(["a", "b"], dtype=object), "prediction": [1e16, -0.0]}),
        pd.DataFrame({"id": pd.Series([], dtype=str), "prediction": pd.Series([], dtype=float)}),
    ],
)
def test_uploads_are_written_as_pandas_writes_csv(frame):
    assert csv_bytes(frame) == frame.to_csv(index=False).encode()
