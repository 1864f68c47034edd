"""The operator's commands end to end in a temporary home: init, accounts, models, datasets, clock, rounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crowdalpha.cli import app
from crowdalpha.service import authenticate, open_context
from crowdalpha.settings import Settings
from crowdalpha.store import PermissionDenied, Scope

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_an_operator_runs_a_round_from_the_command_line(tmp_path: Path, classic_version_dir: Path) -> None:
    home = str(tmp_path / "home")
    first = json.loads(run("init", "--home", home, "--json"))
    assert first["created_tournaments"] == ["classic", "signals", "crypto"]
    assert json.loads(run("init", "--home", home, "--json"))["created_tournaments"] == []

    keys = json.loads(run("account", "create", "alice", "--home", home, "--json"))
    assert sorted(keys) == ["public_id", "secret_key", "username"] and keys["username"] == "alice"
    with open_context(Settings.resolve(home=home, environ={})) as ctx:
        assert authenticate(ctx, f"Token {keys['public_id']}${keys['secret_key']}").username == "alice"
    text = run("account", "create", "bob", "--home", home)
    assert "secret key:" in text and "shown only now" in text

    model = json.loads(
        run(
            "model",
            "create",
            "--account",
            "alice",
            "--tournament",
            "classic",
            "alpha",
            "--home",
            home,
            "--json",
        )
    )
    assert model["name"] == "alpha" and model["tournament"] == 8
    duplicate = runner.invoke(app, ["model", "create", "--account", "bob", "alpha", "--home", home])
    assert duplicate.exit_code == 2
    assert "error: model_name_taken: a model named 'alpha' already exists in classic" in duplicate.output
    assert "Traceback" not in duplicate.output

    published = json.loads(
        run(
            "dataset",
            "publish",
            str(classic_version_dir),
            "--tournament",
            "classic",
            "--home",
            home,
            "--json",
        )
    )
    assert published["version"] == "v1.0" and len(published["files"]) == 6

    run("clock", "set", "2026-01-06T15:00Z", "--home", home)
    outside = runner.invoke(app, ["round", "open", "--tournament", "classic", "--home", home])
    assert outside.exit_code == 2 and "error: outside_round_window: " in outside.output
    opened = json.loads(
        run("round", "open", "--tournament", "classic", "--close-in", "1h", "--home", home, "--json")
    )
    assert opened["state"] == "open" and opened["close_staking_time"] == "2026-01-06T16:00:00+00:00"
    assert opened["universe_size"] == 30 and opened["live_file"].startswith("v1.0/live_")

    run("clock", "set", "2026-01-06T15:30Z", "--home", home)
    closed = json.loads(run("round", "close", "--tournament", "classic", "--home", home, "--json"))
    assert closed["state"] == "closed" and closed["close_staking_time"] == "2026-01-06T15:30:00+00:00"
    status = json.loads(run("round", "status", "--tournament", "classic", "--home", home, "--json"))
    assert (status["number"], status["state"]) == (opened["number"], "closed")
    assert "nothing due" in run("round", "tick", "--home", home)
    assert "wall" in run("clock", "clear", "--home", home)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["round", "open", "--close-in", "soon"], "error: invalid_duration: write a duration like 1h"),
        (["clock", "set", "tuesday"], "error: invalid_datetime: write an ISO 8601 date-time"),
        (["round", "status", "--tournament", "chess"], "error: not_found: no tournament named 'chess'"),
    ],
)
def test_errors_exit_2_naming_the_rule(tmp_path: Path, args: list[str], message: str) -> None:
    home = str(tmp_path / "home")
    run("init", "--home", home)
    result = runner.invoke(app, [*args, "--home", home])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_commands_on_a_home_that_was_never_initialised_say_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["account", "create", "alice", "--home", str(tmp_path / "none")])
    assert result.exit_code == 2 and "error: home_not_initialised: " in result.output


def test_only_an_account_created_with_operator_holds_the_operator_scope(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    run("init", "--home", home)
    root = json.loads(run("account", "create", "root", "--operator", "--home", home, "--json"))
    alice = json.loads(run("account", "create", "alice", "--home", home, "--json"))
    with open_context(Settings.resolve(home=home, environ={})) as ctx:
        header = f"Token {root['public_id']}${root['secret_key']}"
        assert authenticate(ctx, header, Scope.OPERATOR).username == "root"
        with pytest.raises(PermissionDenied, match=r"^API key lacks the scope 'operator'$"):
            authenticate(ctx, f"Token {alice['public_id']}${alice['secret_key']}", Scope.OPERATOR)


def test_clock_show_says_whether_the_clock_is_set(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    run("init", "--home", home)
    assert json.loads(run("clock", "show", "--home", home, "--json"))["clock"] == "wall"
    run("clock", "set", "2026-01-06T15:00+02:00", "--home", home)
    shown = json.loads(run("clock", "show", "--home", home, "--json"))
    assert shown == {"clock": "set", "now": "2026-01-06T13:00:00+00:00"}
    assert run("clock", "show", "--home", home).strip() == "2026-01-06T13:00:00+00:00 (set clock)"


def test_tick_steps_run_only_the_named_jobs_and_refuse_an_unknown_step(
    tmp_path: Path, classic_version_dir: Path
) -> None:
    home = str(tmp_path / "home")
    run("init", "--home", home)
    run("dataset", "publish", str(classic_version_dir), "--tournament", "classic", "--home", home)
    run("clock", "set", "2026-01-06T12:30Z", "--home", home)  # a Tuesday, inside the round's window
    refused = runner.invoke(app, ["tick", "--steps", "open,shuffle", "--home", home])
    assert refused.exit_code == 2 and "unknown step 'shuffle'" in refused.output
    scores_only = json.loads(run("tick", "--steps", "score", "--home", home, "--json"))
    assert len(scores_only["created_rounds"]) == 1 and scores_only["ran"] == []  # the open job waits
    opened = json.loads(run("tick", "--steps", "open,close", "--home", home, "--json"))
    assert [key.split("/")[2] for key in opened["ran"]] == ["open"]
    status = json.loads(run("round", "status", "--tournament", "classic", "--home", home, "--json"))
    assert status["state"] == "open"
