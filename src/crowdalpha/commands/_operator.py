"""What every operator command shares: ``--home`` and ``--json``, opening the home, errors, output."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer

from crowdalpha.service import Context, open_context, user_message
from crowdalpha.service.clock import parse_duration, parse_moment
from crowdalpha.settings import Settings

HOME_HELP = "The tournament home directory (default: $CROWDALPHA_HOME or ./.crowdalpha)."
JSON_HELP = "Print machine-readable JSON instead of text."


class UsageProblem(ValueError):
    """A command-line value cannot be used; the message names the rule."""


__all__ = [
    "HOME_OPTION",
    "JSON_OPTION",
    "UsageProblem",
    "emit",
    "home_context",
    "operator_errors",
    "parse_duration",
    "parse_moment",
    "plain",
    "settings_for",
]

HOME_OPTION: Any = typer.Option(None, "--home", help=HOME_HELP)
JSON_OPTION: Any = typer.Option(False, "--json", help=JSON_HELP)


def settings_for(home: Path | None) -> Settings:
    """Return the settings of the home named by ``--home`` (else the environment, else ./.crowdalpha)."""
    return Settings.resolve(home=home)


@contextmanager
def operator_errors() -> Iterator[None]:
    """Turn an expected error into ``error: <rule>: <message>`` on stderr and exit code 2 (no traceback)."""
    try:
        yield
    except UsageProblem as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(code=2) from None
    except Exception as error:
        message = user_message(error)
        if message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code=2) from None


@contextmanager
def home_context(home: Path | None) -> Iterator[Context]:
    """Yield a service Context on the home (its settings and its clock); close it afterwards."""
    with open_context(settings_for(home)) as ctx:
        yield ctx


def plain(value: Any) -> Any:
    """Return ``value`` as JSON-ready data (dataclasses, datetimes, paths, tuples converted)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: plain(getattr(value, item.name)) for item in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def emit(data: Any, as_json: bool, text: str) -> None:
    """Print ``data`` as one JSON document with ``--json``, else the human-readable ``text``."""
    typer.echo(json.dumps(plain(data), sort_keys=True) if as_json else text)
