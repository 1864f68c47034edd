"""Jobs: idempotent by key, claimed exclusively under a lease, finished only by the lease holder."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine
from store_factories import T0

from crowdalpha.store import JobState, LeaseLost, job_key, run_transaction, transaction

LEASE = timedelta(minutes=5)


def test_job_keys_name_tournament_round_step_and_date() -> None:
    assert job_key("classic", 842, "score", date(2026, 1, 9)) == "classic/842/score/2026-01-09"
    assert job_key(8, 842, "close") == "8/842/close/-"
    assert job_key("classic", None, "ingest", date(2026, 1, 9)) == "classic/-/ingest/2026-01-09"
    with pytest.raises(ValueError, match="contain no '/'"):
        job_key("a/b", 1, "close")


def test_enqueue_is_idempotent_by_key(engine: Engine) -> None:
    key = job_key("classic", 1, "open")
    with transaction(engine) as uow:
        first = uow.jobs.enqueue(key, "open", now=T0, payload={"round": 1})
        again = uow.jobs.enqueue(key, "open", now=T0 + LEASE, payload={"round": 999})
    assert first.id == again.id and again.payload == {"round": 1} and again.state == JobState.PENDING
    with transaction(engine) as uow:
        assert uow.jobs.enqueue(key, "open", now=T0).id == first.id
        assert len(uow.jobs.list()) == 1


def test_claim_takes_due_jobs_oldest_first_and_respects_steps(engine: Engine) -> None:
    with transaction(engine) as uow:
        uow.jobs.enqueue("c/1/close/-", "close", now=T0, due_at=T0 + timedelta(hours=1))
        uow.jobs.enqueue("c/1/open/-", "open", now=T0, due_at=T0)
        uow.jobs.enqueue("c/2/open/-", "open", now=T0, due_at=T0 + timedelta(days=1))
    with transaction(engine) as uow:
        assert uow.jobs.claim("w", now=T0 - timedelta(seconds=1), lease=LEASE) == []
        assert [
            j.key for j in uow.jobs.claim("w", now=T0 + timedelta(hours=2), lease=LEASE, steps=["close"])
        ] == ["c/1/close/-"]
        claimed = uow.jobs.claim("w", now=T0 + timedelta(hours=2), lease=LEASE, limit=5)
    assert [j.key for j in claimed] == ["c/1/open/-"]
    job = claimed[0]
    assert (job.state, job.attempts, job.lease_owner) == ("running", 1, "w")
    assert job.lease_until == T0 + timedelta(hours=2) + LEASE and job.started_at == T0 + timedelta(hours=2)


def test_complete_and_fail_need_the_lease(engine: Engine) -> None:
    with transaction(engine) as uow:
        uow.jobs.enqueue("k/1/a/-", "a", now=T0)
        uow.jobs.enqueue("k/1/b/-", "b", now=T0)
        a, b = uow.jobs.claim("w1", now=T0, lease=LEASE, limit=2)
    with transaction(engine) as uow:
        with pytest.raises(LeaseLost):
            uow.jobs.complete(a.id, "someone-else", now=T0)
        done = uow.jobs.complete(a.id, "w1", now=T0 + timedelta(minutes=1))
        assert (done.state, done.finished_at, done.lease_owner) == ("done", T0 + timedelta(minutes=1), None)
        with pytest.raises(LeaseLost):
            uow.jobs.complete(a.id, "w1", now=T0)  # already done: a double finish is refused
        failed = uow.jobs.fail(b.id, "w1", error="boom" * 5000, now=T0)
        assert failed.state == "failed" and len(failed.error) == 10_000
    with transaction(engine) as uow:
        assert uow.jobs.claim("w2", now=T0 + timedelta(days=1), lease=LEASE) == []
        assert uow.jobs.reset_failed("k/1/b/-", now=T0)
        assert not uow.jobs.reset_failed("k/1/b/-", now=T0)
        assert [j.key for j in uow.jobs.claim("w2", now=T0, lease=LEASE)] == ["k/1/b/-"]


def test_fail_with_retry_at_puts_the_job_back_later(engine: Engine) -> None:
    with transaction(engine) as uow:
        uow.jobs.enqueue("k/1/score/-", "score", now=T0)
        (job,) = uow.jobs.claim("w", now=T0, lease=LEASE)
        retry_at = T0 + timedelta(minutes=10)
        again = uow.jobs.fail(job.id, "w", error="data not ingested yet", now=T0, retry_at=retry_at)
        assert (again.state, again.due_at, again.error) == ("pending", retry_at, "data not ingested yet")
        assert uow.jobs.claim("w", now=T0 + timedelta(minutes=9), lease=LEASE) == []
        (retried,) = uow.jobs.claim("w", now=retry_at, lease=LEASE)
        assert retried.attempts == 2


def test_an_expired_lease_can_be_taken_over_and_the_old_worker_loses(engine: Engine) -> None:
    with transaction(engine) as uow:
        uow.jobs.enqueue("k/1/resolve/-", "resolve", now=T0)
        (job,) = uow.jobs.claim("crashed", now=T0, lease=LEASE)
    with transaction(engine) as uow:
        assert uow.jobs.claim("w2", now=T0 + LEASE, lease=LEASE) == []  # lease still valid at its end
        extended = uow.jobs.extend_lease(job.id, "crashed", until=T0 + 2 * LEASE, now=T0)
        assert extended.lease_until == T0 + 2 * LEASE
        (taken,) = uow.jobs.claim("w2", now=T0 + 3 * LEASE, lease=LEASE)
        assert (taken.id, taken.lease_owner, taken.attempts) == (job.id, "w2", 2)
        with pytest.raises(LeaseLost, match="'crashed'"):
            uow.jobs.complete(job.id, "crashed", now=T0 + 3 * LEASE)
        assert uow.jobs.complete(job.id, "w2", now=T0 + 3 * LEASE).state == "done"
        assert [j.key for j in uow.jobs.list(states=["done"], key_prefix="k/1/")] == ["k/1/resolve/-"]
        assert uow.jobs.list(key_prefix="k/2/") == []


def test_concurrent_workers_run_each_job_exactly_once(engine: Engine) -> None:
    job_count, worker_count = 40, 6
    with transaction(engine) as uow:
        for index in range(job_count):
            uow.jobs.enqueue(job_key("classic", index, "score", date(2026, 1, 9)), "score", now=T0)
    start = threading.Barrier(worker_count)
    runs: Counter[int] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            start.wait(10)
            while True:
                jobs = run_transaction(
                    engine,
                    lambda uow: uow.jobs.claim(name, now=T0, lease=LEASE, limit=2),
                    isolation_level="READ COMMITTED",
                )
                if not jobs:
                    return
                for job in jobs:
                    with lock:
                        runs[job.id] += 1
                    run_transaction(
                        engine,
                        lambda uow, job_id=job.id: uow.jobs.complete(job_id, name, now=T0),
                        isolation_level="READ COMMITTED",
                    )
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(f"worker-{n}",)) for n in range(worker_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(runs) == job_count and set(runs.values()) == {1}
    with transaction(engine, read_only=True) as uow:
        jobs = uow.jobs.list()
    assert {job.state for job in jobs} == {"done"} and {job.attempts for job in jobs} == {1}
