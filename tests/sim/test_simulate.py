"""``crowdalpha simulate CONFIG.toml``: the config file, its errors, a short season to tables and report."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crowdalpha.cli import app
from crowdalpha.sim.simulate import SimulationError
from crowdalpha.sim.simulate_config import load_simulation_spec

EXAMPLE = Path(__file__).parents[2] / "examples" / "season.toml"


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "season.toml"
    path.write_text(text)
    return path


def test_the_shipped_example_config_declares_its_market_crowd_and_payout_variants() -> None:
    spec = load_simulation_spec(EXAMPLE)
    assert spec.market.source == "synthetic" and spec.market.assets == 300 and spec.rounds == 35
    assert spec.tournaments == ("classic", "signals", "crypto")
    models = {p.model: p for p in spec.crowd}
    assert models["classic_big_gbm"].stake_changes == ((10, 1000), (20, -2000))
    assert models["classic_part_timer"].skip_every == 2
    assert models["classic_copycat"].late  # the default crowd comes along
    variants = {v.name: v.rule for v in spec.variants["classic"]}
    assert [(t.score, t.multiplier) for t in variants["corr_only"].terms] == [("corr20v2", 1.0)]
    assert variants["wide_clip"].clip == 0.10
    assert variants["low_threshold"].stake_threshold == Decimal(1000)
    assert spec.home == EXAMPLE.parent / "../season-home"


def test_a_date_range_sets_the_season_instead_of_rounds(tmp_path: Path) -> None:
    spec = load_simulation_spec(_config(tmp_path, "[dates]\nstart = 2021-03-01\nend = 2021-04-30\n"))
    assert (spec.season_start, spec.season_end, spec.rounds) == (date(2021, 3, 1), date(2021, 4, 30), None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n", "colour is not a known key"),
        ("[market]\nsource = 'moon'\n", "market.source is synthetic, pse or panel; got 'moon'"),
        ("[market]\nassets = -3\n", "market.assets must be > 0; got -3"),
        ("[market]\nsource = 'panel'\n", "market.panel is needed when source is panel"),
        ("tournaments = ['chess']\n", "tournaments must list some of"),
        ("[dates]\nstart = 2021-03-01\nend = 2021-01-01\n", "dates.end 2021-01-01 is before dates.start"),
        (
            "[[crowd.models]]\nmodel = 'x'\ntournament = 'classic'\nstrategy = 'astrology'\n",
            "crowd.models[0].strategy is one of",
        ),
        (
            "[[crowd.models]]\nmodel = 'x'\ntournament = 'classic'\nstrategy = 'ridge'\n"
            "stake_changes = [[1]]\n",
            "crowd.models[0].stake_changes[0] must be [day index, whole tokens]",
        ),
        (
            "[[crowd.models]]\nmodel = 'classic_ridge'\ntournament = 'classic'\nstrategy = 'ridge'\n",
            "['classic_ridge'] appear more than once",
        ),
        (
            "[[payouts.classic]]\nname = 'x'\nmultipliers = { luck = 1.0 }\n",
            "multipliers.luck must be a number",
        ),
        ("[[payouts.classic]]\nname = 'x'\nclip = 3.0\n", "payouts.classic[0]: "),
        ("seed = 'seven'\n", "seed must be int; got 'seven'"),
        ("title = \n", "is not valid TOML"),
    ],
)
def test_a_bad_config_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(SimulationError) as raised:
        load_simulation_spec(path)
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


def test_simulate_refuses_a_bad_config_with_exit_code_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", str(_config(tmp_path, "[market]\nassets = 0\n"))])
    assert result.exit_code == 2 and "market.assets must be > 0" in result.output


SHORT = """
title = "short"
tournaments = ["classic"]
benchmark_models = false
[market]
assets = 150
days = 330
[dates]
rounds = 9
[crowd]
default = false
[[crowd.models]]
model = "ridge"
tournament = "classic"
strategy = "ridge"
stake = 500
[[crowd.models]]
model = "noise"
tournament = "classic"
strategy = "noise"
stake = 100
[[crowd.models]]
model = "copycat"
tournament = "classic"
strategy = "copycat"
[[payouts.classic]]
name = "corr_only"
multipliers = { corr20v2 = 1.0 }
"""


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("simulate")
    config = root / "season.toml"
    config.write_text(SHORT)
    result = CliRunner().invoke(app, ["simulate", str(config)])
    assert result.exit_code == 0, result.output
    return root / "season-home", result.output


def test_simulate_writes_every_score_stake_and_supply_figure_to_parquet(simulated: tuple[Path, str]) -> None:
    home, output = simulated
    tables = home / "report" / "tables"
    scores = pd.read_parquet(tables / "scores.parquet")
    assert set(scores["model"]) == {"ridge", "noise", "copycat"}
    assert {"corr20v2", "mmc"} <= set(scores["score"])
    stakes = pd.read_parquet(tables / "stakes.parquet")
    assert set(stakes["model"]) == {"ridge", "noise"}  # the late copycat is never staked
    assert (stakes.loc[stakes["model"] == "ridge", "at_risk_nano"] == 500 * 10**9).all()
    supply = pd.read_parquet(tables / "supply.parquet")
    assert (
        len(supply) == 9
        and (supply["circulating_nano"] == supply["minted_nano"] - supply["burned_nano"]).all()
    )
    rounds = pd.read_parquet(tables / "rounds.parquet")
    assert len(rounds) == 9 and set(rounds["state"]) <= {"open", "closed", "scoring"}
    assert "ledger check: ok" in output and f"report: {home / 'report' / 'report.html'}" in output.replace(
        "\n", ""
    )
    assert "<h2>Integrity checks</h2>" in (home / "report" / "report.html").read_text()
