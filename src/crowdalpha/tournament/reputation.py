"""Reputation, leaderboards and season standings (reference §3.7), as pure functions over score tables.

The input is a long table of **resolved** round scores, one row per model and round, with columns
``model``, ``account``, ``round``, ``resolved_on`` (the date the round resolved), ``at_risk_nano``
(the model's at-risk stake in that round, integer nano-tokens) and one column per score.

* **Model reputation** of a score: the mean of the model's resolved scores in the window (by
  default the rounds resolved in the 365 days up to ``as_of``; or the last N resolved rounds), with
  a leaderboard rank (1 = best; ties share the best rank) and a round-bootstrap interval.
* **Account reputation**: the same, over the account's per-round score — the stake-weighted mean
  ``Σ score·stake / Σ stake`` of its staked models; in a round where none of its models is staked,
  the plain mean of its models' scores (so a single unstaked model has its own score).
* **Season standings** (Grandmasters): season score = mean over *all* the season's rounds of the
  account's round score, a round without stake (or without a score) counting 0; a round is
  *qualified* when the account's total at risk is at least ``min_at_risk`` (late submissions have
  none); accounts with
  fewer than ``min_qualified_rounds`` qualified rounds are unranked (Novices); the others are
  ranked and given the first tier whose top-N or top-fraction (rounded up) contains their rank.
* **Uncertainty**: a percentile bootstrap of each reputation that resamples *rounds* (the same
  draws for every model, so one matrix product does all models), seeded. Rounds overlap in time
  (a 20-day target spans 20 daily rounds), so ``block_rounds`` > 1 gives a circular block
  bootstrap; Numerai publishes no interval, so block length, confidence and resample count are
  settings (:class:`ReputationSettings`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

import numpy as np
import pandas as pd

from crowdalpha.tournament.payouts import tokens_to_nano

MODEL = "model"
ACCOUNT = "account"
ROUND = "round"
RESOLVED_ON = "resolved_on"
AT_RISK = "at_risk_nano"
SCORE = "score"
"""Column of the per-round account score made by :func:`account_round_scores`."""


class ReputationError(ValueError):
    """A reputation input or setting broke a rule; the message names the rule and where."""


@dataclass(frozen=True)
class ReputationSettings:
    """How reputations are computed: the window (days *or* rounds), the minimum rounds, the bootstrap."""

    window_days: int | None = 365
    window_rounds: int | None = None
    min_rounds: int = 1
    confidence: float = 0.9
    bootstrap_samples: int = 1000
    block_rounds: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.window_days is None) == (self.window_rounds is None):
            raise ReputationError("window: set exactly one of window_days and window_rounds")
        for name in ("window_days", "window_rounds", "min_rounds", "bootstrap_samples", "block_rounds"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ReputationError(f"{name}: must be ≥ 1, got {value}")
        if not 0 < self.confidence < 1:
            raise ReputationError(f"confidence: must be in (0, 1), got {self.confidence}")


DEFAULT_REPUTATION = ReputationSettings()


@dataclass(frozen=True)
class Tier:
    """A season tier: the accounts ranked within the top ``top_rank`` or the top ``top_fraction``."""

    name: str
    top_rank: int | None = None
    top_fraction: float | None = None

    def __post_init__(self) -> None:
        if (self.top_rank is None) == (self.top_fraction is None):
            raise ReputationError(f"tier {self.name!r}: set exactly one of top_rank and top_fraction")
        if self.top_rank is not None and self.top_rank < 1:
            raise ReputationError(f"tier {self.name!r}: top_rank must be ≥ 1, got {self.top_rank}")
        if self.top_fraction is not None and not 0 < self.top_fraction <= 1:
            raise ReputationError(
                f"tier {self.name!r}: top_fraction must be in (0, 1], got {self.top_fraction}"
            )

    def last_rank(self, n_ranked: int) -> int:
        """Return the worst rank inside this tier when ``n_ranked`` accounts are ranked."""
        if self.top_rank is not None:
            return self.top_rank
        assert self.top_fraction is not None
        return math.ceil(round(self.top_fraction * n_ranked, 9))


@dataclass(frozen=True)
class SeasonRules:
    """Season standings rules: the tiers best first (the last takes every ranked account), qualification."""

    tiers: tuple[Tier, ...]
    unqualified_tier: str = "Novices"
    min_qualified_rounds: int = 20
    min_at_risk: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if not self.tiers or self.tiers[-1].top_fraction != 1:
            raise ReputationError(
                "tiers: the last tier must have top_fraction 1 so every ranked account has one"
            )
        if self.min_qualified_rounds < 1:
            raise ReputationError(f"min_qualified_rounds: must be ≥ 1, got {self.min_qualified_rounds}")
        if self.min_at_risk < 0:
            raise ReputationError(f"min_at_risk: must be ≥ 0 tokens, got {self.min_at_risk}")


CLASSIC_SEASON = SeasonRules(
    tiers=(
        Tier("Grandmaster", top_rank=1),
        Tier("Masters", top_rank=10),
        Tier("Experts", top_rank=100),
        Tier("Researchers", top_fraction=1 / 3),
        Tier("Contributors", top_fraction=2 / 3),
        Tier("Apprentices", top_fraction=1.0),
    )
)
SIGNALS_SEASON = SeasonRules(
    tiers=(
        Tier("Experts", top_fraction=0.25),
        Tier("Researchers", top_fraction=0.5),
        Tier("Contributors", top_fraction=0.75),
        Tier("Apprentices", top_fraction=1.0),
    )
)


# -- inputs ----------------------------------------------------------------------------------------


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ReputationError(f"{what} needs columns {missing}; it has {list(frame.columns)}")


def resolved_in_window(resolved: pd.DataFrame, *, as_of: date, settings: ReputationSettings) -> pd.DataFrame:
    """Return the rows resolved on or before ``as_of`` inside the settings' window (days or rounds)."""
    _require_columns(resolved, [ROUND, RESOLVED_ON], "resolved scores")
    resolved_on = pd.to_datetime(resolved[RESOLVED_ON])
    if resolved_on.isna().any():
        raise ReputationError(f"every resolved score needs a {RESOLVED_ON} date; some are missing")
    days = resolved_on.dt.date.to_numpy()
    done = days <= as_of
    if settings.window_days is not None:
        return resolved[done & (days > as_of - timedelta(days=settings.window_days))]
    assert settings.window_rounds is not None
    latest = np.sort(pd.unique(resolved.loc[done, ROUND]))[-settings.window_rounds :]
    return resolved[done & resolved[ROUND].isin(latest).to_numpy()]


def _numeric_scores(resolved: pd.DataFrame, score: str) -> pd.Series:
    try:
        return pd.to_numeric(resolved[score]).astype(np.float64)
    except (TypeError, ValueError):
        raise ReputationError(f"scores {score!r} must be numbers (NaN when missing)") from None


def require_finite(scores: np.ndarray, score: str) -> None:
    """Refuse scores of ``score`` that are ±inf (NaN means not scored)."""
    if np.isinf(scores).any():
        raise ReputationError(f"scores {score!r} must be finite or missing; some are ±inf")


def score_matrix(resolved: pd.DataFrame, score: str, entity: str = MODEL) -> pd.DataFrame:
    """Return scores as a ``rounds × entities`` frame (rounds ascending, NaN where not scored)."""
    _require_columns(resolved, [entity, ROUND, score], f"the {score!r} reputation")
    duplicated = resolved.duplicated([entity, ROUND])
    if duplicated.any():
        first = resolved.loc[duplicated, [entity, ROUND]].head(5).to_dict("records")
        raise ReputationError(f"one {score!r} per {entity} and round is allowed; repeated: {first}")
    values = _numeric_scores(resolved, score)
    require_finite(values.to_numpy(), score)
    matrix = resolved.assign(**{score: values}).pivot(index=ROUND, columns=entity, values=score)
    return matrix.sort_index().astype(np.float64)


# -- the numeric core --------------------------------------------------------------------------------


def mean_and_count(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each column's mean over its scored rounds and its count of scored rounds (rounds × models)."""
    observed = ~np.isnan(scores)
    counts = observed.sum(axis=0)
    sums = np.where(observed, scores, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan), counts


def leaderboard_ranks(values: np.ndarray) -> np.ndarray:
    """Return ranks with 1 for the highest value, ties sharing the best rank, NaN unranked (float array)."""
    return pd.Series(values).rank(ascending=False, method="min").to_numpy()


def resample_counts(n_rounds: int, samples: int, block_rounds: int, rng: np.random.Generator) -> np.ndarray:
    """Return how often each round is drawn in each bootstrap sample (``samples × rounds`` ints).

    Circular block bootstrap: each sample joins ``ceil(n / block)`` blocks of consecutive rounds
    starting at uniform positions (wrapping around), cut to ``n`` rounds; ``block_rounds=1`` is the
    ordinary round bootstrap.
    """
    block = min(block_rounds, n_rounds)
    n_blocks = -(-n_rounds // block)
    starts = rng.integers(0, n_rounds, size=(samples, n_blocks, 1))
    drawn = ((starts + np.arange(block)) % n_rounds).reshape(samples, n_blocks * block)[:, :n_rounds]
    flat = drawn + (np.arange(samples) * n_rounds)[:, None]
    return np.bincount(flat.ravel(), minlength=samples * n_rounds).reshape(samples, n_rounds)


@lru_cache(maxsize=8)
def _seeded_resample_counts(n_rounds: int, samples: int, block_rounds: int, seed: int) -> np.ndarray:
    """Return :func:`resample_counts` of a fresh generator seeded ``seed``, as floats (kept: a refresh
    bootstraps every score with the same draws; read-only)."""
    counts = resample_counts(n_rounds, samples, block_rounds, np.random.default_rng(seed)).astype(np.float64)
    counts.flags.writeable = False
    return counts


BOOTSTRAP_CHUNK = 2048
"""Models per block of the bootstrap: its ``models × samples`` means stay a few MB, not one 80 MB array."""


def bootstrap_interval(
    scores: np.ndarray,
    *,
    confidence: float = 0.9,
    samples: int = 1000,
    block_rounds: int = 1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the percentile bootstrap ``(low, high)`` of each column's mean score (``rounds × models``).

    Every model is resampled with the same draws of rounds, so a block of models' resampled sums
    is one matrix product (``models × rounds`` by ``rounds × samples``).
    """
    scores = np.asarray(scores, dtype=np.float64)
    n_rounds, n_models = scores.shape
    low, high = np.full(n_models, np.nan), np.full(n_models, np.nan)
    if n_rounds == 0:
        return low, high
    counts = _seeded_resample_counts(n_rounds, samples, block_rounds, seed)
    observed = ~np.isnan(scores)
    filled = np.where(observed, scores, 0.0)
    tail = (1 - confidence) / 2
    for start in range(0, n_models, BOOTSTRAP_CHUNK):
        block = slice(start, start + BOOTSTRAP_CHUNK)
        sums = filled[:, block].T @ counts.T  # models × samples
        drawn = observed[:, block].T.astype(np.float64) @ counts.T
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(drawn > 0, sums / drawn, np.nan)
        low[block], high[block] = row_quantiles(means, [tail, 1 - tail])
    return low, high


def row_quantiles(values: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Return each row's quantiles ignoring NaN (``quantiles × rows``; NaN for an all-NaN row).

    The same linear interpolation as ``np.nanquantile``, for all rows at once: ``nanquantile``
    along an axis loops in Python, far too slow for 10,000 models. Rows without NaN (nearly all,
    in a bootstrap) share their order statistics' positions, so one ``np.partition`` finds
    them; only the rows with NaN are sorted.
    """
    values = np.asarray(values, dtype=np.float64)
    n_rows, width = values.shape
    result = np.full((len(quantiles), n_rows), np.nan)
    counts = (~np.isnan(values)).sum(axis=1)
    full = counts == width
    if width > 0 and full.any():
        last = width - 1
        positions = [quantile * last for quantile in quantiles]
        below = [math.floor(position) for position in positions]
        above = [min(index + 1, last) for index in below]
        part = np.partition(values if full.all() else values[full], sorted({*below, *above}), axis=1)
        for row, (position, low, high) in enumerate(zip(positions, below, above, strict=True)):
            result[row, full] = part[:, low] + (part[:, high] - part[:, low]) * (position - low)
    gappy = np.flatnonzero(~full & (counts > 0))
    if gappy.size:
        ordered = np.sort(values[gappy], axis=1)  # NaN sort last
        last_of = counts[gappy] - 1
        rows = np.arange(gappy.size)
        for row, quantile in enumerate(quantiles):
            position = quantile * last_of
            low = np.floor(position).astype(np.int64)
            high = np.minimum(low + 1, last_of)
            bottom, top = ordered[rows, low], ordered[rows, high]
            result[row, gappy] = bottom + (top - bottom) * (position - low)
    return result


def column_quantiles(values: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Return each column's quantiles ignoring NaN (``quantiles × columns``), as :func:`row_quantiles`."""
    return row_quantiles(np.asarray(values, dtype=np.float64).T, quantiles)


# -- reputations and leaderboards ------------------------------------------------------------------------


def reputation(
    resolved: pd.DataFrame,
    score: str,
    *,
    as_of: date,
    entity: str = MODEL,
    settings: ReputationSettings = DEFAULT_REPUTATION,
) -> pd.DataFrame:
    """Return each entity's reputation of ``score``, rank, scored rounds and bootstrap interval, best first.

    Columns ``reputation``, ``rank`` (nullable int; missing below ``min_rounds``), ``rounds``,
    ``ci_low``, ``ci_high``; indexed by ``entity``.
    """
    matrix = score_matrix(resolved_in_window(resolved, as_of=as_of, settings=settings), score, entity)
    return matrix_reputation(matrix.to_numpy(), matrix.columns, entity=entity, settings=settings)


def matrix_reputation(
    values: np.ndarray,
    entities: pd.Index,
    *,
    entity: str = MODEL,
    settings: ReputationSettings = DEFAULT_REPUTATION,
) -> pd.DataFrame:
    """Return :func:`reputation` from the window's ``rounds × entities`` score matrix (:func:`score_matrix`).

    ``values`` are the matrix's numbers (C order, rounds ascending), ``entities`` its columns.
    """
    means, counts = mean_and_count(values)
    ranked = counts >= settings.min_rounds
    means = np.where(ranked, means, np.nan)
    low, high = bootstrap_interval(
        values[:, ranked],
        confidence=settings.confidence,
        samples=settings.bootstrap_samples,
        block_rounds=settings.block_rounds,
        seed=settings.seed,
    )
    table = pd.DataFrame(
        {
            "reputation": means,
            "rank": pd.array(leaderboard_ranks(means), dtype="Int64"),
            "rounds": counts.astype(np.int64),
            "ci_low": np.nan,
            "ci_high": np.nan,
        },
        index=pd.Index(entities, name=entity),
    )
    table.loc[ranked, "ci_low"] = low
    table.loc[ranked, "ci_high"] = high
    return table.sort_values(["rank", "rounds"], ascending=[True, False], na_position="last")


def account_round_scores(resolved: pd.DataFrame, score: str) -> pd.DataFrame:
    """Return each account's per-round score: the stake-weighted mean of its staked models, else their mean.

    Columns ``account``, ``round``, ``resolved_on``, ``score``, ``at_risk_nano`` (the account's total).
    """
    groups, (values,) = _account_round_sums(resolved, [score])
    groups.insert(1, SCORE, values)
    return groups.reset_index()


def account_round_score_table(resolved: pd.DataFrame, scores: Sequence[str]) -> pd.DataFrame:
    """Return :func:`account_round_scores` of several scores from one grouping: columns ``account``,
    ``round``, ``resolved_on``, ``at_risk_nano`` and one per score."""
    groups, values = _account_round_sums(resolved, scores)
    for score, column in zip(scores, values, strict=True):
        groups[score] = column
    return groups.reset_index()


def _account_round_sums(
    resolved: pd.DataFrame, scores: Sequence[str]
) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Return the (account, round) groups with their ``resolved_on`` and total at risk, and each score's
    per-group score (stake-weighted mean of the staked models, else their mean)."""
    _require_columns(resolved, [MODEL, ACCOUNT, ROUND, RESOLVED_ON, AT_RISK, *scores], "account scores")
    at_risk = resolved[AT_RISK].to_numpy()
    if not np.issubdtype(at_risk.dtype, np.integer) or (at_risk < 0).any():
        raise ReputationError(f"{AT_RISK} must be integer nano-tokens ≥ 0")
    columns: dict[str, np.ndarray] = {
        ACCOUNT: resolved[ACCOUNT].to_numpy(),
        ROUND: resolved[ROUND].to_numpy(),
        RESOLVED_ON: resolved[RESOLVED_ON].to_numpy(),
        AT_RISK: at_risk.astype(np.int64),
    }
    sums_of: dict[str, str] = {RESOLVED_ON: "max", AT_RISK: "sum"}
    for index, score in enumerate(scores):
        values = _numeric_scores(resolved, score)
        scored = values.notna().to_numpy()
        weights = np.where(scored, at_risk, 0).astype(np.float64)
        columns[f"weighted {index}"] = np.where(scored, values.to_numpy(), 0.0) * weights
        columns[f"weight {index}"] = weights
        columns[f"plain {index}"] = np.where(scored, values.to_numpy(), 0.0)
        columns[f"scored {index}"] = scored.astype(np.int64)
        sums_of.update({f"{part} {index}": "sum" for part in ("weighted", "weight", "plain", "scored")})
    parts = pd.DataFrame(columns)
    # datetime64, not date objects: pandas' max of objects runs in Python, once per group
    parts[RESOLVED_ON] = pd.to_datetime(parts[RESOLVED_ON])
    sums = parts.groupby([ACCOUNT, ROUND], sort=True).agg(sums_of)
    per_score = []
    for index in range(len(scores)):
        weight, scored = sums[f"weight {index}"], sums[f"scored {index}"]
        with np.errstate(invalid="ignore", divide="ignore"):
            stake_weighted = sums[f"weighted {index}"] / weight
            plain = sums[f"plain {index}"] / scored.where(scored > 0)
        per_score.append(np.where(weight > 0, stake_weighted, plain))
    groups = sums[[RESOLVED_ON, AT_RISK]].copy()
    if resolved[RESOLVED_ON].dtype == object:
        groups[RESOLVED_ON] = groups[RESOLVED_ON].dt.date
    return groups, per_score


def account_reputation(
    resolved: pd.DataFrame, score: str, *, as_of: date, settings: ReputationSettings = DEFAULT_REPUTATION
) -> pd.DataFrame:
    """Return each account's reputation of ``score`` (stake-weighted per round), as :func:`reputation`."""
    return reputation(
        account_round_scores(resolved, score), SCORE, as_of=as_of, entity=ACCOUNT, settings=settings
    )


def leaderboard(
    resolved: pd.DataFrame,
    scores: Sequence[str],
    *,
    as_of: date,
    entity: str = MODEL,
    settings: ReputationSettings = DEFAULT_REPUTATION,
) -> pd.DataFrame:
    """Return one row per entity with each score's ``_rep``, ``_rank``, ``_rounds`` and interval columns."""
    if not scores:
        raise ReputationError("a leaderboard needs at least one score")
    tables = [
        reputation(resolved, score, as_of=as_of, entity=entity, settings=settings)
        .rename(columns={"reputation": "rep"})
        .add_prefix(f"{score}_")
        for score in scores
    ]
    return pd.concat(tables, axis=1).sort_values([f"{scores[0]}_rank"], na_position="last", kind="stable")


# -- seasons -------------------------------------------------------------------------------------------


def season_standings(
    account_rounds: pd.DataFrame, season_rounds: Sequence[int], rules: SeasonRules = CLASSIC_SEASON
) -> pd.DataFrame:
    """Return each account's season score, qualified rounds, rank and tier, best first.

    ``account_rounds`` is :func:`account_round_scores` output; ``season_rounds`` every round of the
    season (rounds an account missed count 0 in its mean).
    """
    _require_columns(account_rounds, [ACCOUNT, ROUND, SCORE, AT_RISK], "season standings")
    rounds = pd.Index(pd.unique(np.asarray(season_rounds)))
    if rounds.empty:
        raise ReputationError("a season needs at least one round")
    rows = account_rounds[account_rounds[ROUND].isin(rounds)]
    staked = rows[AT_RISK].to_numpy() > 0
    counted = np.where(staked, rows[SCORE].fillna(0.0).to_numpy(), 0.0)
    qualified = rows[AT_RISK].to_numpy() >= tokens_to_nano(rules.min_at_risk)
    per_account = (
        pd.DataFrame({ACCOUNT: rows[ACCOUNT].to_numpy(), "counted": counted, "qualified": qualified})
        .groupby(ACCOUNT, sort=True)
        .sum()
    )
    season_score = per_account["counted"] / len(rounds)
    qualified_rounds = per_account["qualified"].astype(np.int64)
    ranked = (qualified_rounds >= rules.min_qualified_rounds).to_numpy()
    ranks = leaderboard_ranks(np.where(ranked, season_score.to_numpy(), np.nan))
    last_ranks = np.array([tier.last_rank(int(ranked.sum())) for tier in rules.tiers])
    tier_index = np.argmax(ranks[:, None] <= last_ranks[None, :], axis=1)
    names = np.array([tier.name for tier in rules.tiers], dtype=object)
    table = pd.DataFrame(
        {
            "season_score": season_score.to_numpy(),
            "qualified_rounds": qualified_rounds.to_numpy(),
            "rank": pd.array(ranks, dtype="Int64"),
            "tier": np.where(ranked, names[tier_index], rules.unqualified_tier),
        },
        index=per_account.index,
    )
    return table.sort_values(["rank", "season_score"], ascending=[True, False], na_position="last")
