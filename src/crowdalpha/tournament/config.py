"""Tournament rules as data: one frozen ``TournamentConfig`` per tournament (DESIGN, "rules are data").

A config declares everything that differs between Classic, Signals and Crypto — the numerapi
tournament id, the round calendar, scoring days, lag and horizon, the scores computed, the payout
formula, the meta-model rule, the gates and the submission format — so a new tournament is a new
config, not new code. Configs are plain frozen dataclasses; :func:`to_dict` and
:func:`config_from_dict` turn them into and out of TOML/JSON-friendly dictionaries (times as
``"HH:MM"``, dates as ISO strings, weekdays as ``"tue"``, token amounts as integers or decimal
strings, absent optional fields simply left out). Every broken rule raises :class:`ConfigError`,
whose ``field`` is the dotted path of the bad field (``payout.terms[1].score``).

Times of day are UTC. Token amounts (stake thresholds, minimum stakes) are :class:`~decimal.Decimal`
whole tokens — never floats on the money path; score multipliers and clips are plain floats.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


class ConfigError(ValueError):
    """A tournament config broke a rule; ``field`` is the dotted path of the bad field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class Weekday(IntEnum):
    """A weekday numbered as :meth:`datetime.date.weekday` (Monday = 0); written ``"mon"`` … ``"sun"``."""

    MON = 0
    TUE = 1
    WED = 2
    THU = 3
    FRI = 4
    SAT = 5
    SUN = 6

    @property
    def label(self) -> str:
        """Return the config spelling of the weekday, e.g. ``"tue"``."""
        return self.name.lower()


TUESDAY_TO_SATURDAY = (Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI, Weekday.SAT)

# Metric names a score may use: the functions of ``crowdalpha.scoring`` that produce one value per model
# and round. Contribution metrics are measured against a meta model and need ``against``; crowd metrics
# compare a model with the round's other models (or its meta model) and need no target: their value is
# fixed once predictions are in, so they are scored on day 1 only (horizon 1).
METRICS = frozenset(
    {
        "numerai_corr",
        "correlation_contribution",
        "feature_neutral_corr",
        "neutral_correlation",
        "neutral_contribution",
        "alpha",
        "meta_portfolio_contribution",
        "cwmm",
        "mcwnm",
        "apcwnm",
        "true_contribution",
    }
)
CONTRIBUTION_METRICS = frozenset({"correlation_contribution", "neutral_contribution", "cwmm"})
TARGET_FREE_METRICS = frozenset({"cwmm", "mcwnm", "apcwnm"})
NEUTRALIZED_METRICS = frozenset({"feature_neutral_corr", "neutral_correlation", "neutral_contribution"})
"""Metrics that neutralise predictions first and need ``neutral_to``."""
PORTFOLIO_METRICS = frozenset({"alpha", "meta_portfolio_contribution"})
"""Signals portfolio metrics: they need the round's neutralisers and sample weights."""
ROUND_NEUTRALIZERS = "neutralizers"
"""``neutral_to`` naming the round's risk neutralisers (Signals), not a feature set of the dataset."""
TRUE_CONTRIBUTION = "true_contribution"
"""The metric of a TC score: computed through the fund's portfolio (``TournamentConfig.fund``)."""

DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024


def _require(condition: bool, field_name: str, problem: str) -> None:
    if not condition:
        raise ConfigError(field_name, problem)


def _unique_sorted_weekdays(values: tuple[Weekday, ...], field_name: str) -> tuple[Weekday, ...]:
    _require(len(values) > 0, field_name, "must name at least one weekday")
    _require(len(set(values)) == len(values), field_name, f"weekdays repeat: {[d.label for d in values]}")
    return tuple(sorted(values))


def _check_name(value: str, field_name: str) -> None:
    _require(
        bool(value) and value.replace("_", "").replace("-", "").isalnum() and value == value.lower(),
        field_name,
        f"must be a lowercase name of letters, digits, '-' or '_', got {value!r}",
    )


# -- the round calendar -------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowOverride:
    """A weekday whose submission window differs from the calendar's default (e.g. Saturday closes Sunday)."""

    weekday: Weekday
    open: time | None = None
    close: time | None = None
    close_days_after: int = 0

    def __post_init__(self) -> None:
        _require(self.close_days_after >= 0, "close_days_after", f"must be ≥ 0, got {self.close_days_after}")


@dataclass(frozen=True)
class RoundCalendar:
    """When rounds open and close: the round weekdays, the default UTC window and per-weekday overrides.

    Round numbers count round days from ``first_round`` on the first round weekday on or after
    ``first_round_date``.
    """

    weekdays: tuple[Weekday, ...] = TUESDAY_TO_SATURDAY
    open: time = time(12, 0)
    close: time = time(13, 0)
    overrides: tuple[WindowOverride, ...] = (
        WindowOverride(Weekday.SAT, close=time(14, 0), close_days_after=1),
    )
    first_round: int = 1
    first_round_date: date = date(2000, 1, 4)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weekdays", _unique_sorted_weekdays(self.weekdays, "weekdays"))
        seen: set[Weekday] = set()
        for index, override in enumerate(self.overrides):
            _require(
                override.weekday in self.weekdays,
                f"overrides[{index}].weekday",
                f"{override.weekday.label} is not a round weekday {[d.label for d in self.weekdays]}",
            )
            _require(
                override.weekday not in seen,
                f"overrides[{index}].weekday",
                f"{override.weekday.label} is overridden twice",
            )
            seen.add(override.weekday)
        _require(self.first_round >= 1, "first_round", f"must be ≥ 1, got {self.first_round}")
        for weekday in self.weekdays:
            self._check_window(weekday)

    def window(self, weekday: Weekday) -> tuple[time, time, int]:
        """Return ``(open, close, close_days_after)`` of the window of rounds opening on ``weekday``."""
        for override in self.overrides:
            if override.weekday == weekday:
                return (
                    override.open if override.open is not None else self.open,
                    override.close if override.close is not None else self.close,
                    override.close_days_after,
                )
        return self.open, self.close, 0

    def _window_field(self, weekday: Weekday) -> str:
        for index, override in enumerate(self.overrides):
            if override.weekday == weekday:
                return f"overrides[{index}]"
        return ""

    def _check_window(self, weekday: Weekday) -> None:
        # A window must last at least a moment and close no later than the next round opens, so at
        # most one round is ever open and an upload time names exactly one round.
        open_at, close_at, close_days_after = self.window(weekday)
        prefix = self._window_field(weekday)
        close_field = f"{prefix}.close" if prefix else "close"
        day = date(2000, 1, 3) + timedelta(days=int(weekday))  # a date with this weekday
        opens = datetime.combine(day, open_at)
        closes = datetime.combine(day + timedelta(days=close_days_after), close_at)
        _require(
            closes > opens,
            close_field,
            f"the {weekday.label} round must close after it opens at {open_at:%H:%M}; it closes at"
            f" {close_at:%H:%M} {f'{close_days_after} day(s) later' if close_days_after else 'the same day'}",
        )
        position = self.weekdays.index(weekday)
        next_weekday = self.weekdays[(position + 1) % len(self.weekdays)]
        gap = (int(next_weekday) - int(weekday)) % 7 or 7
        next_open, _, _ = self.window(next_weekday)
        next_opens = datetime.combine(day + timedelta(days=gap), next_open)
        _require(
            closes <= next_opens,
            close_field,
            f"the {weekday.label} round must close by the time the {next_weekday.label} round opens",
        )


# -- scores, payouts, meta model, gates ----------------------------------------------------------


@dataclass(frozen=True)
class ScoreConfig:
    """One score of every submission of a round: a scoring metric against a target over ``horizon`` days.

    ``against`` names the meta model a contribution (or CWMM) is measured against; ``neutral_to``
    what a neutralised metric neutralises predictions to: a feature set of the dataset's
    ``features.json`` (Classic FNC: ``"medium"``) or :data:`ROUND_NEUTRALIZERS` (the round's risk
    neutralisers, Signals). Crowd metrics (:data:`TARGET_FREE_METRICS`) take no target and are
    constant over a round: their horizon must be 1.
    """

    name: str
    metric: str
    target: str = ""
    horizon: int = 20
    against: str | None = None
    display_name: str = ""
    neutral_to: str | None = None

    def __post_init__(self) -> None:
        _check_name(self.name, "name")
        _require(self.metric in METRICS, "metric", f"must be one of {sorted(METRICS)}, got {self.metric!r}")
        if self.metric in TARGET_FREE_METRICS:
            _require(
                not self.target, "target", f"{self.metric} compares predictions only; it takes no target"
            )
            _require(
                self.horizon == 1,
                "horizon",
                f"{self.metric} does not change after the round closes; its horizon is 1, got {self.horizon}",
            )
        else:
            _require(bool(self.target), "target", "must name a target column")
        _require(self.horizon >= 1, "horizon", f"must be ≥ 1 scoring day, got {self.horizon}")
        if self.metric in CONTRIBUTION_METRICS:
            _require(
                bool(self.against), "against", f"{self.metric} needs the meta model it is measured against"
            )
        if self.metric in NEUTRALIZED_METRICS:
            _require(
                bool(self.neutral_to),
                "neutral_to",
                f"{self.metric} needs a feature set (or {ROUND_NEUTRALIZERS!r}) to neutralise to",
            )


@dataclass(frozen=True)
class PayoutTerm:
    """One term of the payout score: ``multiplier × score``."""

    score: str
    multiplier: float


@dataclass(frozen=True)
class PayoutRule:
    """``payout = stake × clip(payout_factor × Σ multiplier·score, ±clip)``.

    ``payout_factor = min(1, stake_threshold / Σ at-risk stake)``, with the totals at round close.
    """

    terms: tuple[PayoutTerm, ...]
    clip: float
    stake_threshold: Decimal

    def __post_init__(self) -> None:
        _require(len(self.terms) > 0, "terms", "must have at least one payout term")
        names = [term.score for term in self.terms]
        _require(len(set(names)) == len(names), "terms", f"a score appears twice: {names}")
        for index, term in enumerate(self.terms):
            _require(
                math.isfinite(term.multiplier),
                f"terms[{index}].multiplier",
                f"must be finite, got {term.multiplier}",
            )
        _require(0 < self.clip <= 1, "clip", f"must be a fraction of stake in (0, 1], got {self.clip}")
        _require(
            self.stake_threshold > 0, "stake_threshold", f"must be > 0 tokens, got {self.stake_threshold}"
        )


@dataclass(frozen=True)
class MetaModelRule:
    """How submissions form the meta model: stake-weighted or naive mean of models staking ≥ ``min_stake``."""

    name: str
    weighting: Literal["stake", "equal"]
    min_stake: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        _require(bool(self.name), "name", "must name the meta model")
        _require(self.min_stake >= 0, "min_stake", f"must be ≥ 0 tokens, got {self.min_stake}")


@dataclass(frozen=True)
class GateRule:
    """A stake gate: a stake counts only while ``metric`` (max over ``lookback_rounds``) is < ``below``."""

    metric: Literal["churn", "turnover"]
    below: float
    lookback_rounds: int = 5

    def __post_init__(self) -> None:
        _require(math.isfinite(self.below) and self.below > 0, "below", f"must be > 0, got {self.below}")
        _require(self.lookback_rounds >= 1, "lookback_rounds", f"must be ≥ 1, got {self.lookback_rounds}")


@dataclass(frozen=True)
class FundRule:
    """The fund's portfolio, as data: risk model window, risk aversion, alpha scale and absolute limits.

    The fund trades the meta model as an expected residual return ``alpha_scale × gaussianised
    rank`` per name, maximising ``αᵀw − ½·risk_aversion·wᵀΣw`` under the limits (the fields of
    :class:`crowdalpha.fund.ConstraintSet` they mirror: |βᵀw|, each sector's and country's |Σw|,
    each style factor's |Xᵀw|, each |wᵢ| and ‖w‖₁); ``Σ`` is a factor model estimated from the
    ``risk_window`` trading days up to the round's data date (daily variances, so γ = 1000 puts a
    400-name portfolio near unit gross exposure before the limits). A limit of ``gross_leverage`` or more
    never binds for sectors, countries and names. ``bags`` > 0 averages TC over that many random
    halves of the staked models.
    """

    alpha_scale: float = 0.001
    risk_aversion: float = 1000.0
    risk_window: int = 120
    dollar_neutral: bool = True
    beta_limit: float = 0.0
    sector_limit: float = 0.05
    country_limit: float = 0.05
    factor_limit: float = 0.05
    name_cap: float = 0.05
    gross_leverage: float = 1.0
    bags: int = 0

    def __post_init__(self) -> None:
        for name in ("alpha_scale", "risk_aversion", "gross_leverage"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, name, f"must be > 0, got {value}")
        for name in ("beta_limit", "sector_limit", "country_limit", "factor_limit", "name_cap"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value >= 0, name, f"must be ≥ 0, got {value}")
        _require(self.name_cap > 0, "name_cap", "must be > 0: a cap of 0 leaves no portfolio")
        _require(self.risk_window >= 20, "risk_window", f"must be ≥ 20 trading days, got {self.risk_window}")
        _require(self.bags >= 0, "bags", f"must be ≥ 0, got {self.bags}")


# -- submissions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionRules:
    """The accepted upload format (reference §1.10): columns, universe coverage, size limit, late window.

    ``min_tickers`` of ``None`` means every live id must be present (Classic). A date column (one
    of ``date_columns``) and any ``ignored_columns`` are dropped before the header check.
    ``late_window_hours`` of ``None`` accepts late uploads until the next round opens; ``0`` accepts
    none (uploads after close are only queued for the next round).
    """

    id_columns: tuple[str, ...]
    prediction_columns: tuple[str, ...]
    date_columns: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()
    min_tickers: int | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    late_window_hours: float | None = None

    def __post_init__(self) -> None:
        for name in ("id_columns", "prediction_columns"):
            columns = getattr(self, name)
            _require(len(columns) > 0, name, "must list at least one column name")
        groups = {
            "id_columns": self.id_columns,
            "prediction_columns": self.prediction_columns,
            "date_columns": self.date_columns,
            "ignored_columns": self.ignored_columns,
        }
        seen: dict[str, str] = {}
        for name, columns in groups.items():
            for column in columns:
                _require(bool(column), name, "column names must not be empty")
                _require(column not in seen, name, f"{column!r} is already one of {seen.get(column)}")
                seen[column] = name
        if self.min_tickers is not None:
            _require(self.min_tickers >= 1, "min_tickers", f"must be ≥ 1, got {self.min_tickers}")
        _require(self.max_upload_bytes > 0, "max_upload_bytes", f"must be > 0, got {self.max_upload_bytes}")
        if self.late_window_hours is not None:
            _require(
                math.isfinite(self.late_window_hours) and self.late_window_hours >= 0,
                "late_window_hours",
                f"must be ≥ 0 hours, got {self.late_window_hours}",
            )


# -- the tournament ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TournamentConfig:
    """Every rule of one tournament, as data.

    A round opening on day D is scored on the scoring days after D: score day k (1 … the longest
    score horizon) falls on the ``data_delay_days + lag_days + k − 1``-th scoring day after D, at
    ``score_time`` UTC; the round resolves at score day ``horizon``.
    """

    name: str
    tournament_id: int
    display_name: str
    calendar: RoundCalendar
    scores: tuple[ScoreConfig, ...]
    payout: PayoutRule
    meta_model: MetaModelRule
    submissions: SubmissionRules
    scoring_weekdays: tuple[Weekday, ...] = TUESDAY_TO_SATURDAY
    score_time: time = time(12, 0)
    lag_days: int = 2
    data_delay_days: int = 2
    horizon: int = 20
    gates: tuple[GateRule, ...] = ()
    fund: FundRule | None = None
    """The fund's portfolio; off (None) by default. A ``true_contribution`` score needs it."""
    market: str = "equity"
    """The market store the tournament's targets and live universe come from (``equity`` or ``crypto``)."""

    def __post_init__(self) -> None:
        _check_name(self.name, "name")
        _require(self.tournament_id >= 1, "tournament_id", f"must be ≥ 1, got {self.tournament_id}")
        object.__setattr__(
            self, "scoring_weekdays", _unique_sorted_weekdays(self.scoring_weekdays, "scoring_weekdays")
        )
        _require(self.lag_days >= 0, "lag_days", f"must be ≥ 0, got {self.lag_days}")
        _require(self.data_delay_days >= 0, "data_delay_days", f"must be ≥ 0, got {self.data_delay_days}")
        _require(
            self.data_delay_days + self.lag_days >= 1,
            "lag_days",
            "data_delay_days + lag_days must be ≥ 1: a round is first scored on a scoring day after it opens",
        )
        _require(self.horizon >= 1, "horizon", f"must be ≥ 1 scoring day, got {self.horizon}")
        _require(len(self.scores) > 0, "scores", "must list at least one score")
        by_name: dict[str, ScoreConfig] = {}
        for index, score in enumerate(self.scores):
            _require(score.name not in by_name, f"scores[{index}].name", f"{score.name!r} appears twice")
            by_name[score.name] = score
        for index, term in enumerate(self.payout.terms):
            where = f"payout.terms[{index}].score"
            _require(term.score in by_name, where, f"{term.score!r} is not one of the scores {list(by_name)}")
            _require(
                by_name[term.score].horizon <= self.horizon,
                where,
                f"{term.score!r} is final after {by_name[term.score].horizon} scoring days, after the round"
                f" resolves (horizon {self.horizon})",
            )
        for index, score in enumerate(self.scores):
            _require(
                score.metric != TRUE_CONTRIBUTION or self.fund is not None,
                f"scores[{index}].metric",
                f"{score.name!r} is a true_contribution score; it needs the fund's rules (set fund)",
            )
        gate_metrics = [gate.metric for gate in self.gates]
        _require(
            len(set(gate_metrics)) == len(gate_metrics), "gates", f"a metric is gated twice: {gate_metrics}"
        )

    @property
    def scoring_days(self) -> int:
        """Return how many scoring days a round is scored on: the longest score horizon (≥ ``horizon``)."""
        return max(self.horizon, *(score.horizon for score in self.scores))

    @property
    def first_score_offset(self) -> int:
        """Return which scoring day after the round day is score day 1 (``data_delay_days + lag_days``)."""
        return self.data_delay_days + self.lag_days

    def score(self, name: str) -> ScoreConfig:
        """Return the score config called ``name``; raise KeyError if there is none."""
        for score in self.scores:
            if score.name == name:
                return score
        raise KeyError(name)


# -- defaults ------------------------------------------------------------------------------------------

CLASSIC = TournamentConfig(
    name="classic",
    tournament_id=8,
    display_name="Classic",
    calendar=RoundCalendar(),
    scores=(
        ScoreConfig("corr20v2", "numerai_corr", "target", 20, display_name="CORR20v2"),
        ScoreConfig(
            "mmc", "correlation_contribution", "target", 20, against="meta_model", display_name="MMC"
        ),
        ScoreConfig(
            "bmc",
            "correlation_contribution",
            "target",
            20,
            against="benchmark_meta_model",
            display_name="BMC",
        ),
        ScoreConfig("corr60", "numerai_corr", "target_factor_neutral_60", 60, display_name="CORR60"),
        ScoreConfig("fnc", "feature_neutral_corr", "target", 20, neutral_to="medium", display_name="FNC"),
        ScoreConfig("cwmm", "cwmm", horizon=1, against="meta_model", display_name="CWMM"),
        ScoreConfig("mcwnm", "mcwnm", horizon=1, display_name="MCWNM"),
        ScoreConfig("apcwnm", "apcwnm", horizon=1, display_name="APCWNM"),
    ),
    payout=PayoutRule(
        terms=(PayoutTerm("corr20v2", 0.5), PayoutTerm("mmc", 2.0)), clip=0.05, stake_threshold=Decimal(72000)
    ),
    meta_model=MetaModelRule("SWMM", "stake"),
    submissions=SubmissionRules(id_columns=("id",), prediction_columns=("prediction", "probability")),
)

# Signals scores (reference §3.8). Our market has no proprietary risk model and no "feat_neutral" target,
# so ALPHA and MPC use the fully factor-neutral 60-day target (the closest to target_chili_60) and
# CORRv4 the main 20-day target, which equals RIC's here; FNCv4 neutralises to the round's risk neutralisers.
SIGNALS = TournamentConfig(
    name="signals",
    tournament_id=11,
    display_name="Signals",
    calendar=RoundCalendar(),
    scores=(
        ScoreConfig("alpha", "alpha", "target_factor_neutral_60", 60, display_name="ALPHA"),
        ScoreConfig(
            "mpc",
            "meta_portfolio_contribution",
            "target_factor_neutral_60",
            60,
            display_name="MPC",
        ),
        ScoreConfig(
            "mmc",
            "correlation_contribution",
            "target_factor_neutral_20",
            20,
            against="meta_model",
            display_name="MMC",
        ),
        ScoreConfig("corr_v4", "numerai_corr", "target", 20, display_name="CORRv4"),
        ScoreConfig(
            "fnc_v4",
            "feature_neutral_corr",
            "target",
            20,
            neutral_to=ROUND_NEUTRALIZERS,
            display_name="FNCv4",
        ),
        ScoreConfig("ic_v2", "numerai_corr", "target_raw_return_20", 20, display_name="ICv2"),
        ScoreConfig("ric", "numerai_corr", "target_factor_neutral_20", 20, display_name="RIC"),
    ),
    payout=PayoutRule(
        terms=(PayoutTerm("alpha", 0.3), PayoutTerm("mpc", 0.8)), clip=0.017, stake_threshold=Decimal(36000)
    ),
    meta_model=MetaModelRule("SNWMMmin10", "equal", min_stake=Decimal(10)),
    submissions=SubmissionRules(
        id_columns=("ticker", "sedol", "bloomberg_ticker", "composite_figi", "numerai_ticker"),
        prediction_columns=("prediction", "signal"),
        date_columns=("friday_date", "date"),
        ignored_columns=("data_type",),
        min_tickers=100,
    ),
    horizon=60,
    gates=(GateRule("churn", 0.15), GateRule("turnover", 0.25)),
)

CRYPTO = TournamentConfig(
    name="crypto",
    tournament_id=12,
    display_name="Crypto",
    calendar=RoundCalendar(),
    scores=(
        ScoreConfig(
            "mmc",
            "correlation_contribution",
            "target_raw_return_20",
            20,
            against="meta_model",
            display_name="MMC",
        ),
        ScoreConfig("corr20", "numerai_corr", "target_raw_return_20", 20, display_name="CORR20"),
    ),
    payout=PayoutRule(terms=(PayoutTerm("mmc", 1.0),), clip=0.05, stake_threshold=Decimal(10000)),
    meta_model=MetaModelRule("CNWMMmin1", "equal", min_stake=Decimal(1)),
    submissions=SubmissionRules(
        id_columns=("symbol",), prediction_columns=("prediction", "signal"), min_tickers=100
    ),
    market="crypto",
)

DEFAULT_TOURNAMENTS: Mapping[str, TournamentConfig] = types.MappingProxyType(
    {config.name: config for config in (CLASSIC, SIGNALS, CRYPTO)}
)


def tournament_by_id(
    tournament_id: int, configs: Mapping[str, TournamentConfig] = DEFAULT_TOURNAMENTS
) -> TournamentConfig:
    """Return the config whose numerapi tournament id is ``tournament_id``; raise KeyError if none."""
    for config in configs.values():
        if config.tournament_id == tournament_id:
            return config
    raise KeyError(tournament_id)


# -- to and from plain dictionaries ----------------------------------------------------------------------


def to_dict(config: Any) -> dict[str, Any]:
    """Return a TOML/JSON-friendly dictionary of a config (or a part of one), leaving out ``None`` fields."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"to_dict needs a config dataclass, got {type(config).__name__}")
    return _to_plain(config)


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            item.name: _to_plain(getattr(value, item.name))
            for item in dataclasses.fields(value)
            if getattr(value, item.name) is not None
        }
    if isinstance(value, tuple):
        return [_to_plain(item) for item in value]
    if isinstance(value, Weekday):
        return value.label
    if isinstance(value, time):
        return value.isoformat(
            timespec="minutes" if value.second == 0 and value.microsecond == 0 else "seconds"
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    return value


def config_from_dict(data: Mapping[str, Any]) -> TournamentConfig:
    """Return the TournamentConfig a dictionary (:func:`to_dict`, TOML, JSON) describes; raise ConfigError."""
    return _from_mapping(TournamentConfig, data, "")


def _join(path: str, name: str) -> str:
    if not path:
        return name
    if not name:
        return path
    return f"{path}{name}" if name.startswith("[") else f"{path}.{name}"


def _from_mapping(cls: type, data: Any, path: str) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"must be a table of fields, got {type(data).__name__}")
    hints = get_type_hints(cls)
    known = {item.name: item for item in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(_join(path, str(key)), f"unknown field; the fields are {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for name, item in known.items():
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], _join(path, name))
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            raise ConfigError(_join(path, name), "is required")
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise ConfigError(_join(path, error.field), error.problem) from None


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _coerce(hint: Any, value: Any, path: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(hint) if arg is not type(None)]
        if value is None:
            return None
        return _coerce(options[0], value, path)
    if origin is tuple:
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise ConfigError(path, f"must be a list, got {_describe(value)}")
        (item_hint, _ellipsis) = get_args(hint)
        return tuple(_coerce(item_hint, item, f"{path}[{index}]") for index, item in enumerate(value))
    if origin is Literal:
        allowed = get_args(hint)
        if value not in allowed:
            raise ConfigError(path, f"must be one of {list(allowed)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return _from_mapping(hint, value, path)
    converter = _CONVERTERS.get(hint)
    if converter is None:  # pragma: no cover - a field type without a converter is a programming error
        raise TypeError(f"no converter for {hint!r} at {path}")
    try:
        return converter(value)
    except (TypeError, ValueError, InvalidOperation) as error:
        raise ConfigError(path, str(error)) from None


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be a string, got {_describe(value)}")
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"must be an integer, got {_describe(value)}")
    return value


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"must be a number, got {_describe(value)}")
    if not math.isfinite(value):
        raise ValueError(f"must be finite, got {value!r}")
    return float(value)


def _to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise TypeError(f"must be a token amount (integer or decimal string), got {_describe(value)}")
    try:
        amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"must be a token amount (integer or decimal string), got {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"must be a finite token amount, got {value!r}")
    return amount


def _to_time(value: Any) -> time:
    if isinstance(value, str):
        try:
            value = time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be a UTC time of day 'HH:MM', got {value!r}") from None
    if not isinstance(value, time):
        raise TypeError(f"must be a UTC time of day 'HH:MM', got {_describe(value)}")
    if value.tzinfo is not None:
        raise ValueError(f"times of day are UTC; write them without an offset, got {value.isoformat()!r}")
    return value


def _to_date(value: Any) -> date:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be a date 'YYYY-MM-DD', got {value!r}") from None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"must be a date 'YYYY-MM-DD', got {_describe(value)}")
    return value


def _to_weekday(value: Any) -> Weekday:
    if isinstance(value, Weekday):
        return value
    if isinstance(value, str) and value.upper() in Weekday.__members__:
        return Weekday[value.upper()]
    raise ValueError(f"must be a weekday {[d.label for d in Weekday]}, got {value!r}")


def _to_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"must be true or false, got {_describe(value)}")
    return value


_CONVERTERS: dict[Any, Any] = {
    bool: _to_bool,
    str: _to_str,
    int: _to_int,
    float: _to_float,
    Decimal: _to_decimal,
    time: _to_time,
    date: _to_date,
    Weekday: _to_weekday,
}
