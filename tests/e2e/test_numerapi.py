"""The real numerapi 3.x package, unmodified, against a real crowdalpha server on loopback.

Only ``numerapi.base_api.API_TOURNAMENT_URL`` changes (the one line a participant changes); every
GraphQL call, download and upload is numerapi's own: Classic, Crypto (``CryptoAPI``) and Signals
(``SignalsAPI``). Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numerapi
import numpy as np
import pandas as pd
import pytest
from e2e_helpers import new_home
from sqlalchemy import Engine

from crowdalpha.api import create_app
from crowdalpha.service import (
    Context,
    close_round,
    create_account,
    create_model,
    list_submissions,
    open_round,
    publish_dataset,
)
from crowdalpha.store import Scope, UnitOfWork, run_transaction

SIGNING_KEY = bytes(range(32))
UPLOAD_LIMIT = 64 * 1024


@dataclass
class Server:
    """A live server with a published Classic dataset, an open round, and alice's key and model."""

    base_url: str
    ctx: Context
    version_dir: Path
    round_number: int
    public_id: str
    secret_key: str
    model_id: str

    def client(self, api: type[numerapi.NumerAPI] = numerapi.NumerAPI) -> Any:
        """Return a numerapi client holding alice's key."""
        return api(public_id=self.public_id, secret_key=self.secret_key, show_progress_bars=False)


@pytest.fixture
def server(
    engine: Engine,
    tmp_path: Path,
    classic_version_dir: Path,
    live_server: Callable[[Any], str],
    monkeypatch: pytest.MonkeyPatch,
) -> Server:
    """Return a live server on the variant's database, with numerapi pointed at its /graphql."""
    settings, clock, ctx = new_home(engine, tmp_path)
    publish_dataset(ctx, classic_version_dir, "classic")
    created = create_account(ctx, "alice")
    model = create_model(ctx, "alice", "classic", "alice_model")
    status = open_round(ctx, "classic", close_in=timedelta(hours=1))
    app = create_app(
        settings,
        blob_store=ctx.blobs,
        signing_key=SIGNING_KEY,
        upload_limit=UPLOAD_LIMIT,
        engine=engine,
        clock=clock,
    )
    base_url = live_server(app)
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", f"{base_url}/graphql")
    return Server(
        base_url, ctx, classic_version_dir, status.number, created.public_id, created.secret_key, model.id
    )


def live_predictions(version_dir: Path) -> pd.DataFrame:
    """Return a valid Classic submission frame for every live id."""
    ids = pd.read_parquet(version_dir / "live.parquet").index.astype(str)
    return pd.DataFrame({"id": ids, "prediction": np.linspace(0.1, 0.9, len(ids))})


def test_current_round_and_its_window(server: Server) -> None:
    napi = numerapi.NumerAPI(show_progress_bars=False)
    assert napi.get_current_round() == server.round_number
    assert napi.check_round_open() is True
    [listed] = napi.list_rounds(number=server.round_number)
    assert listed["number"] == server.round_number
    assert listed["resolvedGeneral"] is False


def test_list_and_download_datasets_including_a_resumed_download(server: Server, tmp_path: Path) -> None:
    napi = numerapi.NumerAPI(show_progress_bars=False)
    listed = napi.list_datasets()
    assert "v1.0/train.parquet" in listed
    assert f"v1.0/live_{server.round_number}.parquet" in listed
    original = (server.version_dir / "train.parquet").read_bytes()

    dest = tmp_path / "train.parquet"
    napi.download_dataset("v1.0/train.parquet", str(dest))
    assert dest.read_bytes() == original

    # A partial ".temp" file makes numerapi resume with "Range: bytes=N-"; a server that ignored the
    # range would send the whole file again and the appended result would not match.
    resumed = tmp_path / "resumed.parquet"
    Path(f"{resumed}.temp").write_bytes(original[: len(original) // 2])
    napi.download_dataset("v1.0/train.parquet", str(resumed))
    assert resumed.read_bytes() == original


def test_models_upload_and_listing_of_submissions(server: Server) -> None:
    napi = server.client()
    assert napi.get_models() == {"alice_model": server.model_id}
    assert napi.get_models(tournament=12) == {}
    assert napi.modelid_to_modelname(server.model_id) == "alice_model"

    submission_id = napi.upload_predictions(df=live_predictions(server.version_dir), model_id=server.model_id)
    [listed] = napi.submission_ids(server.model_id)
    assert listed["id"] == submission_id
    assert listed["filename"] == "predictions.csv"
    # numerapi 3.1.1 leaves insertedAt as text here (its utils.replace is applied to the list).
    assert abs(datetime.fromisoformat(listed["insertedAt"]) - server.ctx.now()) < timedelta(seconds=5)


def test_a_rejected_file_raises_the_rule_message_and_leaves_nothing_behind(server: Server) -> None:
    napi = server.client()
    frame = live_predictions(server.version_dir)
    frame.loc[3, "prediction"] = np.nan
    with pytest.raises(ValueError) as caught:
        napi.upload_predictions(df=frame, model_id=server.model_id)
    assert str(caught.value) == (
        f"nan_values: predictions must not be NaN; 1 row is: {frame.loc[3, 'id']!r} (row 4)"
    )
    assert napi.submission_ids(server.model_id) == []
    assert server.ctx.blobs.keys("uploads") == []


def test_an_oversized_put_is_reported_by_create_submission(server: Server) -> None:
    napi = server.client()
    ids = [f"n{i:015x}" for i in range(UPLOAD_LIMIT // 10)]
    frame = pd.DataFrame({"id": ids, "prediction": 0.5})
    with pytest.raises(ValueError) as caught:
        napi.upload_predictions(df=frame, model_id=server.model_id)
    assert str(caught.value) == f"upload_rejected: upload exceeds the size limit of {UPLOAD_LIMIT} bytes"
    assert server.ctx.blobs.keys("uploads") == []


def test_a_bad_key_is_refused_with_its_message(server: Server) -> None:
    napi = numerapi.NumerAPI(public_id="nobody", secret_key="wrong", show_progress_bars=False)
    with pytest.raises(ValueError) as caught:
        napi.get_models()
    assert str(caught.value) == "invalid_api_key: invalid API key"


def test_a_key_without_the_upload_scope_is_refused_with_its_message(server: Server) -> None:
    def read_only_key(uow: UnitOfWork) -> tuple[str, str]:
        account = uow.accounts.get_by_username("alice")
        assert account is not None
        new = uow.accounts.create_api_key(account.id, now=server.ctx.now(), scopes=[Scope.READ_USER_INFO])
        return new.api_key.public_id, new.secret_key

    public_id, secret_key = run_transaction(server.ctx.engine, read_only_key)
    napi = numerapi.NumerAPI(public_id=public_id, secret_key=secret_key, show_progress_bars=False)
    assert napi.get_models() == {"alice_model": server.model_id}
    with pytest.raises(ValueError) as caught:
        napi.upload_predictions(df=live_predictions(server.version_dir), model_id=server.model_id)
    assert str(caught.value) == "permission_denied: API key lacks the scope 'upload_submission'"


def test_another_accounts_model_is_refused(server: Server) -> None:
    create_account(server.ctx, "bob")
    bobs = create_model(server.ctx, "bob", "classic", "bob_model")
    with pytest.raises(ValueError) as caught:
        server.client().upload_predictions(df=live_predictions(server.version_dir), model_id=bobs.id)
    assert str(caught.value) == f"permission_denied: model {bobs.id!r} does not belong to account 'alice'"


def test_an_operation_not_served_yet_is_a_clear_graphql_error(server: Server) -> None:
    napi = server.client()
    with pytest.raises(ValueError, match=r"Cannot query field 'pipelineStatus' on type 'Query'"):
        napi.pipeline_status()


@pytest.mark.parametrize(
    ("tournament", "api", "id_column", "universe_file"),
    [
        ("crypto", numerapi.CryptoAPI, "symbol", "live_universe.parquet"),
        ("signals", numerapi.SignalsAPI, "numerai_ticker", "live.parquet"),
    ],
)
def test_crypto_and_signals_uploads(
    server: Server,
    universe_version_dirs: dict[str, Path],
    tournament: str,
    api: type[numerapi.NumerAPI],
    id_column: str,
    universe_file: str,
) -> None:
    version_dir = universe_version_dirs[tournament]
    publish_dataset(server.ctx, version_dir, tournament)
    status = open_round(server.ctx, tournament, close_in=timedelta(hours=1))
    model = create_model(server.ctx, "alice", tournament, f"alice_{tournament}")
    client = server.client(api)
    assert client.get_current_round() == status.number
    assert client.get_models() == {model.name: model.id}

    ids = pd.read_parquet(version_dir / universe_file)[id_column].astype(str)
    frame = pd.DataFrame({id_column: ids, "signal": np.linspace(0.1, 0.9, len(ids))})
    submission_id = client.upload_predictions(df=frame, model_id=model.id)
    assert [item["id"] for item in client.submission_ids(model.id)] == [submission_id]

    with pytest.raises(ValueError, match=r"^too_few_"):
        client.upload_predictions(df=frame.head(10), model_id=model.id)


def _bad_uploads(version_dir: Path, tmp_path: Path) -> dict[str, tuple[pd.DataFrame | Path, str]]:
    """Return case → (a frame or a file numerapi uploads, the exact message the server must answer)."""
    good = live_predictions(version_dir)
    ids = good["id"]
    inf = good.copy()
    inf.loc[2, "prediction"] = np.inf
    out_of_range = good.copy()
    out_of_range.loc[5, "prediction"] = 1.5
    duplicated = pd.concat([good, good.iloc[[7]]], ignore_index=True)
    missing = good.drop(index=[0, 1]).reset_index(drop=True)
    first_missing = ", ".join(repr(name) for name in sorted(ids.iloc[[0, 1]]))
    empty = tmp_path / "predictions.csv"
    empty.write_bytes(b"")
    junk = tmp_path / "predictions.parquet"
    junk.write_bytes(bytes(range(256)) * 4)
    return {
        "inf": (inf, f"infinite_values: predictions must be finite; 1 row is not: {ids[2]!r} = inf (row 3)"),
        "out_of_range": (
            out_of_range,
            f"out_of_range: predictions must lie in [0, 1]; 1 row does not: {ids[5]!r} = 1.5 (row 6)",
        ),
        "duplicate_ids": (
            duplicated,
            f"duplicate_ids: each 'id' may appear once; 1 id appears more than once: {ids[7]!r}"
            f" (rows 8, {len(good) + 1})",
        ),
        "missing_live_ids": (
            missing,
            f"missing_live_ids: the submission must cover every live id; 2 of {len(good)} are missing:"
            f" {first_missing}",
        ),
        "wrong_headers": (
            good.rename(columns={"prediction": "pred"}),
            "invalid_submission_headers: the columns must be exactly [id, prediction] with the id column"
            " one of ['id'] and the prediction column one of ['prediction', 'probability'];"
            " got ['id', 'pred']",
        ),
        "empty_file": (empty, "empty_file: the upload is empty (0 bytes)"),
        "not_a_table": (
            junk,
            "not_csv_or_parquet: the upload is neither UTF-8 CSV text nor a Parquet file;"
            " its first bytes are 00 01 02 03 04 05 06 07",
        ),
    }


BAD_UPLOAD_CASES = (
    "inf",
    "out_of_range",
    "duplicate_ids",
    "missing_live_ids",
    "wrong_headers",
    "empty_file",
    "not_a_table",
)


def _rows_and_blobs(ctx: Context) -> tuple[int, list[str]]:
    def count(uow: UnitOfWork) -> int:
        return sum(len(uow.submissions.list_for_model(model.id)) for model in uow.models.list())

    return run_transaction(ctx.engine, count, read_only=True), ctx.blobs.keys("")


@pytest.mark.parametrize("case", BAD_UPLOAD_CASES)
def test_every_bad_file_is_refused_with_its_exact_rule_and_leaves_nothing(
    server: Server, case: str, tmp_path: Path
) -> None:
    napi = server.client()
    before = _rows_and_blobs(server.ctx)
    upload, message = _bad_uploads(server.version_dir, tmp_path)[case]
    with pytest.raises(ValueError) as caught:
        if isinstance(upload, Path):
            napi.upload_predictions(str(upload), model_id=server.model_id)
        else:
            napi.upload_predictions(df=upload, model_id=server.model_id)
    assert str(caught.value) == message
    assert _rows_and_blobs(server.ctx) == before
    # The server is still up and still accepts a good file.
    assert napi.upload_predictions(df=live_predictions(server.version_dir), model_id=server.model_id)


def test_an_upload_after_close_is_accepted_as_late(server: Server) -> None:
    napi = server.client()
    close_round(server.ctx, "classic")
    assert napi.check_round_open() is False
    submission_id = napi.upload_predictions(df=live_predictions(server.version_dir), model_id=server.model_id)
    [info] = list_submissions(server.ctx, "alice", server.model_id)
    assert (info.submission_id, info.status, info.round_number) == (
        submission_id,
        "late",
        server.round_number,
    )


def test_submission_filenames_webhook_and_public_models(server: Server) -> None:
    napi = server.client()
    napi.upload_predictions(df=live_predictions(server.version_dir), model_id=server.model_id)
    napi.upload_predictions(df=live_predictions(server.version_dir), model_id=server.model_id)
    # Only the selected (latest) submission of each round is listed.
    assert napi.get_submission_filenames(model_id=server.model_id) == [
        {"round_num": server.round_number, "tournament": 8, "filename": "predictions.csv"}
    ]
    assert napi.get_submission_filenames(round_num=server.round_number + 1, model_id=server.model_id) == []

    assert napi.set_submission_webhook(server.model_id, "https://hooks.example.org/alice") is True
    with pytest.raises(ValueError, match=r"^invalid_webhook: a submission webhook is an http\(s\) URL"):
        napi.set_submission_webhook(server.model_id, "ftp://example.org/x")
    assert napi.set_submission_webhook(server.model_id, None) is True

    public = numerapi.NumerAPI(show_progress_bars=False)
    assert public.models_of_account("alice") == {"alice_model": server.model_id}
    with pytest.raises(ValueError, match=r"^not_found: no account named 'nobody'$"):
        public.models_of_account("nobody")
