"""Submissions: the latest valid upload per (model, round) is selected, even under concurrent uploads."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from store_factories import T0, Seed

from crowdalpha.store import SubmissionStatus, UnitOfWork, run_transaction, transaction
from crowdalpha.store.repositories import SubmissionRepository
from crowdalpha.store.schema import Submission


def _upload(uow: UnitOfWork, seed: Seed, minutes: int, *, status: str = "on_time") -> Submission:
    return uow.submissions.add_and_select(
        seed.model_id,
        seed.round_id,
        filename=f"predictions-{minutes}.csv",
        blob_key=f"submissions/8/1/{minutes}.csv",
        sha256=f"{minutes:064d}",
        size_bytes=100 + minutes,
        received_at=T0 + timedelta(minutes=minutes),
        status=status,
    )


def test_the_latest_upload_is_selected(engine: Engine, seed: Seed) -> None:
    with transaction(engine) as uow:
        first = _upload(uow, seed, 1)
        assert uow.submissions.selected(seed.model_id, seed.round_id).id == first.id
    with transaction(engine) as uow:
        second = _upload(uow, seed, 2)
    with transaction(engine, read_only=True) as uow:
        selected = uow.submissions.selected(seed.model_id, seed.round_id)
        listed = uow.submissions.list_for_model(seed.model_id, round_id=seed.round_id)
    assert selected.id == second.id and selected.selected
    assert [s.id for s in listed] == [second.id, first.id]
    assert [s.selected for s in listed] == [True, False]


def test_an_older_upload_stored_later_does_not_displace_a_newer_selection(engine: Engine, seed: Seed) -> None:
    with transaction(engine) as uow:
        newer = _upload(uow, seed, 5)
        older = _upload(uow, seed, 3)
        assert not older.selected
        assert uow.submissions.selected(seed.model_id, seed.round_id).id == newer.id


def test_select_latest_recomputes_the_selection(engine: Engine, seed: Seed) -> None:
    with transaction(engine) as uow:
        kwargs = dict(filename="p.csv", blob_key="k", sha256="0" * 64, size_bytes=1, status="on_time")
        uow.submissions.add(seed.model_id, seed.round_id, received_at=T0, **kwargs)
        latest = uow.submissions.add(seed.model_id, seed.round_id, received_at=T0 + timedelta(1), **kwargs)
        assert uow.submissions.selected(seed.model_id, seed.round_id) is None
        assert uow.submissions.select_latest(seed.model_id, seed.round_id).id == latest.id
        assert uow.submissions.select_latest(seed.model_id, seed.round_id).id == latest.id
        assert uow.submissions.select_latest(seed.model_id, "no-such-round") is None
        assert uow.submissions.get(latest.id).selected


def test_database_refuses_two_selected_submissions_for_one_model_and_round(
    engine: Engine, seed: Seed
) -> None:
    with transaction(engine) as uow:
        _upload(uow, seed, 1)
        second = _upload(uow, seed, 2)
    with pytest.raises(IntegrityError), transaction(engine) as uow:
        uow.session.execute(update(Submission).values(selected=True))
    with transaction(engine, read_only=True) as uow:
        assert uow.submissions.selected(seed.model_id, seed.round_id).id == second.id


def test_selected_per_round_with_status_filter_and_queued_promotion(engine: Engine, seed: Seed) -> None:
    with transaction(engine) as uow:
        other = uow.models.create(seed.account_id, 8, "second_model", now=T0)
        queued = _upload(uow, seed, 1, status=SubmissionStatus.QUEUED)
        late = uow.submissions.add_and_select(
            other.id,
            seed.round_id,
            filename="l.csv",
            blob_key="l",
            sha256="1" * 64,
            size_bytes=1,
            received_at=T0 + timedelta(hours=2),
            status="late",
        )
    with transaction(engine) as uow:
        assert {s.id for s in uow.submissions.list_selected(seed.round_id)} == {queued.id, late.id}
        assert [s.id for s in uow.submissions.list_selected(seed.round_id, statuses=["late"])] == [late.id]
        assert uow.submissions.promote_queued(seed.round_id) == 1
        assert uow.submissions.promote_queued(seed.round_id) == 0
        on_time = uow.submissions.list_selected(seed.round_id, statuses=[SubmissionStatus.ON_TIME])
    assert [s.id for s in on_time] == [queued.id]


def test_concurrent_uploads_leave_exactly_one_selected_the_latest(
    engine: Engine, seed: Seed, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two units of work insert and select at once; one must lose and be re-run, never double-select."""
    barrier = threading.Barrier(2)
    waited = threading.local()
    attempts: list[int] = []
    errors: list[BaseException] = []
    original_insert = SubmissionRepository._insert

    def insert_once_both_looked(self: SubmissionRepository, *args: object, **kwargs: object) -> Submission:
        if backend == "postgresql" and not getattr(waited, "done", False):
            waited.done = True
            barrier.wait(10)  # both transactions have unselected (nothing); now both insert, selected
        return original_insert(self, *args, **kwargs)

    monkeypatch.setattr(SubmissionRepository, "_insert", insert_once_both_looked)

    def upload(minutes: int) -> None:
        def work(uow: UnitOfWork) -> Submission:
            attempts.append(minutes)
            return _upload(uow, seed, minutes)

        try:
            if backend == "sqlite":
                barrier.wait(10)  # SQLite serialises writers at BEGIN IMMEDIATE: race to begin instead
            run_transaction(engine, work)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=upload, args=(minutes,)) for minutes in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with transaction(engine, read_only=True) as uow:
        stored = uow.submissions.list_for_model(seed.model_id)
    assert len(stored) == 2
    assert [s.filename for s in stored if s.selected] == ["predictions-2.csv"]
    if backend == "postgresql":
        assert len(attempts) >= 3, "the losing unit of work should have been re-run"


def test_many_concurrent_uploads_keep_one_selection_per_model(engine: Engine, seed: Seed) -> None:
    with transaction(engine) as uow:
        models = [seed.model_id, uow.models.create(seed.account_id, 8, "m2", now=T0).id]
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def upload(index: int) -> None:
        model_id = models[index % 2]
        try:
            start.wait(10)
            run_transaction(
                engine,
                lambda uow: uow.submissions.add_and_select(
                    model_id,
                    seed.round_id,
                    filename=f"{index}.csv",
                    blob_key=f"k{index}",
                    sha256="0" * 64,
                    size_bytes=1,
                    received_at=T0 + timedelta(seconds=index),
                    status="on_time",
                ),
            )
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=upload, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with transaction(engine, read_only=True) as uow:
        selected = {s.model_id: s.filename for s in uow.submissions.list_selected(seed.round_id)}
        total = sum(len(uow.submissions.list_for_model(model_id)) for model_id in models)
    assert total == 8
    assert selected == {models[0]: "6.csv", models[1]: "7.csv"}
