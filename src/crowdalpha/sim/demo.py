"""``crowdalpha demo``: a living tournament in one command, on the production code path.

Stages: synthesise markets (or load the shipped PSE sample) → build the Classic, Signals and
Crypto datasets from the history (all but the last ``rounds`` trading dates) → create a home,
publish them (Classic with its private pieces and the operator secret, so every round gets a
fresh live file) and ingest the history into the market store → create the simulated crowd's
accounts, models and stakes, and fit each Classic participant's model once on the published
training data → run the season (:mod:`crowdalpha.sim.season`): a simulated clock steps through
the remaining dates; ``tick`` opens, closes, scores and resolves the rounds, and the crowd
uploads through ``service.submit_predictions`` every round. The last round is left open and the
home's clock is set to the season's last moment, so the served home shows the season as it
ended. Then :func:`crowdalpha.sim.outcome.finish_season` writes ``report/report.html`` (charts,
leaderboard, ledger, integrity checks, counterfactual payouts) and the season's Parquet tables in
the home. Signals and Crypto rounds open and take uploads; they are scored when their tournaments
can map ids to assets.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from crowdalpha.datasets.benchmark_models import LightGBMParams, train_benchmark_models
from crowdalpha.datasets.classic import build_classic
from crowdalpha.datasets.crypto import build_crypto
from crowdalpha.datasets.signals import build_signals
from crowdalpha.market.samples import load_sample
from crowdalpha.market.synthetic import generate_market
from crowdalpha.service import (
    LedgerReport,
    create_account,
    create_model,
    ingest_market,
    init_home,
    open_context,
    publish_dataset,
    set_clock,
)
from crowdalpha.settings import Settings
from crowdalpha.sim.counterfactual import default_variants
from crowdalpha.sim.integrity import IntegrityCheck
from crowdalpha.sim.outcome import finish_season
from crowdalpha.sim.participants import Participant, default_crowd
from crowdalpha.sim.report import LeaderboardRow, SeasonFigures
from crowdalpha.sim.season import MARKET_CLOSE, SeasonLog, classic_training, enroll_crowd, run_season
from crowdalpha.sim.season_report import ReportSection
from crowdalpha.tournament.clock import SettableClock
from crowdalpha.tournament.config import CLASSIC, CRYPTO, SIGNALS

MARKER = ".crowdalpha-demo"
TOURNAMENTS = ("classic", "signals", "crypto")
VERSION = "v1.0"
DEMO_ACCOUNT = "demo"
DEFAULT_ROUNDS = 28
"""Season length in trading days: enough for several rounds to resolve (horizon 20 + lag + delay)."""
CONFIGS = {"classic": CLASSIC, "signals": SIGNALS, "crypto": CRYPTO}
REPORT_DIR = "report"
BENCHMARK_CHUNK_ERAS = 26  # half a year of weekly eras: a short demo history still gets walk-forward chunks
BENCHMARK_PARAMS = LightGBMParams(n_estimators=150, learning_rate=0.05, colsample_bytree=0.3)

Stage = Callable[[str, int, int], None]
"""Progress callback: (stage description, done, total)."""


@dataclass(frozen=True)
class DemoOptions:
    """What ``crowdalpha demo`` runs: the home, the market, its size and seed."""

    home: Path
    assets: int = 400
    days: int = 800
    crypto_assets: int = 500
    seed: int = 7
    market: str = "synthetic"
    rounds: int = DEFAULT_ROUNDS
    """Trading days of the season, after the history the datasets are built from."""


@dataclass
class DemoResult:
    """What the demo built and ran: its home's settings, the season, its figures, ledger and leaderboard."""

    settings: Settings
    season: SeasonLog
    figures: SeasonFigures
    ledger: LedgerReport
    leaderboards: dict[str, list[LeaderboardRow]]
    crowd: list[Participant] = field(default_factory=list)
    demo_public_id: str = ""
    demo_secret_key: str = ""
    skipped: dict[str, str] = field(default_factory=dict)
    """Tournaments published but not run, with the reason (e.g. a universe below the minimum)."""
    integrity: dict[str, list[IntegrityCheck]] = field(default_factory=dict)
    report: Path | None = None


class DemoError(ValueError):
    """The demo cannot run as asked; the message names the rule."""


def prepare_home(home: Path) -> None:
    """Empty ``home`` for a fresh demo; refuse a directory that is not an earlier demo's home."""
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            raise DemoError(
                f"{home} exists and is not a demo home (no {MARKER} marker); "
                "pass an empty or new directory with --home"
            )
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text("created by `crowdalpha demo`; the next demo run replaces this directory\n")


def _markets(options: DemoOptions) -> tuple[pd.DataFrame, pd.DataFrame]:
    total = options.days + options.rounds  # the history, then the season's trading days
    if options.market == "pse":
        equity = load_sample("pse")
    elif options.market == "synthetic":
        equity = generate_market(options.assets, total, options.seed, "equity", "2019-01-01", 40).panel
    else:
        raise DemoError(f"--market is synthetic or pse; got {options.market!r}")
    crypto = generate_market(options.crypto_assets, total, options.seed + 1, "crypto", "2019-01-01", 20)
    return equity, crypto.panel


def _build(tournament: str, panel: pd.DataFrame, datasets: Path, private: Path, progress: Stage) -> Path:
    out = datasets / tournament
    if tournament == "classic":
        secret = (private / "operator.key").read_bytes()
        report = build_classic(
            panel, out, version=VERSION, secret=secret, private_dir=private / tournament, progress=progress
        )
        train_benchmark_models(
            report.version_dir,
            Path(report.private_dir),
            chunk_eras=BENCHMARK_CHUNK_ERAS,
            params=BENCHMARK_PARAMS,
            progress=progress,
        )
    elif tournament == "signals":
        build_signals(panel, out, version=VERSION, private_dir=private / tournament, progress=progress)
    else:
        build_crypto(panel, out, version=VERSION, private_dir=private / tournament, progress=progress)
    return out / VERSION


def _too_small(built: dict[str, Path]) -> dict[str, str]:
    """Return the universe tournaments whose live universe is below their submission minimum, and why."""
    skipped = {}
    for tournament, config in (("signals", SIGNALS), ("crypto", CRYPTO)):
        members = pq.read_metadata(built[tournament] / "live.parquet").num_rows
        minimum = config.submissions.min_tickers or 0
        if members < minimum:
            skipped[tournament] = (
                f"its live universe has {members} members, below the {minimum} a submission must cover"
            )
    return skipped


def _history_and_season(panel: pd.DataFrame, rounds: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a panel into its history (published) and its last ``rounds`` trading dates (the season)."""
    dates = pd.DatetimeIndex(panel["date"].drop_duplicates()).sort_values()
    if rounds >= len(dates):
        raise DemoError(f"--rounds {rounds} leaves no history: the market has {len(dates)} trading dates")
    start = dates[len(dates) - rounds] if rounds else dates[-1] + pd.Timedelta(days=1)
    history = panel[panel["date"] < start].reset_index(drop=True)
    return history, panel[panel["date"] >= start].reset_index(drop=True)


def run_demo(
    options: DemoOptions, progress: Stage | None = None, *, extra_sections: Sequence[ReportSection] = ()
) -> DemoResult:
    """Build a demo tournament home and run a season in it; return what it holds (see the module doc).

    ``extra_sections`` are appended to the season report (e.g. the fund's backtest).
    """
    report = progress or (lambda stage, done, total: None)
    home = options.home.expanduser().resolve()
    prepare_home(home)
    datasets, private = home / "datasets", home / "private"
    private.mkdir(parents=True)
    secret = bytes(range(32))  # a demo secret; real operators use urandom
    (private / "operator.key").write_bytes(secret)

    report("synthesising markets", 0, 1)
    equity, crypto = _markets(options)
    report("synthesising markets", 1, 1)
    equity_history, season = _history_and_season(equity, options.rounds)
    crypto_history, _ = _history_and_season(crypto, options.rounds)
    histories = {"classic": equity_history, "signals": equity_history, "crypto": crypto_history}
    built: dict[str, Path] = {}
    for done, tournament in enumerate(TOURNAMENTS):
        report("building datasets", done, len(TOURNAMENTS))
        built[tournament] = _build(tournament, histories[tournament], datasets, private, report)
    report("building datasets", len(TOURNAMENTS), len(TOURNAMENTS))

    skipped = _too_small(built)
    running = tuple(tournament for tournament in TOURNAMENTS if tournament not in skipped)
    settings = Settings.resolve(home=home)
    history_end = pd.Timestamp(equity_history["date"].max()).date()
    clock = SettableClock(datetime.combine(history_end, MARKET_CLOSE, tzinfo=UTC))
    init_home(settings, clock=clock)
    crowd = default_crowd(running)
    with open_context(settings, clock=clock) as ctx:
        publish_dataset(ctx, built["classic"], "classic", private_dir=private / "classic", secret=secret)
        for tournament in TOURNAMENTS[1:]:
            publish_dataset(ctx, built[tournament], tournament)
        ingest_market(ctx, equity_history)
        demo = create_account(ctx, DEMO_ACCOUNT)
        create_model(ctx, DEMO_ACCOUNT, "classic", "demo_model")
        members = enroll_crowd(ctx, crowd, classic_training(built["classic"]), options.seed, report)
        configs = {tournament: CONFIGS[tournament] for tournament in running}
        prices = {"signals": equity, "crypto": crypto}
        log = run_season(ctx, clock, season, members, prices, configs, report)
        report("writing the report", 0, 1)
        outcome = finish_season(
            ctx,
            home / REPORT_DIR,
            title="crowdalpha demo season",
            log=log,
            crowd=crowd,
            configs=configs,
            variants={"classic": default_variants(CLASSIC)},
            extra_sections=extra_sections,
        )
        report("writing the report", 1, 1)
    set_clock(settings, clock.now())  # the served home stands at the season's last moment
    return DemoResult(
        settings,
        log,
        outcome.figures,
        outcome.ledger,
        outcome.leaderboards,
        crowd=crowd,
        demo_public_id=demo.public_id,
        demo_secret_key=demo.secret_key,
        skipped=skipped,
        integrity=outcome.integrity,
        report=outcome.report,
    )
