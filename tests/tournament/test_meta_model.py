"""Meta models at round close: SWMM, SNWMMmin10, CNWMMmin1 and the benchmark meta model."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring as nt_scoring
from numerai_tools import submissions as nt_submissions
from scipy.special import ndtri

from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.tournament import CLASSIC, CRYPTO, SIGNALS, MetaModelRule
from crowdalpha.tournament.meta_model import (
    MetaModelError,
    benchmark_meta_model,
    cleaned_gaussian_ranks,
    meta_model,
    meta_model_percentiles,
    meta_model_weights,
)

TOKEN = NANO_PER_TOKEN


def _predictions(n_ids: int, n_models: int, seed: int) -> np.ndarray:
    """Return predictions in [0, 1] on a coarse grid, so that ties occur as in real submissions."""
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(0, 1, size=(n_ids, n_models)), 2)


def test_two_model_swmm_by_hand():
    # ranks [1/6, 1/2, 5/6] -> g = [ndtri(1/6), 0, -ndtri(1/6)]; the second model is -g
    # stakes 3:1 -> 0.75 g - 0.25 g = 0.5 g
    predictions = np.array([[0.1, 0.3], [0.2, 0.2], [0.3, 0.1]])
    stakes = np.array([3 * TOKEN, 1 * TOKEN])
    g = ndtri(1 / 6)
    np.testing.assert_allclose(meta_model(CLASSIC.meta_model, predictions, stakes), [0.5 * g, 0, -0.5 * g])


def test_classic_swmm_matches_numerai_tools_stake_weight():
    predictions = _predictions(500, 7, seed=1)
    stakes = np.array([5, 0, 120, 1, 33, 7, 2], dtype=np.int64) * TOKEN + 123
    ids = [f"n{i:015x}" for i in range(500)]
    frame = pd.DataFrame(predictions, index=ids, columns=[f"m{k}" for k in range(7)])
    expected = nt_scoring.stake_weight(
        nt_scoring.gaussian(nt_scoring.tie_kept_rank(frame)), pd.Series(stakes / TOKEN, index=frame.columns)
    )
    np.testing.assert_allclose(meta_model(CLASSIC.meta_model, predictions, stakes), expected, atol=1e-9)


def _numerai_tools_naive_mean(predictions: np.ndarray, tickers: list[str], chosen: list[int]) -> pd.Series:
    """Clean each chosen submission as numerai-tools does (rank, fill 0.5), rank-gaussianise, average."""
    universe = pd.DataFrame({"ticker": tickers})
    cleaned = {}
    for k in chosen:
        present = ~np.isnan(predictions[:, k])
        submission = pd.DataFrame(
            {"ticker": np.array(tickers)[present], "signal": predictions[present, k]}
        ).sample(frac=1.0, random_state=k)  # uploads come in any order
        cleaned[k] = nt_submissions.clean_submission(
            universe, submission, "ticker", "signal", rank_and_fill=True
        )
    frame = pd.DataFrame(cleaned)
    return nt_scoring.gaussian(nt_scoring.tie_kept_rank(frame)).mean(axis=1)


@pytest.mark.parametrize("config", [SIGNALS, CRYPTO], ids=["SNWMMmin10", "CNWMMmin1"])
def test_naive_meta_models_match_numerai_tools_cleaning(config):
    n_ids, n_models = 300, 6
    tickers = [f"T{i:04d}" for i in range(n_ids)]
    predictions = _predictions(n_ids, n_models, seed=2)
    rng = np.random.default_rng(3)
    predictions[rng.uniform(size=predictions.shape) < 0.2] = np.nan  # partial universe coverage
    min_stake = config.meta_model.min_stake
    just_below = min_stake - Decimal("0.000000001")
    stakes_tokens = [min_stake * 50, min_stake, just_below, Decimal(0), min_stake * 2, Decimal(0)]
    stakes = np.array([int(s * TOKEN) for s in stakes_tokens], dtype=np.int64)
    expected = _numerai_tools_naive_mean(predictions, tickers, chosen=[0, 1, 4])
    np.testing.assert_allclose(meta_model(config.meta_model, predictions, stakes), expected, atol=1e-9)


def test_equal_weighting_ignores_stake_size_above_the_minimum():
    predictions = _predictions(50, 3, seed=4)
    small = np.array([10, 10, 10], dtype=np.int64) * TOKEN
    large = np.array([10, 1_000, 77], dtype=np.int64) * TOKEN
    np.testing.assert_array_equal(
        meta_model(SIGNALS.meta_model, predictions, small), meta_model(SIGNALS.meta_model, predictions, large)
    )


def test_stake_weighted_meta_model_is_rank_invariant_and_scale_free():
    predictions = _predictions(200, 4, seed=5)
    stakes = np.array([4, 1, 9, 2], dtype=np.int64) * TOKEN
    reference = meta_model(CLASSIC.meta_model, predictions, stakes)
    monotone = predictions**3 * 0.5 + 0.1  # same order within every column
    np.testing.assert_allclose(meta_model(CLASSIC.meta_model, monotone, stakes), reference, atol=1e-12)
    np.testing.assert_allclose(meta_model(CLASSIC.meta_model, predictions, stakes * 7), reference, atol=1e-12)


def test_unstaked_and_unsubmitted_models_do_not_move_the_swmm():
    predictions = _predictions(100, 3, seed=6)
    alone = meta_model(CLASSIC.meta_model, predictions[:, :1], np.array([5 * TOKEN]))
    predictions[:, 2] = np.nan  # staked, but never submitted
    with_others = meta_model(CLASSIC.meta_model, predictions, np.array([5 * TOKEN, 0, 9 * TOKEN]))
    np.testing.assert_allclose(with_others, alone, atol=1e-12)


def test_weights_are_stake_shares_of_eligible_models():
    predictions = _predictions(20, 4, seed=7)
    predictions[:, 3] = np.nan
    stakes = np.array([1, 3, 0, 100], dtype=np.int64) * TOKEN
    weights = meta_model_weights(CLASSIC.meta_model, predictions, stakes)
    np.testing.assert_allclose(weights, [0.25, 0.75, 0, 0])
    rule = MetaModelRule("SNWMMmin2", "equal", min_stake=Decimal(2))
    np.testing.assert_allclose(meta_model_weights(rule, predictions, stakes), [0, 1, 0, 0])


def test_cleaning_gives_missing_ids_the_middle_rank():
    cleaned = cleaned_gaussian_ranks(np.array([[0.9], [np.nan], [0.1], [0.5], [np.nan]]))
    # ranks of the three predictions: 5/6, 1/6, 1/2; then 5/6, .5, 1/6, .5, .5 are ranked again
    np.testing.assert_allclose(cleaned[:, 0], ndtri(np.array([0.9, 0.5, 0.1, 0.5, 0.5])), atol=1e-12)


def test_benchmark_meta_model_is_equal_weight_without_stakes_and_stake_weighted_with_them():
    predictions = _predictions(80, 3, seed=8)
    np.testing.assert_allclose(
        benchmark_meta_model(predictions), cleaned_gaussian_ranks(predictions).mean(axis=1), atol=1e-12
    )
    stakes = np.array([2, 0, 6], dtype=np.int64) * TOKEN
    np.testing.assert_allclose(
        benchmark_meta_model(predictions, stakes), meta_model(CLASSIC.meta_model, predictions, stakes)
    )


def test_published_percentiles_keep_the_order_inside_zero_one():
    values = meta_model(CLASSIC.meta_model, _predictions(60, 3, seed=9), np.array([1, 2, 3]) * TOKEN)
    published = meta_model_percentiles(values)
    assert published.min() > 0 and published.max() < 1
    np.testing.assert_array_equal(np.argsort(published, kind="stable"), np.argsort(values, kind="stable"))


@pytest.mark.parametrize(
    ("rule", "predictions", "stakes", "message"),
    [
        (SIGNALS.meta_model, np.ones((3, 2)) * [[0.2], [0.5], [0.7]], [9 * TOKEN, 0], "no model submitted"),
        (CLASSIC.meta_model, np.ones((3, 2)) * [[0.2], [0.5], [0.7]], [0, 0], "positive total stake"),
        (CLASSIC.meta_model, np.full((3, 2), np.nan), [TOKEN, TOKEN], "no model submitted"),
        (CLASSIC.meta_model, np.ones((3, 2)), [TOKEN], "one stake per model column"),
        (CLASSIC.meta_model, np.ones((3, 2)), [TOKEN, -1], "must be ≥ 0; model columns [1]"),
        (CLASSIC.meta_model, np.ones((3, 2)), [1.5, 2.0], "integer nano-tokens"),
        (CLASSIC.meta_model, np.ones(3), [TOKEN], "2-D"),
        (CLASSIC.meta_model, np.ones((0, 2)), [TOKEN, TOKEN], "no ids"),
        (CLASSIC.meta_model, [[0.1, np.inf], [0.2, 0.3]], [TOKEN, TOKEN], "columns [1] hold ±inf"),
    ],
)
def test_bad_inputs_raise_errors_naming_the_rule(rule, predictions, stakes, message):
    with pytest.raises(MetaModelError, match=message.replace("[", r"\[").replace("]", r"\]")):
        meta_model(rule, np.asarray(predictions, dtype=np.float64), np.asarray(stakes))
