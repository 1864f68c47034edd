"""The pandas front: numerai-tools 0.7.2's names and signatures over crowdalpha's numpy core.

``from crowdalpha.scoring import numerai_corr`` is a drop-in for
``from numerai_tools.scoring import numerai_corr``: the same alignment (ids intersected, NaN rows
dropped, at most 20 % of either side dropped, index sorted), the same centring order and the same
results to ~1e-12 — but every model of a frame is scored in one pass. Broken preconditions raise
:class:`ScoringError` naming the rule instead of a bare ``AssertionError``.

Deliberate differences, all documented on the function: duplicate ids are rejected; a model whose
neutralised predictions are constant scores NaN instead of failing the whole frame; rank and
Gaussianise accept an unsorted index (their result does not depend on order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import pandas as pd

from crowdalpha.scoring import contribution as _contribution
from crowdalpha.scoring import correlations as _correlations
from crowdalpha.scoring import crowd as _crowd
from crowdalpha.scoring import portfolio as _portfolio
from crowdalpha.scoring import stability as _stability
from crowdalpha.scoring import transforms as _transforms
from crowdalpha.scoring._layout import as_rows
from crowdalpha.scoring.errors import ScoringError
from crowdalpha.scoring.ranking import transform_rows
from crowdalpha.scoring.transforms import Neutralizer

DEFAULT_MAX_FILTERED_INDEX_RATIO = 0.2
"""At most this share of either input's ids may be dropped when aligning two inputs."""

Frame = TypeVar("Frame", pd.Series, pd.DataFrame)


# ----------------------------------------------------------------------------- alignment


def _require_unique(data: pd.Series | pd.DataFrame, name: str) -> None:
    if not data.index.is_unique:
        duplicated = data.index[data.index.duplicated()].unique()[:5].tolist()
        raise ScoringError(f"{name} has duplicate ids {duplicated} (rule: ids must be unique)")


def require_overlap(
    kept: int, total: int, name: str, others: str, ratio: float = DEFAULT_MAX_FILTERED_INDEX_RATIO
) -> None:
    """Raise ScoringError when ``name`` keeps under ``1 − ratio`` of its ``total`` ids after alignment."""
    if total == 0 or kept / total < 1 - ratio:
        share = round((1 - ratio) * 100, 2)
        raise ScoringError(
            f"{name} does not have enough overlapping ids with {others}: {kept} of {total} ids "
            f"usable (rule: at least {share}% of ids must overlap after dropping NaN)"
        )


def filter_sort_index(
    s1: Frame,
    s2: Frame,
    max_filtered_ratio: float = DEFAULT_MAX_FILTERED_INDEX_RATIO,
    *,
    names: tuple[str, str] = ("s1", "s2"),
) -> tuple[Frame, Frame]:
    """Return both inputs restricted to their common non-NaN ids, sorted by id."""
    aligned = filter_sort_index_many([s1, s2], max_filtered_ratio, names=names)
    return aligned[0], aligned[1]


def filter_sort_index_many(
    inputs: Sequence[pd.Series | pd.DataFrame],
    max_filtered_ratio: float = DEFAULT_MAX_FILTERED_INDEX_RATIO,
    *,
    names: Sequence[str] | None = None,
) -> list:
    """Return every input restricted to the ids non-NaN in all of them, sorted by id.

    A DataFrame row with a NaN in any column is dropped. Raises when an input loses more than
    ``max_filtered_ratio`` of its ids.
    """
    if not inputs:
        raise ScoringError("filter_sort_index_many needs at least one input")
    labels = list(names) if names is not None else [f"inputs[{i}]" for i in range(len(inputs))]
    for data, label in zip(inputs, labels, strict=True):
        _require_unique(data, label)
    ids = inputs[0].dropna().index
    for data in inputs[1:]:
        ids = ids.intersection(data.dropna().index)
    ids = ids.sort_values()
    result = [data.loc[ids] for data in inputs]
    for i, (data, label) in enumerate(zip(inputs, labels, strict=True)):
        others = "the others" if len(inputs) > 2 else labels[1 - i]
        require_overlap(len(result[i]), len(data), label, others, max_filtered_ratio)
    return result


def _as_frame(predictions: pd.Series | pd.DataFrame) -> pd.DataFrame:
    if isinstance(predictions, pd.Series):
        return predictions.to_frame(predictions.name if predictions.name is not None else 0)
    if not isinstance(predictions, pd.DataFrame):
        raise ScoringError("predictions must be a pandas DataFrame (one column per model)")
    return predictions


def _scores(values: np.ndarray, predictions: pd.DataFrame) -> pd.Series:
    return pd.Series(values, index=predictions.columns, dtype=np.float64)


def _rows(predictions: pd.DataFrame) -> np.ndarray:
    try:
        values = predictions.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ScoringError(f"predictions must be numeric: {error}") from None
    return as_rows(values)


def _require_same_ids(
    first: pd.Series | pd.DataFrame, second: pd.Series | pd.DataFrame, names: tuple[str, str]
) -> None:
    if len(first.index) != len(second.index) or not first.index.sort_values().equals(
        second.index.sort_values()
    ):
        raise ScoringError(f"{names[0]} and {names[1]} must have the same ids (rule: indices match)")


# ----------------------------------------------------------------------------- primitives


def rank(s: Frame, method: str = "average") -> Frame:
    """Return percentile ranks ``(rank - 0.5) / count`` per column; ``average`` keeps ties, ``first``
    breaks them by position. NaN stays NaN."""
    if method not in ("average", "first"):
        raise ScoringError(f"rank method must be 'average' or 'first'; got {method!r}")
    if method == "first" and not s.index.is_monotonic_increasing:
        raise ScoringError("unsorted index found (rule: sort by id before a tie-broken rank)")
    ranked = transform_rows(as_rows(s.to_numpy(dtype=np.float64)), tie_broken=method == "first")
    if isinstance(s, pd.Series):
        return pd.Series(ranked[0], index=s.index, name=s.name)
    return pd.DataFrame(ranked.T, index=s.index, columns=s.columns)


def tie_kept_rank(s: Frame) -> Frame:
    """Return percentile ranks per column with ties sharing their mean rank."""
    return rank(s, "average")


def tie_broken_rank(df: Frame) -> Frame:
    """Return percentile ranks per column with ties ordered by (sorted) index."""
    return rank(df, "first")


def gaussian(df: Frame) -> Frame:
    """Return the standard normal quantile of every value (expects values in (0, 1))."""
    return df.apply(lambda column: _transforms.gaussian(column.to_numpy(dtype=np.float64)))


def power(df: pd.DataFrame, p: float) -> pd.DataFrame:
    """Return ``sign(x) * |x| ** p``; each column must stay ≥ 0.9 correlated with its input."""
    if df.isna().to_numpy().any():
        raise ScoringError("Data contains NaNs (rule: power needs complete data)")
    result = np.sign(df) * np.abs(df) ** p
    correlated = (result.std() == 0) | (result.corrwith(df) >= 0.9)
    if not correlated.all():
        bad = list(correlated.index[~correlated][:5])
        raise ScoringError(
            f"power {p} changes columns {bad} too much (rule: result must stay ≥ 0.9 correlated)"
        )
    return result


def center(s: Frame) -> Frame:
    """Return each column minus its mean."""
    return s - s.mean()


def variance_normalize(df: Frame) -> Frame:
    """Return each column divided by its population standard deviation (ddof 0)."""
    return df / np.std(df, axis=0)


def weight_normalize(s: Frame) -> Frame:
    """Return each column divided by the sum of its absolute values."""
    return s / s.abs().sum(axis=0)


def min_max_normalize(s: pd.Series) -> pd.Series:
    """Return the series scaled linearly to [0, 1]."""
    return (s - s.min()) / (s.max() - s.min())


def standardize(df: Frame) -> Frame:
    """Return each column centred and scaled to unit population standard deviation."""
    return variance_normalize(center(df))


def orthogonalize(v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Return ``v`` (N or N×K) minus its projection onto the vector ``u`` (N)."""
    return _transforms.orthogonalize(v, u)


def sharpe_ratio(s: pd.Series) -> float:
    """Return mean / population standard deviation."""
    return float(np.mean(s) / np.std(s))


def stake_weight(predictions: pd.DataFrame, stakes: pd.Series) -> pd.Series:
    """Return the stake-weighted average of the staked columns (NaN predictions count as 0)."""
    missing = stakes.index.difference(predictions.columns)
    if len(missing):
        raise ScoringError(f"stakes name models missing from predictions: {list(missing[:5])}")
    values = _transforms.stake_weight(predictions[stakes.index].to_numpy(np.float64), stakes.to_numpy())
    return pd.Series(values, index=predictions.index)


def neutralize(df: pd.DataFrame, neutralizers: pd.DataFrame, proportion: float = 1.0) -> pd.DataFrame:
    """Return ``df`` minus ``proportion`` × its least-squares fit on the neutralisers + a constant.

    Zero-variance columns come back as NaN.
    """
    df = _as_frame(df)
    if df.isna().to_numpy().any():
        raise ScoringError("Data contains NaNs (rule: neutralize needs complete data)")
    if neutralizers.isna().to_numpy().any():
        raise ScoringError("Neutralizers contain NaNs (rule: neutralize needs complete neutralizers)")
    if len(df.index) != len(neutralizers.index) or not (df.index == neutralizers.index).all():
        raise ScoringError("Indices don't match (rule: data and neutralizers share the same ids, in order)")
    residual = Neutralizer(neutralizers.to_numpy(np.float64)).residual_rows(_rows(df), proportion)
    return pd.DataFrame(residual.T, index=df.index, columns=df.columns)


def tie_kept_rank__gaussianize__pow_1_5(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``sign(g) |g| ** 1.5`` of the Gaussianised tie-kept ranks of each column."""
    df = _as_frame(df)
    if df.isna().to_numpy().any():
        raise ScoringError("Data contains NaNs (rule: power needs complete data)")
    return pd.DataFrame(transform_rows(_rows(df), to="gaussian_pow15").T, index=df.index, columns=df.columns)


def tie_kept_rank__gaussianize__neutralize__variance_normalize(
    df: pd.DataFrame, neutralizers: pd.DataFrame
) -> pd.DataFrame:
    """Return the Gaussianised ranks of each column, neutralised and scaled to unit variance."""
    df = _as_frame(df)
    gaussianized = pd.DataFrame(
        transform_rows(_rows(df), to="gaussian").T, index=df.index, columns=df.columns
    )
    return variance_normalize(neutralize(gaussianized, neutralizers))


# ----------------------------------------------------------------------------- correlations


def _target_mean_and_aligned(
    targets: pd.Series, predictions: pd.DataFrame, ratio: float
) -> tuple[float, pd.Series, pd.DataFrame]:
    target_mean = float(targets.mean())
    aligned_targets, aligned = filter_sort_index(
        targets, predictions, ratio, names=("targets", "predictions")
    )
    return target_mean, aligned_targets, aligned


def require_target_power_correlated(targets: np.ndarray) -> None:
    """Raise ScoringError when ``targets ** 1.5`` is less than 0.9 correlated with (centred) ``targets``."""
    powered = _transforms.power(targets, 1.5)
    if np.std(powered) > 0 and np.corrcoef(powered, targets)[0, 1] < 0.9:
        raise ScoringError(
            "targets ** 1.5 is less than 0.9 correlated with the targets "
            "(rule: pass target_pow15=False for heavy-tailed targets)"
        )


def numerai_corr(
    predictions: pd.DataFrame,
    targets: pd.Series,
    max_filtered_index_ratio: float = DEFAULT_MAX_FILTERED_INDEX_RATIO,
    top_bottom: int | None = None,
    target_pow15: bool = True,
) -> pd.Series:
    """Return CORR per model: centre targets, align, rank → Gaussianise → ^1.5, target ^1.5, Pearson."""
    predictions = _as_frame(predictions)
    target_mean, targets, predictions = _target_mean_and_aligned(
        targets, predictions, max_filtered_index_ratio
    )
    target = targets.to_numpy(np.float64)
    if target_pow15:
        require_target_power_correlated(target - target_mean)
    scores = _correlations.numerai_corr(
        _rows(predictions).T,
        target,
        target_mean=target_mean,
        target_pow15=target_pow15,
        top_bottom=top_bottom,
    )
    return _scores(np.atleast_1d(scores), predictions)


def neutral_correlation(
    predictions: pd.DataFrame,
    neutralizers: pd.DataFrame,
    targets: pd.Series,
    max_filtered_index_ratio: float = DEFAULT_MAX_FILTERED_INDEX_RATIO,
    top_bottom: int | None = None,
) -> pd.Series:
    """Return Pearson of neutralised Gaussianised ranks with centred targets (no 1.5 powers)."""
    predictions = _as_frame(predictions)
    target_mean = float(targets.mean())
    targets, predictions, neutralizers = filter_sort_index_many(
        [targets, predictions, neutralizers],
        max_filtered_index_ratio,
        names=("targets", "predictions", "neutralizers"),
    )
    scores = _correlations.neutral_correlation(
        _rows(predictions).T,
        neutralizers.to_numpy(np.float64),
        targets.to_numpy(np.float64),
        target_mean=target_mean,
        top_bottom=top_bottom,
    )
    return _scores(np.atleast_1d(scores), predictions)


def feature_neutral_corr(
    predictions: pd.DataFrame,
    features: pd.DataFrame,
    targets: pd.Series,
    top_bottom: int | None = None,
) -> pd.Series:
    """Return FNC per model: CORR after neutralising the Gaussianised ranks to the features.

    Predictions and features must share their ids. A model whose neutralised predictions are
    constant scores NaN (numerai-tools fails the whole frame).
    """
    predictions = _as_frame(predictions)
    _require_unique(predictions, "predictions")
    _require_same_ids(predictions, features, ("predictions", "features"))
    if predictions.isna().to_numpy().any():
        raise ScoringError("Data contains NaNs (rule: feature-neutral CORR needs complete predictions)")
    predictions = predictions.sort_index()
    features = features.loc[predictions.index]
    if features.isna().to_numpy().any():
        raise ScoringError("Neutralizers contain NaNs (rule: features must be complete)")
    target_mean = float(targets.mean())
    _require_unique(targets, "targets")
    ids = targets.dropna().index.intersection(predictions.index).sort_values()
    require_overlap(len(ids), len(targets), "targets", "predictions", DEFAULT_MAX_FILTERED_INDEX_RATIO)
    require_overlap(len(ids), len(predictions), "predictions", "targets", DEFAULT_MAX_FILTERED_INDEX_RATIO)
    gaussianized = transform_rows(_rows(predictions), to="gaussian")
    neutral = Neutralizer(features.to_numpy(np.float64)).residual_rows(gaussianized)
    positions = predictions.index.get_indexer(ids)
    neutral = np.ascontiguousarray(neutral[:, positions])
    target = targets.loc[ids].to_numpy(np.float64)
    require_target_power_correlated(target - target_mean)
    scores = np.full(neutral.shape[0], np.nan)
    scorable = ~np.isnan(neutral).any(axis=1)
    if scorable.any():
        transformed = transform_rows(np.ascontiguousarray(neutral[scorable]), to="gaussian_pow15")
        scores[scorable] = _correlations.corr_of_transformed(
            transformed, target, target_mean=target_mean, top_bottom=top_bottom
        )
    return _scores(scores, predictions)


def _strictly_aligned(target: pd.Series, predictions: pd.Series, what: str) -> tuple[pd.Series, pd.Series]:
    _require_unique(target, "target")
    _require_unique(predictions, "predictions")
    _require_same_ids(target, predictions, ("target", "predictions"))
    target, predictions = target.sort_index(), predictions.loc[target.sort_index().index]
    if target.isna().any() or predictions.isna().any():
        raise ScoringError(f"{what} needs complete data (rule: no NaNs in target or predictions)")
    return target, predictions


def pearson_correlation(target: pd.Series, predictions: pd.Series, top_bottom: int | None = None) -> float:
    """Return Pearson's r of two series on the same ids (top/bottom ``top_bottom`` of predictions)."""
    if top_bottom:
        _require_unique(predictions, "predictions")
        positions = _correlations.top_bottom_positions(
            predictions.to_numpy(np.float64).reshape(1, -1), top_bottom
        )[0]
        predictions = predictions.iloc[positions].sort_index()
        target, predictions = filter_sort_index(
            target, predictions, 1 - top_bottom / len(target), names=("target", "predictions")
        )
    target, predictions = _strictly_aligned(target, predictions, "pearson_correlation")
    return float(
        _correlations.pearson_correlation(target.to_numpy(np.float64), predictions.to_numpy(np.float64))
    )


def spearman_correlation(target: pd.Series, predictions: pd.Series) -> float:
    """Return Spearman's rank correlation (ties averaged) of two series on the same ids."""
    target, predictions = _strictly_aligned(target, predictions, "spearman_correlation")
    return float(
        _correlations.spearman_correlation(target.to_numpy(np.float64), predictions.to_numpy(np.float64))
    )


def correlation(live_targets: pd.Series, predictions: pd.Series) -> float:
    """Return Pearson's r of two series on the same ids."""
    return pearson_correlation(live_targets, predictions)


def max_feature_correlation(
    s: pd.Series, features: pd.DataFrame, top_bottom: int | None = None
) -> tuple[str, float]:
    """Return (name, |r|) of the feature most correlated with the series."""
    _require_unique(s, "predictions")
    _require_same_ids(s, features, ("predictions", "features"))
    s = s.sort_index()
    features = features.loc[s.index]
    best, exposure = _correlations.max_feature_correlation(
        s.to_numpy(np.float64), features.to_numpy(np.float64), top_bottom=top_bottom
    )
    return str(features.columns[best[0]]), float(exposure[0])


# ----------------------------------------------------------------------------- contributions


def correlation_contribution(
    predictions: pd.DataFrame,
    meta_model: pd.Series,
    live_targets: pd.Series,
    top_bottom: int | None = None,
) -> pd.Series:
    """Return MMC per model (BMC with a benchmark meta model): covariance of the targets with the
    part of each model's Gaussianised ranks orthogonal to the meta model's."""
    predictions = _as_frame(predictions)
    meta_model, predictions = filter_sort_index(meta_model, predictions, names=("meta_model", "predictions"))
    live_targets, predictions = filter_sort_index(
        live_targets, predictions, names=("live_targets", "predictions")
    )
    live_targets, meta_model = filter_sort_index(
        live_targets, meta_model, names=("live_targets", "meta_model")
    )
    scores = _contribution.correlation_contribution(
        _rows(predictions).T,
        meta_model.to_numpy(np.float64),
        live_targets.to_numpy(np.float64),
        top_bottom=top_bottom,
    )
    return _scores(np.atleast_1d(scores), predictions)


def neutral_contribution(
    predictions: pd.DataFrame,
    meta_model: pd.Series,
    neutralizers: pd.DataFrame,
    live_targets: pd.Series,
    top_bottom: int | None = None,
) -> pd.Series:
    """Return contribution per model after neutralising models and meta model to the neutralisers."""
    predictions = _as_frame(predictions)
    live_targets, predictions, meta_model, neutralizers = filter_sort_index_many(
        [live_targets, predictions, meta_model, neutralizers],
        names=("live_targets", "predictions", "meta_model", "neutralizers"),
    )
    scores = _contribution.neutral_contribution(
        _rows(predictions).T,
        meta_model.to_numpy(np.float64),
        neutralizers.to_numpy(np.float64),
        live_targets.to_numpy(np.float64),
        top_bottom=top_bottom,
    )
    return _scores(np.atleast_1d(scores), predictions)


# ----------------------------------------------------------------------------- Signals portfolio


def _neutralized_weight_frame(
    predictions: pd.DataFrame, neutralizers: pd.DataFrame, sample_weights: pd.Series
) -> pd.DataFrame:
    """Rank over all prediction ids, then align with neutralisers and weights (numerai-tools order)."""
    if predictions.isna().to_numpy().any():
        raise ScoringError("Predictions contain NaNs (rule: complete predictions)")
    if neutralizers.isna().to_numpy().any():
        raise ScoringError("Normalization factors contain NaNs (rule: complete neutralizers)")
    if sample_weights.isna().any():
        raise ScoringError("Weights contain NaNs (rule: complete sample weights)")
    transformed = tie_kept_rank__gaussianize__pow_1_5(predictions)
    transformed, neutralizers, sample_weights = filter_sort_index_many(
        [transformed, neutralizers, sample_weights],
        names=("predictions", "neutralizers", "sample_weights"),
    )
    weights = _portfolio.neutralized_weight_rows(
        _rows(transformed), neutralizers.to_numpy(np.float64), sample_weights.to_numpy(np.float64)
    )
    return pd.DataFrame(weights.T, index=transformed.index, columns=transformed.columns)


def generate_neutralized_weights(
    predictions: pd.DataFrame,
    neutralizers: pd.DataFrame,
    sample_weights: pd.Series,
    center_and_normalize: bool = False,
) -> pd.DataFrame:
    """Return each signal's neutralised, sample-weighted portfolio weights (ids × models)."""
    weights = _neutralized_weight_frame(_as_frame(predictions), neutralizers, sample_weights)
    if center_and_normalize:
        weights = weight_normalize(center(weights))
    return weights


def _require_covers(weights: pd.DataFrame, targets: pd.Series) -> None:
    if len(weights.index) != len(targets.index):
        raise ScoringError(
            f"neutralizers and sample weights cover {len(weights.index)} of the {len(targets.index)} "
            "scored ids (rule: they must cover every id that has a prediction and a target)"
        )


def alpha(
    predictions: pd.DataFrame,
    neutralizers: pd.DataFrame,
    sample_weights: pd.Series,
    targets: pd.Series,
) -> pd.Series:
    """Return Alpha per model: mean of neutralised portfolio weights × centred targets."""
    predictions = _as_frame(predictions)
    targets = center(targets)
    predictions, targets = filter_sort_index(predictions, targets, names=("predictions", "targets"))
    weights = _neutralized_weight_frame(predictions, neutralizers, sample_weights)
    _require_covers(weights, targets)
    scores = weights.to_numpy(np.float64).T @ targets.to_numpy(np.float64) / len(targets)
    return _scores(scores, weights)


def meta_portfolio_contribution(
    predictions: pd.DataFrame,
    stakes: pd.Series,
    neutralizers: pd.DataFrame,
    sample_weights: pd.Series,
    targets: pd.Series,
) -> pd.Series:
    """Return MPC per staked model: gradient of the stake-weighted portfolio's alpha, divided by 50."""
    predictions = _as_frame(predictions)
    predictions, targets = filter_sort_index(predictions, targets, names=("predictions", "targets"))
    stakes = stakes.fillna(0)
    if not np.isclose(weight_normalize(stakes).sum(), 1):
        raise ScoringError("Stakes must sum to 1 after normalisation (rule: non-negative stakes)")
    missing = stakes.index.difference(predictions.columns)
    if len(missing):
        raise ScoringError(f"stakes name models missing from predictions: {list(missing[:5])}")
    weights = _neutralized_weight_frame(predictions[stakes.index], neutralizers, sample_weights)
    _require_covers(weights, targets)
    stake = stakes.to_numpy(np.float64)
    mpc = _portfolio.mpc_of_weight_rows(
        _rows(weights), stake / np.abs(stake).sum(), targets.to_numpy(np.float64)
    )
    return pd.Series(mpc, index=stakes.index)


# ----------------------------------------------------------------------------- churn


def churn(s1: pd.Series, s2: pd.Series, top_bottom: int | None = None) -> float:
    """Return ``1 - Spearman`` of two submissions on their common ids (0 same, 2 reversed).

    With ``top_bottom=n``: one minus the mean share of ids kept in the top n and bottom n.
    """
    if top_bottom:

        def extremes(s: pd.Series) -> tuple[pd.Index, pd.Index]:
            positions = _correlations.top_bottom_positions(s.to_numpy(np.float64).reshape(1, -1), top_bottom)[
                0
            ]
            return s.index[positions[top_bottom:]], s.index[positions[:top_bottom]]

        top1, bottom1 = extremes(s1)
        top2, bottom2 = extremes(s2)
        kept = len(top1.intersection(top2)) / top_bottom + len(bottom1.intersection(bottom2)) / top_bottom
        return 1 - kept / 2
    s1, s2 = filter_sort_index(s1, s2)
    return float(_stability.churn(s1.to_numpy(np.float64), s2.to_numpy(np.float64)))


def turnover(s1: pd.Series, s2: pd.Series) -> float:
    """Return half the total absolute change between two weight vectors on their common ids."""
    s1, s2 = filter_sort_index(s1, s2)
    return float(_stability.turnover(s1.to_numpy(np.float64), s2.to_numpy(np.float64)))


def _neutralize_signal(signal: pd.Series, neutralizers: pd.DataFrame) -> pd.Series:
    signal, neutralizers = filter_sort_index(signal, neutralizers, names=("signal", "neutralizers"))
    gaussianized = transform_rows(signal.to_numpy(np.float64).reshape(1, -1), to="gaussian")
    neutral = Neutralizer(neutralizers.to_numpy(np.float64)).residual_rows(gaussianized)[0]
    return pd.Series(neutral, index=signal.index, name=signal.name)


def neutral_churn(
    s1: pd.Series, s2: pd.Series, neutralizers1: pd.DataFrame, neutralizers2: pd.DataFrame
) -> float:
    """Return churn between two submissions after neutralising each to its own era's neutralisers."""
    return churn(_neutralize_signal(s1, neutralizers1), _neutralize_signal(s2, neutralizers2))


neutral_churn_penalty = _stability.neutral_churn_penalty


# ----------------------------------------------------------------------------- crowd


def cwmm(predictions: pd.DataFrame, meta_model: pd.Series) -> pd.Series:
    """Return CWMM per model: Pearson of its ``gauss(rank) ** 1.5`` with the meta model."""
    predictions = _as_frame(predictions)
    meta_model, predictions = filter_sort_index(meta_model, predictions, names=("meta_model", "predictions"))
    scores = _crowd.cwmm(_rows(predictions).T, meta_model.to_numpy(np.float64))
    return _scores(np.atleast_1d(scores), predictions)


def _crowd_rows(predictions: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    predictions = _as_frame(predictions)
    _require_unique(predictions, "predictions")
    if predictions.isna().to_numpy().any():
        raise ScoringError("Predictions contain NaNs (rule: clean submissions before crowd scores)")
    return predictions, transform_rows(_rows(predictions.sort_index()), to="gaussian_pow15")


def mcwnm(predictions: pd.DataFrame) -> pd.Series:
    """Return MCWNM per model: its largest correlation with any other model (columns)."""
    predictions, transformed = _crowd_rows(predictions)
    return _scores(_crowd.pairwise_crowd_correlations(transformed)[0], predictions)


def apcwnm(predictions: pd.DataFrame) -> pd.Series:
    """Return APCWNM per model: its average correlation with the other models (columns)."""
    predictions, transformed = _crowd_rows(predictions)
    return _scores(_crowd.pairwise_crowd_correlations(transformed)[1], predictions)
