"""A season simulation from a spec: market → datasets → published home → crowd → season → outcome.

:func:`run_simulation` is what ``crowdalpha simulate CONFIG.toml`` and ``crowdalpha demo`` both
run. Stages: synthesise a market (or load the shipped PSE sample or a panel file) → split it into
the history (dates before the season) and the season's trading dates → build the tournaments'
datasets from the history (Classic with its private pieces and benchmark models) → create a home,
publish them (Classic with the operator secret, so every round gets a fresh live file) and ingest
the history into the market store → create the crowd's accounts, models and stakes, fit each
Classic participant's model once on the published training data → run the season on a simulated
clock (:mod:`crowdalpha.sim.season`) → :func:`crowdalpha.sim.outcome.finish_season` (figures,
ledger, integrity checks, counterfactual payouts, Parquet tables, ``report.html``).
"""

from __future__ import annotations

import contextlib
import html
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from crowdalpha.datasets.benchmark_models import LightGBMParams, train_benchmark_models
from crowdalpha.datasets.classic import build_classic
from crowdalpha.datasets.crypto import build_crypto
from crowdalpha.datasets.signals import build_signals
from crowdalpha.market.loaders import read_panel
from crowdalpha.market.samples import load_sample
from crowdalpha.market.synthetic import generate_market
from crowdalpha.service import Context, ingest_market, init_home, open_context, publish_dataset, set_clock
from crowdalpha.service.errors import ServiceError
from crowdalpha.settings import Settings
from crowdalpha.sim.counterfactual import PayoutVariant, default_variants
from crowdalpha.sim.outcome import SeasonOutcome, finish_season
from crowdalpha.sim.participants import Participant, default_crowd
from crowdalpha.sim.score_worker import ScoreWorker
from crowdalpha.sim.season import MARKET_CLOSE, SeasonLog, classic_training, enroll_crowd, run_season
from crowdalpha.sim.season_report import ReportSection
from crowdalpha.tournament.clock import SettableClock
from crowdalpha.tournament.config import CLASSIC, CRYPTO, SIGNALS, TournamentConfig

MARKER = ".crowdalpha-demo"
TOURNAMENTS = ("classic", "signals", "crypto")
CONFIGS: Mapping[str, TournamentConfig] = {"classic": CLASSIC, "signals": SIGNALS, "crypto": CRYPTO}
VERSION = "v1.0"
REPORT_DIR = "report"
BENCHMARK_CHUNK_ERAS = 26  # half a year of weekly eras: a short history still gets walk-forward chunks
BENCHMARK_PARAMS = LightGBMParams(n_estimators=150, learning_rate=0.05, colsample_bytree=0.3)
SEASON_ALPHA = 3.0
"""A season's synthetic market carries 3× the generator's default hidden alpha: models then reach
a validation CORR of about 0.06 (0.02 at 1×), so a season of a few dozen rounds tells good models
from poor ones and the integrity checks can tell a working tournament from a broken one."""
DEMO_SECRET = bytes(range(32))  # a fixed demo secret keeps a replay's ids the same; operators use urandom

Stage = Callable[[str, int, int], None]
"""Progress callback: (stage description, done, total)."""


class SimulationError(ValueError):
    """The simulation cannot run as asked; the message names the rule."""


@dataclass(frozen=True)
class MarketSpec:
    """The season's market: ``synthetic`` (sized here), ``pse`` (the shipped sample) or ``panel`` (a file)."""

    source: str = "synthetic"
    panel: Path | None = None
    assets: int = 400
    days: int = 800
    """Trading days in all: the history and the season."""
    start: str = "2019-01-01"
    raw_features: int = 40
    crypto_assets: int = 500
    alpha_strength: float = SEASON_ALPHA
    """Scale of the synthetic market's hidden alpha (1 = the generator's default)."""


@dataclass(frozen=True)
class SimulationSpec:
    """What a simulation runs: where, on which market and dates, which tournaments, crowd and payout rules."""

    home: Path
    market: MarketSpec = MarketSpec()
    tournaments: tuple[str, ...] = TOURNAMENTS
    seed: int = 7
    rounds: int | None = 28
    """Season length in trading days (the market's last ones), unless ``season_start`` is given."""
    season_start: date | None = None
    season_end: date | None = None
    crowd: tuple[Participant, ...] | None = None
    """None: :func:`crowdalpha.sim.participants.default_crowd` of the tournaments."""
    variants: Mapping[str, Sequence[PayoutVariant]] | None = None
    """tournament → payout rules to re-pay the season under; None: the default variants."""
    benchmark_models: bool = True
    title: str = "crowdalpha season"
    extra_sections: Sequence[ReportSection] = ()
    fund_backtest: bool = True
    """Add the fund backtest of the Classic meta model (``crowdalpha fund backtest``) to the report."""
    score_worker: bool = True
    """Run each day's score jobs in a worker process beside the crowd's uploads (the same figures;
    :mod:`crowdalpha.sim.score_worker`); False runs everything in this process."""


@dataclass
class SimulationResult:
    """What a simulation built and ran: its home's settings, the season log, the crowd and the outcome."""

    settings: Settings
    season: SeasonLog
    crowd: list[Participant]
    outcome: SeasonOutcome
    skipped: dict[str, str] = field(default_factory=dict)
    """Tournaments published but not run, with the reason (e.g. a universe below the minimum)."""


def prepare_home(home: Path) -> None:
    """Empty ``home`` for a fresh run; refuse a directory that is not an earlier demo or simulation home."""
    if home.exists() and any(home.iterdir()):
        if not (home / MARKER).exists():
            raise SimulationError(
                f"{home} exists and is not a demo home (no {MARKER} marker); "
                "pass an empty or new directory with --home"
            )
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / MARKER).write_text(
        "created by `crowdalpha demo` / `crowdalpha simulate`; the next run replaces this directory\n"
    )


def _markets(spec: SimulationSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    market = spec.market
    if market.source == "pse":
        equity = load_sample("pse")
    elif market.source == "panel":
        if market.panel is None:
            raise SimulationError("market.panel: a panel market needs the path of its panel file")
        equity = read_panel(market.panel)
    elif market.source == "synthetic":
        equity = generate_market(
            market.assets,
            market.days,
            spec.seed,
            "equity",
            market.start,
            market.raw_features,
            alpha_strength=market.alpha_strength,
        ).panel
    else:
        raise SimulationError(f"market.source is synthetic, pse or panel; got {market.source!r}")
    days = max(market.days, equity["date"].nunique())
    crypto = generate_market(market.crypto_assets, days, spec.seed + 1, "crypto", market.start, 20)
    return equity, crypto.panel


def _build(
    tournament: str, panel: pd.DataFrame, datasets: Path, private: Path, spec: SimulationSpec, progress: Stage
) -> Path:
    out = datasets / tournament
    if tournament == "classic":
        secret = (private / "operator.key").read_bytes()
        report = build_classic(
            panel, out, version=VERSION, secret=secret, private_dir=private / tournament, progress=progress
        )
        if spec.benchmark_models:
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


def _too_small(built: Mapping[str, Path]) -> dict[str, str]:
    """Return the universe tournaments whose live universe is below their submission minimum, and why."""
    skipped = {}
    for tournament in ("signals", "crypto"):
        if tournament not in built:
            continue
        members = pq.read_metadata(built[tournament] / "live.parquet").num_rows
        minimum = CONFIGS[tournament].submissions.min_tickers or 0
        if members < minimum:
            skipped[tournament] = (
                f"its live universe has {members} members, below the {minimum} a submission must cover"
            )
    return skipped


def season_dates(panel: pd.DataFrame, spec: SimulationSpec) -> pd.DatetimeIndex:
    """Return the season's trading dates of ``panel`` under the spec's dates (or its last ``rounds``)."""
    dates = pd.DatetimeIndex(panel["date"].drop_duplicates()).sort_values()
    if spec.season_start is not None:
        chosen = dates[dates >= pd.Timestamp(spec.season_start)]
        if spec.season_end is not None:
            chosen = chosen[chosen <= pd.Timestamp(spec.season_end)]
        if not len(chosen):
            raise SimulationError(
                f"dates: no trading date of the market ({dates[0]:%Y-%m-%d} … {dates[-1]:%Y-%m-%d})"
                f" falls in the season {spec.season_start} … {spec.season_end or 'end'}"
            )
        if chosen[0] == dates[0]:
            raise SimulationError(f"dates.start {spec.season_start} leaves no history before the season")
        return chosen
    rounds = spec.rounds or 0
    if rounds >= len(dates):
        raise SimulationError(f"rounds {rounds} leaves no history: the market has {len(dates)} trading dates")
    return dates[len(dates) - rounds :] if rounds else dates[:0]


def split_history(panel: pd.DataFrame, season: pd.DatetimeIndex) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a panel into its history (before the season's first date) and the season's rows."""
    start = season[0] if len(season) else pd.Timestamp(panel["date"].max()) + pd.Timedelta(days=1)
    history = panel[panel["date"] < start].reset_index(drop=True)
    return history, panel[panel["date"].isin(season)].reset_index(drop=True)


def run_simulation(spec: SimulationSpec, progress: Stage | None = None) -> SimulationResult:
    """Build a home from the spec and run its season; return what it holds (see the module doc)."""
    report = progress or (lambda stage, done, total: None)
    unknown = sorted(set(spec.tournaments) - set(CONFIGS))
    if unknown or not spec.tournaments:
        raise SimulationError(f"tournaments: each is one of {list(CONFIGS)}; got {list(spec.tournaments)}")
    home = spec.home.expanduser().resolve()
    prepare_home(home)
    datasets, private = home / "datasets", home / "private"
    private.mkdir(parents=True)
    (private / "operator.key").write_bytes(DEMO_SECRET)

    report("preparing markets", 0, 1)
    equity, crypto = _markets(spec)
    report("preparing markets", 1, 1)
    dates = season_dates(equity, spec)
    equity_history, season = split_history(equity, dates)
    crypto_history, crypto_season = split_history(crypto, dates)
    histories = {"classic": equity_history, "signals": equity_history, "crypto": crypto_history}
    built: dict[str, Path] = {}
    for done, tournament in enumerate(spec.tournaments):
        report("building datasets", done, len(spec.tournaments))
        built[tournament] = _build(tournament, histories[tournament], datasets, private, spec, report)
    report("building datasets", len(spec.tournaments), len(spec.tournaments))

    skipped = _too_small(built)
    running = tuple(tournament for tournament in spec.tournaments if tournament not in skipped)
    settings = Settings.resolve(home=home)
    history_end = pd.Timestamp(equity_history["date"].max()).date()
    clock = SettableClock(datetime.combine(history_end, MARKET_CLOSE, tzinfo=UTC))
    init_home(settings, clock=clock)
    crowd = [p for p in (spec.crowd or default_crowd(running)) if p.tournament in running]
    configs = {tournament: CONFIGS[tournament] for tournament in running}
    variants = spec.variants
    if variants is None:
        variants = {name: default_variants(config) for name, config in configs.items() if not config.gates}
    with open_context(settings, clock=clock) as ctx:
        _publish(ctx, built, private)
        ingest_market(ctx, equity_history)
        others = {} if "crypto" not in configs else {CRYPTO.market: crypto_season}
        if others:  # the Crypto tournament scores on its own market store (`market ingest --market crypto`)
            ingest_market(ctx, crypto_history, market=CRYPTO.market)
        training = classic_training(built["classic"]) if "classic" in built else None
        members = enroll_crowd(ctx, crowd, training, spec.seed, report)
        prices = {"signals": equity, "crypto": crypto}
        # The season's products are small (2,000 ids × 50 models, 40-column regressions): on one BLAS
        # thread they cost 17 % less CPU (40 rounds: 85 s against 103 s) and never wait on a busy core.
        with (
            threadpool_limits(limits=1, user_api="blas"),
            ScoreWorker(settings, clock.now()) if spec.score_worker else contextlib.nullcontext() as worker,
        ):
            log = run_season(
                ctx, clock, season, members, prices, configs, report, markets=others, score_worker=worker
            )
        sections = list(spec.extra_sections)
        if spec.fund_backtest and "classic" in configs:
            report("backtesting the fund", 0, 1)
            sections.append(fund_section(ctx, home / REPORT_DIR / "fund"))
            report("backtesting the fund", 1, 1)
        report("writing the report", 0, 1)
        outcome = finish_season(
            ctx,
            home / REPORT_DIR,
            title=spec.title,
            log=log,
            crowd=crowd,
            configs=configs,
            variants=variants,
            extra_sections=sections,
        )
        report("writing the report", 1, 1)
    set_clock(settings, clock.now())  # the served home stands at the season's last moment
    return SimulationResult(settings, log, crowd, outcome, skipped)


def fund_section(ctx: Context, directory: Path) -> ReportSection:
    """Return the fund backtest of the season's Classic rounds as a report section (or why there is none)."""
    from crowdalpha.service.fund_backtest import season_report_section  # cvxpy: loaded only here

    try:
        return ReportSection(*season_report_section(ctx, directory))
    except ServiceError as error:  # e.g. no resolved round to trade yet
        return ReportSection("Fund backtest", f"<p>No backtest: {html.escape(str(error))}</p>", [])


def _publish(ctx: Context, built: Mapping[str, Path], private: Path) -> None:
    for tournament, directory in built.items():
        if tournament == "classic":
            secret = (private / "operator.key").read_bytes()
            publish_dataset(ctx, directory, tournament, private_dir=private / tournament, secret=secret)
        else:
            publish_dataset(ctx, directory, tournament)
