"""Dataset versions and their files (blob key, size, SHA-256, public or private)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from crowdalpha.store.errors import AlreadyExists, NotFound
from crowdalpha.store.schema import DatasetFile, DatasetVersion, Tournament


@dataclass(frozen=True)
class DatasetFileSpec:
    """A file to register: its name in the version (``train.parquet``), its blob, and its visibility."""

    name: str
    blob_key: str
    size_bytes: int
    sha256: str
    is_public: bool = True


class DatasetRepository:
    """Dataset versions and files in one unit of work."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def register_version(
        self, tournament_id: int, name: str, files: Iterable[DatasetFileSpec], *, now: datetime
    ) -> DatasetVersion:
        """Return a new dataset version with its files; raise AlreadyExists if the name is taken."""
        if self.session.get(Tournament, tournament_id) is None:
            raise NotFound(f"no tournament with id {tournament_id}")
        if self.get_version(tournament_id, name) is not None:
            raise AlreadyExists(f"dataset version {name!r} already exists in tournament {tournament_id}")
        version = DatasetVersion(tournament_id=tournament_id, name=name, published_at=now)
        self.session.add(version)
        self.session.flush()
        self.add_files(version.id, files)
        return version

    def add_files(
        self, version_id: int, files: Iterable[DatasetFileSpec], *, round_id: str | None = None
    ) -> list[DatasetFile]:
        """Return the added files of a version (e.g. a round's live file, with its round id)."""
        rows = [
            DatasetFile(
                dataset_version_id=version_id,
                round_id=round_id,
                name=spec.name,
                blob_key=spec.blob_key,
                size_bytes=spec.size_bytes,
                sha256=spec.sha256,
                is_public=spec.is_public,
            )
            for spec in files
        ]
        names = [row.name for row in rows]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        taken = self.session.scalars(
            select(DatasetFile.name).where(
                DatasetFile.dataset_version_id == version_id, DatasetFile.name.in_(names)
            )
        ).all()
        if duplicates or taken:
            raise AlreadyExists(f"dataset files already exist: {', '.join(sorted({*duplicates, *taken}))}")
        self.session.add_all(rows)
        self.session.flush()
        return rows

    def get_version(self, tournament_id: int, name: str) -> DatasetVersion | None:
        """Return the tournament's dataset version with this name, or None."""
        query = select(DatasetVersion).where(
            DatasetVersion.tournament_id == tournament_id, DatasetVersion.name == name
        )
        return self.session.scalars(query).one_or_none()

    def current_version(self, tournament_id: int) -> DatasetVersion | None:
        """Return the most recently published dataset version of the tournament, or None."""
        query = (
            select(DatasetVersion)
            .where(DatasetVersion.tournament_id == tournament_id)
            .order_by(DatasetVersion.published_at.desc(), DatasetVersion.id.desc())
            .limit(1)
        )
        return self.session.scalars(query).first()

    def list_versions(self, tournament_id: int) -> list[DatasetVersion]:
        """Return the tournament's dataset versions, oldest first."""
        query = (
            select(DatasetVersion)
            .where(DatasetVersion.tournament_id == tournament_id)
            .order_by(DatasetVersion.published_at, DatasetVersion.id)
        )
        return list(self.session.scalars(query))

    def list_files(
        self, version_id: int, *, public_only: bool = True, round_id: str | None = None
    ) -> list[DatasetFile]:
        """Return a version's files by name: version-wide ones plus those of ``round_id`` if given."""
        query = select(DatasetFile).where(DatasetFile.dataset_version_id == version_id)
        query = _visible(query, public_only=public_only, round_id=round_id)
        return list(self.session.scalars(query.order_by(DatasetFile.name)))

    def find_files(
        self,
        version_id: int,
        names: Collection[str],
        *,
        public_only: bool = True,
        round_id: str | None = None,
    ) -> dict[str, DatasetFile]:
        """Return those of ``names`` that :meth:`list_files` would list, by name (a lookup by name)."""
        query = select(DatasetFile).where(
            DatasetFile.dataset_version_id == version_id, DatasetFile.name.in_(list(names))
        )
        query = _visible(query, public_only=public_only, round_id=round_id)
        return {item.name: item for item in self.session.scalars(query)}

    def get_file(self, version_id: int, name: str, *, public_only: bool = True) -> DatasetFile:
        """Return a version's file by name; raise NotFound if absent (or private when ``public_only``)."""
        query = select(DatasetFile).where(
            DatasetFile.dataset_version_id == version_id, DatasetFile.name == name
        )
        if public_only:
            query = query.where(DatasetFile.is_public.is_(True))
        dataset_file = self.session.scalars(query).one_or_none()
        if dataset_file is None:
            raise NotFound(f"no dataset file {name!r}")
        return dataset_file


def _visible(query: Select, *, public_only: bool, round_id: str | None) -> Select:
    """Return ``query`` limited to the files a listing shows: public ones (if asked), version-wide ones
    and those of ``round_id``."""
    if public_only:
        query = query.where(DatasetFile.is_public.is_(True))
    if round_id is None:
        return query.where(DatasetFile.round_id.is_(None))
    return query.where((DatasetFile.round_id.is_(None)) | (DatasetFile.round_id == round_id))
