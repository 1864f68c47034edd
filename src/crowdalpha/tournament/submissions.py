"""Submission validation, upload timing and receipts (reference §1.10, DESIGN "Submissions").

:func:`validate_submission` takes the uploaded bytes, the round's live universe and the
tournament's :class:`~crowdalpha.tournament.config.SubmissionRules`, and either returns a
:class:`ValidatedSubmission` or raises :class:`SubmissionError` whose ``rule`` is a stable code and
whose message names the rule and the first offending ids or rows (at most five). It accepts
exactly the tables numerai-tools 0.7.2's ``validate_submission_{numerai,signals,crypto}`` accept
and keeps the same rows. Checks run in this order:

1. size — over ``max_upload_bytes`` → ``too_large``;
2. format, from the content (not the file name): Parquet starts with ``PAR1``; anything else must
   be UTF-8 text read as CSV → ``empty_file``, ``not_csv_or_parquet``, ``malformed_csv``,
   ``malformed_parquet``; a Parquet file's stored pandas index becomes its leading columns;
3. headers — after dropping ``ignored_columns`` and the first date column, the columns must be
   exactly ``[id column, prediction column]`` → ``invalid_submission_headers``; a file with a
   header but no rows → ``empty_file``; predictions that are not numbers → ``non_numeric_values``;
4. ids — every row has an id (``blank_ids``); ids are text, compared with the universe's ids for
   that column (``id_column_not_in_universe`` if it has none); rows whose id is not in the
   universe are ignored (reported as ``invalid_tickers``); the rest must be unique
   (``duplicate_ids``) and cover every live id when ``min_tickers`` is None
   (``missing_live_ids``) or number at least ``min_tickers`` (``too_few_tickers``);
5. values of the universe rows — no NaN (``nan_values``), no ±inf (``infinite_values``), within
   [0, 1] inclusive (``out_of_range``; numerai-tools' float tolerance: down to −1e-8 and up to
   1 + 1.001e-5), not constant (``constant``: sample standard deviation ≈ 0).

Row numbers in messages count data rows from 1 (the header is not a row).
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from crowdalpha.tournament.calendar import RoundSchedule, as_utc, latest_round, next_round
from crowdalpha.tournament.config import SubmissionRules, TournamentConfig

FileFormat = Literal["csv", "parquet"]

PARQUET_MAGIC = b"PAR1"
MAX_LISTED = 5
_SNIFF_BYTES = 64 * 1024
# The cells pandas reads as missing by default; only the prediction column treats them so (ids are text).
_NA_TOKENS = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


class SubmissionRule(StrEnum):
    """The stable codes of the rules an upload can break."""

    TOO_LARGE = "too_large"
    EMPTY_FILE = "empty_file"
    NOT_CSV_OR_PARQUET = "not_csv_or_parquet"
    MALFORMED_CSV = "malformed_csv"
    MALFORMED_PARQUET = "malformed_parquet"
    INVALID_HEADERS = "invalid_submission_headers"
    NON_NUMERIC_VALUES = "non_numeric_values"
    BLANK_IDS = "blank_ids"
    ID_COLUMN_NOT_IN_UNIVERSE = "id_column_not_in_universe"
    DUPLICATE_IDS = "duplicate_ids"
    MISSING_LIVE_IDS = "missing_live_ids"
    TOO_FEW_TICKERS = "too_few_tickers"
    NAN_VALUES = "nan_values"
    INFINITE_VALUES = "infinite_values"
    OUT_OF_RANGE = "out_of_range"
    CONSTANT = "constant"


class SubmissionError(ValueError):
    """An upload broke a submission rule; ``rule`` is its stable code, the message ``<rule>: <detail>``."""

    def __init__(self, rule: SubmissionRule, detail: str) -> None:
        self.rule = rule
        self.detail = detail
        super().__init__(f"{rule.value}: {detail}")


@dataclass(frozen=True, eq=False)
class ValidatedSubmission:
    """A valid upload: the universe members it predicts, ascending by id, with their predictions."""

    file_format: FileFormat
    id_column: str
    prediction_column: str
    date_column: str | None
    ids: np.ndarray
    values: np.ndarray
    n_rows: int
    n_universe: int
    invalid_tickers: tuple[str, ...]

    @property
    def n_valid(self) -> int:
        """Return how many universe members the submission predicts (rows kept)."""
        return len(self.ids)

    @property
    def n_invalid(self) -> int:
        """Return how many distinct submitted ids are not in the universe (rows ignored)."""
        return len(self.invalid_tickers)

    def to_series(self) -> pd.Series:
        """Return the kept predictions as a float64 Series indexed by id (named after the file's columns)."""
        return pd.Series(
            self.values,
            index=pd.Index(self.ids, name=self.id_column, dtype=object),
            name=self.prediction_column,
        )


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return f"{shown}, …" if len(items) > MAX_LISTED else shown


def _rows(count: int, singular: str, plural: str) -> str:
    """Return e.g. ``"1 row is"`` / ``"3 rows are"`` (the subject and verb of a count of rows)."""
    return f"1 row {singular}" if count == 1 else f"{count:,} rows {plural}"


# -- size and format ---------------------------------------------------------------------------------


def check_upload_size(size_bytes: int, max_bytes: int) -> None:
    """Raise ``too_large`` when an upload of ``size_bytes`` bytes (so far) is over ``max_bytes``."""
    if size_bytes > max_bytes:
        raise SubmissionError(
            SubmissionRule.TOO_LARGE, f"the upload is over the limit of {max_bytes:,} bytes"
        )


def detect_format(content: bytes) -> FileFormat:
    """Return ``"parquet"`` or ``"csv"`` judged by the content; raise if it is empty or neither."""
    if len(content) == 0:
        raise SubmissionError(SubmissionRule.EMPTY_FILE, "the upload is empty (0 bytes)")
    if content[:4] == PARQUET_MAGIC:
        return "parquet"
    head = content[:_SNIFF_BYTES]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(content) <= _SNIFF_BYTES)
        is_text = b"\x00" not in head
    except UnicodeDecodeError:
        is_text = False
    if not is_text:
        raise _not_csv_or_parquet(content)
    return "csv"


def _not_csv_or_parquet(content: bytes) -> SubmissionError:
    return SubmissionError(
        SubmissionRule.NOT_CSV_OR_PARQUET,
        "the upload is neither UTF-8 CSV text nor a Parquet file;"
        f" its first bytes are {content[:8].hex(' ')}",
    )


# -- headers ----------------------------------------------------------------------------------------------


def check_headers(columns: Sequence[str], rules: SubmissionRules) -> tuple[str, str, str | None]:
    """Return ``(id column, prediction column, date column or None)`` of a header; raise on a bad header."""
    remaining = [column for column in columns if column not in rules.ignored_columns]
    date_column = next((column for column in remaining if column in rules.date_columns), None)
    if date_column is not None:
        remaining.remove(date_column)
    if len(remaining) == 2 and remaining[0] in rules.id_columns and remaining[1] in rules.prediction_columns:
        return remaining[0], remaining[1], date_column
    dropped = []
    if rules.date_columns:
        dropped.append(f"an optional date column (one of {list(rules.date_columns)})")
    if rules.ignored_columns:
        dropped.append(f"the ignored columns {list(rules.ignored_columns)}")
    note = f"; {' and '.join(dropped)} are dropped first" if dropped else ""
    raise SubmissionError(
        SubmissionRule.INVALID_HEADERS,
        f"the columns must be exactly [id, prediction] with the id column one of {list(rules.id_columns)}"
        f" and the prediction column one of {list(rules.prediction_columns)}{note};"
        f" got {[str(column) for column in columns]}",
    )


# -- reading ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Table:
    """An upload's rows as the checks read them: each row's id as text and its prediction as a number."""

    id_column: str
    prediction_column: str
    date_column: str | None
    ids: pa.Array
    """Arrow strings: ``""`` for an empty cell, null for a missing id."""
    values: np.ndarray
    """float64, NaN for a missing prediction."""


_PLAIN_CSV_READ_OPTIONS = pa_csv.ReadOptions(use_threads=False)


@functools.lru_cache(maxsize=64)
def _plain_csv_convert_options(header: tuple[str, ...], prediction_column: str) -> pa_csv.ConvertOptions:
    """Return how a plain CSV with this header is read: every column as text but the predictions."""
    types = {column: pa.string() for column in header} | {prediction_column: pa.float64()}
    return pa_csv.ConvertOptions(column_types=types, null_values=list(_NA_TOKENS), strings_can_be_null=False)


def _read_plain_csv(content: bytes, rules: SubmissionRules) -> _Table | None:
    """Return the rows of a plain CSV read by pyarrow (several times faster than pandas), or None.

    "Plain": no byte-order mark or leading blank line, an unquoted header that passes
    :func:`check_headers`, the same number of fields on every row, predictions that are finite
    numbers or empty/NA cells. For such a file pyarrow reads the same rows pandas does (ids as
    the text in the cell, the NA tokens as missing predictions), and they stay Arrow arrays: no
    Python string per id. Anything else — and any file breaking a rule, so that its message is
    pandas' — returns None for :func:`_read_any_csv`.
    """
    line_end = content.find(b"\n")
    header_line = content[: line_end if line_end >= 0 else len(content)].rstrip(b"\r")
    if not header_line or header_line.startswith(codecs.BOM_UTF8) or b'"' in header_line:
        return None
    try:
        header = header_line.decode("utf-8").split(",")
        columns = check_headers(header, rules)
    except (UnicodeDecodeError, SubmissionError):
        return None
    if len(set(header)) != len(header):
        return None
    prediction_column = columns[1]
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(content),
            read_options=_PLAIN_CSV_READ_OPTIONS,
            convert_options=_plain_csv_convert_options(tuple(header), prediction_column),
        )
    except (pa.ArrowException, ValueError):
        return None
    if table.column_names != header:
        return None
    predictions = table.column(prediction_column)
    values = predictions.to_numpy(zero_copy_only=False)  # a missing prediction is NaN
    missing = predictions.is_null().to_numpy(zero_copy_only=False)
    if not np.isfinite(values[~missing]).all():
        return None  # the spellings of NaN and infinity the two parsers accept differ: let pandas decide
    ids = table.column(columns[0])
    return _Table(*columns, ids=ids.combine_chunks() if ids.num_chunks != 1 else ids.chunk(0), values=values)


def _read_any_csv(content: bytes, rules: SubmissionRules) -> tuple[pd.DataFrame, tuple[str, str, str | None]]:
    """Return the table of any CSV pandas reads; raise the rule a malformed one breaks."""
    try:
        header = [str(column) for column in pd.read_csv(io.BytesIO(content), nrows=0).columns]
        columns = check_headers(header, rules)
        prediction_column = columns[1]
        frame = pd.read_csv(
            io.BytesIO(content),
            # Python strings, not pandas' Arrow strings: the ids are hashed against the universe next.
            dtype={column: object for column in header if column != prediction_column},
            keep_default_na=False,
            na_values={prediction_column: list(_NA_TOKENS)},
        )
    except pd.errors.EmptyDataError:
        raise SubmissionError(SubmissionRule.EMPTY_FILE, "the upload has no header and no rows") from None
    except pd.errors.ParserError as error:
        raise SubmissionError(
            SubmissionRule.MALFORMED_CSV, f"the CSV could not be parsed: {str(error).strip()}"
        ) from None
    except UnicodeDecodeError:
        raise _not_csv_or_parquet(content) from None
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas turns leading fields into an index when every row has more fields than the header.
        raise SubmissionError(
            SubmissionRule.MALFORMED_CSV, f"the rows have more fields than the header {header}"
        )
    return frame, columns


def _read_parquet(content: bytes, rules: SubmissionRules) -> tuple[pd.DataFrame, tuple[str, str, str | None]]:
    try:
        frame = pq.read_table(pa.BufferReader(content)).to_pandas()
    except (pa.ArrowException, OSError, ValueError, TypeError) as error:
        raise SubmissionError(
            SubmissionRule.MALFORMED_PARQUET, f"the Parquet file could not be read: {error}"
        ) from None
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()  # a stored index (e.g. ``id``) is a column of the submission
    return frame, check_headers([str(column) for column in frame.columns], rules)


def _table_of_frame(frame: pd.DataFrame, columns: tuple[str, str, str | None]) -> _Table:
    """Return the rows of a table pandas read; raise ``empty_file`` or ``non_numeric_values``."""
    if len(frame) == 0:
        raise SubmissionError(SubmissionRule.EMPTY_FILE, "the file has a header but no data rows")
    id_column, prediction_column, _ = columns
    values = _numeric_values(frame, id_column, prediction_column)
    raw_ids = frame[id_column]
    ids = pa.array(_text_ids(raw_ids), type=pa.string(), mask=raw_ids.isna().to_numpy())
    return _Table(*columns, ids=ids, values=values)


def _numeric_values(frame: pd.DataFrame, id_column: str, prediction_column: str) -> np.ndarray:
    raw = frame[prediction_column]
    if raw.dtype.kind in "fiu":
        return raw.to_numpy(dtype=np.float64)
    numbers = pd.to_numeric(raw, errors="coerce")
    bad = np.flatnonzero(numbers.isna().to_numpy() & raw.notna().to_numpy())
    if len(bad):
        ids = frame[id_column].to_numpy()
        raw_values = raw.to_numpy()
        raise SubmissionError(
            SubmissionRule.NON_NUMERIC_VALUES,
            f"predictions must be numbers; {_rows(len(bad), 'is', 'are')} not: "
            + _listing(
                [f"{str(ids[i])!r} = {str(raw_values[i])!r} (row {i + 1})" for i in bad[: MAX_LISTED + 1]]
            ),
        )
    return numbers.to_numpy(dtype=np.float64)


# -- the universe -----------------------------------------------------------------------------------------


class PreparedUniverse:
    """A round's live universe ready to check many uploads against: per id column, its distinct ids, sorted.

    Building the index of a universe's ids costs more than checking one upload against it, and a
    round's universe never changes, so a server prepares it once (:func:`prepare_universe`) and
    validates every upload of the round with the same object. Columns are prepared on first use.
    """

    def __init__(self, universe: Mapping[str, Any] | pd.DataFrame) -> None:
        self._universe = universe
        self._members: dict[str, pd.Index] = {}
        self._lookups: dict[str, pc.SetLookupOptions] = {}
        self._last_positions: dict[str, tuple[pa.Array, np.ndarray]] = {}

    def __contains__(self, id_column: object) -> bool:
        """Return True if the universe has ids for this column."""
        return id_column in self._universe

    def __iter__(self) -> Iterator[str]:
        """Yield the universe's id columns."""
        return iter(self._universe)

    def members(self, id_column: str) -> pd.Index:
        """Return the column's distinct ids as text, ascending; raise when the universe lacks the column."""
        members = self._members.get(id_column)
        if members is None:
            members = self._members[id_column] = _universe_members(self._universe, id_column)
        return members

    def positions(self, id_column: str, ids: pa.Array) -> np.ndarray:
        """Return each id's position among the column's members (``members(id_column)``), -1 if not one.

        The array is read-only. Uploads of a round mostly list the ids in the live file's order, so
        the last answer is kept: the same ids again (one comparison of their bytes) get it back.
        """
        last = self._last_positions.get(id_column)
        if last is not None and last[0].equals(ids):
            return last[1]
        lookup = self._lookups.get(id_column)
        if lookup is None:
            members = pa.array(self.members(id_column).to_numpy(), type=pa.string())
            lookup = self._lookups[id_column] = pc.SetLookupOptions(value_set=members)
        # Arrow matches the UTF-8 bytes of the ids in C: no Python string per submitted id.
        positions = pc.fill_null(pc.index_in(ids, options=lookup), -1).to_numpy()
        positions.setflags(write=False)
        self._last_positions[id_column] = (ids, positions)  # one assignment: safe across threads
        return positions


def prepare_universe(universe: Mapping[str, Any] | pd.DataFrame | PreparedUniverse) -> PreparedUniverse:
    """Return ``{id column: ids}`` prepared for :func:`validate_submission` (as it is if already prepared)."""
    return universe if isinstance(universe, PreparedUniverse) else PreparedUniverse(universe)


def _universe_members(universe: Mapping[str, Any] | pd.DataFrame, id_column: str) -> pd.Index:
    if id_column not in universe:
        raise SubmissionError(
            SubmissionRule.ID_COLUMN_NOT_IN_UNIVERSE,
            f"this round's universe has no {id_column!r} ids;"
            f" submit with one of {[str(column) for column in universe]}",
        )
    distinct = pd.Series(np.asarray(universe[id_column], dtype=object)).dropna().astype(str).unique()
    if len(distinct) == 0:
        raise ValueError(
            f"the live universe has no {id_column!r} ids; a round needs a universe to validate against"
        )
    # Sorted, so that the members' positions order the kept rows by id; object dtype hashes fastest.
    return pd.Index(np.sort(np.asarray(distinct, dtype=object)), dtype=object)


def _text_ids(raw_ids: pd.Series) -> np.ndarray:
    """Return the ids as an object array of text (already text: as they are; else ``astype(str)``)."""
    values = raw_ids.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values
    return raw_ids.astype(str).to_numpy(dtype=object)


# -- the whole check -----------------------------------------------------------------------------------------


def validate_submission(
    content: bytes, universe: Mapping[str, Any] | pd.DataFrame | PreparedUniverse, rules: SubmissionRules
) -> ValidatedSubmission:
    """Return the validated rows of an uploaded CSV or Parquet submission; raise SubmissionError on a bad one.

    ``universe`` maps each id column the round supports to its live ids (a DataFrame works too):
    ``{"id": live_ids}`` for Classic, ``{"numerai_ticker": […], "composite_figi": […]}`` for Signals;
    pass a :func:`prepare_universe` result when validating many uploads against one universe.
    """
    content = bytes(content)
    check_upload_size(len(content), rules.max_upload_bytes)
    file_format = detect_format(content)
    table = _read_plain_csv(content, rules) if file_format == "csv" else None
    if table is None:
        reader = _read_parquet if file_format == "parquet" else _read_any_csv
        table = _table_of_frame(*reader(content, rules))
    if len(table.values) == 0:
        raise SubmissionError(SubmissionRule.EMPTY_FILE, "the file has a header but no data rows")
    id_column, ids, values = table.id_column, table.ids, table.values
    rows = np.arange(1, len(values) + 1)

    blank = pc.equal(ids, "").fill_null(True).to_numpy(zero_copy_only=False)
    if blank.any():
        raise SubmissionError(
            SubmissionRule.BLANK_IDS,
            f"every row needs a value in {id_column!r}; {_rows(int(blank.sum()), 'has', 'have')} none: "
            + _listing([f"row {row}" for row in rows[blank][: MAX_LISTED + 1]]),
        )

    prepared = prepare_universe(universe)
    members = prepared.members(id_column)
    positions = prepared.positions(id_column, ids)
    live = positions >= 0
    live_values, live_rows, live_positions = values[live], rows[live], positions[live]
    invalid_tickers = () if live.all() else tuple(sorted(set(ids.filter(pa.array(~live)).to_pylist())))
    # A kept id is a member: the members' own strings name it (no string is made per row).
    member_ids = members.to_numpy()
    _check_unique(member_ids, live_rows, live_positions, id_column)
    _check_coverage(member_ids, live_positions, invalid_tickers, id_column, rules)
    _check_values(member_ids[live_positions], live_values, live_rows)

    # The members are sorted and the kept ids unique, so their positions sort them by id.
    order = np.argsort(live_positions)
    return ValidatedSubmission(
        file_format=file_format,
        id_column=id_column,
        prediction_column=table.prediction_column,
        date_column=table.date_column,
        ids=member_ids[live_positions[order]],
        values=live_values[order],
        n_rows=len(values),
        n_universe=len(members),
        invalid_tickers=invalid_tickers,
    )


def _check_unique(members: np.ndarray, rows: np.ndarray, positions: np.ndarray, id_column: str) -> None:
    # Each member has one position, so an id is repeated exactly when its position is.
    repeated = np.bincount(positions)[positions] > 1 if len(positions) else np.zeros(0, dtype=bool)
    if not repeated.any():
        return
    rows_of: dict[str, list[int]] = {}
    for identifier, row in zip(members[positions[repeated]], rows[repeated], strict=True):
        rows_of.setdefault(identifier, []).append(int(row))
    labels = [f"{identifier!r} (rows {', '.join(map(str, found))})" for identifier, found in rows_of.items()]
    count = len(rows_of)
    raise SubmissionError(
        SubmissionRule.DUPLICATE_IDS,
        f"each {id_column!r} may appear once; {count:,} {'id appears' if count == 1 else 'ids appear'}"
        f" more than once: {_listing(labels)}",
    )


def _check_coverage(
    members: np.ndarray,
    positions: np.ndarray,
    invalid_tickers: tuple[str, ...],
    id_column: str,
    rules: SubmissionRules,
) -> None:
    # ``positions`` are unique here (checked before), so they count the members predicted.
    if rules.min_tickers is None:
        if len(positions) >= len(members):
            return
        missing = members[np.bincount(positions, minlength=len(members)) == 0]  # sorted, as the members
        raise SubmissionError(
            SubmissionRule.MISSING_LIVE_IDS,
            f"the submission must cover every live id; {len(missing):,} of {len(members):,} are missing: "
            + _listing([repr(identifier) for identifier in missing]),
        )
    if len(positions) >= rules.min_tickers:
        return
    outside = (
        f"; {len(invalid_tickers):,} submitted {id_column!r} values are not in the universe: "
        + _listing([repr(identifier) for identifier in invalid_tickers])
        if invalid_tickers
        else ""
    )
    raise SubmissionError(
        SubmissionRule.TOO_FEW_TICKERS,
        f"at least {rules.min_tickers:,} rows must be members of the live universe;"
        f" got {len(positions):,}{outside}",
    )


def _value_labels(ids: np.ndarray, values: np.ndarray, rows: np.ndarray, where: np.ndarray) -> str:
    return _listing(
        [
            f"{ids[i]!r} = {float(values[i])!r} (row {rows[i]})"
            for i in np.flatnonzero(where)[: MAX_LISTED + 1]
        ]
    )


def _check_values(ids: np.ndarray, values: np.ndarray, rows: np.ndarray) -> None:
    nan = np.isnan(values)
    if nan.any():
        raise SubmissionError(
            SubmissionRule.NAN_VALUES,
            f"predictions must not be NaN; {_rows(int(nan.sum()), 'is', 'are')}: "
            + _listing([f"{ids[i]!r} (row {rows[i]})" for i in np.flatnonzero(nan)[: MAX_LISTED + 1]]),
        )
    infinite = np.isinf(values)
    if infinite.any():
        raise SubmissionError(
            SubmissionRule.INFINITE_VALUES,
            f"predictions must be finite; {_rows(int(infinite.sum()), 'is', 'are')} not: "
            + _value_labels(ids, values, rows, infinite),
        )
    # numerai-tools accepts a minimum within np.isclose of 0 and a maximum within np.isclose of 1
    # (looked at only when some value is outside [0, 1]: np.isclose costs more than the comparisons).
    inside = (values >= 0) & (values <= 1)
    if not inside.all():
        inside = ((values >= 0) | np.isclose(values, 0.0)) & ((values <= 1) | np.isclose(values, 1.0))
    if not inside.all():
        raise SubmissionError(
            SubmissionRule.OUT_OF_RANGE,
            f"predictions must lie in [0, 1]; {_rows(int((~inside).sum()), 'does', 'do')} not: "
            + _value_labels(ids, values, rows, ~inside),
        )
    if len(values) >= 2:
        spread = float(np.std(values, ddof=1))
        if np.isclose(0.0, spread):
            raise SubmissionError(
                SubmissionRule.CONSTANT,
                f"predictions must not all be equal; their standard deviation over {len(values):,} rows"
                f" is {spread:.3g}",
            )


# -- upload timing ---------------------------------------------------------------------------------


class UploadKind(StrEnum):
    """When an upload arrived relative to the round windows."""

    ON_TIME = "on_time"
    LATE = "late"
    QUEUED = "queued"


@dataclass(frozen=True)
class UploadTiming:
    """How an upload counts: for which round, and which round it becomes on-time for when that round opens.

    ``on_time``: inside a round's window (``queued_for`` is None). ``late``: after a round's
    close but inside its late window — scored for that round, never staked — and, as on Numerai,
    also queued for the next round. ``queued``: between rounds after the late window — it belongs
    to the next round only.
    """

    kind: UploadKind
    round_number: int
    queued_for: int | None = None


def classify_upload(rounds: Iterable[RoundSchedule], uploaded_at: datetime) -> UploadTiming:
    """Return how an upload at ``uploaded_at`` counts, given the schedules of the rounds around then."""
    uploaded_at = as_utc(uploaded_at, "uploaded_at")
    schedules = sorted(rounds, key=lambda schedule: schedule.number)
    if not schedules:
        raise ValueError("classify_upload needs at least one round schedule")
    for schedule in schedules:
        if schedule.open_time <= uploaded_at < schedule.close_staking_time:
            return UploadTiming(UploadKind.ON_TIME, schedule.number)
    opened = [schedule for schedule in schedules if schedule.open_time <= uploaded_at]
    upcoming = [schedule for schedule in schedules if schedule.open_time > uploaded_at]
    previous = opened[-1] if opened else None
    if upcoming:
        following = upcoming[0].number
    elif previous is not None:
        following = previous.number + 1
    else:  # pragma: no cover - every schedule either opened or is upcoming
        raise AssertionError("unreachable")
    if previous is not None and uploaded_at < previous.close_time:
        return UploadTiming(UploadKind.LATE, previous.number, queued_for=following)
    return UploadTiming(UploadKind.QUEUED, following, queued_for=following)


def upload_timing(config: TournamentConfig, uploaded_at: datetime) -> UploadTiming:
    """Return how an upload at ``uploaded_at`` counts on the tournament's calendar."""
    around = [latest_round(config, uploaded_at), next_round(config, uploaded_at)]
    return classify_upload([schedule for schedule in around if schedule is not None], uploaded_at)


# -- receipts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """What an accepted upload gets back: its SHA-256 (hex), its size in bytes and its arrival time (UTC)."""

    sha256: str
    size_bytes: int
    received_at: datetime


class ReceiptBuilder:
    """Hashes an upload chunk by chunk as it streams in; raises ``too_large`` once it passes the limit."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self._hash = hashlib.sha256()
        self._size = 0
        self._max_bytes = max_bytes

    @property
    def size_bytes(self) -> int:
        """Return the number of bytes received so far."""
        return self._size

    def update(self, chunk: bytes) -> int:
        """Add a chunk; return the bytes received so far; raise ``too_large`` once over the limit."""
        self._size += len(chunk)
        if self._max_bytes is not None:
            check_upload_size(self._size, self._max_bytes)
        self._hash.update(chunk)
        return self._size

    def finish(self, received_at: datetime) -> Receipt:
        """Return the receipt of everything received, stamped with ``received_at`` (the caller's clock)."""
        return Receipt(self._hash.hexdigest(), self._size, as_utc(received_at, "received_at"))


def upload_receipt(content: bytes, received_at: datetime) -> Receipt:
    """Return the receipt (SHA-256 hex, size in bytes, UTC arrival time) of a whole upload."""
    builder = ReceiptBuilder()
    builder.update(content)
    return builder.finish(received_at)
