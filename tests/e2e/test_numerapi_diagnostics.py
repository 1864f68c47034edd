"""numerapi's ``upload_diagnostics`` → ``diagnostics`` against a live server, on SQLite and PostgreSQL.

The server's numbers must be exactly what :func:`crowdalpha.scoring.score_eras` gives on the same
join of the uploaded predictions with the published validation file (and its meta model and
benchmark when the version publishes them).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numerapi
import numpy as np
import pandas as pd
import pytest
from e2e_helpers import new_home
from sqlalchemy import Engine

from crowdalpha.api import create_app
from crowdalpha.scoring import score_eras, summarize_scores
from crowdalpha.service import Context, create_account, create_model, publish_dataset
from crowdalpha.tournament.clock import SettableClock

SIGNING_KEY = bytes(range(32))
UPLOAD_LIMIT = 1024 * 1024


@dataclass
class Server:
    """A live server with a published Classic version and alice's model."""

    ctx: Context
    version_dir: Path
    model_id: str
    client: numerapi.NumerAPI


def with_references(version_dir: Path, destination: Path) -> Path:
    """Return a copy of a version directory plus a validation meta model and benchmark file."""
    copied = Path(shutil.copytree(version_dir, destination / version_dir.name))
    ids = pd.read_parquet(copied / "validation.parquet").index
    rng = np.random.default_rng(7)
    meta = pd.DataFrame({"numerai_meta_model": rng.uniform(size=len(ids))}, index=ids)
    meta.to_parquet(copied / "validation_meta_model.parquet")
    bench = pd.DataFrame({"v5_lgbm_blend": rng.uniform(size=len(ids))}, index=ids)
    bench.to_parquet(copied / "validation_benchmark_models.parquet")
    return copied


@pytest.fixture(params=["references", "plain"])
def server(
    request: pytest.FixtureRequest,
    engine: Engine,
    tmp_path: Path,
    classic_version_dir: Path,
    live_server: Callable[[Any], str],
    monkeypatch: pytest.MonkeyPatch,
) -> Server:
    """Return a live server; ``references`` publishes a validation meta model and benchmark too."""
    settings, clock, ctx = new_home(engine, tmp_path)
    version_dir = classic_version_dir
    if request.param == "references":
        version_dir = with_references(classic_version_dir, tmp_path / "published")
    publish_dataset(ctx, version_dir, "classic")
    created = create_account(ctx, "alice")
    model = create_model(ctx, "alice", "classic", "alice_model")
    app = create_app(
        settings,
        blob_store=ctx.blobs,
        signing_key=SIGNING_KEY,
        upload_limit=UPLOAD_LIMIT,
        engine=engine,
        clock=clock,
    )
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", f"{live_server(app)}/graphql")
    client = numerapi.NumerAPI(
        public_id=created.public_id, secret_key=created.secret_key, show_progress_bars=False
    )
    return Server(ctx, version_dir, model.id, client)


def validation_predictions(version_dir: Path, seed: int = 0) -> pd.DataFrame:
    """Return predictions in [0, 1] for every validation id."""
    ids = pd.read_parquet(version_dir / "validation.parquet").index.astype(str)
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": ids, "prediction": rng.uniform(size=len(ids))})


def expected_scores(version_dir: Path, predictions: pd.DataFrame) -> pd.DataFrame:
    """Return score_eras on the same join the server makes (era × score rows, one column)."""
    features = json.loads((version_dir / "features.json").read_text())["feature_sets"]["medium"]
    frame = pd.read_parquet(version_dir / "validation.parquet").join(predictions.set_index("id"))
    references: dict[str, str | None] = {"meta_model_col": None, "benchmark_col": None}
    for name, column, argument in (
        ("validation_meta_model.parquet", "numerai_meta_model", "meta_model_col"),
        ("validation_benchmark_models.parquet", "v5_lgbm_blend", "benchmark_col"),
    ):
        if (version_dir / name).exists():
            frame[column] = pd.read_parquet(version_dir / name)[column]
            references[argument] = column
    return score_eras(frame, "era", ["prediction"], "target", features=features, **references)


def test_diagnostics_equal_the_scoring_engine(server: Server) -> None:
    predictions = validation_predictions(server.version_dir)
    diagnostics_id = server.client.upload_diagnostics(df=predictions, model_id=server.model_id)
    result = server.client.diagnostics(server.model_id, diagnostics_id)

    expected = expected_scores(server.version_dir, predictions)
    per_era = expected["prediction"].unstack("score")
    summary = summarize_scores(expected).loc["prediction"]
    assert result["status"] == "done"
    assert result["message"] is None
    assert abs(result["updatedAt"] - server.ctx.now()) < pd.Timedelta(seconds=30)
    assert result["erasAcceptedCount"] == len(per_era)
    assert [row["era"] for row in result["perEraDiagnostics"]] == [str(era) for era in per_era.index]
    served = pd.DataFrame(result["perEraDiagnostics"]).set_index("era")
    np.testing.assert_allclose(served["validationCorr"], per_era["corr"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(served["validationFeatureNeutralCorr"], per_era["fnc"], rtol=1e-12)
    np.testing.assert_allclose(served["validationFeatureCorrMax"], per_era["feature_exposure"], rtol=1e-12)
    assert result["validationCorrMean"] == pytest.approx(summary.loc["corr", "mean"], rel=1e-12)
    assert result["validationCorrStd"] == pytest.approx(summary.loc["corr", "std"], rel=1e-12)
    assert result["validationCorrSharpe"] == pytest.approx(summary.loc["corr", "sharpe"], rel=1e-12)
    assert result["validationMaxDrawdown"] == pytest.approx(summary.loc["corr", "max_drawdown"], abs=1e-15)
    assert result["validationFeatureNeutralCorrMean"] == pytest.approx(summary.loc["fnc", "mean"], rel=1e-12)
    assert result["examplePredsCorrMean"] is not None
    assert result["validationIcV2Mean"] is None
    assert all(row["validationRic"] is None for row in result["perEraDiagnostics"])

    if "mmc" in per_era.columns:
        np.testing.assert_allclose(served["validationMmc"], per_era["mmc"], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(served["validationBmc"], per_era["bmc"], rtol=1e-12, atol=1e-15)
        assert result["validationMmcMean"] == pytest.approx(summary.loc["mmc", "mean"], rel=1e-12)
        assert result["validationBmcMean"] == pytest.approx(summary.loc["bmc", "mean"], rel=1e-12)
        corr_plus_mmc = per_era["corr"] + per_era["mmc"]
        assert result["validationCorrPlusMmcMean"] == pytest.approx(corr_plus_mmc.mean(), rel=1e-12)
    else:
        assert served["validationMmc"].isna().all() and served["validationBmc"].isna().all()
        assert result["validationMmcMean"] is None and result["validationBmcMean"] is None

    # Without an id: the newest diagnostics of the model. The uploads themselves are gone.
    clock = server.ctx.clock
    assert isinstance(clock, SettableClock)
    clock.advance(timedelta(seconds=1))
    newer = validation_predictions(server.version_dir, seed=1)
    server.client.upload_diagnostics(df=newer, model_id=server.model_id)
    newest = server.client.diagnostics(server.model_id)
    newer_summary = summarize_scores(expected_scores(server.version_dir, newer)).loc["prediction"]
    assert newest["validationCorrMean"] == pytest.approx(newer_summary.loc["corr", "mean"], rel=1e-12)
    assert newest["validationCorrMean"] != result["validationCorrMean"]
    assert server.ctx.blobs.keys("uploads") == []


def test_a_bad_file_gets_status_error_with_the_rule(server: Server) -> None:
    predictions = validation_predictions(server.version_dir)
    predictions.loc[3, "prediction"] = np.nan
    diagnostics_id = server.client.upload_diagnostics(df=predictions, model_id=server.model_id)
    result = server.client.diagnostics(server.model_id, diagnostics_id)
    assert result["status"] == "error"
    assert result["message"] == (
        f"nan_values: predictions must not be NaN; 1 row is: {predictions.loc[3, 'id']!r} (row 4)"
    )
    assert result["perEraDiagnostics"] == []
    assert result["validationCorrMean"] is None


def test_an_era_mostly_without_predictions_gets_the_scoring_rule(server: Server) -> None:
    validation = pd.read_parquet(server.version_dir / "validation.parquet")
    first_era = validation["era"].iloc[0]
    in_first_era = validation.index[validation["era"] == first_era].astype(str)
    predictions = validation_predictions(server.version_dir)
    predictions = predictions[~predictions["id"].isin(in_first_era[: len(in_first_era) // 2])]
    diagnostics_id = server.client.upload_diagnostics(df=predictions, model_id=server.model_id)
    result = server.client.diagnostics(server.model_id, diagnostics_id)
    assert result["status"] == "error"
    assert result["message"].startswith(f"scoring_failed: era {first_era}: only ")
    assert result["message"].endswith("(rule: at most 20% of an era's rows may be dropped)")


def test_unknown_diagnostics_and_other_models_are_refused(server: Server) -> None:
    with pytest.raises(ValueError, match=r"^not_found: no diagnostics for model 'alice_model'"):
        server.client.diagnostics(server.model_id)
    with pytest.raises(ValueError, match=r"^not_found: no diagnostics 'nope' for model 'alice_model'"):
        server.client.diagnostics(server.model_id, "nope")
    create_account(server.ctx, "bob")
    bobs = create_model(server.ctx, "bob", "classic", "bob_model")
    with pytest.raises(ValueError, match=r"^permission_denied: model .* does not belong to account 'alice'"):
        server.client.upload_diagnostics(df=validation_predictions(server.version_dir), model_id=bobs.id)
