"""The numpy core: shapes in and out, equality with the pandas front, NaN handling of ranks,
independence from the thread count, and the errors that name the broken rule."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtri

import crowdalpha.scoring as scoring
from crowdalpha.scoring import ScoringError, contribution, portfolio, ranking, transforms
from crowdalpha.scoring import correlations as correlation
from crowdalpha.scoring import crowd as crowd_core

# The package re-exports functions named ``churn`` and ``correlation``, shadowing these modules.
from crowdalpha.scoring import stability as churn_core

SEEDS = (3, 17, 29)
BUCKETS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


def _era(seed: int, n_ids: int = 250, n_models: int = 6) -> dict[str, np.ndarray]:
    """Aligned, complete arrays of one era (ids × models), predictions with ties."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal(n_ids)
    predictions = (
        latent[:, None] * rng.uniform(0, 0.5, n_models) + rng.standard_normal((n_ids, n_models))
    ).round(1)
    return {
        "predictions": predictions,
        "targets": BUCKETS[np.clip(np.round(latent + rng.standard_normal(n_ids)) + 2, 0, 4).astype(int)],
        "meta_model": 0.5 * latent + rng.standard_normal(n_ids),
        "neutralizers": np.column_stack(
            [rng.standard_normal((n_ids, 3)) / np.sqrt(n_ids), np.eye(3)[rng.integers(0, 3, n_ids)]]
        ),
        "features": rng.integers(0, 5, (n_ids, 8)).astype(np.float64),
        "sample_weights": rng.uniform(0.2, 1.0, n_ids),
        "stakes": rng.uniform(0, 10, n_models),
    }


def _frames(era: dict[str, np.ndarray]) -> dict[str, pd.DataFrame | pd.Series]:
    ids = pd.Index([f"id{i:04d}" for i in range(len(era["targets"]))])
    models = [f"model_{k}" for k in range(era["predictions"].shape[1])]
    return {
        "predictions": pd.DataFrame(era["predictions"], index=ids, columns=models),
        "targets": pd.Series(era["targets"], index=ids, name="target"),
        "meta_model": pd.Series(era["meta_model"], index=ids, name="meta_model"),
        "neutralizers": pd.DataFrame(era["neutralizers"], index=ids),
        "features": pd.DataFrame(era["features"], index=ids),
        "sample_weights": pd.Series(era["sample_weights"], index=ids),
        "stakes": pd.Series(era["stakes"], index=models),
    }


# Each score as (core call, front call) on the same era; the core takes arrays, the front frames.
SCORES = {
    "numerai_corr": (
        lambda a: correlation.numerai_corr(a["predictions"], a["targets"]),
        lambda f: scoring.numerai_corr(f["predictions"], f["targets"]),
    ),
    "numerai_corr_top_bottom": (
        lambda a: correlation.numerai_corr(a["predictions"], a["targets"], top_bottom=30),
        lambda f: scoring.numerai_corr(f["predictions"], f["targets"], top_bottom=30),
    ),
    "numerai_corr_raw_targets": (
        lambda a: correlation.numerai_corr(a["predictions"], a["meta_model"], target_pow15=False),
        lambda f: scoring.numerai_corr(f["predictions"], f["meta_model"], target_pow15=False),
    ),
    "correlation_contribution": (
        lambda a: contribution.correlation_contribution(a["predictions"], a["meta_model"], a["targets"]),
        lambda f: scoring.correlation_contribution(f["predictions"], f["meta_model"], f["targets"]),
    ),
    "correlation_contribution_top_bottom": (
        lambda a: contribution.correlation_contribution(
            a["predictions"], a["meta_model"], a["targets"], top_bottom=30
        ),
        lambda f: scoring.correlation_contribution(
            f["predictions"], f["meta_model"], f["targets"], top_bottom=30
        ),
    ),
    "neutral_contribution": (
        lambda a: contribution.neutral_contribution(
            a["predictions"], a["meta_model"], a["neutralizers"], a["targets"]
        ),
        lambda f: scoring.neutral_contribution(
            f["predictions"], f["meta_model"], f["neutralizers"], f["targets"]
        ),
    ),
    "neutral_correlation": (
        lambda a: correlation.neutral_correlation(a["predictions"], a["neutralizers"], a["targets"]),
        lambda f: scoring.neutral_correlation(f["predictions"], f["neutralizers"], f["targets"]),
    ),
    "feature_neutral_corr": (
        lambda a: correlation.feature_neutral_corr(a["predictions"], a["features"], a["targets"]),
        lambda f: scoring.feature_neutral_corr(f["predictions"], f["features"], f["targets"]),
    ),
    "alpha": (
        lambda a: portfolio.alpha(a["predictions"], a["neutralizers"], a["sample_weights"], a["targets"]),
        lambda f: scoring.alpha(f["predictions"], f["neutralizers"], f["sample_weights"], f["targets"]),
    ),
    "cwmm": (
        lambda a: crowd_core.cwmm(a["predictions"], a["meta_model"]),
        lambda f: scoring.cwmm(f["predictions"], f["meta_model"]),
    ),
}


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("score", list(SCORES))
def test_core_score_of_one_prediction_vector_is_a_float_and_of_a_block_one_per_model(score: str) -> None:
    era = _era(SEEDS[0])
    core, _ = SCORES[score]
    block = core(era)
    assert isinstance(block, np.ndarray) and block.shape == (era["predictions"].shape[1],)
    for k in (0, 3):
        single = core({**era, "predictions": era["predictions"][:, k]})
        assert type(single) is float
        assert single == pytest.approx(block[k], abs=1e-12)


def test_core_pairwise_scores_of_one_or_two_submissions_follow_the_input_shape() -> None:
    era = _era(SEEDS[1])
    previous, current = era["predictions"], era["predictions"] + 0.05 * era["meta_model"][:, None]
    assert type(churn_core.churn(previous[:, 0], current[:, 0])) is float
    assert churn_core.churn(previous, current).shape == (previous.shape[1],)
    assert type(churn_core.turnover(previous[:, 0], current[:, 0])) is float
    assert churn_core.turnover(previous, current).shape == (previous.shape[1],)
    assert type(correlation.pearson_correlation(era["targets"], current[:, 0])) is float
    assert correlation.spearman_correlation(era["targets"], current).shape == (previous.shape[1],)


@pytest.mark.parametrize(
    "transform",
    [
        ranking.tie_kept_rank,
        ranking.tie_broken_rank,
        ranking.rank_gaussianize,
        ranking.rank_gaussianize_pow15,
        lambda p: transforms.neutralize(p, _era(SEEDS[0])["neutralizers"]),
        lambda p: portfolio.generate_neutralized_weights(
            p, _era(SEEDS[0])["neutralizers"], _era(SEEDS[0])["sample_weights"]
        ),
    ],
    ids=["tie_kept_rank", "tie_broken_rank", "gaussianize", "pow15", "neutralize", "neutralized_weights"],
)
def test_core_transforms_return_the_layout_they_were_given(
    transform: Callable[[np.ndarray], np.ndarray],
) -> None:
    predictions = _era(SEEDS[0])["predictions"]
    block = transform(predictions)
    assert block.shape == predictions.shape
    vector = transform(predictions[:, 2])
    assert vector.shape == (predictions.shape[0],)
    np.testing.assert_allclose(vector, block[:, 2], rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- core == front


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("score", list(SCORES))
def test_core_scores_equal_the_pandas_front(score: str, seed: int) -> None:
    era = _era(seed)
    core, front = SCORES[score]
    frames = _frames(era)
    result = front(frames)
    assert list(result.index) == list(frames["predictions"].columns)
    np.testing.assert_allclose(core(era), result.to_numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_core_signals_scores_equal_the_pandas_front(seed: int) -> None:
    era, frames = _era(seed), _frames(_era(seed))
    args = (era["neutralizers"], era["sample_weights"])
    front_args = (frames["neutralizers"], frames["sample_weights"])
    for normalised in (False, True):
        np.testing.assert_allclose(
            portfolio.generate_neutralized_weights(
                era["predictions"], *args, center_and_normalize=normalised
            ),
            scoring.generate_neutralized_weights(frames["predictions"], *front_args, normalised).to_numpy(),
            rtol=0,
            atol=1e-12,
        )
    np.testing.assert_allclose(
        portfolio.meta_portfolio_contribution(era["predictions"], era["stakes"], *args, era["targets"]),
        scoring.meta_portfolio_contribution(
            frames["predictions"], frames["stakes"], *front_args, frames["targets"]
        ),
        rtol=0,
        atol=1e-12,
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_core_primitives_equal_the_pandas_front(seed: int) -> None:
    era, frames = _era(seed), _frames(_era(seed))
    predictions = frames["predictions"]
    np.testing.assert_array_equal(
        ranking.tie_kept_rank(era["predictions"]), scoring.tie_kept_rank(predictions)
    )
    np.testing.assert_array_equal(
        ranking.tie_broken_rank(era["predictions"]), scoring.tie_broken_rank(predictions)
    )
    gaussianized = ranking.rank_gaussianize(era["predictions"])
    np.testing.assert_allclose(gaussianized, scoring.gaussian(scoring.tie_kept_rank(predictions)), atol=1e-12)
    np.testing.assert_allclose(
        ranking.rank_gaussianize_pow15(era["predictions"]),
        scoring.tie_kept_rank__gaussianize__pow_1_5(predictions),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        transforms.neutralize(gaussianized, era["neutralizers"], 0.5),
        scoring.neutralize(pd.DataFrame(gaussianized, index=predictions.index), frames["neutralizers"], 0.5),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        transforms.stake_weight(era["predictions"], era["stakes"]),
        scoring.stake_weight(predictions, frames["stakes"]),
        atol=1e-12,
    )
    best, exposure = correlation.max_feature_correlation(era["predictions"], era["features"])
    for k, model in enumerate(predictions.columns):
        name, value = scoring.max_feature_correlation(predictions[model], frames["features"])
        assert frames["features"].columns[best[k]] == int(name) and exposure[k] == pytest.approx(
            value, abs=1e-12
        )


def test_core_numerai_corr_centres_on_a_given_target_mean_like_the_front_over_a_wider_universe() -> None:
    era, frames = _era(SEEDS[2]), _frames(_era(SEEDS[2]))
    scored = frames["predictions"].index[:220]
    front = scoring.numerai_corr(frames["predictions"].loc[scored], frames["targets"])
    core = correlation.numerai_corr(
        era["predictions"][:220], era["targets"][:220], target_mean=float(era["targets"].mean())
    )
    np.testing.assert_allclose(core, front.to_numpy(), rtol=0, atol=1e-12)
    own_mean = correlation.numerai_corr(era["predictions"][:220], era["targets"][:220])
    assert np.abs(own_mean - core).max() > 1e-6


def test_core_scores_do_not_depend_on_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    era = _era(SEEDS[0], n_ids=300, n_models=200)
    monkeypatch.setenv("CROWDALPHA_THREADS", "1")
    serial = [core(era) for core, _ in SCORES.values()]
    monkeypatch.setenv("CROWDALPHA_THREADS", "2")
    threaded = [core(era) for core, _ in SCORES.values()]
    for one, two in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(one, two)


# ----------------------------------------------------------------------------- ranks and NaN


@pytest.mark.parametrize("seed", SEEDS)
def test_core_tie_kept_rank_handles_nan_like_pandas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 6, (40, 5)).astype(np.float64)
    values[rng.random(values.shape) < 0.2] = np.nan
    values[:, 4] = np.nan
    frame = pd.DataFrame(values)
    expected = (frame.rank(method="average") - 0.5) / frame.count()
    ranked = ranking.tie_kept_rank(values)
    np.testing.assert_array_equal(np.isnan(ranked), np.isnan(values))
    np.testing.assert_allclose(ranked, expected.to_numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(ranking.tie_kept_rank(values[:, 0]), expected[0].to_numpy(), atol=1e-15)
    broken = (frame.rank(method="first") - 0.5) / frame.count()
    np.testing.assert_allclose(ranking.tie_broken_rank(values), broken.to_numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        ranking.rank_gaussianize(values), ndtri(expected.to_numpy()), rtol=0, atol=1e-12, equal_nan=True
    )


def test_core_ranks_of_a_single_value_and_of_a_constant_column_are_one_half() -> None:
    assert ranking.tie_kept_rank(np.array([7.0])).tolist() == [0.5]
    assert ranking.tie_kept_rank(np.full(6, 3.0)).tolist() == [0.5] * 6
    assert ranking.rank_gaussianize(np.full(6, 3.0)).tolist() == [0.0] * 6


def test_core_neutralizer_handles_rank_deficient_groups() -> None:
    era = _era(SEEDS[0])
    groups = era["neutralizers"][:, 3:]  # one-hot: sums to the constant column
    duplicated = np.column_stack([groups, groups[:, :1]])
    values = ranking.rank_gaussianize(era["predictions"])
    neutral = transforms.neutralize(values, duplicated)
    np.testing.assert_allclose(neutral, transforms.neutralize(values, groups), atol=1e-12)
    for group in groups.T.astype(bool):
        np.testing.assert_allclose(neutral[group].mean(axis=0), 0.0, atol=1e-12)


def test_feature_neutral_corr_of_a_constant_model_is_nan_and_leaves_the_others_alone() -> None:
    frames = _frames(_era(SEEDS[1]))
    predictions = frames["predictions"].assign(constant=0.5)
    scores = scoring.feature_neutral_corr(predictions, frames["features"], frames["targets"])
    assert np.isnan(scores["constant"])
    others = scoring.feature_neutral_corr(frames["predictions"], frames["features"], frames["targets"])
    np.testing.assert_allclose(scores.drop("constant"), others, rtol=0, atol=1e-15)
    assert np.isfinite(others).all()


def test_numerai_corr_of_a_constant_model_is_nan() -> None:
    era = _era(SEEDS[1])
    predictions = np.column_stack([era["predictions"][:, 0], np.full(len(era["targets"]), 0.3)])
    scores = correlation.numerai_corr(predictions, era["targets"])
    assert np.isfinite(scores[0]) and np.isnan(scores[1])


# ----------------------------------------------------------------------------- errors


def test_scoring_error_is_a_value_error() -> None:
    assert issubclass(ScoringError, ValueError)


def test_front_names_the_overlap_rule_when_too_many_ids_are_dropped() -> None:
    frames = _frames(_era(SEEDS[0]))
    with pytest.raises(ScoringError, match=r"overlapping ids.*at least 80\.0% of ids must overlap"):
        scoring.numerai_corr(frames["predictions"].iloc[:150], frames["targets"])


def test_front_names_the_duplicate_ids_rule() -> None:
    frames = _frames(_era(SEEDS[0]))
    doubled = pd.concat([frames["predictions"], frames["predictions"].iloc[:3]])
    with pytest.raises(
        ScoringError, match=r"duplicate ids \['id0000', 'id0001', 'id0002'\].*ids must be unique"
    ):
        scoring.numerai_corr(doubled, frames["targets"])
    with pytest.raises(ScoringError, match="duplicate ids"):
        scoring.mcwnm(doubled)


def test_scores_name_the_no_nan_rule() -> None:
    era = _era(SEEDS[0])
    with_nan = era["predictions"].copy()
    with_nan[5, 2] = np.nan
    with pytest.raises(ScoringError, match="predictions contain NaNs"):
        correlation.numerai_corr(with_nan, era["targets"])
    with pytest.raises(ScoringError, match="NaNs"):
        scoring.neutralize(pd.DataFrame(with_nan), pd.DataFrame(era["neutralizers"]))
    bad_targets = era["targets"].copy()
    bad_targets[0] = np.nan
    with pytest.raises(ScoringError, match="targets contain NaNs"):
        contribution.correlation_contribution(era["predictions"], era["meta_model"], bad_targets)


def test_core_names_the_input_whose_length_does_not_match() -> None:
    era = _era(SEEDS[0])
    with pytest.raises(ScoringError, match="meta_model has 249 ids but predictions have 250"):
        contribution.correlation_contribution(era["predictions"], era["meta_model"][:-1], era["targets"])
    with pytest.raises(ScoringError, match=r"1-D .* or 2-D"):
        correlation.numerai_corr(era["predictions"][None], era["targets"])


def test_core_names_the_top_bottom_and_stake_rules() -> None:
    era = _era(SEEDS[0])
    with pytest.raises(ScoringError, match="at most half"):
        correlation.numerai_corr(era["predictions"], era["targets"], top_bottom=126)
    with pytest.raises(ScoringError, match="stakes must not all be zero"):
        portfolio.meta_portfolio_contribution(
            era["predictions"], np.zeros(6), era["neutralizers"], era["sample_weights"], era["targets"]
        )
    with pytest.raises(ScoringError, match="non-constant"):
        churn_core.churn(era["predictions"], np.ones_like(era["predictions"]))
