"""Daily scores: rounds' private live data, the score days scored, and each submission's score values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdalpha.store.schema import RoundLiveData, RoundScoreDay, SubmissionScore


@dataclass(frozen=True)
class NewScore:
    """A score to store: submission, score name, score day, value and on-time percentile (None if late)."""

    submission_id: str
    score: str
    day: int
    value: float
    percentile: float | None


class ScoreRepository:
    """Round live data, score days and submission scores in one unit of work."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def set_live_data(
        self,
        round_id: str,
        *,
        live_date: date,
        member_count: int,
        blob_key: str,
        size_bytes: int,
        sha256: str,
        now: datetime,
    ) -> RoundLiveData:
        """Return the round's live data record, created or replaced (re-opening publishes it again)."""
        row = self.session.get(RoundLiveData, round_id)
        if row is None:
            row = RoundLiveData(round_id=round_id, created_at=now)
            self.session.add(row)
        row.live_date = live_date
        row.member_count = member_count
        row.blob_key = blob_key
        row.size_bytes = size_bytes
        row.sha256 = sha256
        self.session.flush()
        return row

    def live_data(self, round_id: str) -> RoundLiveData | None:
        """Return the round's private live data record, or None if it has none."""
        return self.session.get(RoundLiveData, round_id)

    def scored_days(self, round_id: str) -> dict[int, RoundScoreDay]:
        """Return the round's scored days by day number."""
        query = select(RoundScoreDay).where(RoundScoreDay.round_id == round_id)
        return {row.day: row for row in self.session.scalars(query)}

    def add_day(
        self,
        round_id: str,
        day: int,
        scores: Iterable[NewScore],
        *,
        market_date: date,
        submissions: int,
        now: datetime,
    ) -> RoundScoreDay | None:
        """Store a score day and its scores; return None (storing nothing) if the day was scored already."""
        if day in self.scored_days(round_id):
            return None
        record = RoundScoreDay(
            round_id=round_id, day=day, market_date=market_date, submissions=submissions, scored_at=now
        )
        self.session.add(record)
        self.session.add_all(
            SubmissionScore(
                submission_id=score.submission_id,
                round_id=round_id,
                score=score.score,
                day=score.day,
                value=score.value,
                percentile=score.percentile,
                scored_at=now,
            )
            for score in scores
        )
        self.session.flush()
        return record

    def list_scores(
        self, round_id: str, *, score: str | None = None, day: int | None = None
    ) -> list[SubmissionScore]:
        """Return the round's stored scores, optionally of one score name and day, by day then submission."""
        query = select(SubmissionScore).where(SubmissionScore.round_id == round_id)
        if score is not None:
            query = query.where(SubmissionScore.score == score)
        if day is not None:
            query = query.where(SubmissionScore.day == day)
        order = (SubmissionScore.day, SubmissionScore.score, SubmissionScore.submission_id)
        return list(self.session.scalars(query.order_by(*order)))
