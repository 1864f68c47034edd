"""Tournaments, models, dataset versions: configs as JSON, model names unique per tournament, public files."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from store_factories import T0, Seed

from crowdalpha.store import AlreadyExists, DatasetFileSpec, NotFound, transaction

CLASSIC_CONFIG = {
    "id": 8,
    "calendar": {"weekdays": [1, 2, 3, 4, 5], "open": "12:00"},
    "payout": {"clip": 0.05},
}


def _spec(name: str, *, public: bool = True) -> DatasetFileSpec:
    return DatasetFileSpec(
        name=name, blob_key=f"datasets/v5.2/{name}", size_bytes=10, sha256="0" * 64, is_public=public
    )


def test_tournament_configs_round_trip_as_json_documents(engine: Engine) -> None:
    with transaction(engine) as uow:
        uow.tournaments.upsert(8, "classic", CLASSIC_CONFIG, now=T0)
        uow.tournaments.upsert(11, "signals", {"id": 11}, now=T0)
    with transaction(engine) as uow:
        assert uow.tournaments.get(8).config == CLASSIC_CONFIG
        assert uow.tournaments.get_by_name("signals").id == 11
        updated = uow.tournaments.upsert(11, "signals", {"id": 11, "gates": {"churn": 0.15}}, now=T0)
        assert updated.config["gates"] == {"churn": 0.15}
        assert [t.id for t in uow.tournaments.list()] == [8, 11]
        with pytest.raises(NotFound):
            uow.tournaments.get(12)


def test_model_names_are_unique_within_a_tournament_only(engine: Engine, seed: Seed) -> None:
    with transaction(engine) as uow:
        uow.tournaments.upsert(11, "signals", {}, now=T0)
        with pytest.raises(AlreadyExists, match="'alice_model' already exists in tournament 8"):
            uow.models.create(seed.account_id, 8, "alice_model", now=T0)
        signals_model = uow.models.create(seed.account_id, 11, "alice_model", now=T0)
        other = uow.accounts.create("bob", now=T0)
        bob_model = uow.models.create(other.id, 8, "bob_model", now=T0)
    with transaction(engine, read_only=True) as uow:
        assert {m.id for m in uow.models.list(account_id=seed.account_id)} == {
            seed.model_id,
            signals_model.id,
        }
        assert [m.name for m in uow.models.list(tournament_id=8)] == ["alice_model", "bob_model"]
        assert [m.id for m in uow.models.list(account_id=seed.account_id, tournament_id=11)] == [
            signals_model.id
        ]
        assert uow.models.get_by_name(8, "bob_model").id == bob_model.id
        assert uow.models.get(seed.model_id).account_id == seed.account_id
        with pytest.raises(NotFound):
            uow.models.get("no-such-model")


def test_model_webhook_can_be_set_and_cleared(engine: Engine, seed: Seed) -> None:
    with transaction(engine) as uow:
        assert uow.models.set_submission_webhook(seed.model_id, "https://example.org/hook").submission_webhook
        assert uow.models.set_submission_webhook(seed.model_id, None).submission_webhook is None


def test_dataset_versions_list_public_files_and_round_live_files(engine: Engine, seed: Seed) -> None:
    files = [_spec("train.parquet"), _spec("features.json"), _spec("id_map.parquet", public=False)]
    with transaction(engine) as uow:
        first = uow.datasets.register_version(8, "v5.1", [_spec("train.parquet")], now=T0)
        version = uow.datasets.register_version(8, "v5.2", files, now=T0.replace(day=7))
        uow.datasets.add_files(version.id, [_spec("live_1.parquet")], round_id=seed.round_id)
    with transaction(engine, read_only=True) as uow:
        assert uow.datasets.current_version(8).name == "v5.2"
        assert [v.name for v in uow.datasets.list_versions(8)] == ["v5.1", "v5.2"]
        assert [f.name for f in uow.datasets.list_files(version.id)] == ["features.json", "train.parquet"]
        assert [f.name for f in uow.datasets.list_files(version.id, round_id=seed.round_id)] == [
            "features.json",
            "live_1.parquet",
            "train.parquet",
        ]
        assert len(uow.datasets.list_files(version.id, public_only=False)) == 3
        assert uow.datasets.get_file(version.id, "train.parquet").blob_key == "datasets/v5.2/train.parquet"
        with pytest.raises(NotFound):
            uow.datasets.get_file(version.id, "id_map.parquet")  # private: never served
        assert uow.datasets.get_file(version.id, "id_map.parquet", public_only=False).is_public is False
        assert uow.datasets.get_version(8, "v5.1").id == first.id


def test_dataset_versions_are_immutable(engine: Engine, seed: Seed) -> None:
    with transaction(engine) as uow:
        version = uow.datasets.register_version(8, "v5.2", [_spec("train.parquet")], now=T0)
        with pytest.raises(AlreadyExists, match=r"'v5\.2' already exists"):
            uow.datasets.register_version(8, "v5.2", [], now=T0)
        with pytest.raises(AlreadyExists, match=r"train\.parquet"):
            uow.datasets.add_files(version.id, [_spec("train.parquet")])
        with pytest.raises(AlreadyExists, match=r"a\.parquet"):
            uow.datasets.add_files(version.id, [_spec("a.parquet"), _spec("a.parquet")])
