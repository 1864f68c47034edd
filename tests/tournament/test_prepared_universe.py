"""A prepared universe validates exactly as the plain one does, and builds each column's index once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from submission_files import classic_universe, csv_bytes, predictions, signals_universe

from crowdalpha.tournament.config import DEFAULT_TOURNAMENTS
from crowdalpha.tournament.submissions import (
    PreparedUniverse,
    SubmissionError,
    prepare_universe,
    validate_submission,
)

CLASSIC_RULES = DEFAULT_TOURNAMENTS["classic"].submissions
SIGNALS_RULES = DEFAULT_TOURNAMENTS["signals"].submissions


def _shuffled_submission(ids: list[str], seed: int) -> pd.DataFrame:
    order = np.random.default_rng(seed).permutation(len(ids))
    return pd.DataFrame(
        {"id": np.asarray(ids, dtype=object)[order], "prediction": predictions(len(ids), seed)}
    )


def test_a_prepared_universe_keeps_the_same_rows_in_id_order_as_the_plain_one():
    universe = classic_universe()
    frame = _shuffled_submission(list(universe["id"]), seed=3)
    content = csv_bytes(frame)
    plain = validate_submission(content, universe, CLASSIC_RULES)
    prepared = validate_submission(content, prepare_universe(universe), CLASSIC_RULES)
    expected = frame.sort_values("id")
    for validated in (plain, prepared):
        assert list(validated.ids) == list(expected["id"])
        np.testing.assert_array_equal(validated.values, expected["prediction"].to_numpy())
        assert validated.n_universe == len(universe)


@pytest.mark.parametrize(
    "edit",
    [
        lambda frame: pd.concat([frame, frame.iloc[[4, 1]]], ignore_index=True),  # duplicate ids
        lambda frame: frame.iloc[3:],  # missing live ids
        lambda frame: frame.assign(prediction=1.5),  # out of range
    ],
    ids=["duplicate_ids", "missing_live_ids", "out_of_range"],
)
def test_a_prepared_universe_rejects_with_the_same_rule_and_message(edit):
    universe = classic_universe()
    content = csv_bytes(edit(_shuffled_submission(list(universe["id"]), seed=5)))
    messages = []
    for given in (universe, prepare_universe(universe)):
        with pytest.raises(SubmissionError) as raised:
            validate_submission(content, given, CLASSIC_RULES)
        messages.append((raised.value.rule, str(raised.value)))
    assert messages[0] == messages[1]


def test_the_duplicate_ids_message_lists_each_repeated_id_with_its_rows():
    universe = classic_universe()
    frame = pd.DataFrame({"id": list(universe["id"]), "prediction": predictions(len(universe))})
    content = csv_bytes(pd.concat([frame, frame.iloc[[7]]], ignore_index=True))
    with pytest.raises(SubmissionError, match="duplicate_ids") as raised:
        validate_submission(content, prepare_universe(universe), CLASSIC_RULES)
    assert f"{universe['id'][7]!r} (rows 8, {len(universe) + 1})" in str(raised.value)


def test_each_id_column_is_indexed_once_and_only_when_used():
    prepared = prepare_universe(signals_universe())
    assert isinstance(prepared, PreparedUniverse)
    assert prepare_universe(prepared) is prepared
    assert "ticker" in prepared and "figi" not in prepared
    first = prepared.members("ticker")
    assert prepared.members("ticker") is first
    assert list(first) == sorted(signals_universe()["ticker"])
    with pytest.raises(SubmissionError, match="id_column_not_in_universe"):
        prepared.members("figi")


def test_uploads_one_after_another_validate_as_each_would_alone():
    """The prepared universe reuses the positions of ids seen last; any other ids are looked up afresh."""
    universe = classic_universe()
    ids = list(universe["id"])
    frames = [
        _shuffled_submission(ids, seed=7),
        _shuffled_submission(ids, seed=7).assign(prediction=predictions(len(ids), 8)),  # same ids
        _shuffled_submission(ids, seed=9),  # same ids in another order
        _shuffled_submission(ids, seed=9).iloc[2:],  # fewer ids
        _shuffled_submission(ids, seed=9),
    ]
    prepared = prepare_universe(universe)
    for frame in frames:
        content = csv_bytes(frame)
        try:
            expected = validate_submission(content, universe, CLASSIC_RULES)
        except SubmissionError as error:
            with pytest.raises(SubmissionError) as raised:
                validate_submission(content, prepared, CLASSIC_RULES)
            assert str(raised.value) == str(error)
            continue
        validated = validate_submission(content, prepared, CLASSIC_RULES)
        assert list(validated.ids) == list(expected.ids)
        np.testing.assert_array_equal(validated.values, expected.values)
