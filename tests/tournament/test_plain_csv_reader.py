"""The fast (pyarrow) CSV reader reads exactly what pandas reads, or steps aside for pandas."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from submission_files import classic_universe, signals_universe

from crowdalpha.tournament import submissions as submission_module
from crowdalpha.tournament.config import DEFAULT_TOURNAMENTS
from crowdalpha.tournament.submissions import SubmissionError, validate_submission

CLASSIC = DEFAULT_TOURNAMENTS["classic"].submissions
SIGNALS = DEFAULT_TOURNAMENTS["signals"].submissions
IDS = list(classic_universe(6)["id"])


def _classic(lines: list[str], header: str = "id,prediction", end: str = "\n") -> bytes:
    return end.join([header, *lines, ""]).encode()


def _rows(values: list[str]) -> list[str]:
    return [f"{identifier},{value}" for identifier, value in zip(IDS, values, strict=False)]


VALID = ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6"]
CASES = {
    "plain": _classic(_rows(VALID)),
    "crlf": _classic(_rows(VALID), end="\r\n"),
    "quoted cells": _classic(
        [f'"{identifier}","{value}"' for identifier, value in zip(IDS, VALID, strict=True)]
    ),
    "quoted header": _classic(_rows(VALID), header='"id","prediction"'),
    "byte-order mark": b"\xef\xbb\xbf" + _classic(_rows(VALID)),
    "leading blank line": b"\n" + _classic(_rows(VALID)),
    "blank line inside": _classic([*_rows(VALID)[:3], "", *_rows(VALID)[3:]]),
    "exponents and signs": _classic(_rows(["1e-1", "+0.2", ".3", "4E-1", "5.", "0.6"])),
    "integers": _classic(_rows(["0", "1", "0", "1", "0", "1"])),
    "NA tokens": _classic(_rows(["NA", "", "nan", "null", "0.5", "0.6"])),
    "other NaN spellings": _classic(_rows(["NAN", "Nan", "0.3", "0.4", "0.5", "0.6"])),
    "infinities": _classic(_rows(["inf", "-inf", "Infinity", "0.4", "0.5", "0.6"])),
    "spaces around numbers": _classic(_rows([" 0.1", "0.2 ", "0.3", "0.4", "0.5", "0.6"])),
    "non-numeric": _classic(_rows(["abc", "0.2", "0.3", "0.4", "0.5", "0.6"])),
    "missing field": _classic([*_rows(VALID)[:5], IDS[5]]),
    "extra field": _classic([*_rows(VALID)[:5], f"{IDS[5]},0.6,9"]),
    "every row an extra field": _classic([f"{row},9" for row in _rows(VALID)]),
    "duplicate header": _classic(_rows(VALID), header="id,id"),
    "wrong header": _classic(_rows(VALID), header="ticker,prediction"),
    "header only": _classic([]),
    "ids that look like numbers or NA": _classic(
        [
            f"{identifier},{value}"
            for identifier, value in zip(["007", "NA", "null", "1e5", IDS[4], IDS[5]], VALID, strict=True)
        ]
    ),
    "blank id": _classic([*_rows(VALID)[:5], ",0.6"]),
    "not UTF-8": _classic(_rows(VALID[:5])) + b"n\xff,0.6\n",
    "duplicate ids": _classic([*_rows(VALID), f"{IDS[0]},0.9"]),
    "out of range": _classic(_rows(["1.5", "0.2", "0.3", "0.4", "0.5", "0.6"])),
}


def _outcome(content: bytes, universe, rules) -> tuple:
    """Return what validation says: the rule and message of a rejection, else the kept rows."""
    try:
        validated = validate_submission(content, universe, rules)
    except SubmissionError as error:
        return ("rejected", error.rule, str(error))
    return (
        "accepted",
        list(validated.ids),
        list(validated.values),
        validated.invalid_tickers,
        validated.n_rows,
    )


def _pandas_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submission_module, "_read_plain_csv", lambda content, rules: None)


@pytest.mark.parametrize("name", list(CASES))
def test_validation_says_the_same_with_and_without_the_fast_reader(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    universe = classic_universe(6)
    fast = _outcome(CASES[name], universe, CLASSIC)
    _pandas_only(monkeypatch)
    assert fast == _outcome(CASES[name], universe, CLASSIC)


@pytest.mark.parametrize("name", ["plain", "crlf", "quoted cells", "exponents and signs", "NA tokens"])
def test_the_fast_reader_reads_the_plain_files_with_pandas_dtypes(name: str) -> None:
    fast = submission_module._read_plain_csv(CASES[name], CLASSIC)
    assert fast is not None
    expected, expected_columns = submission_module._read_any_csv(CASES[name], CLASSIC)
    assert (fast.id_column, fast.prediction_column, fast.date_column) == expected_columns
    assert fast.ids.type == pa.string() and fast.ids.null_count == 0
    assert fast.ids.to_pylist() == list(expected["id"])
    np.testing.assert_array_equal(fast.values, expected["prediction"].to_numpy(dtype=np.float64))


@pytest.mark.parametrize(
    "name", ["byte-order mark", "leading blank line", "quoted header", "infinities", "missing field"]
)
def test_the_fast_reader_steps_aside_for_unusual_files(name: str) -> None:
    assert submission_module._read_plain_csv(CASES[name], CLASSIC) is None


def test_signals_files_with_a_date_column_read_the_same() -> None:
    universe = signals_universe(6)
    tickers = list(universe["numerai_ticker"])
    lines = [f"{ticker},2026-01-05,{value}" for ticker, value in zip(tickers, VALID, strict=True)]
    content = ("\n".join(["numerai_ticker,date,signal", *lines]) + "\n").encode()
    fast = _outcome(content, universe, SIGNALS)
    assert submission_module._read_plain_csv(content, SIGNALS) is not None
    with pytest.MonkeyPatch.context() as monkeypatch:
        _pandas_only(monkeypatch)
        assert fast == _outcome(content, universe, SIGNALS)


CELLS = st.sampled_from(
    [
        "0.5",
        "0.25",
        "1",
        "0",
        "1e-2",
        "NA",
        "",
        "nan",
        "NaN",
        "inf",
        "x",
        " 0.5",
        '"0.75"',
        "-0.1",
        "1.0000001",
    ]
)
IDS_OR_ODD = st.sampled_from([*IDS, "", "NA", "007", '"n1"', "zz"])


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(IDS_OR_ODD, CELLS), min_size=0, max_size=8))
def test_random_small_files_validate_the_same_with_and_without_the_fast_reader(rows) -> None:
    content = _classic([f"{identifier},{cell}" for identifier, cell in rows])
    universe = classic_universe(6)
    fast = _outcome(content, universe, CLASSIC)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _pandas_only(monkeypatch)
        assert fast == _outcome(content, universe, CLASSIC)
