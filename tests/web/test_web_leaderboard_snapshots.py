"""Leaderboard snapshots: computed when their inputs change, stored, read by the pages and numerapi.

Checked on SQLite and PostgreSQL: a refresh stores a snapshot per tournament and entity, is a
no-op until something changes, and a page read from the stored snapshot (nothing in memory) equals
the page computed from the scores; a new resolved round or a round leaving a window makes the
snapshots stale again.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from web_helpers import seed_leaderboard

from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.service import Context, create_account, create_model, grant, increase_stake, mint_genesis
from crowdalpha.service.performance import model_leaderboard
from crowdalpha.service.rounds import tick
from crowdalpha.service.web_leaderboard import (
    MAX_PAGE_SIZE,
    leaderboard_page,
    ranked_leaderboard,
    refresh_leaderboards,
)
from crowdalpha.store import RoundState, run_transaction
from crowdalpha.store.repositories.scores import NewScoreColumn
from crowdalpha.store.schema import LeaderboardSnapshot, SubmissionScore


def _snapshots(ctx: Context) -> dict[tuple[int, str], tuple[str, object, object]]:
    def work(uow):
        rows = uow.session.execute(
            select(
                LeaderboardSnapshot.tournament_id,
                LeaderboardSnapshot.entity,
                LeaderboardSnapshot.version,
                LeaderboardSnapshot.as_of,
                LeaderboardSnapshot.valid_through,
            )
        )
        return {(tid, entity): (version, as_of, through) for tid, entity, version, as_of, through in rows}

    return run_transaction(ctx.engine, work, read_only=True)


def _figures(page) -> dict[str, tuple]:
    return {
        row.name: (
            row.stake_nano,
            row.return_13_weeks,
            row.return_52_weeks,
            *((rep.value, rep.low, rep.high, rep.rounds, rep.rank) for rep in row.reputations.values()),
        )
        for row in page.rows
    }


def test_a_refresh_stores_each_leaderboard_once_and_pages_read_it_back_unchanged(ctx: Context) -> None:
    seed_leaderboard(ctx, models=20, rounds=5, score_days=2, seed=3)
    computed = {entity: _figures(leaderboard_page(ctx, "classic", entity=entity, limit=MAX_PAGE_SIZE))
                for entity in ("model", "account")}  # fmt: skip
    refreshed = refresh_leaderboards(ctx)
    assert {"classic/model", "classic/account"} <= set(refreshed)
    assert refresh_leaderboards(ctx) == []  # idempotent: nothing changed
    stored = _snapshots(ctx)
    assert stored[(8, "model")][1] == ctx.now().date() <= stored[(8, "model")][2]
    ctx.cache.clear()  # another process: only the database
    for entity, figures in computed.items():
        assert _figures(leaderboard_page(ctx, "classic", entity=entity, limit=MAX_PAGE_SIZE)) == figures


def test_a_new_resolved_round_or_a_round_leaving_a_window_makes_the_snapshot_stale(ctx: Context) -> None:
    seed_leaderboard(ctx, models=12, rounds=3, score_days=1, seed=4)
    refresh_leaderboards(ctx)
    version, _, valid_through = _snapshots(ctx)[(8, "model")]
    seed_leaderboard(ctx, models=4, rounds=1, score_days=1, seed=6, prefix="late")
    assert "classic/model" in refresh_leaderboards(ctx)
    newer, _, valid_through = _snapshots(ctx)[(8, "model")]
    assert newer != version
    ctx.clock.set(ctx.now() + timedelta(days=(valid_through - ctx.now().date()).days + 1))
    assert "classic/model" in refresh_leaderboards(ctx)  # same rounds, but one left a window


def test_the_tick_refreshes_the_leaderboards_after_its_jobs(ctx: Context) -> None:
    seed_leaderboard(ctx, models=8, rounds=2, score_days=1, seed=7)
    report = tick(ctx)
    assert {"classic/model", "classic/account"} <= set(report.leaderboards)
    assert tick(ctx).leaderboards == []


def test_numerapis_ranking_from_the_snapshot_matches_the_score_by_score_path(ctx: Context) -> None:
    seed_leaderboard(ctx, models=15, rounds=4, score_days=2, seed=8)
    refresh_leaderboards(ctx)
    ctx.cache.clear()
    ranked_by, rows = ranked_leaderboard(ctx, "classic")
    reference = model_leaderboard(ctx, "classic")
    assert [row.reputations[ranked_by].rank for row in rows] == [standing.rank for standing in reference]
    assert {row.name: row.reputations["mmc"].value for row in rows} == {
        standing.name: standing.reputations["mmc"] for standing in reference
    }
    _, page = ranked_leaderboard(ctx, "classic", limit=5, offset=5)
    assert [row.name for row in page] == [row.name for row in rows[5:10]]


def test_a_stake_change_after_a_refresh_shows_at_once_and_the_next_refresh_keeps_the_reputations(
    ctx: Context,
) -> None:
    names = seed_leaderboard(ctx, models=10, rounds=3, score_days=1, seed=12)
    refresh_leaderboards(ctx)
    version, as_of, valid_through = _snapshots(ctx)[(8, "model")]
    before = _figures(leaderboard_page(ctx, "classic", limit=MAX_PAGE_SIZE))
    mint_genesis(ctx)
    create_account(ctx, "carol")
    model = create_model(ctx, "carol", "classic", "carol_model")
    grant(ctx, "carol", 50 * NANO_PER_TOKEN, idempotency_key="grant/carol")
    increase_stake(ctx, "carol", model.id, 7 * NANO_PER_TOKEN, idempotency_key="stake/carol")
    ctx.clock.set(ctx.now() + timedelta(days=1))  # a later day the stored reputations still hold for
    assert ctx.now().date() <= valid_through

    ctx.cache.clear()  # another process: the stored board, joined with the roster as it is now
    after = _figures(leaderboard_page(ctx, "classic", limit=MAX_PAGE_SIZE))
    assert after["carol_model"][0] == 7 * NANO_PER_TOKEN
    assert {name: after[name] for name in names} == {name: before[name] for name in names}

    assert {"classic/model", "classic/account"} <= set(refresh_leaderboards(ctx))  # the roster moved
    newer, kept_as_of, kept_through = _snapshots(ctx)[(8, "model")]
    assert newer[:32] == version[:32] and newer != version  # same reputations' inputs, another roster
    assert (kept_as_of, kept_through) == (as_of, valid_through)  # the reputations were not recomputed
    ctx.cache.clear()
    assert _figures(leaderboard_page(ctx, "classic", limit=MAX_PAGE_SIZE)) == after
    assert refresh_leaderboards(ctx) == []


def test_a_resolved_round_gaining_a_corr60_day_is_refreshed_as_a_fresh_read_computes_it(ctx: Context) -> None:
    seed_leaderboard(ctx, models=10, rounds=3, score_days=2, seed=14)
    refresh_leaderboards(ctx)  # the finals of every round are now kept in memory

    def add_longer_day(uow) -> str:
        resolved = uow.rounds.list(8, states=[RoundState.RESOLVED])
        row = resolved[-1]
        last_day = select(func.max(SubmissionScore.day)).where(SubmissionScore.round_id == row.id)
        last = uow.session.scalar(last_day)
        scored = uow.session.execute(
            select(SubmissionScore.submission_id, SubmissionScore.value).where(
                SubmissionScore.round_id == row.id,
                SubmissionScore.score == "corr60",
                SubmissionScore.day == last,
            )
        ).all()
        ids = [submission_id for submission_id, _ in scored]
        moved = [value + 0.5 for _, value in scored]  # far from every other round's: the reputation moves
        assert ids  # the round's models have a CORR60 on its last day
        uow.scores.add_day(
            row.id,
            last + 1,
            [NewScoreColumn("corr60", last + 1, ids, moved, [None] * len(ids))],
            market_date=ctx.now().date(),
            submissions=len(ids),
            now=ctx.now() + timedelta(seconds=1),
        )
        return row.id

    original = _figures(leaderboard_page(ctx, "classic", entity="model", limit=MAX_PAGE_SIZE))
    run_transaction(ctx.engine, add_longer_day)
    assert "classic/model" in refresh_leaderboards(ctx)
    refreshed = _figures(leaderboard_page(ctx, "classic", entity="model", limit=MAX_PAGE_SIZE))
    assert refreshed != original  # the round's new last day of CORR60 counts
    ctx.cache.clear()  # a fresh process computes every round's finals from the database
    assert refresh_leaderboards(ctx) == []
    fresh = _figures(leaderboard_page(ctx, "classic", entity="model", limit=MAX_PAGE_SIZE))
    assert refreshed == fresh
    ctx.cache.clear()
    reference = {item.name: item.reputations["corr60"] for item in model_leaderboard(ctx, "classic")}
    _, rows = ranked_leaderboard(ctx, "classic")
    assert {row.name: row.reputations["corr60"].value for row in rows} == reference


def _stored_boards(ctx: Context) -> dict[tuple[int, str], bytes]:
    def work(uow):
        query = select(
            LeaderboardSnapshot.tournament_id, LeaderboardSnapshot.entity, LeaderboardSnapshot.table_parquet
        )
        return {(tid, entity): content for tid, entity, content in uow.session.execute(query)}

    return run_transaction(ctx.engine, work, read_only=True)


def test_boards_refreshed_from_kept_rounds_are_byte_for_byte_those_of_a_fresh_computation(
    ctx: Context,
) -> None:
    seed_leaderboard(ctx, models=10, rounds=3, score_days=2, seed=21)
    refresh_leaderboards(ctx)  # every round's finals and matrix arrays are now kept in memory
    seed_leaderboard(ctx, models=5, rounds=2, score_days=2, seed=22, prefix="late")  # new models, accounts
    assert {"classic/model", "classic/account"} <= set(refresh_leaderboards(ctx))
    incremental = _stored_boards(ctx)
    assert {(8, "model"), (8, "account")} <= set(incremental)

    def forget_snapshots(uow) -> None:
        uow.session.query(LeaderboardSnapshot).delete()

    run_transaction(ctx.engine, forget_snapshots)
    ctx.cache.clear()  # a fresh process: every round read from the database, every matrix laid out anew
    assert {"classic/model", "classic/account"} <= set(refresh_leaderboards(ctx))
    assert _stored_boards(ctx) == incremental
