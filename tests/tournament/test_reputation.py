"""Reputation, leaderboards, account reputation, bootstrap intervals and season standings."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.tournament.reputation import (
    CLASSIC_SEASON,
    SIGNALS_SEASON,
    ReputationError,
    ReputationSettings,
    SeasonRules,
    Tier,
    account_reputation,
    account_round_score_table,
    account_round_scores,
    bootstrap_interval,
    column_quantiles,
    leaderboard,
    leaderboard_ranks,
    reputation,
    resample_counts,
    season_standings,
)

TOKEN = NANO_PER_TOKEN
AS_OF = date(2026, 12, 1)


def _rows(*rows: tuple) -> pd.DataFrame:
    """Build resolved scores from (model, account, round, days before AS_OF, at-risk tokens, corr, mmc)."""
    return pd.DataFrame(
        [
            {
                "model": model,
                "account": account,
                "round": round_number,
                "resolved_on": AS_OF - timedelta(days=days_ago),
                "at_risk_nano": int(tokens * TOKEN),
                "corr": corr,
                "mmc": mmc,
            }
            for model, account, round_number, days_ago, tokens, corr, mmc in rows
        ]
    )


HISTORY = _rows(
    ("alpha", "ann", 1, 400, 10, 0.90, 0.0),  # resolved more than a year ago: outside the window
    ("alpha", "ann", 2, 300, 10, 0.02, 0.01),
    ("alpha", "ann", 3, 10, 10, 0.04, 0.03),
    ("beta", "ann", 2, 300, 30, -0.02, 0.02),
    ("beta", "ann", 3, 10, 0, 0.06, np.nan),
    ("gamma", "bob", 3, 10, 0, 0.03, 0.01),
    ("delta", "cid", 4, -1, 5, 0.50, 0.5),  # resolves after AS_OF: not yet counted
)


def test_model_reputation_is_the_one_year_mean_with_ranks_by_hand():
    table = reputation(HISTORY, "corr", as_of=AS_OF)
    # alpha (0.02 + 0.04)/2 = 0.03, beta (-0.02 + 0.06)/2 = 0.02, gamma 0.03 — alpha and gamma tie
    assert list(table.index) == ["alpha", "gamma", "beta"]
    np.testing.assert_allclose(table["reputation"], [0.03, 0.03, 0.02])
    assert table["rank"].tolist() == [1, 1, 3]
    assert table["rounds"].tolist() == [2, 1, 2]


def test_the_window_can_count_rounds_instead_of_days():
    table = reputation(
        HISTORY, "corr", as_of=AS_OF, settings=ReputationSettings(window_days=None, window_rounds=1)
    )
    np.testing.assert_allclose(table.loc[["beta", "alpha", "gamma"], "reputation"], [0.06, 0.04, 0.03])
    everything = ReputationSettings(window_days=None, window_rounds=10)
    np.testing.assert_allclose(
        reputation(HISTORY, "corr", as_of=AS_OF, settings=everything).loc["alpha", "reputation"], 0.32
    )


def test_models_below_the_minimum_rounds_are_listed_unranked():
    table = reputation(HISTORY, "mmc", as_of=AS_OF, settings=ReputationSettings(min_rounds=2))
    assert table.loc["alpha", "rank"] == 1 and np.isclose(table.loc["alpha", "reputation"], 0.02)
    assert table.loc["beta", "rank"] is pd.NA and np.isnan(table.loc["beta", "reputation"])  # one mmc: NaN
    assert table.loc["beta", "rounds"] == 1 and list(table.index)[-1] in {"beta", "gamma"}


def test_leaderboard_ranks_highest_first_with_shared_ranks():
    np.testing.assert_array_equal(
        leaderboard_ranks(np.array([0.1, 0.3, np.nan, 0.3, -1])), [3, 1, np.nan, 1, 4]
    )


def test_leaderboard_has_one_block_per_score_ranked_by_the_first():
    board = leaderboard(HISTORY, ["mmc", "corr"], as_of=AS_OF)
    # mmc: alpha (0.01 + 0.03)/2 = 0.02 ties beta's single 0.02 (its other mmc is missing); gamma 0.01
    assert list(board.index) == ["alpha", "beta", "gamma"]
    assert board["mmc_rank"].tolist() == [1, 1, 3] and board["mmc_rounds"].tolist() == [2, 1, 1]
    assert {"mmc_rep", "mmc_rank", "corr_rep", "corr_rank", "corr_ci_low", "mmc_rounds"} <= set(board.columns)
    np.testing.assert_allclose(board.loc["alpha", ["mmc_rep", "corr_rep"]].astype(float), [0.02, 0.03])


# -- account reputation ------------------------------------------------------------------------------


def test_account_round_score_is_stake_weighted_over_staked_models():
    rounds = account_round_scores(HISTORY, "corr").set_index(["account", "round"])
    # ann round 2: (10·0.02 + 30·(−0.02)) / 40 = −0.01; round 3: only alpha is staked → 0.04
    assert rounds.loc[("ann", 2), "score"] == pytest.approx(-0.01)
    assert rounds.loc[("ann", 3), "score"] == pytest.approx(0.04)
    # bob's single unstaked model has its own score
    assert rounds.loc[("bob", 3), "score"] == pytest.approx(0.03)
    assert rounds.loc[("ann", 2), "at_risk_nano"] == 40 * TOKEN


def test_an_account_with_only_unstaked_models_gets_their_plain_mean():
    rows = _rows(("m1", "dee", 7, 1, 0, 0.01, 0), ("m2", "dee", 7, 1, 0, 0.05, 0))
    assert account_round_scores(rows, "corr")["score"].iloc[0] == pytest.approx(0.03)


def test_several_scores_grouped_at_once_equal_each_score_grouped_alone():
    table = account_round_score_table(HISTORY, ["corr", "mmc"])
    for score in ("corr", "mmc"):
        together = table[["account", "round", "resolved_on", score, "at_risk_nano"]]
        alone = account_round_scores(HISTORY, score)
        pd.testing.assert_frame_equal(together.rename(columns={score: "score"}), alone, check_exact=True)


def test_account_reputation_averages_its_round_scores():
    table = account_reputation(HISTORY, "corr", as_of=AS_OF)
    np.testing.assert_allclose(table.loc[["bob", "ann"], "reputation"], [0.03, (-0.01 + 0.04) / 2])
    assert table["rank"].tolist() == [1, 2]


# -- bootstrap intervals -----------------------------------------------------------------------------


def test_resample_counts_draw_every_sample_to_full_length():
    counts = resample_counts(50, 200, 7, np.random.default_rng(0))
    assert counts.shape == (200, 50) and np.all(counts.sum(axis=1) == 50)
    assert resample_counts(50, 200, 1, np.random.default_rng(0)).min() == 0  # some rounds left out


def test_bootstrap_interval_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(5)
    scores = rng.normal(0.01, 0.03, size=(120, 1))
    low, high = bootstrap_interval(scores, samples=20_000, seed=1)
    oracle = stats.bootstrap(
        (scores[:, 0],),
        np.mean,
        confidence_level=0.9,
        n_resamples=20_000,
        method="percentile",
        random_state=2,
    ).confidence_interval
    width = oracle.high - oracle.low
    assert abs(low[0] - oracle.low) < 0.05 * width and abs(high[0] - oracle.high) < 0.05 * width


def test_bootstrap_interval_width_follows_the_standard_error_for_all_models_at_once():
    rng = np.random.default_rng(6)
    scores = rng.normal(0.0, 0.02, size=(250, 400))
    scores[rng.uniform(size=scores.shape) < 0.1] = np.nan  # missed rounds
    low, high = bootstrap_interval(scores, samples=500, seed=3)
    counts = (~np.isnan(scores)).sum(axis=0)
    expected = 2 * stats.norm.ppf(0.95) * 0.02 / np.sqrt(counts)
    assert np.mean((high - low) / expected) == pytest.approx(1.0, abs=0.05)
    means = np.nanmean(scores, axis=0)
    assert np.mean((low <= means) & (means <= high)) > 0.99


def test_block_bootstrap_widens_the_interval_of_overlapping_rounds():
    rng = np.random.default_rng(7)
    daily = rng.normal(0, 0.02, size=(400 + 19, 50))
    overlapping = np.cumsum(daily, axis=0)[19:] - np.cumsum(daily, axis=0)[:-19]  # 20-round moving sums
    iid_low, iid_high = bootstrap_interval(overlapping, seed=0)
    block_low, block_high = bootstrap_interval(overlapping, block_rounds=20, seed=0)
    assert np.mean((block_high - block_low) / (iid_high - iid_low)) > 2


def test_bootstrap_is_seeded_and_collapses_on_constant_scores():
    scores = np.random.default_rng(8).normal(size=(30, 3))
    first, again = bootstrap_interval(scores, seed=4), bootstrap_interval(scores, seed=4)
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], bootstrap_interval(scores, seed=5)[0])
    low, high = bootstrap_interval(np.full((10, 2), 0.25))
    np.testing.assert_allclose([low, high], 0.25)


def test_reputation_carries_each_models_interval():
    rng = np.random.default_rng(9)
    rows = _rows(
        *[(f"m{k}", "acc", r, r, 1, rng.normal(0.01 * k, 0.01), 0) for k in range(3) for r in range(1, 80)]
    )
    table = reputation(rows, "corr", as_of=AS_OF, settings=ReputationSettings(seed=2))
    assert list(table.index) == ["m2", "m1", "m0"]
    assert np.all(table["ci_low"] < table["reputation"]) and np.all(table["reputation"] < table["ci_high"])


# -- seasons -----------------------------------------------------------------------------------------


def test_season_standings_by_hand():
    rules = SeasonRules(
        tiers=(Tier("Top", top_rank=1), Tier("Rest", top_fraction=1.0)), min_qualified_rounds=2
    )
    rows = _rows(
        ("a1", "amy", 1, 5, 2, 0.04, 0),
        ("a1", "amy", 2, 4, 2, 0.02, 0),
        ("b1", "ben", 1, 5, 1, 0.10, 0),
        ("b1", "ben", 2, 4, 0.5, 0.10, 0),  # staked but below 1 token: counts, not qualified
        ("b1", "ben", 3, 3, 1, 0.10, 0),
        ("c1", "cat", 1, 5, 0, 0.90, 0),  # unstaked: counts 0
        ("c1", "cat", 2, 4, 3, -0.03, 0),
        ("c1", "cat", 3, 3, 3, 0.00, 0),
        ("d1", "dan", 1, 5, 9, 0.50, 0),  # one qualified round only
    )
    standings = season_standings(account_round_scores(rows, "corr"), season_rounds=[1, 2, 3, 4], rules=rules)
    # ben 0.30/4, amy 0.06/4, cat −0.03/4; dan unqualified
    assert list(standings.index) == ["ben", "amy", "cat", "dan"]
    np.testing.assert_allclose(standings["season_score"], [0.075, 0.015, -0.0075, 0.125])
    assert standings["qualified_rounds"].tolist() == [2, 2, 2, 1]
    assert standings["rank"].tolist()[:3] == [1, 2, 3] and standings["rank"].iloc[3] is pd.NA
    assert standings["tier"].tolist() == ["Top", "Rest", "Rest", "Novices"]


def _season_of(n_accounts: int, rules: SeasonRules) -> pd.DataFrame:
    scores = np.linspace(0.05, -0.05, n_accounts)
    account_rounds = pd.DataFrame(
        {
            "account": np.repeat([f"u{k:04d}" for k in range(n_accounts)], 20),
            "round": np.tile(np.arange(20), n_accounts),
            "score": np.repeat(scores, 20),
            "at_risk_nano": TOKEN,
        }
    )
    return season_standings(account_rounds, season_rounds=range(20), rules=rules)


def test_classic_tiers_fill_top_ranks_then_thirds():
    tiers = _season_of(400, CLASSIC_SEASON)["tier"].value_counts()
    assert tiers.to_dict() == {
        "Grandmaster": 1,
        "Masters": 9,
        "Experts": 90,
        "Researchers": 34,  # ranks 101 … 134 = ceil(400 / 3)
        "Contributors": 133,  # … 267 = ceil(800 / 3)
        "Apprentices": 133,
    }


def test_signals_tiers_are_quartiles():
    tiers = _season_of(10, SIGNALS_SEASON)["tier"].tolist()
    assert tiers == ["Experts"] * 3 + ["Researchers"] * 2 + ["Contributors"] * 3 + ["Apprentices"] * 2


def test_tied_accounts_share_rank_and_tier():
    rows = pd.DataFrame(
        {"account": ["a", "b", "c"], "round": 1, "score": [0.1, 0.1, 0.0], "at_risk_nano": TOKEN}
    )
    rules = SeasonRules(
        tiers=(Tier("Top", top_rank=1), Tier("Rest", top_fraction=1.0)), min_qualified_rounds=1
    )
    standings = season_standings(rows, season_rounds=[1], rules=rules)
    assert standings["rank"].tolist() == [1, 1, 3] and standings["tier"].tolist() == ["Top", "Top", "Rest"]


# -- errors ------------------------------------------------------------------------------------------


def test_settings_and_tiers_name_the_broken_rule():
    with pytest.raises(ReputationError, match="exactly one of window_days and window_rounds"):
        ReputationSettings(window_days=365, window_rounds=250)
    with pytest.raises(ReputationError, match="confidence"):
        ReputationSettings(confidence=1.5)
    with pytest.raises(ReputationError, match="block_rounds: must be ≥ 1"):
        ReputationSettings(block_rounds=0)
    with pytest.raises(ReputationError, match="last tier must have top_fraction 1"):
        SeasonRules(tiers=(Tier("Top", top_rank=1),))
    with pytest.raises(ReputationError, match="exactly one of top_rank and top_fraction"):
        Tier("Odd")


def test_bad_score_tables_name_the_rule():
    with pytest.raises(ReputationError, match="one 'corr' per model and round"):
        reputation(pd.concat([HISTORY, HISTORY.iloc[1:2]]), "corr", as_of=AS_OF)
    with pytest.raises(ReputationError, match=r"needs columns \['fnc'\]"):
        reputation(HISTORY, "fnc", as_of=AS_OF)
    with pytest.raises(ReputationError, match="'corr' must be numbers"):
        reputation(HISTORY.assign(corr="high"), "corr", as_of=AS_OF)
    with pytest.raises(ReputationError, match="resolved_on date"):
        reputation(HISTORY.assign(resolved_on=None), "corr", as_of=AS_OF)
    with pytest.raises(ReputationError, match="integer nano-tokens"):
        account_round_scores(HISTORY.assign(at_risk_nano=1.5), "corr")
    with pytest.raises(ReputationError, match="at least one round"):
        season_standings(account_round_scores(HISTORY, "corr"), season_rounds=[], rules=CLASSIC_SEASON)


def test_season_min_at_risk_is_in_tokens():
    rows = pd.DataFrame({"account": ["a"], "round": [1], "score": [0.1], "at_risk_nano": [TOKEN // 2]})
    half = SeasonRules(
        tiers=(Tier("All", top_fraction=1.0),), min_qualified_rounds=1, min_at_risk=Decimal("0.5")
    )
    assert season_standings(rows, [1], half)["tier"].iloc[0] == "All"
    whole = SeasonRules(tiers=(Tier("All", top_fraction=1.0),), min_qualified_rounds=1)
    assert season_standings(rows, [1], whole)["tier"].iloc[0] == "Novices"


def test_an_empty_window_and_unscored_models_give_empty_or_unranked_rows():
    assert reputation(HISTORY, "corr", as_of=date(2020, 1, 1)).empty
    table = reputation(HISTORY.assign(mmc=np.nan), "mmc", as_of=AS_OF)
    assert table["rank"].isna().all() and table["ci_low"].isna().all() and (table["rounds"] == 0).all()


def test_column_quantiles_match_numpys_nanquantile_for_every_column_at_once():
    rng = np.random.default_rng(8)
    values = rng.normal(size=(40, 30))
    values[rng.random(values.shape) < 0.3] = np.nan
    values[:, 0] = np.nan  # a column never scored
    values[1:, 1] = np.nan  # a column with one value
    values[:, 20:] = rng.normal(size=(40, 10))  # columns without NaN: one partition finds their quantiles
    quantiles = [0.0, 0.05, 0.5, 0.95, 1.0]
    expected = np.full((len(quantiles), values.shape[1]), np.nan)
    expected[:, 1:] = np.nanquantile(values[:, 1:], quantiles, axis=0)
    np.testing.assert_allclose(column_quantiles(values, quantiles), expected, rtol=0, atol=1e-15)
    assert np.isnan(column_quantiles(values, quantiles)[:, 0]).all()
    assert (column_quantiles(values, quantiles)[:, 1] == values[0, 1]).all()
