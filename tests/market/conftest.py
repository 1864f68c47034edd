"""Small seeded random-walk market panels for the market tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

COUNTRIES = ("US", "GB", "JP")
SECTORS = ("Energy", "Financials", "Health", "Industrials", "Tech")


def random_walk_panel(
    n_assets: int = 40,
    n_days: int = 320,
    *,
    seed: int = 0,
    start: str = "2020-01-01",
    listings: bool = True,
) -> pd.DataFrame:
    """Return a long panel: a market + sector factor model of daily log returns, business-day dates.

    With ``listings``, the last asset lists a third of the way in and the second-to-last delists
    two thirds of the way in, so the panel's rows are not a full grid.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n_days)
    assets = [f"A{i:03d}" for i in range(n_assets)]
    sector = rng.integers(0, len(SECTORS), n_assets)
    country = rng.integers(0, len(COUNTRIES), n_assets)
    beta = rng.uniform(0.5, 1.5, n_assets)
    market = rng.normal(0.0003, 0.01, n_days)
    sector_moves = rng.normal(0.0, 0.006, (n_days, len(SECTORS)))
    idio = rng.standard_t(5, (n_days, n_assets)) * rng.uniform(0.008, 0.03, n_assets)
    log_returns = market[:, None] * beta + sector_moves[:, sector] + idio
    close = rng.uniform(5, 200, n_assets) * np.exp(np.cumsum(log_returns, axis=0))
    shares = rng.lognormal(17, 1.0, n_assets)
    volume = rng.lognormal(12, 0.7, (n_days, n_assets)) * (shares / shares.mean())
    present = np.ones((n_days, n_assets), dtype=bool)
    if listings and n_assets >= 3:
        present[: n_days // 3, -1] = False
        present[2 * n_days // 3 :, -2] = False
    day, asset = np.nonzero(present)
    return pd.DataFrame(
        {
            "date": dates[day],
            "asset": np.asarray(assets)[asset],
            "ticker": [f"T{a}" for a in asset],
            "country": np.asarray(COUNTRIES)[country[asset]],
            "sector": np.asarray(SECTORS)[sector[asset]],
            "industry": [f"{SECTORS[sector[a]]}-{a % 2}" for a in asset],
            "close": close[day, asset],
            "volume": np.round(volume[day, asset]),
            "market_cap": close[day, asset] * shares[asset],
        }
    )


@pytest.fixture
def make_panel() -> Callable[..., pd.DataFrame]:
    """Return the seeded random-walk panel generator (see :func:`random_walk_panel`)."""
    return random_walk_panel


@pytest.fixture(scope="session")
def panel() -> pd.DataFrame:
    """Return a validated 40-asset × 320-day random-walk panel (shared, do not mutate)."""
    from crowdalpha.market.panel import validate_panel

    return validate_panel(random_walk_panel())
