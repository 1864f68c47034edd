"""``crowdalpha dataset …``: build the published dataset products from a market panel."""

from __future__ import annotations

import typer

dataset_app = typer.Typer(
    help="Dataset products: build Classic, Signals and Crypto data from a market panel.",
    no_args_is_help=True,
)
