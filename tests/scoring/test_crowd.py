"""Crowd scores — CWMM, MCWNM, APCWNM — against a plain O(K²) pandas reference written here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import crowdalpha.scoring as scoring
from crowdalpha.scoring import ScoringError, crowd

SEEDS = (5, 13, 21)


def reference_transform(predictions: pd.DataFrame) -> pd.DataFrame:
    """rank (ties averaged) → normal quantile → signed power 1.5, column by column."""
    percentiles = (predictions.rank(method="average") - 0.5) / predictions.count()
    gaussianized = pd.DataFrame(norm.ppf(percentiles), index=predictions.index, columns=predictions.columns)
    return np.sign(gaussianized) * gaussianized.abs() ** 1.5


def reference_cwmm(predictions: pd.DataFrame, meta_model: pd.Series) -> pd.Series:
    transformed = reference_transform(predictions)
    return transformed.apply(lambda column: column.corr(meta_model.loc[column.index], method="pearson"))


def reference_pairwise(predictions: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(max, mean) Pearson of each model with every other model, one pair at a time."""
    transformed = reference_transform(predictions)
    maxima, means = {}, {}
    for model in transformed.columns:
        others = [
            transformed[model].corr(transformed[other], method="pearson")
            for other in transformed.columns
            if other != model
        ]
        usable = [value for value in others if not np.isnan(value)]
        usable_model = transformed[model].std() > 0
        maxima[model] = max(usable) if usable and usable_model else np.nan
        means[model] = float(np.mean(usable)) if usable and usable_model else np.nan
    return pd.Series(maxima, dtype=np.float64), pd.Series(means, dtype=np.float64)


def crowd_frame(seed: int, *, n_ids: int = 200, n_models: int = 12, ties: bool = True) -> pd.DataFrame:
    """Models sharing a common signal to different degrees (so correlations spread over [-1, 1])."""
    rng = np.random.default_rng(seed)
    common = rng.standard_normal(n_ids)
    loadings = rng.uniform(-1.5, 1.5, n_models)
    values = common[:, None] * loadings + rng.standard_normal((n_ids, n_models))
    if ties:
        values = values.round(1)
    ids = [f"id{i:04d}" for i in rng.permutation(n_ids)]
    return pd.DataFrame(values, index=ids, columns=[f"model_{k:02d}" for k in range(n_models)])


def _assert_scores(mine: pd.Series | np.ndarray, expected: pd.Series) -> None:
    np.testing.assert_allclose(
        np.asarray(mine, np.float64), expected.to_numpy(), rtol=0, atol=1e-12, equal_nan=True
    )


# ----------------------------------------------------------------------------- CWMM


@pytest.mark.parametrize("seed", SEEDS)
def test_cwmm_is_the_pearson_of_transformed_predictions_with_the_raw_meta_model(seed: int) -> None:
    predictions = crowd_frame(seed)
    meta_model = pd.Series(
        predictions.mean(axis=1) + np.random.default_rng(seed).standard_normal(len(predictions)),
        index=predictions.index,
    )
    expected = reference_cwmm(predictions, meta_model)
    front = scoring.cwmm(predictions, meta_model)
    assert list(front.index) == list(predictions.columns)
    _assert_scores(front, expected)
    _assert_scores(crowd.cwmm(predictions.to_numpy(), meta_model.to_numpy()), expected)
    assert crowd.cwmm(predictions.iloc[:, 3].to_numpy(), meta_model.to_numpy()) == pytest.approx(
        expected.iloc[3], abs=1e-12
    )


def test_cwmm_aligns_a_meta_model_on_partly_different_ids() -> None:
    predictions = crowd_frame(SEEDS[0])
    meta_model = pd.Series(np.linspace(-1, 1, len(predictions)), index=predictions.index).sample(frac=1.0)
    meta_model = meta_model.drop(meta_model.index[:15])
    meta_model.iloc[:5] = np.nan
    kept = meta_model.dropna().index.sort_values()
    expected = reference_cwmm(predictions.loc[kept], meta_model.loc[kept])
    _assert_scores(scoring.cwmm(predictions, meta_model), expected)


def test_cwmm_of_a_constant_model_is_nan() -> None:
    predictions = crowd_frame(SEEDS[1]).assign(constant=0.5)
    scores = scoring.cwmm(predictions, predictions["model_00"])
    assert np.isnan(scores["constant"])
    assert np.isfinite(scores.drop("constant")).all()


# ----------------------------------------------------------------------------- MCWNM and APCWNM


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("seed", SEEDS)
def test_mcwnm_and_apcwnm_match_the_pairwise_reference(seed: int, ties: bool) -> None:
    predictions = crowd_frame(seed, ties=ties)
    maxima, means = reference_pairwise(predictions)
    _assert_scores(scoring.mcwnm(predictions), maxima)
    _assert_scores(scoring.apcwnm(predictions), means)
    values = predictions.to_numpy()
    _assert_scores(crowd.mcwnm(values), maxima)
    _assert_scores(crowd.apcwnm(values), means)


def test_mcwnm_and_apcwnm_of_many_models_match_the_pairwise_reference() -> None:
    predictions = crowd_frame(SEEDS[2], n_ids=300, n_models=90)
    maxima, means = reference_pairwise(predictions)
    _assert_scores(scoring.mcwnm(predictions), maxima)
    _assert_scores(scoring.apcwnm(predictions), means)


def test_pairwise_crowd_correlations_do_not_depend_on_the_block_size() -> None:
    predictions = crowd_frame(SEEDS[0], n_models=23)
    rows = scoring.tie_kept_rank__gaussianize__pow_1_5(predictions).to_numpy().T.copy()
    whole = crowd.pairwise_crowd_correlations(rows)
    for block_size in (1, 4, 7, 22):
        blocked = crowd.pairwise_crowd_correlations(rows, block_size=block_size)
        for one, other in zip(whole, blocked, strict=True):
            np.testing.assert_allclose(one, other, rtol=0, atol=1e-14)


def test_constant_models_score_nan_and_are_left_out_of_the_others_crowd() -> None:
    predictions = crowd_frame(SEEDS[1], n_models=6).assign(flat=0.25, also_flat=1.0)
    maxima, means = reference_pairwise(predictions)
    mcwnm, apcwnm = scoring.mcwnm(predictions), scoring.apcwnm(predictions)
    assert mcwnm[["flat", "also_flat"]].isna().all() and apcwnm[["flat", "also_flat"]].isna().all()
    _assert_scores(mcwnm, maxima)
    _assert_scores(apcwnm, means)
    without = predictions.drop(columns=["flat", "also_flat"])
    _assert_scores(apcwnm.drop(["flat", "also_flat"]), scoring.apcwnm(without))


def test_a_single_model_has_no_crowd_to_correlate_with() -> None:
    predictions = crowd_frame(SEEDS[2], n_models=1)
    assert scoring.mcwnm(predictions).isna().all()
    assert scoring.apcwnm(predictions).isna().all()
    assert np.isnan(crowd.mcwnm(predictions.to_numpy())).all()
    assert np.isnan(crowd.apcwnm(predictions.iloc[:, 0].to_numpy())).all()


def test_one_usable_model_among_constant_ones_has_no_crowd_either() -> None:
    predictions = crowd_frame(SEEDS[2], n_models=1).assign(flat=0.5)
    assert scoring.mcwnm(predictions).isna().all()
    assert scoring.apcwnm(predictions).isna().all()


def test_identical_and_reversed_models_score_plus_and_minus_one() -> None:
    predictions = crowd_frame(SEEDS[0], n_models=3, ties=False)
    predictions["copy"] = predictions["model_00"] * 2 + 1
    predictions["mirror"] = -predictions["model_01"]
    mcwnm = scoring.mcwnm(predictions)
    assert mcwnm["model_00"] == pytest.approx(1.0, abs=1e-12)
    assert mcwnm["copy"] == pytest.approx(1.0, abs=1e-12)
    pair = scoring.apcwnm(predictions[["model_01", "mirror"]])
    np.testing.assert_allclose(pair, -1.0, atol=1e-12)


def test_crowd_scores_do_not_depend_on_id_order() -> None:
    predictions = crowd_frame(SEEDS[1])
    shuffled = predictions.sample(frac=1.0, random_state=4)
    _assert_scores(scoring.mcwnm(shuffled), scoring.mcwnm(predictions))
    _assert_scores(scoring.apcwnm(shuffled), scoring.apcwnm(predictions))


def test_crowd_scores_refuse_nan_predictions() -> None:
    predictions = crowd_frame(SEEDS[0])
    predictions.iloc[3, 2] = np.nan
    with pytest.raises(ScoringError, match="NaNs"):
        scoring.mcwnm(predictions)
    with pytest.raises(ScoringError, match="NaNs"):
        crowd.apcwnm(predictions.to_numpy())


def test_peers_restrict_the_crowd_a_model_is_compared_with() -> None:
    predictions = crowd_frame(SEEDS[2], n_models=10)
    peers = np.array([True, True, False, True, False, True, True, False, True, True])
    rows = scoring.tie_kept_rank__gaussianize__pow_1_5(predictions).to_numpy().T.copy()
    maxima, means = crowd.pairwise_crowd_correlations(rows, peers=peers)
    for k, model in enumerate(predictions.columns):
        others = [j for j in np.flatnonzero(peers) if j != k]
        pairs = [np.corrcoef(rows[k], rows[j])[0, 1] for j in others]
        assert maxima[k] == pytest.approx(max(pairs), abs=1e-12), model
        assert means[k] == pytest.approx(np.mean(pairs), abs=1e-12), model
    with pytest.raises(ScoringError, match="peers has 3 entries but there are 10 models"):
        crowd.pairwise_crowd_correlations(rows, peers=peers[:3])


def test_the_float32_screen_finds_the_exact_maximum_among_near_ties() -> None:
    rng = np.random.default_rng(8)
    base = rng.standard_normal(2000)
    # peers whose correlations with each other differ by ~1e-8: below the float32 screen's error
    rows = np.vstack([base + 1e-4 * k * rng.standard_normal(2000) for k in range(12)])
    rows = np.vstack([rows, rng.standard_normal((5, 2000))])
    maxima, _ = crowd.pairwise_crowd_correlations(rows, block_size=4)
    unit = crowd.standardized_rows(rows)
    gram = unit @ unit.T
    np.fill_diagonal(gram, -np.inf)
    np.testing.assert_allclose(maxima, gram.max(axis=1), rtol=0, atol=1e-13)
    assert crowd.screen_margin(2000) < 1e-3


def test_a_crowd_of_near_copies_falls_back_to_the_exact_gram() -> None:
    rng = np.random.default_rng(9)
    base = rng.standard_normal(500)
    rows = np.vstack([base + 1e-5 * rng.standard_normal(500) for _ in range(80)])  # ~79 candidates per row
    maxima, means = crowd.pairwise_crowd_correlations(rows, block_size=16)
    unit = crowd.standardized_rows(rows)
    gram = unit @ unit.T
    np.fill_diagonal(gram, np.nan)
    np.testing.assert_allclose(maxima, np.nanmax(gram, axis=1), rtol=0, atol=1e-13)
    np.testing.assert_allclose(means, np.nanmean(gram, axis=1), rtol=0, atol=1e-13)
