"""Small synthetic inputs for the dataset tests: era frames and market panels."""

from __future__ import annotations

import numpy as np
import pandas as pd

SECRET = b"test-secret-0123456789abcdef"
OTHER_SECRET = b"another-secret-9876543210fedcba"
TARGET_BINS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


def bin_targets(values: np.ndarray) -> np.ndarray:
    """Return 5/20/50/20/5 % bins of one cross-section (NaN stays NaN)."""
    out = np.full(values.shape, np.nan, dtype=np.float32)
    known = ~np.isnan(values)
    if known.sum() == 0:
        return out
    ranks = (pd.Series(values[known]).rank(method="first").to_numpy() - 0.5) / known.sum()
    out[known] = TARGET_BINS[np.searchsorted([0.05, 0.25, 0.75, 0.95], ranks, side="right")]
    return out


def make_era_frame(
    *,
    assets: int = 60,
    eras: int = 40,
    features: int = 12,
    unresolved: int = 12,
    seed: int = 0,
    extra_features: int = 0,
) -> pd.DataFrame:
    """Return an era frame: ``eras`` weekly Fridays plus a live Wednesday, assets entering and leaving.

    Feature ``raw_f00`` carries signal on ``target``; ``raw_flag`` is discrete (many ties);
    ``raw_gappy`` has missing values; the last ``unresolved`` eras and the live date have NaN targets.
    """
    rng = np.random.default_rng(seed)
    fridays = pd.date_range("2021-01-08", periods=eras, freq="W-FRI")
    live = fridays[-1] + pd.Timedelta(days=5)
    universe = [f"ASSET{i:04d}" for i in range(assets + 10)]
    frames = []
    for number, date in enumerate([*fridays, live]):
        start = min(number // 4, 10)
        members = universe[start : start + assets]
        n = len(members)
        values = {f"raw_f{j:02d}": rng.standard_normal(n) for j in range(features + extra_features - 3)}
        values["raw_flag"] = rng.integers(0, 3, n).astype(float)
        gappy = rng.standard_normal(n)
        gappy[rng.random(n) < 0.2] = np.nan
        values["raw_gappy"] = gappy
        values["raw_size"] = np.exp(rng.standard_normal(n))
        signal = values["raw_f00"] + 0.5 * rng.standard_normal(n)
        resolved = number < eras - unresolved
        frame = pd.DataFrame({"date": date, "asset": members, **values})
        for name, noise in (("target", 1.0), ("target_alpha_20", 2.0), ("target_beta_60", 3.0)):
            raw_target = signal + noise * rng.standard_normal(n)
            if not resolved or date == live:
                raw_target[:] = np.nan
            elif name == "target":
                raw_target[rng.random(n) < 0.05] = np.nan  # an asset that stopped trading
            frame[name] = bin_targets(raw_target)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def make_panel(*, assets: int = 40, days: int = 400, seed: int = 0, raw_features: int = 6) -> pd.DataFrame:
    """Return a small market panel in the crowdalpha contract (business days, random-walk prices)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=days)
    ids = [f"ASSET{i:04d}" for i in range(assets)]
    close = 10 * np.exp(np.cumsum(0.01 * rng.standard_normal((days, assets)), axis=0))
    panel = pd.DataFrame(
        {
            "date": np.repeat(dates, assets),
            "asset": np.tile(ids, days),
            "ticker": np.tile([f"T{i}" for i in range(assets)], days),
            "country": "US",
            "sector": np.tile([f"S{i % 4}" for i in range(assets)], days),
            "industry": "I",
            "close": close.ravel(),
            "volume": rng.integers(1000, 5000, days * assets).astype(float),
            "market_cap": (close * 1e6).ravel(),
        }
    )
    for j in range(raw_features):
        panel[f"raw_x{j}"] = rng.standard_normal(len(panel))
    return panel
