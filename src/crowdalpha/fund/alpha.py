"""The fund's alpha: the part of a signal the risk model does not explain, as an expected residual return.

The tournament's targets are residual returns (neutral to the market, beta, the styles, sectors
and countries), so what a model's predictions say about returns is their *residual* ordering. Their
tilts toward a sector, a country, a style or high beta are not alpha: traded as such, the optimizer
takes each of them up to its limit (sector and country risk is not in the factor model, so those
bets look free), every portfolio of correlated signals carries the same unpriced bets, and their
factor returns swamp the signal's residual P&L. :func:`residual_alpha` removes them first::

    α = a − E (EᵀE)⁺ Eᵀ a,   E = [1, β, X, sector one-hots, country one-hots]

with ``β``, ``X`` and the labels those of the :class:`~crowdalpha.fund.optimizer.Universe` (known at
its date). The map is a linear projection, so the SWMM of residual predictions is the residual of
the SWMM and True Contribution through it stays exact.
"""

from __future__ import annotations

import numpy as np

from crowdalpha.fund.optimizer import FundError, Universe, membership_matrix
from crowdalpha.scoring.transforms import Neutralizer


def risk_exposures(universe: Universe) -> np.ndarray:
    """Return the names × exposures matrix the alpha is made neutral to: β, styles, sector, country."""
    return np.hstack(
        [
            universe.betas.reshape(-1, 1),
            universe.factor_exposures,
            membership_matrix(universe.sectors).toarray(),
            membership_matrix(universe.countries).toarray(),
        ]
    )


def residual_alpha(signals: np.ndarray, universe: Universe) -> np.ndarray:
    """Return ``signals`` ((n,) or names × models, any unit) less their fit on 1 and the risk exposures.

    A signal the exposures explain entirely (a constant, a sector bet) comes back as zeros: it holds
    no residual alpha.
    """
    values = np.asarray(signals, dtype=np.float64)
    if values.ndim not in (1, 2) or values.shape[0] != universe.size:
        raise FundError(
            f"signals have shape {values.shape}; expected ({universe.size},) or ({universe.size}, models)"
            " — one row per name of the universe"
        )
    rows = values.reshape(universe.size, -1).T
    if not np.isfinite(rows).all():
        raise FundError("signals must be finite (rule: every name of the universe needs an alpha)")
    residual = Neutralizer(risk_exposures(universe)).residual_rows(rows)
    # the Neutralizer marks constant rows NaN; explained away is exactly zero alpha here
    residual[~np.isfinite(residual).all(axis=1)] = 0.0
    return residual.T.reshape(values.shape)
