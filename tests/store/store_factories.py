"""Helpers for the store tests: a fixed clock instant and a small seeded tournament world."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from crowdalpha.store import RoundState, transaction

T0 = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)


class Seed:
    """Ids of a small world: Classic tournament 8, an account with a key, a model, round 1 open."""

    def __init__(self, engine: Engine) -> None:
        with transaction(engine) as uow:
            uow.tournaments.upsert(8, "classic", {"scoring": {"horizon_days": 20}}, now=T0)
            new = uow.accounts.create_with_key("alice", now=T0)
            model = uow.models.create(new.account.id, 8, "alice_model", now=T0)
            round_ = uow.rounds.create(
                8,
                1,
                open_time=T0,
                close_time=T0.replace(hour=13),
                now=T0,
                state=RoundState.OPEN,
            )
        self.tournament_id = 8
        self.account_id = new.account.id
        self.public_id = new.key.public_id
        self.secret_key = new.key.secret_key
        self.model_id = model.id
        self.round_id = round_.id
