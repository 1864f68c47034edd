"""Integrity checks of a season on a market with known hidden alpha: does the tournament reward signal?

Each check reads the season's figures (the scores and payouts the production path stored) and
says pass or fail with the figures it compared:

- the meta model's mean CORR beats the median participant's (the meta model is scored as the
  copycat's late upload of it — the copycat submits exactly the published meta model);
- every noise model's mean CORR is about 0 (within 3 standard errors of its per-round CORRs, or
  below ``NOISE_FLOOR``);
- the copycat's mean MMC is about 0 (below ``COPYCAT_MMC_TOLERANCE``) and well below the best
  staked original's (by more than the tolerance): the meta model adds nothing to itself, while the
  models it is made of contribute (their stake-weighted MMC is itself near 0, so the best one is
  the fair comparison);
- good models' stakes grow and poor ones burn: over the resolved rounds, every staked model that
  the tournament's payout rule, applied to its final scores, pays on average (a positive mean
  clipped payout fraction) was paid in total by the ledger, and every one it burns on average
  lost stake in total.

CORR and MMC checks use each round's latest score (the final one once resolved), so the whole
season counts; the stake check uses the resolved rounds, the only ones that paid.

A check whose models the crowd lacks (no copycat, no noise model, nothing resolved) is reported as
not measured (``passed is None``), never as passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crowdalpha.sim.participants import Participant
from crowdalpha.sim.report import SeasonFigures, round_scores, total_payouts
from crowdalpha.tournament.config import TournamentConfig
from crowdalpha.tournament.payouts import payout_factor, payout_fractions

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
    figures: SeasonFigures, crowd: Sequence[Participant], config: TournamentConfig, *, corr: str, mmc: str
) -> list[IntegrityCheck]:
    """Return the four integrity checks of the tournament's season (module doc), in that order."""
    tournament = config.name
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
        _stake_check(figures, config, originals),
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
    claim = (
        f"the copycat's mean MMC is about 0 (below {COPYCAT_MMC_TOLERANCE}), well below the best original's"
    )
    copied = _mean(round_scores(figures, tournament, mmc, copycats[0])) if copycats else float("nan")
    if not np.isfinite(copied) or not originals:
        return IntegrityCheck(claim, None, "no copycat or staked original model was scored on MMC")
    best = max(originals, key=originals.__getitem__)
    passed = abs(copied) < COPYCAT_MMC_TOLERANCE and copied < originals[best] - COPYCAT_MMC_TOLERANCE
    median = float(np.median(list(originals.values())))
    detail = f"copycat {copied:+.5f} vs best original {best} {originals[best]:+.5f} (median {median:+.5f})"
    return IntegrityCheck(claim, passed, detail)


def mean_payout_fractions(
    figures: SeasonFigures, config: TournamentConfig, models: Sequence[str]
) -> dict[str, float]:
    """Return each model's mean earned fraction of stake per resolved round, from its final scores.

    Per round: ``clip(payout_factor · Σ multiplier · final score, ±clip)`` — the tournament's rule
    (:func:`crowdalpha.tournament.payouts.payout_fractions`) applied to the scores, not read from the
    ledger, so the check compares what the rule says a model earns with what the ledger paid.
    """
    horizons = {score.name: score.horizon for score in config.scores}
    rule = config.payout
    fractions: dict[str, list[float]] = {}
    rounds = sorted({n for (t, n, _) in figures.payouts if t == config.name})
    for number in rounds:
        staked = [
            m for (t, n, m), nano in figures.at_risk.items() if (t, n) == (config.name, number) and nano
        ]
        total = sum(figures.at_risk[(config.name, number, m)] for m in staked)
        scores = {
            term.score: np.array(
                [
                    figures.scores.get((config.name, number, m, term.score, horizons[term.score]), np.nan)
                    for m in staked
                ]
            )
            for term in rule.terms
        }
        factor = payout_factor(total, rule.stake_threshold) if total else 1.0
        for model, value in zip(staked, payout_fractions(rule, scores, factor), strict=True):
            if model in models and np.isfinite(value):
                fractions.setdefault(model, []).append(float(value))
    return {model: float(np.mean(values)) for model, values in fractions.items()}


def _stake_check(figures: SeasonFigures, config: TournamentConfig, originals: list[str]) -> IntegrityCheck:
    claim = "good models' stakes grow and poor ones burn (by the rule's mean payout on their scores)"
    paid = total_payouts(figures, config.name)
    scores = mean_payout_fractions(figures, config, [m for m in originals if m in paid])
    good = sorted((m for m in scores if scores[m] > 0), key=lambda m: -scores[m])
    poor = sorted((m for m in scores if scores[m] < 0), key=lambda m: scores[m])
    if not good or not poor:
        return IntegrityCheck(
            claim, None, f"resolved payouts for {len(good)} good and {len(poor)} poor models"
        )
    parts = [f"{m} {scores[m]:+.2%} → {paid[m] / 1e9:+,.2f}" for m in [*good, *poor]]
    passed = all(paid[m] > 0 for m in good) and all(paid[m] < 0 for m in poor)
    return IntegrityCheck(
        claim, passed, "; ".join(parts) + " (mean payout per round as a share of stake → tokens paid)"
    )
