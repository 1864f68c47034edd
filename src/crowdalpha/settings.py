"""Server settings: where the home directory, database and blob storage are, and the upload size limit.

Each setting is taken from an explicit argument first, then from the environment
(``CROWDALPHA_HOME``, ``CROWDALPHA_DATABASE_URL``, ``CROWDALPHA_STORAGE_URL``,
``CROWDALPHA_UPLOAD_LIMIT``), then from a default under the home directory, so that one
directory holds a whole self-hosted tournament unless configured otherwise.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "CROWDALPHA_HOME"
DATABASE_URL_ENV = "CROWDALPHA_DATABASE_URL"
STORAGE_URL_ENV = "CROWDALPHA_STORAGE_URL"
UPLOAD_LIMIT_ENV = "CROWDALPHA_UPLOAD_LIMIT"

DEFAULT_HOME = Path(".crowdalpha")
DATABASE_FILENAME = "crowdalpha.db"
BLOB_DIRNAME = "blobs"
DEFAULT_UPLOAD_LIMIT_BYTES = 100 * 1024 * 1024

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    """Resolved server settings (absolute home path, database URL, storage URL, upload limit in bytes)."""

    home: Path
    database_url: str
    storage_url: str
    upload_limit_bytes: int = DEFAULT_UPLOAD_LIMIT_BYTES

    @classmethod
    def resolve(
        cls,
        *,
        home: str | Path | None = None,
        database_url: str | None = None,
        storage_url: str | None = None,
        upload_limit: int | str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Return settings from arguments, then the environment, then defaults under the home directory."""
        env = os.environ if environ is None else environ
        home_path = Path(_first(home, env.get(HOME_ENV)) or DEFAULT_HOME).expanduser().resolve()
        database = _first(database_url, env.get(DATABASE_URL_ENV)) or sqlite_url(
            home_path / DATABASE_FILENAME
        )
        storage = _first(storage_url, env.get(STORAGE_URL_ENV)) or str(home_path / BLOB_DIRNAME)
        limit_value = _first(upload_limit, env.get(UPLOAD_LIMIT_ENV))
        limit = DEFAULT_UPLOAD_LIMIT_BYTES if limit_value is None else parse_size(limit_value)
        return cls(home=home_path, database_url=database, storage_url=storage, upload_limit_bytes=limit)

    @property
    def uses_default_database(self) -> bool:
        """Return True when the database is the SQLite file inside the home directory."""
        return self.database_url == sqlite_url(self.home / DATABASE_FILENAME)


def sqlite_url(path: Path) -> str:
    """Return the SQLAlchemy URL of a SQLite database file at an absolute path."""
    return f"sqlite:///{Path(path).resolve()}"


def parse_size(value: int | str) -> int:
    """Return a size in bytes from an int or a string such as ``"100MB"``, ``"64 MiB"`` or ``"1000"``."""
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE_PATTERN.match(value)
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _SIZE_UNITS:
            raise SettingsError(
                f"{UPLOAD_LIMIT_ENV}: expected a size such as 100MB, 64MiB or 1000 (bytes), got {value!r}"
            )
        size = int(match.group(1)) * _SIZE_UNITS[unit]
    if size <= 0:
        raise SettingsError(f"{UPLOAD_LIMIT_ENV}: the upload limit must be positive, got {value!r}")
    return size


def _first(*values: int | str | Path | None) -> int | str | Path | None:
    """Return the first value that is neither None nor an empty string."""
    for value in values:
        if value is not None and value != "":
            return value
    return None
