"""The market store's index: one row per ingested batch of panel dates, each batch a Parquet blob."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdalpha.store.schema import MarketIngest


class MarketRepository:
    """Market ingests in one unit of work, in date order (batches never overlap)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        *,
        market: str,
        first_date: date,
        last_date: date,
        dates: int,
        rows: int,
        assets: int,
        columns: list[str],
        blob_key: str,
        size_bytes: int,
        sha256: str,
        now: datetime,
    ) -> MarketIngest:
        """Return a new ingest row (the caller checked it comes after every stored batch)."""
        ingest = MarketIngest(
            market=market,
            first_date=first_date,
            last_date=last_date,
            dates=dates,
            rows=rows,
            assets=assets,
            columns=list(columns),
            blob_key=blob_key,
            size_bytes=size_bytes,
            sha256=sha256,
            ingested_at=now,
        )
        self.session.add(ingest)
        self.session.flush()
        return ingest

    def latest(self, market: str) -> MarketIngest | None:
        """Return the market's batch with the latest dates, or None before its first ingest."""
        query = (
            select(MarketIngest)
            .where(MarketIngest.market == market)
            .order_by(MarketIngest.last_date.desc())
            .limit(1)
        )
        return self.session.scalars(query).first()

    def last_started(self, market: str, *, through: date) -> tuple[int, str | None]:
        """Return how many batches start on or before ``through`` and the blob key of the last to start."""
        starting = (MarketIngest.market == market) & (MarketIngest.first_date <= through)
        count = self.session.scalar(select(func.count(MarketIngest.id)).where(starting)) or 0
        key = self.session.scalar(
            select(MarketIngest.blob_key).where(starting).order_by(MarketIngest.first_date.desc()).limit(1)
        )
        return count, key

    def list(self, market: str, *, through: date | None = None) -> list[MarketIngest]:
        """Return the market's batches in date order; with ``through``, those starting on or before it."""
        query = select(MarketIngest).where(MarketIngest.market == market).order_by(MarketIngest.first_date)
        if through is not None:
            query = query.where(MarketIngest.first_date <= through)
        return list(self.session.scalars(query))
