"""Idempotent jobs keyed by ``tournament/round/step/date``: enqueue once, claim under a lease, finish.

A worker claims jobs in one short transaction (READ COMMITTED on PostgreSQL), does the work, and
marks the job done in the same transaction as the work's own database effects, so a crash or a
double trigger never applies a step twice. A running job whose lease expired (its worker died) can
be claimed again; the old worker then gets LeaseLost when it tries to finish it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crowdalpha.store.errors import LeaseLost, NotFound
from crowdalpha.store.schema import Job, JobState

MAX_ERROR_CHARS = 10_000
KEY_NONE = "-"
KEY_QUERY_CHUNK = 500
"""Keys per ``IN`` list when looking jobs up by key (well under SQLite's bound-parameter limit)."""


def job_key(tournament: str | int, round_number: int | None, step: str, day: date | None = None) -> str:
    """Return the job key ``tournament/round/step/date`` (``-`` for a missing round or date)."""
    parts = [
        str(tournament),
        KEY_NONE if round_number is None else str(round_number),
        step,
        KEY_NONE if day is None else day.isoformat(),
    ]
    if any("/" in part or not part for part in parts):
        raise ValueError(f"job key parts must be non-empty and contain no '/': {parts!r}")
    return "/".join(parts)


class JobRepository:
    """Jobs in one unit of work."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def enqueue(
        self,
        key: str,
        step: str,
        *,
        now: datetime,
        payload: Mapping[str, Any] | None = None,
        due_at: datetime | None = None,
    ) -> Job:
        """Return the job with this key, creating it (pending, due at ``due_at`` or now) only if it is new."""
        values = {
            "key": key,
            "step": step,
            "payload": dict(payload or {}),
            "state": JobState.PENDING.value,
            "attempts": 0,
            "due_at": now if due_at is None else due_at,
            "created_at": now,
            "updated_at": now,
        }
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.session.execute(insert(Job).values(**values).on_conflict_do_nothing(index_elements=["key"]))
        job = self.get_by_key(key)
        assert job is not None  # inserted above or already there
        return job

    def claim(
        self,
        owner: str,
        *,
        now: datetime,
        lease: timedelta,
        limit: int = 1,
        steps: Collection[str] | None = None,
    ) -> list[Job]:
        """Return up to ``limit`` due jobs now leased to ``owner`` until ``now + lease``, oldest due first.

        On PostgreSQL the candidates are locked with ``FOR UPDATE SKIP LOCKED`` so concurrent workers
        take different jobs; on SQLite one UPDATE … RETURNING picks and leases them under the write lock.
        Claim in a short transaction of its own; on PostgreSQL give it ``isolation_level="READ COMMITTED"``
        (correct for this pattern, and SERIALIZABLE would make concurrent claimers abort each other).
        """
        claimable = _claimable(now, steps)
        order = (Job.due_at, Job.id)
        leased = {
            "state": JobState.RUNNING.value,
            "attempts": Job.attempts + 1,
            "lease_owner": owner,
            "lease_until": now + lease,
            "started_at": now,
            "updated_at": now,
        }
        if self.session.get_bind().dialect.name == "postgresql":
            candidates = select(Job.id).where(claimable).order_by(*order).limit(limit)
            ids = list(self.session.scalars(candidates.with_for_update(skip_locked=True)))
            if not ids:
                return []
            target = Job.id.in_(ids)
        else:
            candidates = select(Job.id).where(claimable).order_by(*order).limit(limit).scalar_subquery()
            target = and_(Job.id.in_(candidates), claimable)
        statement = (
            update(Job)
            .where(target)
            .values(**leased)
            .returning(Job)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        jobs = list(self.session.scalars(statement))
        return sorted(jobs, key=lambda job: (job.due_at, job.id))

    def complete(self, job_id: int, owner: str, *, now: datetime) -> Job:
        """Return the job marked done; raise LeaseLost unless ``owner`` holds it."""
        return self._finish(job_id, owner, now=now, state=JobState.DONE, error=None, due_at=None)

    def fail(
        self, job_id: int, owner: str, *, error: str, now: datetime, retry_at: datetime | None = None
    ) -> Job:
        """Return the job marked failed, or pending at ``retry_at``; LeaseLost if not held by ``owner``."""
        state = JobState.FAILED if retry_at is None else JobState.PENDING
        return self._finish(
            job_id, owner, now=now, state=state, error=error[:MAX_ERROR_CHARS], due_at=retry_at
        )

    def extend_lease(self, job_id: int, owner: str, *, until: datetime, now: datetime) -> Job:
        """Return the job with its lease extended to ``until``; raise LeaseLost unless ``owner`` holds it."""
        self._update_held(job_id, owner, {"lease_until": until, "updated_at": now})
        return self.get(job_id)

    def _finish(
        self,
        job_id: int,
        owner: str,
        *,
        now: datetime,
        state: JobState,
        error: str | None,
        due_at: datetime | None,
    ) -> Job:
        """Return the job after leaving the running state for ``state``."""
        values: dict[str, Any] = {
            "state": state.value,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": now,
            "error": error,
        }
        if state is JobState.PENDING:
            values["due_at"] = due_at
        else:
            values["finished_at"] = now
        self._update_held(job_id, owner, values)
        return self.get(job_id)

    def _update_held(self, job_id: int, owner: str, values: Mapping[str, Any]) -> None:
        """Apply values to a running job leased by ``owner``; raise LeaseLost if it is not."""
        statement = (
            update(Job)
            .where(Job.id == job_id, Job.state == JobState.RUNNING.value, Job.lease_owner == owner)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if self.session.execute(statement).rowcount != 1:
            raise LeaseLost(f"job {job_id} is not running under a lease held by {owner!r}")

    def reset_failed(self, key: str, *, now: datetime) -> bool:
        """Put a failed job back to pending, due now (an operator's retry); return whether it was failed."""
        statement = (
            update(Job)
            .where(Job.key == key, Job.state == JobState.FAILED.value)
            .values(state=JobState.PENDING.value, due_at=now, updated_at=now, finished_at=None)
            .execution_options(synchronize_session=False)
        )
        return self.session.execute(statement).rowcount == 1

    def get(self, job_id: int) -> Job:
        """Return the job with this id; raise NotFound otherwise."""
        job = self.session.get(Job, job_id, populate_existing=True)
        if job is None:
            raise NotFound(f"no job with id {job_id}")
        return job

    def existing_keys(self, keys: Collection[str]) -> set[str]:
        """Return those of ``keys`` that name a job already in the table (in any state)."""
        found: set[str] = set()
        ordered = sorted(set(keys))
        for start in range(0, len(ordered), KEY_QUERY_CHUNK):
            chunk = ordered[start : start + KEY_QUERY_CHUNK]
            found.update(self.session.scalars(select(Job.key).where(Job.key.in_(chunk))))
        return found

    def get_by_key(self, key: str) -> Job | None:
        """Return the job with this key, or None."""
        query = select(Job).where(Job.key == key).execution_options(populate_existing=True)
        return self.session.scalars(query).one_or_none()

    def list(
        self,
        *,
        states: Collection[JobState | str] | None = None,
        key_prefix: str | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        """Return jobs by due time then id, filtered by states and key prefix (e.g. ``classic/842/``)."""
        query = select(Job)
        if states is not None:
            query = query.where(Job.state.in_([JobState(state).value for state in states]))
        if key_prefix is not None:
            query = query.where(Job.key.startswith(key_prefix, autoescape=True))
        query = query.order_by(Job.due_at, Job.id)
        if limit is not None:
            query = query.limit(limit)
        return list(self.session.scalars(query))


def _claimable(now: datetime, steps: Collection[str] | None) -> ColumnElement[bool]:
    """Return the condition of a job a worker may take: pending and due, or running with an expired lease."""
    condition = or_(
        and_(Job.state == JobState.PENDING.value, Job.due_at <= now),
        and_(Job.state == JobState.RUNNING.value, Job.lease_until < now),
    )
    if steps is not None:
        condition = and_(condition, Job.step.in_(list(steps)))
    return condition
