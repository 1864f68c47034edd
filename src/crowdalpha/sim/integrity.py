"""Integrity checks of a season on a market with known hidden alpha: does the tournament reward signal?

Each check reads the season's figures (the scores and payouts the production path stored) and
says pass or fail with the figures it compared:

- the meta model's mean CORR beats the median participant's (the meta model is scored as the
  copycat's late upload of it — the copycat submits exactly the published meta model);
- every noise model's mean CORR is about 0 (within 3 standard errors of its per-round CORRs, or
  below ``NOISE_FLOOR``);
- the copycat's mean MMC is about 0 (below ``COPYCAT_MMC_TOLERANCE``) and below the median of
  the staked originals' mean MMC;
- good models' stakes grow (staked models with mean CORR above the median participant's were paid
  in total) and poor ones burn (staked models with negative mean CORR lost stake in total).

A check whose models the crowd lacks (no copycat, no noise model, nothing resolved) is reported as
not measured (``passed is None``), never as passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crowdalpha.sim.participants import Participant
from crowdalpha.sim.report import SeasonFigures, round_scores, total_payouts

NOISE_FLOOR = 0.01
COPYCAT_MMC_TOLERANCE = 0.005
NOISE_STRATEGY = "noise"


@dataclass(frozen=True)
class IntegrityCheck:
    """One check: what it claims, whether it held (None: not measurable here), the figures compared."""

    claim: str
    passed: bool | None
    detail: str


def _mean(values: dict[int, float]) -> float:
    return float(np.mean(list(values.values()))) if values else float("nan")


def _mean_scores(
    figures: SeasonFigures, tournament: str, score: str, models: Sequence[str]
) -> dict[str, float]:
    means = {model: _mean(round_scores(figures, tournament, score, model)) for model in models}
    return {model: value for model, value in means.items() if np.isfinite(value)}


def integrity_checks(
    figures: SeasonFigures, crowd: Sequence[Participant], *, tournament: str = "classic", corr: str, mmc: str
) -> list[IntegrityCheck]:
    """Return the four integrity checks of the tournament's season (module doc), in that order."""
    members = [p for p in crowd if p.tournament == tournament]
    copycats = [p.model for p in members if p.copies_meta_model]
    participants = [p.model for p in members if not p.copies_meta_model and not p.late]
    originals = [p.model for p in members if p.stake and not p.late and not p.copies_meta_model]
    corrs = _mean_scores(figures, tournament, corr, participants)
    mmcs = _mean_scores(figures, tournament, mmc, originals)
    median_corr = float(np.median(list(corrs.values()))) if corrs else float("nan")
    return [
        _meta_model_check(figures, tournament, corr, copycats, median_corr),
        _noise_check(figures, tournament, corr, [p.model for p in members if p.strategy == NOISE_STRATEGY]),
        _copycat_check(figures, tournament, mmc, copycats, mmcs),
        _stake_check(figures, tournament, originals, corrs, median_corr),
    ]


def _meta_model_check(
    figures: SeasonFigures, tournament: str, corr: str, copycats: list[str], median_corr: float
) -> IntegrityCheck:
    claim = "the meta model's mean CORR beats the median participant's"
    meta = _mean(round_scores(figures, tournament, corr, copycats[0])) if copycats else float("nan")
    if not np.isfinite(meta) or not np.isfinite(median_corr):
        return IntegrityCheck(claim, None, "no copycat upload of the meta model was scored")
    return IntegrityCheck(
        claim, meta > median_corr, f"meta model {meta:+.4f} vs median participant {median_corr:+.4f}"
    )


def _noise_check(figures: SeasonFigures, tournament: str, corr: str, noise: list[str]) -> IntegrityCheck:
    claim = f"noise models' mean CORR is about 0 (within 3 standard errors or below {NOISE_FLOOR})"
    parts, held = [], []
    for model in noise:
        values = np.array(list(round_scores(figures, tournament, corr, model).values()))
        if len(values) == 0:
            continue
        mean = float(values.mean())
        error = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("inf")
        held.append(abs(mean) < max(NOISE_FLOOR, 3 * error))
        parts.append(f"{model} {mean:+.4f} ± {error:.4f} over {len(values)} rounds")
    if not held:
        return IntegrityCheck(claim, None, "no noise model was scored")
    return IntegrityCheck(claim, all(held), "; ".join(parts))


def _copycat_check(
    figures: SeasonFigures, tournament: str, mmc: str, copycats: list[str], originals: dict[str, float]
) -> IntegrityCheck:
    claim = f"the copycat's mean MMC is about 0 (below {COPYCAT_MMC_TOLERANCE}) and below the originals'"
    copied = _mean(round_scores(figures, tournament, mmc, copycats[0])) if copycats else float("nan")
    if not np.isfinite(copied) or not originals:
        return IntegrityCheck(claim, None, "no copycat or staked original model was scored on MMC")
    median = float(np.median(list(originals.values())))
    best = max(originals, key=originals.__getitem__)
    passed = abs(copied) < COPYCAT_MMC_TOLERANCE and copied < median
    detail = f"copycat {copied:+.5f} vs originals' median {median:+.5f} (best: {best} {originals[best]:+.5f})"
    return IntegrityCheck(claim, passed, detail)


def _stake_check(
    figures: SeasonFigures, tournament: str, originals: list[str], corrs: dict[str, float], median_corr: float
) -> IntegrityCheck:
    claim = "good models' stakes grow (paid in total) and poor ones (mean CORR < 0) burn"
    paid = total_payouts(figures, tournament)
    good = [m for m in originals if m in paid and corrs.get(m, np.nan) > max(median_corr, 0.0)]
    poor = [m for m in originals if m in paid and corrs.get(m, np.nan) < 0.0]
    if not good or not poor:
        return IntegrityCheck(
            claim, None, f"resolved payouts for {len(good)} good and {len(poor)} poor models"
        )
    parts = [f"{m} {corrs[m]:+.4f} → {paid[m] / 1e9:+,.2f}" for m in [*good, *poor]]
    passed = all(paid[m] > 0 for m in good) and all(paid[m] < 0 for m in poor)
    return IntegrityCheck(claim, passed, "; ".join(parts) + " (mean CORR → tokens paid)")
