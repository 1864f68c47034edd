"""Walk-forward benchmark models: purged chunks, no look-ahead, Numerai's file layout, reproducible live."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crowdalpha.cli import app
from crowdalpha.datasets.benchmark_models import (
    FILES,
    LightGBMParams,
    benchmark_name,
    predict_live,
    purge_eras_for,
    train_benchmark_models,
    walk_forward_chunks,
)
from crowdalpha.datasets.errors import DatasetError

FAST = LightGBMParams(n_estimators=20, learning_rate=0.1, colsample_bytree=0.5)


@pytest.fixture
def version_dir(classic_version_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's small Classic version (the trainer writes beside its data)."""
    return Path(shutil.copytree(classic_version_dir, tmp_path / "public" / "v1.0"))


def test_each_chunk_is_predicted_by_a_model_trained_only_on_eras_purged_before_it() -> None:
    eras = [f"{number:04d}" for number in range(1, 41)]
    chunks = walk_forward_chunks(eras, chunk_eras=10, purge_eras=3)
    assert [predicted[0] for _, predicted in chunks] == ["0011", "0021", "0031"]
    for train, predicted in chunks:
        assert max(train) < min(predicted)
        assert eras.index(min(predicted)) - eras.index(max(train)) == 3 + 1
        assert len(predicted) == 10
    assert [len(train) for train, _ in chunks] == [7, 17, 27]


def test_purge_and_names_follow_numerai() -> None:
    assert purge_eras_for("target_factor_neutral_20") == 8
    assert purge_eras_for("target_factor_neutral_60") == 16
    assert benchmark_name("v1.0", "target_factor_neutral_20") == "v10_lgbm_factor_neutral20"
    assert benchmark_name("v5.2", "target_raw_return_60") == "v52_lgbm_raw_return60"


def test_walk_forward_rejects_a_zero_chunk() -> None:
    with pytest.raises(DatasetError, match="walk_forward"):
        walk_forward_chunks(["0001"], chunk_eras=0, purge_eras=1)


def test_training_writes_the_three_files_ranked_per_era_and_live_is_reproducible(version_dir: Path) -> None:
    private = version_dir.parent.parent / "private"
    report = train_benchmark_models(version_dir, private, feature_set="all", chunk_eras=8, params=FAST)
    name = "v10_lgbm_factor_neutral20"
    assert report.benchmarks == [name]
    validation = pd.read_parquet(version_dir / "validation.parquet", columns=["era"])
    for file in FILES.values():
        frame = pd.read_parquet(version_dir / file)
        assert frame.index.name == "id" and list(frame.columns) == ["era", name]
        assert frame[name].between(0, 1, inclusive="neither").all()
        per_era = frame.groupby("era")[name]
        assert np.allclose(per_era.mean(), 0.5)  # (rank − 0.5) / n has mean ½ in every era
        assert report.rows[file] == len(frame)
    predicted = pd.read_parquet(version_dir / FILES["validation"])
    assert set(predicted.index) <= set(validation.index)
    assert (predicted["era"] == validation.loc[predicted.index, "era"]).all()
    live = pd.read_parquet(version_dir / "live.parquet")
    published = pd.read_parquet(version_dir / FILES["live"])
    assert list(published.index) == list(live.index)
    again = predict_live(report.models_dir, live)
    np.testing.assert_allclose(again[name].to_numpy(), published[name].to_numpy(), rtol=0, atol=0)


def test_a_chunk_prediction_does_not_see_the_targets_of_its_own_or_later_eras(
    version_dir: Path, tmp_path: Path
) -> None:
    first = train_benchmark_models(version_dir, tmp_path / "a", feature_set="all", chunk_eras=8, params=FAST)
    before = pd.concat([pd.read_parquet(version_dir / FILES[split]) for split in ("train", "validation")])
    live_before = pd.read_parquet(version_dir / FILES["live"])
    eras = sorted(before["era"].unique())
    first_predicted = eras[:8]  # the first predicted chunk (chunks of 8 eras)
    # scramble every target from the first predicted chunk on: its predictions must not move
    for file in ("train.parquet", "validation.parquet"):
        frame = pd.read_parquet(version_dir / file)
        later = frame["era"] >= first_predicted[0]
        rng = np.random.default_rng(3)
        frame.loc[later, "target_factor_neutral_20"] = rng.permutation(
            frame.loc[later, "target_factor_neutral_20"].to_numpy().copy()
        )
        frame.to_parquet(version_dir / file)
    train_benchmark_models(version_dir, tmp_path / "b", feature_set="all", chunk_eras=8, params=FAST)
    after = pd.concat([pd.read_parquet(version_dir / FILES[split]) for split in ("train", "validation")])
    name = first.benchmarks[0]
    chunk = before["era"].isin(first_predicted)
    assert chunk.sum() > 0
    np.testing.assert_array_equal(
        before.loc[chunk, name].to_numpy(), after.loc[before.index[chunk], name].to_numpy()
    )
    # the scrambled targets did reach the model trained on every era (the live one)
    live_after = pd.read_parquet(version_dir / FILES["live"])
    assert not np.array_equal(live_before[name].to_numpy(), live_after[name].to_numpy())


def test_cli_trains_and_names_the_broken_rule(version_dir: Path) -> None:
    runner = CliRunner()
    base = ["benchmarks", "train", str(version_dir), "--feature-set", "all", "--chunk-eras", "8"]
    trained = runner.invoke(app, [*base, "--n-estimators", "10"])
    assert trained.exit_code == 0, trained.output
    assert "trained v10_lgbm_factor_neutral20" in trained.output
    assert (version_dir.parent.parent / "public-private" / "v1.0" / "benchmark_models").is_dir()
    bad = runner.invoke(app, [*base, "--target", "target_nope_20"])
    assert bad.exit_code == 2
    assert "rule: benchmark_target — ['target_nope_20'] not in features.json targets" in bad.output
    signals = runner.invoke(app, [*base, "--tournament", "signals"])
    assert signals.exit_code == 2 and "benchmark models exist for classic only" in signals.output
