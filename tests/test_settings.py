"""Settings: arguments beat the environment, which beats defaults under the home directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from crowdalpha.settings import DEFAULT_UPLOAD_LIMIT_BYTES, Settings, SettingsError, parse_size


def test_defaults_live_under_the_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.resolve(environ={})
    assert settings.home == tmp_path / ".crowdalpha"
    assert settings.database_url == f"sqlite:///{tmp_path}/.crowdalpha/crowdalpha.db"
    assert settings.storage_url == str(tmp_path / ".crowdalpha" / "blobs")
    assert settings.upload_limit_bytes == DEFAULT_UPLOAD_LIMIT_BYTES == 100 * 1024 * 1024
    assert settings.uses_default_database


def test_environment_sets_home_database_storage_and_limit(tmp_path: Path) -> None:
    environ = {
        "CROWDALPHA_HOME": str(tmp_path / "h"),
        "CROWDALPHA_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/crowdalpha",
        "CROWDALPHA_STORAGE_URL": "s3://bucket/crowdalpha",
        "CROWDALPHA_UPLOAD_LIMIT": "64MiB",
    }
    settings = Settings.resolve(environ=environ)
    assert settings.home == tmp_path / "h"
    assert settings.database_url == environ["CROWDALPHA_DATABASE_URL"]
    assert settings.storage_url == "s3://bucket/crowdalpha"
    assert settings.upload_limit_bytes == 64 * 1024 * 1024
    assert not settings.uses_default_database


def test_home_from_the_environment_moves_the_defaults(tmp_path: Path) -> None:
    settings = Settings.resolve(
        environ={"CROWDALPHA_HOME": str(tmp_path / "h"), "CROWDALPHA_STORAGE_URL": ""}
    )
    assert settings.database_url == f"sqlite:///{tmp_path}/h/crowdalpha.db"
    assert settings.storage_url == str(tmp_path / "h" / "blobs")


def test_arguments_beat_the_environment(tmp_path: Path) -> None:
    environ = {
        "CROWDALPHA_HOME": "/elsewhere",
        "CROWDALPHA_UPLOAD_LIMIT": "1",
        "CROWDALPHA_DATABASE_URL": "x",
    }
    settings = Settings.resolve(
        home=tmp_path, database_url="sqlite:///db.sqlite", upload_limit=2048, environ=environ
    )
    assert settings.home == tmp_path
    assert settings.database_url == "sqlite:///db.sqlite"
    assert settings.storage_url == str(tmp_path / "blobs")
    assert settings.upload_limit_bytes == 2048


@pytest.mark.parametrize(
    ("text", "size"),
    [("1000", 1000), ("100MB", 100_000_000), ("64 MiB", 64 * 1024**2), ("1gib", 1024**3), ("5kb", 5000)],
)
def test_sizes_parse_with_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "10 parsecs", "-5", "0", "1.5MB"])
def test_bad_sizes_name_the_setting(text: str) -> None:
    with pytest.raises(SettingsError, match="CROWDALPHA_UPLOAD_LIMIT"):
        parse_size(text)
