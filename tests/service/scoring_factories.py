"""A market and a Classic version built from its history, for the scoring and live-file tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crowdalpha.datasets.classic import build_classic

SECRET = b"score-day-test-secret-0123456789"
HISTORY_DAYS = 200
EXTRA_DAYS = 30


@dataclass(frozen=True)
class Market:
    """A panel, and a Classic version built from its first HISTORY_DAYS dates (public and private dirs)."""

    panel: pd.DataFrame
    dates: pd.DatetimeIndex
    version_dir: Path
    private_dir: Path

    def days(self, start: int, stop: int) -> pd.DataFrame:
        """Return the panel rows of trading dates ``start`` … ``stop - 1``."""
        return self.panel[self.panel["date"].isin(self.dates[start:stop])].reset_index(drop=True)

    def build(self, root: Path, days: int) -> Path:
        """Return the version directory built (with the same secret) from the first ``days`` dates."""
        report = build_classic(
            self.days(0, days), root / "public", secret=SECRET, private_dir=root / "private"
        )
        return Path(report.version_dir)


def build_market(root: Path, make_market_panel: Callable[..., pd.DataFrame]) -> Market:
    """Return a 40-asset market of HISTORY_DAYS + EXTRA_DAYS dates and the version built from its history."""
    panel = make_market_panel(assets=40, days=HISTORY_DAYS + EXTRA_DAYS, seed=3)
    dates = pd.DatetimeIndex(panel["date"].drop_duplicates())
    market = Market(panel, dates, root / "public" / "v1.0", root / "private")
    market.build(root, HISTORY_DAYS)
    return market
