"""The fund backtest of a simulated Classic season on the synthetic market with hidden alpha."""

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
from crowdalpha.service.fund_backtest import MODEL_PREFIX, backtest_season
from crowdalpha.settings import Settings
from crowdalpha.store import BlobStore, create_engine
from crowdalpha.tournament.clock import SettableClock

HISTORY_DAYS = 320
SEASON_DAYS = 45


@pytest.mark.slow
def test_on_a_simulated_season_the_meta_model_portfolio_beats_the_median_single_model(
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
    assert len(result.rounds) >= SEASON_DAYS - 5
    singles = [item.sharpe for name, item in result.statistics.items() if name.startswith(MODEL_PREFIX)]
    assert len(singles) >= 4
    assert result.statistics["meta_model"].sharpe > np.median(singles)
