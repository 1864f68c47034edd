"""A fresh Classic live file per round, built at open from the market store as of its last ingested date.

When a Classic version was published with its private pieces and the operator secret
(``dataset publish DIR --private PRIVATE_DIR --secret-file FILE``) and the market store holds a
date after the version's own live date, opening a round writes a new live file for that date:
the version's feature layout (names, order, targets, from the private manifest) with the raw
features of that date binned and fresh keyed ids (:func:`crowdalpha.datasets.classic.write_live_era`,
the builder's own obfuscation), so consecutive rounds have different live data. Otherwise the
round keeps the version's ``live.parquet``. The id → asset map of the new file is the round's
private live data, and uploads queued for the round (made for the previous live ids) are carried
onto the new ids (:func:`carry_queued_submissions`).
"""

from __future__ import annotations

import json
import tempfile
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa

from crowdalpha.datasets.classic import PRIVATE_MANIFEST, write_live_era
from crowdalpha.datasets.errors import DatasetError
from crowdalpha.datasets.obfuscate import LIVE, SecretKeys, id_strings
from crowdalpha.market.features import add_price_features
from crowdalpha.market.panel import raw_feature_columns
from crowdalpha.service._tournaments import LoadedTournament
from crowdalpha.service._universes import read_universe
from crowdalpha.service.context import Context
from crowdalpha.service.datasets import PRIVATE_NAME_PREFIX, SECRET_FILE
from crowdalpha.service.errors import ServiceError
from crowdalpha.service.market import market_panel, market_rows
from crowdalpha.service.scoring import round_id_assets
from crowdalpha.store import BlobInfo, Round, UnitOfWork
from crowdalpha.tournament.submissions import UploadKind, validate_submission

MANIFEST_FILE = PRIVATE_NAME_PREFIX + PRIVATE_MANIFEST


@dataclass(frozen=True)
class FreshLive:
    """A round's fresh live file: its blob, the market date it shows, and the private id → asset map."""

    blob: BlobInfo
    live_date: date
    id_map: pa.Table


def fresh_live_file(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: Round, version_id: int, version: str
) -> FreshLive | None:
    """Return a fresh live file for the round from the market store, or None to keep the version's."""
    files = {item.name: item for item in uow.datasets.list_files(version_id, public_only=False)}
    if SECRET_FILE not in files or MANIFEST_FILE not in files:
        return None
    manifest = json.loads(ctx.blobs.read_bytes(files[MANIFEST_FILE].blob_key))
    latest = uow.market.latest(loaded.config.market)
    version_live = next(era["date"] for era in manifest["eras"] if era["data_type"] == LIVE)
    if latest is None or latest.last_date <= date.fromisoformat(version_live):
        return None
    live_date = latest.last_date
    block = market_rows(ctx, live_date, market=loaded.config.market)
    assert block is not None  # the store holds live_date
    if not raw_feature_columns(block):  # the version was built on price-derived features: they need history
        panel = market_panel(ctx, through=live_date, market=loaded.config.market)
        assert panel is not None
        panel = add_price_features(panel)
        block = panel[panel["date"] == pd.Timestamp(live_date)]
    keys = SecretKeys(ctx.blobs.read_bytes(files[SECRET_FILE].blob_key))
    with tempfile.TemporaryDirectory(prefix="crowdalpha-live-") as directory:
        path = Path(directory) / "live.parquet"
        try:
            era = write_live_era(block, path, manifest, keys, live_date=live_date)
        except DatasetError as error:
            raise ServiceError("fresh_live_failed", f"{loaded.name} round {row.number}: {error}") from None
        key = f"datasets/{loaded.name}/{version}/rounds/{row.number}/live_{live_date:%Y%m%d}.parquet"
        with path.open("rb") as source:
            blob = ctx.blobs.put(key, source)
    id_map = pa.table({"id": id_strings(era.ids), "asset": pa.array([str(a) for a in era.assets])})
    return FreshLive(blob, live_date, id_map)


def carry_queued_submissions(
    ctx: Context, uow: UnitOfWork, loaded: LoadedTournament, row: Round, fresh: FreshLive
) -> int:
    """Rewrite the round's queued uploads, made for the previous round's live ids, onto its fresh ids.

    An upload queued between rounds was checked against the ids of the round open before; each
    prediction follows its asset to the asset's new id. An upload that does not cover every new
    live asset is left as it is (scoring then reports it). Returns how many uploads were carried.
    """
    queued = uow.submissions.list_selected(row.id, statuses=[UploadKind.QUEUED])
    previous = uow.rounds.current(loaded.id)
    if not queued or previous is None:
        return 0
    previous_live = uow.scores.live_data(previous.id)
    previous_universe = uow.rounds.get_live_universe(previous.id)
    if previous_live is None or previous_universe is None:
        return 0
    old_assets = round_id_assets(ctx, previous_live)
    new_ids = pd.Series(
        fresh.id_map.column("id").to_pylist(), index=fresh.id_map.column("asset").to_pylist(), dtype=object
    )
    universe = read_universe(ctx, previous_universe)
    carried = 0
    for submission in queued:
        content = ctx.blobs.read_bytes(submission.blob_key)
        predictions = validate_submission(content, universe, loaded.config.submissions).to_series()
        by_asset = pd.Series(predictions.to_numpy(), index=old_assets.reindex(predictions.index).to_numpy())
        moved = by_asset.reindex(new_ids.index)
        if moved.isna().any():
            continue
        frame = pd.DataFrame({"id": new_ids.to_numpy(), "prediction": moved.to_numpy()})
        key = f"submissions/{loaded.name}/{row.number}/{submission.model_id}/{uuid.uuid4().hex}.csv"
        blob = ctx.blobs.put_bytes(key, frame.to_csv(index=False).encode())
        submission.blob_key, submission.sha256, submission.size_bytes = blob.key, blob.sha256, blob.size_bytes
        carried += 1
    uow.session.flush()
    return carried
