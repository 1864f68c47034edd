"""Helpers for the service tests: the clock's instants and submission files."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from crowdalpha.service import Context
from crowdalpha.tournament.clock import SettableClock

TUESDAY_OPEN = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
"""A Tuesday: the Classic round window is 12:00–13:00 UTC."""


def predictions_csv(
    ids: list[str], values: list[float] | None = None, header: str = "id,prediction"
) -> bytes:
    """Return a CSV submission of ``ids`` with ``values`` (default: evenly spread in (0, 1))."""
    if values is None:
        values = list(np.linspace(0.1, 0.9, len(ids)))
    lines = [header, *(f"{identifier},{value}" for identifier, value in zip(ids, values, strict=True))]
    return ("\n".join(lines) + "\n").encode()


def predictions_parquet(ids: list[str]) -> bytes:
    """Return a Parquet submission of ``ids`` with evenly spread predictions."""
    sink = io.BytesIO()
    pd.DataFrame({"id": ids, "prediction": np.linspace(0.1, 0.9, len(ids))}).to_parquet(sink, index=False)
    return sink.getvalue()


@dataclass
class World:
    """A Context with a published Classic version, an account with a key and a Classic model."""

    ctx: Context
    clock: SettableClock
    username: str
    public_id: str
    secret_key: str
    model_id: str
