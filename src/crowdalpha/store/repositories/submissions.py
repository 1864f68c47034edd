"""Submissions: store an accepted upload and keep exactly one selected (the latest) per model and round."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crowdalpha.store.errors import NotFound
from crowdalpha.store.schema import Model, Submission, SubmissionStatus


class SubmissionRepository:
    """Submissions in one unit of work.

    Selection is guarded by a partial unique index (one selected row per model and round). Two
    concurrent units of work selecting for the same model and round cannot both commit: on SQLite
    writers are serialised by ``BEGIN IMMEDIATE``; on PostgreSQL the loser fails with a retryable
    error, and ``run_transaction`` runs it again against the winner's committed state.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self,
        model_id: str,
        round_id: str,
        *,
        filename: str,
        blob_key: str,
        sha256: str,
        size_bytes: int,
        received_at: datetime,
        status: SubmissionStatus | str,
        data_datestamp: int | None = None,
    ) -> Submission:
        """Return a new, not yet selected submission."""
        submission = Submission(
            model_id=model_id,
            round_id=round_id,
            filename=filename,
            blob_key=blob_key,
            sha256=sha256,
            size_bytes=size_bytes,
            received_at=received_at,
            status=SubmissionStatus(status).value,
            selected=False,
            data_datestamp=data_datestamp,
        )
        self.session.add(submission)
        self.session.flush()
        return submission

    def add_and_select(
        self,
        model_id: str,
        round_id: str,
        *,
        filename: str,
        blob_key: str,
        sha256: str,
        size_bytes: int,
        received_at: datetime,
        status: SubmissionStatus | str,
        data_datestamp: int | None = None,
    ) -> Submission:
        """Return a new submission, selected unless the selected one was received strictly later."""
        # At most three statements: read the selected one, unselect it if this one is newer, insert.
        current = self.selected(model_id, round_id)
        selected = current is None or current.received_at <= received_at
        if selected and current is not None:
            current.selected = False
            self.session.flush()  # the old flag is cleared before the unique index sees the new one
        submission = Submission(
            model_id=model_id,
            round_id=round_id,
            filename=filename,
            blob_key=blob_key,
            sha256=sha256,
            size_bytes=size_bytes,
            received_at=received_at,
            status=SubmissionStatus(status).value,
            selected=selected,
            data_datestamp=data_datestamp,
        )
        self.session.add(submission)
        self.session.flush()
        return submission

    def select_latest(self, model_id: str, round_id: str) -> Submission | None:
        """Select the latest received submission of the model for the round and return it (None if none)."""
        query = (
            select(Submission)
            .where(Submission.model_id == model_id, Submission.round_id == round_id)
            .order_by(Submission.received_at.desc(), Submission.id.desc())
            .limit(1)
        )
        latest = self.session.scalars(query).first()
        if latest is not None and not latest.selected:
            self._select(latest)
        return latest

    def _select(self, submission: Submission) -> None:
        """Make this submission the selected one of its (model, round): clear the old flag, then set it."""
        self.session.execute(
            update(Submission)
            .where(
                Submission.model_id == submission.model_id,
                Submission.round_id == submission.round_id,
                Submission.selected.is_(True),
                Submission.id != submission.id,
            )
            .values(selected=False)
        )
        submission.selected = True
        self.session.flush()

    def get(self, submission_id: str) -> Submission:
        """Return the submission with this id; raise NotFound otherwise."""
        submission = self.session.get(Submission, submission_id)
        if submission is None:
            raise NotFound(f"no submission with id {submission_id!r}")
        return submission

    def selected(self, model_id: str, round_id: str) -> Submission | None:
        """Return the selected submission of the model for the round, or None."""
        query = select(Submission).where(
            Submission.model_id == model_id, Submission.round_id == round_id, Submission.selected.is_(True)
        )
        return self.session.scalars(query).one_or_none()

    def list_for_model(
        self, model_id: str, *, round_id: str | None = None, limit: int | None = None
    ) -> list[Submission]:
        """Return the model's submissions, newest first, optionally for one round and at most ``limit``."""
        query = select(Submission).where(Submission.model_id == model_id)
        if round_id is not None:
            query = query.where(Submission.round_id == round_id)
        query = query.order_by(Submission.received_at.desc(), Submission.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return list(self.session.scalars(query))

    def list_selected(
        self, round_id: str, *, statuses: Collection[SubmissionStatus | str] | None = None
    ) -> list[Submission]:
        """Return the round's selected submissions (one per model), optionally only with these statuses."""
        query = select(Submission).where(Submission.round_id == round_id, Submission.selected.is_(True))
        if statuses is not None:
            query = query.where(
                Submission.status.in_([SubmissionStatus(status).value for status in statuses])
            )
        # by model name, not id: ids are random, and a stable order makes every sum over models
        # (meta model, Gram matrices) come out bit for bit the same when a season is replayed
        query = query.join(Model, Model.id == Submission.model_id).order_by(Model.name)
        return list(self.session.scalars(query))

    def promote_queued(self, round_id: str) -> int:
        """Mark the round's queued submissions on time (the round opened); return how many changed."""
        statement = (
            update(Submission)
            .where(Submission.round_id == round_id, Submission.status == SubmissionStatus.QUEUED.value)
            .values(status=SubmissionStatus.ON_TIME.value)
        )
        return self.session.execute(statement).rowcount
