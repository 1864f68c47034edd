"""Submissions: accept a participant's upload for a model, and list a model's submissions.

``submit_predictions`` streams the upload under the size limit (hashing it as it goes), validates
it against the live universe of the round it counts for, classifies it on time / late / queued by
the clock, then stores the blob and, in one transaction, the row and the selection of the latest
valid upload. A rejected upload leaves no row and no blob: validation runs before anything is
stored, and the blob is deleted if the transaction fails.

Which round an upload counts for (the rules' ``classify_upload`` over the stored rounds): inside
the open round's window → on time for it; after its close but inside its late window → late for
it (scored, never staked); otherwise → queued for the next round, validated against the latest
live universe and made on time when that round opens. A late upload is not also carried to the
next round yet (Numerai queues it there too).

Concurrency: the write runs at READ COMMITTED on PostgreSQL behind the model's row lock (and the
tournament's when it must create the round), so concurrent uploads of one model are ordered and
exactly one — the latest received — stays selected, without serialization failures; on SQLite
``BEGIN IMMEDIATE`` orders every writer anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Protocol

from crowdalpha.service._tournaments import LoadedTournament, load_tournament
from crowdalpha.service._universes import prepared_universe
from crowdalpha.service.accounts import AccountRef, resolve_account
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.service.models import model_of_account
from crowdalpha.service.rounds import create_round_row, stored_schedule, upcoming_schedule
from crowdalpha.store import (
    LiveUniverse,
    Model,
    RoundState,
    Submission,
    UnitOfWork,
    run_transaction,
)
from crowdalpha.tournament.calendar import RoundSchedule
from crowdalpha.tournament.submissions import (
    ReceiptBuilder,
    UploadKind,
    UploadTiming,
    classify_upload,
    validate_submission,
)

CHUNK_BYTES = 1024 * 1024
UPLOAD_ISOLATION = "READ COMMITTED"
"""PostgreSQL isolation of an upload's write: SERIALIZABLE aborted most concurrent uploads (their
predicate reads of ``submissions`` overlap); row locks order exactly the uploads that can conflict."""
MAX_FILENAME_CHARS = 255


class Readable(Protocol):
    """A binary stream: ``read(n)`` returns up to ``n`` bytes, empty at the end."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` bytes."""
        ...


UploadContent = bytes | Readable | Iterable[bytes]
"""An upload's body: the bytes, a binary stream, or an iterable of chunks."""


@dataclass(frozen=True)
class SubmissionReceipt:
    """What an accepted upload gets back: its id, SHA-256 (hex), size, the server time and its status."""

    submission_id: str
    model_id: str
    tournament: str
    round_number: int
    filename: str
    sha256: str
    size_bytes: int
    received_at: datetime
    status: str
    selected: bool
    rows_kept: int
    ids_ignored: int


@dataclass(frozen=True)
class SubmissionInfo:
    """A stored submission as its owner sees it."""

    submission_id: str
    model_id: str
    round_number: int
    filename: str
    sha256: str
    size_bytes: int
    received_at: datetime
    status: str
    selected: bool
    tournament_id: int


@dataclass(frozen=True)
class _Target:
    """Where an upload goes: the round (number, and its schedule if it must be created) and its universe."""

    timing: UploadTiming
    schedule: RoundSchedule
    universe: LiveUniverse


def _chunks(content: UploadContent) -> Iterable[bytes]:
    if isinstance(content, bytes | bytearray | memoryview):
        yield bytes(content)
        return
    read = getattr(content, "read", None)
    if read is not None:
        while chunk := read(CHUNK_BYTES):
            yield chunk
        return
    yield from content  # type: ignore[misc]


def _owned_model(uow: UnitOfWork, account: AccountRef, model_id: str) -> tuple[Model, LoadedTournament]:
    model = model_of_account(uow, resolve_account(uow, account), model_id)
    return model, load_tournament(uow, model.tournament_id)


def _target(uow: UnitOfWork, loaded: LoadedTournament, received_at: datetime) -> _Target:
    current = uow.rounds.current(loaded.id)
    universe = None if current is None else uow.rounds.get_live_universe(current.id)
    if current is None or universe is None:
        raise ServiceError(
            "no_round_opened",
            f"no {loaded.name} round has opened yet,"
            " so there is no live universe to check a submission against",
        )
    upcoming = upcoming_schedule(uow, loaded, received_at)
    current_schedule = stored_schedule(loaded, current)
    timing = classify_upload([current_schedule, upcoming], received_at)
    if timing.round_number == current.number:
        return _Target(timing, current_schedule, universe)
    # An upload inside the window of a round that has not been opened yet waits for it, like any queued one.
    return _Target(UploadTiming(UploadKind.QUEUED, upcoming.number, upcoming.number), upcoming, universe)


def submit_predictions(
    ctx: Context,
    account: AccountRef,
    model_id: str,
    filename: str,
    content_stream: UploadContent,
    *,
    data_datestamp: int | None = None,
) -> SubmissionReceipt:
    """Accept an upload of predictions for the account's model and return its receipt; raise on a bad one."""
    name = PurePosixPath(filename.replace("\\", "/")).name[:MAX_FILENAME_CHARS] or "predictions"
    model, loaded = run_transaction(
        ctx.engine, lambda uow: _owned_model(uow, account, model_id), read_only=True
    )
    limit = min(ctx.settings.upload_limit_bytes, loaded.config.submissions.max_upload_bytes)
    builder = ReceiptBuilder(limit)
    parts = []
    for chunk in _chunks(content_stream):
        builder.update(chunk)
        parts.append(chunk)
    content = b"".join(parts)
    receipt = builder.finish(ctx.now())

    target = run_transaction(
        ctx.engine, lambda uow: _target(uow, loaded, receipt.received_at), read_only=True
    )
    validated = validate_submission(
        content, prepared_universe(ctx, target.universe), loaded.config.submissions
    )

    blob_key = (
        f"submissions/{loaded.name}/{target.timing.round_number}/{model.id}/"
        f"{uuid.uuid4().hex}.{validated.file_format}"
    )
    ctx.blobs.put_bytes(blob_key, content)

    def work(uow: UnitOfWork) -> SubmissionReceipt:
        # Concurrent uploads of one model queue on its row lock; at READ COMMITTED each then sees the
        # uploads committed before it, so the selection below is decided on current data.
        uow.models.lock(model.id)
        row = uow.rounds.get_by_number(loaded.id, target.timing.round_number)
        if row is None:
            uow.tournaments.lock(loaded.id)  # uploads queued for a round not yet stored create it once
            row = uow.rounds.get_by_number(loaded.id, target.timing.round_number)
        if row is None:
            row = create_round_row(uow, loaded, target.schedule, now=receipt.received_at)
        status = target.timing.kind
        if status is UploadKind.QUEUED and row.state != RoundState.UPCOMING.value:
            status = UploadKind.ON_TIME  # the round opened while the upload was being checked
        submission = uow.submissions.add_and_select(
            model.id,
            row.id,
            filename=name,
            blob_key=blob_key,
            sha256=receipt.sha256,
            size_bytes=receipt.size_bytes,
            received_at=receipt.received_at,
            status=status,
            data_datestamp=data_datestamp,
        )
        return SubmissionReceipt(
            submission_id=submission.id,
            model_id=model.id,
            tournament=loaded.name,
            round_number=row.number,
            filename=name,
            sha256=receipt.sha256,
            size_bytes=receipt.size_bytes,
            received_at=receipt.received_at,
            status=submission.status,
            selected=submission.selected,
            rows_kept=validated.n_valid,
            ids_ignored=validated.n_invalid,
        )

    try:
        return run_transaction(ctx.engine, work, isolation_level=UPLOAD_ISOLATION)
    except BaseException:
        ctx.blobs.delete(blob_key)
        raise


def list_submissions(ctx: Context, account: AccountRef, model_id: str) -> list[SubmissionInfo]:
    """Return the submissions of the account's model, newest first."""

    def work(uow: UnitOfWork) -> list[SubmissionInfo]:
        model, _ = _owned_model(uow, account, model_id)
        rows = uow.submissions.list_for_model(model.id)
        numbers = {round_id: uow.rounds.get(round_id).number for round_id in {row.round_id for row in rows}}
        return [_info(row, numbers[row.round_id], model.tournament_id) for row in rows]

    return run_transaction(ctx.engine, work, read_only=True)


def _info(row: Submission, round_number: int, tournament_id: int) -> SubmissionInfo:
    return SubmissionInfo(
        submission_id=row.id,
        model_id=row.model_id,
        round_number=round_number,
        filename=row.filename,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        received_at=row.received_at,
        status=row.status,
        selected=row.selected,
        tournament_id=tournament_id,
    )
