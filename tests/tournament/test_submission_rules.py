"""Each submission rule rejects with its stable code and a message naming the first offending ids or rows."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from submission_files import parquet_bytes

from crowdalpha.tournament import (
    CLASSIC,
    CRYPTO,
    SIGNALS,
    ReceiptBuilder,
    SubmissionError,
    SubmissionRule,
    check_headers,
    detect_format,
    upload_receipt,
    validate_submission,
)

LIVE_IDS = [f"n{i:02d}" for i in range(10)]
UNIVERSE = {"id": LIVE_IDS}
RULES = CLASSIC.submissions


def classic_csv(rows: list[tuple[str, str]], header: str = "id,prediction") -> bytes:
    return ("\n".join([header, *(f"{identifier},{value}" for identifier, value in rows)]) + "\n").encode()


def good_rows() -> list[tuple[str, str]]:
    return [(identifier, f"{0.05 + 0.1 * i:.2f}") for i, identifier in enumerate(LIVE_IDS)]


def with_values(changes: dict[int, str]) -> bytes:
    rows = good_rows()
    for position, value in changes.items():
        rows[position] = (rows[position][0], value)
    return classic_csv(rows)


def rejection(content: bytes, universe=UNIVERSE, rules=RULES) -> SubmissionError:
    with pytest.raises(SubmissionError) as raised:
        validate_submission(content, universe, rules)
    return raised.value


EXACT_REJECTIONS = [
    (
        "nan",
        with_values({2: "nan", 7: ""}),
        "nan_values",
        "nan_values: predictions must not be NaN; 2 rows are: 'n02' (row 3), 'n07' (row 8)",
    ),
    (
        "inf",
        with_values({0: "inf", 4: "-inf"}),
        "infinite_values",
        "infinite_values: predictions must be finite; 2 rows are not:"
        " 'n00' = inf (row 1), 'n04' = -inf (row 5)",
    ),
    (
        "out of range",
        with_values({1: "1.5", 3: "-0.25"}),
        "out_of_range",
        "out_of_range: predictions must lie in [0, 1]; 2 rows do not:"
        " 'n01' = 1.5 (row 2), 'n03' = -0.25 (row 4)",
    ),
    (
        "many out of range",
        with_values(dict.fromkeys(range(7), "2")),
        "out_of_range",
        "out_of_range: predictions must lie in [0, 1]; 7 rows do not: 'n00' = 2.0 (row 1),"
        " 'n01' = 2.0 (row 2), 'n02' = 2.0 (row 3), 'n03' = 2.0 (row 4), 'n04' = 2.0 (row 5), …",
    ),
    (
        "duplicate ids",
        classic_csv([*good_rows(), ("n03", "0.5"), ("n08", "0.5"), ("n03", "0.1")]),
        "duplicate_ids",
        "duplicate_ids: each 'id' may appear once; 2 ids appear more than once: 'n03' (rows 4, 11, 13),"
        " 'n08' (rows 9, 12)",
    ),
    (
        "missing live ids",
        classic_csv([row for row in good_rows() if row[0] not in ("n01", "n05", "n09")]),
        "missing_live_ids",
        "missing_live_ids: the submission must cover every live id; 3 of 10 are missing: 'n01', 'n05', 'n09'",
    ),
    (
        "wrong headers",
        classic_csv(good_rows(), header="id,pred"),
        "invalid_submission_headers",
        "invalid_submission_headers: the columns must be exactly [id, prediction] with the id column one of"
        " ['id'] and the prediction column one of ['prediction', 'probability']; got ['id', 'pred']",
    ),
    ("empty file", b"", "empty_file", "empty_file: the upload is empty (0 bytes)"),
    ("header only", b"id,prediction\n", "empty_file", "empty_file: the file has a header but no data rows"),
    (
        "not csv or parquet",
        b"PK\x03\x04\x14\x00\x08\x00\x08\x00" + bytes(range(200)),
        "not_csv_or_parquet",
        "not_csv_or_parquet: the upload is neither UTF-8 CSV text nor a Parquet file;"
        " its first bytes are 50 4b 03 04 14 00 08 00",
    ),
    (
        "constant",
        classic_csv([(identifier, "0.5") for identifier in LIVE_IDS]),
        "constant",
        "constant: predictions must not all be equal; their standard deviation over 10 rows is 0",
    ),
    (
        "blank id",
        classic_csv([*good_rows(), ("", "0.5")]),
        "blank_ids",
        "blank_ids: every row needs a value in 'id'; 1 row has none: row 11",
    ),
    (
        "non-numeric prediction",
        with_values({5: "high"}),
        "non_numeric_values",
        "non_numeric_values: predictions must be numbers; 1 row is not: 'n05' = 'high' (row 6)",
    ),
    (
        "malformed csv",
        classic_csv(good_rows()) + b"n99,0.5,extra\n",
        "malformed_csv",
        "malformed_csv: the CSV could not be parsed: Error tokenizing data."
        " C error: Expected 2 fields in line 12, saw 3",
    ),
]


@pytest.mark.parametrize(
    ("content", "rule", "message"),
    [case[1:] for case in EXACT_REJECTIONS],
    ids=[case[0] for case in EXACT_REJECTIONS],
)
def test_each_rule_names_itself_and_the_first_offenders(content, rule, message):
    error = rejection(content)
    assert error.rule == rule
    assert isinstance(error.rule, SubmissionRule)
    assert str(error) == message
    assert isinstance(error, ValueError)


def test_an_upload_over_the_size_limit_is_rejected_before_parsing():
    rules = dataclasses.replace(RULES, max_upload_bytes=64)
    error = rejection(classic_csv(good_rows()), rules=rules)
    assert (error.rule, str(error)) == ("too_large", "too_large: the upload is over the limit of 64 bytes")
    error = rejection(b"\x00" * 65, rules=rules)  # not even looked at
    assert error.rule == "too_large"


def test_the_streaming_receipt_stops_at_the_chunk_that_crosses_the_limit():
    builder = ReceiptBuilder(max_bytes=10)
    assert builder.update(b"12345") == 5
    assert builder.update(b"67890") == 10
    with pytest.raises(SubmissionError) as raised:
        builder.update(b"1")
    assert str(raised.value) == "too_large: the upload is over the limit of 10 bytes"


def test_a_receipt_is_the_sha256_size_and_arrival_time():
    content = classic_csv(good_rows())
    arrived = datetime(2026, 4, 7, 12, 30, tzinfo=UTC)
    receipt = upload_receipt(content, arrived)
    assert receipt.sha256 == hashlib.sha256(content).hexdigest()
    assert (receipt.size_bytes, receipt.received_at) == (len(content), arrived)
    builder = ReceiptBuilder()
    for start in range(0, len(content), 7):
        builder.update(content[start : start + 7])
    assert builder.finish(arrived) == receipt
    with pytest.raises(ValueError, match="timezone-aware"):
        builder.finish(arrived.replace(tzinfo=None))
    later = upload_receipt(content, arrived + timedelta(hours=1))
    assert later.sha256 == receipt.sha256 and later != receipt


def test_the_format_is_judged_by_content():
    frame = pd.DataFrame({"id": LIVE_IDS, "prediction": np.linspace(0.1, 0.9, 10)})
    assert detect_format(parquet_bytes(frame)) == "parquet"
    assert detect_format(classic_csv(good_rows())) == "csv"
    assert detect_format("id,prediction\nnä,0.5\n".encode()) == "csv"
    with pytest.raises(SubmissionError) as raised:
        detect_format("id,prediction\n".encode("utf-16"))
    assert raised.value.rule == "not_csv_or_parquet"
    assert validate_submission(parquet_bytes(frame), UNIVERSE, RULES).file_format == "parquet"


def test_malformed_parquet_is_named_as_such():
    error = rejection(b"PAR1" + b"\x00" * 40 + b"PAR1")
    assert error.rule == "malformed_parquet"
    assert str(error).startswith("malformed_parquet: the Parquet file could not be read: ")


def test_a_valid_submission_keeps_universe_rows_sorted_by_id():
    rows = [*reversed(good_rows()), ("stranger", "0.3"), ("stranger", "nan"), ("alien", "7")]
    validated = validate_submission(classic_csv(rows), UNIVERSE, RULES)
    assert validated.ids.tolist() == LIVE_IDS
    np.testing.assert_array_equal(validated.values, [float(value) for _, value in good_rows()])
    assert validated.invalid_tickers == ("alien", "stranger")
    assert (validated.n_rows, validated.n_valid, validated.n_invalid, validated.n_universe) == (13, 10, 2, 10)
    assert (validated.id_column, validated.prediction_column, validated.date_column) == (
        "id",
        "prediction",
        None,
    )
    series = validated.to_series()
    assert series.index.name == "id" and series.name == "prediction"
    assert series["n03"] == pytest.approx(0.35)


def test_ids_are_text_so_leading_zeros_and_na_like_tickers_survive():
    symbols = [f"{i:03d}" for i in range(99)] + ["NA"]
    content = ("symbol,signal\n" + "".join(f"{s},{(i + 1) / 101}\n" for i, s in enumerate(symbols))).encode()
    validated = validate_submission(content, {"symbol": symbols}, CRYPTO.submissions)
    assert validated.n_valid == 100
    assert validated.ids[0] == "000" and "NA" in validated.ids.tolist()


def test_signals_reports_too_few_tickers_with_the_outsiders():
    universe = {"numerai_ticker": [f"T{i:03d} US" for i in range(200)], "composite_figi": ["X"] * 200}
    rows = [f"T{i:03d} US,{(i + 1) / 100}" for i in range(98)] + [f"Z{i} ZZ,0.5" for i in range(3)]
    content = ("date,numerai_ticker,signal\n" + "".join(f"2026-04-06,{row}\n" for row in rows)).encode()
    error = rejection(content, universe=universe, rules=SIGNALS.submissions)
    assert str(error) == (
        "too_few_tickers: at least 100 rows must be members of the live universe; got 98;"
        " 3 submitted 'numerai_ticker' values are not in the universe: 'Z0 ZZ', 'Z1 ZZ', 'Z2 ZZ'"
    )


def test_an_id_column_the_universe_lacks_is_named():
    content = ("sedol,signal\n" + "".join(f"B{i:06d},{(i + 1) / 200}\n" for i in range(150))).encode()
    error = rejection(content, universe={"numerai_ticker": ["A US"]}, rules=SIGNALS.submissions)
    assert str(error) == (
        "id_column_not_in_universe: this round's universe has no 'sedol' ids;"
        " submit with one of ['numerai_ticker']"
    )


def test_signals_headers_drop_the_date_and_ignored_columns():
    rules = SIGNALS.submissions
    assert check_headers(["date", "numerai_ticker", "signal", "data_type"], rules) == (
        "numerai_ticker",
        "signal",
        "date",
    )
    assert check_headers(["data_type", "composite_figi", "prediction"], rules) == (
        "composite_figi",
        "prediction",
        None,
    )
    with pytest.raises(SubmissionError) as raised:
        check_headers(["date", "friday_date", "ticker", "signal"], rules)
    assert str(raised.value).endswith(
        "; an optional date column (one of ['friday_date', 'date']) and the ignored columns ['data_type']"
        " are dropped first; got ['date', 'friday_date', 'ticker', 'signal']"
    )
