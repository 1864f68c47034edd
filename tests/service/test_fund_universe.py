"""The fund's universe from the market store: known at the date, the same from a later panel; errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scoring_factories import HISTORY_DAYS, Market

from crowdalpha.market.targets import prepare_target_inputs
from crowdalpha.service import Context, ServiceError, ingest_market
from crowdalpha.service.fund_universe import market_universe, universe_at


def test_the_universe_uses_only_what_was_known_at_the_date(ctx: Context, market: Market) -> None:
    ingest_market(ctx, market.days(0, HISTORY_DAYS))
    as_of = market.dates[HISTORY_DAYS - 1].date()
    known = market_universe(ctx, as_of)
    later = universe_at(prepare_target_inputs(market.panel), as_of)  # a panel 30 days longer
    assert list(known.assets) == sorted(market.days(0, 1)["asset"])
    assert known.factor_names == ("beta", "size", "momentum", "volatility")
    for field in ("betas", "factor_exposures", "factor_covariance", "specific_variance"):
        np.testing.assert_allclose(getattr(later.universe, field), getattr(known.universe, field), rtol=1e-10)
    rows = market.panel[market.panel["date"] == pd.Timestamp(as_of)].set_index("asset")
    assert list(known.universe.sectors) == list(pd.factorize(rows["sector"], sort=True)[0])
    assert np.all(known.universe.specific_variance > 0) and np.isfinite(known.universe.betas).all()


def test_unknown_dates_and_assets_are_refused_naming_them(ctx: Context, market: Market) -> None:
    with pytest.raises(ServiceError, match="the market store is empty"):
        market_universe(ctx, market.dates[10].date())
    ingest_market(ctx, market.days(0, 50))
    with pytest.raises(ServiceError, match="2020-01-04 is not a trading date of the market store"):
        market_universe(ctx, pd.Timestamp("2020-01-04").date())
    with pytest.raises(ServiceError, match=r"assets \['NOPE'\] have no market row on"):
        market_universe(ctx, market.dates[49].date(), ["ASSET0001", "NOPE"])
