"""`crowdalpha dataset build`: a Classic version from a market file; clean failures with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dataset_factories import SECRET, make_panel
from typer.testing import CliRunner

from crowdalpha.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def market_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("market") / "market.parquet"
    make_panel(assets=40, days=400).to_parquet(path)
    return path


@pytest.fixture
def secret_file(tmp_path) -> Path:
    path = tmp_path / "secret.key"
    path.write_bytes(SECRET + b"\n")
    return path


def invoke(market: Path, out: Path, secret: Path, *extra: str):
    arguments = ["dataset", "build", "--market", str(market), "--out", str(out), "--secret-file", str(secret)]
    return runner.invoke(app, [*arguments, *extra])


def test_build_writes_a_classic_version_and_private_maps_beside_it(market_file, secret_file, tmp_path):
    out = tmp_path / "datasets"
    result = invoke(market_file, out, secret_file, "--version", "v1.0")
    assert result.exit_code == 0, result.output
    version = out / "v1.0"
    assert (version / "train.parquet").exists() and (version / "features.json").exists()
    assert (tmp_path / "datasets-private" / "v1.0" / "manifest.json").exists()
    document = json.loads((version / "features.json").read_text())
    assert document["targets"][0] == "target" and len(document["targets"]) >= 5
    train = pd.read_parquet(version / "train.parquet")
    assert train.index.name == "id" and train["target"].notna().all()


def test_minor_version_through_the_cli(secret_file, tmp_path):
    panel = make_panel(assets=30, days=380, raw_features=3)
    base_file, minor_file = tmp_path / "base.parquet", tmp_path / "minor.parquet"
    panel.to_parquet(base_file)
    panel.assign(raw_extra=np.random.default_rng(1).standard_normal(len(panel))).to_parquet(minor_file)
    out = tmp_path / "datasets"
    assert invoke(base_file, out, secret_file).exit_code == 0
    result = invoke(minor_file, out, secret_file, "--version", "v1.1", "--base", str(out / "v1.0"))
    assert result.exit_code == 0, result.output
    old, new = (
        pd.read_parquet(out / "v1.0" / "train.parquet"),
        pd.read_parquet(out / "v1.1" / "train.parquet"),
    )
    pd.testing.assert_frame_equal(new[old.columns], old)
    assert len(new.columns) == len(old.columns) + 1


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path) if path.suffix == ".parquet" else frame.to_csv(path, index=False)
    return path


def bad_markets(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = make_panel(assets=6, days=30)
    nan_dates = good.copy()
    nan_dates.loc[3, "date"] = None
    non_numeric = good.astype({"raw_x0": object})
    non_numeric.loc[2, "raw_x0"] = "high"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    return {
        "wrong columns": (
            _write(good.drop(columns=["close", "sector"]), tmp_path / "cols.parquet"),
            "required",
        ),
        "NaN dates": (_write(nan_dates, tmp_path / "dates.parquet"), "dates must be present"),
        "duplicate rows": (_write(pd.concat([good.iloc[:1], good]), tmp_path / "dup.parquet"), "unique"),
        "empty file": (empty, "at least one row"),
        "header only": (_write(good.iloc[:0], tmp_path / "header.csv"), "at least one row"),
        "non-numeric features": (_write(non_numeric, tmp_path / "text.csv"), "must be numeric"),
        "missing file": (tmp_path / "absent.parquet", "must exist"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong columns",
        "NaN dates",
        "duplicate rows",
        "empty file",
        "header only",
        "non-numeric features",
        "missing file",
    ],
)
def test_bad_market_files_exit_2_naming_the_rule_and_leave_nothing(case, secret_file, tmp_path):
    market, rule = bad_markets(tmp_path)[case]
    out = tmp_path / "datasets"
    result = invoke(market, out, secret_file)
    assert result.exit_code == 2, result.output
    assert rule in result.stderr and "rule" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "datasets-private").exists()


@pytest.mark.parametrize(
    ("content", "rule"),
    [(None, "secret file must be readable"), (b"  \n", "must not be empty"), (b"short", "at least 16 bytes")],
)
def test_bad_secret_files_exit_2(content, rule, market_file, tmp_path):
    secret = tmp_path / "secret.key"
    if content is not None:
        secret.write_bytes(content)
    result = invoke(market_file, tmp_path / "datasets", secret)
    assert result.exit_code == 2 and rule in result.stderr
    assert not (tmp_path / "datasets").exists()


def test_signals_build_through_the_cli_needs_no_secret(market_file, tmp_path):
    out = tmp_path / "signals"
    result = runner.invoke(
        app, ["dataset", "build", "--market", str(market_file), "--out", str(out), "--tournament", "signals"]
    )
    assert result.exit_code == 0, result.output
    version = out / "v1.0"
    for name in ("train.parquet", "validation.parquet", "live.parquet", "train_neutralizer.parquet"):
        assert (version / name).exists(), name
    live = pd.read_parquet(version / "live.parquet")
    assert live["numerai_ticker"].str.contains(" ").all()
    assert "neutralisers" in result.stdout


def test_crypto_build_through_the_cli_reports_the_universe(tmp_path):
    from crowdalpha.market.synthetic import generate_market

    market = tmp_path / "crypto.parquet"
    generate_market(assets=80, days=900, seed=3, kind="crypto", n_raw_features=4).panel.to_parquet(market)
    out = tmp_path / "crypto"
    result = runner.invoke(
        app, ["dataset", "build", "--market", str(market), "--out", str(out), "--tournament", "crypto"]
    )
    assert result.exit_code == 0, result.output
    universe = pd.read_parquet(out / "v1.0" / "live_universe.parquet")
    assert {"BTC", "ETH", "NMR"} <= set(universe["symbol"])
    assert "excluded_category" in result.stdout and "always_keep" in result.stdout


def test_classic_without_a_secret_file_exits_2(market_file, tmp_path):
    result = runner.invoke(
        app, ["dataset", "build", "--market", str(market_file), "--out", str(tmp_path / "d")]
    )
    assert result.exit_code == 2 and "--secret-file is required" in result.stderr


def test_an_existing_version_is_refused(market_file, secret_file, tmp_path):
    out = tmp_path / "datasets"
    assert invoke(market_file, out, secret_file).exit_code == 0
    result = invoke(market_file, out, secret_file)
    assert result.exit_code == 2 and "immutable" in result.stderr
