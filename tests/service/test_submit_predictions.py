"""Submissions: on time, late, queued; the latest valid is selected; a rejection leaves nothing behind."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from datetime import timedelta

import numpy as np
import pytest
from service_factories import TUESDAY_OPEN, World, predictions_csv, predictions_parquet
from sqlalchemy import Engine, func, select

from crowdalpha.service import (
    create_account,
    create_model,
    list_submissions,
    open_round,
    round_status,
    submit_predictions,
    tick,
)
from crowdalpha.service.errors import ServiceError
from crowdalpha.store import PermissionDenied, Submission, transaction
from crowdalpha.tournament import CLASSIC, SubmissionError, latest_round, to_dict

ROUND = latest_round(CLASSIC, TUESDAY_OPEN).number


def _count_rows(engine: Engine) -> int:
    with transaction(engine) as uow:
        return uow.session.scalar(select(func.count()).select_from(Submission)) or 0


def test_an_upload_in_the_window_is_on_time_and_selected(open_world: World, live_ids: list[str]) -> None:
    content = predictions_csv(live_ids)
    receipt = submit_predictions(
        open_world.ctx, "alice", open_world.model_id, "dir/preds.csv", io.BytesIO(content)
    )
    assert (receipt.status, receipt.round_number, receipt.selected) == ("on_time", ROUND, True)
    assert receipt.sha256 == hashlib.sha256(content).hexdigest() and receipt.size_bytes == len(content)
    assert receipt.received_at == open_world.clock.now() and receipt.filename == "preds.csv"
    assert receipt.rows_kept == len(live_ids)
    (stored,) = open_world.ctx.blobs.keys("submissions/")
    assert open_world.ctx.blobs.read_bytes(stored) == content


def test_the_latest_valid_upload_is_selected(open_world: World, live_ids: list[str]) -> None:
    ctx, model_id = open_world.ctx, open_world.model_id
    first = submit_predictions(ctx, "alice", model_id, "a.csv", predictions_csv(live_ids))
    open_world.clock.advance(timedelta(minutes=1))
    second = submit_predictions(ctx, "alice", model_id, "b.parquet", [predictions_parquet(live_ids)])
    open_world.clock.advance(timedelta(minutes=1))
    with pytest.raises(SubmissionError):
        submit_predictions(ctx, "alice", model_id, "c.csv", predictions_csv(live_ids[:-1]))
    listed = list_submissions(ctx, "alice", model_id)
    assert [(item.submission_id, item.selected) for item in listed] == [
        (second.submission_id, True),
        (first.submission_id, False),
    ]
    assert round_status(ctx, "classic").selected_submissions == 1


def test_an_upload_after_close_is_late_for_the_round(open_world: World, live_ids: list[str]) -> None:
    open_world.clock.set(TUESDAY_OPEN + timedelta(hours=2))
    tick(open_world.ctx)
    receipt = submit_predictions(
        open_world.ctx, "alice", open_world.model_id, "p.csv", predictions_csv(live_ids)
    )
    assert (receipt.status, receipt.round_number) == ("late", ROUND)


def test_an_upload_between_rounds_is_queued_and_becomes_on_time_when_the_round_opens(
    world: World, live_ids: list[str], engine: Engine
) -> None:
    with transaction(engine) as uow:  # the rules are data: a one-hour late window
        rules = dataclasses.replace(CLASSIC.submissions, late_window_hours=1)
        config = to_dict(dataclasses.replace(CLASSIC, submissions=rules))
        uow.tournaments.upsert(8, "classic", config, now=world.clock.now())
    ctx, model_id = world.ctx, world.model_id
    world.clock.set(TUESDAY_OPEN + timedelta(minutes=30))
    open_round(ctx, "classic")
    world.clock.set(TUESDAY_OPEN + timedelta(hours=1, minutes=30))
    assert submit_predictions(ctx, "alice", model_id, "p.csv", predictions_csv(live_ids)).status == "late"
    world.clock.set(TUESDAY_OPEN + timedelta(hours=3))
    queued = submit_predictions(ctx, "alice", model_id, "p.csv", predictions_csv(live_ids))
    assert (queued.status, queued.round_number) == ("queued", ROUND + 1)
    world.clock.set(TUESDAY_OPEN + timedelta(days=1, minutes=5))
    assert tick(ctx).ran == [f"classic/{ROUND}/close/2026-01-06", f"classic/{ROUND + 1}/open/2026-01-07"]
    promoted = [item for item in list_submissions(ctx, "alice", model_id) if item.round_number == ROUND + 1]
    assert [(item.submission_id, item.status, item.selected) for item in promoted] == [
        (queued.submission_id, "on_time", True)
    ]


def test_another_accounts_model_is_refused(open_world: World, live_ids: list[str], engine: Engine) -> None:
    create_account(open_world.ctx, "bob")
    bobs = create_model(open_world.ctx, "bob", "classic", "bob_model")
    with pytest.raises(PermissionDenied, match=r"does not belong to account 'alice'"):
        submit_predictions(open_world.ctx, "alice", bobs.id, "p.csv", predictions_csv(live_ids))
    assert _count_rows(engine) == 0 and open_world.ctx.blobs.keys("submissions/") == []


def test_no_upload_is_taken_before_any_round_opened(world: World, live_ids: list[str]) -> None:
    with pytest.raises(ServiceError, match=r"^no_round_opened: no classic round has opened yet"):
        submit_predictions(world.ctx, "alice", world.model_id, "p.csv", predictions_csv(live_ids))


def _rejections(ids: list[str]) -> dict[str, tuple[bytes, str]]:
    values = list(np.linspace(0.1, 0.9, len(ids)))
    return {
        "nan": (predictions_csv(ids, [float("nan"), *values[1:]]), "nan_values"),
        "inf": (predictions_csv(ids, [float("inf"), *values[1:]]), "infinite_values"),
        "out_of_range": (predictions_csv(ids, [1.5, *values[1:]]), "out_of_range"),
        "duplicate_ids": (predictions_csv([*ids, ids[0]], [*values, 0.5]), "duplicate_ids"),
        "missing_live_ids": (predictions_csv(ids[1:], values[1:]), "missing_live_ids"),
        "wrong_headers": (predictions_csv(ids, header="id,target"), "invalid_submission_headers"),
        "empty": (b"", "empty_file"),
        "header_only": (b"id,prediction\n", "empty_file"),
        "not_csv_or_parquet": (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not_csv_or_parquet"),
        "too_large": (predictions_csv(ids) + b" " * 5000, "too_large"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "nan",
        "inf",
        "out_of_range",
        "duplicate_ids",
        "missing_live_ids",
        "wrong_headers",
        "empty",
        "header_only",
        "not_csv_or_parquet",
        "too_large",
    ],
)
def test_a_rejected_upload_leaves_no_row_and_no_blob(
    open_world: World, live_ids: list[str], engine: Engine, case: str
) -> None:
    content, rule = _rejections(live_ids)[case]
    ctx = dataclasses.replace(
        open_world.ctx, settings=dataclasses.replace(open_world.ctx.settings, upload_limit_bytes=4000)
    )
    with pytest.raises(SubmissionError) as caught:
        submit_predictions(ctx, "alice", open_world.model_id, "p.csv", io.BytesIO(content))
    assert caught.value.rule.value == rule and str(caught.value).startswith(f"{rule}: ")
    assert _count_rows(engine) == 0
    assert ctx.blobs.keys("submissions/") == [] and ctx.blobs.keys(".partial/") == []


def test_a_failed_transaction_deletes_the_stored_blob(
    open_world: World, live_ids: list[str], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crowdalpha.store.repositories.submissions import SubmissionRepository

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(SubmissionRepository, "add_and_select", broken)
    with pytest.raises(RuntimeError, match=r"database went away"):
        submit_predictions(open_world.ctx, "alice", open_world.model_id, "p.csv", predictions_csv(live_ids))
    assert _count_rows(engine) == 0 and open_world.ctx.blobs.keys("submissions/") == []
