"""Payouts: payout factor, gates, clip, the Classic / Signals / Crypto rules and exact nano rounding."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numerai_tools import signals

from crowdalpha.tournament import CLASSIC, CRYPTO, SIGNALS, GateRule, PayoutRule, PayoutTerm
from crowdalpha.tournament.payouts import (
    NANO_PER_TOKEN,
    PayoutError,
    gate_metric,
    gated_at_risk,
    nano_toward_zero,
    payout_factor,
    payout_scores,
    payouts,
    tokens_to_nano,
    treasury_and_burn,
)

TOKEN = NANO_PER_TOKEN


def _stakes(*tokens: float) -> np.ndarray:
    return np.array([round(t * TOKEN) for t in tokens], dtype=np.int64)


def _exact_toward_zero(at_risk: int, fraction: float) -> int:
    exact = Fraction(at_risk) * Fraction(fraction)
    return int(exact)  # int() of a Fraction truncates toward zero


# -- units and the payout factor ------------------------------------------------------------------


def test_tokens_to_nano_is_exact_and_refuses_sub_nano_amounts():
    assert tokens_to_nano(Decimal("72000")) == 72_000 * TOKEN
    assert tokens_to_nano(Decimal("1.000000001")) == TOKEN + 1
    with pytest.raises(PayoutError, match="at most 9 decimal places"):
        tokens_to_nano(Decimal("0.0000000001"))


@pytest.mark.parametrize(
    ("total_tokens", "expected"),
    [(0, 1.0), (50_000, 1.0), (72_000, 1.0), (144_000, 0.5), (720_000, 0.1), (96_000, 0.75)],
)
def test_classic_payout_factor_is_one_up_to_the_threshold_then_threshold_over_total(total_tokens, expected):
    assert payout_factor(total_tokens * TOKEN, CLASSIC.payout.stake_threshold) == expected


def test_payout_factor_is_the_correctly_rounded_quotient_and_never_above_one():
    total = 72_000 * TOKEN + 1
    factor = payout_factor(total, Decimal(72000))
    assert factor == (72_000 * TOKEN) / total and factor <= 1.0
    with pytest.raises(PayoutError, match="must be ≥ 0"):
        payout_factor(-1, Decimal(72000))


# -- worked values of the three tournaments --------------------------------------------------------


def test_classic_payout_by_hand():
    # 0.5 × 2^-5 + 2 × 2^-7 = 2^-5, exact in binary: 64 tokens × 1/32 = 2 tokens
    scores = {"corr20v2": np.array([2.0**-5, -(2.0**-5), 0.1]), "mmc": np.array([2.0**-7, -(2.0**-7), 0.05])}
    # third model: 0.05 + 0.1 = 0.15, clipped to 5 % of 64 = 3.2 tokens
    paid = payouts(CLASSIC.payout, _stakes(64, 64, 64), scores)
    np.testing.assert_array_equal(paid, [2 * TOKEN, -2 * TOKEN, 3_200_000_000])


def test_classic_payout_above_the_threshold_is_scaled_by_the_factor():
    # 144,000 tokens at risk: factor 0.5, so 2^-5 of payout score pays 2^-6 of stake
    at_risk = _stakes(64_000, 80_000)
    scores = {"corr20v2": np.array([2.0**-5, 2.0**-5]), "mmc": np.array([2.0**-7, 2.0**-7])}
    np.testing.assert_array_equal(payouts(CLASSIC.payout, at_risk, scores), at_risk // 64)


def test_signals_payout_by_hand_with_its_one_point_seven_percent_clip():
    # 0.3 × 0.02 + 0.8 × 0.01 = 0.014 → 14 tokens of 1000; 0.3 × 0.05 + 0.8 × 0.01 = 0.023 → clip 0.017
    scores = {"alpha": np.array([0.02, 0.05, -0.05]), "mpc": np.array([0.01, 0.01, -0.01])}
    paid = payouts(SIGNALS.payout, _stakes(1000, 1000, 1000), scores)
    np.testing.assert_allclose(paid, [14 * TOKEN, 17 * TOKEN, -17 * TOKEN], atol=1)
    assert np.all(np.abs(paid) <= [14 * TOKEN, 17 * TOKEN, 17 * TOKEN])


def test_crypto_pays_mmc_alone_clipped_at_five_percent():
    scores = {"mmc": np.array([0.01, 0.08, -0.2])}
    paid = payouts(CRYPTO.payout, _stakes(100, 100, 100), scores)
    np.testing.assert_allclose(paid, [1 * TOKEN, 5 * TOKEN, -5 * TOKEN], atol=1)


def test_the_factor_uses_the_round_total_when_given():
    scores = {"mmc": np.array([0.01])}
    paid = payouts(CRYPTO.payout, _stakes(1_000), scores, total_at_risk_nano=40_000 * TOKEN)
    assert paid[0] == _exact_toward_zero(1_000 * TOKEN, 0.25 * 0.01)


def test_models_without_stake_get_nothing_even_without_a_score():
    scores = {"mmc": np.array([np.nan, 0.02])}
    np.testing.assert_array_equal(payouts(CRYPTO.payout, _stakes(0, 10), scores), [0, 200_000_000])


# -- properties -----------------------------------------------------------------------------------

stake_tokens = st.integers(min_value=0, max_value=11_000_000 * TOKEN)
score_values = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(stake_tokens, score_values, score_values), min_size=1, max_size=30))
def test_payout_sign_follows_the_score_and_stays_within_the_clip(rows):
    at_risk = np.array([r[0] for r in rows], dtype=np.int64)
    scores = {"corr20v2": np.array([r[1] for r in rows]), "mmc": np.array([r[2] for r in rows])}
    paid = payouts(CLASSIC.payout, at_risk, scores)
    payout_score = payout_scores(CLASSIC.payout, scores)
    assert paid.dtype == np.int64
    assert np.all(np.sign(paid) * np.sign(payout_score) >= 0)
    assert np.all(np.abs(paid) <= at_risk * CLASSIC.payout.clip)
    factor = payout_factor(int(at_risk.sum()), CLASSIC.payout.stake_threshold)
    for stake, score, amount in zip(at_risk, payout_score, paid, strict=True):
        fraction = min(max(factor * score, -0.05), 0.05)
        assert amount == _exact_toward_zero(int(stake), fraction)


def test_rounding_toward_zero_is_exact_where_a_float_product_would_overshoot():
    rng = np.random.default_rng(11)
    at_risk = rng.integers(2**53, 11_000_000 * TOKEN, size=20_000, dtype=np.int64)
    fractions = rng.uniform(-0.05, 0.05, size=at_risk.shape)
    ours = nano_toward_zero(at_risk, fractions)
    exact = np.array([_exact_toward_zero(int(a), float(f)) for a, f in zip(at_risk, fractions, strict=True)])
    np.testing.assert_array_equal(ours, exact)
    naive = np.trunc(at_risk.astype(np.float64) * fractions).astype(np.int64)
    assert np.any(np.abs(naive) > np.abs(exact)), "the sample should contain a float overshoot"
    paid_out, _burned = treasury_and_burn(ours)
    allowed = sum(
        Fraction(int(a)) * Fraction(float(f)) for a, f in zip(at_risk, fractions, strict=True) if f > 0
    )
    assert paid_out <= allowed


def test_treasury_pays_the_gains_and_the_losses_burn():
    assert treasury_and_burn(np.array([5, -3, 0, 7, -1], dtype=np.int64)) == (12, 4)


# -- gates ----------------------------------------------------------------------------------------


def test_signals_gates_zero_the_stake_at_and_above_the_limits():
    at_risk = _stakes(10, 10, 10, 10, 10)
    metrics = {
        "churn": np.array([0.10, 0.15, 0.149999, 0.05, 0.0]),
        "turnover": np.array([0.20, 0.10, 0.10, 0.25, 0.2499]),
    }
    np.testing.assert_array_equal(gated_at_risk(SIGNALS.gates, at_risk, metrics), _stakes(10, 0, 10, 0, 10))


def test_gate_metric_is_the_max_over_the_lookback_and_one_without_a_previous_submission():
    gate = GateRule("churn", 0.15, lookback_rounds=2)
    values = np.array(
        [
            [0.05, 0.10, 0.90],  # the 0.90 is three comparisons back: outside the lookback
            [np.nan, 0.12, np.nan],  # one comparable previous submission
            [np.nan, np.nan, np.nan],  # none: numerai-tools reports 1.0
            [-0.2, 0.0, 0.0],  # churn magnitudes are compared
        ]
    )
    np.testing.assert_allclose(gate_metric(values, gate), [0.10, 0.12, 1.0, 0.2])
    gated = gated_at_risk((gate,), _stakes(1, 1, 1, 1), {"churn": values})
    np.testing.assert_array_equal(gated, _stakes(1, 1, 0, 0))


def test_no_gates_keep_every_stake():
    np.testing.assert_array_equal(gated_at_risk(CLASSIC.gates, _stakes(3, 4), {}), _stakes(3, 4))


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at_risk", "scores", "message"),
    [
        (_stakes(1), {"corr20v2": np.array([0.1])}, "needs the 'mmc' score"),
        (_stakes(1), {"corr20v2": np.array([np.nan]), "mmc": np.array([0.1])}, r"models \[0\] have a stake"),
        (np.array([1.5]), {"corr20v2": np.array([0.1]), "mmc": np.array([0.1])}, "integer nano-tokens"),
        (np.array([-1]), {"corr20v2": np.array([0.1]), "mmc": np.array([0.1])}, "must be ≥ 0"),
        (_stakes(1, 2), {"corr20v2": np.array([0.1]), "mmc": np.array([0.1])}, "scores have 1 models"),
        (_stakes(1), {"corr20v2": np.array([0.1, 0.2]), "mmc": np.array([0.1])}, "one value per model"),
        (_stakes(1), {"corr20v2": np.array([np.inf]), "mmc": np.array([0.1])}, "must be finite"),
    ],
)
def test_bad_payout_inputs_name_the_rule(at_risk, scores, message):
    with pytest.raises(PayoutError, match=message):
        payouts(CLASSIC.payout, at_risk, scores)


def test_a_given_total_below_the_stakes_is_refused():
    with pytest.raises(PayoutError, match="below the sum"):
        payouts(CRYPTO.payout, _stakes(10), {"mmc": np.array([0.01])}, total_at_risk_nano=TOKEN)


def test_a_missing_gate_metric_is_refused():
    with pytest.raises(PayoutError, match="needs the 'turnover'"):
        gated_at_risk(SIGNALS.gates, _stakes(1), {"churn": np.array([0.0])})


def test_any_payout_rule_from_config_data_works():
    rule = PayoutRule((PayoutTerm("a", 1.0), PayoutTerm("b", -1.0)), clip=1.0, stake_threshold=Decimal(1))
    paid = payouts(rule, _stakes(1, 1), {"a": np.array([0.5, 0.25]), "b": np.array([0.25, 0.5])})
    # 2 tokens at risk above a 1-token threshold: factor 0.5
    np.testing.assert_array_equal(paid, [TOKEN // 8, -(TOKEN // 8)])


def _signals_submission(rng: np.random.Generator, tickers: pd.Index) -> pd.Series:
    return pd.Series(rng.uniform(0.01, 0.99, len(tickers)), index=tickers, name="signal")


def test_signals_gates_agree_with_numerai_tools_max_churn_and_turnover():
    rng = np.random.default_rng(12)
    tickers = pd.Index([f"T{i:03d} US" for i in range(150)], name="numerai_ticker")
    neutralizer = pd.DataFrame(rng.normal(size=(150, 3)), index=tickers, columns=["n0", "n1", "n2"])
    neutralizer /= np.linalg.norm(neutralizer, axis=0)
    weights = pd.Series(rng.uniform(0.5, 1.5, 150), index=tickers, name="sample_weights")
    current = _signals_submission(rng, tickers)
    # seven earlier submissions, most recent first: the five recent ones close to the current one
    blends = [0.0, 0.02, 0.04, 0.06, 0.08, 0.6, 0.9]
    previous = [((1 - b) * current + b * _signals_submission(rng, tickers)).rename("signal") for b in blends]

    def numerai_max(prev: list[pd.Series]) -> tuple[float, float]:
        dates = [str(k) for k in range(len(prev))]
        return signals.calculate_max_churn_and_turnover(
            current,
            neutralizer,
            weights,
            dict(zip(dates, prev, strict=True)),
            dict.fromkeys(dates, neutralizer),
            dict.fromkeys(dates, weights),
        )

    per_comparison = np.array([numerai_max([p]) for p in previous])  # (comparisons, 2)
    churn_values = per_comparison[None, :, 0]
    turnover_values = per_comparison[None, :, 1]
    oracle = numerai_max(previous[:5])  # the live rule passes the five most recent submissions
    churn_gate, turnover_gate = SIGNALS.gates
    assert gate_metric(churn_values, churn_gate)[0] == pytest.approx(oracle[0], abs=1e-12)
    assert gate_metric(turnover_values, turnover_gate)[0] == pytest.approx(oracle[1], abs=1e-12)
    assert gate_metric(np.full((1, 5), np.nan), churn_gate)[0] == numerai_max([])[0] == 1.0
    assert oracle[0] < churn_gate.below and oracle[1] < turnover_gate.below
    assert numerai_max(previous)[1] >= turnover_gate.below  # the older two would fail the gate
    at_risk = gated_at_risk(SIGNALS.gates, _stakes(5), {"churn": churn_values, "turnover": turnover_values})
    assert at_risk[0] == 5 * TOKEN
