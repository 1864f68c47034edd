"""Concurrent uploads of one model: every accepted upload is stored, exactly one (the latest) is selected."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from service_factories import TUESDAY_OPEN, World, predictions_csv
from sqlalchemy import select

from crowdalpha.service import Context, create_model, open_round, submit_predictions
from crowdalpha.store import Submission, transaction

THREADS = 8
UPLOADS_PER_THREAD = 4


class TickingClock:
    """A clock that moves one millisecond forward at every reading (thread-safe): distinct arrival times."""

    def __init__(self, start: datetime) -> None:
        self._ticks = itertools.count()
        self._start = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the start plus one millisecond per earlier reading."""
        with self._lock:
            return self._start + timedelta(milliseconds=next(self._ticks))


def _stored(ctx: Context, model_id: str) -> list[Submission]:
    with transaction(ctx.engine, read_only=True) as uow:
        return list(uow.session.scalars(select(Submission).where(Submission.model_id == model_id)))


def _upload_concurrently(ctx: Context, model_ids: list[str], content: bytes) -> list:
    def upload(number: int) -> list:
        model_id = model_ids[number % len(model_ids)]
        return [
            submit_predictions(ctx, "alice", model_id, f"p{number}.csv", content)
            for _ in range(UPLOADS_PER_THREAD)
        ]

    with ThreadPoolExecutor(THREADS) as pool:
        return [receipt for receipts in pool.map(upload, range(THREADS)) for receipt in receipts]


def _ticking(world: World) -> Context:
    world.clock.set(TUESDAY_OPEN + timedelta(minutes=30))
    open_round(world.ctx, "classic")
    base = world.ctx
    return Context(
        engine=base.engine,
        blobs=base.blobs,
        clock=TickingClock(TUESDAY_OPEN + timedelta(minutes=31)),
        settings=base.settings,
    )


def test_concurrent_uploads_of_one_model_keep_every_row_and_select_the_latest(
    world: World, live_ids: list[str]
) -> None:
    ctx = _ticking(world)
    receipts = _upload_concurrently(ctx, [world.model_id], predictions_csv(live_ids))
    assert len(receipts) == THREADS * UPLOADS_PER_THREAD
    stored = _stored(ctx, world.model_id)
    assert {row.id for row in stored} == {receipt.submission_id for receipt in receipts}
    selected = [row for row in stored if row.selected]
    assert len(selected) == 1
    assert selected[0].received_at == max(row.received_at for row in stored)
    assert len(ctx.blobs.keys("submissions/")) == len(stored)


def test_concurrent_uploads_of_several_models_select_one_per_model(world: World, live_ids: list[str]) -> None:
    ctx = _ticking(world)
    model_ids = [world.model_id, create_model(world.ctx, "alice", "classic", "alice_second").id]
    receipts = _upload_concurrently(ctx, model_ids, predictions_csv(live_ids))
    assert len(receipts) == THREADS * UPLOADS_PER_THREAD
    for model_id in model_ids:
        stored = _stored(ctx, model_id)
        assert len(stored) == THREADS * UPLOADS_PER_THREAD // len(model_ids)
        selected = [row for row in stored if row.selected]
        assert len(selected) == 1
        assert selected[0].received_at == max(row.received_at for row in stored)
