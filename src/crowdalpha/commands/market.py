"""``crowdalpha market …``: import, validate, synthesise and sample market panels."""

from __future__ import annotations

import typer

market_app = typer.Typer(
    help="Market panels: import and validate your data, or make a synthetic or sample market.",
    no_args_is_help=True,
)
