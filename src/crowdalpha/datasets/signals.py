"""The Signals product (reference §3.8) built from an operator's market panel.

Participants of Signals bring their own data and predict a universe of real tickers, so nothing
is obfuscated: rows are keyed by ``date`` and ``numerai_ticker``. A version directory
``out_dir/<version>/`` holds::

    train.parquet  validation.parquet  live.parquet
    train_neutralizer.parquet  validation_neutralizer.parquet
    train_sample_weights.parquet  validation_sample_weights.parquet

**Keys.** ``numerai_ticker`` is the panel's ``ticker``, a space and its ``country`` (e.g.
``"000640 KR"``); a row without a ticker uses its asset id instead. It must be unique per date.
``composite_figi`` is a stable composite id derived from the internal ``asset`` id alone
(:func:`composite_id`): FIGI-shaped (prefix ``CXG``, eight characters of SHA-256 of the asset id
in the FIGI alphabet, FIGI check digit), so it survives ticker changes. It is a plain hash, not
keyed: whoever knows an asset id can compute it. ``date`` is the day whose close built the row
(timestamp, midnight).

**Dates and splits.** Historical rows sit on weekly era dates (the last trading day of each
week, :func:`crowdalpha.market.calendar.weekly_era_dates`); ``live.parquet`` holds the panel's
latest date. Train / embargo / validation follow the Classic rules
(:func:`crowdalpha.datasets.classic.plan_splits`: last ``validation_fraction`` of resolved dates
in validation, an embargo covering the longest target horizon before it); dates whose main
target is not known yet are not published. Historical rows with an unknown main ``target``
(the asset stopped trading within the horizon) are dropped.

**Columns of train / validation / live.** ``date, numerai_ticker, composite_figi, data_type``,
``feature_country`` (the country code), risk factors ``feature_<beta|size|momentum|volatility|
value>_factor`` (value only when the panel has a value column; exposures of
:mod:`crowdalpha.market.factors`) and ``feature_adv_20d_factor`` (20-day average dollar volume),
each as its rank over the date's rows, and technicals ``feature_<rsi_14d|ret_20d|close_avg_60d>
_country_ranknorm`` ranked within the date's country (:mod:`crowdalpha.datasets.technicals`).
Ranks are (average rank − ½) / count, float32 in (0, 1), NaN where unknown. Train and
validation add the float32 targets of :func:`crowdalpha.market.targets.build_targets`: ``target``
and ``target_<raw_return|market_neutral|country_sector_neutral|factor_neutral>_<20|60>``.

**Neutralisers** (``date, numerai_ticker, neutralizer_*``, float64): per date, the exposures
``country_<c>`` and ``sector_<s>`` (one-hots of every category in the panel) and the style
factors, orthonormalised in that order under the date's sample weights ``v`` by Gram–Schmidt
(:func:`weighted_orthonormal_basis`): column *j* is the ``v``-weighted residual of exposure *j*
on the earlier ones, scaled to ``Σ v n² = 1``, or all zeros when it adds no new direction (an
absent category, the sector one-hots' sum, which the countries already span). So
``Nᵀ diag(v) N`` is the identity on the non-zero columns, and
``generate_neutralized_weights(s, N, v) = v ∘ (s − N Nᵀ (v ∘ s))`` has exactly zero exposure
``Nᵀ w`` to every neutraliser — in particular it sums to zero (the constant lies in the countries'
span). Column names are ``neutralizer_country_<slug>``, ``neutralizer_sector_<slug>``,
``neutralizer_<style>``.

**Sample weights** (``date, numerai_ticker, sample_weights``, float64): √ of the 20-day average
daily dollar volume (close × volume; assets without one get the date's smallest), divided by
the date's mean so they average 1 over the file's rows of that date
(:func:`sample_weights_from_adv`).

Neutralisers and weights are orthonormalised over exactly the published rows of each date, so
Alpha and MPC computed on them are exact. Numerai publishes none for live; neither do we:
:func:`neutralizers_and_sample_weights` returns them for any date (the live round's scoring),
and with ``private_dir`` the build also writes them for the live date to
``private_dir/<version>/`` (``live_neutralizer.parquet``, ``live_sample_weights.parquet``) beside
``tickers.parquet`` (numerai_ticker, composite_figi, asset, first and last date).

Everything is written into temporary directories and renamed into place at the end, so a
failure leaves nothing behind; the same panel gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from crowdalpha.datasets.classic import Progress, plan_splits, version_number
from crowdalpha.datasets.errors import DatasetError, rule_error
from crowdalpha.datasets.parquet import EraChunkWriter, write_table
from crowdalpha.datasets.staging import staged_directories
from crowdalpha.datasets.technicals import (
    ADV_WINDOW,
    average_dollar_volume,
    dollar_volume_matrix,
    rank_normalize,
    technical_matrices,
)
from crowdalpha.market.calendar import trading_dates, weekly_era_dates
from crowdalpha.market.factors import (
    BETA_WINDOW,
    GROUP_FACTORS,
    MOMENTUM_WINDOW,
    VOLATILITY_WINDOW,
    group_code_matrices,
    style_exposure_matrices,
)
from crowdalpha.market.panel import PanelError, PanelGrid, panel_grid, validate_panel
from crowdalpha.market.targets import HORIZONS, build_targets, prepare_target_inputs

TICKER_COLUMN = "numerai_ticker"
COMPOSITE_COLUMN = "composite_figi"
DATE_COLUMN = "date"
DATA_TYPE_COLUMN = "data_type"
SAMPLE_WEIGHT_COLUMN = "sample_weights"
NEUTRALIZER_PREFIX = "neutralizer_"
COUNTRY_FEATURE = "feature_country"
COUNTRY_TECHNICALS: tuple[str, ...] = ("rsi_14d", "ret_20d", "close_avg_60d")
"""Technicals published ranked within each country (``feature_<name>_country_ranknorm``)."""

TRAIN, VALIDATION, LIVE = "train", "validation", "live"
DEFAULT_VALIDATION_FRACTION = 0.25
PUBLISHED_FILES: tuple[str, ...] = (
    "train.parquet",
    "validation.parquet",
    "live.parquet",
    "train_neutralizer.parquet",
    "validation_neutralizer.parquet",
    "train_sample_weights.parquet",
    "validation_sample_weights.parquet",
)
PRIVATE_FILES: tuple[str, ...] = (
    "live_neutralizer.parquet",
    "live_sample_weights.parquet",
    "tickers.parquet",
)

COMPOSITE_PREFIX = "CXG"
FIGI_ALPHABET = "BCDFGHJKLMNPQRSTVWXYZ0123456789"
"""FIGI characters 4–11 are upper-case consonants and digits."""

ORTHONORMAL_TOLERANCE = 1e-8
"""A column whose weighted residual is below this share of its own weighted length adds no direction."""

RISK_LOOKBACK_DAYS = max(MOMENTUM_WINDOW, BETA_WINDOW, VOLATILITY_WINDOW, ADV_WINDOW) + 1
"""Trading days of history up to a date that its exposures and sample weights depend on."""

_MISSING_TICKERS = frozenset({"", "nan", "none", "<na>", "null"})
_TIMESTAMP = pa.timestamp("ns")


# ----------------------------------------------------------------------------------------- keys


def composite_id(asset: str) -> str:
    """Return the FIGI-shaped 12-character composite id of an internal asset id (see module doc)."""
    digest = hashlib.sha256(f"crowdalpha-composite:{asset}".encode()).digest()
    body = COMPOSITE_PREFIX + "".join(FIGI_ALPHABET[byte % len(FIGI_ALPHABET)] for byte in digest[:8])
    return body + str(figi_check_digit(body))


def figi_check_digit(body: str) -> int:
    """Return the FIGI check digit (modulus 10 double-add-double) of the first 11 characters."""
    total = 0
    for position, character in enumerate(body):
        value = int(character) if character.isdigit() else ord(character) - ord("A") + 10
        if position % 2 == 1:
            value *= 2
        total += sum(int(digit) for digit in str(value))
    return (10 - total % 10) % 10


def numerai_tickers(panel: pd.DataFrame) -> pd.Series:
    """Return per panel row its ``numerai_ticker``: ticker + " " + country (asset id when no ticker)."""
    ticker = panel["ticker"].astype("str").str.strip()
    missing = panel["ticker"].isna().to_numpy() | ticker.str.lower().isin(_MISSING_TICKERS).to_numpy()
    base = np.where(missing, panel["asset"].astype("str").to_numpy(), ticker.to_numpy())
    country = panel["country"].astype("str").str.strip().to_numpy()
    return pd.Series(np.char.add(np.char.add(base.astype(str), " "), country.astype(str)), index=panel.index)


def _check_unique_tickers(panel: pd.DataFrame, tickers: pd.Series) -> None:
    clash = pd.DataFrame({"date": panel["date"], "t": tickers}).duplicated(keep=False).to_numpy()
    if clash.any():
        rows = panel.loc[clash, ["date", "asset"]].assign(numerai_ticker=tickers[clash]).head(4)
        examples = ", ".join(f"{r.date:%Y-%m-%d} {r.numerai_ticker!r} ({r.asset})" for r in rows.itertuples())
        raise rule_error(
            "numerai_ticker (ticker + country) must be unique per date", f"first clashes: {examples}"
        )


def _slug(label: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(label).lower()).strip("_") or "blank"


def _validated(panel: pd.DataFrame) -> pd.DataFrame:
    try:
        return validate_panel(panel)
    except PanelError as error:
        raise DatasetError(str(error)) from None


# ----------------------------------------------------------------------------- risk model (pure)


def weighted_orthonormal_basis(
    exposures: np.ndarray, weights: np.ndarray, *, tolerance: float = ORTHONORMAL_TOLERANCE
) -> np.ndarray:
    """Return N (rows × columns) spanning the exposures with Nᵀ diag(weights) N = I on its non-zero columns.

    Gram–Schmidt in column order (each column projected twice, for accuracy) in the √weights
    scaled space; a column whose residual is below ``tolerance`` × its own length is all zeros.
    """
    exposures = np.asarray(exposures, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if exposures.ndim != 2 or weights.shape != (exposures.shape[0],):
        raise ValueError(f"rule: exposures are (rows, columns) and weights (rows,) — got {exposures.shape}")
    if not (np.isfinite(exposures).all() and np.isfinite(weights).all() and (weights > 0).all()):
        raise ValueError("rule: exposures must be finite and sample weights finite and positive")
    root = np.sqrt(weights)
    scaled = exposures * root[:, None]
    basis = np.zeros_like(scaled)
    for column in range(scaled.shape[1]):
        vector = scaled[:, column]
        length = np.linalg.norm(vector)
        if length == 0.0:
            continue
        residual = vector.copy()
        earlier = basis[:, :column]
        for _ in range(2):
            residual -= earlier @ (earlier.T @ residual)
        remaining = np.linalg.norm(residual)
        if remaining > tolerance * length:
            basis[:, column] = residual / remaining
    return basis / root[:, None]


def sample_weights_from_adv(average_dollar_volume: np.ndarray) -> np.ndarray:
    """Return sample weights √ADV scaled to mean 1 (unitless); a missing or zero ADV gets the smallest."""
    adv = np.asarray(average_dollar_volume, dtype=np.float64)
    known = np.isfinite(adv) & (adv > 0)
    if adv.size == 0:
        return adv.copy()
    if not known.any():
        return np.ones_like(adv)
    root = np.sqrt(np.where(known, adv, adv[known].min()))
    return root / root.mean()


@dataclass(frozen=True)
class RiskInputs:
    """What the Signals neutralisers and sample weights of any date need, computed once per panel."""

    grid: PanelGrid
    styles: dict[str, np.ndarray]
    groups: dict[str, tuple[np.ndarray, pd.Index]]
    adv: np.ndarray
    names: tuple[str, ...]

    def exposures(self, position: int, members: np.ndarray) -> np.ndarray:
        """Return the raw exposures (rows × neutraliser columns) of assets ``members`` at a date position."""
        blocks = []
        for group in GROUP_FACTORS:
            codes, labels = self.groups[group]
            one_hot = np.zeros((members.size, len(labels)))
            at_date = codes[position, members]
            known = at_date >= 0
            one_hot[np.flatnonzero(known), at_date[known]] = 1.0
            blocks.append(one_hot)
        blocks.extend(
            np.nan_to_num(matrix[position, members], nan=0.0)[:, None] for matrix in self.styles.values()
        )
        return np.hstack(blocks)

    def at(self, position: int, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (neutralisers N: rows × columns, sample weights v: rows) of ``members`` at a date."""
        weights = sample_weights_from_adv(self.adv[position, members])
        return weighted_orthonormal_basis(self.exposures(position, members), weights), weights


def prepare_risk_inputs(
    panel: pd.DataFrame, *, grid: PanelGrid | None = None, styles: dict[str, np.ndarray] | None = None
) -> RiskInputs:
    """Return the exposures, group codes and ADV (dates × assets) of a validated panel, for any date."""
    grid = panel_grid(panel) if grid is None else grid
    styles = style_exposure_matrices(panel, grid) if styles is None else styles
    groups = group_code_matrices(panel, grid)
    names: list[str] = []
    for group in GROUP_FACTORS:
        for label in groups[group][1]:
            name = f"{NEUTRALIZER_PREFIX}{group}_{_slug(label)}"
            suffix = 2
            while name in names:
                name, suffix = f"{NEUTRALIZER_PREFIX}{group}_{_slug(label)}_{suffix}", suffix + 1
            names.append(name)
    names.extend(f"{NEUTRALIZER_PREFIX}{style}" for style in styles)
    adv = average_dollar_volume(dollar_volume_matrix(panel, grid))
    return RiskInputs(grid=grid, styles=styles, groups=groups, adv=adv, names=tuple(names))


def neutralizers_and_sample_weights(
    panel: pd.DataFrame,
    date: str | pd.Timestamp,
    *,
    members: Sequence[str] | None = None,
    validate: bool = True,
) -> tuple[pd.DataFrame, pd.Series]:
    """Return (neutralisers ``numerai_ticker × neutralizer_*``, mean-1 sample weights) at one panel date.

    The pair the Alpha and MPC scores of a round with data date ``date`` need (see the module doc
    for the definitions); only rows dated ``date`` or up to :data:`RISK_LOOKBACK_DAYS` trading
    days earlier are read. ``members`` (numerai tickers of that date) restricts the universe the
    matrix is orthonormal over — pass the ids being scored; by default every asset with a row.
    Rows are sorted by ``numerai_ticker``. ``validate=False`` trusts an already validated panel.
    """
    panel = _validated(panel) if validate else panel
    day = pd.Timestamp(date).normalize()
    calendar = trading_dates(panel)
    position = int(calendar.get_indexer([day])[0])
    if position < 0:
        raise rule_error("the date must be a trading date of the panel", f"{day:%Y-%m-%d} has no rows")
    first = calendar[max(0, position - RISK_LOOKBACK_DAYS + 1)]
    window = panel.loc[(panel["date"] >= first) & (panel["date"] <= day)].reset_index(drop=True)
    inputs = prepare_risk_inputs(window)
    at_date = window["date"].to_numpy() == day.to_datetime64()
    tickers = numerai_tickers(window)[at_date]
    _check_unique_tickers(window.loc[at_date], tickers)
    assets = inputs.grid.assets.get_indexer(window.loc[at_date, "asset"])
    order = np.argsort(tickers.to_numpy(), kind="stable")
    tickers, assets = tickers.to_numpy()[order], assets[order]
    if members is not None:
        wanted = pd.Index(members)
        unknown = wanted.difference(pd.Index(tickers))
        if len(unknown):
            raise rule_error(
                "members must be numerai tickers with a row at the date",
                f"{len(unknown)} unknown, first: {list(unknown[:3])}",
            )
        keep = pd.Index(tickers).isin(wanted)
        tickers, assets = tickers[keep], assets[keep]
    basis, weights = inputs.at(len(inputs.grid.dates) - 1, assets)
    index = pd.Index(tickers, name=TICKER_COLUMN)
    return (
        pd.DataFrame(basis, index=index, columns=list(inputs.names)),
        pd.Series(weights, index=index, name=SAMPLE_WEIGHT_COLUMN),
    )


# ------------------------------------------------------------------------------------------ build


@dataclass
class SignalsBuildReport:
    """What a Signals build wrote: dates and rows per split, column names, file sizes (bytes)."""

    version: str
    version_dir: Path
    private_dir: Path | None
    live_date: str
    dates: dict[str, int]
    rows: dict[str, int]
    features: list[str]
    targets: list[str]
    neutralizers: list[str]
    embargo_eras: int
    horizon_days: int
    files: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _SignalsInputs:
    """Everything per (date position, asset) a Signals file row needs, computed once."""

    grid: PanelGrid
    present: np.ndarray
    ticker_codes: np.ndarray
    ticker_labels: np.ndarray
    composites: np.ndarray
    risk: RiskInputs
    technicals: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    target_rows: dict[int, int]

    def members(self, position: int, *, require_target: bool) -> np.ndarray:
        """Return the asset columns of a date's rows, sorted by numerai_ticker (target known if asked)."""
        keep = self.present[position].copy()
        if require_target:
            keep &= np.isfinite(self.targets["target"][self.target_rows[position]])
        columns = np.flatnonzero(keep)
        return columns[np.argsort(self.ticker_codes[position, columns], kind="stable")]

    def feature_columns(self, position: int, members: np.ndarray) -> dict[str, np.ndarray]:
        """Return the published features of ``members`` at a date position, by column name."""
        codes, labels = self.risk.groups["country"]
        country = codes[position, members]
        columns: dict[str, np.ndarray] = {COUNTRY_FEATURE: np.asarray(labels.astype(str))[country]}
        for style, matrix in self.risk.styles.items():
            columns[f"feature_{style}_factor"] = rank_normalize(matrix[position, members])
        with np.errstate(divide="ignore"):
            log_adv = np.log(self.risk.adv[position, members])
        columns["feature_adv_20d_factor"] = rank_normalize(log_adv)
        for name in COUNTRY_TECHNICALS:
            columns[f"feature_{name}_country_ranknorm"] = rank_normalize(
                self.technicals[name][position, members], country
            )
        return columns


def _prepare(panel: pd.DataFrame, era_dates: pd.DatetimeIndex, horizons: Sequence[int]) -> _SignalsInputs:
    grid = panel_grid(panel)
    tickers = numerai_tickers(panel)
    _check_unique_tickers(panel, tickers)
    codes, labels = pd.factorize(tickers, sort=True)
    ticker_codes = np.full(grid.shape, -1, dtype=np.int64)
    ticker_codes[grid.row_date, grid.row_asset] = codes
    target_inputs = prepare_target_inputs(panel)
    targets = build_targets(panel, era_dates, tuple(horizons), inputs=target_inputs)
    positions = grid.dates.get_indexer(pd.DatetimeIndex(era_dates))
    target_rows = {int(p): row for row, p in enumerate(positions)}
    row_of_date = grid.dates.get_indexer(pd.DatetimeIndex(targets["date"]))
    era_row = np.searchsorted(positions, row_of_date)
    asset_column = grid.assets.get_indexer(targets["asset"])
    matrices = {}
    for name in [c for c in targets.columns if c.startswith("target")]:
        matrix = np.full((len(positions), len(grid.assets)), np.nan, dtype=np.float32)
        matrix[era_row, asset_column] = targets[name].to_numpy(dtype=np.float32)
        matrices[name] = matrix
    composites = np.asarray([composite_id(str(a)) for a in grid.assets], dtype=object)
    if len(set(composites)) < len(composites):
        raise rule_error("composite ids must be unique", "two asset ids hash to the same composite id")
    return _SignalsInputs(
        grid=grid,
        present=grid.present(),
        ticker_codes=ticker_codes,
        ticker_labels=np.asarray(labels, dtype=object),
        composites=composites,
        risk=prepare_risk_inputs(panel, grid=grid, styles=target_inputs.styles),
        technicals=technical_matrices(panel, grid, COUNTRY_TECHNICALS),
        targets=matrices,
        target_rows=target_rows,
    )


def _key_arrays(inputs: _SignalsInputs, position: int, members: np.ndarray) -> list[pa.Array]:
    day = inputs.grid.dates[position].to_datetime64()
    return [
        pa.array(np.full(members.size, day, dtype="datetime64[ns]"), _TIMESTAMP),
        pa.array(inputs.ticker_labels[inputs.ticker_codes[position, members]].astype(str), pa.string()),
    ]


def _data_schema(features: Sequence[str], targets: Sequence[str]) -> pa.Schema:
    fields = [
        pa.field(DATE_COLUMN, _TIMESTAMP),
        pa.field(TICKER_COLUMN, pa.string()),
        pa.field(COMPOSITE_COLUMN, pa.string()),
        pa.field(DATA_TYPE_COLUMN, pa.string()),
        pa.field(COUNTRY_FEATURE, pa.string()),
    ]
    fields += [pa.field(name, pa.float32()) for name in features if name != COUNTRY_FEATURE]
    fields += [pa.field(name, pa.float32()) for name in targets]
    return pa.schema(fields)


def _risk_schemas(names: Sequence[str]) -> tuple[pa.Schema, pa.Schema]:
    keys = [pa.field(DATE_COLUMN, _TIMESTAMP), pa.field(TICKER_COLUMN, pa.string())]
    return (
        pa.schema([*keys, *(pa.field(name, pa.float64()) for name in names)]),
        pa.schema([*keys, pa.field(SAMPLE_WEIGHT_COLUMN, pa.float64())]),
    )


def _date_tables(
    inputs: _SignalsInputs, position: int, data_type: str, schemas: tuple[pa.Schema, pa.Schema, pa.Schema]
) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Return the (data, neutraliser, sample weight) tables of one date's rows."""
    data_schema, neutralizer_schema, weight_schema = schemas
    members = inputs.members(position, require_target=data_type != LIVE)
    keys = _key_arrays(inputs, position, members)
    columns = inputs.feature_columns(position, members)
    arrays = [
        *keys,
        pa.array(inputs.composites[members].astype(str), pa.string()),
        pa.array(np.full(members.size, data_type), pa.string()),
    ]
    for name in data_schema.names[4:]:
        if name in columns:
            arrays.append(pa.array(columns[name], data_schema.field(name).type, from_pandas=True))
        else:
            row = inputs.target_rows[position]
            arrays.append(pa.array(inputs.targets[name][row, members], pa.float32(), from_pandas=True))
    basis, weights = inputs.risk.at(position, members)
    data = pa.Table.from_arrays(arrays, schema=data_schema)
    neutralizers = pa.Table.from_arrays([*keys, *(pa.array(c) for c in basis.T)], schema=neutralizer_schema)
    sample_weights = pa.Table.from_arrays([*keys, pa.array(weights)], schema=weight_schema)
    return data, neutralizers, sample_weights


def _ticker_map(panel: pd.DataFrame) -> pa.Table:
    frame = pd.DataFrame(
        {
            TICKER_COLUMN: numerai_tickers(panel).to_numpy(),
            "asset": panel["asset"].to_numpy(),
            "date": panel["date"],
        }
    )
    spans = frame.groupby([TICKER_COLUMN, "asset"], sort=True)["date"].agg(["min", "max"]).reset_index()
    return pa.Table.from_arrays(
        [
            pa.array(spans[TICKER_COLUMN].astype(str).to_numpy(), pa.string()),
            pa.array([composite_id(str(a)) for a in spans["asset"]], pa.string()),
            pa.array(spans["asset"].astype(str).to_numpy(), pa.string()),
            pa.array(spans["min"].to_numpy(dtype="datetime64[ns]"), _TIMESTAMP),
            pa.array(spans["max"].to_numpy(dtype="datetime64[ns]"), _TIMESTAMP),
        ],
        names=[TICKER_COLUMN, COMPOSITE_COLUMN, "asset", "first_date", "last_date"],
    )


def build_signals(
    panel: pd.DataFrame,
    out_dir: str | Path,
    *,
    version: str = "v1.0",
    private_dir: str | Path | None = None,
    horizons: Sequence[int] = HORIZONS,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    embargo_eras: int | None = None,
    progress: Progress | None = None,
) -> SignalsBuildReport:
    """Return the report of building the Signals version ``out_dir/<version>/`` from a panel (module doc)."""
    version_number(version)
    tick: Callable[[str, int, int | None], None] = progress or (lambda stage, done, total: None)
    panel = _validated(panel)
    tick("validate panel", 1, 1)
    era_dates = weekly_era_dates(panel)
    live_date = pd.Timestamp(panel["date"].max())
    inputs = _prepare(panel, era_dates, horizons)
    tick("targets and exposures", 1, 1)
    target_names = [name for name in inputs.targets if name.startswith("target")]
    history = [f"{d:%Y-%m-%d}" for d in era_dates]
    resolved = [bool(np.isfinite(inputs.targets["target"][row]).any()) for row in range(len(era_dates))]
    plan = plan_splits(
        history,
        resolved,
        f"{live_date:%Y-%m-%d}",
        targets=target_names,
        validation_fraction=validation_fraction,
        embargo_eras=embargo_eras,
    )
    live_position = len(inputs.grid.dates) - 1
    feature_names = list(
        inputs.feature_columns(live_position, inputs.members(live_position, require_target=False))
    )
    neutralizer_schema, weight_schema = _risk_schemas(inputs.risk.names)
    schemas = {
        split: (_data_schema(feature_names, target_names), neutralizer_schema, weight_schema)
        for split in (TRAIN, VALIDATION)
    }
    live_schema = _data_schema(feature_names, [])
    out_dir = Path(out_dir)
    finals = [out_dir / version] + ([Path(private_dir) / version] if private_dir is not None else [])
    files: dict[str, int] = {}
    rows: dict[str, int] = {}
    with staged_directories(finals) as staged:
        public = staged[0]
        for split in (TRAIN, VALIDATION):
            eras = plan.of(split)
            writers = [
                EraChunkWriter(public / f"{split}{suffix}.parquet", schema)
                for suffix, schema in zip(
                    ("", "_neutralizer", "_sample_weights"), schemas[split], strict=True
                )
            ]
            try:
                for done, era in enumerate(eras, start=1):
                    position = int(inputs.grid.dates.get_indexer([pd.Timestamp(era.date)])[0])
                    for writer, table in zip(
                        writers, _date_tables(inputs, position, split, schemas[split]), strict=True
                    ):
                        writer.write(table)
                    tick(f"{split} dates", done, len(eras))
            finally:
                for writer in writers:
                    writer.close()
            rows[split] = writers[0].rows
        live, live_neutralizers, live_weights = _date_tables(
            inputs, live_position, LIVE, (live_schema, neutralizer_schema, weight_schema)
        )
        write_table(public / "live.parquet", live)
        rows[LIVE] = live.num_rows
        if private_dir is not None:
            write_table(staged[1] / "live_neutralizer.parquet", live_neutralizers)
            write_table(staged[1] / "live_sample_weights.parquet", live_weights)
            write_table(staged[1] / "tickers.parquet", _ticker_map(panel))
            files.update({f"private/{p.name}": p.stat().st_size for p in sorted(staged[1].iterdir())})
        files.update({p.name: p.stat().st_size for p in sorted(public.iterdir())})
        tick("write live", 1, 1)
    counts = {kind: len(plan.of(kind)) for kind in (TRAIN, "embargo", VALIDATION, "unresolved", LIVE)}
    return SignalsBuildReport(
        version=version,
        version_dir=finals[0],
        private_dir=finals[1] if private_dir is not None else None,
        live_date=f"{live_date:%Y-%m-%d}",
        dates=counts,
        rows=rows,
        features=feature_names,
        targets=target_names,
        neutralizers=list(inputs.risk.names),
        embargo_eras=plan.embargo_eras,
        horizon_days=plan.horizon_days,
        files=files,
    )
