"""A synthetic market with known hidden alpha, so that every stage of the pipeline can be tested for
whether it keeps learnable signal.

The market is simulated day by day on a fixed number of *slots*: every slot always holds one listed
asset, and when an asset delists a new one lists in its slot on the next business day, so each date
has exactly ``assets`` rows and the panel has ``assets × days`` rows. Returns follow a factor model::

    r[t] = beta·f_market[t] + f_country[t] + f_sector[t] + Σ_style x_style[t-1]·f_style[t]
           + alpha[t] + eps[t]

with Student-t innovations and GARCH(1,1) volatility for every factor and every asset's ``eps``
(fat tails, volatility clustering). Style exposures (size, value, momentum, low volatility) are those
known at the previous close. ``alpha[t] = alpha_scale · idio_vol · Σ_k w_k[t-1]·s_k[t-1]``: a handful
of latent signals ``s_k`` (AR(1), half-lives of weeks to a year) whose strengths ``w_k`` drift slowly
and switch regime (on / faded / reversed), so today's signals predict the next 20 and 60 days'
idiosyncratic returns. All returns are log returns.

Raw features ``raw_000…`` are technicals computed from the panel's own prices, volumes and market
caps, plus noisy, lagged, transformed, partly redundant views of the latent signals mixed with
nuisance latents that predict nothing. Everything a feature uses is known at its date.

``kind="crypto"`` makes a token market instead: BTC, ETH and NMR always listed; stablecoins, wrapped
and liquid-staking tokens (near-duplicates of BTC/ETH); young and illiquid tokens (some with days of
zero volume); tokens without a known market cap (vendors show 0; the panel has NaN, since the contract
admits only positive market caps), always or in spells; duplicate symbols. ``country`` is the
placeholder ``"XX"`` and ``sector`` is ``"crypto"``; the ``industry`` column holds the token
category. Crypto uses business days too, like the equity market.

The ground truth (latent signals, strength paths, factor returns and exposures, the alpha and
residual part of every return, listing and delisting dates, token flags, what each feature is) is
returned in :class:`MarketTruth` and written beside the panel by :func:`write_market`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import ndimage, signal

Progress = Callable[[int, int], None]
Kind = Literal["equity", "crypto"]

PANEL_COLUMNS = ("date", "asset", "ticker", "country", "sector", "industry", "close", "volume", "market_cap")
STYLES = ("size", "value", "momentum", "low_volatility")
REGIMES = ("on", "faded", "reversed")
REGIME_MULTIPLIERS = np.array([1.0, 0.3, -0.5])
CRYPTO_COUNTRY = "XX"  # ISO 3166 user-assigned code: tokens have no country
CRYPTO_SECTOR = "crypto"
YOUNG_TOKEN_DAYS = 730  # calendar days; the Crypto universe drops tokens younger than 2 years
STUDENT_T_DOF = 5.0
GARCH_ALPHA, GARCH_BETA = 0.06, 0.92
PARQUET_ROW_GROUP_ROWS = 262_144
_MISSING = -1  # sentinel index for "no earlier row of this asset"

SECTORS: dict[str, tuple[str, ...]] = {
    "Energy": ("Oil & Gas Producers", "Integrated Oil & Gas", "Energy Equipment"),
    "Materials": ("Chemicals", "Metals & Mining", "Construction Materials", "Paper & Packaging"),
    "Industrials": ("Aerospace & Defense", "Machinery", "Transportation", "Construction & Engineering"),
    "Consumer Discretionary": ("Automobiles", "Retail", "Hotels & Restaurants", "Apparel"),
    "Consumer Staples": ("Food Products", "Beverages", "Household Products"),
    "Health Care": ("Pharmaceuticals", "Biotechnology", "Medical Devices"),
    "Financials": ("Banks", "Insurance", "Capital Markets"),
    "Information Technology": ("Software", "Semiconductors", "Hardware"),
    "Communication Services": ("Telecom Services", "Media", "Interactive Media"),
    "Utilities": ("Electric Utilities", "Gas Utilities", "Water Utilities"),
    "Real Estate": ("REITs", "Real Estate Development"),
}
SECTOR_WEIGHTS = (0.06, 0.07, 0.14, 0.11, 0.07, 0.12, 0.13, 0.13, 0.06, 0.04, 0.07)
# (country, share of assets, ticker style): letters, or a fixed number of digits as on that exchange.
COUNTRIES: tuple[tuple[str, float, str], ...] = (
    ("US", 0.34, "letters"),
    ("JP", 0.12, "digits4"),
    ("GB", 0.06, "letters"),
    ("CN", 0.07, "digits6"),
    ("CA", 0.04, "letters"),
    ("FR", 0.04, "letters"),
    ("DE", 0.04, "letters"),
    ("KR", 0.05, "digits6"),
    ("TW", 0.05, "digits4"),
    ("CH", 0.03, "letters"),
    ("AU", 0.04, "letters"),
    ("HK", 0.04, "digits4"),
    ("IN", 0.08, "letters"),
)
CRYPTO_CATEGORIES = ("layer1", "layer2", "defi", "meme", "exchange", "gaming", "ai", "infrastructure")
CRYPTO_CATEGORY_WEIGHTS = (0.16, 0.1, 0.22, 0.16, 0.06, 0.1, 0.08, 0.12)
SPECIAL_CATEGORIES = ("stablecoin", "wrapped", "liquid-staking")
STABLECOIN_SYMBOLS = ("USDT", "USDC", "DAI", "FDUSD", "TUSD", "USDD", "PYUSD", "USDP", "GUSD", "FRAX")
WRAPPED_SYMBOLS = (("WBTC", "BTC"), ("WETH", "ETH"), ("BTCB", "BTC"), ("CBBTC", "BTC"), ("TBTC", "BTC"))
LIQUID_STAKING_SYMBOLS = (("STETH", "ETH"), ("RETH", "ETH"), ("CBETH", "ETH"), ("WSTETH", "ETH"))
MAJORS = (("BTC", "layer1", 3.0e11, 1.0e3), ("ETH", "layer1", 1.0e11, 1.0e2), ("NMR", "ai", 1.5e8, 20.0))


@dataclass(frozen=True)
class _KindSpec:
    market_vol: float  # daily, log-return units
    group_vol: float  # country and sector factors (equity), category factor (crypto)
    style_vol: float
    idio_vol_median: float
    idio_vol_log_sd: float
    annual_delisting_rate: float
    mean_age_years_at_start: float
    log_cap_median: float
    log_cap_sd: float
    log_price_median: float
    log_price_sd: float
    turnover_median: float  # daily dollar volume / market cap
    alpha_scale: float  # daily alpha per unit alpha score, in units of the asset's idiosyncratic vol
    prefix: str


EQUITY = _KindSpec(
    market_vol=0.009,
    group_vol=0.005,
    style_vol=0.003,
    idio_vol_median=0.014,
    idio_vol_log_sd=0.35,
    annual_delisting_rate=0.04,
    mean_age_years_at_start=12.0,
    log_cap_median=math.log(2.0e9),
    log_cap_sd=1.5,
    log_price_median=math.log(25.0),
    log_price_sd=1.0,
    turnover_median=0.004,
    alpha_scale=0.02,
    prefix="A",
)
CRYPTO = _KindSpec(
    market_vol=0.03,
    group_vol=0.015,
    style_vol=0.006,
    idio_vol_median=0.035,
    idio_vol_log_sd=0.3,
    annual_delisting_rate=0.2,
    mean_age_years_at_start=2.5,
    log_cap_median=math.log(8.0e7),
    log_cap_sd=2.0,
    log_price_median=math.log(1.0),
    log_price_sd=2.5,
    turnover_median=0.04,
    alpha_scale=0.02,
    prefix="T",
)


@dataclass
class MarketTruth:
    """What generated the market: the answers a test may compare the pipeline against.

    ``signals`` is row-aligned with the panel (date, asset, latent ``signal_k`` at the close of
    ``date``, ``alpha_score`` = Σ w_k·s_k, ``expected_alpha`` = the next day's expected alpha log
    return, realised ``alpha_return`` / ``residual_return`` / ``return`` of ``date`` (NaN on a listing
    day), factor exposures known at the close). ``strengths`` holds w_k and the regime per date,
    ``factor_returns`` the factor log returns, ``assets`` one row per asset with listing dates and
    flags, ``features`` what each raw feature is, ``params`` the generator's arguments.
    """

    signals: pd.DataFrame
    strengths: pd.DataFrame
    factor_returns: pd.DataFrame
    assets: pd.DataFrame
    features: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class SyntheticMarket:
    """A market panel in the crowdalpha contract plus the ground truth that generated it."""

    panel: pd.DataFrame
    truth: MarketTruth


# ---------------------------------------------------------------------------------------------------------
# public API


def generate_market(
    assets: int = 2000,
    days: int = 3000,
    seed: int = 7,
    kind: Kind = "equity",
    start: str = "2012-01-02",
    n_raw_features: int = 120,
    *,
    n_signals: int = 5,
    alpha_strength: float = 1.0,
    missing_rate: float = 0.005,
    progress: Progress | None = None,
) -> SyntheticMarket:
    """Return a synthetic market: a panel of ``assets`` listed assets on each of ``days`` business days
    (log-return factor model with hidden alpha, prices in USD) and its ground truth."""
    _check_arguments(assets, days, seed, kind, n_raw_features, n_signals, alpha_strength, missing_rate)
    assets, days, seed, n_raw_features, n_signals = map(int, (assets, days, seed, n_raw_features, n_signals))
    alpha_strength, missing_rate = float(alpha_strength), float(missing_rate)
    spec = EQUITY if kind == "equity" else CRYPTO
    dates = pd.bdate_range(_first_date(start), periods=days).astype("datetime64[ns]")
    rngs = _streams(seed)
    n_technicals = _technical_count(n_raw_features)
    total_steps = days + n_raw_features + 1
    report = _Reporter(progress, total_steps)

    book = _draw_listings(assets, days, kind, spec, rngs["listings"])
    _draw_asset_attributes(book, kind, spec, dates, rngs["attributes"])
    strengths, regimes, signal_half_lives = _draw_strength_paths(days, n_signals, rngs["strengths"])
    factors = _draw_factor_returns(days, kind, spec, book, rngs["factors"])
    n_nuisance = max(8, 2 * n_signals)
    nuisance_half_lives = np.geomspace(5.0, 500.0, n_nuisance)
    sim = _simulate(
        book,
        spec,
        factors,
        strengths,
        np.concatenate([signal_half_lives, nuisance_half_lives]),
        n_signals,
        alpha_strength,
        rngs["simulation"],
        report,
    )
    _draw_trading_activity(book, sim, kind, spec, rngs["volume"])

    features, feature_info = _build_features(
        book,
        sim,
        n_technicals,
        n_raw_features - n_technicals,
        n_signals,
        missing_rate,
        rngs["features"],
        report,
    )
    panel, truth_rows = _assemble(book, sim, dates, features, n_signals)
    report.step()
    params = {
        "assets": assets,
        "days": days,
        "seed": seed,
        "kind": kind,
        "start": str(dates[0].date()),
        "n_raw_features": n_raw_features,
        "n_signals": n_signals,
        "alpha_strength": alpha_strength,
        "missing_rate": missing_rate,
        "alpha_scale": spec.alpha_scale * alpha_strength,
        "signal_half_lives_days": [float(h) for h in signal_half_lives],
        "regimes": dict(zip(REGIMES, REGIME_MULTIPLIERS.tolist(), strict=True)),
        "return_units": "daily log returns",
    }
    truth = MarketTruth(
        signals=truth_rows,
        strengths=_strength_frame(dates, strengths, regimes),
        factor_returns=pd.concat([pd.DataFrame({"date": dates}), factors.frame], axis=1),
        assets=_asset_frame(book, dates),
        features=pd.DataFrame(feature_info),
        params=params,
    )
    return SyntheticMarket(panel=panel, truth=truth)


def write_market(
    market: SyntheticMarket, path: str | os.PathLike[str], progress: Progress | None = None
) -> Path:
    """Write the panel to ``path`` (Parquet, zstd, deterministic bytes) and the truth beside it as
    ``<stem>.truth.parquet`` and ``<stem>.truth.json``; return the panel's path."""
    target = Path(path)
    truth_parquet, truth_json = truth_paths(target)
    outputs = [target, truth_parquet, truth_json]
    temporaries = [p.with_name(f".{p.name}.partial") for p in outputs]
    panel_groups = _row_group_bounds(market.panel)
    truth_groups = _row_group_bounds(market.truth.signals)
    report = _Reporter(progress, len(panel_groups) + len(truth_groups) + 1)
    try:
        write_parquet_deterministic(market.panel, temporaries[0], panel_groups, report.step)
        write_parquet_deterministic(market.truth.signals, temporaries[1], truth_groups, report.step)
        temporaries[2].write_text(json.dumps(_truth_document(market.truth), indent=1) + "\n")
        report.step()
        for temporary, output in zip(temporaries, outputs, strict=True):
            os.replace(temporary, output)
    except BaseException:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        raise
    return target


def read_market(path: str | os.PathLike[str]) -> SyntheticMarket:
    """Return the synthetic market written by :func:`write_market` at ``path`` (panel and truth)."""
    target = Path(path)
    truth_parquet, truth_json = truth_paths(target)
    document = json.loads(truth_json.read_text())
    frames = {
        name: _frame_from_records(document[name])
        for name in ("strengths", "factor_returns", "assets", "features")
    }
    truth = MarketTruth(signals=pd.read_parquet(truth_parquet), params=document["params"], **frames)
    return SyntheticMarket(panel=pd.read_parquet(target), truth=truth)


def truth_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Return the paths of the truth Parquet and JSON files that belong beside a panel at ``path``."""
    target = Path(path)
    stem = target.name[: -len(target.suffix)] if target.suffix else target.name
    return target.with_name(f"{stem}.truth.parquet"), target.with_name(f"{stem}.truth.json")


def forward_sum(
    truth_signals: pd.DataFrame, horizon: int, column: str = "residual_return", lag: int = 0
) -> pd.Series:
    """Return, per row, the sum of ``column`` (log returns) over days t+lag+1 … t+lag+horizon of the
    same asset; NaN when the asset is not listed on all of those days."""
    if horizon < 1 or lag < 0:
        raise ValueError(f"horizon must be >= 1 and lag >= 0 (got horizon={horizon}, lag={lag})")
    date_row, dates = pd.factorize(truth_signals["date"], sort=True)
    asset_column, assets = pd.factorize(truth_signals["asset"])
    shape = (len(dates) + 1, len(assets))
    values = np.zeros(shape)
    listed = np.zeros(shape)
    # Row 0 stays zero so that cumulative[d] is the sum over dates before d.
    values[date_row + 1, asset_column] = np.nan_to_num(truth_signals[column].to_numpy(dtype=np.float64))
    listed[date_row + 1, asset_column] = 1.0
    cumulative, count = np.cumsum(values, axis=0), np.cumsum(listed, axis=0)
    begin = date_row + lag + 1  # first date of the window (0-based date index)
    end = begin + horizon  # one past the last
    inside = end <= len(dates)
    clipped_begin, clipped_end = np.minimum(begin, len(dates)), np.minimum(end, len(dates))
    total = cumulative[clipped_end, asset_column] - cumulative[clipped_begin, asset_column]
    complete = inside & (count[clipped_end, asset_column] - count[clipped_begin, asset_column] == horizon)
    return pd.Series(
        np.where(complete, total, np.nan), index=truth_signals.index, name=f"{column}_forward_{horizon}d"
    )


def write_parquet_deterministic(
    frame: pd.DataFrame,
    path: str | os.PathLike[str],
    row_groups: list[tuple[int, int]] | None = None,
    on_row_group: Callable[[], None] | None = None,
) -> None:
    """Write ``frame`` to Parquet with fixed options (zstd; dictionary for text and dates, byte-stream-split
    for floats; fixed row groups), so equal frames give equal bytes."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    text_columns = [
        name
        for name, kind in zip(table.schema.names, table.schema.types, strict=True)
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_timestamp(kind)
    ]
    float_columns = [
        name
        for name, kind in zip(table.schema.names, table.schema.types, strict=True)
        if pa.types.is_floating(kind)
    ]
    bounds = row_groups or [(0, table.num_rows)]
    with pq.ParquetWriter(
        path,
        table.schema,
        compression="zstd",
        compression_level=3,
        use_dictionary=text_columns,
        use_byte_stream_split=float_columns or False,
        write_statistics=True,
    ) as writer:
        for begin, end in bounds:
            writer.write_table(table.slice(begin, end - begin), row_group_size=max(1, end - begin))
            if on_row_group is not None:
                on_row_group()


# ---------------------------------------------------------------------------------------------------------
# arguments, randomness, progress


def _check_arguments(
    assets: int,
    days: int,
    seed: int,
    kind: str,
    n_raw_features: int,
    n_signals: int,
    alpha_strength: float,
    missing_rate: float,
) -> None:
    if kind not in ("equity", "crypto"):
        raise ValueError(f"kind must be 'equity' or 'crypto' (got {kind!r})")

    def is_integer(value: object) -> bool:
        return isinstance(value, int | np.integer) and not isinstance(value, bool)

    minimum_assets = 20 if kind == "equity" else 30
    if not is_integer(assets) or assets < minimum_assets:
        raise ValueError(f"assets must be an integer >= {minimum_assets} for kind={kind!r} (got {assets!r})")
    if not is_integer(days) or days < 2:
        raise ValueError(f"days must be an integer >= 2 (got {days!r})")
    if not is_integer(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer (got {seed!r})")
    if not is_integer(n_raw_features) or n_raw_features < 1:
        raise ValueError(f"n_raw_features must be an integer >= 1 (got {n_raw_features!r})")
    if not is_integer(n_signals) or n_signals < 1:
        raise ValueError(f"n_signals must be an integer >= 1 (got {n_signals!r})")
    if not (alpha_strength >= 0 and math.isfinite(alpha_strength)):
        raise ValueError(f"alpha_strength must be finite and >= 0 (got {alpha_strength!r})")
    if not 0 <= missing_rate < 0.5:
        raise ValueError(f"missing_rate must be in [0, 0.5) (got {missing_rate!r})")
    if assets * days > 50_000_000:
        raise ValueError(f"assets × days = {assets * days:,} rows is more than the 50,000,000 supported")


def _first_date(start: str) -> pd.Timestamp:
    try:
        first = pd.Timestamp(start)
    except (TypeError, ValueError):
        raise ValueError(f"start must be a date such as 2012-01-02 (got {start!r})") from None
    if pd.isna(first) or first != first.normalize() or first.tz is not None:
        raise ValueError(f"start must be a date such as 2012-01-02, without time or zone (got {start!r})")
    return first


_STREAMS = ("listings", "attributes", "strengths", "factors", "simulation", "volume", "features")


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence([seed, 0xC0A1FA]).spawn(len(_STREAMS))
    return {
        name: np.random.Generator(np.random.PCG64(child))
        for name, child in zip(_STREAMS, children, strict=True)
    }


class _Reporter:
    def __init__(self, callback: Progress | None, total: int) -> None:
        self.callback, self.total, self.done = callback, total, 0

    def step(self, count: int = 1) -> None:
        self.done += count
        if self.callback is not None:
            self.callback(min(self.done, self.total), self.total)


# ---------------------------------------------------------------------------------------------------------
# listings: which asset sits in which slot on which day


@dataclass
class _Book:
    """Per-asset attributes (arrays of length n_assets) and the slot layout (arrays of shape days × slots)."""

    n_slots: int
    n_days: int
    slot_asset: np.ndarray  # (T, N) int: asset index in each slot on each day
    slot_start: np.ndarray  # (T, N) int: first day of the slot's current asset
    first_day: np.ndarray  # per asset
    last_day: np.ndarray  # per asset (inclusive)
    slot_of: np.ndarray  # per asset
    protected: np.ndarray  # per asset: never delists (majors, bases, special tokens)
    prefix: str = "A"
    attrs: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_assets(self) -> int:
        return len(self.first_day)


def _draw_listings(n_slots: int, n_days: int, kind: str, spec: _KindSpec, rng: np.random.Generator) -> _Book:
    n_protected = _crypto_special_count(n_slots) if kind == "crypto" else 0
    daily_hazard = 1.0 - (1.0 - spec.annual_delisting_rate) ** (1 / 252)
    segments: list[tuple[int, int, int]] = []  # (first_day, last_day, slot)
    for slot in range(n_slots):
        day = 0
        while day < n_days:
            life = n_days if slot < n_protected else int(rng.geometric(daily_hazard))
            last = min(day + life - 1, n_days - 1)
            segments.append((day, last, slot))
            day = last + 1
    # Asset indices follow listing order (day, then slot); ids are drawn later to sort in slot order.
    order = sorted(range(len(segments)), key=lambda i: (segments[i][0], segments[i][2]))
    first_day = np.array([segments[i][0] for i in order], dtype=np.int64)
    last_day = np.array([segments[i][1] for i in order], dtype=np.int64)
    slot_of = np.array([segments[i][2] for i in order], dtype=np.int64)
    slot_asset = np.empty((n_days, n_slots), dtype=np.int64)
    slot_start = np.empty((n_days, n_slots), dtype=np.int64)
    for asset, (first, last, slot) in enumerate(zip(first_day, last_day, slot_of, strict=True)):
        slot_asset[first : last + 1, slot] = asset
        slot_start[first : last + 1, slot] = first
    protected = np.zeros(len(first_day), dtype=bool)
    protected[:n_protected] = True  # initial assets in the first slots are indices 0..n_protected-1
    return _Book(
        n_slots, n_days, slot_asset, slot_start, first_day, last_day, slot_of, protected, spec.prefix
    )


def _crypto_special_count(n_slots: int) -> int:
    stable, wrapped, staking = _crypto_special_sizes(n_slots)
    return len(MAJORS) + stable + wrapped + staking


def _crypto_special_sizes(n_slots: int) -> tuple[int, int, int]:
    return max(2, round(0.02 * n_slots)), max(2, round(0.01 * n_slots)), max(2, round(0.01 * n_slots))


# ---------------------------------------------------------------------------------------------------------
# asset attributes


def _draw_asset_attributes(
    book: _Book, kind: str, spec: _KindSpec, dates: pd.DatetimeIndex, rng: np.random.Generator
) -> None:
    n = book.n_assets
    log_cap = rng.normal(spec.log_cap_median, spec.log_cap_sd, n)
    log_price = rng.normal(spec.log_price_median, spec.log_price_sd, n)
    idio_vol = spec.idio_vol_median * np.exp(rng.normal(0.0, spec.idio_vol_log_sd, n))
    beta = np.clip(rng.normal(1.0, 0.3, n), 0.2, 2.2)
    age_days = rng.geometric(1.0 / (spec.mean_age_years_at_start * 252), n)
    listing_day = np.where(book.first_day == 0, -age_days, book.first_day)
    attrs = book.attrs
    attrs["listing_day"] = listing_day
    attrs["turnover"] = spec.turnover_median * np.exp(rng.normal(0.0, 0.6, n))
    attrs["alpha_loading"] = np.ones(n)
    attrs["base"] = np.full(n, -1, dtype=np.int64)
    attrs["illiquid"] = np.zeros(n, dtype=bool)
    attrs["zero_cap_always"] = np.zeros(n, dtype=bool)
    attrs["zero_cap_spells"] = np.zeros(n, dtype=bool)
    attrs["duplicate_of"] = np.full(n, -1, dtype=np.int64)
    if kind == "equity":
        country_index = rng.choice(len(COUNTRIES), size=n, p=_normalised([c[1] for c in COUNTRIES]))
        sector_index = rng.choice(len(SECTORS), size=n, p=_normalised(SECTOR_WEIGHTS))
        sector_names = list(SECTORS)
        industry = np.array(
            [SECTORS[sector_names[s]][rng.integers(len(SECTORS[sector_names[s]]))] for s in sector_index],
            dtype=object,
        )
        attrs["country_index"] = country_index
        attrs["group_index"] = sector_index  # the group factor is the sector
        attrs["country"] = np.array([COUNTRIES[c][0] for c in country_index], dtype=object)
        attrs["sector"] = np.array([sector_names[s] for s in sector_index], dtype=object)
        attrs["industry"] = industry
        attrs["category"] = np.full(n, "", dtype=object)
        attrs["ticker"] = _equity_tickers(country_index, rng)
    else:
        _draw_crypto_attributes(book, log_cap, log_price, idio_vol, beta, rng)
    attrs["log_cap"], attrs["log_price"], attrs["idio_vol"], attrs["beta"] = (
        log_cap,
        log_price,
        idio_vol,
        beta,
    )
    attrs["log_shares"] = log_cap - log_price
    attrs["value"] = rng.standard_normal(n)
    attrs["id"] = _draw_asset_ids(book, rng)


def _normalised(weights: Any) -> np.ndarray:
    array = np.asarray(weights, dtype=np.float64)
    return array / array.sum()


def _equity_tickers(country_index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    used: set[tuple[int, str]] = set()
    tickers = np.empty(len(country_index), dtype=object)
    for asset, country in enumerate(country_index):
        style = COUNTRIES[country][2]
        while True:
            if style == "letters":
                ticker = "".join(rng.choice(letters, size=int(rng.integers(2, 5))))
            elif style == "digits4":
                ticker = f"{int(rng.integers(1000, 10000)):04d}"
            else:
                ticker = f"{int(rng.integers(0, 1_000_000)):06d}"
            if (country, ticker) not in used:
                used.add((country, ticker))
                tickers[asset] = ticker
                break
    return tickers


def _draw_crypto_attributes(
    book: _Book,
    log_cap: np.ndarray,
    log_price: np.ndarray,
    idio_vol: np.ndarray,
    beta: np.ndarray,
    rng: np.random.Generator,
) -> None:
    n = book.n_assets
    attrs = book.attrs
    category = np.array(
        [
            CRYPTO_CATEGORIES[i]
            for i in rng.choice(len(CRYPTO_CATEGORIES), n, p=_normalised(CRYPTO_CATEGORY_WEIGHTS))
        ],
        dtype=object,
    )
    symbols = _crypto_symbols(n, rng)
    n_stable, n_wrapped, n_staking = _crypto_special_sizes(book.n_slots)
    index = 0
    for symbol, cat, cap, price in MAJORS:
        symbols[index], category[index] = symbol, cat
        log_cap[index], log_price[index] = math.log(cap), math.log(price)
        idio_vol[index] *= 0.6
        beta[index] = 1.0
        index += 1
    symbol_index = {symbol: i for i, (symbol, *_rest) in enumerate(MAJORS)}
    for k in range(n_stable):
        symbols[index] = STABLECOIN_SYMBOLS[k] if k < len(STABLECOIN_SYMBOLS) else f"USD{_letters(k, 2)}"
        category[index] = "stablecoin"
        log_cap[index], log_price[index] = rng.normal(math.log(5e9), 1.2), 0.0
        attrs["alpha_loading"][index], beta[index] = 0.0, 0.0
        index += 1
    for group, names, size in (
        ("wrapped", WRAPPED_SYMBOLS, n_wrapped),
        ("liquid-staking", LIQUID_STAKING_SYMBOLS, n_staking),
    ):
        for k in range(size):
            if k < len(names):
                symbol, base_symbol = names[k]
            else:
                base_symbol = "BTC" if group == "wrapped" and k % 2 == 0 else "ETH"
                symbol = f"{'W' if group == 'wrapped' else 'ST'}{base_symbol}{_letters(k, 1)}"
            base = symbol_index[base_symbol]
            symbols[index], category[index] = symbol, group
            attrs["base"][index] = base
            log_cap[index] = log_cap[base] - rng.uniform(1.5, 4.0)
            log_price[index] = log_price[base]
            index += 1
    normal = np.flatnonzero(~book.protected)
    meme = normal[category[normal] == "meme"]
    idio_vol[meme] *= 1.6
    log_price[meme] -= 6.0  # fractions of a cent
    attrs["illiquid"][normal] = rng.random(len(normal)) < 0.15
    attrs["turnover"][attrs["illiquid"]] *= rng.uniform(1e-4, 1e-3, int(attrs["illiquid"].sum()))
    zero_draw = rng.random(len(normal))
    attrs["zero_cap_always"][normal[zero_draw < 0.05]] = True
    attrs["zero_cap_spells"][normal[(zero_draw >= 0.05) & (zero_draw < 0.10)]] = True
    n_duplicates = max(1, round(0.005 * n))
    if len(normal) >= 2 * n_duplicates:
        chosen = rng.choice(normal, size=2 * n_duplicates, replace=False)
        for original, copy in zip(chosen[:n_duplicates], chosen[n_duplicates:], strict=True):
            earlier, later = sorted((int(original), int(copy)))
            symbols[later] = symbols[earlier]
            attrs["duplicate_of"][later] = earlier
            attrs["duplicate_of"][earlier] = later
    categories = ["stablecoin", "wrapped", "liquid-staking", *CRYPTO_CATEGORIES]
    attrs["group_index"] = np.array([categories.index(c) for c in category])
    attrs["country_index"] = np.zeros(n, dtype=np.int64)
    attrs["country"] = np.full(n, CRYPTO_COUNTRY, dtype=object)
    attrs["sector"] = np.full(n, CRYPTO_SECTOR, dtype=object)
    attrs["industry"] = category
    attrs["category"] = category
    attrs["ticker"] = symbols


def _letters(number: int, width: int) -> str:
    text = ""
    for _ in range(width):
        number, rest = divmod(number, 26)
        text = chr(65 + rest) + text
    return text


def _crypto_symbols(n: int, rng: np.random.Generator) -> np.ndarray:
    reserved = {s for s, *_ in MAJORS} | set(STABLECOIN_SYMBOLS)
    reserved |= {s for s, _ in WRAPPED_SYMBOLS} | {s for s, _ in LIQUID_STAKING_SYMBOLS}
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    symbols = np.empty(n, dtype=object)
    for i in range(n):
        while True:
            symbol = "".join(rng.choice(letters, size=int(rng.integers(3, 6))))
            if symbol not in reserved:
                reserved.add(symbol)
                symbols[i] = symbol
                break
    return symbols


# ---------------------------------------------------------------------------------------------------------
# alpha strengths and factor returns


def _draw_strength_paths(
    n_days: int, n_signals: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    base = np.abs(rng.standard_normal(n_signals)) + 0.5
    base /= np.linalg.norm(base)
    half_lives = np.geomspace(15.0, 250.0, n_signals) if n_signals > 1 else np.array([60.0])
    drift_sd, drift_phi = 0.35, math.exp(-1.0 / 250.0)
    shocks = rng.standard_normal((n_days, n_signals)) * drift_sd * math.sqrt(1 - drift_phi**2)
    shocks[0] = rng.standard_normal(n_signals) * drift_sd
    drift = signal.lfilter([1.0], [1.0, -drift_phi], shocks, axis=0)
    leave = np.array([[0.0, 1 / 600, 1 / 1800], [1 / 150, 0.0, 0.0], [1 / 80, 0.0, 0.0]])
    stay = 1.0 - leave.sum(axis=1)
    transition = leave + np.diag(stay)
    cumulative = np.cumsum(transition, axis=1)
    uniforms = rng.random((n_days, n_signals))
    regimes = np.zeros((n_days, n_signals), dtype=np.int64)
    state = np.zeros(n_signals, dtype=np.int64)
    for day in range(1, n_days):
        state = (uniforms[day, :, None] > cumulative[state]).sum(axis=1)
        regimes[day] = state
    strengths = base * np.exp(drift - drift_sd**2 / 2) * REGIME_MULTIPLIERS[regimes]
    return strengths, regimes, half_lives


@dataclass
class _Factors:
    market: np.ndarray  # (T,)
    group: np.ndarray  # (T, n_groups): sector (equity) or category (crypto)
    country: np.ndarray  # (T, n_countries)
    style: np.ndarray  # (T, 4)
    frame: pd.DataFrame


def _garch_path(
    n_days: int, n_series: int, vol: np.ndarray, mean: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    innovations = rng.standard_t(STUDENT_T_DOF, (n_days, n_series)) / math.sqrt(
        STUDENT_T_DOF / (STUDENT_T_DOF - 2)
    )
    variance = vol**2
    omega = variance * (1 - GARCH_ALPHA - GARCH_BETA)
    out = np.empty((n_days, n_series))
    current = variance.copy()
    for day in range(n_days):
        shock = np.sqrt(current) * innovations[day]
        out[day] = mean + shock
        current = np.minimum(omega + GARCH_ALPHA * shock**2 + GARCH_BETA * current, 25 * variance)
    return out


def _draw_factor_returns(
    n_days: int, kind: str, spec: _KindSpec, book: _Book, rng: np.random.Generator
) -> _Factors:
    if kind == "equity":
        group_names = [f"sector:{name}" for name in SECTORS]
        country_names = [f"country:{code}" for code, _, _ in COUNTRIES]
    else:
        group_names = [
            f"category:{name}" for name in ("stablecoin", "wrapped", "liquid-staking", *CRYPTO_CATEGORIES)
        ]
        country_names = []
    n_group, n_country = len(group_names), len(country_names)
    vols = np.concatenate(
        [
            [spec.market_vol],
            np.full(n_group + n_country, spec.group_vol),
            np.full(len(STYLES), spec.style_vol),
        ]
    )
    # Small style premia (daily): small caps lag, value/momentum/low-vol earn a little.
    means = np.concatenate([[2e-4], np.zeros(n_group + n_country), [-5e-5, 8e-5, 1e-4, 6e-5]])
    path = _garch_path(n_days, len(vols), vols, means, rng)
    path[0] = 0.0
    if kind == "crypto":
        path[:, 1:4] = 0.0  # stablecoin / wrapped / liquid-staking move with their peg or base instead
    market = path[:, 0]
    group = path[:, 1 : 1 + n_group]
    country = path[:, 1 + n_group : 1 + n_group + n_country] if n_country else np.zeros((n_days, 1))
    style = path[:, 1 + n_group + n_country :]
    names = ["market", *group_names, *country_names, *STYLES]
    frame = pd.DataFrame(path.astype(np.float64), columns=names)
    return _Factors(market, group, country, style, frame)


# ---------------------------------------------------------------------------------------------------------
# the day-by-day simulation


@dataclass
class _Simulation:
    log_price: np.ndarray  # (T, N) float64
    returns: np.ndarray  # (T, N) float64, NaN on listing days
    alpha: np.ndarray  # (T, N) float32, realised alpha log return
    residual: np.ndarray  # (T, N) float32, alpha + idiosyncratic noise
    latents: np.ndarray  # (L, T, N) float32: signals then nuisance latents, at the close
    alpha_score: np.ndarray  # (T, N) float32
    exposures: dict[str, np.ndarray]  # name -> (T, N) float32, known at the close
    log_cap: np.ndarray  # (T, N) float64, true market cap
    idio_vol: np.ndarray  # (T, N) float32 baseline idiosyncratic vol of the slot's asset
    alpha_scale: float  # daily alpha log return per unit alpha score and unit idiosyncratic vol
    dollar_volume: np.ndarray = field(default_factory=lambda: np.empty(0))
    reported_cap: np.ndarray = field(default_factory=lambda: np.empty(0))
    volume: np.ndarray = field(default_factory=lambda: np.empty(0))


def _zscore(values: np.ndarray) -> np.ndarray:
    centred = values - values.mean()
    scale = centred.std()
    return np.clip(centred / scale, -3.0, 3.0) if scale > 0 else np.zeros_like(values)


def _simulate(
    book: _Book,
    spec: _KindSpec,
    factors: _Factors,
    strengths: np.ndarray,
    half_lives: np.ndarray,
    n_signals: int,
    alpha_strength: float,
    rng: np.random.Generator,
    report: _Reporter,
) -> _Simulation:
    n_days, n_slots = book.n_days, book.n_slots
    attrs = book.attrs
    n_latent = len(half_lives)
    phi = np.exp(-math.log(2.0) / half_lives)[:, None]
    innovation_scale = np.sqrt(1.0 - phi**2)
    value_phi = math.exp(-math.log(2.0) / 500.0)

    log_price = np.empty((n_days, n_slots))
    returns = np.full((n_days, n_slots), np.nan)
    alpha_out = np.zeros((n_days, n_slots), dtype=np.float32)
    residual_out = np.full((n_days, n_slots), np.nan, dtype=np.float32)
    latents = np.empty((n_latent, n_days, n_slots), dtype=np.float32)
    score_out = np.empty((n_days, n_slots), dtype=np.float32)
    exposures = {name: np.empty((n_days, n_slots), dtype=np.float32) for name in ("beta", *STYLES)}
    log_cap_out = np.empty((n_days, n_slots))

    asset = book.slot_asset[0].copy()
    state = rng.standard_normal((n_latent, n_slots))
    value = attrs["value"][asset].copy()
    variance = attrs["idio_vol"][asset] ** 2
    log_price_now = attrs["log_price"][asset].copy()
    alpha_scale = spec.alpha_scale * alpha_strength
    base = attrs["base"]
    stable_slots = np.flatnonzero(attrs["category"][asset] == "stablecoin")
    derived_slots = np.flatnonzero(base[asset] >= 0)
    derived_base_slots = book.slot_of[base[asset[derived_slots]]] if len(derived_slots) else derived_slots
    derived_noise = np.where(attrs["category"][asset[derived_slots]] == "wrapped", 0.003, 0.006)
    staking_yield = np.where(attrs["category"][asset[derived_slots]] == "liquid-staking", 0.04 / 252, 0.0)
    peg_deviation = np.zeros(len(stable_slots))
    group_index, country_index = attrs["group_index"], attrs["country_index"]
    columns = np.arange(n_slots)

    score = np.zeros(n_slots)
    reported = 0
    t_scale = math.sqrt(STUDENT_T_DOF / (STUDENT_T_DOF - 2))
    for day in range(n_days):
        new = book.slot_start[day] == day
        if day > 0:
            asset = book.slot_asset[day]
            idio_vol = attrs["idio_vol"][asset]
            innovations = rng.standard_t(STUDENT_T_DOF, n_slots) / t_scale
            eps = np.sqrt(variance) * innovations
            style_part = (
                exposures["size"][day - 1] * factors.style[day, 0]
                + exposures["value"][day - 1] * factors.style[day, 1]
                + exposures["momentum"][day - 1] * factors.style[day, 2]
                + exposures["low_volatility"][day - 1] * factors.style[day, 3]
            )
            systematic = (
                attrs["beta"][asset] * factors.market[day]
                + factors.group[day, group_index[asset]]
                + factors.country[day, country_index[asset]]
                + style_part
            )
            alpha = alpha_scale * idio_vol * score
            residual = alpha + eps
            today = systematic + residual
            if len(stable_slots):
                peg_deviation = 0.85 * peg_deviation + 0.0015 * rng.standard_normal(len(stable_slots))
                target = np.log1p(np.clip(peg_deviation, -0.2, 0.2))
                today[stable_slots] = target - log_price_now[stable_slots]
                residual[stable_slots] = today[stable_slots]
                alpha[stable_slots] = 0.0
            if len(derived_slots):
                noise = derived_noise * rng.standard_normal(len(derived_slots))
                today[derived_slots] = today[derived_base_slots] + noise + staking_yield
                residual[derived_slots] = residual[derived_base_slots] + noise
                alpha[derived_slots] = alpha[derived_base_slots]
            variance = np.minimum(
                variance * GARCH_BETA + GARCH_ALPHA * eps**2 + (1 - GARCH_ALPHA - GARCH_BETA) * idio_vol**2,
                25 * idio_vol**2,
            )
            log_price_now = log_price_now + today
            returns[day] = np.where(new, np.nan, today)
            alpha_out[day] = np.where(new, 0.0, alpha)
            residual_out[day] = np.where(new, np.nan, residual)
            state = phi * state + innovation_scale * rng.standard_normal((n_latent, n_slots))
            value = value_phi * value + math.sqrt(1 - value_phi**2) * rng.standard_normal(n_slots)
            if new.any():
                fresh = asset[new]
                log_price_now[new] = attrs["log_price"][fresh]
                variance[new] = attrs["idio_vol"][fresh] ** 2
                state[:, new] = rng.standard_normal((n_latent, int(new.sum())))
                value[new] = attrs["value"][fresh]
        if len(derived_slots):
            # Wrapped and staked tokens carry their base's latent signals: near-duplicate features.
            state[:, derived_slots] = state[:, derived_base_slots]
            value[derived_slots] = value[derived_base_slots]
        log_price[day] = log_price_now
        latents[:, day] = state
        asset_now = book.slot_asset[day]
        score = (strengths[day] @ state[:n_signals]) * attrs["alpha_loading"][asset_now]
        score_out[day] = score
        log_cap = log_price_now + attrs["log_shares"][asset_now]
        log_cap_out[day] = log_cap
        exposures["beta"][day] = attrs["beta"][asset_now]
        exposures["size"][day] = _zscore(log_cap)
        exposures["value"][day] = _zscore(value)
        exposures["momentum"][day] = _zscore(_momentum(log_price, book.slot_start[day], day, columns))
        exposures["low_volatility"][day] = -_zscore(np.log(variance))
        if (day + 1) % 100 == 0 or day == n_days - 1:
            report.step(day + 1 - reported)
            reported = day + 1
    return _Simulation(
        log_price=log_price,
        returns=returns,
        alpha=alpha_out,
        residual=residual_out,
        latents=latents,
        alpha_score=score_out,
        exposures=exposures,
        log_cap=log_cap_out,
        idio_vol=attrs["idio_vol"][book.slot_asset].astype(np.float32),
        alpha_scale=alpha_scale,
    )


def _momentum(log_price: np.ndarray, start: np.ndarray, day: int, columns: np.ndarray) -> np.ndarray:
    """Return the 12-1 month log return (t-250 … t-20) of each slot's asset, 0 without 60 days of history."""
    recent = day - 20
    if recent < 0:
        return np.zeros(len(columns))
    begin = np.maximum(day - 250, start)
    enough = (day - start) >= 60
    recent_rows = np.maximum(recent, start)
    value = log_price[recent_rows, columns] - log_price[begin, columns]
    return np.where(enough, value, 0.0)


def _draw_trading_activity(
    book: _Book, sim: _Simulation, kind: str, spec: _KindSpec, rng: np.random.Generator
) -> None:
    """Fill dollar volume (USD), volume (units) and the reported market cap (USD) from the simulated
    prices. Where a crypto data source knows no supply (vendors show a market cap of 0), the panel
    reports the market cap as missing (NaN): the contract only admits positive market caps."""
    attrs = book.attrs
    asset = book.slot_asset
    noise = signal.lfilter([math.sqrt(1 - 0.9**2)], [1.0, -0.9], rng.standard_normal(asset.shape), axis=0)
    shock = np.abs(np.nan_to_num(sim.returns)) / sim.idio_vol
    turnover = attrs["turnover"][asset] * np.exp(0.5 * noise - 0.125) * (0.6 + 0.4 * np.minimum(shock, 5.0))
    dollar_volume = np.exp(sim.log_cap) * turnover
    reported_cap = np.exp(sim.log_cap)
    if kind == "crypto":
        quiet = attrs["illiquid"][asset] & (rng.random(asset.shape) < 0.2)
        dollar_volume[quiet] = 0.0
        reported_cap[attrs["zero_cap_always"][asset]] = np.nan
        reported_cap[_zero_cap_spells(book, rng)] = np.nan
    sim.dollar_volume = dollar_volume
    sim.volume = dollar_volume / np.exp(sim.log_price)
    sim.reported_cap = reported_cap


def _zero_cap_spells(book: _Book, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((book.n_days, book.n_slots), dtype=bool)
    for asset in np.flatnonzero(book.attrs["zero_cap_spells"]):
        first, last, slot = book.first_day[asset], book.last_day[asset], book.slot_of[asset]
        length = last - first + 1
        for _ in range(int(rng.integers(1, 4))):
            spell = max(1, int(length * rng.uniform(0.02, 0.08)))
            begin = first + int(rng.integers(0, max(1, length - spell + 1)))
            mask[begin : begin + spell, slot] = True
    return mask


# ---------------------------------------------------------------------------------------------------------
# raw features

TECHNICALS = (
    "return_1d",
    "return_5d",
    "return_20d",
    "return_60d",
    "return_120d",
    "return_250d",
    "momentum_250d_skip_20d",
    "volatility_20d",
    "volatility_60d",
    "volatility_120d",
    "volatility_ratio_20d_120d",
    "distance_from_high_250d",
    "distance_from_low_250d",
    "rsi_14d",
    "max_return_20d",
    "log_dollar_volume_20d",
    "volume_ratio_5d_60d",
    "turnover_20d",
    "amihud_illiquidity_20d",
    "log_market_cap",
    "beta_250d",
    "idiosyncratic_volatility_60d",
    "book_to_price",
    "earnings_yield",
)


def _technical_count(n_raw_features: int) -> int:
    return min(len(TECHNICALS), max(1, round(0.2 * n_raw_features))) if n_raw_features > 1 else 0


class _Windows:
    """Trailing-window sums over each slot's current asset only (a new listing starts a new history)."""

    def __init__(self, start: np.ndarray) -> None:
        n_days, n_slots = start.shape
        self.start = start
        self.day = np.arange(n_days)[:, None]
        self.age = self.day - start  # days since the slot's asset listed
        self.n_slots = n_slots
        self.start_flat = (start * n_slots + np.arange(n_slots)[None, :]).reshape(-1)
        self.segment = np.cumsum(np.vstack([np.zeros((1, n_slots)), np.diff(start, axis=0) != 0]), axis=0)
        self._cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def lookback(self, values: np.ndarray, back: int) -> np.ndarray:
        """Return ``values`` at row max(t - back, listing row) of the same asset, for every row t."""
        if back == 0:
            return values
        out = np.empty_like(values)
        if back < len(values):
            out[back:] = values[:-back]
        clipped = (self.age < back).reshape(-1)
        out.reshape(-1)[clipped] = values.reshape(-1)[self.start_flat[clipped]]
        return out

    def sums(self, key: str, values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (sum, count) of finite ``values`` over the trailing ``window`` rows of each asset;
        cumulative sums are cached under ``key``."""
        if key not in self._cache:
            finite = np.isfinite(values)
            filled = np.where(finite, values, 0.0)
            self._cache[key] = (
                np.cumsum(filled, axis=0),
                np.cumsum(finite, axis=0, dtype=np.int32),
                filled.reshape(-1)[self.start_flat].reshape(values.shape),
                finite.reshape(-1)[self.start_flat].reshape(values.shape),
            )
        cumulative, counts, first_value, first_finite = self._cache[key]
        # Inclusive cumulative sums: subtract the sum up to the row before the window's first row.
        young = self.age < window
        before_sum = self.lookback(cumulative, window)
        before_sum -= np.where(young, first_value, 0.0)
        before_count = self.lookback(counts, window)
        before_count -= np.where(young, first_finite, 0).astype(np.int32)
        return cumulative - before_sum, counts - before_count

    def clear(self) -> None:
        self._cache.clear()

    def mean(self, key: str, values: np.ndarray, window: int, minimum: int) -> np.ndarray:
        total, count = self.sums(key, values, window)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count >= minimum, total / count, np.nan)

    def extreme(self, values: np.ndarray, window: int, minimum: int, highest: bool) -> np.ndarray:
        """Return the trailing max (or min) over each asset's own rows; NaN with too little history."""
        sign = 1.0 if highest else -1.0
        clean = np.where(np.isfinite(values), sign * values, -1e6)
        # Later listings in a slot get a larger offset, so an earlier asset's rows never win the max.
        shifted = clean + 1e7 * self.segment
        size = window
        rolled = ndimage.maximum_filter1d(shifted, size=size, axis=0, origin=(size - 1) // 2, mode="nearest")
        result = sign * (rolled - 1e7 * self.segment)
        return np.where(self.age + 1 >= minimum, result, np.nan)


def _technicals(
    book: _Book, sim: _Simulation, windows: _Windows, wanted: int
) -> list[tuple[str, np.ndarray]]:
    log_price = sim.log_price
    returns = sim.returns
    age = windows.age
    cap = np.where(sim.reported_cap > 0, sim.reported_cap, np.nan)
    weights = np.nan_to_num(np.exp(sim.log_cap))
    listed_return = np.isfinite(returns)
    market = np.where(listed_return, returns, 0.0) * weights
    market = market.sum(axis=1) / np.maximum((weights * listed_return).sum(axis=1), 1e-12)
    market_matrix = np.where(listed_return, market[:, None], np.nan)

    def trailing_return(window: int, offset: int = 0) -> np.ndarray:
        value = windows.lookback(log_price, offset) - windows.lookback(log_price, offset + window)
        return np.where(age >= offset + max(1, window // 4), value, np.nan)

    squared = returns**2

    def volatility(window: int) -> np.ndarray:
        mean = windows.mean("r", returns, window, max(2, window // 4))
        square = windows.mean("r2", squared, window, max(2, window // 4))
        return np.sqrt(np.maximum(square - mean**2, 0.0))

    def regression(window: int, minimum: int) -> tuple[np.ndarray, np.ndarray]:
        mean_r = windows.mean("r", returns, window, minimum)
        mean_m = windows.mean("m", market_matrix, window, minimum)
        cov = windows.mean("rm", returns * market_matrix, window, minimum) - mean_r * mean_m
        var_m = windows.mean("m2", market_matrix**2, window, minimum) - mean_m**2
        var_r = windows.mean("r2", squared, window, minimum) - mean_r**2
        with np.errstate(invalid="ignore", divide="ignore"):
            beta = cov / var_m
        return beta, np.sqrt(np.maximum(var_r - beta**2 * var_m, 0.0))

    def dollar_volume(window: int, minimum: int) -> np.ndarray:
        return windows.mean("dv", sim.dollar_volume, window, minimum)

    builders: dict[str, Callable[[], np.ndarray]] = {
        "return_1d": lambda: returns,
        "return_5d": lambda: trailing_return(5),
        "return_20d": lambda: trailing_return(20),
        "return_60d": lambda: trailing_return(60),
        "return_120d": lambda: trailing_return(120),
        "return_250d": lambda: trailing_return(250),
        "momentum_250d_skip_20d": lambda: trailing_return(230, offset=20),
        "volatility_20d": lambda: volatility(20),
        "volatility_60d": lambda: volatility(60),
        "volatility_120d": lambda: volatility(120),
        "volatility_ratio_20d_120d": lambda: volatility(20) / volatility(120),
        "distance_from_high_250d": lambda: log_price - windows.extreme(log_price, 250, 20, highest=True),
        "distance_from_low_250d": lambda: log_price - windows.extreme(log_price, 250, 20, highest=False),
        "rsi_14d": lambda: (
            100.0
            * windows.mean("up", np.maximum(returns, 0.0), 14, 5)
            / windows.mean("abs", np.abs(returns), 14, 5)
        ),
        "max_return_20d": lambda: windows.extreme(returns, 20, 6, highest=True),
        "log_dollar_volume_20d": lambda: np.log1p(dollar_volume(20, 1)),
        "volume_ratio_5d_60d": lambda: np.log1p(dollar_volume(5, 1)) - np.log1p(dollar_volume(60, 15)),
        "turnover_20d": lambda: dollar_volume(20, 1) / cap,
        "amihud_illiquidity_20d": lambda: np.log1p(
            1e6
            * windows.mean(
                "amihud", np.abs(returns) / np.where(sim.dollar_volume > 0, sim.dollar_volume, np.nan), 20, 5
            )
        ),
        "log_market_cap": lambda: np.log(cap),
        "beta_250d": lambda: regression(250, 60)[0],
        "idiosyncratic_volatility_60d": lambda: regression(60, 20)[1],
        "book_to_price": lambda: np.exp(-1.2 + 0.5 * sim.exposures["value"]),
        "earnings_yield": lambda: 0.05 + 0.03 * sim.exposures["value"],
    }
    out = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for name in TECHNICALS[:wanted]:
            values = builders[name]()
            out.append((name, np.where(np.isfinite(values), values, np.nan).astype(np.float32)))
    windows.clear()
    return out


_TRANSFORMS = ("identity", "identity", "tanh", "exponential", "cube", "rounded", "scaled")
_LAGS = (0, 0, 0, 1, 5, 20)
_VIEW_FAMILIES = ("signal", "blend", "nuisance", "derived")
_VIEW_FAMILY_WEIGHTS = (0.52, 0.1, 0.18, 0.2)


def _build_features(
    book: _Book,
    sim: _Simulation,
    n_technicals: int,
    n_views: int,
    n_signals: int,
    missing_rate: float,
    rng: np.random.Generator,
    report: _Reporter,
) -> tuple[list[tuple[str, np.ndarray]], list[dict[str, Any]]]:
    windows = _Windows(book.slot_start)
    width = max(3, len(str(n_technicals + n_views - 1)))
    features: list[tuple[str, np.ndarray]] = []
    info: list[dict[str, Any]] = []

    def add(values: np.ndarray, description: dict[str, Any]) -> None:
        name = f"raw_{len(features):0{width}d}"
        features.append((name, values))
        info.append({"feature": name, **description})
        report.step()

    for name, values in _technicals(book, sim, windows, n_technicals):
        # Fundamentals get a persistent per-asset measurement error, like vendor accounting data.
        if name in ("book_to_price", "earnings_yield"):
            error = rng.normal(0.0, 0.5, book.n_assets)[book.slot_asset].astype(np.float32)
            values = values * np.exp(0.3 * error) if name == "book_to_price" else values + 0.02 * error
        add(
            values,
            {"kind": "technical", "description": name, "signals": [], "lag": 0, "transform": "identity"},
        )
    n_nuisance = sim.latents.shape[0] - n_signals
    first_view = len(features)
    for view in range(n_views):
        family = str(rng.choice(_VIEW_FAMILIES, p=_VIEW_FAMILY_WEIGHTS))
        if family == "derived" and view > 0:
            source = first_view + int(rng.integers(view))
            values, description = _derived_view(features[source][1], info[source], windows, rng)
        else:
            family = "signal" if family == "derived" else family
            values, description = _signal_view(view, family, sim, book, windows, n_signals, n_nuisance, rng)
        if missing_rate > 0:
            n_missing = int(rng.binomial(values.size, missing_rate))
            values.reshape(-1)[rng.integers(0, values.size, n_missing)] = np.nan
        add(values, description)
    return features, info


def _signal_view(
    view: int,
    family: str,
    sim: _Simulation,
    book: _Book,
    windows: _Windows,
    n_signals: int,
    n_nuisance: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Return one noisy view of the latent signals (or of nuisance latents only) and its description."""
    loadings: dict[int, float] = {}
    if family in ("signal", "blend"):
        primary = view % n_signals
        loadings[primary] = float(rng.uniform(0.35, 0.7) * rng.choice([-1.0, 1.0]))
        if family == "blend" and n_signals > 1:
            other = int((primary + 1 + rng.integers(n_signals - 1)) % n_signals)
            loadings[other] = float(rng.uniform(0.25, 0.5) * rng.choice([-1.0, 1.0]))
    for nuisance in rng.choice(n_nuisance, size=int(rng.integers(1, 3)), replace=False):
        loadings[n_signals + int(nuisance)] = float(rng.uniform(0.3, 0.8) * rng.choice([-1.0, 1.0]))
    static_sd = float(rng.uniform(0.2, 0.7))
    daily_sd = float(rng.uniform(0.3, 1.0))
    lag = int(rng.choice(_LAGS))
    transform = str(rng.choice(_TRANSFORMS))
    norm = math.sqrt(sum(v * v for v in loadings.values()) + static_sd**2 + daily_sd**2)
    shape = sim.alpha_score.shape
    # Daily measurement noise: uniform with standard deviation daily_sd (one draw is the cheapest).
    values = rng.random(shape, dtype=np.float32)
    values -= np.float32(0.5)
    values *= np.float32(daily_sd * math.sqrt(12.0) / norm)
    for latent, loading in loadings.items():
        values += np.float32(loading / norm) * sim.latents[latent]
    values += (static_sd / norm * rng.standard_normal(book.n_assets)).astype(np.float32)[book.slot_asset]
    values = _apply_transform(windows.lookback(values, lag), transform, rng)
    names = [f"signal_{k}" if k < n_signals else f"nuisance_{k - n_signals}" for k in loadings]
    return values, {
        "kind": "nuisance_view" if family == "nuisance" else "signal_view",
        "description": " + ".join(f"{w:+.2f}*{n}" for n, w in zip(names, loadings.values(), strict=True))
        + f" + static {static_sd:.2f} + daily {daily_sd:.2f}",
        "signals": sorted(int(k) for k in loadings if k < n_signals),
        "lag": lag,
        "transform": transform,
    }


def _derived_view(
    source: np.ndarray, source_info: dict[str, Any], windows: _Windows, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """Return a stale and/or re-expressed copy of an earlier view (the same data shipped twice)."""
    lag = int(rng.choice((1, 5, 20)))
    transform = str(rng.choice(("identity", "tanh", "rounded", "scaled")))
    values = windows.lookback(source, lag)  # a new array: lag >= 1
    if transform in ("tanh", "rounded"):
        # Standardise first, or a source in other units would saturate (tanh) or collapse (rounding).
        sample = values.reshape(-1)[:: max(1, values.size // 100_000)]
        scale = float(np.nanstd(sample))
        values -= np.float32(np.nanmedian(sample))
        values /= np.float32(scale if scale > 0 else 1.0)
    values = _apply_transform(values, transform, rng)
    return values, {
        "kind": source_info["kind"],
        "description": f"{source_info['feature']} lagged {lag}d, {transform}",
        "signals": source_info["signals"],
        "lag": source_info["lag"] + lag,
        "transform": transform,
    }


def _apply_transform(values: np.ndarray, transform: str, rng: np.random.Generator) -> np.ndarray:
    if transform == "tanh":
        return np.tanh(values, out=values)
    if transform == "exponential":
        return np.exp(values, out=values)
    if transform == "cube":
        cube = values * values
        values *= cube
        return values
    if transform == "rounded":
        values *= np.float32(2.0)
        return np.round(values, out=values)
    if transform == "scaled":
        values *= np.float32(10 ** rng.uniform(-2, 3))
        values += np.float32(rng.normal(0, 100))
        return values
    return values


# ---------------------------------------------------------------------------------------------------------
# assembling frames


def _text_column(categories: np.ndarray, codes: np.ndarray) -> pd.Series:
    array = pa.array(categories.tolist(), type=pa.string()).take(pa.array(codes))
    return array.to_pandas()


def _assemble(
    book: _Book,
    sim: _Simulation,
    dates: pd.DatetimeIndex,
    features: list[tuple[str, np.ndarray]],
    n_signals: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (panel, truth rows); slot order is id order on every date, so (T, N) arrays are already
    the panel's rows sorted by date then asset and become columns without copying."""
    n_slots = book.n_slots
    asset_index = book.slot_asset.reshape(-1)
    attrs = book.attrs

    def rows(values: np.ndarray) -> np.ndarray:
        return values.reshape(-1)

    date_column = pd.Series(np.repeat(dates.to_numpy(), n_slots))
    panel_columns: dict[str, Any] = {
        "date": date_column,
        "asset": _text_column(attrs["id"], asset_index),
        "ticker": _text_column(attrs["ticker"], asset_index),
        "country": _text_column(attrs["country"], asset_index),
        "sector": _text_column(attrs["sector"], asset_index),
        "industry": _text_column(attrs["industry"], asset_index),
        "close": rows(np.exp(sim.log_price)),
        "volume": rows(sim.volume),
        "market_cap": rows(sim.reported_cap),
    }
    for name, values in features:
        panel_columns[name] = rows(values)
    panel = pd.DataFrame(panel_columns, copy=False)
    truth_columns: dict[str, Any] = {"date": panel["date"], "asset": panel["asset"]}
    for k in range(n_signals):
        truth_columns[f"signal_{k}"] = rows(sim.latents[k])
    truth_columns["alpha_score"] = rows(sim.alpha_score)
    truth_columns["expected_alpha"] = rows(sim.alpha_score * sim.idio_vol * np.float32(sim.alpha_scale))
    truth_columns["alpha_return"] = rows(sim.alpha)
    truth_columns["residual_return"] = rows(sim.residual)
    truth_columns["return"] = rows(sim.returns.astype(np.float32))
    for name, values in sim.exposures.items():
        truth_columns[name] = rows(values)
    return panel, pd.DataFrame(truth_columns, copy=False)


_ID_ALPHABET = "234567ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # in ASCII order: code order is id order


def _draw_asset_ids(book: _Book, rng: np.random.Generator) -> np.ndarray:
    """Return random-looking unique ids (prefix + 7 base-32 characters) whose sort order is the slot
    order (slot, then listing day), so every date's rows are sorted by id in slot order."""
    width = 7
    codes = np.sort(rng.choice(len(_ID_ALPHABET) ** width, size=book.n_assets, replace=False))
    slot_order = np.lexsort((book.first_day, book.slot_of))
    ids = np.empty(book.n_assets, dtype=object)
    for code, asset in zip(codes.tolist(), slot_order.tolist(), strict=True):
        characters = []
        for _ in range(width):
            code, digit = divmod(code, len(_ID_ALPHABET))
            characters.append(_ID_ALPHABET[digit])
        ids[asset] = book.prefix + "".join(reversed(characters))
    return ids


def _strength_frame(dates: pd.DatetimeIndex, strengths: np.ndarray, regimes: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"date": dates})
    for k in range(strengths.shape[1]):
        frame[f"strength_{k}"] = strengths[:, k]
    for k in range(strengths.shape[1]):
        frame[f"regime_{k}"] = np.array(REGIMES, dtype=object)[regimes[:, k]]
    return frame


def _asset_frame(book: _Book, dates: pd.DatetimeIndex) -> pd.DataFrame:
    attrs = book.attrs
    first_date = dates[book.first_day]
    last_date = dates[book.last_day]
    delisted = book.last_day < book.n_days - 1
    listing_offsets = attrs["listing_day"]
    listing_date = pd.DatetimeIndex(
        [dates[0] - pd.offsets.BDay(int(-d)) if d < 0 else dates[int(d)] for d in listing_offsets]
    )
    ids = attrs["id"]
    frame = pd.DataFrame(
        {
            "asset": ids.astype(str),
            "ticker": attrs["ticker"].astype(str),
            "country": attrs["country"].astype(str),
            "sector": attrs["sector"].astype(str),
            "industry": attrs["industry"].astype(str),
            "listing_date": listing_date,
            "first_date": first_date,
            "last_date": last_date,
            "delisting_date": pd.DatetimeIndex(np.where(delisted, last_date, pd.NaT)),
            "listed_before_start": book.first_day == 0,
            "beta": attrs["beta"],
            "idiosyncratic_vol": attrs["idio_vol"],
        }
    )
    if (attrs["category"] != "").any():
        category = attrs["category"].astype(str)
        base = attrs["base"]
        duplicate = attrs["duplicate_of"]
        young = (dates[-1] - listing_date) < pd.Timedelta(days=YOUNG_TOKEN_DAYS)
        frame["category"] = category
        frame["is_stablecoin"] = category == "stablecoin"
        frame["is_wrapped"] = category == "wrapped"
        frame["is_liquid_staking"] = category == "liquid-staking"
        frame["base_asset"] = np.where(base >= 0, ids[np.maximum(base, 0)], "").astype(str)
        frame["is_young"] = np.asarray(young)
        frame["is_illiquid"] = attrs["illiquid"]
        frame["zero_market_cap"] = np.where(
            attrs["zero_cap_always"], "always", np.where(attrs["zero_cap_spells"], "spells", "never")
        ).astype(str)
        frame["duplicate_symbol_of"] = np.where(duplicate >= 0, ids[np.maximum(duplicate, 0)], "").astype(str)
        frame["always_listed"] = book.protected[: len(frame)]
    for column in ("listing_date", "first_date", "last_date", "delisting_date"):
        frame[column] = frame[column].astype("datetime64[ns]")
    return frame


# ---------------------------------------------------------------------------------------------------------
# files


def _row_group_bounds(frame: pd.DataFrame) -> list[tuple[int, int]]:
    """Return row-group boundaries that fall on date changes, each about PARQUET_ROW_GROUP_ROWS rows."""
    if frame.empty:
        return [(0, 0)]
    dates = frame["date"].to_numpy()
    changes = np.flatnonzero(dates[1:] != dates[:-1]) + 1
    bounds, begin = [], 0
    for change in changes:
        if change - begin >= PARQUET_ROW_GROUP_ROWS:
            bounds.append((begin, int(change)))
            begin = int(change)
    bounds.append((begin, len(frame)))
    return bounds


def _json_value(value: Any) -> Any:
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _frame_records(frame: pd.DataFrame) -> dict[str, Any]:
    columns = {}
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series):
            columns[name] = {"type": "date", "values": [_json_value(v) for v in series]}
        else:
            columns[name] = {"type": "value", "values": [_json_value(v) for v in series.tolist()]}
    return columns


def _frame_from_records(columns: dict[str, Any]) -> pd.DataFrame:
    data = {}
    for name, column in columns.items():
        if column["type"] == "date":
            data[name] = pd.to_datetime(pd.Series(column["values"], dtype=object)).astype("datetime64[ns]")
        else:
            data[name] = column["values"]
    return pd.DataFrame(data)


def _truth_document(truth: MarketTruth) -> dict[str, Any]:
    return {
        "params": truth.params,
        "strengths": _frame_records(truth.strengths),
        "factor_returns": _frame_records(truth.factor_returns),
        "assets": _frame_records(truth.assets),
        "features": _frame_records(truth.features),
    }
