"""create_submission's use case: the PUT file is checked, renamed into place, never left behind."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
from service_factories import World, predictions_csv
from sqlalchemy import Engine, func, select

from crowdalpha.service import authenticate, create_account, create_model, list_submissions
from crowdalpha.service.errors import ServiceError
from crowdalpha.service.submissions import submit_upload, upload_model
from crowdalpha.service.uploads import new_upload_key
from crowdalpha.store import Account, PermissionDenied, Scope, Submission, create_engine, transaction
from crowdalpha.tournament import SubmissionError


def _rows(engine: Engine) -> int:
    with transaction(engine) as uow:
        return uow.session.scalar(select(func.count()).select_from(Submission)) or 0


def _account(world: World) -> Account:
    return authenticate(world.ctx, f"Token {world.public_id}${world.secret_key}", Scope.UPLOAD_SUBMISSION)


def test_an_accepted_upload_is_renamed_into_place(open_world: World, live_ids: list[str]) -> None:
    ctx, content = open_world.ctx, predictions_csv(live_ids)
    key = new_upload_key(open_world.model_id, "my preds.csv")
    ctx.blobs.put_bytes(key, content)
    receipt = submit_upload(ctx, _account(open_world), open_world.model_id, key)
    assert (receipt.status, receipt.selected, receipt.tournament_id) == ("on_time", True, 8)
    assert receipt.sha256 == hashlib.sha256(content).hexdigest() and receipt.size_bytes == len(content)
    assert receipt.filename == "my_preds.csv" and receipt.received_at == open_world.clock.now()
    (stored,) = ctx.blobs.keys("submissions/")
    assert ctx.blobs.read_bytes(stored) == content
    assert ctx.blobs.keys("uploads/") == []
    (listed,) = list_submissions(ctx, "alice", open_world.model_id)
    assert listed.submission_id == receipt.submission_id and listed.sha256 == receipt.sha256


def test_a_rejected_upload_leaves_no_row_and_no_blob(
    open_world: World, live_ids: list[str], engine: Engine
) -> None:
    ctx = open_world.ctx
    key = new_upload_key(open_world.model_id, "p.csv")
    values = list(np.linspace(0.1, 0.9, len(live_ids)))
    ctx.blobs.put_bytes(key, predictions_csv(live_ids, [float("nan"), *values[1:]]))
    with pytest.raises(SubmissionError, match=r"^nan_values: "):
        submit_upload(ctx, _account(open_world), open_world.model_id, key)
    assert _rows(engine) == 0 and ctx.blobs.keys("submissions/") == [] and ctx.blobs.keys("uploads/") == []


def test_a_too_large_upload_is_refused_by_the_tournament_limit(
    open_world: World, live_ids: list[str], engine: Engine
) -> None:
    ctx = dataclasses.replace(
        open_world.ctx, settings=dataclasses.replace(open_world.ctx.settings, upload_limit_bytes=4000)
    )
    key = new_upload_key(open_world.model_id, "p.csv")
    ctx.blobs.put_bytes(key, predictions_csv(live_ids) + b" " * 5000)
    with pytest.raises(SubmissionError, match=r"^too_large: "):
        submit_upload(ctx, _account(open_world), open_world.model_id, key)
    assert _rows(engine) == 0 and ctx.blobs.keys("submissions/") == [] and ctx.blobs.keys("uploads/") == []


def test_another_accounts_upload_is_neither_taken_nor_deleted(open_world: World, live_ids: list[str]) -> None:
    ctx = open_world.ctx
    create_account(ctx, "bob")
    bobs = create_model(ctx, "bob", "classic", "bob_model")
    bobs_key = new_upload_key(bobs.id, "p.csv")
    ctx.blobs.put_bytes(bobs_key, predictions_csv(live_ids))
    with pytest.raises(PermissionDenied, match=r"does not belong to account 'alice'"):
        submit_upload(ctx, _account(open_world), bobs.id, bobs_key)
    with pytest.raises(ServiceError, match=r"^unknown_upload: .* is not an upload of model 'alice_model'"):
        submit_upload(ctx, _account(open_world), open_world.model_id, bobs_key)
    assert ctx.blobs.exists(bobs_key)


def test_a_missing_put_is_named_before_a_missing_round(world: World) -> None:
    key = new_upload_key(world.model_id, "p.csv")
    with pytest.raises(ServiceError, match=r"^upload_missing: no file was uploaded"):
        submit_upload(world.ctx, _account(world), world.model_id, key)
    world.ctx.blobs.put_bytes(key, b"id,prediction\n")
    with pytest.raises(ServiceError, match=r"^no_round_opened: "):
        submit_upload(world.ctx, _account(world), world.model_id, key)
    assert world.ctx.blobs.keys("uploads/") == []


def test_upload_model_answers_from_memory_and_still_checks_the_owner(world: World, tmp_path) -> None:
    account = _account(world)
    bob = create_account(world.ctx, "bob").account
    first = upload_model(world.ctx, account, world.model_id)
    assert (first.id, first.name, first.tournament_id) == (world.model_id, "alice_model", 8)
    # The same Context with its database gone: a known model is answered without it.
    offline = dataclasses.replace(world.ctx, engine=create_engine(f"sqlite:///{tmp_path / 'none.db'}"))
    assert upload_model(offline, account, world.model_id) == first
    with pytest.raises(PermissionDenied, match=r"does not belong to account 'bob'"):
        upload_model(offline, bob, world.model_id)
