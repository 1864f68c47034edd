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

Cost: an upload whose bytes are already in hand (bytes, or the file numerapi PUT to an upload key,
:func:`submit_upload`) takes two transactions — one read (model, tournament, target round and
universe) and one short write — and the PUT file is renamed into place, not copied. A streamed
upload reads its model first, because the tournament's size limit applies while it streams.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Protocol

from crowdalpha.service._tournaments import LoadedTournament, load_tournament, loaded_tournament
from crowdalpha.service._universes import prepared_universe
from crowdalpha.service.accounts import AccountRef, resolve_account
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.service.models import model_of_account, require_owner
from crowdalpha.service.rounds import create_round_row, schedule_after, stored_schedule
from crowdalpha.service.uploads import claim_upload
from crowdalpha.store import (
    Account,
    LiveUniverse,
    Model,
    NotFound,
    RoundState,
    Submission,
    UnitOfWork,
    run_transaction,
)
from crowdalpha.store import Round as RoundRow
from crowdalpha.tournament.calendar import RoundSchedule
from crowdalpha.tournament.submissions import (
    Receipt,
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
UPLOAD_READ_ISOLATION = "AUTOCOMMIT"
"""PostgreSQL mode of an upload's read: each statement on its own, as at READ COMMITTED (a snapshot per
statement, no locks), but without the BEGIN and COMMIT round trips around its one statement."""
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
    tournament_id: int


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
    round_id: str | None = None
    """The stored round's id when the upload counts for the current round (on time or late)."""


@dataclass(frozen=True)
class _Prepared:
    """What a read transaction found for an upload: the model, its tournament, and where the upload goes.

    ``target`` is None when no round has opened yet; ``no_target`` then holds the error, raised only
    after the upload's own checks (ownership, the file, its size) so errors come in the same order
    however the upload arrived.
    """

    model: Model
    loaded: LoadedTournament
    target: _Target | None
    no_target: ServiceError | None


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


def _target(
    loaded: LoadedTournament,
    current: RoundRow | None,
    universe: LiveUniverse | None,
    latest: RoundRow | None,
    received_at: datetime,
) -> _Target:
    if current is None or universe is None:
        raise ServiceError(
            "no_round_opened",
            f"no {loaded.name} round has opened yet,"
            " so there is no live universe to check a submission against",
        )
    upcoming = schedule_after(loaded, latest, received_at)
    current_schedule = stored_schedule(loaded, current)
    timing = classify_upload([current_schedule, upcoming], received_at)
    if timing.round_number == current.number and timing.kind is not UploadKind.QUEUED:
        return _Target(timing, current_schedule, universe, current.id)
    # An upload inside the window of a round that has not been opened yet waits for it, like any queued one.
    return _Target(UploadTiming(UploadKind.QUEUED, upcoming.number, upcoming.number), upcoming, universe)


def _upload_owner(uow: UnitOfWork, account: AccountRef, model_owner: Account) -> Account:
    """Return the uploading account's row: as given, the model's owner read with it, or looked up."""
    # An authenticated Account row is trusted as it is: re-reading it would only confirm it exists.
    if isinstance(account, Account):
        return account
    if account == model_owner.username:
        return model_owner  # the one row that username names, read in the upload's own statement
    return resolve_account(uow, account)  # another account (PermissionDenied next) or none (NotFound)


def _prepare(uow: UnitOfWork, account: AccountRef, model_id: str, received_at: datetime) -> _Prepared:
    try:
        rows = uow.submissions.upload_rows(model_id)
    except NotFound:
        if not isinstance(account, Account):
            resolve_account(uow, account)  # an unknown username is reported before an unknown model
        raise
    owner = _upload_owner(uow, account, rows.owner)
    require_owner(owner, model_id, rows.model.account_id)
    loaded = loaded_tournament(rows.tournament)
    try:
        target = _target(loaded, rows.current, rows.universe, rows.latest, received_at)
    except ServiceError as error:
        if error.rule != "no_round_opened":
            raise
        return _Prepared(rows.model, loaded, None, error)
    return _Prepared(rows.model, loaded, target, None)


def _read_upload_rows(ctx: Context, account: AccountRef, model_id: str, received_at: datetime) -> _Prepared:
    """Return what an upload needs to know, read in one read-only transaction.

    In autocommit mode on PostgreSQL: the read is one statement (one snapshot either way, so it reads
    what a READ COMMITTED transaction would), and a SERIALIZABLE one would take predicate locks that
    only cost the server time.
    """
    return run_transaction(
        ctx.engine,
        lambda uow: _prepare(uow, account, model_id, received_at),
        read_only=True,
        isolation_level=UPLOAD_READ_ISOLATION,
    )


def _upload_limit(ctx: Context, loaded: LoadedTournament) -> int:
    return min(ctx.settings.upload_limit_bytes, loaded.config.submissions.max_upload_bytes)


def _receipt_of(content: bytes, limit: int, received_at: datetime) -> Receipt:
    builder = ReceiptBuilder(limit)
    builder.update(content)
    return builder.finish(received_at)


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
    if isinstance(content_stream, bytes | bytearray | memoryview):
        # The whole file is in hand: it was received now, and one read transaction finds everything.
        content = bytes(content_stream)
        received_at = ctx.now()
        prepared = _read_upload_rows(ctx, account, model_id, received_at)
        receipt = _receipt_of(content, _upload_limit(ctx, prepared.loaded), received_at)
    else:
        # The tournament's size limit applies while the file streams in: look the model up first.
        _, loaded = run_transaction(
            ctx.engine, lambda uow: _owned_model(uow, account, model_id), read_only=True
        )
        builder = ReceiptBuilder(_upload_limit(ctx, loaded))
        parts = []
        for chunk in _chunks(content_stream):
            builder.update(chunk)
            parts.append(chunk)
        content = b"".join(parts)
        receipt = builder.finish(ctx.now())
        prepared = _read_upload_rows(ctx, account, model_id, receipt.received_at)
    return _accept(
        ctx,
        prepared,
        filename,
        content,
        receipt,
        lambda blob_key: ctx.blobs.put_bytes(blob_key, content, sha256=receipt.sha256),
        data_datestamp=data_datestamp,
    )


def submit_upload(
    ctx: Context,
    account: Account,
    model_id: str,
    upload_key: str,
    *,
    auth_field: str = "submission_upload_auth",
    data_datestamp: int | None = None,
) -> SubmissionReceipt:
    """Accept the file PUT to ``upload_key`` (numerapi's ``create_submission``) and return its receipt.

    The same checks and receipt as :func:`submit_predictions`; the upload must be the model's (see
    ``claim_upload``, whose messages name ``auth_field``). An accepted file is renamed to its
    submission key; whatever happens, the upload key is gone afterwards.
    """
    received_at = ctx.now()  # the PUT has finished: the whole file is here
    prepared = _read_upload_rows(ctx, account, model_id, received_at)
    model = prepared.model
    name = claim_upload(ctx, model.id, model.name, upload_key, auth_field)
    try:
        content = ctx.blobs.read_bytes(upload_key)
        receipt = _receipt_of(content, _upload_limit(ctx, prepared.loaded), received_at)
        return _accept(
            ctx,
            prepared,
            name,
            content,
            receipt,
            lambda blob_key: ctx.blobs.move(upload_key, blob_key),
            data_datestamp=data_datestamp,
        )
    finally:
        ctx.blobs.delete(upload_key)


def _accept(
    ctx: Context,
    prepared: _Prepared,
    filename: str,
    content: bytes,
    receipt: Receipt,
    store_blob: Callable[[str], object],
    *,
    data_datestamp: int | None,
) -> SubmissionReceipt:
    """Validate the file, store its blob (``store_blob(key)``), record the row; the receipt, or raise."""
    name = PurePosixPath(filename.replace("\\", "/")).name[:MAX_FILENAME_CHARS] or "predictions"
    model, loaded, target = prepared.model, prepared.loaded, prepared.target
    if target is None:
        raise prepared.no_target or AssertionError("a prepared upload without target has its error")
    validated = validate_submission(
        content, prepared_universe(ctx, target.universe), loaded.config.submissions
    )

    blob_key = (
        f"submissions/{loaded.name}/{target.timing.round_number}/{model.id}/"
        f"{uuid.uuid4().hex}.{validated.file_format}"
    )
    store_blob(blob_key)

    def work(uow: UnitOfWork) -> SubmissionReceipt:
        # Concurrent uploads of one model queue on its row lock; at READ COMMITTED each then sees the
        # uploads committed before it, so the selection below is decided on current data.
        uow.models.lock(model.id)
        status = target.timing.kind
        round_id = target.round_id  # the current round: stored, and its state does not matter
        if round_id is None:
            row = uow.rounds.get_by_number(loaded.id, target.timing.round_number)
            if row is None:
                uow.tournaments.lock(loaded.id)  # uploads queued for a round not yet stored create it once
                row = uow.rounds.get_by_number(loaded.id, target.timing.round_number)
            if row is None:
                row = create_round_row(uow, loaded, target.schedule, now=receipt.received_at)
            if status is UploadKind.QUEUED and row.state != RoundState.UPCOMING.value:
                status = UploadKind.ON_TIME  # the round opened while the upload was being checked
            round_id = row.id
        submission = uow.submissions.add_and_select(
            model.id,
            round_id,
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
            round_number=target.timing.round_number,
            filename=name,
            sha256=receipt.sha256,
            size_bytes=receipt.size_bytes,
            received_at=receipt.received_at,
            status=submission.status,
            selected=submission.selected,
            rows_kept=validated.n_valid,
            ids_ignored=validated.n_invalid,
            tournament_id=loaded.id,
        )

    try:
        return run_transaction(ctx.engine, work, isolation_level=UPLOAD_ISOLATION)
    except BaseException:
        ctx.blobs.delete(blob_key)
        raise


@dataclass(frozen=True)
class UploadModel:
    """The model an upload URL is issued for: facts that never change once the model exists."""

    id: str
    name: str
    account_id: str
    tournament_id: int


class _UploadModels:
    """Models seen by :func:`upload_model`, by id (bounded; a model's owner and tournament never change)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, UploadModel] = {}
        self._lock = threading.Lock()

    def get(self, model_id: str) -> UploadModel | None:
        return self._entries.get(model_id)

    def put(self, model: UploadModel) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[model.id] = model


def upload_model(ctx: Context, account: Account, model_id: str) -> UploadModel:
    """Return the (authenticated) account's model that an upload URL is for; NotFound or PermissionDenied.

    numerapi asks for an upload URL before every file; a model's owner, name and tournament never
    change, so after the first look-up this answers from memory (the ownership check still runs
    every time, and ``create_submission`` re-reads the model in its own transaction).
    """
    models = _upload_models(ctx)
    known = models.get(model_id)
    if known is None:
        row = run_transaction(ctx.engine, lambda uow: uow.models.get(model_id), read_only=True)
        known = UploadModel(row.id, row.name, row.account_id, row.tournament_id)
        models.put(known)
    require_owner(account, model_id, known.account_id)
    return known


def upload_model_from_memory(ctx: Context, account: Account, model_id: str) -> UploadModel | None:
    """Return what :func:`upload_model` returns when the model was looked up before, else None.

    Never touches the database (an event loop may call it); the ownership check runs as usual.
    """
    known = _upload_models(ctx).get(model_id)
    if known is not None:
        require_owner(account, model_id, known.account_id)
    return known


def _upload_models(ctx: Context) -> _UploadModels:
    models = ctx.cache.get("upload models")
    if models is None:
        models = ctx.cache.setdefault("upload models", _UploadModels())
    return models


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
