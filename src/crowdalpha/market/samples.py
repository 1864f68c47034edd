"""Real market samples shipped inside the package, and the cleaning rules that derived them.

``pse``: daily prices and traded value of Philippine Stock Exchange stocks, 2010–2021, derived from
the data bundled in the PyPI package ``fastquant==0.1.8.1`` (MIT; see ``data/PSE_PROVENANCE.md``).
``scripts/build_pse_sample.py`` regenerates the shipped file with :func:`build_pse_panel`.

The cleaning rules, in order (constants below):

1. A close that is missing, zero or negative is missing: the stock did not trade that session.
   Only traded sessions become rows, so no price is ever carried forward or invented. A negative
   traded value is a data error and is missing too (the row keeps its close; ``volume`` is NaN).
2. Exchange-traded funds are not stocks and are dropped; the sector ``SME`` is the same board as
   ``Small, Medium & Emerging Board`` and is renamed to it.
3. Prices are unadjusted. The PSE's static price thresholds cap one session's move at +50 % / −30 %
   of the previous close, so a log return outside [log 0.7, log 1.5] widened by
   :data:`JUMP_TOLERANCE` is impossible as a market move. Such a jump is a **bad print** when the
   next session undoes at least half of it (the row is dropped) and otherwise a **corporate action**
   (split, reverse split, stock dividend): every earlier close of the stock is multiplied by the
   jump's ratio, so the session's return becomes 0 and ``close`` is split-adjusted backwards (the
   latest close is the quoted price).
4. Illiquid rows are dropped: a row is kept only when the stock's mean traded value over the last
   :data:`LIQUIDITY_WINDOW` exchange sessions (untraded sessions count as 0; sessions before the
   stock's first trade are not counted) is at least :data:`MIN_TRADED_VALUE_PHP`.
5. ``volume`` = traded value / close (shares, in split-adjusted units), so ``close × volume`` is the
   session's traded value in PHP. There is no shares-outstanding data, so ``market_cap`` is a
   proxy: ``close × 250 ×`` the mean number of shares traded per session over the last
   :data:`MARKET_CAP_WINDOW` sessions since the first trade — the market cap of a stock whose
   annual share turnover is 100 %. It ranks stocks by trading size, not by true capitalisation.

All amounts are in Philippine pesos (PHP). Every rule uses data up to and including the row's date.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SAMPLES: dict[str, str] = {"pse": "pse.parquet"}
PSE_COUNTRY = "PH"
PSE_UPPER_LIMIT = 0.5  # static threshold: at most +50 % of the previous close in one session
PSE_LOWER_LIMIT = -0.3  # and at most −30 %
JUMP_TOLERANCE = 0.01  # log units, for rounding to price ticks
LIQUIDITY_WINDOW = 20  # exchange sessions
MIN_TRADED_VALUE_PHP = 1_000_000.0
MARKET_CAP_WINDOW = 250  # exchange sessions (about one year)
EXCLUDED_SECTORS = ("ETF-Equity",)
SECTOR_ALIASES = {"SME": "Small, Medium & Emerging Board"}


class SampleError(ValueError):
    """A sample name is unknown or a sample cannot be written where asked."""


def available_samples() -> list[str]:
    """Return the names of the market samples shipped with the package."""
    return sorted(SAMPLES)


def sample_path(name: str) -> Path:
    """Return the path of the shipped Parquet file of sample ``name``."""
    if name not in SAMPLES:
        raise SampleError(f"unknown sample {name!r}; available: {', '.join(available_samples())}")
    path = Path(str(resources.files("crowdalpha.market").joinpath("data", SAMPLES[name])))
    if not path.is_file():
        raise SampleError(f"sample {name!r} is missing from the installed package (expected {path})")
    return path


def load_sample(name: str = "pse") -> pd.DataFrame:
    """Return the shipped market panel ``name`` (panel contract columns; prices and amounts in local
    currency, PHP for ``pse``)."""
    return pd.read_parquet(sample_path(name))


def write_sample(name: str, path: str | os.PathLike[str]) -> Path:
    """Write sample ``name`` to ``path`` (``.parquet``: the shipped bytes; ``.csv``: a CSV) and return
    the path; nothing is left at ``path`` if writing fails."""
    source = sample_path(name)
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise SampleError(f"output {target} must end in .parquet or .csv")
    if target.is_dir():
        raise SampleError(f"output {target} is a directory, not a file")
    temporary = target.with_name(f".{target.name}.partial")
    try:
        if suffix == ".parquet":
            shutil.copyfile(source, temporary)
        else:
            load_sample(name).to_csv(temporary, index=False, date_format="%Y-%m-%d")
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


# ---------------------------------------------------------------------------------------------------------
# deriving the PSE sample


@dataclass
class PseBuild:
    """The cleaned PSE panel and what each cleaning rule did (counts for the provenance note)."""

    panel: pd.DataFrame
    counts: dict[str, Any] = field(default_factory=dict)
    jumps: pd.DataFrame = field(default_factory=pd.DataFrame)


def read_fastquant_prices(path_or_buffer: Any) -> pd.DataFrame:
    """Return fastquant's PSE price cache (a wide CSV, one column per (symbol, field), fields open,
    high, low, close, value) as a frame indexed by session date."""
    prices = pd.read_csv(path_or_buffer, index_col=0, header=[0, 1], compression=None)
    prices.index = pd.to_datetime(prices.index).astype("datetime64[ns]")
    prices.index.name = "date"
    return prices


def adjust_price_jumps(close: pd.Series) -> tuple[pd.Series, list[tuple[pd.Timestamp, str, float]]]:
    """Return (the series of traded closes with bad prints dropped and earlier prices adjusted for
    corporate actions, the list of (date, "bad_print" | "corporate_action", log jump))."""
    lowest = _log(1 + PSE_LOWER_LIMIT) - JUMP_TOLERANCE
    highest = _log(1 + PSE_UPPER_LIMIT) + JUMP_TOLERANCE
    traded = close[close > 0].dropna()
    prices = traded.to_numpy(dtype=np.float64)
    keep = np.ones(len(prices), dtype=bool)
    factor = np.ones(len(prices))
    events: list[tuple[pd.Timestamp, str, float]] = []
    last = 0
    for i in range(1, len(prices)):
        jump = _log(prices[i] / prices[last])
        if lowest <= jump <= highest:
            last = i
            continue
        following = _log(prices[i + 1] / prices[i]) if i + 1 < len(prices) else 0.0
        if following * jump < 0 and abs(jump + following) < abs(jump) / 2:
            keep[i] = False
            events.append((traded.index[i], "bad_print", jump))
            continue
        factor[:i] *= prices[i] / prices[last]
        events.append((traded.index[i], "corporate_action", jump))
        last = i
    adjusted = pd.Series(prices * factor, index=traded.index, name=close.name)
    return adjusted[keep], events


def _log(value: float) -> float:
    return float(np.log(value))


def _trailing_mean_since_first(values: pd.DataFrame, window: int) -> pd.DataFrame:
    """Return the mean over the last ``window`` sessions, counting only sessions since each column's
    first non-zero value (earlier sessions are before the stock's first trade)."""
    started = values.ne(0).cummax()
    total = values.rolling(window, min_periods=1).sum()
    sessions = started.astype(np.float64).rolling(window, min_periods=1).sum()
    return (total / sessions).where(started)


def build_pse_panel(prices: pd.DataFrame, stock_table: pd.DataFrame) -> PseBuild:
    """Return the cleaned PSE panel (contract columns, PHP, sorted by date then asset) and the counts
    of what each cleaning rule removed or changed."""
    counts: dict[str, Any] = {
        "raw_sessions": len(prices.index),
        "raw_symbols": int(prices.columns.get_level_values(0).nunique()),
    }
    close = prices.xs("close", axis=1, level=1)
    value = prices.xs("value", axis=1, level=1)
    counts["raw_rows_with_close"] = int(close.notna().sum().sum())
    counts["zero_or_negative_close_rows"] = int((close <= 0).sum().sum())
    counts["negative_traded_value_rows"] = int((value < 0).sum().sum())
    value = value.where(value >= 0)

    table = stock_table.rename(
        columns={"Stock Symbol": "symbol", "Sector": "sector", "Subsector": "industry"}
    )
    table = table.set_index("symbol")[["sector", "industry"]].replace(SECTOR_ALIASES)
    unknown = sorted(set(close.columns) - set(table.index))
    excluded = sorted(
        s for s in close.columns if s in table.index and table.at[s, "sector"] in EXCLUDED_SECTORS
    )
    counts["symbols_without_sector"] = unknown
    counts["excluded_symbols"] = excluded
    symbols = sorted(s for s in close.columns if s not in unknown and s not in excluded)

    adjusted = {}
    jumps = []
    for symbol in symbols:
        series, events = adjust_price_jumps(close[symbol])
        adjusted[symbol] = series
        jumps.extend((symbol, date, kind, jump) for date, kind, jump in events)
    adjusted_close = pd.DataFrame(adjusted).reindex(close.index)
    jump_frame = pd.DataFrame(jumps, columns=["asset", "date", "kind", "log_jump"])
    counts["bad_prints_dropped"] = int((jump_frame["kind"] == "bad_print").sum())
    counts["corporate_actions_adjusted"] = int((jump_frame["kind"] == "corporate_action").sum())

    traded = adjusted_close.notna()
    reported_value = value[symbols].where(traded)
    traded_value = reported_value.fillna(0.0)
    counts["traded_rows_after_price_rules"] = int(traded.sum().sum())
    liquidity = _trailing_mean_since_first(traded_value, LIQUIDITY_WINDOW)
    liquid = traded & (liquidity >= MIN_TRADED_VALUE_PHP)
    counts["illiquid_rows_dropped"] = int((traded & ~liquid).sum().sum())

    shares = (traded_value / adjusted_close).fillna(0.0)
    market_cap = adjusted_close * 250.0 * _trailing_mean_since_first(shares, MARKET_CAP_WINDOW)

    day, column = np.nonzero(liquid.to_numpy())
    order = np.lexsort((column, day))  # symbols are sorted, so column order is asset order
    day, column = day[order], column[order]
    names = np.asarray(symbols, dtype=object)[column]
    panel = pd.DataFrame(
        {
            "date": pd.DatetimeIndex(close.index[day]).astype("datetime64[ns]"),
            "asset": pd.array(names, dtype="str"),
            "ticker": pd.array(names, dtype="str"),
            "country": pd.array(np.full(len(day), PSE_COUNTRY, dtype=object), dtype="str"),
            "sector": pd.array(table["sector"].reindex(names).to_numpy(), dtype="str"),
            "industry": pd.array(table["industry"].reindex(names).to_numpy(), dtype="str"),
            "close": adjusted_close.to_numpy()[day, column].astype(np.float32),
            "volume": (reported_value / adjusted_close).to_numpy()[day, column].astype(np.float32),
            "market_cap": market_cap.to_numpy()[day, column].astype(np.float32),
        }
    )
    counts.update(
        rows=len(panel),
        assets=int(panel["asset"].nunique()),
        dates=int(panel["date"].nunique()),
        first_date=str(panel["date"].min().date()),
        last_date=str(panel["date"].max().date()),
        assets_per_sector={str(k): int(v) for k, v in panel.groupby("sector")["asset"].nunique().items()},
    )
    return PseBuild(panel=panel, counts=counts, jumps=jump_frame)
