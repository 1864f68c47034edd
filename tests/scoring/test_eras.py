"""Era-wise scoring of a long frame and its summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring as oracle

from crowdalpha.scoring import ScoringError, score_eras, summarize_scores
from crowdalpha.scoring.eras import autocorrelation, era_scores, max_drawdown


def long_frame(n_eras: int = 6, n_ids: int = 120, n_models: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pieces = []
    for era in range(1, n_eras + 1):
        features = rng.integers(0, 5, size=(n_ids, 4))
        signal = features[:, 0] + rng.normal(0, 2, n_ids)
        targets = np.digitize(signal, np.quantile(signal, [0.05, 0.25, 0.75, 0.95])) / 4
        frame = pd.DataFrame(features, columns=[f"feature_{k}" for k in range(4)])
        frame.index = pd.Index([f"n{era:04d}{i:011x}" for i in range(n_ids)], name="id")
        frame["era"] = f"{era:04d}"
        frame["target"] = targets
        for model in range(n_models):
            frame[f"model_{model}"] = np.round(signal * rng.uniform(0, 1) + rng.normal(0, 2, n_ids), 1)
        frame["meta"] = signal + rng.normal(0, 1, n_ids)
        pieces.append(frame)
    return pd.concat(pieces)


MODELS = ["model_0", "model_1", "model_2"]
FEATURES = [f"feature_{k}" for k in range(4)]


def test_score_eras_equals_numerai_tools_era_by_era():
    frame = long_frame()
    per_era = score_eras(frame, "era", MODELS, "target", meta_model_col="meta", features=FEATURES)
    for era, rows in frame.groupby("era"):
        rows = rows.sort_index()
        expected = {
            "corr": oracle.numerai_corr(rows[MODELS], rows["target"]),
            "mmc": oracle.correlation_contribution(rows[MODELS], rows["meta"], rows["target"]),
            "fnc": oracle.feature_neutral_corr(rows[MODELS], rows[FEATURES], rows["target"]),
        }
        for score, values in expected.items():
            np.testing.assert_allclose(per_era.loc[(era, score)].to_numpy(), values.to_numpy(), atol=1e-12)


def test_score_eras_reports_bmc_cwmm_and_feature_exposure():
    frame = long_frame(n_eras=2)
    per_era = score_eras(
        frame, "era", MODELS, "target", meta_model_col="meta", benchmark_col="model_0", features=FEATURES
    )
    scores = list(per_era.loc["0001"].index)
    assert scores == ["corr", "mmc", "bmc", "fnc", "cwmm", "feature_exposure"]
    rows = frame[frame.era == "0001"].sort_index()
    bmc = oracle.correlation_contribution(rows[MODELS], rows["model_0"], rows["target"])
    np.testing.assert_allclose(per_era.loc[("0001", "bmc")].to_numpy(), bmc.to_numpy(), atol=1e-12)
    assert abs(per_era.loc[("0001", "bmc"), "model_0"]) < 1e-12  # a model adds nothing to itself
    exposure = max(abs(rows["model_1"].corr(rows[f])) for f in FEATURES)
    assert per_era.loc[("0001", "feature_exposure"), "model_1"] == pytest.approx(exposure, abs=1e-12)


def test_eras_without_targets_are_skipped_and_missing_meta_model_skips_only_its_scores():
    frame = long_frame(n_eras=4)
    frame.loc[frame.era == "0004", "target"] = np.nan
    frame.loc[frame.era == "0001", "meta"] = np.nan
    per_era = score_eras(frame, "era", MODELS, "target", meta_model_col="meta")
    assert sorted(per_era.index.get_level_values("era").unique()) == ["0001", "0002", "0003"]
    assert list(per_era.loc["0001"].index) == ["corr"]
    assert list(per_era.loc["0002"].index) == ["corr", "mmc", "cwmm"]


def test_too_many_missing_predictions_in_an_era_is_an_error_naming_the_era():
    frame = long_frame(n_eras=2)
    rows = frame.index[frame.era == "0002"][:40]
    frame.loc[rows, "model_1"] = np.nan
    with pytest.raises(ScoringError, match=r"era 0002.*at most 20%"):
        score_eras(frame, "era", MODELS, "target")


def test_missing_and_non_numeric_columns_are_named():
    frame = long_frame(n_eras=1)
    with pytest.raises(ScoringError, match="missing"):
        score_eras(frame, "era", ["model_9"], "target")
    frame["model_0"] = frame["model_0"].astype(str)
    with pytest.raises(ScoringError, match="not numeric"):
        score_eras(frame, "era", MODELS, "target")
    with pytest.raises(ScoringError, match="target column 'nope'"):
        score_eras(frame, "era", MODELS, "nope")


def test_pairwise_scores_are_added_on_request():
    frame = long_frame(n_eras=1)
    per_era = score_eras(frame, "era", MODELS, "target", pairwise=True)
    assert {"mcwnm", "apcwnm"} <= set(per_era.index.get_level_values("score"))
    maxima = per_era.loc[("0001", "mcwnm")]
    means = per_era.loc[("0001", "apcwnm")]
    assert (maxima >= means - 1e-12).all()


def test_era_scores_can_be_restricted_and_rejects_unknown_names():
    frame = long_frame(n_eras=1)
    values = frame[MODELS].to_numpy()
    out = era_scores(values, frame["target"].to_numpy(), meta_model=frame["meta"].to_numpy(), scores=["mmc"])
    assert list(out) == ["mmc"]
    with pytest.raises(ScoringError, match="unknown score"):
        era_scores(values, frame["target"].to_numpy(), scores=["tc"])


def test_max_drawdown_is_the_largest_fall_from_the_running_peak():
    assert max_drawdown(np.array([1.0, -2.0, 3.0, -1.0, -1.0])) == pytest.approx(2.0)
    assert max_drawdown(np.array([-0.5, -0.5])) == pytest.approx(1.0)
    assert max_drawdown(np.array([0.1, 0.2])) == 0.0


def test_autocorrelation_is_lag_one_pearson():
    series = np.array([0.1, 0.3, 0.2, 0.5, 0.4, 0.6])
    assert autocorrelation(series) == pytest.approx(np.corrcoef(series[:-1], series[1:])[0, 1])
    assert np.isnan(autocorrelation(np.array([0.1, 0.2])))


def test_summary_statistics_match_their_definitions():
    frame = long_frame(n_eras=8)
    per_era = score_eras(frame, "era", MODELS, "target", meta_model_col="meta")
    summary = summarize_scores(per_era)
    corr = per_era.xs("corr", level="score")["model_1"].to_numpy()
    row = summary.loc[("model_1", "corr")]
    assert row["mean"] == pytest.approx(corr.mean())
    assert row["std"] == pytest.approx(corr.std(ddof=0))
    assert row["sharpe"] == pytest.approx(corr.mean() / corr.std(ddof=0))
    assert row["max_drawdown"] == pytest.approx(max_drawdown(corr))
    assert row["eras"] == 8
    assert list(summary.loc["model_0"].index) == ["corr", "mmc", "cwmm"]
