"""The web leaderboard: reputations with intervals, stakes, returns; sorting, search, paging, accounts.

The figures are checked against the numerapi leaderboard path (``performance.model_leaderboard``,
which reads every stored score day) and against sums recomputed from each model's own rounds, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
from web_helpers import seed_leaderboard

from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.service import (
    Context,
    ServiceError,
    create_account,
    create_model,
    grant,
    increase_stake,
    mint_genesis,
)
from crowdalpha.service.performance import (
    account_leaderboard,
    model_leaderboard,
    model_profile,
    round_performances,
)
from crowdalpha.service.web_leaderboard import MAX_PAGE_SIZE, leaderboard_page

MODELS = 24
ROUNDS = 6


@pytest.fixture
def seeded(ctx: Context) -> list[str]:
    """Return the names of models seeded with weekly resolved rounds on the variant's database."""
    return seed_leaderboard(ctx, models=MODELS, rounds=ROUNDS, score_days=3, seed=5)


def test_each_reputation_matches_the_numerapi_leaderboard_path_with_an_interval_around_it(
    ctx: Context, seeded: list[str]
) -> None:
    board = leaderboard_page(ctx, "classic", limit=MAX_PAGE_SIZE)
    reference = {standing.name: standing for standing in model_leaderboard(ctx, "classic")}
    assert board.total == MODELS and len(board.rows) == MODELS
    for row in board.rows:
        for score in ("corr20v2", "mmc", "bmc", "corr60"):
            ours, theirs = row.reputations[score], reference[row.name]
            assert ours.value == pytest.approx(theirs.reputations[score], abs=1e-12)
            assert ours.rank == theirs.ranks[score]
            assert ours.low is not None and ours.high is not None
            assert ours.low <= ours.value <= ours.high
            assert 1 <= ours.rounds <= ROUNDS


def test_the_resolved_round_count_is_the_models_resolved_rounds(ctx: Context, seeded: list[str]) -> None:
    board = leaderboard_page(ctx, "classic", search=seeded[3])
    (row,) = board.rows
    profile = model_profile(ctx, "classic", seeded[3])
    resolved = [item for item in round_performances(ctx, profile.model_id) if item.resolved]
    assert row.reputations["mmc"].rounds == len(resolved)
    mean = sum(r.value for item in resolved for r in item.final_scores if r.score == "mmc") / len(resolved)
    assert row.reputations["mmc"].value == pytest.approx(mean, abs=1e-12)


def test_returns_are_the_windows_payouts_over_the_mean_stake_at_risk(ctx: Context, seeded: list[str]) -> None:
    board = leaderboard_page(ctx, "classic", limit=MAX_PAGE_SIZE)
    today = ctx.now().date()
    checked = 0
    for row in board.rows:
        profile = model_profile(ctx, "classic", row.name)
        for weeks, value in ((13, row.return_13_weeks), (52, row.return_52_weeks)):
            staked = [
                item
                for item in round_performances(ctx, profile.model_id)
                if item.at_risk_nano
                and item.resolve_time is not None
                and today - timedelta(weeks=weeks) < item.resolve_time.date() <= today
            ]
            if not staked:
                assert value is None
                continue
            mean_at_risk = sum(item.at_risk_nano for item in staked) / len(staked)
            expected = sum(item.payout_nano or 0 for item in staked) / mean_at_risk
            assert value == pytest.approx(expected, rel=1e-12)
            checked += 1
    assert checked > MODELS // 2  # most models are staked


@pytest.mark.parametrize("sort", ["corr20v2", "mmc", "stake", "return_13_weeks", "name"])
@pytest.mark.parametrize("descending", [True, False])
def test_every_column_sorts_both_ways_with_missing_values_last(
    ctx: Context, seeded: list[str], sort: str, descending: bool
) -> None:
    rows = leaderboard_page(ctx, "classic", sort=sort, descending=descending, limit=MAX_PAGE_SIZE).rows

    def key(row):
        if sort == "name":
            return row.name.lower()
        if sort == "stake":
            return row.stake_nano
        if sort == "return_13_weeks":
            return row.return_13_weeks
        return row.reputations[sort].value

    values = [key(row) for row in rows]
    present = [value for value in values if value is not None]
    assert values[: len(present)] == present  # missing ones come last
    assert present == sorted(present, reverse=descending)


def test_search_and_paging_cut_the_sorted_rows(ctx: Context, seeded: list[str]) -> None:
    everything = leaderboard_page(ctx, "classic", limit=MAX_PAGE_SIZE).rows
    first = leaderboard_page(ctx, "classic", limit=10)
    second = leaderboard_page(ctx, "classic", offset=10, limit=10)
    assert [row.name for row in first.rows + second.rows] == [row.name for row in everything[:20]]
    assert first.total == second.total == MODELS
    found = leaderboard_page(ctx, "classic", search="MODEL_0001")  # case-insensitive substring
    assert sorted(row.name for row in found.rows) == sorted(name for name in seeded if "model_0001" in name)
    owner = everything[0].owner
    by_owner = leaderboard_page(ctx, "classic", search=owner, limit=MAX_PAGE_SIZE)
    assert by_owner.rows and all(owner in (row.owner, row.name) for row in by_owner.rows)


def test_the_account_view_ranks_accounts_as_the_account_leaderboard_does(
    ctx: Context, seeded: list[str]
) -> None:
    board = leaderboard_page(ctx, "classic", entity="account", limit=MAX_PAGE_SIZE)
    reference = {standing.name: standing for standing in account_leaderboard(ctx, "classic")}
    models = {row.name: row for row in leaderboard_page(ctx, "classic", limit=MAX_PAGE_SIZE).rows}
    assert {row.name for row in board.rows} == set(reference)
    for row in board.rows:
        assert row.reputations["corr20v2"].value == pytest.approx(reference[row.name].reputations["corr20v2"])
        assert row.stake_nano == sum(m.stake_nano for m in models.values() if m.owner == row.name)


def test_a_stake_change_shows_at_once_and_a_newly_resolved_round_changes_the_reputations(
    ctx: Context, seeded: list[str]
) -> None:
    before = {row.name: row for row in leaderboard_page(ctx, "classic", limit=MAX_PAGE_SIZE).rows}
    mint_genesis(ctx)
    create_account(ctx, "carol")
    model = create_model(ctx, "carol", "classic", "carol_model")
    grant(ctx, "carol", 50 * NANO_PER_TOKEN, idempotency_key="grant/carol")
    increase_stake(ctx, "carol", model.id, 7 * NANO_PER_TOKEN, idempotency_key="stake/carol")
    (carol,) = leaderboard_page(ctx, "classic", search="carol_model").rows
    assert carol.stake_nano == 7 * NANO_PER_TOKEN
    assert carol.reputations["mmc"].value is None and carol.reputations["mmc"].rounds == 0

    seed_leaderboard(ctx, models=4, rounds=1, seed=9, prefix="late")  # one more resolved round
    after = {row.name: row for row in leaderboard_page(ctx, "classic", limit=MAX_PAGE_SIZE).rows}
    assert set(after) == set(before) | {"carol_model"} | {f"late_model_{i:05d}" for i in range(4)}
    assert after["late_model_00000"].reputations["mmc"].rounds == 1


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        ({"sort": "nonsense"}, "invalid_sort"),
        ({"entity": "team"}, "invalid_entity"),
        ({"offset": -1}, "invalid_page"),
        ({"limit": MAX_PAGE_SIZE + 1}, "invalid_page"),
    ],
)
def test_a_bad_request_is_refused_naming_the_rule(ctx: Context, options: dict, rule: str) -> None:
    with pytest.raises(ServiceError) as refused:
        leaderboard_page(ctx, "classic", **options)
    assert refused.value.rule == rule


def test_an_empty_tournament_has_an_empty_leaderboard(ctx: Context) -> None:
    board = leaderboard_page(ctx, "signals")
    assert board.total == 0 and board.rows == () and board.sort == "alpha"
    searched = leaderboard_page(ctx, "signals", entity="account", search="anyone", sort="name")
    assert searched.total == 0 and searched.rows == ()


def test_the_leaderboard_page_sorts_searches_and_pages_over_http(site, seeded: list[str]) -> None:
    page = requests.get(site.url("/leaderboard/classic?sort=stake&order=asc"), timeout=30)
    assert page.status_code == 200
    text = page.text
    assert 'data-sort="stake" data-order="asc"' in text
    stakes = [int(value) for value in re.findall(r'class="num stake" data-value="(\d+)"', text)]
    assert len(stakes) == min(MODELS + 2, 50) and stakes == sorted(stakes)
    found = requests.get(site.url(f"/leaderboard/classic?search={seeded[5]}"), timeout=30).text
    assert f'data-name="{seeded[5]}"' in found and f'data-name="{seeded[6]}"' not in found
    accounts = requests.get(site.url("/leaderboard/classic?view=account"), timeout=30).text
    assert 'data-name="alice"' in accounts and "Owner</th>" not in accounts
    for query, rule in (
        ("sort=bogus", "invalid_sort"),
        ("offset=abc", "invalid_parameter"),
        ("order=up", "invalid_parameter"),
    ):
        refused = requests.get(site.url(f"/leaderboard/classic?{query}"), timeout=30)
        assert refused.status_code == 400 and rule in refused.text
    missing = requests.get(site.url("/leaderboard/nonsense"), timeout=30)
    assert missing.status_code == 404 and "no tournament named" in missing.text
