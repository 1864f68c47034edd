"""The season report charts scores each tournament's config actually declares."""

from __future__ import annotations

import pytest

from crowdalpha.sim.season_report import CHART_SCORES
from crowdalpha.tournament.config import CLASSIC, CRYPTO, SIGNALS


@pytest.mark.parametrize("config", [CLASSIC, SIGNALS, CRYPTO], ids=lambda c: c.name)
def test_the_charted_corr_and_mmc_are_scores_of_the_tournament(config) -> None:
    declared = {score.name for score in config.scores}
    assert set(CHART_SCORES[config.name]) <= declared
