"""`crowdalpha market synth` and `crowdalpha market sample`: outputs, exit codes, clean failures."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from crowdalpha.cli import app
from crowdalpha.market.samples import sample_path

runner = CliRunner()


def test_synth_writes_the_panel_and_its_truth(tmp_path):
    out = tmp_path / "data" / "market.parquet"
    arguments = ["market", "synth", "--assets", "40", "--days", "90", "--seed", "3", "--features", "12"]
    result = runner.invoke(app, [*arguments, "--kind", "crypto", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3,600 rows" in result.stdout
    panel = pd.read_parquet(out)
    assert len(panel) == 40 * 90 and "BTC" in set(panel["ticker"])
    assert sum(c.startswith("raw_") for c in panel.columns) == 12
    assert (tmp_path / "data" / "market.truth.parquet").is_file()
    assert (tmp_path / "data" / "market.truth.json").is_file()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--assets", "5"], "assets must be an integer >= 20"),
        (["--days", "1"], "days must be an integer >= 2"),
        (["--seed", "-1"], "seed must be a non-negative integer"),
        (["--start", "2012-13-45"], "start must be a date"),
        (["--features", "0"], "n_raw_features must be an integer >= 1"),
        (["--kind", "bond"], "'bond' is not one of"),
        (["--assets", "many"], "Invalid value for '--assets'"),
    ],
)
def test_synth_bad_arguments_exit_2_with_a_message_and_no_file(tmp_path, arguments, message):
    out = tmp_path / "market.parquet"
    result = runner.invoke(app, ["market", "synth", "--days", "30", *arguments, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.replace("│", " ").split())
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_synth_refuses_an_output_that_is_not_parquet(tmp_path):
    result = runner.invoke(
        app, ["market", "synth", "--assets", "20", "--days", "30", "--out", str(tmp_path / "m.csv")]
    )
    assert result.exit_code == 2 and "must end in .parquet" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_sample_pse_writes_the_shipped_file(tmp_path):
    out = tmp_path / "market.parquet"
    result = runner.invoke(app, ["market", "sample", "pse", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == sample_path("pse").read_bytes()
    assert "250 assets" in result.stdout


def test_unknown_sample_exits_2_naming_the_available_ones(tmp_path):
    result = runner.invoke(app, ["market", "sample", "nyse", "--out", str(tmp_path / "m.parquet")])
    assert result.exit_code == 2
    assert "unknown sample 'nyse'; available: pse" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_every_option_has_help():
    group = get_command(app).commands["market"]
    for name in ("synth", "sample"):
        for parameter in group.commands[name].params:
            assert parameter.help, f"{name} {parameter.name}"
