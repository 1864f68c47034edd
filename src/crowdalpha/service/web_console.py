"""The operator console's own action: retry a failed job (round controls reuse open_round and close_round)."""

from __future__ import annotations

from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.store import NotFound, UnitOfWork, run_transaction


def retry_job(ctx: Context, key: str) -> None:
    """Put a failed job back to pending, due now, for the next tick; ``job_not_failed`` otherwise."""
    now = ctx.now()

    def work(uow: UnitOfWork) -> None:
        job = uow.jobs.get_by_key(key)
        if job is None:
            raise NotFound(f"no job with key {key!r}")
        if not uow.jobs.reset_failed(key, now=now):
            raise ServiceError("job_not_failed", f"job {key} is {job.state}; only a failed job is retried")

    run_transaction(ctx.engine, work)
