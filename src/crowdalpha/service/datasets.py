"""Dataset versions: publish a built version directory into the blob store, list and open its files.

A published file is named ``<version>/<file>`` (``v1.0/train.parquet``), as numerapi's
``list_datasets`` shows it. Opening a round adds that round's live file, ``<version>/live_<round>.parquet``
(see :mod:`crowdalpha.service.rounds`); asking for ``<version>/live.parquet`` of a given round
returns that round's live file when it has one.

``publish_dataset(..., private_dir=P)`` also stores the builder's private pieces (``ids.parquet``,
``manifest.json`` …, from ``P/<version>/`` or ``P`` itself) as private files of the version, named
``private/<file>`` under the blob prefix ``private/``: no listing or download route ever returns a
private file; opening a round reads its live id → asset map from them (:mod:`crowdalpha.service.scoring`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from crowdalpha.datasets.classic import PRIVATE_MANIFEST, VERSION_PATTERN
from crowdalpha.datasets.obfuscate import SecretKeys
from crowdalpha.service._tournaments import TournamentRef, load_tournament
from crowdalpha.service.context import Context
from crowdalpha.service.errors import ServiceError
from crowdalpha.store import (
    BlobInfo,
    BlobStore,
    DatasetFile,
    DatasetFileSpec,
    DatasetVersion,
    NotFound,
    UnitOfWork,
    run_transaction,
)

REQUIRED_FILES = ("live.parquet",)
PRIVATE_NAME_PREFIX = "private/"
SECRET_FILE = PRIVATE_NAME_PREFIX + "secret.key"
# Files the builders write to the private directory; finding one here means the wrong directory was given.
PRIVATE_FILES = frozenset({"manifest.json", "ids.parquet", "live_universe_report.parquet"})


@dataclass(frozen=True)
class DatasetFileInfo:
    """A published file: ``name`` as numerapi lists it, its version, size in bytes, SHA-256, blob key."""

    name: str
    version: str
    filename: str
    size_bytes: int
    sha256: str
    blob_key: str
    round_number: int | None = None


@dataclass(frozen=True)
class PublishedDataset:
    """A dataset version registered by ``publish_dataset``."""

    tournament: str
    version: str
    files: tuple[DatasetFileInfo, ...]
    private_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpenedDatasetFile:
    """A dataset file ready to serve: its info, and the blob store that holds it."""

    info: DatasetFileInfo
    blobs: BlobStore

    def open(self) -> BinaryIO:
        """Return the file opened for binary reading (seekable, for Range requests)."""
        return self.blobs.open(self.info.blob_key)

    def local_path(self) -> Path | None:
        """Return the file's local path when the blob store is a local directory (zero-copy serving)."""
        return self.blobs.local_path(self.info.blob_key)


def file_info(
    version: DatasetVersion, dataset_file: DatasetFile, round_number: int | None = None
) -> DatasetFileInfo:
    """Return the public description of a stored dataset file."""
    return DatasetFileInfo(
        name=f"{version.name}/{dataset_file.name}",
        version=version.name,
        filename=dataset_file.name,
        size_bytes=dataset_file.size_bytes,
        sha256=dataset_file.sha256,
        blob_key=dataset_file.blob_key,
        round_number=round_number,
    )


def _version_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ServiceError("dataset_directory_missing", f"{directory} is not a directory")
    if not VERSION_PATTERN.match(directory.name):
        raise ServiceError(
            "invalid_dataset_version",
            f"the directory must be named after its version vMAJOR.MINOR (e.g. v1.0); got {directory.name!r}",
        )
    files = sorted(path for path in directory.iterdir() if path.is_file() and not path.name.startswith("."))
    names = {path.name for path in files}
    private = sorted(names & PRIVATE_FILES)
    if private:
        raise ServiceError(
            "private_file_in_dataset",
            f"{directory} holds private files {private}; publish only the public version directory",
        )
    missing = [name for name in REQUIRED_FILES if name not in names]
    if missing:
        raise ServiceError("missing_dataset_file", f"{directory} has no {', '.join(missing)}")
    return files


def _private_files(directory: Path, private_dir: Path | None) -> list[Path]:
    """Return the private files of the version in ``directory``, from ``private_dir[/<version>]``."""
    if private_dir is None:
        return []
    candidate = private_dir / directory.name
    folder = candidate if candidate.is_dir() else private_dir
    if not folder.is_dir():
        raise ServiceError("private_directory_missing", f"{private_dir} is not a directory")
    if folder.resolve() == directory.resolve() or directory.resolve() in folder.resolve().parents:
        raise ServiceError(
            "private_directory_inside_dataset",
            f"{folder} is inside the published directory {directory}; keep private pieces apart",
        )
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    if not files:
        raise ServiceError("private_directory_empty", f"{folder} holds no private files of {directory.name}")
    return files


def _check_secret(private: list[Path], secret: bytes | None) -> None:
    """Refuse a secret without the private manifest, or other than the one the version was built with."""
    if secret is None:
        return
    manifest = next((path for path in private if path.name == PRIVATE_MANIFEST), None)
    if manifest is None:
        raise ServiceError(
            "secret_needs_private_manifest",
            f"a secret is stored only with the version's private {PRIVATE_MANIFEST} (give --private)",
        )
    expected = json.loads(manifest.read_text()).get("secret_fingerprint")
    if SecretKeys(secret).fingerprint != expected:
        raise ServiceError(
            "secret_mismatch", f"the secret is not the one the version was built with ({manifest})"
        )


def publish_dataset(
    ctx: Context,
    directory: str | Path,
    tournament: TournamentRef,
    *,
    private_dir: str | Path | None = None,
    secret: bytes | None = None,
) -> PublishedDataset:
    """Copy a built version directory's files (and its private pieces) to the blob store; register them.

    With ``secret`` (the operator secret the version was built with, checked against its private
    manifest) the server can build a fresh live file per round (:mod:`crowdalpha.service.fresh_live`).
    """
    directory = Path(directory)
    files = _version_files(directory)
    private = _private_files(directory, None if private_dir is None else Path(private_dir))
    _check_secret(private, secret)
    version = directory.name
    loaded = run_transaction(ctx.engine, lambda uow: load_tournament(uow, tournament), read_only=True)
    _refuse_existing_version(ctx, loaded.id, loaded.name, version)
    # A fresh prefix per attempt: a failed or concurrent publish never overwrites a published blob.
    attempt = uuid.uuid4().hex
    prefix = f"datasets/{loaded.name}/{version}/{attempt}"
    private_prefix = f"private/datasets/{loaded.name}/{version}/{attempt}"
    stored: list[BlobInfo] = []
    try:
        specs = []
        for path, key, name, public in [
            *((path, f"{prefix}/{path.name}", path.name, True) for path in files),
            *((p, f"{private_prefix}/{p.name}", PRIVATE_NAME_PREFIX + p.name, False) for p in private),
        ]:
            with path.open("rb") as source:
                info = ctx.blobs.put(key, source)
            stored.append(info)
            specs.append(DatasetFileSpec(name, info.key, info.size_bytes, info.sha256, is_public=public))
        if secret is not None:
            info = ctx.blobs.put_bytes(f"{private_prefix}/secret.key", secret)
            stored.append(info)
            specs.append(
                DatasetFileSpec(SECRET_FILE, info.key, info.size_bytes, info.sha256, is_public=False)
            )
        now = ctx.now()

        def work(uow: UnitOfWork) -> PublishedDataset:
            row = uow.datasets.register_version(loaded.id, version, specs, now=now)
            published = uow.datasets.list_files(row.id)
            return PublishedDataset(
                loaded.name,
                version,
                tuple(file_info(row, item) for item in published),
                tuple(spec.name for spec in specs if not spec.is_public),
            )

        return run_transaction(ctx.engine, work)
    except BaseException:
        for info in stored:
            ctx.blobs.delete(info.key)
        raise


def _refuse_existing_version(ctx: Context, tournament_id: int, tournament: str, version: str) -> None:
    def work(uow: UnitOfWork) -> bool:
        return uow.datasets.get_version(tournament_id, version) is not None

    if run_transaction(ctx.engine, work, read_only=True):
        raise ServiceError(
            "dataset_version_exists",
            f"{tournament} already has a dataset version {version}; versions are never overwritten",
        )


def _round_id(uow: UnitOfWork, tournament_id: int, round_number: int | None) -> tuple[str | None, int | None]:
    """Return the id and number of the given round, or of the current round when ``round_number`` is None."""
    if round_number is None:
        current = uow.rounds.current(tournament_id)
        return (current.id, current.number) if current is not None else (None, None)
    found = uow.rounds.get_by_number(tournament_id, round_number)
    if found is None:
        raise NotFound(f"no round {round_number}")
    return found.id, found.number


def list_dataset_files(
    ctx: Context, tournament: TournamentRef, round_number: int | None = None
) -> list[DatasetFileInfo]:
    """Return every public file of every version, plus the live file of the round (default: current)."""

    def work(uow: UnitOfWork) -> list[DatasetFileInfo]:
        loaded = load_tournament(uow, tournament)
        round_id, number = _round_id(uow, loaded.id, round_number)
        listed = []
        for version in uow.datasets.list_versions(loaded.id):
            for item in uow.datasets.list_files(version.id, round_id=round_id):
                listed.append(file_info(version, item, number if item.round_id is not None else None))
        return listed

    return run_transaction(ctx.engine, work, read_only=True)


def open_dataset_file(
    ctx: Context, tournament: TournamentRef, filename: str, round_number: int | None = None
) -> OpenedDatasetFile:
    """Return a public dataset file by name (``v1.0/train.parquet``; no version = the newest one)."""

    def work(uow: UnitOfWork) -> DatasetFileInfo:
        loaded = load_tournament(uow, tournament)
        version_name, _, name = filename.rpartition("/")
        if version_name:
            version = uow.datasets.get_version(loaded.id, version_name)
        else:
            version = uow.datasets.current_version(loaded.id)
        if version is None:
            raise NotFound(f"no dataset file {filename!r} in {loaded.name}")
        round_id, number = (
            _round_id(uow, loaded.id, round_number) if round_number is not None else (None, None)
        )
        stem, dot, suffix = name.rpartition(".")
        own = f"{stem}_{number}.{suffix}" if number is not None and dot else None
        by_name = uow.datasets.find_files(
            version.id, [name] if own is None else [name, own], round_id=round_id
        )
        if own is not None and own in by_name:
            name = own
        if name not in by_name:
            raise NotFound(f"no dataset file {filename!r} in {loaded.name}")
        item = by_name[name]
        return file_info(version, item, number if item.round_id is not None else None)

    return OpenedDatasetFile(run_transaction(ctx.engine, work, read_only=True), ctx.blobs)
