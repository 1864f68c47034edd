"""``crowdalpha demo``: three open rounds, the crowd's submissions, numerapi lines that work."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numerapi
import numerapi.base_api
import pytest
from typer.testing import CliRunner

from crowdalpha.api import create_app
from crowdalpha.cli import app
from crowdalpha.service import list_models, list_submissions, open_context, round_status
from crowdalpha.settings import Settings
from crowdalpha.sim.demo import MARKER, DemoError, prepare_home
from crowdalpha.sim.participants import DEFAULT_CROWD

SMALL = ["--assets", "150", "--days", "400", "--no-serve"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    home = tmp_path_factory.mktemp("demo") / "home"
    result = CliRunner().invoke(app, ["demo", "--home", str(home), *SMALL])
    assert result.exit_code == 0, result.output
    return home, result.output


def test_demo_opens_a_round_per_tournament_and_every_crowd_model_submits(demo_run: tuple[Path, str]) -> None:
    home, _ = demo_run
    with open_context(Settings.resolve(home=home)) as ctx:
        for tournament, members in DEFAULT_CROWD.items():
            status = round_status(ctx, tournament)
            assert status.state == "open"
            models = {
                model.name: model
                for owner in {f"{strategy}_team" for _, strategy, _ in members}
                for model in list_models(ctx, owner, tournament)
            }
            assert sorted(models) == sorted(f"{tournament}_{suffix}" for suffix, _, _ in members)
            for model in models.values():
                owner = next(
                    f"{s}_team" for suffix, s, _ in members if model.name == f"{tournament}_{suffix}"
                )
                submitted = list_submissions(ctx, owner, model.id)
                assert [item.round_number for item in submitted] == [status.number]


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
