"""Tournament configs: defaults as in the reference, round trips through plain data, errors name the field."""

from __future__ import annotations

import copy
import json
import tomllib
from datetime import date, time
from decimal import Decimal
from typing import Any

import pytest

import crowdalpha.fund as fund
import crowdalpha.scoring as scoring
from crowdalpha.tournament import (
    CLASSIC,
    CRYPTO,
    DEFAULT_TOURNAMENTS,
    SIGNALS,
    ConfigError,
    PayoutRule,
    PayoutTerm,
    RoundCalendar,
    TournamentConfig,
    Weekday,
    WindowOverride,
    config_from_dict,
    round_schedule,
    to_dict,
    tournament_by_id,
)
from crowdalpha.tournament.config import CONTRIBUTION_METRICS, METRICS, TRUE_CONTRIBUTION


def test_defaults_carry_numerapi_ids_and_payout_rules():
    assert {name: config.tournament_id for name, config in DEFAULT_TOURNAMENTS.items()} == {
        "classic": 8,
        "signals": 11,
        "crypto": 12,
    }
    payouts = {
        name: (
            [(term.score, term.multiplier) for term in config.payout.terms],
            config.payout.clip,
            config.payout.stake_threshold,
        )
        for name, config in DEFAULT_TOURNAMENTS.items()
    }
    assert payouts == {
        "classic": ([("corr20v2", 0.5), ("mmc", 2.0)], 0.05, Decimal(72000)),
        "signals": ([("alpha", 0.3), ("mpc", 0.8)], 0.017, Decimal(36000)),
        "crypto": ([("mmc", 1.0)], 0.05, Decimal(10000)),
    }
    assert (CLASSIC.meta_model.weighting, CLASSIC.meta_model.min_stake) == ("stake", 0)
    assert (SIGNALS.meta_model.weighting, SIGNALS.meta_model.min_stake) == ("equal", 10)
    assert (CRYPTO.meta_model.weighting, CRYPTO.meta_model.min_stake) == ("equal", 1)
    assert [(gate.metric, gate.below) for gate in SIGNALS.gates] == [("churn", 0.15), ("turnover", 0.25)]
    assert CLASSIC.gates == CRYPTO.gates == ()
    assert tournament_by_id(11) is SIGNALS
    with pytest.raises(KeyError):
        tournament_by_id(9)


def test_defaults_carry_the_calendar_lag_and_horizons():
    for config in DEFAULT_TOURNAMENTS.values():
        calendar = config.calendar
        assert calendar.weekdays == (Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI, Weekday.SAT)
        assert (calendar.open, calendar.close) == (time(12), time(13))
        assert calendar.window(Weekday.SAT) == (time(12), time(14), 1)
        assert config.scoring_weekdays == calendar.weekdays
        assert (config.lag_days, config.data_delay_days) == (2, 2)
    assert (CLASSIC.horizon, CLASSIC.scoring_days) == (20, 60)  # CORR60 is a second, 60-day score config
    assert CLASSIC.score("corr60").horizon == 60
    assert (SIGNALS.horizon, CRYPTO.horizon) == (60, 20)


def test_defaults_carry_the_submission_formats():
    assert (CLASSIC.submissions.id_columns, CLASSIC.submissions.prediction_columns) == (
        ("id",),
        ("prediction", "probability"),
    )
    assert CLASSIC.submissions.min_tickers is None
    assert SIGNALS.submissions.id_columns == (
        "ticker",
        "sedol",
        "bloomberg_ticker",
        "composite_figi",
        "numerai_ticker",
    )
    assert SIGNALS.submissions.date_columns == ("friday_date", "date")
    assert SIGNALS.submissions.ignored_columns == ("data_type",)
    assert (SIGNALS.submissions.min_tickers, CRYPTO.submissions.min_tickers) == (100, 100)
    assert CRYPTO.submissions.id_columns == ("symbol",)
    assert all(
        config.submissions.max_upload_bytes == 100 * 1024 * 1024 for config in DEFAULT_TOURNAMENTS.values()
    )


def _plain_types_only(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain_types_only(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_plain_types_only(item) for item in value)
    return isinstance(value, str | int | float | bool)


@pytest.mark.parametrize("name", sorted(DEFAULT_TOURNAMENTS))
def test_every_default_round_trips_through_json(name):
    config = DEFAULT_TOURNAMENTS[name]
    plain = to_dict(config)
    assert _plain_types_only(plain)  # no None, no dates, no Decimals: TOML and JSON can hold it
    assert config_from_dict(json.loads(json.dumps(plain))) == config
    assert to_dict(config_from_dict(plain)) == plain


CUSTOM_TOML = """
name = "weekly"
tournament_id = 42
display_name = "Weekly equities"
horizon = 10
lag_days = 1
data_delay_days = 1
scoring_weekdays = ["mon", "tue", "wed", "thu", "fri"]
score_time = 06:30:00

[calendar]
weekdays = ["mon"]
open = "09:00"
close = 17:00:00
first_round = 100
first_round_date = 2024-01-01

[[calendar.overrides]]
weekday = "mon"
close = "10:00"
close_days_after = 2

[[scores]]
name = "corr10"
metric = "numerai_corr"
target = "target"
horizon = 10

[payout]
terms = [{ score = "corr10", multiplier = 1 }]
clip = 0.1
stake_threshold = "1500.5"

[meta_model]
name = "mean"
weighting = "equal"
min_stake = 0.5

[submissions]
id_columns = ["ticker"]
prediction_columns = ["signal"]
min_tickers = 3
late_window_hours = 6
"""


def test_a_new_tournament_is_a_new_config_written_in_toml():
    config = config_from_dict(tomllib.loads(CUSTOM_TOML))
    assert config.calendar.window(Weekday.MON) == (time(9), time(10), 2)
    assert config.score_time == time(6, 30)
    assert config.payout.stake_threshold == Decimal("1500.5")
    assert config.meta_model.min_stake == Decimal("0.5")
    assert config.payout.terms == (PayoutTerm("corr10", 1.0),)
    assert config_from_dict(json.loads(json.dumps(to_dict(config)))) == config
    schedule = round_schedule(config, 100)
    assert schedule.round_date == date(2024, 1, 1)
    assert schedule.close_staking_time.isoformat() == "2024-01-03T10:00:00+00:00"
    assert schedule.close_time.isoformat() == "2024-01-03T16:00:00+00:00"  # a 6-hour late window
    assert schedule.first_score_time.isoformat() == "2024-01-03T06:30:00+00:00"  # 2nd weekday after Monday
    assert len(schedule.score_times) == 10


def _set(plain: dict, path: tuple, value: Any) -> dict:
    edited = copy.deepcopy(plain)
    target = edited
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return edited


_DELETE = object()

BAD_FIELDS = [
    # (config, path to edit, new value, field named by the error, message after "field: ")
    ("classic", ("tournament_id",), 0, "tournament_id", "must be ≥ 1, got 0"),
    (
        "classic",
        ("name",),
        "Classic!",
        "name",
        "must be a lowercase name of letters, digits, '-' or '_', got 'Classic!'",
    ),
    ("classic", ("colour",), "blue", "colour", None),
    ("classic", ("payout",), _DELETE, "payout", "is required"),
    ("classic", ("lag_days",), "2", "lag_days", "must be an integer, got '2' (str)"),
    ("classic", ("horizon",), 10, "payout.terms[0].score", None),
    (
        "classic",
        ("calendar", "weekdays"),
        ["tue", "tue"],
        "calendar.weekdays",
        "weekdays repeat: ['tue', 'tue']",
    ),
    ("classic", ("calendar", "weekdays", 0), "tuesday", "calendar.weekdays[0]", None),
    (
        "classic",
        ("calendar", "open"),
        "25:00",
        "calendar.open",
        "must be a UTC time of day 'HH:MM', got '25:00'",
    ),
    (
        "classic",
        ("calendar", "close"),
        "11:00",
        "calendar.close",
        "the tue round must close after it opens at 12:00; it closes at 11:00 the same day",
    ),
    ("classic", ("calendar", "overrides", 0, "weekday"), "mon", "calendar.overrides[0].weekday", None),
    ("classic", ("calendar", "overrides", 0, "close_days_after"), 3, "calendar.overrides[0].close", None),
    (
        "classic",
        ("calendar", "overrides", 0, "close_days_after"),
        -1,
        "calendar.overrides[0].close_days_after",
        None,
    ),
    ("classic", ("calendar", "first_round_date"), "2024-13-01", "calendar.first_round_date", None),
    ("classic", ("scores", 1, "metric"), "corr", "scores[1].metric", None),
    ("classic", ("scores", 1, "against"), _DELETE, "scores[1].against", None),
    ("classic", ("scores", 0, "horizon"), 0, "scores[0].horizon", "must be ≥ 1 scoring day, got 0"),
    ("classic", ("scores", 2, "name"), "mmc", "scores[2].name", "'mmc' appears twice"),
    ("classic", ("payout", "terms", 1, "score"), "tc", "payout.terms[1].score", None),
    ("classic", ("payout", "clip"), 1.5, "payout.clip", "must be a fraction of stake in (0, 1], got 1.5"),
    ("classic", ("payout", "stake_threshold"), -1, "payout.stake_threshold", "must be > 0 tokens, got -1"),
    (
        "classic",
        ("payout", "stake_threshold"),
        "lots",
        "payout.stake_threshold",
        "must be a token amount (integer or decimal string), got 'lots'",
    ),
    ("classic", ("meta_model", "weighting"), "softmax", "meta_model.weighting", None),
    ("classic", ("submissions", "max_upload_bytes"), 0, "submissions.max_upload_bytes", "must be > 0, got 0"),
    (
        "classic",
        ("submissions", "id_columns"),
        [],
        "submissions.id_columns",
        "must list at least one column name",
    ),
    (
        "classic",
        ("submissions", "id_columns"),
        "id",
        "submissions.id_columns",
        "must be a list, got 'id' (str)",
    ),
    ("classic", ("submissions", "late_window_hours"), -1, "submissions.late_window_hours", None),
    ("signals", ("submissions", "min_tickers"), 0, "submissions.min_tickers", "must be ≥ 1, got 0"),
    ("signals", ("gates", 0, "below"), 0, "gates[0].below", "must be > 0, got 0.0"),
    ("signals", ("gates", 1, "metric"), "churn", "gates", None),
    ("crypto", ("scoring_weekdays",), [], "scoring_weekdays", "must name at least one weekday"),
]


@pytest.mark.parametrize(("name", "path", "value", "field", "problem"), BAD_FIELDS)
def test_a_bad_field_is_named_by_the_error(name, path, value, field, problem):
    plain = _set(to_dict(DEFAULT_TOURNAMENTS[name]), path, value)
    with pytest.raises(ConfigError) as raised:
        config_from_dict(plain)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
    if problem is not None:
        assert str(raised.value) == f"{field}: {problem}"


def test_a_window_closing_after_the_next_round_opens_is_rejected_with_a_reason():
    plain = _set(to_dict(CLASSIC), ("calendar", "overrides", 0, "close_days_after"), 3)
    with pytest.raises(ConfigError, match="the sat round must close by the time the tue round opens"):
        config_from_dict(plain)


def test_configs_built_in_python_are_validated_too():
    with pytest.raises(ConfigError) as raised:
        PayoutRule(terms=(PayoutTerm("corr", 1.0),), clip=0.0, stake_threshold=Decimal(1))
    assert raised.value.field == "clip"
    with pytest.raises(ConfigError) as raised:
        RoundCalendar(overrides=(WindowOverride(Weekday.SAT), WindowOverride(Weekday.SAT)))
    assert str(raised.value) == "overrides[1].weekday: sat is overridden twice"
    with pytest.raises(ConfigError) as raised:
        TournamentConfig(**{**_fields(CLASSIC), "lag_days": 0, "data_delay_days": 0})
    assert raised.value.field == "lag_days"


def _fields(config: TournamentConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in TournamentConfig.__dataclass_fields__}


def test_weekdays_are_stored_in_week_order():
    config = config_from_dict(
        _set(to_dict(CLASSIC), ("scoring_weekdays",), ["sat", "tue", "fri", "wed", "thu"])
    )
    assert config.scoring_weekdays == CLASSIC.scoring_weekdays
    assert config == CLASSIC


def test_every_metric_name_is_a_score_of_the_scoring_engine():
    # TC is differentiated through the fund's portfolio, so it lives in crowdalpha.fund
    assert callable(getattr(fund, TRUE_CONTRIBUTION))
    assert all(callable(getattr(scoring, metric, None)) for metric in METRICS - {TRUE_CONTRIBUTION})
    assert CONTRIBUTION_METRICS <= METRICS
