"""Parity of the pandas front ``crowdalpha.scoring`` with numerai-tools 0.7.2, the test oracle.

Every function both libraries share is run on the same random draws — tied, NaN-riddled,
unsorted, partially overlapping inputs, one to 500 models, bucketed and raw-return targets — and
must agree to 1e-9. Where numerai-tools refuses an input with an ``AssertionError``, crowdalpha
must refuse it with a :class:`ScoringError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numerai_tools.scoring as oracle
import numerai_tools.signals as oracle_signals
import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

import crowdalpha.scoring as ours
from crowdalpha.scoring import ScoringError

TOLERANCE = 1e-9
SEEDS = (11, 23, 37)
BUCKETS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
BUCKET_SHARES = np.array([0.05, 0.2, 0.5, 0.2, 0.05])


# ----------------------------------------------------------------------------- random tournaments


@dataclass(frozen=True)
class Draw:
    """One random era: every input a score may take, indexed by unsorted string ids."""

    predictions: pd.DataFrame
    targets: pd.Series
    meta_model: pd.Series
    neutralizers: pd.DataFrame
    sample_weights: pd.Series
    stakes: pd.Series

    def complete(self) -> pd.DataFrame:
        """Predictions restricted to their NaN-free rows, still unsorted."""
        return self.predictions.dropna()


def _buckets(values: np.ndarray) -> np.ndarray:
    edges = np.quantile(values, np.cumsum(BUCKET_SHARES)[:-1])
    return BUCKETS[np.searchsorted(edges, values)]


def make_draw(
    seed: int,
    *,
    n_ids: int = 300,
    n_models: int = 4,
    ties: bool = False,
    nans: bool = False,
    partial_overlap: bool = False,
    raw_returns: bool = False,
) -> Draw:
    """Return a random era whose predictions carry some skill on the targets.

    ``partial_overlap`` removes disjoint slices of ids from predictions (5 %), targets (5 %),
    meta model (3 %) and neutralisers/sample weights (2 %, inside the predictions' gap); ``nans``
    blanks 3 % of prediction rows (a random subset of the models in each) and 2 % of targets. The
    shares are fixed, so the ids kept by every input stay above numerai-tools' 80 % floor.
    """
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"n{i:06d}" for i in rng.permutation(n_ids)])
    latent = rng.standard_normal(n_ids)
    skill = rng.uniform(0.05, 0.6, n_models)
    raw = latent[:, None] * skill + rng.standard_normal((n_ids, n_models))
    predictions = ndtr(raw)
    meta_model = ndtr(0.4 * latent + rng.standard_normal(n_ids))
    if ties:
        predictions = predictions.round(1)
        meta_model = meta_model.round(2)
    outcome = 0.3 * latent + rng.standard_normal(n_ids)
    targets = 0.02 * outcome - 0.004 if raw_returns else _buckets(outcome)
    share = lambda fraction: max(1, round(fraction * n_ids))  # noqa: E731
    if nans:
        blank = np.zeros(predictions.shape, dtype=bool)
        blank[-share(0.03) :] = rng.random((share(0.03), n_models)) < 0.5
        blank[np.arange(n_ids - share(0.03), n_ids), rng.integers(0, n_models, share(0.03))] = True
        predictions = np.where(blank, np.nan, predictions)
        targets = targets.copy()
        targets[-share(0.05) : -share(0.03)] = np.nan

    predictions = pd.DataFrame(predictions, index=ids, columns=[f"model_{k:03d}" for k in range(n_models)])
    targets = pd.Series(targets, index=ids, name="target")
    meta_model = pd.Series(meta_model, index=ids, name="meta_model")
    group = rng.integers(0, 4, n_ids)
    neutralizers = pd.DataFrame(
        np.column_stack([rng.standard_normal((n_ids, 3)) / np.sqrt(n_ids), np.eye(4)[group] * 0.1]),
        index=ids,
        columns=["beta", "size", "momentum", "sector_a", "sector_b", "sector_c", "sector_d"],
    )
    sample_weights = pd.Series(rng.uniform(0.2, 1.0, n_ids), index=ids, name="weight")

    if partial_overlap:
        cut = np.cumsum([0, share(0.05), share(0.05), share(0.03)])
        predictions = predictions.drop(ids[cut[0] : cut[1]])
        targets = targets.drop(ids[cut[1] : cut[2]])
        meta_model = meta_model.drop(ids[cut[2] : cut[3]])
        neutralizers = neutralizers.drop(ids[: share(0.02)])
        sample_weights = sample_weights.drop(ids[: share(0.02)])
    stakes = pd.Series(rng.uniform(0, 100, n_models), index=predictions.columns, name="stake")
    stakes = stakes.sample(frac=1.0, random_state=seed)
    return Draw(predictions, targets, meta_model, neutralizers, sample_weights, stakes)


VARIANTS = {
    "distinct": {},
    "ties": {"ties": True},
    "nans": {"nans": True},
    "partial_overlap": {"partial_overlap": True},
    "raw_returns": {"raw_returns": True},
    "ties_nans_overlap_returns": {"ties": True, "nans": True, "partial_overlap": True, "raw_returns": True},
    "one_model": {"n_models": 1, "ties": True, "nans": True, "partial_overlap": True},
}
MANY_MODELS = {"n_ids": 1000, "n_models": 500, "ties": True, "nans": True, "partial_overlap": True}


@pytest.fixture(
    scope="module",
    params=[(seed, name) for name in VARIANTS for seed in SEEDS],
    ids=lambda p: f"{p[1]}-{p[0]}",
)
def draw(request: pytest.FixtureRequest) -> Draw:
    seed, name = request.param
    return make_draw(seed, **VARIANTS[name])


@pytest.fixture(scope="module", params=SEEDS[:1], ids=lambda seed: f"500_models-{seed}")
def crowd_draw(request: pytest.FixtureRequest) -> Draw:
    return make_draw(request.param, **MANY_MODELS)


def _is_binned(targets: pd.Series) -> bool:
    return bool(targets.dropna().isin(BUCKETS).all())


def _sorted(data: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    return data.sort_index()


def _paired(draw: Draw) -> tuple[pd.DataFrame, pd.Series]:
    """Complete predictions and targets on their common ids, sorted (numerai-tools' precondition)."""
    predictions, targets = draw.complete(), draw.targets.dropna()
    common = predictions.index.intersection(targets.index).sort_values()
    return predictions.loc[common], targets.loc[common]


def _features(ids: pd.Index, *, seed: int, n_features: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 5, (len(ids), n_features)).astype(np.float64)
    return pd.DataFrame(values, index=ids, columns=[f"feature_{j:02d}" for j in range(n_features)])


def _top_bottom(draw: Draw) -> int:
    return len(draw.predictions) // 10


# ----------------------------------------------------------------------------- comparison


def assert_matches(ours_result: object, oracle_result: object) -> None:
    """Assert same labels, same NaN positions and values within TOLERANCE (any result shape)."""
    if isinstance(oracle_result, pd.DataFrame):
        assert isinstance(ours_result, pd.DataFrame)
        assert list(ours_result.columns) == list(oracle_result.columns)
        assert ours_result.index.equals(oracle_result.index)
        _assert_values(ours_result.to_numpy(np.float64), oracle_result.to_numpy(np.float64))
    elif isinstance(oracle_result, pd.Series):
        assert isinstance(ours_result, pd.Series)
        assert ours_result.index.equals(oracle_result.index)
        _assert_values(ours_result.to_numpy(np.float64), oracle_result.to_numpy(np.float64))
    elif isinstance(oracle_result, tuple):
        assert isinstance(ours_result, tuple) and len(ours_result) == len(oracle_result)
        for mine, theirs in zip(ours_result, oracle_result, strict=True):
            assert_matches(mine, theirs)
    elif isinstance(oracle_result, str):
        assert ours_result == oracle_result
    else:
        _assert_values(np.asarray(ours_result, np.float64), np.asarray(oracle_result, np.float64))


def _assert_values(mine: np.ndarray, theirs: np.ndarray) -> None:
    assert mine.shape == theirs.shape
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(theirs), err_msg="NaN positions differ")
    infinite = np.isinf(theirs)
    np.testing.assert_array_equal(mine[infinite], theirs[infinite], err_msg="infinities differ")
    finite = np.isfinite(theirs)
    if finite.any():
        worst = np.max(np.abs(mine[finite] - theirs[finite]))
        assert worst <= TOLERANCE, f"max |difference| {worst:.3g} > {TOLERANCE:g}"


def assert_both_refuse(ours_call: Callable[[], object], oracle_call: Callable[[], object], rule: str) -> None:
    """Assert numerai-tools raises AssertionError and crowdalpha a ScoringError (naming ``rule``)."""
    with pytest.raises(AssertionError):
        oracle_call()
    with pytest.raises(ScoringError, match=rule):
        ours_call()


def _too_little_overlap(draw: Draw) -> Draw:
    """The same draw with predictions on only 70 % of the ids: every aligned input loses > 20 %."""
    kept = draw.predictions.index[: int(0.7 * len(draw.predictions))]
    return Draw(
        draw.predictions.loc[kept],
        draw.targets,
        draw.meta_model,
        draw.neutralizers,
        draw.sample_weights,
        draw.stakes,
    )


# ----------------------------------------------------------------------------- alignment


def test_filter_sort_index_matches_numerai_tools(draw: Draw) -> None:
    for first, second in (
        (draw.targets, draw.predictions),
        (draw.predictions, draw.meta_model),
        (draw.meta_model, draw.targets),
    ):
        mine = ours.filter_sort_index(first, second)
        theirs = oracle.filter_sort_index(first, second)
        assert_matches(mine, theirs)
        assert mine[0].index.is_monotonic_increasing


def test_filter_sort_index_refuses_more_than_twenty_percent_dropped_like_numerai_tools(draw: Draw) -> None:
    short = _too_little_overlap(draw)
    assert_both_refuse(
        lambda: ours.filter_sort_index(short.targets, short.predictions),
        lambda: oracle.filter_sort_index(short.targets, short.predictions),
        "overlapping",
    )
    wide = ours.filter_sort_index(short.targets, short.predictions, max_filtered_ratio=0.5)
    assert_matches(wide, oracle.filter_sort_index(short.targets, short.predictions, 0.5))


# ----------------------------------------------------------------------------- primitives


def test_tie_kept_rank_matches_numerai_tools_on_unsorted_ids_with_ties_and_nans(draw: Draw) -> None:
    mine = ours.tie_kept_rank(draw.predictions)
    assert mine.index.equals(draw.predictions.index)
    assert_matches(mine.sort_index(), oracle.tie_kept_rank(_sorted(draw.predictions)))
    column = draw.predictions.iloc[:, 0]
    assert_matches(ours.tie_kept_rank(column).sort_index(), oracle.tie_kept_rank(_sorted(column)))


def test_tie_broken_rank_matches_numerai_tools_with_ties_and_nans(draw: Draw) -> None:
    predictions = _sorted(draw.predictions)
    assert_matches(ours.tie_broken_rank(predictions), oracle.tie_broken_rank(predictions))


def test_tie_broken_rank_refuses_unsorted_ids_like_numerai_tools(draw: Draw) -> None:
    assert_both_refuse(
        lambda: ours.tie_broken_rank(draw.predictions),
        lambda: oracle.tie_broken_rank(draw.predictions),
        "unsorted",
    )


def test_gaussian_matches_numerai_tools_on_ranks_and_raw_percentiles(draw: Draw) -> None:
    ranks = oracle.tie_kept_rank(_sorted(draw.predictions))
    assert_matches(ours.gaussian(ranks), oracle.gaussian(ranks))
    percentiles = _sorted(draw.predictions)
    assert_matches(ours.gaussian(draw.predictions).sort_index(), oracle.gaussian(percentiles))


@pytest.mark.parametrize("exponent", [1.5, 2.0, 0.5])
def test_power_matches_numerai_tools_on_signed_values(draw: Draw, exponent: float) -> None:
    signed = oracle.gaussian(oracle.tie_kept_rank(_sorted(draw.complete())))
    assert_matches(ours.power(signed, exponent), oracle.power(signed, exponent))


def test_power_refuses_nans_like_numerai_tools(draw: Draw) -> None:
    with_nan = _sorted(draw.predictions).copy()
    with_nan.iloc[0, 0] = np.nan
    assert_both_refuse(lambda: ours.power(with_nan, 1.5), lambda: oracle.power(with_nan, 1.5), "NaN")


def test_power_refuses_a_power_that_decorrelates_like_numerai_tools() -> None:
    frame = pd.DataFrame({"linear": np.linspace(0.0, 1.0, 100)})
    assert_both_refuse(lambda: ours.power(frame, 8.0), lambda: oracle.power(frame, 8.0), "correlated")


@pytest.mark.parametrize("proportion", [1.0, 0.5, 0.0])
def test_neutralize_matches_numerai_tools_for_any_proportion(draw: Draw, proportion: float) -> None:
    predictions = _sorted(draw.complete())
    neutralizers = draw.neutralizers.loc[predictions.index]
    gaussianized = oracle.gaussian(oracle.tie_kept_rank(predictions))
    assert_matches(
        ours.neutralize(gaussianized, neutralizers, proportion),
        oracle.neutralize(gaussianized, neutralizers, proportion),
    )
    assert_matches(
        ours.neutralize(predictions, neutralizers, proportion),
        oracle.neutralize(predictions, neutralizers, proportion),
    )


def test_neutralize_turns_constant_columns_into_nan_like_numerai_tools(draw: Draw) -> None:
    predictions = _sorted(draw.complete()).copy()
    predictions["constant"] = 0.5
    neutralizers = draw.neutralizers.loc[predictions.index]
    mine = ours.neutralize(predictions, neutralizers)
    assert mine["constant"].isna().all()
    assert_matches(mine, oracle.neutralize(predictions, neutralizers))


def test_neutralize_refuses_nans_and_mismatched_ids_like_numerai_tools(draw: Draw) -> None:
    predictions = _sorted(draw.complete())
    neutralizers = draw.neutralizers.loc[predictions.index]
    with_nan = predictions.copy()
    with_nan.iloc[3, 0] = np.nan
    assert_both_refuse(
        lambda: ours.neutralize(with_nan, neutralizers),
        lambda: oracle.neutralize(with_nan, neutralizers),
        "NaN",
    )
    reordered = neutralizers.iloc[::-1]
    assert_both_refuse(
        lambda: ours.neutralize(predictions, reordered),
        lambda: oracle.neutralize(predictions, reordered),
        "match",
    )


def test_orthogonalize_matches_numerai_tools_for_vectors_and_blocks(draw: Draw) -> None:
    block = oracle.gaussian(oracle.tie_kept_rank(_sorted(draw.complete()))).to_numpy()
    direction = block.mean(axis=1) + 0.1
    assert_matches(ours.orthogonalize(block, direction), oracle.orthogonalize(block, direction))
    # numerai-tools broadcasts a 1-D ``v`` to N x N; its column-vector form is the reference.
    vector = block[:, 0]
    assert_matches(
        ours.orthogonalize(vector, direction), oracle.orthogonalize(vector[:, None], direction)[:, 0]
    )


def test_stake_weight_matches_numerai_tools_with_nans_and_reordered_stakes(draw: Draw) -> None:
    stakes = draw.stakes.iloc[: max(1, len(draw.stakes) - 1)]
    assert_matches(ours.stake_weight(draw.predictions, stakes), oracle.stake_weight(draw.predictions, stakes))


def test_tie_kept_rank_gaussianize_pow_1_5_matches_numerai_tools(draw: Draw) -> None:
    predictions = draw.complete()
    assert_matches(
        ours.tie_kept_rank__gaussianize__pow_1_5(predictions).sort_index(),
        oracle.tie_kept_rank__gaussianize__pow_1_5(_sorted(predictions)),
    )


def test_normalisations_match_numerai_tools(draw: Draw) -> None:
    predictions = draw.predictions
    for name in ("center", "variance_normalize", "weight_normalize", "standardize"):
        assert_matches(getattr(ours, name)(predictions), getattr(oracle, name)(predictions))
    for column in predictions.columns[:2]:
        assert_matches(
            ours.min_max_normalize(predictions[column]), oracle.min_max_normalize(predictions[column])
        )
        assert_matches(ours.center(predictions[column]), oracle.center(predictions[column]))
        assert_matches(
            ours.weight_normalize(predictions[column]), oracle.weight_normalize(predictions[column])
        )
    per_era_scores = draw.meta_model.iloc[:50] - 0.45
    assert_matches(ours.sharpe_ratio(per_era_scores), oracle.sharpe_ratio(per_era_scores))


@pytest.mark.parametrize("method", ["average", "first"])
def test_rank_matches_numerai_tools_for_both_tie_methods(draw: Draw, method: str) -> None:
    predictions = _sorted(draw.predictions)
    assert_matches(ours.rank(predictions, method), oracle.rank(predictions, method))
    column = predictions.iloc[:, 0]
    assert_matches(ours.rank(column, method), oracle.rank(column, method))


def test_tie_kept_rank_gaussianize_neutralize_variance_normalize_matches_numerai_tools(draw: Draw) -> None:
    predictions = _sorted(draw.complete())
    neutralizers = draw.neutralizers.loc[predictions.index]
    assert_matches(
        ours.tie_kept_rank__gaussianize__neutralize__variance_normalize(predictions, neutralizers),
        oracle.tie_kept_rank__gaussianize__neutralize__variance_normalize(predictions, neutralizers),
    )


def test_filter_sort_index_many_matches_numerai_tools(draw: Draw) -> None:
    inputs = [draw.targets, draw.predictions, draw.meta_model, draw.neutralizers]
    assert_matches(tuple(ours.filter_sort_index_many(inputs)), tuple(oracle.filter_sort_index_many(inputs)))
    short = _too_little_overlap(draw)
    short_inputs = [short.targets, short.predictions, short.meta_model]
    assert_both_refuse(
        lambda: ours.filter_sort_index_many(short_inputs),
        lambda: oracle.filter_sort_index_many(short_inputs),
        r"inputs\[0\] does not have enough overlapping ids",
    )


def test_correlation_matches_numerai_tools(draw: Draw) -> None:
    predictions, targets = _paired(draw)
    for model in predictions.columns[:2]:
        assert_matches(
            ours.correlation(targets, predictions[model]), oracle.correlation(targets, predictions[model])
        )


# ----------------------------------------------------------------------------- correlations


@pytest.mark.parametrize("top_bottom", [None, "tenth"])
def test_numerai_corr_matches_numerai_tools_with_ties_nans_and_partial_overlap(
    draw: Draw, top_bottom: str | None
) -> None:
    n = _top_bottom(draw) if top_bottom else None
    target_pow15 = _is_binned(draw.targets)
    assert_matches(
        ours.numerai_corr(draw.predictions, draw.targets, top_bottom=n, target_pow15=target_pow15),
        oracle.numerai_corr(draw.predictions, draw.targets, top_bottom=n, target_pow15=target_pow15),
    )


def test_numerai_corr_without_target_power_matches_numerai_tools(draw: Draw) -> None:
    assert_matches(
        ours.numerai_corr(draw.predictions, draw.targets, target_pow15=False),
        oracle.numerai_corr(draw.predictions, draw.targets, target_pow15=False),
    )


def test_numerai_corr_with_target_power_on_raw_returns_matches_numerai_tools(draw: Draw) -> None:
    rng = np.random.default_rng(len(draw.targets))
    returns = draw.targets.where(draw.targets.isna(), rng.normal(0.001, 0.03, len(draw.targets)))
    assert_matches(
        ours.numerai_corr(draw.predictions, returns), oracle.numerai_corr(draw.predictions, returns)
    )


def test_numerai_corr_refuses_targets_that_the_power_decorrelates_like_numerai_tools() -> None:
    # Mostly ±1 with one ±12 pair: ``t ** 1.5`` is only ~0.83 correlated with ``t``.
    ids = [f"n{i:04d}" for i in range(1000)]
    targets = pd.Series([1.0, -1.0] * 499 + [12.0, -12.0], index=ids, name="target")
    predictions = pd.DataFrame({"m": np.linspace(0, 1, 1000)}, index=ids)
    assert_both_refuse(
        lambda: ours.numerai_corr(predictions, targets),
        lambda: oracle.numerai_corr(predictions, targets),
        "target_pow15=False",
    )
    assert_matches(
        ours.numerai_corr(predictions, targets, target_pow15=False),
        oracle.numerai_corr(predictions, targets, target_pow15=False),
    )


def test_numerai_corr_honours_a_custom_max_filtered_index_ratio_like_numerai_tools(draw: Draw) -> None:
    short = _too_little_overlap(draw)
    assert_matches(
        ours.numerai_corr(short.predictions, short.targets, 0.5, target_pow15=False),
        oracle.numerai_corr(short.predictions, short.targets, 0.5, target_pow15=False),
    )


@pytest.mark.parametrize("top_bottom", [None, "tenth"])
def test_correlation_contribution_matches_numerai_tools(draw: Draw, top_bottom: str | None) -> None:
    n = _top_bottom(draw) if top_bottom else None
    assert_matches(
        ours.correlation_contribution(draw.predictions, draw.meta_model, draw.targets, top_bottom=n),
        oracle.correlation_contribution(draw.predictions, draw.meta_model, draw.targets, top_bottom=n),
    )


@pytest.mark.parametrize("top_bottom", [None, "tenth"])
def test_feature_neutral_corr_matches_numerai_tools(draw: Draw, top_bottom: str | None) -> None:
    predictions = draw.complete()
    features = _features(predictions.index, seed=len(predictions))
    n = _top_bottom(draw) if top_bottom else None
    assert_matches(
        ours.feature_neutral_corr(predictions, features, draw.targets, top_bottom=n),
        oracle.feature_neutral_corr(_sorted(predictions), _sorted(features), draw.targets, top_bottom=n),
    )


def test_feature_neutral_corr_refuses_nan_predictions_like_numerai_tools() -> None:
    draw = make_draw(5, nans=True)
    features = _features(draw.predictions.index, seed=5)
    assert_both_refuse(
        lambda: ours.feature_neutral_corr(draw.predictions, features, draw.targets),
        lambda: oracle.feature_neutral_corr(_sorted(draw.predictions), _sorted(features), draw.targets),
        "NaN",
    )


@pytest.mark.parametrize("top_bottom", [None, "tenth"])
def test_neutral_correlation_matches_numerai_tools(draw: Draw, top_bottom: str | None) -> None:
    n = _top_bottom(draw) if top_bottom else None
    assert_matches(
        ours.neutral_correlation(draw.predictions, draw.neutralizers, draw.targets, top_bottom=n),
        oracle.neutral_correlation(draw.predictions, draw.neutralizers, draw.targets, top_bottom=n),
    )


@pytest.mark.parametrize("top_bottom", [None, "tenth"])
def test_neutral_contribution_matches_numerai_tools(draw: Draw, top_bottom: str | None) -> None:
    n = _top_bottom(draw) if top_bottom else None
    args = (draw.predictions, draw.meta_model, draw.neutralizers, draw.targets)
    assert_matches(
        ours.neutral_contribution(*args, top_bottom=n), oracle.neutral_contribution(*args, top_bottom=n)
    )


@pytest.mark.parametrize("top_bottom", [None, "tenth"])
def test_max_feature_correlation_matches_numerai_tools(draw: Draw, top_bottom: str | None) -> None:
    predictions = draw.complete()
    features = _features(predictions.index, seed=len(predictions), n_features=8)
    features["constant"] = 2.0
    n = _top_bottom(draw) if top_bottom else None
    for model in predictions.columns[:3]:
        signal = predictions[model]
        assert_matches(
            ours.max_feature_correlation(signal, features, top_bottom=n),
            oracle.max_feature_correlation(_sorted(signal), _sorted(features), top_bottom=n),
        )


@pytest.mark.parametrize("top_bottom", [None, "tenth"])
def test_pearson_correlation_matches_numerai_tools(draw: Draw, top_bottom: str | None) -> None:
    predictions, targets = _paired(draw)
    n = _top_bottom(draw) if top_bottom else None
    for model in predictions.columns[:3]:
        assert_matches(
            ours.pearson_correlation(targets, predictions[model], top_bottom=n),
            oracle.pearson_correlation(targets, predictions[model], top_bottom=n),
        )
    if n:
        # top/bottom selection re-aligns, so unsorted, NaN-holding, partly overlapping inputs are fine
        signal = draw.predictions.iloc[:, 0].sample(frac=1.0, random_state=1)
        all_targets = _sorted(draw.targets.dropna())
        assert_matches(
            ours.pearson_correlation(all_targets, signal, top_bottom=n),
            oracle.pearson_correlation(all_targets, signal, top_bottom=n),
        )


def test_spearman_correlation_matches_numerai_tools_with_ties(draw: Draw) -> None:
    predictions, targets = _paired(draw)
    for model in predictions.columns[:3]:
        assert_matches(
            ours.spearman_correlation(targets, predictions[model]),
            oracle.spearman_correlation(targets, predictions[model]),
        )


def test_pearson_and_spearman_refuse_nans_like_numerai_tools(draw: Draw) -> None:
    predictions, targets = _paired(draw)
    targets = targets.copy()
    targets.iloc[1] = np.nan
    signal = predictions.iloc[:, 0]
    assert_both_refuse(
        lambda: ours.pearson_correlation(targets, signal),
        lambda: oracle.pearson_correlation(targets, signal),
        "NaN",
    )
    assert_both_refuse(
        lambda: ours.spearman_correlation(targets, signal),
        lambda: oracle.spearman_correlation(targets, signal),
        "NaN",
    )


# ----------------------------------------------------------------------------- Signals portfolio


@pytest.mark.parametrize("center_and_normalize", [False, True])
def test_generate_neutralized_weights_matches_numerai_tools(draw: Draw, center_and_normalize: bool) -> None:
    predictions = draw.complete()
    args = (draw.neutralizers, draw.sample_weights)
    assert_matches(
        ours.generate_neutralized_weights(predictions, *args, center_and_normalize=center_and_normalize),
        oracle.generate_neutralized_weights(
            _sorted(predictions), *args, center_and_normalize=center_and_normalize
        ),
    )


def test_generate_neutralized_weights_refuses_nans_like_numerai_tools(draw: Draw) -> None:
    predictions = _sorted(draw.complete()).copy()
    predictions.iloc[2, 0] = np.nan
    assert_both_refuse(
        lambda: ours.generate_neutralized_weights(predictions, draw.neutralizers, draw.sample_weights),
        lambda: oracle.generate_neutralized_weights(predictions, draw.neutralizers, draw.sample_weights),
        "NaN",
    )


def test_alpha_matches_numerai_tools(draw: Draw) -> None:
    predictions = draw.complete()
    args = (draw.neutralizers, draw.sample_weights, draw.targets)
    assert_matches(ours.alpha(predictions, *args), oracle.alpha(predictions, *args))


def test_meta_portfolio_contribution_matches_numerai_tools_with_unstaked_models(draw: Draw) -> None:
    predictions = draw.complete()
    stakes = draw.stakes.copy()
    if len(stakes) > 2:
        stakes.iloc[0] = np.nan
    args = (draw.neutralizers, draw.sample_weights, draw.targets)
    assert_matches(
        ours.meta_portfolio_contribution(predictions, stakes, *args),
        oracle.meta_portfolio_contribution(predictions, stakes, *args),
    )


# ----------------------------------------------------------------------------- churn and turnover


def _next_week(draw: Draw, seed: int) -> pd.Series:
    """A later submission of model 0: partly the same signal, on a partly different universe."""
    rng = np.random.default_rng(seed)
    current = draw.predictions.iloc[:, 0]
    later = 0.8 * current.fillna(0.5) + 0.2 * rng.random(len(current))
    if current.round(1).equals(current):
        later = later.round(1)
    later = later.drop(later.index[: len(later) // 20]).sample(frac=1.0, random_state=seed)
    return later


@pytest.mark.parametrize("top_bottom", [None, "tenth"])
def test_churn_matches_numerai_tools_on_partially_overlapping_submissions(
    draw: Draw, top_bottom: str | None
) -> None:
    previous = draw.predictions.iloc[:, 0]
    current = _next_week(draw, seed=len(previous))
    n = _top_bottom(draw) if top_bottom else None
    assert_matches(
        ours.churn(previous, current, top_bottom=n), oracle_signals.churn(previous, current, top_bottom=n)
    )
    assert_matches(ours.churn(previous, previous, top_bottom=n), 0.0)


def test_churn_refuses_a_constant_submission_like_numerai_tools(draw: Draw) -> None:
    previous = draw.predictions.iloc[:, 0]
    constant = pd.Series(0.5, index=previous.index)
    assert_both_refuse(
        lambda: ours.churn(previous, constant),
        lambda: oracle_signals.churn(previous, constant),
        "standard deviation",
    )


def test_turnover_matches_numerai_tools_on_neutralized_weights(draw: Draw) -> None:
    args = (draw.neutralizers, draw.sample_weights)
    previous = ours.generate_neutralized_weights(
        draw.complete().iloc[:, :1], *args, center_and_normalize=True
    )
    current = ours.generate_neutralized_weights(
        _next_week(draw, seed=3).to_frame("model_000"), *args, center_and_normalize=True
    )
    previous, current = previous.iloc[:, 0], current.iloc[:, 0]
    assert_matches(ours.turnover(previous, current), oracle_signals.turnover(previous, current))
    raw_previous = draw.predictions.iloc[:, 0]
    raw_current = _next_week(draw, seed=4)
    assert_matches(
        ours.turnover(raw_previous, raw_current), oracle_signals.turnover(raw_previous, raw_current)
    )


def test_neutral_churn_matches_numerai_tools_across_two_universes(draw: Draw) -> None:
    previous = draw.predictions.iloc[:, 0]
    current = _next_week(draw, seed=5)
    later_neutralizers = draw.neutralizers * 1.1 + 0.01 * np.random.default_rng(5).standard_normal(
        draw.neutralizers.shape
    )
    assert_matches(
        ours.neutral_churn(previous, current, draw.neutralizers, later_neutralizers),
        oracle_signals.neutral_churn(previous, current, draw.neutralizers, later_neutralizers),
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_neutral_churn_penalty_matches_numerai_tools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(50):
        churn_value = float(rng.choice([rng.uniform(0, 2), rng.uniform(0, 0.3), 0.0, 2.0]))
        threshold = float(rng.uniform(0, 0.5))
        scaling = float(rng.choice([10.0, rng.uniform(0.1, 50), 1e4]))
        mine = ours.neutral_churn_penalty(churn_value, threshold, scaling)
        theirs = oracle_signals.neutral_churn_penalty(churn_value, threshold, scaling)
        assert math.isclose(mine, theirs, rel_tol=0, abs_tol=TOLERANCE)


@pytest.mark.parametrize(
    "arguments",
    [(-0.01, 0.1, 10.0), (2.01, 0.1, 10.0), (math.nan, 0.1, 10.0), (0.3, -0.1, 10.0), (0.3, 0.1, 0.0)],
)
def test_neutral_churn_penalty_refuses_out_of_range_inputs_like_numerai_tools(
    arguments: tuple[float, float, float],
) -> None:
    assert_both_refuse(
        lambda: ours.neutral_churn_penalty(*arguments),
        lambda: oracle_signals.neutral_churn_penalty(*arguments),
        "must be finite",
    )


# ----------------------------------------------------------------------------- > 20 % of ids dropped


REFUSAL_CASES = {
    "numerai_corr": (lambda x, d: x.numerai_corr(d.predictions, d.targets, target_pow15=False), oracle),
    "correlation_contribution": (
        lambda x, d: x.correlation_contribution(d.predictions, d.meta_model, d.targets),
        oracle,
    ),
    "neutral_correlation": (
        lambda x, d: x.neutral_correlation(d.predictions, d.neutralizers, d.targets),
        oracle,
    ),
    "neutral_contribution": (
        lambda x, d: x.neutral_contribution(d.predictions, d.meta_model, d.neutralizers, d.targets),
        oracle,
    ),
    "alpha": (lambda x, d: x.alpha(d.predictions, d.neutralizers, d.sample_weights, d.targets), oracle),
    "meta_portfolio_contribution": (
        lambda x, d: x.meta_portfolio_contribution(
            d.predictions, d.stakes, d.neutralizers, d.sample_weights, d.targets
        ),
        oracle,
    ),
    "churn": (lambda x, d: x.churn(d.predictions.iloc[:, 0], d.targets), oracle_signals),
    "turnover": (lambda x, d: x.turnover(d.predictions.iloc[:, 0], d.targets), oracle_signals),
}


@pytest.mark.parametrize("score", list(REFUSAL_CASES))
@pytest.mark.parametrize("seed", SEEDS[:2])
def test_scores_refuse_inputs_with_more_than_twenty_percent_of_ids_dropped(score: str, seed: int) -> None:
    draw = _too_little_overlap(make_draw(seed, ties=True, nans=True))
    call, library = REFUSAL_CASES[score]
    assert_both_refuse(lambda: call(ours, draw), lambda: call(library, draw), "overlapping")


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_neutralized_scores_refuse_neutralizers_covering_too_few_ids(seed: int) -> None:
    draw = make_draw(seed)
    thin = draw.neutralizers.iloc[: int(0.7 * len(draw.neutralizers))]
    thin_weights = draw.sample_weights.loc[thin.index]
    p, t = draw.predictions, draw.targets
    for call in (
        lambda x: x.neutral_correlation(p, thin, t),
        lambda x: x.neutral_contribution(p, draw.meta_model, thin, t),
        lambda x: x.generate_neutralized_weights(_sorted(p), thin, thin_weights),
    ):
        assert_both_refuse(lambda call=call: call(ours), lambda call=call: call(oracle), "overlapping")
    previous = p.iloc[:, 0]
    assert_both_refuse(
        lambda: ours.neutral_churn(previous, previous, thin, draw.neutralizers),
        lambda: oracle_signals.neutral_churn(previous, previous, thin, draw.neutralizers),
        "overlapping",
    )


# ----------------------------------------------------------------------------- 500 models


MULTI_MODEL_SCORES = {
    "numerai_corr": lambda x, d: x.numerai_corr(d.predictions, d.targets),
    "numerai_corr_top_bottom": lambda x, d: x.numerai_corr(d.predictions, d.targets, top_bottom=50),
    "correlation_contribution": lambda x, d: x.correlation_contribution(
        d.predictions, d.meta_model, d.targets
    ),
    "correlation_contribution_top_bottom": lambda x, d: x.correlation_contribution(
        d.predictions, d.meta_model, d.targets, top_bottom=50
    ),
    "neutral_correlation": lambda x, d: x.neutral_correlation(d.predictions, d.neutralizers, d.targets),
    "neutral_contribution": lambda x, d: x.neutral_contribution(
        d.predictions, d.meta_model, d.neutralizers, d.targets
    ),
    "alpha": lambda x, d: x.alpha(d.complete(), d.neutralizers, d.sample_weights, d.targets),
    "meta_portfolio_contribution": lambda x, d: x.meta_portfolio_contribution(
        d.complete(), d.stakes, d.neutralizers, d.sample_weights, d.targets
    ),
    "stake_weight": lambda x, d: x.stake_weight(d.predictions, d.stakes),
}


@pytest.mark.parametrize("score", list(MULTI_MODEL_SCORES))
def test_scores_of_500_models_match_numerai_tools(crowd_draw: Draw, score: str) -> None:
    compute = MULTI_MODEL_SCORES[score]
    assert_matches(compute(ours, crowd_draw), compute(oracle, crowd_draw))


def test_transforms_of_500_models_match_numerai_tools(crowd_draw: Draw) -> None:
    predictions = _sorted(crowd_draw.complete())
    neutralizers = crowd_draw.neutralizers.loc[predictions.index]
    assert_matches(
        ours.tie_kept_rank(crowd_draw.predictions).sort_index(),
        oracle.tie_kept_rank(_sorted(crowd_draw.predictions)),
    )
    gaussianized = oracle.gaussian(oracle.tie_kept_rank(predictions))
    assert_matches(ours.power(gaussianized, 1.5), oracle.power(gaussianized, 1.5))
    assert_matches(
        ours.neutralize(gaussianized, neutralizers, 0.7), oracle.neutralize(gaussianized, neutralizers, 0.7)
    )
    assert_matches(
        ours.generate_neutralized_weights(
            predictions, crowd_draw.neutralizers, crowd_draw.sample_weights, True
        ),
        oracle.generate_neutralized_weights(
            predictions, crowd_draw.neutralizers, crowd_draw.sample_weights, True
        ),
    )


def test_feature_neutral_corr_of_500_models_matches_numerai_tools(crowd_draw: Draw) -> None:
    predictions = _sorted(crowd_draw.complete())
    features = _features(predictions.index, seed=0, n_features=20)
    targets = crowd_draw.targets
    assert_matches(
        ours.feature_neutral_corr(predictions, features, targets),
        oracle.feature_neutral_corr(predictions, features, targets),
    )
