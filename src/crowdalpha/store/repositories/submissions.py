"""Submissions: store an accepted upload and keep exactly one selected (the latest) per model and round."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, bindparam, exists, insert, select, update
from sqlalchemy.orm import Session, aliased

from crowdalpha.store.errors import NotFound
from crowdalpha.store.schema import (
    Account,
    LiveUniverse,
    Model,
    Round,
    RoundState,
    Submission,
    SubmissionStatus,
    Tournament,
    new_uuid,
)


@dataclass(frozen=True)
class UploadRows:
    """What an upload for a model needs to know, read in one statement (see ``upload_rows``)."""

    model: Model
    tournament: Tournament
    owner: Account
    """The account that owns the model."""
    current: Round | None
    """The highest-numbered round of the tournament that has opened (None before the first)."""
    universe: LiveUniverse | None
    """The current round's live universe (None if it has none)."""
    latest: Round | None
    """The highest-numbered round in any state (the current one, or an upcoming one after it)."""


def _upload_rows_statement() -> Select:
    """Return the statement behind ``upload_rows`` (built once: building it costs more than running it)."""
    current, latest = aliased(Round), aliased(Round)
    current_id = (
        select(Round.id)
        .where(Round.tournament_id == Model.tournament_id, Round.state != RoundState.UPCOMING.value)
        .order_by(Round.number.desc())
        .limit(1)
        .correlate(Model)
        .scalar_subquery()
    )
    latest_id = (
        select(Round.id)
        .where(Round.tournament_id == Model.tournament_id)
        .order_by(Round.number.desc())
        .limit(1)
        .correlate(Model)
        .scalar_subquery()
    )
    return (
        select(Model, Tournament, Account, current, LiveUniverse, latest)
        .join(Tournament, Tournament.id == Model.tournament_id)
        .join(Account, Account.id == Model.account_id)
        .outerjoin(current, current.id == current_id)
        .outerjoin(LiveUniverse, LiveUniverse.round_id == current.id)
        .outerjoin(latest, latest.id == latest_id)
        .where(Model.id == bindparam("model_id"))
    )


_UPLOAD_ROWS = _upload_rows_statement()

_SUBMISSIONS = Submission.__table__
_UNSELECT_NOT_NEWER = (
    update(_SUBMISSIONS)
    .where(
        _SUBMISSIONS.c.model_id == bindparam("of_model"),
        _SUBMISSIONS.c.round_id == bindparam("of_round"),
        _SUBMISSIONS.c.selected.is_(True),
        _SUBMISSIONS.c.received_at <= bindparam("not_after"),
    )
    .values(selected=False)
)
"""Clear the selection of a model's round if the selected submission was received no later than a time.

A Core statement on the table: the ORM's bulk update would first evaluate its condition against every
submission loaded in the session, and an upload's session holds none.
"""
_INSERT_SUBMISSION = insert(_SUBMISSIONS)
_INSERT_SELECTED_UNLESS_ONE_IS = (
    insert(_SUBMISSIONS)
    .values(
        selected=~exists().where(
            _SUBMISSIONS.c.model_id == bindparam("of_model"),
            _SUBMISSIONS.c.round_id == bindparam("of_round"),
            _SUBMISSIONS.c.selected.is_(True),
        )
    )
    .returning(_SUBMISSIONS.c.selected)
)
"""Insert a submission, selected unless its model's round already has a selected one; return the flag.

One round trip where a look-up of the selected row and an insert would take two.
"""


class SubmissionRepository:
    """Submissions in one unit of work.

    Selection is guarded by a partial unique index (one selected row per model and round). Two
    concurrent units of work selecting for the same model and round cannot both commit: on SQLite
    writers are serialised by ``BEGIN IMMEDIATE``; on PostgreSQL the loser fails with a retryable
    error, and ``run_transaction`` runs it again against the winner's committed state.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def upload_rows(self, model_id: str) -> UploadRows:
        """Return the model, its tournament, the current and latest rounds and the live universe; NotFound.

        One statement (one round trip) instead of five: every upload reads them all.
        """
        row = self.session.execute(_UPLOAD_ROWS, {"model_id": model_id}).one_or_none()
        if row is None:
            raise NotFound(f"no model with id {model_id!r}")
        return UploadRows(*row)

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
        return self._insert(
            model_id,
            round_id,
            filename=filename,
            blob_key=blob_key,
            sha256=sha256,
            size_bytes=size_bytes,
            received_at=received_at,
            status=status,
            data_datestamp=data_datestamp,
            selected=False,
        )

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
        # Two statements: unselect the selected one if this one is not older, insert this one (selected
        # if none is left selected). The old flag is cleared before the insert, so the unique index
        # never sees two.
        parameters = {"of_model": model_id, "of_round": round_id, "not_after": received_at}
        unselected = self.session.connection().execute(_UNSELECT_NOT_NEWER, parameters).rowcount
        return self._insert(
            model_id,
            round_id,
            filename=filename,
            blob_key=blob_key,
            sha256=sha256,
            size_bytes=size_bytes,
            received_at=received_at,
            status=status,
            data_datestamp=data_datestamp,
            selected=True if unselected > 0 else None,
        )

    def _insert(
        self,
        model_id: str,
        round_id: str,
        *,
        status: SubmissionStatus | str,
        selected: bool | None,
        **fields: object,
    ) -> Submission:
        """Return a new submission with these fields, inserted (a Core insert: no unit-of-work flush).

        ``selected=None`` selects it unless the model's round already has a selected submission.
        The returned row is not attached to the session; read it again (``get``) to change it.
        """
        values = {
            "id": new_uuid(),
            "model_id": model_id,
            "round_id": round_id,
            "status": SubmissionStatus(status).value,
            **fields,
        }
        connection = self.session.connection()
        if selected is None:
            parameters = {**values, "of_model": model_id, "of_round": round_id}
            selected = bool(connection.execute(_INSERT_SELECTED_UNLESS_ONE_IS, parameters).scalar_one())
        else:
            connection.execute(_INSERT_SUBMISSION, {**values, "selected": selected})
        return Submission(**values, selected=selected)

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
