"""Properties every score must have whatever the data: only ranks matter, signs flip, neutralising
removes exposure, the meta model contributes nothing to itself, correlations stay in [-1, 1]."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.special import expit

import crowdalpha.scoring as scoring
from crowdalpha.scoring import transforms

PROPERTY = settings(max_examples=50, deadline=None)
BUCKETS = (0.0, 0.25, 0.5, 0.75, 1.0)

MONOTONE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "affine": lambda x: 3.0 * x - 7.0,
    "shift_negative": lambda x: x - 1e6,
    "cube": lambda x: x**3,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "logistic": lambda x: expit((x - 5e5) / 1e5),
    "arctan": lambda x: np.arctan(x / 1000.0),
}


@dataclass(frozen=True)
class Era:
    predictions: pd.DataFrame
    targets: pd.Series
    meta_model: pd.Series
    features: pd.DataFrame


@st.composite
def eras(draw: st.DrawFn, *, ties: bool = True, n_models: int = 2) -> Era:
    """An era of 12–60 ids: integer-valued predictions (tied or all distinct), bucketed targets,
    a distinct-valued meta model and two 0..4 features."""
    n_ids = draw(st.integers(12, 60))
    if ties:
        values = st.lists(st.integers(0, 12), min_size=n_ids, max_size=n_ids)
    else:
        values = st.lists(st.integers(0, 10**6), min_size=n_ids, max_size=n_ids, unique=True)
    columns = {f"model_{k}": draw(values) for k in range(n_models)}
    targets = draw(st.lists(st.sampled_from(BUCKETS), min_size=n_ids, max_size=n_ids))
    assume(len(set(targets)) > 1)
    meta_model = draw(st.lists(st.integers(0, 10**6), min_size=n_ids, max_size=n_ids, unique=True))
    features = {
        name: draw(st.lists(st.integers(0, 4), min_size=n_ids, max_size=n_ids)) for name in ("f1", "f2")
    }
    ids = [f"id{i:03d}" for i in range(n_ids)]
    return Era(
        pd.DataFrame(columns, index=ids, dtype=np.float64),
        pd.Series(targets, index=ids, name="target"),
        pd.Series(meta_model, index=ids, name="meta_model", dtype=np.float64),
        pd.DataFrame(features, index=ids, dtype=np.float64),
    )


def _assert_same_scores(first: pd.Series, second: pd.Series) -> None:
    np.testing.assert_allclose(first.to_numpy(), second.to_numpy(), rtol=0, atol=1e-12, equal_nan=True)


# ----------------------------------------------------------------------------- only ranks matter


@PROPERTY
@given(era=eras(), transform=st.sampled_from(sorted(MONOTONE)))
def test_numerai_corr_is_invariant_to_strictly_increasing_transforms(era: Era, transform: str) -> None:
    moved = era.predictions.apply(MONOTONE[transform])
    _assert_same_scores(
        scoring.numerai_corr(moved, era.targets), scoring.numerai_corr(era.predictions, era.targets)
    )


@PROPERTY
@given(era=eras(), transform=st.sampled_from(sorted(MONOTONE)))
def test_mmc_is_invariant_to_strictly_increasing_transforms(era: Era, transform: str) -> None:
    moved = era.predictions.apply(MONOTONE[transform])
    _assert_same_scores(
        scoring.correlation_contribution(moved, era.meta_model, era.targets),
        scoring.correlation_contribution(era.predictions, era.meta_model, era.targets),
    )
    moved_meta_model = MONOTONE[transform](era.meta_model)
    _assert_same_scores(
        scoring.correlation_contribution(era.predictions, moved_meta_model, era.targets),
        scoring.correlation_contribution(era.predictions, era.meta_model, era.targets),
    )


@PROPERTY
@given(era=eras(), transform=st.sampled_from(sorted(MONOTONE)))
def test_fnc_is_invariant_to_strictly_increasing_transforms(era: Era, transform: str) -> None:
    moved = era.predictions.apply(MONOTONE[transform])
    _assert_same_scores(
        scoring.feature_neutral_corr(moved, era.features, era.targets),
        scoring.feature_neutral_corr(era.predictions, era.features, era.targets),
    )


# ----------------------------------------------------------------------------- signs


@PROPERTY
@given(era=eras(ties=False))
def test_flipping_the_sign_of_predictions_flips_corr(era: Era) -> None:
    corr = scoring.numerai_corr(era.predictions, era.targets)
    flipped = scoring.numerai_corr(-era.predictions, era.targets)
    assert np.isfinite(corr).all()
    np.testing.assert_allclose(flipped, -corr, rtol=0, atol=1e-12)


@PROPERTY
@given(era=eras(ties=False))
def test_flipping_the_sign_of_predictions_flips_mmc(era: Era) -> None:
    mmc = scoring.correlation_contribution(era.predictions, era.meta_model, era.targets)
    flipped = scoring.correlation_contribution(-era.predictions, era.meta_model, era.targets)
    assert np.isfinite(mmc).all()
    np.testing.assert_allclose(flipped, -mmc, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- neutralisation


@st.composite
def blocks(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float]:
    """(values ids × 3, neutralisers ids × 1..3, proportion) with continuous, non-degenerate entries."""
    n_ids = draw(st.integers(8, 60))
    n_neutralizers = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    neutralizers = rng.standard_normal((n_ids, n_neutralizers)) * draw(st.sampled_from([1e-3, 1.0, 50.0]))
    exposure = rng.standard_normal((n_neutralizers, 3)) * draw(st.sampled_from([0.0, 1.0, 10.0]))
    values = neutralizers @ exposure + rng.standard_normal((n_ids, 3)) + draw(st.floats(-5, 5))
    return values, neutralizers, draw(st.sampled_from([1.0, 1.0, 0.5]))


def _pearson_with_each(residual: np.ndarray, neutralizers: np.ndarray) -> np.ndarray:
    centered = residual - residual.mean(axis=0)
    columns = neutralizers - neutralizers.mean(axis=0)
    scale = np.outer(np.linalg.norm(columns, axis=0), np.linalg.norm(centered, axis=0))
    return (columns.T @ centered) / scale


@PROPERTY
@given(block=blocks())
def test_neutralizing_removes_the_correlation_with_every_neutralizer(
    block: tuple[np.ndarray, np.ndarray, float],
) -> None:
    values, neutralizers, proportion = block
    frame = pd.DataFrame(values, columns=["a", "b", "c"])
    neutral_frame = pd.DataFrame(neutralizers)
    full = scoring.neutralize(frame, neutral_frame).to_numpy()
    np.testing.assert_allclose(full, transforms.neutralize(values, neutralizers), rtol=0, atol=1e-12)
    np.testing.assert_allclose(full.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(_pearson_with_each(full, neutralizers), 0.0, atol=1e-9)
    partial = scoring.neutralize(frame, neutral_frame, proportion).to_numpy()
    np.testing.assert_allclose(partial, proportion * full + (1 - proportion) * values, atol=1e-9)


@PROPERTY
@given(block=blocks())
def test_neutral_correlation_scores_the_part_of_predictions_free_of_the_neutralizers(
    block: tuple[np.ndarray, np.ndarray, float],
) -> None:
    values, neutralizers, _ = block
    ids = [f"id{i:03d}" for i in range(len(values))]
    frame = pd.DataFrame(values, index=ids, columns=["a", "b", "c"])
    neutral_frame = pd.DataFrame(neutralizers, index=ids)
    # A target made of the neutralisers alone carries nothing a neutral prediction can correlate with.
    exposure_only = pd.Series(neutralizers @ np.arange(1.0, neutralizers.shape[1] + 1), index=ids)
    scores = scoring.neutral_correlation(frame, neutral_frame, exposure_only)
    np.testing.assert_allclose(scores, 0.0, atol=1e-9)


# ----------------------------------------------------------------------------- contribution


@PROPERTY
@given(era=eras(n_models=1))
def test_the_meta_model_contributes_nothing_to_itself(era: Era) -> None:
    itself = era.meta_model.to_frame("meta_model")
    assert abs(scoring.correlation_contribution(itself, era.meta_model, era.targets).iloc[0]) < 1e-12
    neutral = scoring.neutral_contribution(itself, era.meta_model, era.features, era.targets)
    assert abs(neutral.iloc[0]) < 1e-12
    staked = era.predictions.assign(meta_model=era.meta_model)
    contributions = scoring.correlation_contribution(staked, era.meta_model, era.targets)
    assert abs(contributions["meta_model"]) < 1e-12


# ----------------------------------------------------------------------------- bounds


@PROPERTY
@given(era=eras(n_models=3))
def test_correlations_stay_between_minus_one_and_one(era: Era) -> None:
    for scores in (
        scoring.numerai_corr(era.predictions, era.targets),
        scoring.numerai_corr(era.predictions, era.targets, target_pow15=False),
        scoring.neutral_correlation(era.predictions, era.features, era.targets),
        scoring.feature_neutral_corr(era.predictions, era.features, era.targets),
        scoring.cwmm(era.predictions, era.meta_model),
    ):
        finite = scores.dropna()
        assert ((finite >= -1.0) & (finite <= 1.0)).all()
        constant = era.predictions.nunique() == 1
        assert scores[constant].isna().all()
