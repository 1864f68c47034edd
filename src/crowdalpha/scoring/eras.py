"""Era-wise scoring of a long frame and the summaries participants read.

``era_scores`` scores one era for every model at once, ranking each model once and reusing that
rank for CORR, MMC, BMC, FNC and CWMM. ``score_eras`` runs it over the eras of a frame (one row per
era × score, one column per model) and ``summarize_scores`` reduces that to mean, std (ddof 0),
Sharpe, max drawdown and lag-1 autocorrelation per model and score.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
import pandas as pd

from crowdalpha.scoring._layout import as_rows, as_vector, require_no_nan
from crowdalpha.scoring.contribution import contribution_of_gaussianized
from crowdalpha.scoring.correlations import (
    corr_of_transformed,
    feature_correlations,
    fnc_of_gaussianized,
    pearson_rows,
)
from crowdalpha.scoring.crowd import pairwise_crowd_correlations
from crowdalpha.scoring.errors import ScoringError
from crowdalpha.scoring.ranking import transform_rows, transform_rows_many
from crowdalpha.scoring.transforms import Neutralizer

SCORE_ORDER = ("corr", "mmc", "bmc", "fnc", "cwmm", "feature_exposure", "mcwnm", "apcwnm")
"""Every score ``era_scores`` can produce, in display order."""

SUMMARY_STATISTICS = ("mean", "std", "sharpe", "max_drawdown", "autocorrelation", "eras")


def era_scores(
    predictions: np.ndarray,
    targets: np.ndarray,
    *,
    meta_model: np.ndarray | None = None,
    benchmark: np.ndarray | None = None,
    features: np.ndarray | None = None,
    target_mean: float | None = None,
    pairwise: bool = False,
    scores: Collection[str] | None = None,
) -> dict[str, np.ndarray]:
    """Return every score of one era for every model (ids × models in, one array per score out).

    Always CORR; MMC and CWMM with ``meta_model``; BMC with ``benchmark`` (a benchmark meta model);
    FNC and the largest absolute feature correlation (``feature_exposure``) with ``features``;
    MCWNM and APCWNM with ``pairwise``. ``scores`` restricts the output to the names given.
    Inputs must be aligned on the same ids and complete.
    """
    wanted = set(SCORE_ORDER if scores is None else scores)
    unknown = wanted - set(SCORE_ORDER)
    if unknown:
        raise ScoringError(f"unknown score(s) {sorted(unknown)}; known: {list(SCORE_ORDER)}")
    rows = as_rows(predictions)
    n_ids = rows.shape[1]
    target = as_vector(targets, n_ids, name="targets")
    require_no_nan(rows, name="predictions")
    require_no_nan(target, name="targets")
    gaussianized, transformed = transform_rows_many(rows, ("gaussian", "gaussian_pow15"))
    result: dict[str, np.ndarray] = {}
    if "corr" in wanted:
        result["corr"] = corr_of_transformed(transformed, target, target_mean=target_mean)
    for name, reference in (("mmc", meta_model), ("bmc", benchmark)):
        if reference is None or not wanted & {name, "cwmm"}:
            continue
        reference = as_vector(reference, n_ids, name="meta_model" if name == "mmc" else "benchmark")
        require_no_nan(reference, name=name)
        if name in wanted:
            gaussian_reference = transform_rows(reference.reshape(1, -1), to="gaussian")[0]
            result[name] = contribution_of_gaussianized(gaussianized, gaussian_reference, target)
        if name == "mmc" and "cwmm" in wanted:
            result["cwmm"] = pearson_rows(transformed, reference)
    if features is not None:
        feature_matrix = np.asarray(features, dtype=np.float64)
        if "fnc" in wanted:
            result["fnc"] = fnc_of_gaussianized(
                gaussianized, Neutralizer(feature_matrix), target, target_mean=target_mean
            )
        if "feature_exposure" in wanted:
            exposure = np.abs(feature_correlations(rows.T, feature_matrix))
            result["feature_exposure"] = np.max(np.where(np.isnan(exposure), -np.inf, exposure), axis=0)
    if pairwise and wanted & {"mcwnm", "apcwnm"}:
        maxima, means = pairwise_crowd_correlations(transformed)
        result.update({"mcwnm": maxima, "apcwnm": means})
    return {name: result[name] for name in SCORE_ORDER if name in result and name in wanted}


def _numeric_block(frame: pd.DataFrame, columns: Sequence[str], what: str) -> np.ndarray:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ScoringError(f"{what} column(s) missing from the data: {missing[:5]}")
    block = frame[list(columns)]
    non_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(block[c])]
    if non_numeric:
        raise ScoringError(f"{what} column(s) are not numeric: {non_numeric[:5]}")
    return block.to_numpy(dtype=np.float64)


def score_eras(
    frame: pd.DataFrame,
    era_col: str,
    prediction_cols: Sequence[str],
    target_col: str,
    *,
    meta_model_col: str | None = None,
    benchmark_col: str | None = None,
    features: Sequence[str] | None = None,
    pairwise: bool = False,
    max_filtered_ratio: float = 0.2,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Return per-era scores: index (era, score), one column per prediction column.

    Per era, rows without a target are left out (the target is not known yet) and eras without any
    target are skipped. A meta model or benchmark missing for a whole era (it did not exist yet)
    only skips the scores that need it. Otherwise rows with a missing prediction, meta model or
    benchmark are dropped; more than ``max_filtered_ratio`` of an era's scored rows dropped that
    way is an error, as in numerai-tools. Targets are centred on the era's mean before the 1.5
    power.
    """
    prediction_cols = list(prediction_cols)
    if not prediction_cols:
        raise ScoringError("score_eras needs at least one prediction column")
    for column, what in ((era_col, "era"), (target_col, "target")):
        if column not in frame.columns:
            raise ScoringError(f"{what} column {column!r} is missing from the data")
    predictions = _numeric_block(frame, prediction_cols, "prediction")
    target = _numeric_block(frame, [target_col], "target")[:, 0]
    references = {
        name: _numeric_block(frame, [column], name)[:, 0]
        for name, column in (("meta_model", meta_model_col), ("benchmark", benchmark_col))
        if column is not None
    }
    feature_block = None if not features else _numeric_block(frame, list(features), "feature")
    eras = frame[era_col].to_numpy()
    era_labels, era_codes = np.unique(eras, return_inverse=True)
    rows_by_era = np.argsort(era_codes, kind="stable")
    boundaries = np.searchsorted(era_codes[rows_by_era], np.arange(len(era_labels) + 1))
    pieces: list[pd.DataFrame] = []
    for position, era in enumerate(era_labels):
        rows = rows_by_era[boundaries[position] : boundaries[position + 1]]
        rows = rows[~np.isnan(target[rows])]
        if rows.size:
            pieces.append(
                _score_one_era(
                    era,
                    rows,
                    predictions,
                    target,
                    references,
                    feature_block,
                    pairwise,
                    max_filtered_ratio,
                    prediction_cols,
                )
            )
        if progress is not None:
            progress(position + 1, len(era_labels))
    if not pieces:
        raise ScoringError(f"no era has a target: column {target_col!r} is empty")
    return pd.concat(pieces)


def _score_one_era(
    era: object,
    rows: np.ndarray,
    predictions: np.ndarray,
    target: np.ndarray,
    references: dict[str, np.ndarray],
    feature_block: np.ndarray | None,
    pairwise: bool,
    max_filtered_ratio: float,
    prediction_cols: list[str],
) -> pd.DataFrame:
    target_mean = float(target[rows].mean())
    references = {name: values for name, values in references.items() if not np.isnan(values[rows]).all()}
    complete = ~np.isnan(predictions[rows]).any(axis=1)
    for values in references.values():
        complete &= ~np.isnan(values[rows])
    if complete.sum() < (1 - max_filtered_ratio) * rows.size:
        raise ScoringError(
            f"era {era}: only {int(complete.sum())} of {rows.size} rows have every prediction "
            f"(rule: at most {max_filtered_ratio:.0%} of an era's rows may be dropped)"
        )
    rows = rows[complete]
    if feature_block is not None and np.isnan(feature_block[rows]).any():
        raise ScoringError(f"era {era}: features contain NaNs (rule: fill missing features first)")
    scores = era_scores(
        predictions[rows],
        target[rows],
        meta_model=references["meta_model"][rows] if "meta_model" in references else None,
        benchmark=references["benchmark"][rows] if "benchmark" in references else None,
        features=None if feature_block is None else feature_block[rows],
        target_mean=target_mean,
        pairwise=pairwise,
    )
    index = pd.MultiIndex.from_product([[era], list(scores)], names=["era", "score"])
    return pd.DataFrame(np.vstack(list(scores.values())), index=index, columns=prediction_cols)


def max_drawdown(per_era: np.ndarray) -> float:
    """Return the largest fall of the cumulative score from its running peak (≥ 0)."""
    cumulative = np.cumsum(per_era)
    return float(np.max(np.maximum.accumulate(np.concatenate(([0.0], cumulative)))[1:] - cumulative))


def autocorrelation(per_era: np.ndarray) -> float:
    """Return the lag-1 Pearson autocorrelation of a score series (NaN with < 3 values)."""
    if per_era.shape[0] < 3:
        return float("nan")
    first, second = per_era[:-1], per_era[1:]
    if np.std(first) == 0 or np.std(second) == 0:
        return float("nan")
    return float(np.corrcoef(first, second)[0, 1])


def summarize_scores(per_era: pd.DataFrame) -> pd.DataFrame:
    """Return one row per (model, score) with mean, std (ddof 0), sharpe, max_drawdown,
    autocorrelation and the number of eras, from ``score_eras`` output."""
    records = []
    for model in per_era.columns:
        by_score = per_era[model].unstack("score")
        for score in [s for s in SCORE_ORDER if s in by_score.columns]:
            values = by_score[score].dropna().to_numpy(dtype=np.float64)
            mean = float(values.mean()) if values.size else float("nan")
            std = float(values.std()) if values.size else float("nan")
            records.append(
                {
                    "model": model,
                    "score": score,
                    "mean": mean,
                    "std": std,
                    "sharpe": mean / std if std > 0 else float("nan"),
                    "max_drawdown": max_drawdown(values) if values.size else float("nan"),
                    "autocorrelation": autocorrelation(values),
                    "eras": int(values.size),
                }
            )
    return pd.DataFrame.from_records(records).set_index(["model", "score"])
