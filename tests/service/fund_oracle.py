"""An independent recomputation of the fund's alpha for the service tests (numpy least squares)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crowdalpha.fund import Universe


def residual_alpha_oracle(ranks: np.ndarray, universe: Universe) -> np.ndarray:
    """Return ``ranks`` (ids × models) less their least-squares fit on 1, β, styles, sectors, countries."""
    exposures = np.column_stack(
        [
            np.ones(universe.size),
            universe.betas,
            universe.factor_exposures,
            pd.get_dummies(universe.sectors).to_numpy(float),
            pd.get_dummies(universe.countries).to_numpy(float),
        ]
    )
    fit, *_ = np.linalg.lstsq(exposures, ranks, rcond=None)
    return ranks - exposures @ fit
