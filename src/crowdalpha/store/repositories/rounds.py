"""Rounds (number, state, the times numerapi reads) and their live universes."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crowdalpha.store.errors import AlreadyExists, NotFound
from crowdalpha.store.schema import LiveUniverse, Round, RoundState, Tournament


class RoundRepository:
    """Rounds and live universes in one unit of work."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        tournament_id: int,
        number: int,
        *,
        open_time: datetime,
        close_time: datetime,
        now: datetime,
        close_staking_time: datetime | None = None,
        score_time: datetime | None = None,
        resolve_time: datetime | None = None,
        data_datestamp: int | None = None,
        dataset_version_id: int | None = None,
        state: RoundState | str = RoundState.UPCOMING,
    ) -> Round:
        """Return a new round (``close_staking_time`` defaults to ``close_time``); AlreadyExists if taken."""
        if self.session.get(Tournament, tournament_id) is None:
            raise NotFound(f"no tournament with id {tournament_id}")
        if self.get_by_number(tournament_id, number) is not None:
            raise AlreadyExists(f"round {number} already exists in tournament {tournament_id}")
        round_ = Round(
            tournament_id=tournament_id,
            number=number,
            state=RoundState(state).value,
            open_time=open_time,
            close_time=close_time,
            close_staking_time=close_time if close_staking_time is None else close_staking_time,
            score_time=score_time,
            resolve_time=resolve_time,
            data_datestamp=data_datestamp,
            dataset_version_id=dataset_version_id,
            created_at=now,
            updated_at=now,
        )
        self.session.add(round_)
        self.session.flush()
        return round_

    def get(self, round_id: str) -> Round:
        """Return the round with this id; raise NotFound otherwise."""
        round_ = self.session.get(Round, round_id)
        if round_ is None:
            raise NotFound(f"no round with id {round_id!r}")
        return round_

    def get_by_number(self, tournament_id: int, number: int) -> Round | None:
        """Return the tournament's round with this number, or None."""
        query = select(Round).where(Round.tournament_id == tournament_id, Round.number == number)
        return self.session.scalars(query).one_or_none()

    def current(self, tournament_id: int) -> Round | None:
        """Return the highest-numbered round that has opened (numerapi's ``number: 0``), or None."""
        query = (
            select(Round)
            .where(Round.tournament_id == tournament_id, Round.state != RoundState.UPCOMING.value)
            .order_by(Round.number.desc())
            .limit(1)
        )
        return self.session.scalars(query).first()

    def latest(self, tournament_id: int) -> Round | None:
        """Return the highest-numbered round in any state (to number the next one), or None."""
        query = (
            select(Round).where(Round.tournament_id == tournament_id).order_by(Round.number.desc()).limit(1)
        )
        return self.session.scalars(query).first()

    def list(
        self,
        tournament_id: int,
        *,
        number: int | None = None,
        states: Collection[RoundState | str] | None = None,
        limit: int | None = None,
    ) -> list[Round]:
        """Return the tournament's rounds, newest first, filtered by number and states, at most ``limit``."""
        query = select(Round).where(Round.tournament_id == tournament_id)
        if number is not None:
            query = query.where(Round.number == number)
        if states is not None:
            query = query.where(Round.state.in_([RoundState(state).value for state in states]))
        query = query.order_by(Round.number.desc())
        if limit is not None:
            query = query.limit(limit)
        return list(self.session.scalars(query))

    def transition(
        self,
        round_id: str,
        from_states: Collection[RoundState | str],
        to_state: RoundState | str,
        *,
        now: datetime,
    ) -> bool:
        """Move a round to ``to_state`` if it is in one of ``from_states``; return whether it moved.

        The check and the change are one UPDATE, so two concurrent transitions cannot both succeed.
        """
        statement = (
            update(Round)
            .where(Round.id == round_id, Round.state.in_([RoundState(state).value for state in from_states]))
            .values(state=RoundState(to_state).value, updated_at=now)
        )
        return self.session.execute(statement).rowcount == 1

    def set_live_universe(
        self,
        round_id: str,
        *,
        id_column: str,
        member_count: int,
        blob_key: str,
        size_bytes: int,
        sha256: str,
        now: datetime,
    ) -> LiveUniverse:
        """Return the round's live universe after recording (or replacing) its blob."""
        self.get(round_id)
        universe = self.session.get(LiveUniverse, round_id)
        if universe is None:
            universe = LiveUniverse(round_id=round_id)
            self.session.add(universe)
        universe.id_column = id_column
        universe.member_count = member_count
        universe.blob_key = blob_key
        universe.size_bytes = size_bytes
        universe.sha256 = sha256
        universe.created_at = now
        self.session.flush()
        return universe

    def get_live_universe(self, round_id: str) -> LiveUniverse | None:
        """Return the round's live universe, or None if none is published."""
        return self.session.get(LiveUniverse, round_id)
