"""The market-panel contract: one row per (date, asset), its validation, and wide date × asset views.

A panel has the columns of :data:`PANEL_COLUMNS` (``close`` may be replaced by ``return``, the
simple daily return, or both may be present) plus any number of ``raw_*`` feature columns computed
from data up to and including ``date``. :func:`validate_panel` checks every rule of the contract
once, at the edge, and returns the panel with normalised dtypes; everything downstream trusts it.

Every :class:`PanelError` message starts with ``rule: …`` and names the first offending rows, e.g.
``rule: (date, asset) must be unique — first duplicates: 2020-01-03 A12, 2020-01-06 A12``.

The numeric core (features, factors, targets) works on wide ``(dates, assets)`` matrices: a
:class:`PanelGrid` maps panel rows to matrix cells and back, with dates in calendar order and
assets sorted by id (so column order is a stable order by asset id).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

PANEL_COLUMNS: tuple[str, ...] = (
    "date",
    "asset",
    "ticker",
    "country",
    "sector",
    "industry",
    "close",
    "volume",
    "market_cap",
)
"""Required columns of a market panel, in their canonical order (``close`` or ``return``)."""

PRICE_COLUMN = "close"
RETURN_COLUMN = "return"
RAW_PREFIX = "raw_"
STRING_COLUMNS: tuple[str, ...] = ("asset", "ticker", "country", "sector", "industry")
NUMERIC_COLUMNS: tuple[str, ...] = ("close", "return", "volume", "market_cap")
DATE_DTYPE = "datetime64[ns]"
EXAMPLES = 3
"""How many offending rows an error message lists."""


class PanelError(ValueError):
    """A market panel broke a rule of the contract; the message names the rule and the first rows."""


@dataclass(frozen=True)
class PanelGrid:
    """Where each panel row sits in the wide ``(dates, assets)`` matrices of its panel."""

    dates: pd.DatetimeIndex
    assets: pd.Index
    row_date: np.ndarray
    row_asset: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        """Return (number of trading dates, number of assets)."""
        return len(self.dates), len(self.assets)

    def to_wide(self, values: np.ndarray | pd.Series, fill: float = np.nan) -> np.ndarray:
        """Return a float64 ``(dates, assets)`` matrix of per-row values, ``fill`` where no row exists."""
        matrix = np.full(self.shape, fill, dtype=np.float64)
        matrix[self.row_date, self.row_asset] = np.asarray(values, dtype=np.float64)
        return matrix

    def present(self) -> np.ndarray:
        """Return a bool ``(dates, assets)`` matrix: True where the panel has a row."""
        mask = np.zeros(self.shape, dtype=bool)
        mask[self.row_date, self.row_asset] = True
        return mask

    def to_rows(self, matrix: np.ndarray) -> np.ndarray:
        """Return the values of a ``(dates, assets)`` matrix at the panel's rows, in row order."""
        return matrix[self.row_date, self.row_asset]

    def codes(self, values: pd.Series) -> tuple[np.ndarray, pd.Index]:
        """Return (an int ``(dates, assets)`` matrix of category codes, -1 where absent; the categories)."""
        codes, categories = pd.factorize(values, sort=True)
        matrix = np.full(self.shape, -1, dtype=np.int64)
        matrix[self.row_date, self.row_asset] = codes
        return matrix, pd.Index(categories)


def panel_grid(panel: pd.DataFrame) -> PanelGrid:
    """Return the map between a validated panel's rows and its wide (dates × assets) matrices."""
    row_date, dates = pd.factorize(panel["date"], sort=True)
    row_asset, assets = pd.factorize(panel["asset"], sort=True)
    return PanelGrid(
        dates=pd.DatetimeIndex(dates, name="date"),
        assets=pd.Index(assets, name="asset"),
        row_date=np.asarray(row_date, dtype=np.intp),
        row_asset=np.asarray(row_asset, dtype=np.intp),
    )


def raw_feature_columns(panel: pd.DataFrame) -> list[str]:
    """Return the names of the panel's ``raw_*`` feature columns, in column order."""
    return [str(c) for c in panel.columns if str(c).startswith(RAW_PREFIX)]


def wide_matrix(panel: pd.DataFrame, column: str) -> pd.DataFrame:
    """Return one column as a float64 date × asset frame (NaN where the panel has no row)."""
    grid = panel_grid(panel)
    return pd.DataFrame(grid.to_wide(panel[column]), index=grid.dates, columns=grid.assets)


def close_from_returns(returns: pd.DataFrame) -> pd.DataFrame:
    """Return price levels compounded from simple daily returns, each asset starting at 1 × (1 + r₀).

    A missing return breaks the chain: the level is NaN there and compounding restarts at the next
    observed return, so levels are only comparable within an unbroken run.
    """
    values = returns.to_numpy(dtype=np.float64)
    log_growth = np.log1p(values)
    observed = ~np.isnan(log_growth)
    # cumulative sum that resets after every gap: subtract the running total at the last gap
    running = np.cumsum(np.where(observed, log_growth, 0.0), axis=0)
    at_gap = np.where(observed, np.nan, running)
    last_gap = pd.DataFrame(at_gap).ffill().fillna(0.0).to_numpy()
    levels = np.where(observed, np.exp(running - last_gap), np.nan)
    return pd.DataFrame(levels, index=returns.index, columns=returns.columns)


def returns_from_close(close: pd.DataFrame) -> pd.DataFrame:
    """Return simple daily returns (fractions) from a date × asset close matrix; NaN after a missing close."""
    values = close.to_numpy(dtype=np.float64)
    returns = np.full_like(values, np.nan)
    returns[1:] = values[1:] / values[:-1] - 1.0
    return pd.DataFrame(returns, index=close.index, columns=close.columns)


def close_matrix(panel: pd.DataFrame) -> pd.DataFrame:
    """Return close prices as a date × asset frame (compounded from ``return`` when there is no close)."""
    if PRICE_COLUMN in panel.columns:
        return wide_matrix(panel, PRICE_COLUMN)
    return close_from_returns(wide_matrix(panel, RETURN_COLUMN))


def return_matrix(panel: pd.DataFrame) -> pd.DataFrame:
    """Return simple daily returns (fractions) as a date × asset frame; ``return`` wins over ``close``."""
    if RETURN_COLUMN in panel.columns:
        return wide_matrix(panel, RETURN_COLUMN)
    return returns_from_close(wide_matrix(panel, PRICE_COLUMN))


# --------------------------------------------------------------------------------------- validation


def _where(panel: pd.DataFrame, bad: np.ndarray | pd.Series, extra: str | None = None) -> str:
    """Return 'DATE ASSET' (and the value of ``extra``) for the first offending rows."""
    positions = np.flatnonzero(np.asarray(bad, dtype=bool))[:EXAMPLES]
    rows = panel.iloc[positions]
    parts = []
    for (_, row), position in zip(rows.iterrows(), positions, strict=True):
        date = row["date"]
        date_text = date.strftime("%Y-%m-%d") if isinstance(date, pd.Timestamp) else str(date)
        detail = f"row {position}" + ("" if extra is None else f", {extra}={row[extra]!r}")
        parts.append(f"{date_text} {row['asset']} ({detail})")
    more = int(np.count_nonzero(np.asarray(bad, dtype=bool))) - len(positions)
    return ", ".join(parts) + (f", … ({more} more)" if more > 0 else "")


def _fail(rule: str, detail: str) -> PanelError:
    return PanelError(f"rule: {rule} — {detail}")


def _normalise_dates(panel: pd.DataFrame) -> pd.Series:
    original = panel["date"]
    if pd.api.types.is_datetime64_any_dtype(original):
        dates = original
    elif pd.api.types.is_integer_dtype(original):
        # integers are read as yyyymmdd (a common vendor layout), never as epoch nanoseconds
        dates = pd.to_datetime(original.astype(str), errors="coerce", format="%Y%m%d")
    else:
        try:
            dates = pd.to_datetime(original, errors="coerce")
        except (TypeError, ValueError, OverflowError):
            dates = pd.to_datetime(original.astype(str), errors="coerce", format="mixed")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    missing = dates.isna().to_numpy()
    if missing.any():
        positions = np.flatnonzero(missing)[:EXAMPLES]
        examples = ", ".join(f"row {p} ({original.iloc[p]!r})" for p in positions)
        raise _fail("dates must be present and parseable", f"first offending rows: {examples}")
    not_day = (dates != dates.dt.normalize()).to_numpy()
    if not_day.any():
        positions = np.flatnonzero(not_day)[:EXAMPLES]
        examples = ", ".join(f"row {p} ({dates.iloc[p]})" for p in positions)
        raise _fail("dates must be whole trading days (no time of day)", f"first offending rows: {examples}")
    return dates.astype(DATE_DTYPE)


def _check_sorted(panel: pd.DataFrame) -> None:
    values = panel["date"].to_numpy()
    backwards = np.zeros(len(values), dtype=bool)
    backwards[1:] = values[1:] < values[:-1]
    if backwards.any():
        raise _fail(
            "dates must be sorted ascending",
            f"first rows earlier than the row before: {_where(panel, backwards)}",
        )


def _check_unique(panel: pd.DataFrame) -> None:
    duplicated = panel.duplicated(["date", "asset"], keep="first").to_numpy()
    if duplicated.any():
        raise _fail("(date, asset) must be unique", f"first duplicates: {_where(panel, duplicated)}")


def _check_labels(panel: pd.DataFrame) -> None:
    for column, rule in (
        ("asset", "every row needs an asset id"),
        ("country", "every row needs a country"),
        ("sector", "every row needs a sector"),
    ):
        values = panel[column]
        missing = (values.isna() | values.str.strip().eq("")).to_numpy()
        if missing.any():
            raise _fail(rule, f"first rows with a missing {column}: {_where(panel, missing)}")


def _check_numeric(panel: pd.DataFrame, columns: Iterable[str], rule: str) -> None:
    for column in columns:
        values = panel[column]
        if pd.api.types.is_bool_dtype(values):
            panel[column] = values.astype(np.float64)
            continue
        if pd.api.types.is_numeric_dtype(values):
            if not pd.api.types.is_float_dtype(values):
                panel[column] = values.astype(np.float64)
            continue
        converted = pd.to_numeric(values, errors="coerce")
        bad = (converted.isna() & values.notna()).to_numpy()
        if bad.any():
            raise _fail(rule, f"column {column!r} has non-numeric values: {_where(panel, bad, column)}")
        panel[column] = converted.astype(np.float64)


def _check_prices(panel: pd.DataFrame) -> None:
    if PRICE_COLUMN in panel.columns:
        close = panel[PRICE_COLUMN].to_numpy()
        bad = ~np.isnan(close) & ~(np.isfinite(close) & (close > 0))
        if bad.any():
            raise _fail(
                "prices must be positive and finite (missing is NaN)",
                f"first offending rows: {_where(panel, bad, PRICE_COLUMN)}",
            )
    if RETURN_COLUMN in panel.columns:
        returns = panel[RETURN_COLUMN].to_numpy()
        bad = ~np.isnan(returns) & ~(np.isfinite(returns) & (returns > -1.0))
        if bad.any():
            raise _fail(
                "prices must be positive: a return must be finite and above -100 %",
                f"first offending rows: {_where(panel, bad, RETURN_COLUMN)}",
            )
    volume = panel["volume"].to_numpy()
    bad = ~np.isnan(volume) & ~(np.isfinite(volume) & (volume >= 0))
    if bad.any():
        raise _fail(
            "volume must be finite and non-negative", f"first offending rows: {_where(panel, bad, 'volume')}"
        )
    cap = panel["market_cap"].to_numpy()
    bad = ~np.isnan(cap) & ~(np.isfinite(cap) & (cap > 0))
    if bad.any():
        raise _fail(
            "market_cap must be positive and finite (missing is NaN)",
            f"first offending rows: {_where(panel, bad, 'market_cap')}",
        )


def constant_raw_features(panel: pd.DataFrame, columns: Iterable[str] | None = None) -> list[str]:
    """Return the raw feature columns with no variation across assets on any date (panel sorted by date)."""
    columns = raw_feature_columns(panel) if columns is None else list(columns)
    if not columns or len(panel) == 0:
        return []
    dates = panel["date"].to_numpy()
    starts = np.flatnonzero(np.r_[True, dates[1:] != dates[:-1]])
    constant = []
    for column in columns:
        values = panel[column].to_numpy(dtype=np.float64)
        finite = np.where(np.isfinite(values), values, np.nan)
        with np.errstate(invalid="ignore"):
            highs = np.fmax.reduceat(finite, starts)
            lows = np.fmin.reduceat(finite, starts)
        if not np.any(highs > lows):
            constant.append(column)
    return constant


def _check_raw_features_vary(panel: pd.DataFrame, raw: list[str]) -> None:
    """Reject raw features with no cross-sectional variation on any date (binning per era needs it)."""
    constant = constant_raw_features(panel, raw)
    if constant:
        values = panel[constant[0]].to_numpy(dtype=np.float64)
        observed = values[np.isfinite(values)]
        detail = f"always {float(observed[0])!r} within a date" if observed.size else "no finite value"
        more = f"; also {constant[1:4]}" if len(constant) > 1 else ""
        raise _fail(
            "raw features must vary across assets on at least one date",
            f"{constant[0]!r} is constant within every date ({detail}){more}",
        )


def validate_panel(panel: pd.DataFrame, *, copy: bool = True) -> pd.DataFrame:
    """Return a copy of the panel with normalised dtypes, sorted by (date, asset), or raise PanelError.

    ``copy=False`` lets a caller that owns the frame (a loader) skip the defensive copy; the frame
    passed in may then be modified.

    Dtypes: ``date`` datetime64[ns] at midnight; asset/ticker/country/sector/industry pandas
    strings; close/return/volume/market_cap and ``raw_*`` floats. NaN prices, volumes, market caps
    and raw features are allowed (missing data); ``industry`` and ``ticker`` may be missing.
    """
    if not isinstance(panel, pd.DataFrame):
        raise PanelError(f"rule: a panel is a pandas DataFrame — got {type(panel).__name__}")
    if len(panel) == 0:
        raise _fail("a panel must have at least one row", "the panel is empty")
    if copy:
        panel = panel.copy()
    panel.columns = [str(c) for c in panel.columns]
    required = [c for c in PANEL_COLUMNS if c != PRICE_COLUMN]
    missing = [c for c in required if c not in panel.columns]
    if PRICE_COLUMN not in panel.columns and RETURN_COLUMN not in panel.columns:
        missing.insert(min(6, len(missing)), "close (or return)")
    if missing:
        raise _fail(
            "required columns must be present", f"missing {missing}; found {list(panel.columns)[:20]}"
        )
    if panel.columns.duplicated().any():
        repeated = sorted(set(panel.columns[panel.columns.duplicated()]))
        raise _fail("column names must be unique", f"repeated: {repeated}")

    panel["date"] = _normalise_dates(panel)
    for column in STRING_COLUMNS:
        panel[column] = panel[column].astype("str")
    _check_sorted(panel)
    _check_unique(panel)
    _check_labels(panel)
    _check_numeric(
        panel,
        [c for c in NUMERIC_COLUMNS if c in panel.columns],
        "close/return/volume/market_cap must be numeric",
    )
    _check_prices(panel)
    raw = raw_feature_columns(panel)
    _check_numeric(panel, raw, "raw_* features must be numeric")
    _check_raw_features_vary(panel, raw)

    asset_codes = pd.factorize(panel["asset"], sort=True)[0]
    order = np.lexsort((asset_codes, panel["date"].to_numpy().view(np.int64)))
    if not np.array_equal(order, np.arange(len(order))):
        panel = panel.iloc[order]
    leading = [c for c in (*PANEL_COLUMNS, RETURN_COLUMN) if c in panel.columns]
    rest = [c for c in panel.columns if c not in leading]
    return panel[leading + rest].reset_index(drop=True)
