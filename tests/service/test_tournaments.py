"""Loading a tournament: stored rules are parsed once per distinct document, and an edit is seen at once."""

from __future__ import annotations

import dataclasses

from crowdalpha.service import Context
from crowdalpha.service._tournaments import load_tournament
from crowdalpha.store import run_transaction
from crowdalpha.tournament.config import to_dict


def _load(ctx: Context, tournament: str | int):
    return run_transaction(ctx.engine, lambda uow: load_tournament(uow, tournament), read_only=True)


def test_loading_a_tournament_twice_reuses_the_parsed_rules(ctx: Context) -> None:
    first = _load(ctx, "classic")
    second = _load(ctx, 8)
    assert first.id == second.id == 8
    assert second.config is first.config


def test_an_edited_config_is_parsed_afresh(ctx: Context) -> None:
    before = _load(ctx, "classic")
    rules = before.config.submissions
    edited = dataclasses.replace(
        before.config, submissions=dataclasses.replace(rules, max_upload_bytes=rules.max_upload_bytes + 1)
    )
    run_transaction(
        ctx.engine,
        lambda uow: uow.tournaments.upsert(before.id, before.name, to_dict(edited), now=ctx.now()),
    )
    after = _load(ctx, "classic")
    assert after.config == edited
    assert after.config.submissions.max_upload_bytes == rules.max_upload_bytes + 1
