"""Counterfactual payouts: a season's resolved rounds re-paid under other payout rules, side by side.

For each resolved round the at-risk stakes fixed at close and the final payout scores are read from
the season's figures and fed to the pure rule :func:`crowdalpha.tournament.payouts.payouts`, once
per variant — the same arithmetic resolution uses (a staked model without a payout score neither
earns nor burns; the payout factor uses the round's total at risk). The tournament's own rule,
re-applied this way, reproduces the ledger's payouts to the nano-token, which the tests check.
Gated tournaments (Signals) need each model's churn history; they are not re-paid here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from crowdalpha.sim.report import SeasonFigures
from crowdalpha.tournament.config import PayoutRule, PayoutTerm, TournamentConfig
from crowdalpha.tournament.payouts import payout_scores, payouts

ACTUAL = "actual"
"""The variant name of the tournament's own payout rule."""


@dataclass(frozen=True)
class PayoutVariant:
    """A named payout rule to re-pay the season under."""

    name: str
    rule: PayoutRule


def payout_variant(
    name: str,
    base: PayoutRule,
    *,
    multipliers: dict[str, float] | None = None,
    clip: float | None = None,
    stake_threshold: Decimal | int | None = None,
) -> PayoutVariant:
    """Return ``base`` with the given multipliers (score → multiplier; 0 drops a term), clip or threshold."""
    terms = base.terms
    if multipliers is not None:
        terms = tuple(PayoutTerm(score, float(value)) for score, value in multipliers.items() if value != 0)
    return PayoutVariant(
        name,
        PayoutRule(
            terms=terms,
            clip=base.clip if clip is None else float(clip),
            stake_threshold=base.stake_threshold if stake_threshold is None else Decimal(stake_threshold),
        ),
    )


def _final(figures: SeasonFigures, config: TournamentConfig, number: int, models: list[str], score: str):
    horizon = next(item.horizon for item in config.scores if item.name == score)
    return np.array(
        [figures.scores.get((config.name, number, model, score, horizon), np.nan) for model in models]
    )


def counterfactual_payouts(
    figures: SeasonFigures, config: TournamentConfig, variants: Sequence[PayoutVariant]
) -> pd.DataFrame:
    """Return one row per (resolved round, staked model): its at-risk stake and payout (nano) per variant.

    Columns: ``tournament, round, model, at_risk_nano``, one ``<score>`` column per payout score
    any variant uses, then ``payout_<variant>`` (nano-tokens, int64; − burned) for the tournament's
    own rule (``payout_actual``) and each of ``variants``.
    """
    if config.gates:
        raise ValueError(
            f"{config.name} gates its stakes (churn, turnover); counterfactual payouts need ungated rules"
        )
    every = [PayoutVariant(ACTUAL, config.payout), *variants]
    score_names = list(dict.fromkeys(term.score for variant in every for term in variant.rule.terms))
    frames = []
    resolved = sorted(
        n for (t, n), state in figures.states.items() if t == config.name and state == "resolved"
    )
    for number in resolved:
        models = sorted(model for (t, n, model) in figures.at_risk if (t, n) == (config.name, number))
        if not models:
            continue
        at_risk = np.array([figures.at_risk[(config.name, number, m)] for m in models], dtype=np.int64)
        scores = {score: _final(figures, config, number, models, score) for score in score_names}
        frame = pd.DataFrame(
            {"tournament": config.name, "round": number, "model": models, "at_risk_nano": at_risk}
        )
        for score in score_names:
            frame[score] = scores[score]
        for variant in every:
            terms = {term.score: scores[term.score] for term in variant.rule.terms}
            # as resolution does: a staked model without a payout score neither earns nor burns
            staked = np.where(np.isnan(payout_scores(variant.rule, terms)), 0, at_risk)
            terms = {score: np.nan_to_num(values) for score, values in terms.items()}
            total = int(staked.sum(dtype=object))
            frame[f"payout_{variant.name}"] = payouts(variant.rule, staked, terms, total_at_risk_nano=total)
        frames.append(frame)
    if not frames:
        columns = ["tournament", "round", "model", "at_risk_nano", *score_names]
        return pd.DataFrame(columns=[*columns, *(f"payout_{v.name}" for v in every)])
    return pd.concat(frames, ignore_index=True)


def counterfactual_totals(table: pd.DataFrame) -> pd.DataFrame:
    """Return each model's season total per variant (nano-tokens), plus paid and burned rows per variant."""
    columns = [c for c in table.columns if c.startswith("payout_")]
    by_model = table.groupby("model")[columns].sum().astype(np.int64)
    paid = table[columns].clip(lower=0).sum().astype(np.int64).rename("(paid)")
    burned = (-table[columns].clip(upper=0)).sum().astype(np.int64).rename("(burned)")
    return pd.concat([by_model, paid.to_frame().T, burned.to_frame().T])


def default_variants(config: TournamentConfig) -> list[PayoutVariant]:
    """Return the default rules to re-pay a season under: CORR only, MMC-heavy, wider clip, low threshold."""
    rule = config.payout
    corr = rule.terms[0].score
    mmc = next((term.score for term in rule.terms if term.score != corr), corr)
    return [
        payout_variant("corr_only", rule, multipliers={corr: 1.0}),
        payout_variant("mmc_heavy", rule, multipliers={corr: 0.5, mmc: 3.0} if mmc != corr else {corr: 2.0}),
        payout_variant("clip_0.10", rule, clip=0.10),
        payout_variant("threshold_1000", rule, stake_threshold=1000),
    ]
