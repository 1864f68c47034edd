"""``crowdalpha demo``: a living tournament in one command, on the production code path.

Stages: synthesise markets (or load the shipped PSE sample) → build the Classic, Signals and
Crypto datasets → create a home and publish them → create the simulated crowd's accounts and
models → open a round per tournament → every participant computes and submits its predictions
through ``service.submit_predictions`` (the same validation as an HTTP upload). The command then
serves the home, so numerapi can talk to it.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from crowdalpha.datasets.benchmark_models import FILES as BENCHMARK_FILES
from crowdalpha.datasets.benchmark_models import LightGBMParams, train_benchmark_models
from crowdalpha.datasets.classic import build_classic
from crowdalpha.datasets.crypto import build_crypto
from crowdalpha.datasets.signals import build_signals
from crowdalpha.market.samples import load_sample
from crowdalpha.market.synthetic import generate_market
from crowdalpha.service import (
    Context,
    create_account,
    create_model,
    init_home,
    open_context,
    open_round,
    publish_dataset,
    submit_predictions,
)
from crowdalpha.settings import Settings
from crowdalpha.sim.participants import (
    ClassicView,
    Participant,
    PriceView,
    classic_submission,
    default_crowd,
    price_history,
    price_submission,
)
from crowdalpha.tournament.config import CRYPTO, SIGNALS

MARKER = ".crowdalpha-demo"
TOURNAMENTS = ("classic", "signals", "crypto")
VERSION = "v1.0"
DEMO_ACCOUNT = "demo"
ROUND_OPEN_FOR = timedelta(hours=24)
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


@dataclass
class SubmittedModel:
    """One participant model's outcome in the demo round."""

    tournament: str
    model: str
    strategy: str
    rows: int
    sha256: str


@dataclass
class DemoResult:
    """What the demo built: the settings of its home, rounds opened and the crowd's submissions."""

    settings: Settings
    rounds: dict[str, int]
    submissions: list[SubmittedModel] = field(default_factory=list)
    demo_public_id: str = ""
    demo_secret_key: str = ""
    skipped: dict[str, str] = field(default_factory=dict)
    """Tournaments published but not run, with the reason (e.g. a universe below the minimum)."""


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
    if options.market == "pse":
        equity = load_sample("pse")
    elif options.market == "synthetic":
        equity = generate_market(options.assets, options.days, options.seed, "equity", "2019-01-01", 40).panel
    else:
        raise DemoError(f"--market is synthetic or pse; got {options.market!r}")
    crypto = generate_market(
        options.crypto_assets, options.days, options.seed + 1, "crypto", "2019-01-01", 20
    )
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


def _classic_view(directory: Path) -> ClassicView:
    features = json.loads((directory / "features.json").read_text())["feature_sets"]["medium"]
    train = pd.read_parquet(directory / "train.parquet", columns=["era", *features, "target"])
    live = pd.read_parquet(directory / "live.parquet", columns=features)
    example = pd.read_parquet(directory / "live_example_preds.parquet")["prediction"]
    benchmarks = pd.read_parquet(directory / BENCHMARK_FILES["live"]).drop(columns="era")
    return ClassicView(
        train=train,
        live=live,
        features=tuple(features),
        example_predictions=example,
        benchmark_predictions=benchmarks,
    )


def _price_view(tournament: str, directory: Path, panel: pd.DataFrame) -> PriceView:
    live = pd.read_parquet(directory / "live.parquet")
    key_column = "numerai_ticker" if tournament == "signals" else "symbol"
    keys = panel["ticker"] + " " + panel["country"] if tournament == "signals" else panel["ticker"]
    prices = price_history(panel, live["date"].max(), keys)
    return PriceView(prices=prices, universe=tuple(live[key_column].astype(str)), key_column=key_column)


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


def _submit(ctx: Context, owner: str, model_id: str, frame: pd.DataFrame) -> tuple[int, str]:
    body = io.BytesIO()
    frame.to_csv(body, index=False)
    receipt = submit_predictions(ctx, owner, model_id, "predictions.csv", body.getvalue())
    return len(frame), receipt.sha256


def run_demo(options: DemoOptions, progress: Stage | None = None) -> DemoResult:
    """Build and populate a demo tournament home; return what it holds (see the module doc)."""
    report = progress or (lambda stage, done, total: None)
    home = options.home.expanduser().resolve()
    prepare_home(home)
    datasets, private = home / "datasets", home / "private"
    private.mkdir(parents=True)
    (private / "operator.key").write_bytes(bytes(range(32)))  # a demo secret; real operators use urandom

    report("synthesising markets", 0, 1)
    equity, crypto = _markets(options)
    report("synthesising markets", 1, 1)
    panels = {"classic": equity, "signals": equity, "crypto": crypto}
    built: dict[str, Path] = {}
    for done, tournament in enumerate(TOURNAMENTS):
        report("building datasets", done, len(TOURNAMENTS))
        built[tournament] = _build(tournament, panels[tournament], datasets, private, report)
    report("building datasets", len(TOURNAMENTS), len(TOURNAMENTS))

    skipped = _too_small(built)
    running = tuple(tournament for tournament in TOURNAMENTS if tournament not in skipped)
    settings = Settings.resolve(home=home)
    init_home(settings)
    crowd = default_crowd(running)
    with open_context(settings) as ctx:
        for tournament in TOURNAMENTS:
            publish_dataset(ctx, built[tournament], tournament)
        demo = create_account(ctx, DEMO_ACCOUNT)
        create_model(ctx, DEMO_ACCOUNT, "classic", "demo_model")
        owners = _create_crowd(ctx, crowd)
        rounds = {
            tournament: open_round(ctx, tournament, close_in=ROUND_OPEN_FOR).number for tournament in running
        }
        result = DemoResult(
            settings, rounds, demo_public_id=demo.public_id, demo_secret_key=demo.secret_key, skipped=skipped
        )
        classic_view = _classic_view(built["classic"])
        price_views = {t: _price_view(t, built[t], panels[t]) for t in running if t != "classic"}
        for done, participant in enumerate(crowd):
            report("the crowd submits", done, len(crowd))
            owner, model_id = owners[participant.model]
            seed = options.seed + done
            if participant.tournament == "classic":
                frame = classic_submission(participant.strategy, classic_view, seed)
            else:
                frame = price_submission(participant.strategy, price_views[participant.tournament], seed)
            rows, sha256 = _submit(ctx, owner, model_id, frame)
            result.submissions.append(
                SubmittedModel(participant.tournament, participant.model, participant.strategy, rows, sha256)
            )
        report("the crowd submits", len(crowd), len(crowd))
    return result


def _create_crowd(ctx: Context, crowd: list[Participant]) -> dict[str, tuple[str, str]]:
    """Return model name → (owner username, model id); one account per strategy family."""
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
