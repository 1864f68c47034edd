"""``crowdalpha demo``: a short season, the crowd's uploads every round, numerapi lines that work."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numerapi
import numerapi.base_api
import pandas as pd
import pytest
from typer.testing import CliRunner

from crowdalpha.api import create_app
from crowdalpha.cli import app
from crowdalpha.service import check_ledger, list_models, list_submissions, open_context, round_status
from crowdalpha.settings import Settings
from crowdalpha.sim.demo import MARKER, DemoError, prepare_home
from crowdalpha.sim.participants import DEFAULT_CROWD, default_crowd

ROUNDS = 3
SMALL = ["--assets", "150", "--days", "400", "--rounds", str(ROUNDS), "--no-serve"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("demo") / "home"
    result = CliRunner().invoke(app, ["demo", "--home", str(home), *SMALL])
    assert result.exit_code == 0, result.output
    return home, result.output


def test_demo_runs_a_round_per_trading_day_and_every_crowd_model_uploads_to_each(
    demo_run: tuple[Path, str],
) -> None:
    home, output = demo_run
    crowd = default_crowd()
    with open_context(Settings.resolve(home=home)) as ctx:
        for tournament in DEFAULT_CROWD:
            current = round_status(ctx, tournament)
            assert current.state == "open"  # the last season day's round stays open for the server
            numbers = list(range(current.number - ROUNDS + 1, current.number + 1))
            assert [round_status(ctx, tournament, n).state for n in numbers[:-1]] == ["closed"] * (ROUNDS - 1)
            members = [p for p in crowd if p.tournament == tournament]
            for participant in members:
                owner = f"{participant.strategy}_team"
                model = next(m for m in list_models(ctx, owner, tournament) if m.name == participant.model)
                rounds = sorted(item.round_number for item in list_submissions(ctx, owner, model.id))
                # late models upload after the close, so the round left open has none of theirs
                expected = [
                    n for n in (numbers[:-1] if participant.late else numbers) if not participant.skips(n)
                ]
                assert rounds == expected, participant.model
        assert check_ledger(ctx).ok
    assert "rounds per state" in output and "Classic leaderboard" in output
    assert "ledger check: ok" in output and "failed:" not in output  # no job of any tournament failed


def test_demo_prints_numerapi_lines_that_talk_to_the_served_home(
    demo_run: tuple[Path, str], live_server: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, output = demo_run
    lines = re.search(r"^import numerapi.*?\nnapi = .*?$", output, flags=re.S | re.M)
    assert lines is not None, output
    settings = Settings.resolve(home=home)
    served = open_context(settings)
    base_url = live_server(
        create_app(settings, engine=served.engine, blob_store=served.blobs, clock=served.clock)
    )
    code = lines.group(0).replace("http://127.0.0.1:8000", base_url)
    namespace: dict = {}
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", numerapi.base_api.API_TOURNAMENT_URL)
    exec(code, namespace)  # the very lines the demo tells a newcomer to paste
    napi = namespace["napi"]
    with open_context(settings) as ctx:
        assert napi.get_current_round() == round_status(ctx, "classic").number
    assert list(napi.get_models()) == ["demo_model"]
    served.close()


def test_demo_writes_the_report_with_its_charts_integrity_checks_and_tables(
    demo_run: tuple[Path, str],
) -> None:
    home, output = demo_run
    report = home / "report" / "report.html"
    assert f"report: {report}" in output.replace("\n", "")
    page = report.read_text()
    for section in ("Classic leaderboard", "Ledger", "Integrity checks", "Token supply"):
        assert f"<h2>{section}</h2>" in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert "charts/token_supply.png" in images
    for image in images:
        assert (home / "report" / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    uploads = pd.read_parquet(home / "report" / "tables" / "uploads.parquet")
    assert {"classic_copycat", "classic_skipper", "signals_value"} <= set(uploads["model"])


def test_demo_refuses_a_directory_that_is_not_a_demo_home(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DemoError, match=f"is not a demo home \\(no {MARKER} marker\\)"):
        prepare_home(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_demo_replaces_an_earlier_demo_home(tmp_path: Path) -> None:
    prepare_home(tmp_path / "home")
    (tmp_path / "home" / "leftover").write_text("old")
    prepare_home(tmp_path / "home")
    assert sorted(path.name for path in (tmp_path / "home").iterdir()) == [MARKER]
