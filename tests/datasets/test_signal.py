"""The whole pipeline keeps learnable signal: synthetic market → Classic version → LightGBM → CORR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dataset_factories import SECRET

from crowdalpha.datasets.classic import build_classic
from crowdalpha.market.synthetic import generate_market
from crowdalpha.scoring import numerai_corr

lightgbm = pytest.importorskip("lightgbm")

# 500 assets is few for a per-era CORR (noise ≈ 1/√500 per era), so the hidden alpha is amplified
# 3× to give the test power; the pipeline under test is the same as at full size.
ASSETS, DAYS, ALPHA_STRENGTH = 500, 900, 3.0


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> Path:
    market = generate_market(
        assets=ASSETS, days=DAYS, seed=3, n_raw_features=40, alpha_strength=ALPHA_STRENGTH
    )
    root = tmp_path_factory.mktemp("signal")
    report = build_classic(market.panel, root / "public", secret=SECRET, private_dir=root / "private")
    return report.version_dir


def validation_corr(version: Path, permute: bool) -> tuple[float, float]:
    """Return (mean, standard error) of per-era validation CORR of a 100-tree LightGBM."""
    train = pd.read_parquet(version / "train.parquet")
    validation = pd.read_parquet(version / "validation.parquet")
    features = json.loads((version / "features.json").read_text())["feature_sets"]["all"]
    target = train["target"]
    if permute:
        rng = np.random.default_rng(0)
        target = target.groupby(train["era"]).transform(lambda era: rng.permutation(era.to_numpy()))
    model = lightgbm.LGBMRegressor(
        n_estimators=100,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=200,
        colsample_bytree=0.5,
        random_state=0,
        deterministic=True,
        force_row_wise=True,
        n_jobs=2,
        verbose=-1,
    )
    model.fit(train[features], target)
    predictions = pd.Series(model.predict(validation[features]), index=validation.index, name="prediction")
    scores = [
        numerai_corr(
            predictions[rows].sort_index().to_frame(), validation.loc[rows, "target"].sort_index()
        ).iloc[0]
        for rows in validation.groupby("era").groups.values()
    ]
    return float(np.mean(scores)), float(np.std(scores) / np.sqrt(len(scores)))


def test_lightgbm_learns_the_hidden_alpha_from_obfuscated_features(version):
    mean, error = validation_corr(version, permute=False)
    assert mean > 0.02 and mean > 4 * error, (mean, error)


def test_lightgbm_on_permuted_targets_scores_about_zero(version):
    mean, error = validation_corr(version, permute=True)
    assert abs(mean) < max(0.015, 3 * error), (mean, error)
