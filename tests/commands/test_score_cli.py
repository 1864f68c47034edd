"""`crowdalpha score`, run as a real process on Numerai-format files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crowdalpha.scoring import score_eras


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crowdalpha", "score", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def numerai_files(tmp_path_factory) -> dict[str, Path]:
    """A small validation.parquet, features.json, meta_model.parquet and predictions CSV."""
    directory = tmp_path_factory.mktemp("numerai")
    rng = np.random.default_rng(3)
    pieces = []
    for era in range(1, 9):
        n = 150
        features = rng.integers(0, 5, size=(n, 6)).astype(np.int8)
        signal = features[:, 0] + rng.normal(0, 3, n)
        frame = pd.DataFrame(features, columns=[f"feature_{k}" for k in range(6)])
        frame.index = pd.Index([f"n{era:04d}{i:011x}" for i in range(n)], name="id")
        frame.insert(0, "era", f"{era:04d}")
        frame.insert(1, "data_type", "validation")
        bins = np.digitize(signal, np.quantile(signal, [0.05, 0.25, 0.75, 0.95])) / 4
        frame["target"] = bins.astype(np.float32)
        pieces.append(frame)
    data = pd.concat(pieces)
    data.to_parquet(directory / "validation.parquet")
    (directory / "features.json").write_text(
        json.dumps({"feature_sets": {"small": ["feature_0", "feature_1"]}, "targets": ["target"]})
    )
    prediction = (data["feature_0"] + rng.normal(0, 1, len(data))).rank(pct=True)
    pd.DataFrame({"id": data.index, "prediction": prediction.to_numpy()}).to_csv(
        directory / "predictions.csv", index=False
    )
    meta = pd.DataFrame(
        {
            "era": data["era"],
            "numerai_meta_model": (data["feature_0"] + rng.normal(0, 2, len(data))).to_numpy(),
        },
        index=data.index,
    )
    meta.loc[meta.era < "0003", "numerai_meta_model"] = np.nan
    meta.to_parquet(directory / "meta_model.parquet")
    return {
        "dir": directory,
        "data": directory / "validation.parquet",
        "predictions": directory / "predictions.csv",
        "meta": directory / "meta_model.parquet",
    }


def test_score_prints_per_era_table_and_summary(numerai_files):
    result = run_cli(numerai_files["predictions"], "--data", numerai_files["data"])
    assert result.returncode == 0, result.stderr
    assert "Per-era scores" in result.stdout
    assert "Summary" in result.stdout
    assert "0008" in result.stdout


def test_score_json_equals_the_library_and_covers_meta_model_eras_only(numerai_files):
    result = run_cli(
        numerai_files["predictions"],
        "--data",
        numerai_files["data"],
        "--meta-model",
        numerai_files["meta"],
        "--features",
        "small",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    per_era = pd.DataFrame(payload["per_era"]).set_index(["era", "score"])
    data = pd.read_parquet(numerai_files["data"])
    predictions = pd.read_csv(numerai_files["predictions"]).set_index("id")
    meta = pd.read_parquet(numerai_files["meta"])
    frame = data.join(predictions).join(meta[["numerai_meta_model"]])
    expected = score_eras(
        frame,
        "era",
        ["prediction"],
        "target",
        meta_model_col="numerai_meta_model",
        features=["feature_0", "feature_1"],
    )
    np.testing.assert_allclose(
        per_era.loc[expected.index, "prediction"].to_numpy(), expected["prediction"].to_numpy(), atol=1e-12
    )
    mmc_eras = sorted(per_era.xs("mmc", level="score").index)
    assert mmc_eras == [f"{era:04d}" for era in range(3, 9)]
    summary = {row["score"]: row for row in payload["summary"]}
    assert set(summary) == {"corr", "mmc", "fnc", "cwmm", "feature_exposure"}
    assert summary["corr"]["eras"] == 8
    assert summary["corr"]["mean"] > 0.1


def test_score_writes_a_png_chart(numerai_files, tmp_path):
    chart = tmp_path / "chart.png"
    result = run_cli(numerai_files["predictions"], "--data", numerai_files["data"], "--plot", chart)
    assert result.returncode == 0, result.stderr
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("make_bad_input", "message"),
    [
        (lambda d, t: t.joinpath("x.csv").write_text("id,other\nn1,a\n") and (t / "x.csv", d), "no numeric"),
        (lambda d, t: (t / "missing.csv", d), "does not exist"),
        (lambda d, t: (_constant_predictions(d, t), d), "constant"),
        (lambda d, t: (_foreign_predictions(t), d), "no overlap"),
        (lambda d, t: (d.parent / "predictions.csv", _data_without_target(d, t)), "missing column"),
        (lambda d, t: (d.parent / "predictions.csv", _not_parquet(t)), "cannot read data"),
    ],
    ids=["no-prediction-column", "missing-file", "constant", "no-overlap", "no-target", "corrupt-data"],
)
def test_bad_inputs_exit_2_with_a_message_and_no_traceback(numerai_files, tmp_path, make_bad_input, message):
    predictions, data = make_bad_input(numerai_files["data"], tmp_path)
    result = run_cli(predictions, "--data", data)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_feature_set_names_the_known_ones(numerai_files):
    result = run_cli(numerai_files["predictions"], "--data", numerai_files["data"], "--features", "medium")
    assert result.returncode == 2
    assert "'medium'" in result.stderr and "small" in result.stderr


def _constant_predictions(data: Path, directory: Path) -> Path:
    ids = pd.read_parquet(data).index
    path = directory / "constant.csv"
    pd.DataFrame({"id": ids, "prediction": 0.5}).to_csv(path, index=False)
    return path


def _foreign_predictions(directory: Path) -> Path:
    path = directory / "foreign.csv"
    pd.DataFrame({"id": [f"x{i}" for i in range(50)], "prediction": np.linspace(0, 1, 50)}).to_csv(
        path, index=False
    )
    return path


def _data_without_target(data: Path, directory: Path) -> Path:
    path = directory / "no_target.parquet"
    pd.read_parquet(data).drop(columns="target").to_parquet(path)
    return path


def _not_parquet(directory: Path) -> Path:
    path = directory / "broken.parquet"
    path.write_bytes(b"this is not parquet")
    return path
