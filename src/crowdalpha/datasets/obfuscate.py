"""Classic obfuscation: an era frame of raw features and binned targets → anonymous, era-local rows.

The input is an *era frame*: one row per (date, asset) for the weekly era dates (and the live
date), with ``raw_*`` feature columns and already-binned target columns. Each era is turned into
published rows independently, so the work streams era by era in bounded memory:

1. **Features → 5 equal-frequency bins, int8 0..4, per era and feature.** A value's bin is
   ``floor(5 · u)`` with ``u = (average rank − 0.5) / n`` over the era's finite values: equal
   values share a bin (ties kept, so the result does not depend on row order), a constant
   feature lands in bin 2, and a missing value (NaN or ±inf) is **2**, the middle bin — the
   value Numerai's example code imputes for a missing feature.
2. **Names** ``feature_<word>_<word>_<word>``: three pronounceable words drawn from
   HMAC-SHA256(secret, raw name). A name depends only on the secret and the raw name, so the
   same secret gives the same names in every version and another secret gives other names.
3. **Ids** ``n`` + 15 hex digits: the first 60 bits of HMAC-SHA256(secret, tag ‖ asset), where
   the tag is the era's date (``live:<date>`` for a live round). Ids are unique within an era
   (checked: a collision stops the build) and cannot be linked across eras without the secret.
4. **Row order**: ascending id — a shuffle keyed by the secret, independent of input order.

Private by design: the era's date and the asset of every row travel with the result
(:class:`ObfuscatedEra`) so that the caller can write the id → asset map to private storage; no
published column carries them.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from crowdalpha.datasets.errors import rule_error

if TYPE_CHECKING:
    import pandas as pd

N_BINS = 5
MISSING_BIN = 2
"""Bin of a missing (NaN or infinite) raw value: the middle bin, as Numerai imputes missing features."""
RAW_PREFIX = "raw_"
FEATURE_PREFIX = "feature_"
TARGET_COLUMN = "target"
TARGET_PREFIX = "target_"
ID_HEX_DIGITS = 15
LIVE = "live"

_NAME_DOMAIN = b"crowdalpha/feature-name/v1\x00"
_ID_DOMAIN = b"crowdalpha/row-id/v1\x00"
_ORDER_DOMAIN = b"crowdalpha/keyed-order/v1\x00"
_FINGERPRINT_DOMAIN = b"crowdalpha/secret-fingerprint/v1"
_CONSONANTS = "bdfghjklmnprstvz"
_VOWELS = "aeiou"
_SYLLABLES = tuple(c + v for c in _CONSONANTS for v in _VOWELS)
_WORDS_PER_NAME = 3
_SYLLABLES_PER_WORD = 3
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
MIN_SECRET_BYTES = 16


# ------------------------------------------------------------------------------------------- binning


def equal_frequency_bins(values: np.ndarray) -> np.ndarray:
    """Return int8 bins 0..4 of a ``(features, rows)`` matrix, per feature: equal frequency, ties kept.

    Bin = ``floor(5 · (average rank − 0.5) / n)`` over the feature's finite values; NaN/±inf → 2.
    The first rank of bin k is ``ceil((2kn − 5) / 10)``: the value at that rank is the bin's
    threshold, found by one sort per feature; a threshold value that repeats
    goes up to bin k with its whole run of ties or stays below, by the run's average rank. Then
    four threshold comparisons bin every value.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"equal_frequency_bins needs a (features, rows) matrix, got shape {values.shape}")
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    n_features, n_rows = values.shape
    if n_rows == 0 or n_features == 0:
        return np.zeros((n_features, n_rows), dtype=np.int8)
    finite = np.isfinite(values)
    has_missing = not finite.all()
    if has_missing:
        values = np.where(finite, values, np.nan)
        n_valid = np.count_nonzero(finite, axis=1)
    else:
        n_valid = np.full(n_features, n_rows, dtype=np.intp)
    bin_index = np.arange(1, N_BINS, dtype=np.int64)
    valid = n_valid[:, None].astype(np.int64)
    first_rank = np.maximum(-((5 - 2 * bin_index * valid) // 10), 0)  # ceil((2kn - 5) / 10)
    unreached = first_rank >= valid
    position = np.minimum(first_rank, np.maximum(valid - 1, 0))
    thresholds, below, through = _order_statistics(values, position, valid)
    inclusive = 5 * (below + through) >= 2 * bin_index * valid
    cuts = np.where(inclusive, np.nextafter(thresholds, -np.inf), thresholds)
    cuts[unreached] = np.inf
    bins = np.zeros((n_features, n_rows), dtype=np.int8)
    for k in range(N_BINS - 1):
        np.add(bins, values > cuts[:, k : k + 1], out=bins, casting="unsafe")
    if has_missing:
        bins[~finite] = MISSING_BIN
    return bins


OrderStatistics = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(value at each position, count of values below it, count of values at or below it), each (rows, k)."""


def _order_statistics(values: np.ndarray, position: np.ndarray, valid: np.ndarray) -> OrderStatistics:
    """Return the order statistics at ``position`` of each row, by sorting every row (NaN last)."""
    ordered = np.sort(values, axis=1)
    thresholds = np.take_along_axis(ordered, position, axis=1)
    before = np.take_along_axis(ordered, np.maximum(position - 1, 0), axis=1)
    after = np.take_along_axis(ordered, np.minimum(position + 1, values.shape[1] - 1), axis=1)
    tied = ((position > 0) & (before == thresholds)) | ((position + 1 < valid) & (after == thresholds))
    below, through = position.copy(), position + 1
    if tied.any():
        rows = np.flatnonzero(tied.any(axis=1))
        run = ordered[rows][:, None, :]
        cut = thresholds[rows][:, :, None]
        below[rows] = np.count_nonzero(run < cut, axis=2)
        through[rows] = np.count_nonzero(run <= cut, axis=2)
    return thresholds, below, through


# ---------------------------------------------------------------------------------------- keyed names


class _Prf:
    """HMAC-SHA256 with the key schedule done once, so millions of short messages stay cheap."""

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\x00")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def prefix64(self, prefix: bytes, messages: Iterable[bytes]) -> np.ndarray:
        """Return the first 8 bytes of HMAC(key, prefix ‖ m) for each message, as big-endian uint64."""
        start = self._inner.copy()
        start.update(prefix)
        inner_copy, outer_copy = start.copy, self._outer.copy
        out = bytearray()
        for message in messages:
            inner = inner_copy()
            inner.update(message)
            outer = outer_copy()
            outer.update(inner.digest())
            out += outer.digest()[:8]
        return np.frombuffer(bytes(out), dtype=">u8").astype(np.uint64)


class SecretKeys:
    """Everything derived from the operator secret: feature names, row ids, keyed orders."""

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes | bytearray):
            raise rule_error("the operator secret is bytes", f"got {type(secret).__name__}")
        if len(secret) < MIN_SECRET_BYTES:
            raise rule_error(
                f"the operator secret must be at least {MIN_SECRET_BYTES} bytes",
                f"got {len(secret)} byte(s)",
            )
        self._prf = _Prf(bytes(secret))

    @property
    def fingerprint(self) -> str:
        """Return 16 hex digits identifying the secret (safe to store; reveals nothing usable)."""
        return self._prf.digest(_FINGERPRINT_DOMAIN)[:8].hex()

    def feature_name(self, raw_name: str) -> str:
        """Return the public name ``feature_<word>_<word>_<word>`` of a raw feature."""
        digest = self._prf.digest(_NAME_DOMAIN + raw_name.encode())
        syllables = [
            _SYLLABLES[int.from_bytes(digest[2 * i : 2 * i + 2], "big") % len(_SYLLABLES)]
            for i in range(_WORDS_PER_NAME * _SYLLABLES_PER_WORD)
        ]
        words = [
            "".join(syllables[w * _SYLLABLES_PER_WORD : (w + 1) * _SYLLABLES_PER_WORD])
            for w in range(_WORDS_PER_NAME)
        ]
        return FEATURE_PREFIX + "_".join(words)

    def feature_names(self, raw_names: Sequence[str], *, taken: Iterable[str] = ()) -> dict[str, str]:
        """Return raw name → public name; raise DatasetError if two names collide (with ``taken`` too)."""
        names = {raw: self.feature_name(raw) for raw in raw_names}
        seen: dict[str, str] = {name: "(an existing feature)" for name in taken}
        for raw, name in names.items():
            if name in seen:
                raise rule_error(
                    "public feature names must be unique",
                    f"{raw!r} and {seen[name]!r} both map to {name}; rename one raw feature",
                )
            seen[name] = raw
        return names

    def keyed_order(self, label: str, names: Sequence[str]) -> list[str]:
        """Return ``names`` in a pseudo-random order fixed by the secret and ``label``."""
        prefix = _ORDER_DOMAIN + label.encode() + b"\x00"
        keys = self._prf.prefix64(prefix, [name.encode() for name in names])
        return [names[i] for i in np.lexsort((np.arange(len(names)), keys))]

    def row_ids(self, tag: str, assets: Sequence[str]) -> np.ndarray:
        """Return the 60-bit id values (uint64) of the assets' rows in the era tagged ``tag``."""
        prefix = _ID_DOMAIN + tag.encode() + b"\x00"
        values = self._prf.prefix64(prefix, [str(asset).encode() for asset in assets])
        return values >> np.uint64(64 - 4 * ID_HEX_DIGITS)


def id_strings(values: np.ndarray) -> pa.StringArray:
    """Return the ids ``n`` + 15 lowercase hex digits of 60-bit id values, as an Arrow string array."""
    values = np.asarray(values, dtype=np.uint64)
    shifts = np.arange(4 * (ID_HEX_DIGITS - 1), -1, -4, dtype=np.uint64)
    digits = ((values[:, None] >> shifts) & np.uint64(0xF)).astype(np.intp)
    chars = np.empty((len(values), ID_HEX_DIGITS + 1), dtype=np.uint8)
    chars[:, 0] = ord("n")
    chars[:, 1:] = _HEX[digits]
    width = ID_HEX_DIGITS + 1
    offsets = np.arange(0, width * (len(values) + 1), width, dtype=np.int32)
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))


def id_tag(date: str, data_type: str) -> str:
    """Return the tag that keys an era's ids: its ISO date, or ``live:<date>`` for a live round."""
    return f"{LIVE}:{date}" if data_type == LIVE else date


# ---------------------------------------------------------------------------------------- one era


@dataclass(frozen=True)
class EraRows:
    """One era of an era frame: raw feature values and binned targets of its assets."""

    era: str
    date: str
    data_type: str
    assets: np.ndarray
    features: np.ndarray
    """Raw values, shape ``(features, rows)``."""
    targets: np.ndarray
    """Binned targets, shape ``(targets, rows)``; NaN where unknown."""


@dataclass(frozen=True)
class ObfuscatedEra:
    """One era as published (ids, int8 features, float32 targets) plus its private row → asset map."""

    era: str
    data_type: str
    ids: np.ndarray
    """60-bit id values (uint64), ascending: the published row order."""
    features: np.ndarray
    """int8 bins 0..4, shape ``(features, rows)``."""
    targets: np.ndarray
    """float32, shape ``(targets, rows)``."""
    date: str
    """Private: the era's market date."""
    assets: np.ndarray
    """Private: the asset of each published row."""

    @property
    def rows(self) -> int:
        """Return the number of rows in the era."""
        return len(self.ids)


def obfuscate_era(rows: EraRows, keys: SecretKeys) -> ObfuscatedEra:
    """Return one era binned, with keyed ids, rows in ascending id order; raise on an id collision."""
    ids = keys.row_ids(id_tag(rows.date, rows.data_type), rows.assets)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    if len(ids) > 1 and bool(np.any(ids[1:] == ids[:-1])):
        clash = int(np.flatnonzero(ids[1:] == ids[:-1])[0])
        raise rule_error(
            "ids must be unique within an era",
            f"two assets of era {rows.era} share an id ({rows.assets[order[clash]]!r}, "
            f"{rows.assets[order[clash + 1]]!r}); duplicate asset ids in the input?",
        )
    features = equal_frequency_bins(rows.features)[:, order]
    targets = np.asarray(rows.targets, dtype=np.float32)[:, order]
    return ObfuscatedEra(
        era=rows.era,
        data_type=rows.data_type,
        ids=ids,
        features=features,
        targets=targets,
        date=rows.date,
        assets=np.asarray(rows.assets)[order],
    )


def default_workers() -> int:
    """Return the number of obfuscation threads to use: the CPU count, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def obfuscate_eras(
    rows: Iterable[EraRows], keys: SecretKeys, *, workers: int | None = None
) -> Iterator[ObfuscatedEra]:
    """Yield each era obfuscated, in input order, with at most ``2 × workers`` eras in flight."""
    workers = workers or default_workers()
    if workers <= 1:
        for era in rows:
            yield obfuscate_era(era, keys)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="obfuscate") as pool:
        pending: deque = deque()
        for era in rows:
            pending.append(pool.submit(obfuscate_era, era, keys))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# --------------------------------------------------------------------------------- era frames (pandas)


def raw_feature_columns(frame: pd.DataFrame) -> list[str]:
    """Return the frame's ``raw_*`` columns, in column order."""
    return [str(c) for c in frame.columns if str(c).startswith(RAW_PREFIX)]


def target_columns(frame: pd.DataFrame) -> list[str]:
    """Return the frame's target columns: ``target`` first, then ``target_*`` in column order."""
    names = [str(c) for c in frame.columns]
    return [c for c in names if c == TARGET_COLUMN] + [c for c in names if c.startswith(TARGET_PREFIX)]


def _first_rows(frame: pd.DataFrame, bad: np.ndarray, column: str | None = None) -> str:
    positions = np.flatnonzero(bad)[:3]
    parts = []
    for position in positions:
        row = frame.iloc[position]
        text = f"row {position}"
        if "date" in frame.columns and "asset" in frame.columns:
            text += f" ({row['date']} {row['asset']}"
            text += f", {column}={row[column]!r})" if column else ")"
        parts.append(text)
    more = int(np.count_nonzero(bad)) - len(positions)
    return ", ".join(parts) + (f", … ({more} more)" if more > 0 else "")


def validate_era_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the era frame with normalised dtypes, sorted by (date, asset), or raise DatasetError.

    Rules: at least one row; columns ``date``, ``asset`` and at least one ``raw_*``; every date
    present and parseable; every asset present; (date, asset) unique; ``raw_*`` and target
    columns numeric (booleans count as 0/1).
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise rule_error("an era frame is a pandas DataFrame", f"got {type(frame).__name__}")
    if len(frame) == 0:
        raise rule_error("the input must have at least one row", "it is empty")
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    missing = [c for c in ("date", "asset") if c not in frame.columns]
    if missing:
        raise rule_error(
            "required columns must be present", f"missing {missing}; found {list(frame.columns)[:12]}"
        )
    if frame.columns.duplicated().any():
        raise rule_error(
            "column names must be unique",
            f"repeated: {sorted(set(frame.columns[frame.columns.duplicated()]))}",
        )
    raw = raw_feature_columns(frame)
    if not raw:
        raise rule_error("at least one raw_* feature column is required", f"found {list(frame.columns)[:12]}")
    dates = pd.to_datetime(frame["date"], errors="coerce")
    bad = dates.isna().to_numpy()
    if bad.any():
        raise rule_error(
            "dates must be present and parseable", f"first offending rows: {_first_rows(frame, bad, 'date')}"
        )
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    frame["date"] = dates.dt.normalize().astype("datetime64[ns]")
    bad = (frame["asset"].isna() | frame["asset"].astype(str).str.strip().eq("")).to_numpy()
    if bad.any():
        raise rule_error("every row needs an asset id", f"first offending rows: {_first_rows(frame, bad)}")
    frame["asset"] = frame["asset"].astype(str)
    bad = frame.duplicated(["date", "asset"], keep="first").to_numpy()
    if bad.any():
        raise rule_error("(date, asset) must be unique", f"first duplicates: {_first_rows(frame, bad)}")
    for column in [*raw, *target_columns(frame)]:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values) or (
            pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_float_dtype(values)
        ):
            frame[column] = values.astype(np.float64)
        elif not pd.api.types.is_numeric_dtype(values):
            converted = pd.to_numeric(values, errors="coerce")
            bad = (converted.isna() & values.notna()).to_numpy()
            what = "raw_* features" if column.startswith(RAW_PREFIX) else "targets"
            if bad.any():
                raise rule_error(
                    f"{what} must be numeric",
                    f"column {column!r} has non-numeric values: {_first_rows(frame, bad, column)}",
                )
            frame[column] = converted.astype(np.float64)
    asset_codes = pd.factorize(frame["asset"], sort=True)[0]
    order = np.lexsort((asset_codes, frame["date"].to_numpy().view(np.int64)))
    if not np.array_equal(order, np.arange(len(order))):
        frame = frame.iloc[order]
    return frame.reset_index(drop=True)


def date_slices(frame: pd.DataFrame) -> dict[str, slice]:
    """Return ISO date → row slice of a date-sorted era frame."""
    dates = frame["date"].to_numpy()
    starts = np.flatnonzero(np.r_[True, dates[1:] != dates[:-1]])
    stops = np.r_[starts[1:], len(dates)]
    return {
        np.datetime_as_string(dates[start], unit="D"): slice(int(start), int(stop))
        for start, stop in zip(starts, stops, strict=True)
    }


def era_rows(
    block: pd.DataFrame,
    *,
    era: str,
    date: str,
    data_type: str,
    features: Sequence[str],
    targets: Sequence[str],
    require: str | None = None,
) -> EraRows:
    """Return one era's rows from its slice of an era frame, dropping rows where ``require`` is NaN."""
    if require is not None:
        block = block[block[require].notna().to_numpy()]
    raw = block[list(features)].to_numpy(dtype=None, copy=False)
    if raw.dtype.kind != "f":
        raw = raw.astype(np.float64)
    if targets:
        target_values = block[list(targets)].to_numpy(dtype=np.float32).T
    else:
        target_values = np.full((0, len(block)), np.nan, dtype=np.float32)
    return EraRows(
        era=era,
        date=date,
        data_type=data_type,
        assets=block["asset"].to_numpy(dtype=object),
        features=np.ascontiguousarray(raw.T),
        targets=target_values,
    )
