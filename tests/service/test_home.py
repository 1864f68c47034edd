"""init_home creates a working home once and changes nothing when run again; the home's clock persists."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from crowdalpha.service import (
    Context,
    ServiceError,
    clear_clock,
    home_clock,
    init_home,
    open_context,
    set_clock,
)
from crowdalpha.settings import Settings
from crowdalpha.store import transaction
from crowdalpha.tournament import CLASSIC, CRYPTO, SIGNALS, SettableClock, WallClock, config_from_dict


def test_init_adds_the_default_tournaments_once(ctx: Context, engine: Engine) -> None:
    again = init_home(ctx.settings, clock=ctx.clock)
    assert again.created_tournaments == ()
    assert again.tournaments == ("classic", "signals", "crypto")
    with transaction(engine) as uow:
        stored = {row.id: config_from_dict(row.config) for row in uow.tournaments.list()}
    assert stored == {8: CLASSIC, 11: SIGNALS, 12: CRYPTO}


def test_init_keeps_an_operators_changed_config(ctx: Context, engine: Engine) -> None:
    with transaction(engine) as uow:
        row = uow.tournaments.get(8)
        uow.tournaments.upsert(8, "classic", {**row.config, "display_name": "Ours"}, now=ctx.now())
    init_home(ctx.settings, clock=ctx.clock)
    with transaction(engine) as uow:
        assert uow.tournaments.get(8).config["display_name"] == "Ours"


def test_a_fresh_home_is_created_with_database_and_blobs(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", environ={})
    report = init_home(settings)
    assert report.created_tournaments == ("classic", "signals", "crypto")
    assert (tmp_path / "home" / "crowdalpha.db").exists() and (tmp_path / "home" / "blobs").is_dir()
    assert init_home(settings).created_tournaments == ()
    with open_context(settings) as ctx:
        assert isinstance(ctx.clock, WallClock)


def test_an_uninitialised_home_is_refused_without_creating_a_database(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "nothing", environ={})
    with pytest.raises(ServiceError, match=r"^home_not_initialised: ") as caught:
        open_context(settings)
    assert caught.value.rule == "home_not_initialised"
    assert not (tmp_path / "nothing" / "crowdalpha.db").exists()


def test_the_clock_set_on_a_home_is_used_until_cleared(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", environ={})
    moment = datetime(2026, 1, 6, 12, 30, tzinfo=UTC)
    set_clock(settings, moment)
    clock = home_clock(settings)
    assert isinstance(clock, SettableClock) and clock.now() == moment
    assert clear_clock(settings) is True
    assert isinstance(home_clock(settings), WallClock)
    assert clear_clock(settings) is False
