"""The fund's rules in a tournament config: off by default, a TC score needs them, errors name the field."""

from __future__ import annotations

import dataclasses
import json

import pytest

from crowdalpha.tournament.config import (
    CLASSIC,
    ConfigError,
    FundRule,
    ScoreConfig,
    config_from_dict,
    to_dict,
)

TC_SCORE = ScoreConfig("tc", "true_contribution", "target", 20)


def test_the_fund_is_off_by_default_and_absent_from_stored_configs() -> None:
    assert CLASSIC.fund is None
    assert "fund" not in to_dict(CLASSIC)
    assert config_from_dict(json.loads(json.dumps(to_dict(CLASSIC)))) == CLASSIC


def test_a_config_with_a_tc_score_and_fund_rules_round_trips() -> None:
    config = dataclasses.replace(
        CLASSIC, scores=(*CLASSIC.scores, TC_SCORE), fund=FundRule(risk_aversion=500.0, dollar_neutral=False)
    )
    document = json.loads(json.dumps(to_dict(config)))
    assert document["fund"]["risk_aversion"] == 500.0 and document["fund"]["dollar_neutral"] is False
    assert config_from_dict(document) == config


def test_a_tc_score_without_fund_rules_is_refused() -> None:
    index = len(CLASSIC.scores)
    with pytest.raises(ConfigError, match=rf"scores\[{index}\]\.metric: 'tc' is a true_contribution score"):
        dataclasses.replace(CLASSIC, scores=(*CLASSIC.scores, TC_SCORE))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("risk_window", 5, "fund.risk_window: must be ≥ 20 trading days, got 5"),
        ("risk_aversion", 0, "fund.risk_aversion: must be > 0, got 0"),
        ("name_cap", 0, "fund.name_cap: must be > 0"),
        ("sector_limit", -1, "fund.sector_limit: must be ≥ 0, got -1"),
        ("dollar_neutral", "yes", "fund.dollar_neutral: must be true or false, got 'yes'"),
        ("bags", -2, "fund.bags: must be ≥ 0, got -2"),
    ],
)
def test_bad_fund_rules_name_the_field(field: str, value: object, message: str) -> None:
    document = to_dict(dataclasses.replace(CLASSIC, fund=FundRule()))
    document["fund"][field] = value
    with pytest.raises(ConfigError) as raised:
        config_from_dict(document)
    assert str(raised.value).startswith(message)
