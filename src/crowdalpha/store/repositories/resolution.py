"""Round close and resolution records: at-risk stakes snapshotted at close, payouts, round summaries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from crowdalpha.store.schema import Model, RoundResolution, RoundStake


@dataclass(frozen=True)
class NewStake:
    """A staked on-time submission at round close: its model and at-risk stake in nano-tokens."""

    submission_id: str
    model_id: str
    at_risk_nano: int


class ResolutionRepository:
    """Reads and writes a round's at-risk stakes and its resolution summary."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def has_stakes(self, round_id: str) -> bool:
        """Return True once the round's at-risk stakes were snapshotted (at close)."""
        query = select(RoundStake.submission_id).where(RoundStake.round_id == round_id).limit(1)
        return self.session.scalar(query) is not None

    def add_stakes(self, round_id: str, stakes: Iterable[NewStake]) -> int:
        """Store the round's at-risk stakes; return how many (nothing is stored twice for a round)."""
        if self.has_stakes(round_id):
            return 0
        rows = [
            {
                "round_id": round_id,
                "submission_id": stake.submission_id,
                "model_id": stake.model_id,
                "at_risk_nano": stake.at_risk_nano,
            }
            for stake in stakes
        ]
        if rows:  # one executemany, not an ORM object per staked model
            self.session.execute(insert(RoundStake), rows)
        return len(rows)

    def stakes(self, round_id: str) -> list[RoundStake]:
        """Return the round's at-risk stakes, by submission id."""
        query = select(RoundStake).where(RoundStake.round_id == round_id).order_by(RoundStake.submission_id)
        return list(self.session.scalars(query))

    def model_stakes(self, model_id: str) -> list[RoundStake]:
        """Return every round's stake record of a model."""
        return list(self.session.scalars(select(RoundStake).where(RoundStake.model_id == model_id)))

    def set_payouts(self, round_id: str, payouts: Mapping[str, tuple[float | None, int]]) -> None:
        """Record each submission's payout score and payout (nano-tokens) for the round."""
        if not payouts:
            return
        table = RoundStake.__table__
        statement = (
            update(table)
            .where(table.c.round_id == round_id, table.c.submission_id == bindparam("submission"))
            .values(payout_score=bindparam("score"), payout_nano=bindparam("nano"))
        )
        self.session.execute(
            statement,
            [
                {"submission": submission_id, "score": score, "nano": nano}
                for submission_id, (score, nano) in payouts.items()
            ],
        )
        for held in list(self.session.identity_map.values()):  # a Core update bypasses loaded objects
            if isinstance(held, RoundStake) and held.round_id == round_id:
                self.session.expire(held)

    def payouts_by_model_name(self, round_id: str) -> dict[str, int]:
        """Return the round's non-zero payouts (nano-tokens) by model name."""
        query = (
            select(Model.name, RoundStake.payout_nano)
            .join(Model, Model.id == RoundStake.model_id)
            .where(RoundStake.round_id == round_id, RoundStake.payout_nano != 0)
            .order_by(Model.name)
        )
        return {name: int(nano) for name, nano in self.session.execute(query)}

    def resolution(self, round_id: str) -> RoundResolution | None:
        """Return the round's resolution summary, or None before it resolved."""
        return self.session.get(RoundResolution, round_id)

    def add_resolution(
        self,
        round_id: str,
        *,
        total_at_risk_nano: int,
        payout_factor: float,
        paid_nano: int,
        burned_nano: int,
        models: int,
        now: datetime,
    ) -> RoundResolution:
        """Store the round's resolution summary."""
        record = RoundResolution(
            round_id=round_id,
            total_at_risk_nano=total_at_risk_nano,
            payout_factor=payout_factor,
            paid_nano=paid_nano,
            burned_nano=burned_nano,
            models=models,
            resolved_at=now,
        )
        self.session.add(record)
        self.session.flush()
        return record
