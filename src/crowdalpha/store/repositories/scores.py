"""Daily scores: rounds' private live data, the score days scored, and each submission's score values.

A score day of ten thousand models is tens of thousands of rows, and a round has twenty or more
days: rows go in through the driver's bulk path — PostgreSQL's ``COPY … FROM STDIN``, SQLite's
``executemany`` of plain tuples — inside the unit of work's transaction, not row by row.
"""

from __future__ import annotations

import io
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import repeat

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from crowdalpha.store.schema import (
    Model,
    Round,
    RoundLiveData,
    RoundScoreDay,
    RoundState,
    Submission,
    SubmissionScore,
)

SQLITE_INSERT_CACHE_KIB = 256 * 1024
"""SQLite page cache (KiB) while score rows go in: the indexes of a round's scores stay in memory."""


@dataclass(frozen=True)
class NewScore:
    """A score to store: submission, score name, score day, value and on-time percentile (None if late)."""

    submission_id: str
    score: str
    day: int
    value: float
    percentile: float | None


@dataclass(frozen=True)
class NewScoreColumn:
    """One score of many submissions on one day: ids, their values and percentiles (None if late)."""

    score: str
    day: int
    submission_ids: Sequence[str]
    values: Sequence[float]
    percentiles: Sequence[float | None]


def _score_rows(round_id: str, scores: Iterable[NewScore | NewScoreColumn]) -> list[tuple]:
    """Return ``(submission, round, score, day, value, percentile)`` rows; a column's rows are zipped."""
    rows: list[tuple] = []
    for item in scores:
        if isinstance(item, NewScoreColumn):
            size = len(item.submission_ids)
            if not len(item.values) == len(item.percentiles) == size:
                raise ValueError(
                    f"score column {item.score!r} day {item.day}: ids, values, percentiles differ"
                )
            rows.extend(
                zip(
                    item.submission_ids,
                    repeat(round_id, size),
                    repeat(item.score, size),
                    repeat(item.day, size),
                    item.values,
                    item.percentiles,
                    strict=True,
                )
            )
        else:
            rows.append((item.submission_id, round_id, item.score, item.day, item.value, item.percentile))
    return rows


def _require_copy_safe(texts: Iterable[str]) -> None:
    """Refuse text that COPY's text format would need to escape (ids and score names never do)."""
    for text in texts:
        if "\t" in text or "\n" in text or "\\" in text or "\r" in text:
            raise ValueError(f"a score row field holds a tab, newline or backslash: {text!r}")


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
        scores: Iterable[NewScore | NewScoreColumn],
        *,
        market_date: date,
        submissions: int,
        now: datetime,
        scored: Collection[int] | None = None,
    ) -> RoundScoreDay | None:
        """Store a score day and its scores; return None (storing nothing) if the day was scored already.

        ``scored``: the round's scored days as read earlier in this transaction (spares the read).
        """
        if day in (self.scored_days(round_id) if scored is None else scored):
            return None
        record = RoundScoreDay(
            round_id=round_id, day=day, market_date=market_date, submissions=submissions, scored_at=now
        )
        self.session.add(record)
        self.add_scores(round_id, scores, now=now)
        self.session.flush()
        return record

    def add_scores(self, round_id: str, scores: Iterable[NewScore | NewScoreColumn], *, now: datetime) -> int:
        """Store scores through the bulk path (also ones computed after their day: TC); return how many."""
        rows = _score_rows(round_id, scores)
        if rows:
            self._insert_scores(rows, now=now)
            self.session.flush()
        return len(rows)

    def _insert_scores(self, rows: Sequence[tuple], *, now: datetime) -> None:
        """Insert score rows ``(submission, round, score, day, value, percentile)`` through the bulk path."""
        self.session.flush()  # the day's row first: the scores follow it in the same transaction
        table = SubmissionScore.__table__
        names = ("submission_id", "round_id", "score", "day", "value", "percentile", "scored_at")
        connection = self.session.connection()
        dialect = connection.dialect
        stamp_type = table.c.scored_at.type
        process = stamp_type.bind_processor(dialect)
        stamp = process(now) if process is not None else now
        if dialect.name == "sqlite" and isinstance(stamp, datetime):
            stamp = stamp.isoformat(" ")  # what sqlite3's datetime adapter stores, once instead of per row
        raw = connection.connection.driver_connection
        if dialect.name == "postgresql":
            buffer = io.StringIO()
            stamp_text = stamp.isoformat()
            _require_copy_safe({text for row in rows for text in row[:3]})
            for submission_id, round_id, score, day, value, percentile in rows:
                pct = "\\N" if percentile is None or math.isnan(percentile) else repr(float(percentile))
                buffer.write(
                    f"{submission_id}\t{round_id}\t{score}\t{day}\t{float(value)!r}\t{pct}\t{stamp_text}\n"
                )
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy,
            ):
                copy.write(buffer.getvalue())
        elif dialect.name == "sqlite":
            cursor = raw.cursor()
            try:
                # each row lands in the unique index beside its submission's earlier days: with SQLite's
                # default 2 MB page cache a round of ten thousand models re-reads that index per row
                (cache_pages,) = cursor.execute("PRAGMA cache_size").fetchone()
                cursor.execute(f"PRAGMA cache_size=-{SQLITE_INSERT_CACHE_KIB}")
                cursor.executemany(
                    f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                    [(*row, stamp) for row in rows],
                )
                cursor.execute(f"PRAGMA cache_size={int(cache_pages)}")
            finally:
                cursor.close()
        else:  # any other database: SQLAlchemy's executemany
            self.session.execute(
                insert(SubmissionScore), [dict(zip(names, (*row, now), strict=True)) for row in rows]
            )

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

    def score_values(self, round_id: str, *, score: str, day: int) -> dict[str, float]:
        """Return one score's values on one day of the round, by submission id."""
        query = select(SubmissionScore.submission_id, SubmissionScore.value).where(
            SubmissionScore.round_id == round_id, SubmissionScore.score == score, SubmissionScore.day == day
        )
        return {submission_id: value for submission_id, value in self.session.execute(query)}

    def model_scores(self, model_id: str) -> list[tuple[SubmissionScore, date]]:
        """Return every stored score of the model's submissions with its day's market date, by round, day."""
        query = (
            select(SubmissionScore, RoundScoreDay.market_date)
            .join(Submission, Submission.id == SubmissionScore.submission_id)
            .join(
                RoundScoreDay,
                (RoundScoreDay.round_id == SubmissionScore.round_id)
                & (RoundScoreDay.day == SubmissionScore.day),
            )
            .where(Submission.model_id == model_id)
            .order_by(SubmissionScore.round_id, SubmissionScore.day, SubmissionScore.score)
        )
        return [(row, market_date) for row, market_date in self.session.execute(query)]

    def resolved_scores(self, tournament_id: int) -> list[tuple[SubmissionScore, Model, Round]]:
        """Return every stored score of the tournament's resolved rounds with its model and round."""
        query = (
            select(SubmissionScore, Model, Round)
            .join(Round, Round.id == SubmissionScore.round_id)
            .join(Submission, Submission.id == SubmissionScore.submission_id)
            .join(Model, Model.id == Submission.model_id)
            .where(Round.tournament_id == tournament_id, Round.state == RoundState.RESOLVED.value)
            .order_by(Round.number, Model.id, SubmissionScore.score, SubmissionScore.day)
        )
        return [(score, model, round_row) for score, model, round_row in self.session.execute(query)]
