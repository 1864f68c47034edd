"""The worked values of the reference (§1.5–§1.9 and §6.1, computed with numerai-tools 0.7.2),
pinned against crowdalpha's own functions — no oracle is called here.

Values the reference prints to full precision are pinned to 1e-12; values it rounds are pinned to
their printed digits and, to 1e-12, to their closed form (computed with the standard library).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

import crowdalpha.scoring as scoring
from crowdalpha.scoring import correlations as correlation
from crowdalpha.scoring import portfolio, ranking, transforms

# The package re-exports functions named ``churn`` and ``correlation``, shadowing these modules.
from crowdalpha.scoring import stability as churn_core

EXACT = 1e-12
IDS = [f"n{i}" for i in range(10)]
PREDICTIONS = pd.DataFrame({"model": [0.1, 0.9, 0.3, 0.3, 0.5, 0.7, 0.2, 0.8, 0.6, 0.4]}, index=IDS)
TARGETS = pd.Series([0, 1, 0.25, 0.5, 0.5, 0.75, 0.25, 1, 0.5, 0.5], index=IDS, name="target")
META_MODEL = pd.Series([0.2, 0.8, 0.4, 0.1, 0.5, 0.6, 0.3, 0.9, 0.7, 0.45], index=IDS, name="meta_model")
FEATURES = pd.DataFrame(
    {"f1": [0, 1, 2, 3, 4, 0, 1, 2, 3, 4], "f2": [4, 4, 3, 3, 2, 2, 1, 1, 0, 0]}, index=IDS, dtype=float
)


def _only(scores: pd.Series) -> float:
    assert list(scores.index) == ["model"]
    return float(scores.iloc[0])


# ----------------------------------------------------------------------------- §6.1 scores


def test_tie_kept_rank_of_the_reference_predictions() -> None:
    expected = [0.05, 0.95, 0.30, 0.30, 0.55, 0.75, 0.15, 0.85, 0.65, 0.45]
    np.testing.assert_allclose(scoring.tie_kept_rank(PREDICTIONS)["model"], expected, rtol=0, atol=EXACT)
    np.testing.assert_allclose(ranking.tie_kept_rank(PREDICTIONS["model"].to_numpy()), expected, atol=EXACT)


def test_numerai_corr_of_the_reference_vector() -> None:
    assert _only(scoring.numerai_corr(PREDICTIONS, TARGETS)) == pytest.approx(0.9558684782681991, abs=EXACT)
    core = correlation.numerai_corr(PREDICTIONS["model"].to_numpy(), TARGETS.to_numpy())
    assert core == pytest.approx(0.9558684782681991, abs=EXACT)


def test_numerai_corr_without_target_power_of_the_reference_vector() -> None:
    score = _only(scoring.numerai_corr(PREDICTIONS, TARGETS, target_pow15=False))
    assert score == pytest.approx(0.945931849284517, abs=EXACT)


def test_correlation_contribution_of_the_reference_vector() -> None:
    score = _only(scoring.correlation_contribution(PREDICTIONS, META_MODEL, TARGETS))
    assert score == pytest.approx(0.33872665737831675, abs=EXACT)


def test_feature_neutral_corr_of_the_reference_vector() -> None:
    score = _only(scoring.feature_neutral_corr(PREDICTIONS, FEATURES, TARGETS))
    assert score == pytest.approx(0.9440631854816325, abs=EXACT)


def test_neutral_correlation_of_the_reference_vector() -> None:
    score = _only(scoring.neutral_correlation(PREDICTIONS, FEATURES, TARGETS))
    assert score == pytest.approx(0.9472925791461713, abs=EXACT)


def test_neutral_contribution_of_the_reference_vector() -> None:
    score = _only(scoring.neutral_contribution(PREDICTIONS, META_MODEL, FEATURES, TARGETS))
    assert score == pytest.approx(0.2816800019779812, abs=EXACT)


@pytest.mark.parametrize(
    ("neutral_churn", "printed"), [(0.15, 0.7550813), (0.2, 0.5378828), (0.3, 0.2384058)]
)
def test_neutral_churn_penalty_of_the_reference_values(neutral_churn: float, printed: float) -> None:
    penalty = scoring.neutral_churn_penalty(neutral_churn)
    assert penalty == pytest.approx(printed, abs=5e-8)
    assert penalty == pytest.approx(2 / (1 + math.exp(10 * (neutral_churn - 0.1))), abs=EXACT)


def test_neutral_churn_penalty_keeps_the_full_payout_up_to_the_threshold() -> None:
    assert scoring.neutral_churn_penalty(0.0) == 1.0
    assert scoring.neutral_churn_penalty(0.1) == 1.0
    assert scoring.neutral_churn_penalty(0.5, threshold=0.6) == 1.0
    assert scoring.neutral_churn_penalty(2.0, scaling_factor=1e4) == 0.0


# ----------------------------------------------------------------------------- §1.8 Signals vectors

SIGNALS = pd.DataFrame({"a": [1.0, 2, 3, 4, 5], "b": [1.0, 2, 1, 2, 1]})
STAKES = pd.Series([0.6, 0.4], index=["a", "b"])
NEUTRALIZERS = pd.DataFrame([[1.0, 5], [2, 4], [3, 3], [4, 2], [5, 1]])
SAMPLE_WEIGHTS = pd.Series([3.0, 2, 1, 2, 3])
SIGNAL_TARGETS = pd.Series([1.0, 2, 3, 2, 1])
MPC = [-0.0015800687539573562, 0.00237010313093603]


def test_meta_portfolio_contribution_of_the_reference_vector() -> None:
    mpc = scoring.meta_portfolio_contribution(SIGNALS, STAKES, NEUTRALIZERS, SAMPLE_WEIGHTS, SIGNAL_TARGETS)
    assert list(mpc.index) == ["a", "b"]
    np.testing.assert_allclose(mpc, MPC, rtol=0, atol=EXACT)
    core = portfolio.meta_portfolio_contribution(
        SIGNALS.to_numpy(),
        STAKES.to_numpy(),
        NEUTRALIZERS.to_numpy(),
        SAMPLE_WEIGHTS.to_numpy(),
        SIGNAL_TARGETS,
    )
    np.testing.assert_allclose(core, MPC, rtol=0, atol=EXACT)


def test_meta_portfolio_contribution_normalises_stakes() -> None:
    mpc = scoring.meta_portfolio_contribution(
        SIGNALS, STAKES * 250, NEUTRALIZERS, SAMPLE_WEIGHTS, SIGNAL_TARGETS
    )
    np.testing.assert_allclose(mpc, MPC, rtol=0, atol=EXACT)


def test_alpha_of_a_signal_orthogonal_to_the_targets_is_zero() -> None:
    score = scoring.alpha(
        pd.DataFrame({"a": [1.0, 2, 3, 4, 5]}),
        NEUTRALIZERS,
        pd.Series([1, 0.5, 1, 0.5, 1]),
        pd.Series([1.0, 0, 1, 0, 1]),
    )
    assert abs(float(score.iloc[0])) < 1e-14


# ----------------------------------------------------------------------------- §6.1 primitives

UP = pd.Series([0.0, 1, 2, 3, 4], name="up")
DOWN = pd.Series([4.0, 3, 2, 1, 0], name="down")
UP_DOWN = pd.Series([0.0, 1, 2, 1, 0], name="up_down")
OSCILLATE = pd.Series([1.0, 0, 1, 0, 1], name="oscillate")
CONSTANT = pd.Series([1.0, 1, 1, 1, 1], name="constant")


def test_tie_kept_and_tie_broken_rank_of_an_oscillating_series() -> None:
    np.testing.assert_allclose(scoring.tie_kept_rank(OSCILLATE), [0.7, 0.2, 0.7, 0.2, 0.7], atol=EXACT)
    np.testing.assert_allclose(scoring.tie_broken_rank(OSCILLATE), [0.5, 0.1, 0.7, 0.3, 0.9], atol=EXACT)
    np.testing.assert_allclose(ranking.tie_broken_rank(OSCILLATE.to_numpy()), [0.5, 0.1, 0.7, 0.3, 0.9])


def test_tie_kept_rank_gaussianize_pow_1_5_of_quartiles() -> None:
    transformed = scoring.tie_kept_rank__gaussianize__pow_1_5(pd.DataFrame({"x": [0, 0.25, 0.5, 0.75, 1]}))
    np.testing.assert_allclose(transformed["x"], [-1.45079, -0.37975, 0, 0.37975, 1.45079], atol=5e-6)
    quantile = NormalDist().inv_cdf
    exact = [math.copysign(abs(quantile(p)) ** 1.5, p - 0.5) for p in (0.1, 0.3, 0.5, 0.7, 0.9)]
    np.testing.assert_allclose(transformed["x"], exact, rtol=0, atol=EXACT)


def test_power_keeps_the_sign() -> None:
    values = [0, -0.0, 0.5, -0.5, 1, -1, 2, -2]
    root_eighth, two_root_two = math.sqrt(0.125), 2 * math.sqrt(2)
    exact = [0, 0, root_eighth, -root_eighth, 1, -1, two_root_two, -two_root_two]
    np.testing.assert_allclose(
        scoring.power(pd.DataFrame({"x": values}), 1.5)["x"],
        [0, 0, 0.35355, -0.35355, 1, -1, 2.82843, -2.82843],
        atol=5e-6,
    )
    np.testing.assert_allclose(
        scoring.power(pd.DataFrame({"x": values}), 1.5)["x"], exact, rtol=0, atol=EXACT
    )
    np.testing.assert_allclose(transforms.power(np.array(values), 1.5), exact, rtol=0, atol=EXACT)


def test_orthogonalize_removes_the_projection() -> None:
    result = scoring.orthogonalize(np.arange(5.0), np.array([1.0, 0, 1, 0, 1]))
    np.testing.assert_allclose(result, [-2, 1, 0, 3, 2], rtol=0, atol=EXACT)
    block = scoring.orthogonalize(np.column_stack([np.arange(5.0), np.ones(5)]), np.array([1.0, 0, 1, 0, 1]))
    np.testing.assert_allclose(block, [[-2, 0], [1, 1], [0, 0], [3, 1], [2, 0]], rtol=0, atol=EXACT)


@pytest.mark.parametrize(("other", "expected"), [(UP, 0.0), (UP_DOWN, 1.0), (OSCILLATE, 1.0), (DOWN, 2.0)])
def test_churn_of_the_reference_series(other: pd.Series, expected: float) -> None:
    assert scoring.churn(UP, other) == pytest.approx(expected, abs=EXACT)
    assert churn_core.churn(UP.to_numpy(), other.to_numpy()) == pytest.approx(expected, abs=EXACT)


@pytest.mark.parametrize(
    ("other", "expected"), [(UP, 0.0), (UP_DOWN, 0.5), (OSCILLATE, 0.5), (DOWN, 1.0), (CONSTANT, 0.0)]
)
def test_top_bottom_churn_of_the_reference_series(other: pd.Series, expected: float) -> None:
    assert scoring.churn(UP, other, top_bottom=2) == pytest.approx(expected, abs=EXACT)
    assert churn_core.churn(UP.to_numpy(), other.to_numpy(), top_bottom=2) == pytest.approx(
        expected, abs=EXACT
    )


@pytest.mark.parametrize(("other", "expected"), [(UP, 0.0), (UP_DOWN, 3.0), (OSCILLATE, 4.5), (DOWN, 6.0)])
def test_turnover_of_the_reference_series(other: pd.Series, expected: float) -> None:
    assert scoring.turnover(UP, other) == pytest.approx(expected, abs=EXACT)
    assert churn_core.turnover(UP.to_numpy(), other.to_numpy()) == pytest.approx(expected, abs=EXACT)
