"""`crowdalpha market import` and `crowdalpha market validate`: outputs, exit codes, clean failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from crowdalpha.cli import app
from crowdalpha.market.loaders import read_panel
from crowdalpha.market.panel import validate_panel

runner = CliRunner()


@pytest.fixture
def vendor_csv(make_panel, tmp_path) -> Path:
    """A vendor-style CSV: the close column is called Adj_Close."""
    path = tmp_path / "vendor.csv"
    make_panel(n_assets=6, n_days=30).rename(columns={"close": "Adj_Close"}).to_csv(path, index=False)
    return path


def test_import_with_a_mapping_writes_the_validated_panel(make_panel, vendor_csv, tmp_path):
    out = tmp_path / "out" / "market.parquet"
    result = runner.invoke(
        app, ["market", "import", str(vendor_csv), "--out", str(out), "--map", "close=Adj_Close"]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout
    assert "6 assets, 30 trading dates" in result.stdout
    expected = validate_panel(make_panel(n_assets=6, n_days=30))
    pd.testing.assert_frame_equal(read_panel(out), expected, check_exact=False, rtol=1e-12)


def test_validate_accepts_a_good_file(vendor_csv, tmp_path):
    result = runner.invoke(app, ["market", "validate", str(vendor_csv), "--map", "close=Adj_Close"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("valid:")


def _duplicate_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame.iloc[:5], frame.iloc[4:5], frame.iloc[5:]])


def _nan_date(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["date"] = frame["date"].astype(object)
    frame.loc[3, "date"] = None
    return frame


@pytest.mark.parametrize(
    ("make_bad", "rule"),
    [
        (lambda f: f.drop(columns=["sector"]), "rule: required columns must be present"),
        (_nan_date, "rule: dates must be present and parseable"),
        (_duplicate_rows, "rule: (date, asset) must be unique"),
        (lambda f: f.iloc[:0], "rule: a panel must have at least one row"),
        (lambda f: f.assign(raw_x=["abc"] + [1.0] * (len(f) - 1)), "rule: raw_* features must be numeric"),
        (lambda f: f.assign(raw_x=1.0), "rule: raw features must vary across assets"),
        (lambda f: f.assign(Adj_Close=-f["Adj_Close"]), "rule: prices must be positive"),
    ],
)
@pytest.mark.parametrize("command", ["import", "validate"])
def test_bad_inputs_exit_2_naming_the_rule_and_leave_no_output(vendor_csv, tmp_path, make_bad, rule, command):
    bad = tmp_path / "bad.csv"
    make_bad(pd.read_csv(vendor_csv)).to_csv(bad, index=False)
    out = tmp_path / "out" / "market.parquet"
    args = ["market", command, str(bad), "--map", "close=Adj_Close"]
    result = runner.invoke(app, args + (["--out", str(out)] if command == "import" else []))
    assert result.exit_code == 2, result.output
    assert rule in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.output
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "rule"),
    [
        (["--map", "close=Nope"], "rule: mapped columns must exist in the file"),
        (["--map", "closing"], "rule: a mapping is PANEL_COLUMN=FILE_COLUMN"),
        (["--map", "price=Adj_Close"], "rule: mapping targets must be panel columns"),
    ],
)
def test_bad_mappings_exit_2(vendor_csv, tmp_path, arguments, rule):
    out = tmp_path / "m.parquet"
    result = runner.invoke(app, ["market", "import", str(vendor_csv), "--out", str(out), *arguments])
    assert result.exit_code == 2
    assert rule in " ".join(result.stderr.split())
    assert not out.exists()


def test_an_empty_or_missing_file_exits_2(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    for path, rule in ((empty, "at least one row"), (tmp_path / "none.csv", "must exist")):
        result = runner.invoke(app, ["market", "import", str(path), "--out", str(tmp_path / "m.parquet")])
        assert result.exit_code == 2 and rule in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv"]


def test_an_existing_output_survives_a_failed_import(vendor_csv, tmp_path):
    out = tmp_path / "market.parquet"
    out.write_bytes(b"previous")
    result = runner.invoke(
        app, ["market", "import", str(vendor_csv), "--out", str(out)]
    )  # no --map: no close
    assert result.exit_code == 2
    assert out.read_bytes() == b"previous"


def test_every_market_command_and_option_has_help():
    group = get_command(app).commands["market"]
    for name in ("import", "validate"):
        command = group.commands[name]
        assert command.help, name
        for parameter in command.params:
            assert getattr(parameter, "help", None), f"{name} {parameter.name}"
        result = runner.invoke(app, ["market", name, "--help"])
        assert result.exit_code == 0 and "--map" in result.stdout


def test_summary_counts_raw_features(make_panel, tmp_path):
    panel = make_panel(n_assets=4, n_days=10, listings=False)
    panel["raw_signal"] = np.arange(len(panel), dtype=float)
    path = tmp_path / "p.parquet"
    panel.to_parquet(path)
    result = runner.invoke(app, ["market", "validate", str(path)])
    assert result.exit_code == 0 and "1 raw_* features" in result.stdout
