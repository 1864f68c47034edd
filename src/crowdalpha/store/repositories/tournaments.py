"""Tournaments and their configs, stored as JSON documents."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdalpha.store.errors import NotFound
from crowdalpha.store.schema import Tournament


class TournamentRepository:
    """Tournaments in one unit of work."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def upsert(
        self, tournament_id: int, name: str, config: Mapping[str, Any], *, now: datetime
    ) -> Tournament:
        """Return the tournament after creating it or replacing its name and config."""
        tournament = self.session.get(Tournament, tournament_id)
        if tournament is None:
            tournament = Tournament(
                id=tournament_id, name=name, config=dict(config), created_at=now, updated_at=now
            )
            self.session.add(tournament)
        else:
            tournament.name = name
            tournament.config = dict(config)
            tournament.updated_at = now
        self.session.flush()
        return tournament

    def get(self, tournament_id: int) -> Tournament:
        """Return the tournament with this numerapi id; raise NotFound otherwise."""
        tournament = self.session.get(Tournament, tournament_id)
        if tournament is None:
            raise NotFound(f"no tournament with id {tournament_id}")
        return tournament

    def lock(self, tournament_id: int) -> None:
        """Hold the tournament's row lock until the transaction ends (PostgreSQL; SQLite: the writer lock)."""
        self.session.execute(select(Tournament.id).where(Tournament.id == tournament_id).with_for_update())

    def get_by_name(self, name: str) -> Tournament:
        """Return the tournament with this name (e.g. ``classic``); raise NotFound otherwise."""
        tournament = self.session.scalars(select(Tournament).where(Tournament.name == name)).one_or_none()
        if tournament is None:
            raise NotFound(f"no tournament named {name!r}")
        return tournament

    def list(self) -> list[Tournament]:
        """Return every tournament, by id."""
        return list(self.session.scalars(select(Tournament).order_by(Tournament.id)))
