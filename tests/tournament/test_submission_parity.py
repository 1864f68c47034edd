"""Submission validation parity with numerai-tools 0.7.2 (the oracle) on a battery of good and bad files.

For every file, crowdalpha accepts it exactly when ``validate_submission_{numerai,signals,crypto}``
accepts the table pandas reads from it (``read_csv`` / ``read_parquet``, a stored index turned back
into columns), and keeps the same rows: the universe members, sorted by id, with identical values
and the same set of ignored (invalid) tickers.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from numerai_tools.submissions import (
    validate_submission_crypto,
    validate_submission_numerai,
    validate_submission_signals,
)
from submission_files import UNIVERSES, csv_bytes, parquet_bytes, predictions

from crowdalpha.tournament import DEFAULT_TOURNAMENTS, SubmissionError, detect_format, validate_submission

# numerai-tools 0.7.2 calls DataFrame.drop(inplace=True), which pandas 3.1 deprecates; not our concern here.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")


@dataclass(frozen=True)
class Case:
    name: str
    tournament: str
    content: bytes


def _frame(id_column: str, ids, values, pred_column: str = "prediction") -> pd.DataFrame:
    return pd.DataFrame({id_column: list(ids), pred_column: values})


def _classic_cases() -> list[Case]:
    ids = list(UNIVERSES["classic"]["id"])
    n = len(ids)
    good = _frame("id", ids, predictions(n))
    shuffled = good.sample(frac=1.0, random_state=3)
    cases = {
        "csv": csv_bytes(good),
        "parquet": parquet_bytes(good),
        "shuffled rows": csv_bytes(shuffled),
        "probability column": csv_bytes(good.rename(columns={"prediction": "probability"})),
        "float32 parquet": parquet_bytes(good.astype({"prediction": np.float32})),
        "id stored as the parquet index": parquet_bytes(good.set_index("id"), index=True),
        "bom and crlf": b"\xef\xbb\xbf" + csv_bytes(good).replace(b"\n", b"\r\n"),
        "zero and one inclusive": csv_bytes(good.assign(prediction=np.r_[0.0, 1.0, predictions(n - 2)])),
        "integer 0/1 predictions": csv_bytes(good.assign(prediction=np.arange(n) % 2)),
        "min a hair below 0": csv_bytes(good.assign(prediction=np.r_[-5e-9, predictions(n - 1)])),
        "max a hair above 1": csv_bytes(good.assign(prediction=np.r_[1 + 5e-6, predictions(n - 1)])),
        "extra ids, with NaN and repeats": csv_bytes(
            pd.concat([good, _frame("id", ["n_extra_a", "n_extra_a", "n_extra_b"], [np.nan, 0.2, 7.0])])
        ),
        "three distinct values": csv_bytes(good.assign(prediction=np.arange(n) % 3 / 2)),
        # bad
        "NaN in a live row": csv_bytes(good.assign(prediction=np.r_[np.nan, predictions(n - 1)])),
        "inf": csv_bytes(good.assign(prediction=np.r_[predictions(n - 1), np.inf])),
        "-inf in parquet": parquet_bytes(good.assign(prediction=np.r_[-np.inf, predictions(n - 1)])),
        "above one": csv_bytes(good.assign(prediction=np.r_[1.5, predictions(n - 1)])),
        "below zero": csv_bytes(good.assign(prediction=np.r_[predictions(n - 1), -0.1])),
        "min beyond the tolerance": csv_bytes(good.assign(prediction=np.r_[-2e-8, predictions(n - 1)])),
        "max beyond the tolerance": csv_bytes(good.assign(prediction=np.r_[1 + 2e-5, predictions(n - 1)])),
        "constant": csv_bytes(good.assign(prediction=0.5)),
        "constant up to 1e-12": csv_bytes(good.assign(prediction=0.5 + 1e-12 * np.arange(n))),
        "duplicate live id": csv_bytes(pd.concat([good, good.iloc[[5]]])),
        "one live id missing": csv_bytes(good.iloc[1:]),
        "wrong prediction header": csv_bytes(good.rename(columns={"prediction": "pred"})),
        "columns swapped": csv_bytes(good[["prediction", "id"]]),
        "an extra column": csv_bytes(good.assign(era="0001")),
        "upper-case id header": csv_bytes(good.rename(columns={"id": "ID"})),
        "a date column in classic": csv_bytes(good.assign(date="2026-04-06")[["date", "id", "prediction"]]),
        "written with its RangeIndex": good.to_csv().encode(),
        "blank id": csv_bytes(pd.concat([good, _frame("id", [""], [0.3])])),
        "text prediction": csv_bytes(
            good.astype({"prediction": object}).assign(prediction=["x", *good.prediction[1:]])
        ),
        "empty": b"",
        "header only": b"id,prediction\n",
        "blank lines only": b"\n\n\n",
        "zip archive": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)),
        "random binary": np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "truncated parquet": parquet_bytes(good)[:-100],
        "parquet magic then junk": b"PAR1" + b"x" * 64 + b"PAR1",
        "a row with an extra field": csv_bytes(good)
        .replace(b"\n", b",1\n", 1)
        .replace(b"prediction,1", b"prediction")
        + b"n_more,0.5,9\n",
        "every row with an extra field": b"id,prediction\n"
        + b"".join(f"{i},{v},1\n".encode() for i, v in zip(ids, predictions(n), strict=True)),
        "unterminated quote": b'id,prediction\n"' + ids[0].encode() + b",0.5\n",
    }
    return [Case(name, "classic", content) for name, content in cases.items()]


def _signals_cases() -> list[Case]:
    universe = UNIVERSES["signals"]
    n = len(universe)
    tickers = universe["numerai_ticker"]
    good = _frame("numerai_ticker", tickers, predictions(n, seed=2), "signal")
    hundred = good.iloc[:100]
    outsiders = _frame(
        "numerai_ticker", [f"X{i:04d} ZZ" for i in range(30)], predictions(30, seed=4), "signal"
    )
    cases = {
        "numerai_ticker and signal": csv_bytes(good),
        "leading date and a data_type column": csv_bytes(
            good.assign(date="2026-04-06", data_type="live")[
                ["date", "numerai_ticker", "signal", "data_type"]
            ]
        ),
        "trailing friday_date": csv_bytes(good.assign(friday_date=20260403)),
        "date between the columns": csv_bytes(
            good.assign(date="2026-04-06")[["numerai_ticker", "date", "signal"]]
        ),
        "composite_figi and prediction parquet": parquet_bytes(
            _frame("composite_figi", universe["composite_figi"], predictions(n, seed=5))
        ),
        "bloomberg_ticker": csv_bytes(
            _frame("bloomberg_ticker", universe["bloomberg_ticker"], predictions(n))
        ),
        "sedol": csv_bytes(_frame("sedol", universe["sedol"], predictions(n))),
        "ticker": csv_bytes(_frame("ticker", universe["ticker"], predictions(n))),
        "exactly 100 members and 30 outsiders": csv_bytes(pd.concat([hundred, outsiders])),
        # bad
        "99 members": csv_bytes(pd.concat([good.iloc[:99], outsiders])),
        "date and friday_date": csv_bytes(good.assign(date="2026-04-06", friday_date=20260403)),
        "cusip column": csv_bytes(good.rename(columns={"numerai_ticker": "cusip"})),
        "duplicate ticker": csv_bytes(pd.concat([good, good.iloc[[0]]])),
        "NaN signal": csv_bytes(good.assign(signal=np.r_[predictions(n - 1), np.nan])),
        "out of range": parquet_bytes(good.assign(signal=np.r_[predictions(n - 1), 2.0])),
        "id header": csv_bytes(good.rename(columns={"numerai_ticker": "id"})),
    }
    return [Case(name, "signals", content) for name, content in cases.items()]


def _crypto_cases() -> list[Case]:
    symbols = UNIVERSES["crypto"]["symbol"]
    n = len(symbols)
    good = _frame("symbol", symbols, predictions(n, seed=6))
    cases = {
        "symbol and prediction": csv_bytes(good),
        "symbol and signal parquet": parquet_bytes(good.rename(columns={"prediction": "signal"})),
        "a subset of 120 symbols": csv_bytes(good.iloc[:120]),
        # bad
        "99 symbols": csv_bytes(good.iloc[:99]),
        "ticker column": csv_bytes(good.rename(columns={"symbol": "ticker"})),
        "a date column": csv_bytes(good.assign(date="2026-04-06")[["date", "symbol", "prediction"]]),
        "inf": csv_bytes(good.assign(prediction=np.r_[np.inf, predictions(n - 1)])),
        "constant": csv_bytes(good.assign(prediction=1.0)),
    }
    return [Case(name, "crypto", content) for name, content in cases.items()]


BATTERY = _classic_cases() + _signals_cases() + _crypto_cases()

ORACLES: dict[str, Callable] = {
    "classic": lambda universe, frame: validate_submission_numerai(universe["id"], frame),
    "signals": validate_submission_signals,
    "crypto": validate_submission_crypto,
}


def _read_like_pandas(content: bytes) -> pd.DataFrame:
    if content[:4] == b"PAR1":
        frame = pd.read_parquet(io.BytesIO(content))
        return frame if isinstance(frame.index, pd.RangeIndex) else frame.reset_index()
    return pd.read_csv(io.BytesIO(content))


def _oracle(case: Case):
    """Return ``(ids, values, invalid tickers)`` numerai-tools keeps, or None when it rejects the file."""
    universe = UNIVERSES[case.tournament].copy()
    try:
        frame = _read_like_pandas(case.content)
        result = ORACLES[case.tournament](universe, frame)
    except Exception:  # the oracle rejects with AssertionError, pandas with its own errors
        return None
    id_column, prediction_column, filtered, invalid = result[0], result[1], result[-2], result[-1]
    return (
        filtered[id_column].astype(str).tolist(),
        filtered[prediction_column].to_numpy(dtype=np.float64),
        set(invalid),
    )


@pytest.mark.parametrize("case", BATTERY, ids=[f"{case.tournament}: {case.name}" for case in BATTERY])
def test_accepts_exactly_what_numerai_tools_accepts_and_keeps_the_same_rows(case):
    expected = _oracle(case)
    rules = DEFAULT_TOURNAMENTS[case.tournament].submissions
    if expected is None:
        with pytest.raises(SubmissionError):
            validate_submission(case.content, UNIVERSES[case.tournament], rules)
        return
    validated = validate_submission(case.content, UNIVERSES[case.tournament], rules)
    ids, values, invalid = expected
    assert validated.ids.tolist() == ids
    np.testing.assert_array_equal(validated.values, values)
    assert set(validated.invalid_tickers) == invalid
    assert validated.file_format == detect_format(case.content)


def test_the_battery_has_both_verdicts_for_every_tournament():
    verdicts = {(case.tournament, _oracle(case) is not None) for case in BATTERY}
    assert verdicts == {(name, verdict) for name in ORACLES for verdict in (True, False)}
