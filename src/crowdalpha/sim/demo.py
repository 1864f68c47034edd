"""``crowdalpha demo``: a living tournament in one command, on the production code path.

The demo is a :func:`crowdalpha.sim.simulate.run_simulation` with small defaults — a synthetic
market (or the shipped PSE sample), Classic, Signals and Crypto, the default crowd, the last
``rounds`` trading dates as the season — plus a demo participant whose API key the command prints
so numerapi can talk to the served home. The last round is left open and the home's clock stands
at the season's last moment, so the served home shows the season as it ended;
``report/report.html`` (charts, leaderboard, ledger, integrity checks, counterfactual payouts)
and the season's Parquet tables are written in the home.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crowdalpha.service import LedgerReport, create_account, create_model, open_context
from crowdalpha.settings import Settings
from crowdalpha.sim.integrity import IntegrityCheck
from crowdalpha.sim.participants import Participant
from crowdalpha.sim.report import LeaderboardRow, SeasonFigures
from crowdalpha.sim.season import SeasonLog
from crowdalpha.sim.season_report import ReportSection
from crowdalpha.sim.simulate import (
    MARKER,
    TOURNAMENTS,
    MarketSpec,
    SimulationError,
    SimulationSpec,
    prepare_home,
    run_simulation,
)

__all__ = ["MARKER", "TOURNAMENTS", "DemoError", "DemoOptions", "DemoResult", "prepare_home", "run_demo"]

DEMO_ACCOUNT = "demo"
DEFAULT_ROUNDS = 28
"""Season length in trading days: enough for several rounds to resolve (horizon 20 + lag + delay)."""

Stage = Callable[[str, int, int], None]
"""Progress callback: (stage description, done, total)."""

DemoError = SimulationError
"""The demo cannot run as asked; the message names the rule."""


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
    fund_backtest: bool = False
    """Add the fund backtest to the report (off by default: it adds about a minute)."""


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


def run_demo(
    options: DemoOptions, progress: Stage | None = None, *, extra_sections: Sequence[ReportSection] = ()
) -> DemoResult:
    """Build a demo tournament home and run a season in it; return what it holds (see the module doc).

    ``extra_sections`` are appended to the season report (e.g. the fund's backtest).
    """
    if options.market not in ("synthetic", "pse"):
        raise DemoError(f"--market is synthetic or pse; got {options.market!r}")
    spec = SimulationSpec(
        home=options.home,
        market=MarketSpec(
            source=options.market,
            assets=options.assets,
            days=options.days + options.rounds,  # the history, then the season's trading days
            crypto_assets=options.crypto_assets,
        ),
        seed=options.seed,
        rounds=options.rounds,
        title="crowdalpha demo season",
        extra_sections=extra_sections,
        fund_backtest=options.fund_backtest,
    )
    result = run_simulation(spec, progress)
    with open_context(result.settings) as ctx:
        demo = create_account(ctx, DEMO_ACCOUNT)
        create_model(ctx, DEMO_ACCOUNT, "classic", "demo_model")
    outcome = result.outcome
    return DemoResult(
        result.settings,
        result.season,
        outcome.figures,
        outcome.ledger,
        outcome.leaderboards,
        crowd=result.crowd,
        demo_public_id=demo.public_id,
        demo_secret_key=demo.secret_key,
        skipped=result.skipped,
        integrity=outcome.integrity,
        report=outcome.report,
    )
