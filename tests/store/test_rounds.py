"""Rounds: numerapi's listing filters (number, status, limit), current round, transitions, UTC times."""

from __future__ import annotations

import threading
from datetime import timedelta, timezone

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import StatementError
from store_factories import T0

from crowdalpha.store import AlreadyExists, RoundState, run_transaction, transaction

STATES = [RoundState.RESOLVED, RoundState.SCORING, RoundState.CLOSED, RoundState.OPEN, RoundState.UPCOMING]


@pytest.fixture
def five_rounds(engine: Engine) -> Engine:
    """Classic rounds 1..5 in states resolved, scoring, closed, open, upcoming."""
    with transaction(engine) as uow:
        uow.tournaments.upsert(8, "classic", {}, now=T0)
        uow.tournaments.upsert(11, "signals", {}, now=T0)
        for number, state in enumerate(STATES, start=1):
            open_time = T0 + timedelta(days=number)
            uow.rounds.create(
                8,
                number,
                open_time=open_time,
                close_time=open_time + timedelta(hours=1),
                score_time=open_time + timedelta(days=4),
                resolve_time=open_time + timedelta(days=31),
                data_datestamp=int(open_time.strftime("%Y%m%d")),
                state=state,
                now=T0,
            )
        uow.rounds.create(11, 1, open_time=T0, close_time=T0 + timedelta(hours=1), now=T0, state="open")
    return engine


def test_list_rounds_newest_first_with_number_status_and_limit_filters(five_rounds: Engine) -> None:
    with transaction(five_rounds, read_only=True) as uow:
        assert [r.number for r in uow.rounds.list(8)] == [5, 4, 3, 2, 1]
        assert [r.number for r in uow.rounds.list(8, limit=2)] == [5, 4]
        assert [r.number for r in uow.rounds.list(8, number=3)] == [3]
        assert uow.rounds.list(8, number=42) == []
        assert [r.number for r in uow.rounds.list(8, states=[RoundState.OPEN])] == [4]
        resolving = uow.rounds.list(8, states=["closed", "scoring"])
        assert [r.number for r in resolving] == [3, 2]
        assert [r.number for r in uow.rounds.list(8, states=["closed", "scoring"], limit=1)] == [3]
        assert [r.number for r in uow.rounds.list(11)] == [1]


def test_current_round_is_the_newest_opened_one(five_rounds: Engine) -> None:
    with transaction(five_rounds, read_only=True) as uow:
        assert uow.rounds.current(8).number == 4
        assert uow.rounds.latest(8).number == 5
        assert uow.rounds.current(12) is None


def test_round_times_come_back_as_the_same_instants_in_utc(five_rounds: Engine) -> None:
    with transaction(five_rounds) as uow:
        round_ = uow.rounds.get_by_number(8, 4)
        assert round_.open_time == T0 + timedelta(days=4) and round_.open_time.tzinfo is not None
        assert round_.close_staking_time == round_.close_time
        assert round_.data_datestamp == 20260110
        new_york = timezone(timedelta(hours=-5))
        created = uow.rounds.create(8, 6, open_time=T0.astimezone(new_york), close_time=T0, now=T0)
        round_id = created.id
    with transaction(five_rounds, read_only=True) as uow:
        stored = uow.rounds.get(round_id)
    assert stored.open_time == T0 and stored.open_time.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused(five_rounds: Engine) -> None:
    with pytest.raises(StatementError, match="timezone-aware"), transaction(five_rounds) as uow:
        naive = T0.replace(tzinfo=None)
        uow.rounds.create(8, 7, open_time=naive, close_time=naive, now=T0)


def test_round_numbers_are_unique_per_tournament(five_rounds: Engine) -> None:
    with pytest.raises(AlreadyExists, match="round 3 already exists"), transaction(five_rounds) as uow:
        uow.rounds.create(8, 3, open_time=T0, close_time=T0, now=T0)


def test_transition_moves_only_from_the_expected_states(five_rounds: Engine) -> None:
    later = T0 + timedelta(days=9)
    with transaction(five_rounds) as uow:
        round_ = uow.rounds.get_by_number(8, 4)
        assert uow.rounds.transition(round_.id, [RoundState.OPEN], RoundState.CLOSED, now=later)
        assert not uow.rounds.transition(round_.id, [RoundState.OPEN], RoundState.CLOSED, now=later)
        assert round_.state == "closed" and round_.updated_at == later


def test_concurrent_transitions_let_exactly_one_win(five_rounds: Engine) -> None:
    with transaction(five_rounds, read_only=True) as uow:
        round_id = uow.rounds.get_by_number(8, 5).id
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def open_round() -> None:
        barrier.wait(10)
        moved = run_transaction(
            five_rounds, lambda uow: uow.rounds.transition(round_id, ["upcoming"], "open", now=T0)
        )
        results.append(moved)

    threads = [threading.Thread(target=open_round) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]


def test_live_universe_is_recorded_and_replaced(five_rounds: Engine) -> None:
    with transaction(five_rounds) as uow:
        round_id = uow.rounds.get_by_number(8, 4).id
        assert uow.rounds.get_live_universe(round_id) is None
        uow.rounds.set_live_universe(
            round_id,
            id_column="id",
            member_count=5000,
            blob_key="live/8/4/ids.parquet",
            size_bytes=123,
            sha256="a" * 64,
            now=T0,
        )
    with transaction(five_rounds) as uow:
        universe = uow.rounds.set_live_universe(
            round_id,
            id_column="id",
            member_count=4999,
            blob_key="live/8/4/ids-2.parquet",
            size_bytes=120,
            sha256="b" * 64,
            now=T0,
        )
    with transaction(five_rounds, read_only=True) as uow:
        stored = uow.rounds.get_live_universe(round_id)
    assert (
        (stored.member_count, stored.blob_key)
        == (4999, "live/8/4/ids-2.parquet")
        == (
            universe.member_count,
            universe.blob_key,
        )
    )
