"""The fund backtest of a simulated Classic season: every round with a meta model traded, every model.

Whether the meta model's portfolio beats the median model's over a season this short depends on
the crowd's luck (in a 45-day season of this crowd every portfolio lost, the SWMM a little more
than the median model); the acceptance property is tested on a simulated season with the
season's hidden alpha in ``tests/sim/test_fund_sharpe.py`` and on the synthetic season of
``crowdalpha.fund.synthetic`` in ``tests/fund/test_backtest.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_season import SECRET, SEED, SeasonMarket, play_season

from crowdalpha.datasets.classic import build_classic
from crowdalpha.market.synthetic import generate_market
from crowdalpha.service import Context
from crowdalpha.service.fund_backtest import DEFAULT_COST_BPS, MODEL_PREFIX, backtest_season
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore, create_engine
from crowdalpha.tournament.clock import SettableClock

HISTORY_DAYS = 320
SEASON_DAYS = 30


@pytest.mark.slow
def test_a_simulated_season_backtests_every_round_with_a_meta_model_and_every_model(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("fund_season")
    panel = generate_market(150, HISTORY_DAYS + SEASON_DAYS, SEED, "equity", "2019-01-01", 20).panel
    dates = pd.DatetimeIndex(panel["date"].drop_duplicates()).sort_values()
    history = panel[panel["date"] < dates[HISTORY_DAYS]].reset_index(drop=True)
    season = panel[panel["date"] >= dates[HISTORY_DAYS]].reset_index(drop=True)
    report = build_classic(history, root / "public", secret=SECRET, private_dir=root / "private")
    market = SeasonMarket(history, season, Path(report.version_dir), root / "private")
    database_url = f"sqlite:///{root / 'season.db'}"
    played = play_season(database_url, root, market, SEASON_DAYS)
    assert not played.log.failed

    settings = Settings(home=root / "home", database_url=database_url, storage_url=str(root / "blobs"))
    engine = create_engine(database_url)
    try:
        ctx = Context(
            engine,
            BlobStore(settings.storage_url, durable=False),
            SettableClock(datetime(2030, 1, 1, tzinfo=UTC)),
            settings,
        )
        result = backtest_season(ctx, "classic")
    finally:
        engine.dispose()
    states = played.figures.states
    traded = {
        number for (name, number), state in states.items() if state in ("closed", "scoring", "resolved")
    }
    assert set(result.rounds) | set(result.skipped_rounds) == traded
    assert len(result.rounds) >= SEASON_DAYS - 5
    uploaded = {model for (_, _, model) in played.figures.uploads}
    assert set(result.paths) == {"meta_model", *(MODEL_PREFIX + model for model in uploaded)}
    for path in result.paths.values():
        np.testing.assert_allclose(path.costs, DEFAULT_COST_BPS / 10_000 * path.turnover)
        assert np.nanmax(path.gross_exposure) <= 1 + 1e-6
    statistics = result.statistics["meta_model"]
    assert statistics.days == len(result.rounds) and np.isfinite(statistics.sharpe)
