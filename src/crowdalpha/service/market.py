"""The market store: the panel rows the operator ingests day by day, revealed only up to a date.

``ingest_market`` validates panel rows against the contract (:func:`crowdalpha.market.panel.validate_panel`)
and appends them to the home's market store: each ingest is one Parquet blob
``market/<first>_<last>_<uuid>.parquet`` in the blob store, indexed by one ``market_ingests`` row
(dates, rows, assets, columns, blob, SHA-256). Batches are append-only: a batch must start after
the store's last date (no overlapping or repeated dates) and carry the same columns as the first
batch, so the store always concatenates into one valid panel. The blob is written first under a
fresh key and deleted again if the row cannot be recorded, so a refused or failed ingest leaves
nothing behind.

``market_panel(ctx, through=D)`` is the panel as the server knew it at the close of D: every
ingested row dated D or earlier. Scoring and the simulator read the market only through it.

A home holds one store per market (:data:`MARKETS`): ``equity`` (Classic and Signals) and
``crypto`` (the Crypto tournament's token market, ``crowdalpha market ingest FILE --market crypto``).
A tournament reads the store its config names (``TournamentConfig.market``).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd
import pyarrow.parquet as pq

from crowdalpha.market.panel import PanelError, validate_panel
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.store import UnitOfWork, run_transaction
from crowdalpha.store.schema import MarketIngest

MARKET_PREFIX = "market"
_CACHE_KEY = "market_panel"
EQUITY = "equity"
MARKETS = (EQUITY, "crypto")


@dataclass(frozen=True)
class MarketCoverage:
    """What one ingest added (its first and last date, rows, dates) and what the store now covers."""

    first_date: date
    last_date: date
    rows: int
    dates: int
    assets: int
    covered_from: date
    covered_through: date
    covered_dates: int


def _day(value: pd.Timestamp) -> date:
    return pd.Timestamp(value).date()


def _parquet_bytes(panel: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    panel.to_parquet(sink, index=False)
    return sink.getvalue()


def check_market(market: str) -> str:
    """Return ``market`` if it names a market store; raise ServiceError naming the known ones."""
    if market not in MARKETS:
        raise ServiceError("unknown_market", f"market is one of {list(MARKETS)}; got {market!r}")
    return market


def ingest_market(ctx: Context, panel: pd.DataFrame, *, market: str = EQUITY) -> MarketCoverage:
    """Validate panel rows, append them to the ``market`` store and return the dates now covered."""
    check_market(market)
    try:
        panel = validate_panel(panel)
    except PanelError as error:
        raise ServiceError("invalid_market_panel", str(error)) from None
    first, last = _day(panel["date"].iloc[0]), _day(panel["date"].iloc[-1])
    columns = [str(column) for column in panel.columns]
    dates = int(panel["date"].nunique())
    blob = ctx.blobs.put_bytes(
        f"{MARKET_PREFIX}/{market}/{first:%Y%m%d}_{last:%Y%m%d}_{uuid.uuid4().hex}.parquet",
        _parquet_bytes(panel),
    )

    def work(uow: UnitOfWork) -> MarketCoverage:
        latest = uow.market.latest(market)
        if latest is not None and first <= latest.last_date:
            raise ServiceError(
                "market_dates_overlap",
                f"the {market} market store already holds dates through"
                f" {latest.last_date.isoformat()}; the file"
                f" starts at {first.isoformat()} — ingest only dates after {latest.last_date.isoformat()}",
            )
        batches = uow.market.list(market)
        if batches and columns != batches[0].columns:
            missing = [c for c in batches[0].columns if c not in columns]
            extra = [c for c in columns if c not in batches[0].columns]
            raise ServiceError(
                "market_columns_changed",
                f"every ingest must have the {market} market store's columns;"
                f" missing {missing}, unexpected {extra}",
            )
        uow.market.add(
            market=market,
            first_date=first,
            last_date=last,
            dates=dates,
            rows=len(panel),
            assets=int(panel["asset"].nunique()),
            columns=columns,
            blob_key=blob.key,
            size_bytes=blob.size_bytes,
            sha256=blob.sha256,
            now=ctx.now(),
        )
        return MarketCoverage(
            first_date=first,
            last_date=last,
            rows=len(panel),
            dates=dates,
            assets=int(panel["asset"].nunique()),
            covered_from=batches[0].first_date if batches else first,
            covered_through=last,
            covered_dates=sum(batch.dates for batch in batches) + dates,
        )

    try:
        return run_transaction(ctx.engine, work)
    except BaseException:
        ctx.blobs.delete(blob.key)
        raise


def market_through(ctx: Context, market: str = EQUITY) -> date | None:
    """Return the last ingested date of the ``market`` store, or None before its first ingest."""

    def work(uow: UnitOfWork) -> date | None:
        latest = uow.market.latest(market)
        return None if latest is None else latest.last_date

    return run_transaction(ctx.engine, work, read_only=True)


def market_batches(ctx: Context, market: str = EQUITY, *, through: date | None = None) -> list[MarketIngest]:
    """Return the ``market`` store's batches in date order; with ``through``, those starting by then."""
    return run_transaction(ctx.engine, lambda uow: uow.market.list(market, through=through), read_only=True)


def read_batches(ctx: Context, keys: Sequence[str]) -> pd.DataFrame:
    """Return the panel rows of the stored batches ``keys``, in order (validated when ingested)."""
    pieces = []
    for key in keys:
        with ctx.blobs.open(key) as handle:
            pieces.append(pq.read_table(handle).to_pandas())
    return pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else pieces[0]


def market_rows(ctx: Context, on: date, *, market: str = EQUITY) -> pd.DataFrame | None:
    """Return the ``market`` store's rows dated ``on`` (read from the batch holding it); None if none."""
    batch = next((item for item in market_batches(ctx, market, through=on) if item.last_date >= on), None)
    if batch is None:
        return None
    cached = ctx.cache.get(f"{_CACHE_KEY}/{market}")
    if cached is not None and batch.blob_key in cached[0]:
        panel = cached[1]  # the store's panel is in memory already: no blob to read
    else:
        panel = read_batches(ctx, [batch.blob_key])
    rows = panel[panel["date"] == pd.Timestamp(on)].reset_index(drop=True)
    return rows if len(rows) else None


def market_panel(ctx: Context, *, through: date | None = None, market: str = EQUITY) -> pd.DataFrame | None:
    """Return the ``market`` store's panel (by date and asset) dated ``through`` or earlier; None if empty."""
    batches = market_batches(ctx, market, through=through)
    if not batches:
        return None
    keys = tuple(batch.blob_key for batch in batches)
    cached = ctx.cache.get(f"{_CACHE_KEY}/{market}")
    if cached is not None and cached[0][: len(keys)] == keys:
        panel = cached[1]  # the same batches, or more: the date filter below keeps those through the date
    else:
        # batches are append-only: a cached view whose keys begin the list needs only the new blobs
        known = cached is not None and keys[: len(cached[0])] == cached[0]
        fresh = read_batches(ctx, keys[len(cached[0]) :] if known else keys)
        panel = pd.concat([cached[1], fresh], ignore_index=True) if known else fresh
        ctx.cache[f"{_CACHE_KEY}/{market}"] = (keys, panel)  # one entry per market: the newest view
    if through is not None and _day(panel["date"].iloc[-1]) > through:
        panel = panel[panel["date"] <= pd.Timestamp(through)].reset_index(drop=True)
    return panel
