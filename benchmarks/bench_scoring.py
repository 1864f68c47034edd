"""Scoring speed: crowdalpha vs numerai-tools on one era, in the same process.

Case "compare": 1,000 models × 5,000 ids, 42 integer features — CORR + MMC + FNC with
crowdalpha (`era_scores`, one rank per model shared by the three scores) and with numerai-tools'
`numerai_corr`, `correlation_contribution` and `feature_neutral_corr`. Goal: ratio ≥ 20 and
max |difference| ≤ 1e-9.
Case "large": 10,000 models × 5,000 ids, CORR + MMC with crowdalpha alone. Goal: < 10 s. Its peak
resident memory is measured first, before anything else has grown the process.

Each side of the comparison is timed as the median of three runs in this process. Prints one
JSON line. ``--quick`` shrinks both cases for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import pandas as pd


def make_era(n_ids: int, n_models: int, n_features: int, seed: int) -> dict:
    """Return one era of synthetic inputs: predictions with ties, 0–1 targets, meta model, features."""
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"n{i:015x}" for i in range(n_ids)], name="id")
    features = rng.integers(0, 5, size=(n_ids, n_features)).astype(np.int8)
    signal = features[:, :5].sum(axis=1) + rng.normal(0, 4, n_ids)
    quantiles = np.quantile(signal, [0.05, 0.25, 0.75, 0.95])
    targets = np.digitize(signal, quantiles) / 4.0
    predictions = np.asfortranarray(
        signal[:, None] * rng.uniform(0, 0.3, n_models) + rng.normal(0, 4, (n_ids, n_models))
    )
    predictions[:, : n_models // 10] = np.round(predictions[:, : n_models // 10])  # some models with ties
    meta_model = predictions[:, : min(n_models, 200)].mean(axis=1)
    return {
        "ids": ids,
        "predictions": predictions,
        "targets": targets,
        "meta_model": meta_model,
        "features": features.astype(np.float64),
    }


def timed(work, repeats: int) -> tuple[float, object]:
    """Return (median wall seconds over ``repeats`` runs, last result)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), result


def peak_rss_bytes() -> int:
    """Return the process's peak resident set size in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def run(quick: bool) -> dict:
    """Run both cases and return the figures."""
    from crowdalpha.scoring import eras
    from crowdalpha.scoring._parallel import worker_count

    large_models, compare_models, n_ids = (1_000, 100, 1_000) if quick else (10_000, 1_000, 5_000)
    repeats = 1 if quick else 3

    era = make_era(n_ids, large_models, 42, seed=1)
    rss_before_large = peak_rss_bytes()
    start = time.perf_counter()
    large = eras.era_scores(
        era["predictions"], era["targets"], meta_model=era["meta_model"], scores=("corr", "mmc")
    )
    large_seconds = time.perf_counter() - start
    large_peak = peak_rss_bytes()
    del era, large

    era = make_era(n_ids, compare_models, 42, seed=2)
    ours_seconds, ours = timed(
        lambda: eras.era_scores(
            era["predictions"],
            era["targets"],
            meta_model=era["meta_model"],
            features=era["features"],
            scores=("corr", "mmc", "fnc"),
        ),
        repeats,
    )

    from numerai_tools import scoring as nt

    columns = [f"model_{k}" for k in range(compare_models)]
    frame = pd.DataFrame(era["predictions"], index=era["ids"], columns=columns)
    targets = pd.Series(era["targets"], index=era["ids"], name="target")
    meta_model = pd.Series(era["meta_model"], index=era["ids"], name="meta_model")
    features = pd.DataFrame(era["features"], index=era["ids"]).add_prefix("feature_")
    theirs_seconds, theirs = timed(
        lambda: {
            "corr": nt.numerai_corr(frame, targets),
            "mmc": nt.correlation_contribution(frame, meta_model, targets),
            "fnc": nt.feature_neutral_corr(frame, features, targets),
        },
        repeats,
    )
    difference = max(
        float(np.max(np.abs(ours[name] - theirs[name].to_numpy()))) for name in ("corr", "mmc", "fnc")
    )

    from crowdalpha import scoring as front

    front_seconds, _ = timed(
        lambda: (
            front.numerai_corr(frame, targets),
            front.correlation_contribution(frame, meta_model, targets),
            front.feature_neutral_corr(frame, features, targets),
        ),
        repeats,
    )

    return {
        "benchmark": "scoring",
        "quick": quick,
        "repeats_median_of": repeats,
        "threads": worker_count(),
        "compare_models": compare_models,
        "ids": n_ids,
        "features": 42,
        "crowdalpha_seconds": round(ours_seconds, 4),
        "numerai_tools_seconds": round(theirs_seconds, 4),
        "ratio": round(theirs_seconds / ours_seconds, 2),
        "ratio_goal": 20,
        "max_abs_difference": difference,
        "difference_goal": 1e-9,
        "pandas_front_seconds": round(front_seconds, 4),
        "pandas_front_ratio": round(theirs_seconds / front_seconds, 2),
        "large_models": large_models,
        "large_corr_mmc_seconds": round(large_seconds, 3),
        "large_goal_seconds": 10,
        "large_peak_rss_mb": round(large_peak / 2**20, 1),
        "large_peak_rss_increase_mb": round((large_peak - rss_before_large) / 2**20, 1),
    }


def main() -> None:
    """Parse arguments, run the benchmark, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    print(json.dumps(run(args.quick)))


if __name__ == "__main__":
    main()
