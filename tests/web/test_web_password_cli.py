"""``crowdalpha account password`` and ``account create --password``: web passwords from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crowdalpha.cli import app
from crowdalpha.service import ServiceError, open_context
from crowdalpha.service.web_auth import log_in
from crowdalpha.settings import Settings

runner = CliRunner()


def test_an_operator_sets_web_passwords_from_the_command_line(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    assert runner.invoke(app, ["init", "--home", home]).exit_code == 0
    created = runner.invoke(
        app,
        ["account", "create", "alice", "--password", "--home", home, "--json"],
        input="first password\n" * 2,
    )
    assert created.exit_code == 0, created.output
    assert "first password" not in created.output  # the prompt never echoes it
    assert json.loads(created.output[created.output.index("{") :])["username"] == "alice"
    assert runner.invoke(app, ["account", "create", "bob", "--home", home]).exit_code == 0

    changed = runner.invoke(
        app, ["account", "password", "alice", "--home", home], input="second password\n" * 2
    )
    assert changed.exit_code == 0 and "web password of alice set" in changed.output
    set_for_bob = runner.invoke(
        app, ["account", "password", "bob", "--home", home], input="bobs password\n" * 2
    )
    assert set_for_bob.exit_code == 0
    with open_context(Settings.resolve(home=home, environ={})) as ctx:
        assert log_in(ctx, "alice", "second password").username == "alice"
        assert log_in(ctx, "bob", "bobs password").username == "bob"
        with pytest.raises(ServiceError, match="invalid_login"):
            log_in(ctx, "alice", "first password")


def test_a_weak_password_or_an_unknown_account_is_refused_naming_the_rule(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    assert runner.invoke(app, ["init", "--home", home]).exit_code == 0
    weak = runner.invoke(
        app, ["account", "create", "alice", "--password", "--home", home], input="short\nshort\n"
    )
    assert (
        weak.exit_code == 2 and "error: weak_password: a password has 8-1024 characters; got 5" in weak.output
    )
    assert "Traceback" not in weak.output
    # Refused before the account was made: the name is still free.
    assert runner.invoke(app, ["account", "create", "alice", "--home", home]).exit_code == 0
    ghost = runner.invoke(
        app, ["account", "password", "ghost", "--home", home], input="a fine password\n" * 2
    )
    assert ghost.exit_code == 2 and "no account named 'ghost'" in ghost.output
