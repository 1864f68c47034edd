"""A season of all three tournaments: every tournament scores; Classic and Crypto rounds resolve.

Crypto scores on its own market store (``crowdalpha market ingest FILE --market crypto``), which
the season ingests day by day beside the equity market; Classic and Crypto rounds (horizon 20)
must pass through scoring to ``resolved``, Signals rounds (horizon 60, longer than the season) must
be scoring, and no job may fail.
"""

from __future__ import annotations

import pytest

from crowdalpha.service import check_ledger, market_through, open_context
from crowdalpha.sim.simulate import MarketSpec, SimulationResult, SimulationSpec, run_simulation

ROUNDS = 26
"""Season days: the first rounds reach score day 20 (lag 2 + delay 2 + horizon 20) and resolve."""


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    spec = SimulationSpec(
        home=tmp_path_factory.mktemp("three") / "home",
        market=MarketSpec(assets=150, days=330 + ROUNDS, crypto_assets=260),
        rounds=ROUNDS,
        benchmark_models=False,
        fund_backtest=False,
    )
    return run_simulation(spec)


@pytest.mark.slow
def test_classic_signals_and_crypto_rounds_all_resolve_with_scores_and_no_failed_job(
    season: SimulationResult,
) -> None:
    assert season.skipped == {}
    assert season.season.failed == {}
    figures = season.outcome.figures
    for tournament in ("classic", "signals", "crypto"):
        states = figures.states_count(tournament)
        # Signals resolves after its 60-day scores (horizon 60): beyond this season, so its rounds score
        assert states["resolved" if tournament != "signals" else "scoring"] >= 1, (tournament, states)
        scored = {key for key in figures.scores if key[0] == tournament}
        assert scored, tournament
    last = season.season.days[-1].market_date
    with open_context(season.settings) as ctx:
        assert market_through(ctx, "crypto") == last
        assert market_through(ctx, "equity") == last
        assert check_ledger(ctx).ok
