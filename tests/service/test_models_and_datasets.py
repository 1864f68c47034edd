"""Models are unique per tournament; a published dataset version is listed and served byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from crowdalpha.service import (
    Context,
    ServiceError,
    create_account,
    create_model,
    list_dataset_files,
    list_models,
    open_dataset_file,
    publish_dataset,
)
from crowdalpha.store import NotFound


def test_a_model_name_is_unique_within_a_tournament_only(ctx: Context) -> None:
    create_account(ctx, "alice")
    create_account(ctx, "bob")
    classic = create_model(ctx, "alice", "classic", "alpha")
    with pytest.raises(ServiceError) as caught:
        create_model(ctx, "bob", "classic", "alpha")
    assert str(caught.value) == "model_name_taken: a model named 'alpha' already exists in classic"
    signals = create_model(ctx, "bob", 11, "alpha")
    assert (classic.tournament_id, signals.tournament_id) == (8, 11)
    assert [model.name for model in list_models(ctx, "alice")] == ["alpha"]
    assert list_models(ctx, "bob", "classic") == []
    assert [model.id for model in list_models(ctx, "bob", "signals")] == [signals.id]


def test_unknown_accounts_and_tournaments_are_named(ctx: Context) -> None:
    with pytest.raises(NotFound, match=r"no account named 'nobody'"):
        create_model(ctx, "nobody", "classic", "alpha")
    create_account(ctx, "alice")
    with pytest.raises(
        NotFound, match=r"no tournament named 'chess'; the tournaments are: classic, signals, crypto"
    ):
        create_model(ctx, "alice", "chess", "alpha")


def test_a_published_version_is_listed_and_served_byte_for_byte(ctx: Context, version_dir: Path) -> None:
    published = publish_dataset(ctx, version_dir, "classic")
    on_disk = sorted(path.name for path in version_dir.iterdir())
    assert [item.filename for item in published.files] == on_disk
    listed = list_dataset_files(ctx, "classic")
    assert [item.name for item in listed] == [f"v1.0/{name}" for name in on_disk]
    for item in listed:
        content = (version_dir / item.filename).read_bytes()
        assert (item.size_bytes, item.sha256) == (len(content), hashlib.sha256(content).hexdigest())
    opened = open_dataset_file(ctx, "classic", "v1.0/train.parquet")
    with opened.open() as handle:
        assert handle.read() == (version_dir / "train.parquet").read_bytes()
    assert open_dataset_file(ctx, 8, "features.json").info.name == "v1.0/features.json"
    with pytest.raises(NotFound, match=r"no dataset file 'v1.0/secret.parquet' in classic"):
        open_dataset_file(ctx, "classic", "v1.0/secret.parquet")


def test_a_version_is_never_published_twice(ctx: Context, version_dir: Path) -> None:
    publish_dataset(ctx, version_dir, "classic")
    blobs_before = ctx.blobs.keys("datasets/")
    with pytest.raises(
        ServiceError, match=r"^dataset_version_exists: classic already has a dataset version v1.0"
    ):
        publish_dataset(ctx, version_dir, "classic")
    assert ctx.blobs.keys("datasets/") == blobs_before


def test_private_files_and_misnamed_directories_are_refused(
    ctx: Context, version_dir: Path, tmp_path: Path
) -> None:
    private = version_dir.parent.parent / "private" / "v1.0"
    with pytest.raises(ServiceError, match=r"^private_file_in_dataset: "):
        publish_dataset(ctx, private, "classic")
    misnamed = tmp_path / "latest"
    misnamed.mkdir()
    with pytest.raises(ServiceError, match=r"^invalid_dataset_version: "):
        publish_dataset(ctx, misnamed, "classic")
    assert ctx.blobs.keys("datasets/") == []
