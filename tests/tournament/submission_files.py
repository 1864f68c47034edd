"""Live universes and submission files (CSV and Parquet bytes) for the tournament tests."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

N_CLASSIC = 150
N_SIGNALS = 150
N_CRYPTO = 150


def classic_universe(n: int = N_CLASSIC) -> pd.DataFrame:
    """Return a Classic live universe: ids shaped like Numerai's (``n`` + 15 hex digits)."""
    return pd.DataFrame({"id": [f"n{(i * 7919 + 11):015x}" for i in range(n)]})


def signals_universe(n: int = N_SIGNALS) -> pd.DataFrame:
    """Return a Signals live universe with every supported ticker column."""
    return pd.DataFrame(
        {
            "numerai_ticker": [f"T{i:04d} US" for i in range(n)],
            "composite_figi": [f"CXG{i:08d}X" for i in range(n)],
            "bloomberg_ticker": [f"T{i:04d} UQ" for i in range(n)],
            "ticker": [f"T{i:04d}" for i in range(n)],
            "sedol": [f"B{i:06d}" for i in range(n)],
        }
    )


def crypto_universe(n: int = N_CRYPTO) -> pd.DataFrame:
    """Return a Crypto live universe of token symbols."""
    return pd.DataFrame({"symbol": [f"C{i:03d}X" for i in range(n)]})


UNIVERSES = {"classic": classic_universe(), "signals": signals_universe(), "crypto": crypto_universe()}


def predictions(n: int, seed: int = 0) -> np.ndarray:
    """Return ``n`` distinct predictions strictly inside (0, 1)."""
    return np.random.default_rng(seed).uniform(0.01, 0.99, n)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """Return a frame as CSV bytes, without its index (what numerapi uploads)."""
    return frame.to_csv(index=False).encode()


def parquet_bytes(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """Return a frame as Parquet bytes."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=index)
    return buffer.getvalue()
