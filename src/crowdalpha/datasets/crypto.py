"""The Crypto product (reference §3.9): a token universe chosen by declared rules, targets, features.

**Universe rules are data** (:class:`CryptoUniverseRules`). For a date, every token with a panel
row that day is checked against these rules, in this order, using only rows dated on or before
the date; the first rule a token breaks is its ``reason``:

====================  ===========================================================================
reason                a token is dropped when …
====================  ===========================================================================
``missing_symbol``    its ``ticker`` (the symbol) is empty
``excluded_category`` its ``industry`` (or ``sector``) is a stablecoin, wrapped or liquid-staking
                      category (compared lower-case, with spaces and ``_`` read as ``-``)
``min_data_points``   it has fewer than 30 days with a close up to the date
``min_age``           it is younger than 730 calendar days: date − listing, where listing is its
                      first row in the panel (or ``listing_dates``, when earlier); a token already
                      trading on the panel's first date counts as old enough unless
                      ``listing_dates`` says otherwise (its listing predates the data)
``zero_market_cap``   its market cap at the date is missing or zero
``min_volume``        its 24h volume (close × volume at the date, USD) is below $500,000
``min_abs_mean_return`` its mean daily return over the last 90 trading days is below 1e-5 in
                      absolute value, or unknown (a pegged token)
``duplicate_symbol``  another surviving token with the same symbol has a larger market cap
``correlated``        its daily returns over the last 90 trading days (≥ 30 common days)
                      correlate ≥ 0.95 with a larger kept token (tokens are visited by market
                      cap, largest first)
``top_n``             it is not among the ``top_n`` largest survivors by market cap
====================  ===========================================================================

BTC, ETH and NMR (``always_keep``) are kept whatever the rules say — the largest-cap token
carrying each of those symbols that day; they count towards ``top_n``. Kept tokens have reason
``always_keep`` or ``kept``. Market-cap ties are broken by asset id.

**A version directory** ``out_dir/<version>/`` holds::

    train_targets.parquet  (symbol, date, target)
    train.parquet          (symbol, date, feature_*, target)
    live_universe.parquet  (symbol)
    live.parquet           (symbol, date, feature_*)

Historical dates are the weekly era dates (or every trading date with ``frequency="daily"``);
each date's rows are that date's universe (sorted by symbol), for dates whose target is known for
at least ``min_symbols`` (10) of them — the first weeks of a panel have few tokens with enough history.
``target`` is the 20-day forward return after a 2-day lag (20D2L,
:func:`crowdalpha.market.targets.residual_returns`, raw by default), binned over the date's
universe to {0, .25, .5, .75, 1} at 5/20/50/20/5 % (float32); rows with an unknown return are
dropped. Features are the technicals of :mod:`crowdalpha.datasets.technicals` (``feature_<name>``,
e.g. ``feature_bollinger_20d``, ``feature_close_avg_60d``) as equal-frequency quintiles over the
date's universe, float32 in quarter steps, missing → 0.5. ``date`` is a timestamp at midnight;
live files hold the panel's latest date. With ``private_dir``, ``live_universe_report.parquet``
(every token of the live date with its market cap, volume, checks, ``kept`` and ``reason``) goes
to ``private_dir/<version>/`` — it names internal asset ids. Same panel → byte-identical files.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from crowdalpha.datasets.classic import Progress, version_number
from crowdalpha.datasets.errors import DatasetError, rule_error
from crowdalpha.datasets.parquet import EraChunkWriter, write_table
from crowdalpha.datasets.staging import staged_directories
from crowdalpha.datasets.technicals import TECHNICALS, dollar_volume_matrix, quarter_bins, technical_matrices
from crowdalpha.market.calendar import trading_dates, weekly_era_dates
from crowdalpha.market.panel import (
    PanelError,
    PanelGrid,
    close_matrix,
    panel_grid,
    return_matrix,
    validate_panel,
)
from crowdalpha.market.targets import (
    NEUTRALIZATIONS,
    bin_cross_sections,
    prepare_target_inputs,
    residual_returns,
)

SYMBOL_COLUMN = "symbol"
DATE_COLUMN = "date"
TARGET_COLUMN = "target"
KEPT, ALWAYS_KEEP = "kept", "always_keep"
RULE_ORDER: tuple[str, ...] = (
    "missing_symbol",
    "excluded_category",
    "min_data_points",
    "min_age",
    "zero_market_cap",
    "min_volume",
    "min_abs_mean_return",
    "duplicate_symbol",
    "correlated",
    "top_n",
)
"""Every reason a token can be dropped for, in the order the rules are applied."""

CRYPTO_FEATURES: tuple[str, ...] = TECHNICALS
"""Technicals published as ``feature_<name>``."""

PUBLISHED_FILES: tuple[str, ...] = (
    "train_targets.parquet",
    "train.parquet",
    "live_universe.parquet",
    "live.parquet",
)
PRIVATE_FILES: tuple[str, ...] = ("live_universe_report.parquet",)

_MISSING_SYMBOLS = frozenset({"", "nan", "none", "<na>", "null"})
_TIMESTAMP = pa.timestamp("ns")


@dataclass(frozen=True)
class CryptoUniverseRules:
    """The thresholds of the Crypto universe (reference §3.9); units in the field comments."""

    always_keep: tuple[str, ...] = ("BTC", "ETH", "NMR")
    excluded_categories: tuple[str, ...] = ("stablecoin", "wrapped", "liquid-staking")
    min_data_points: int = 30  # days with a close, up to the date
    min_age_days: int = 730  # calendar days since listing
    min_volume_usd: float = 500_000.0  # close × volume at the date
    min_abs_mean_return: float = 1e-5  # mean daily return (fraction) over lookback_days
    max_correlation: float = 0.95  # of daily returns with a larger kept token
    lookback_days: int = 90  # trading days for the mean return and the correlation
    min_common_days: int = 30  # days both returns are known, for a correlation to count
    top_n: int = 500

    def __post_init__(self) -> None:
        checks = (
            (self.top_n >= 1, "top_n must be ≥ 1", self.top_n),
            (self.min_data_points >= 0, "min_data_points must be ≥ 0", self.min_data_points),
            (self.min_age_days >= 0, "min_age_days must be ≥ 0", self.min_age_days),
            (self.min_volume_usd >= 0, "min_volume_usd must be ≥ 0", self.min_volume_usd),
            (self.min_abs_mean_return >= 0, "min_abs_mean_return must be ≥ 0", self.min_abs_mean_return),
            (0 < self.max_correlation <= 1, "max_correlation lies in (0, 1]", self.max_correlation),
            (self.lookback_days >= 2, "lookback_days must be ≥ 2", self.lookback_days),
            (self.min_common_days >= 2, "min_common_days must be ≥ 2", self.min_common_days),
        )
        for ok, rule, value in checks:
            if not ok:
                raise rule_error(rule, f"got {value!r}")


DEFAULT_RULES = CryptoUniverseRules()


def _category_keys(values: pd.Series) -> pd.Series:
    text = values.astype("str").str.strip().str.lower()
    return text.str.replace("_", "-", regex=False).str.replace(" ", "-", regex=False)


def _validated(panel: pd.DataFrame) -> pd.DataFrame:
    try:
        return validate_panel(panel)
    except PanelError as error:
        raise DatasetError(str(error)) from None


@dataclass(frozen=True)
class TokenInputs:
    """Per (date, asset) what the universe rules need, computed once for a validated panel."""

    grid: PanelGrid
    present: np.ndarray
    symbols: np.ndarray  # (dates, assets) str, "" where absent or missing
    category: np.ndarray  # (dates, assets) str: the industry, or the sector when only it is excluded
    excluded: np.ndarray  # (dates, assets) bool: in an excluded category
    data_points: np.ndarray  # (dates, assets) days with a close up to and including the date
    listing: np.ndarray  # (assets,) datetime64[ns]; NaT when it predates the panel
    returns: np.ndarray  # (dates, assets) simple daily returns
    market_cap: np.ndarray
    dollar_volume: np.ndarray

    @property
    def assets(self) -> np.ndarray:
        """Return the asset ids of the matrix columns."""
        return self.grid.assets.to_numpy().astype(str)


def prepare_token_inputs(
    panel: pd.DataFrame,
    rules: CryptoUniverseRules = DEFAULT_RULES,
    listing_dates: Mapping[str, object] | pd.Series | None = None,
) -> TokenInputs:
    """Return the per (date, asset) matrices the universe rules of a validated panel read."""
    grid = panel_grid(panel)
    present = grid.present()
    symbol_text = panel["ticker"].astype("str").str.strip()
    missing = panel["ticker"].isna().to_numpy() | symbol_text.str.lower().isin(_MISSING_SYMBOLS).to_numpy()
    symbols = np.full(grid.shape, "", dtype=object)
    symbols[grid.row_date, grid.row_asset] = np.where(missing, "", symbol_text.to_numpy().astype(str))
    excluded_keys = list(_category_keys(pd.Series(rules.excluded_categories, dtype="str")))
    industry_excluded = _category_keys(panel["industry"]).isin(excluded_keys).to_numpy()
    sector_excluded = _category_keys(panel["sector"]).isin(excluded_keys).to_numpy()
    category = np.full(grid.shape, "", dtype=object)
    category[grid.row_date, grid.row_asset] = np.where(
        sector_excluded & ~industry_excluded, panel["sector"].astype("str"), panel["industry"].astype("str")
    )
    excluded = np.zeros(grid.shape, dtype=bool)
    excluded[grid.row_date, grid.row_asset] = industry_excluded | sector_excluded
    close = close_matrix(panel).to_numpy()
    data_points = np.cumsum(np.isfinite(close) & present, axis=0, dtype=np.int64)
    first_row = grid.dates.to_numpy()[np.argmax(present, axis=0)]
    listing = np.where(np.argmax(present, axis=0) == 0, np.datetime64("NaT"), first_row).astype(
        "datetime64[ns]"
    )
    if listing_dates is not None:
        given = pd.to_datetime(pd.Series(listing_dates).reindex(grid.assets)).to_numpy(dtype="datetime64[ns]")
        known = ~np.isnat(given)
        listing[known] = np.where(
            np.isnat(listing[known]), given[known], np.minimum(listing[known], given[known])
        )
    return TokenInputs(
        grid=grid,
        present=present,
        symbols=symbols,
        category=category,
        excluded=excluded,
        data_points=data_points,
        listing=listing,
        returns=return_matrix(panel).to_numpy(),
        market_cap=grid.to_wide(panel["market_cap"]),
        dollar_volume=dollar_volume_matrix(panel, grid),
    )


def pairwise_correlation(returns: np.ndarray, min_common: int) -> np.ndarray:
    """Return Pearson correlations (columns × columns) over rows both columns know; NaN below min_common."""
    returns = np.asarray(returns, dtype=np.float64)
    if np.isfinite(returns).all():
        if returns.shape[0] < min_common:
            return np.full((returns.shape[1],) * 2, np.nan)
        centred = returns - returns.mean(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = centred / np.sqrt((centred**2).sum(axis=0))
            correlation = scaled.T @ scaled
        return np.where(np.isfinite(correlation), correlation, np.nan)
    known = np.isfinite(returns).astype(np.float64)
    values = np.where(known > 0, returns, 0.0)
    count = known.T @ known
    sum_x = values.T @ known  # [i, j]: Σ x_i over the rows where j is known too
    sum_xx = (values**2).T @ known
    sum_xy = values.T @ values
    with np.errstate(divide="ignore", invalid="ignore"):
        covariance = sum_xy - sum_x * sum_x.T / count
        variance_i = sum_xx - sum_x**2 / count
        correlation = covariance / np.sqrt(variance_i * variance_i.T)
    return np.where((count >= min_common) & np.isfinite(correlation), correlation, np.nan)


def _sort_by_cap(caps: np.ndarray, assets: np.ndarray) -> np.ndarray:
    return np.lexsort((assets, np.where(np.isfinite(caps), -caps, np.inf)))


def universe_at(
    inputs: TokenInputs, position: int, rules: CryptoUniverseRules = DEFAULT_RULES
) -> pd.DataFrame:
    """Return the universe report of one date position: one row per token, ``kept`` and ``reason``."""
    columns = np.flatnonzero(inputs.present[position])
    assets = inputs.assets[columns]
    symbols = inputs.symbols[position, columns].astype(str)
    caps = inputs.market_cap[position, columns]
    volume = np.nan_to_num(inputs.dollar_volume[position, columns], nan=0.0)
    points = inputs.data_points[position, columns]
    day = inputs.grid.dates[position].to_datetime64()
    with np.errstate(invalid="ignore"):
        age = (day - inputs.listing[columns]) / np.timedelta64(1, "D")
    start = max(0, position - rules.lookback_days + 1)
    window = inputs.returns[start : position + 1][:, columns]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a token without returns in the window: NaN
        mean_return = np.nanmean(window, axis=0)

    order = _sort_by_cap(caps, assets)
    protected = np.zeros(columns.size, dtype=bool)
    for symbol in rules.always_keep:
        holders = order[symbols[order] == symbol]
        if holders.size:
            protected[holders[0]] = True

    reason = np.full(columns.size, "", dtype=object)
    detail = np.full(columns.size, "", dtype=object)
    alive = np.ones(columns.size, dtype=bool)

    def drop(rule: str, failing: np.ndarray, text: Callable[[int], str]) -> None:
        for i in np.flatnonzero(failing & alive & ~protected):
            reason[i], detail[i] = rule, text(int(i))
            alive[i] = False

    drop("missing_symbol", symbols == "", lambda i: "no ticker")
    category = inputs.category[position, columns]
    drop("excluded_category", inputs.excluded[position, columns], lambda i: f"category {category[i]!r}")
    drop(
        "min_data_points", points < rules.min_data_points, lambda i: f"{points[i]} < {rules.min_data_points}"
    )
    drop("min_age", age < rules.min_age_days, lambda i: f"{age[i]:.0f} days < {rules.min_age_days}")
    drop("zero_market_cap", ~(caps > 0), lambda i: "market cap missing or zero")
    drop(
        "min_volume",
        volume < rules.min_volume_usd,
        lambda i: f"${volume[i]:,.0f} < ${rules.min_volume_usd:,.0f}",
    )
    flat = ~(np.abs(mean_return) >= rules.min_abs_mean_return)
    drop("min_abs_mean_return", flat, lambda i: f"|{mean_return[i]:.2e}| < {rules.min_abs_mean_return:g}")

    # the holder of a symbol is its largest surviving token (a protected token is the largest of its symbol)
    living = order[alive[order]]
    first_of_symbol = ~pd.Series(symbols[living]).duplicated().to_numpy()
    holder = dict(zip(symbols[living][first_of_symbol], living[first_of_symbol], strict=True))
    duplicate = np.zeros(columns.size, dtype=bool)
    duplicate[living[~first_of_symbol]] = True
    drop("duplicate_symbol", duplicate, lambda i: f"{assets[holder[symbols[i]]]} has a larger market cap")

    survivors = order[alive[order]]
    correlation = pairwise_correlation(window[:, survivors], rules.min_common_days)
    high = correlation >= rules.max_correlation  # NaN (too few common days, a flat token) is never high
    kept_so_far = np.zeros(survivors.size, dtype=bool)
    for k, i in enumerate(survivors):
        clashes = high[k] & kept_so_far
        if not protected[i] and clashes.any():
            closest = survivors[np.flatnonzero(clashes)[np.argmax(correlation[k, clashes])]]
            reason[i], alive[i] = "correlated", False
            detail[i] = f"{correlation[k, clashes].max():.3f} with {symbols[closest]} ({assets[closest]})"
            continue
        kept_so_far[k] = True

    remaining = order[alive[order] & ~protected[order]]
    n_protected = int(protected.sum())
    slots = max(0, rules.top_n - n_protected)
    for rank, i in enumerate(remaining[slots:], start=slots + n_protected + 1):
        reason[i], detail[i], alive[i] = "top_n", f"rank {rank} > {rules.top_n}", False

    kept = alive
    reason[kept & protected] = ALWAYS_KEEP
    reason[kept & ~protected] = KEPT
    report = pd.DataFrame(
        {
            SYMBOL_COLUMN: symbols,
            "asset": assets,
            "market_cap": caps,
            "volume_usd_24h": volume,
            "data_points": points,
            "age_days": age,
            "mean_return": mean_return,
            "kept": kept,
            "reason": reason.astype(str),
            "detail": detail.astype(str),
        }
    )
    return report.iloc[order].reset_index(drop=True)


def select_crypto_universe(
    panel: pd.DataFrame,
    date: str | pd.Timestamp,
    *,
    top_n: int | None = None,
    rules: CryptoUniverseRules = DEFAULT_RULES,
    listing_dates: Mapping[str, object] | pd.Series | None = None,
) -> pd.DataFrame:
    """Return every token with a row at ``date`` (largest market cap first) with ``kept`` and the ``reason``.

    Columns: symbol, asset, market_cap and volume_usd_24h (USD), data_points, age_days (calendar
    days; NaN when the listing predates the panel), mean_return (daily fraction), kept, reason
    (a name of :data:`RULE_ORDER`, or ``always_keep`` / ``kept``) and detail (human-readable).
    ``top_n`` overrides ``rules.top_n``. Only rows dated on or before ``date`` are read.
    """
    if top_n is not None:
        rules = dataclasses.replace(rules, top_n=top_n)
    panel = _validated(panel)
    day = pd.Timestamp(date).normalize()
    if day not in trading_dates(panel):
        raise rule_error("the date must be a trading date of the panel", f"{day:%Y-%m-%d} has no rows")
    history = panel.loc[panel["date"] <= day].reset_index(drop=True)
    inputs = prepare_token_inputs(history, rules, listing_dates)
    return universe_at(inputs, len(inputs.grid.dates) - 1, rules)


# ------------------------------------------------------------------------------------------ build


@dataclass
class CryptoBuildReport:
    """What a Crypto build wrote: dates, rows, the live universe report and file sizes (bytes)."""

    version: str
    version_dir: Path
    private_dir: Path | None
    live_date: str
    dates: int
    rows: int
    live_symbols: int
    features: list[str]
    live_universe: pd.DataFrame
    files: dict[str, int] = field(default_factory=dict)


def _history_dates(panel: pd.DataFrame, frequency: str) -> pd.DatetimeIndex:
    if frequency == "weekly":
        return weekly_era_dates(panel)
    if frequency == "daily":
        return trading_dates(panel)
    raise rule_error("frequency is 'weekly' or 'daily'", f"got {frequency!r}")


def build_crypto(
    panel: pd.DataFrame,
    out_dir: str | Path,
    *,
    version: str = "v1.0",
    rules: CryptoUniverseRules = DEFAULT_RULES,
    top_n: int | None = None,
    listing_dates: Mapping[str, object] | pd.Series | None = None,
    horizon: int = 20,
    target_neutral_to: str = "raw_return",
    frequency: Literal["weekly", "daily"] = "weekly",
    min_symbols: int = 10,
    private_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> CryptoBuildReport:
    """Return the report of building the Crypto version ``out_dir/<version>/`` from a panel (module doc).

    A history date is published when at least ``min_symbols`` universe members have a known target.
    """
    version_number(version)
    if top_n is not None:
        rules = dataclasses.replace(rules, top_n=top_n)
    if target_neutral_to not in NEUTRALIZATIONS:
        raise rule_error(
            f"target_neutral_to is one of {sorted(NEUTRALIZATIONS)}", f"got {target_neutral_to!r}"
        )
    tick: Callable[[str, int, int | None], None] = progress or (lambda stage, done, total: None)
    panel = _validated(panel)
    tick("validate panel", 1, 1)
    history = _history_dates(panel, frequency)
    tokens = prepare_token_inputs(panel, rules, listing_dates)
    grid = tokens.grid
    features = technical_matrices(panel, grid, CRYPTO_FEATURES)
    forward = residual_returns(prepare_target_inputs(panel), history, horizon, neutral_to=target_neutral_to)
    tick("targets and features", 1, 1)
    feature_names = [f"feature_{name}" for name in CRYPTO_FEATURES]
    key_fields = [pa.field(SYMBOL_COLUMN, pa.string()), pa.field(DATE_COLUMN, _TIMESTAMP)]
    feature_fields = [pa.field(name, pa.float32()) for name in feature_names]
    target_field = pa.field(TARGET_COLUMN, pa.float32())
    schemas = {
        "train_targets": pa.schema([*key_fields, target_field]),
        "train": pa.schema([*key_fields, *feature_fields, target_field]),
        "live": pa.schema([*key_fields, *feature_fields]),
    }

    def tables(
        position: int, members: np.ndarray, symbols: np.ndarray, target: np.ndarray | None
    ) -> list[pa.Table]:
        day = grid.dates[position].to_datetime64()
        keys = [pa.array(symbols, pa.string()), pa.array(np.full(members.size, day), _TIMESTAMP)]
        binned = [pa.array(quarter_bins(features[name][position, members])) for name in CRYPTO_FEATURES]
        if target is None:
            return [pa.Table.from_arrays([*keys, *binned], schema=schemas["live"])]
        target_array = pa.array(target.astype(np.float32))
        return [
            pa.Table.from_arrays([*keys, target_array], schema=schemas["train_targets"]),
            pa.Table.from_arrays([*keys, *binned, target_array], schema=schemas["train"]),
        ]

    out_dir = Path(out_dir)
    finals = [out_dir / version] + ([Path(private_dir) / version] if private_dir is not None else [])
    files: dict[str, int] = {}
    written_dates = 0
    with staged_directories(finals) as staged:
        public = staged[0]
        writers = [
            EraChunkWriter(public / f"{name}.parquet", schemas[name]) for name in ("train_targets", "train")
        ]
        try:
            for done, (row, day) in enumerate(enumerate(history), start=1):
                position = int(grid.dates.get_indexer([day])[0])
                universe = universe_at(tokens, position, rules)
                kept = universe[universe["kept"]]
                members = grid.assets.get_indexer(kept["asset"])
                values = np.full(len(grid.assets), np.nan)
                values[members] = forward.iloc[row].to_numpy()[members]
                target = bin_cross_sections(values)[0][members]
                known = np.isfinite(target)
                if known.sum() >= min_symbols:
                    order = np.argsort(kept[SYMBOL_COLUMN].to_numpy()[known], kind="stable")
                    chosen = members[known][order]
                    symbols = kept[SYMBOL_COLUMN].to_numpy()[known][order].astype(str)
                    for writer, table in zip(
                        writers, tables(position, chosen, symbols, target[known][order]), strict=True
                    ):
                        writer.write(table)
                    written_dates += 1
                tick("history dates", done, len(history))
        finally:
            for writer in writers:
                writer.close()
        live_position = len(grid.dates) - 1
        live_universe = universe_at(tokens, live_position, rules)
        kept = live_universe[live_universe["kept"]].sort_values(SYMBOL_COLUMN, kind="stable")
        members = grid.assets.get_indexer(kept["asset"])
        symbols = kept[SYMBOL_COLUMN].to_numpy().astype(str)
        write_table(
            public / "live_universe.parquet", pa.table({SYMBOL_COLUMN: pa.array(symbols, pa.string())})
        )
        write_table(public / "live.parquet", tables(live_position, members, symbols, None)[0])
        if private_dir is not None:
            report_table = pa.Table.from_pandas(live_universe, preserve_index=False)
            write_table(
                staged[1] / "live_universe_report.parquet", report_table.replace_schema_metadata(None)
            )
            files.update({f"private/{p.name}": p.stat().st_size for p in sorted(staged[1].iterdir())})
        files.update({p.name: p.stat().st_size for p in sorted(public.iterdir())})
        rows = writers[0].rows
        tick("write live", 1, 1)
    return CryptoBuildReport(
        version=version,
        version_dir=finals[0],
        private_dir=finals[1] if private_dir is not None else None,
        live_date=f"{grid.dates[-1]:%Y-%m-%d}",
        dates=written_dates,
        rows=rows,
        live_symbols=len(symbols),
        features=feature_names,
        live_universe=live_universe,
        files=files,
    )
