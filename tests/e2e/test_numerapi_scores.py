"""numerapi's score and leaderboard methods, unmodified, against a real server on SQLite and PostgreSQL.

Three Classic rounds are opened (a week apart on the server's clock) and submitted to through the
submission service. Their daily scores are **inserted through the scores repository** (the full
market → dataset → scoring pipeline is too slow for an end-to-end test of the API); rounds 1 and 2
are then marked resolved through the rounds repository (no resolve step exists yet), round 3
stays scoring. The clock then moves past round 2's resolution, so reputations see both.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numerapi
import numpy as np
import pandas as pd
import pytest
from e2e_helpers import new_home
from sqlalchemy import Engine

from crowdalpha.api import create_app
from crowdalpha.ledger import NANO_PER_TOKEN
from crowdalpha.service import (
    Context,
    close_round,
    create_account,
    create_model,
    grant,
    increase_stake,
    mint_genesis,
    open_round,
    publish_dataset,
    submit_predictions,
)
from crowdalpha.service.resolution import resolve_round
from crowdalpha.store import RoundState, UnitOfWork, run_transaction
from crowdalpha.store.repositories.scores import NewScore
from crowdalpha.tournament import SettableClock

SIGNING_KEY = bytes(range(32))
MODELS = {"alice_model": "alice", "alice_second": "alice", "bob_model": "bob"}
FIRST_MARKET_DATE = date(2026, 1, 5)

# (round, model) → {score: [day 1 value, day 2 value]}; the percentile of a value is value + 0.5.
SCORES: dict[tuple[int, str], dict[str, list[float]]] = {
    (1, "alice_model"): {"corr20v2": [0.01, 0.02], "mmc": [0.001, 0.003]},
    (1, "alice_second"): {"corr20v2": [-0.01, 0.04], "mmc": [0.002, -0.002]},
    (1, "bob_model"): {"corr20v2": [0.03, 0.01], "mmc": [0.002, 0.001]},
    (2, "alice_model"): {"corr20v2": [0.02, 0.04], "mmc": [0.004, 0.005]},
    (2, "alice_second"): {"corr20v2": [0.0, -0.02], "mmc": [0.0, -0.001]},
    (2, "bob_model"): {"corr20v2": [0.05, 0.06], "mmc": [-0.001, -0.003]},
    (3, "alice_model"): {"corr20v2": [0.07, 0.08], "mmc": [0.006, 0.009]},
}
RESOLVED_ROUNDS = (1, 2)


@dataclass
class Scored:
    """A live server with scored rounds 1-3 (1 and 2 resolved) of alice's two models and bob's one."""

    ctx: Context
    clock: SettableClock
    numbers: list[int]
    resolve_times: dict[int, datetime]
    model_ids: dict[str, str]
    submission_ids: dict[tuple[int, str], str]


def final(round_index: int, model: str, score: str) -> float:
    """Return a round's final score of a model: its last day's value."""
    return SCORES[(round_index, model)][score][-1]


def _predictions(version_dir: Path) -> bytes:
    ids = pd.read_parquet(version_dir / "live.parquet").index.astype(str)
    frame = pd.DataFrame({"id": ids, "prediction": np.linspace(0.1, 0.9, len(ids))})
    return frame.to_csv(index=False).encode()


def _store_scores(uow: UnitOfWork, scored: Scored, round_index: int, *, now: datetime) -> None:
    number = scored.numbers[round_index - 1]
    row = uow.rounds.get_by_number(8, number)
    assert row is not None
    for day in (1, 2):
        scores = [
            NewScore(scored.submission_ids[(index, model)], name, day, values[day - 1], values[day - 1] + 0.5)
            for (index, model), by_name in SCORES.items()
            if index == round_index
            for name, values in by_name.items()
        ]
        uow.scores.add_day(
            row.id,
            day,
            scores,
            market_date=FIRST_MARKET_DATE + timedelta(days=7 * round_index + day),
            submissions=len({score.submission_id for score in scores}),
            now=now,
        )
    uow.rounds.transition(row.id, [RoundState.CLOSED], RoundState.SCORING, now=now)
    if round_index in RESOLVED_ROUNDS:
        uow.rounds.transition(row.id, [RoundState.SCORING], RoundState.RESOLVED, now=now)


@pytest.fixture
def scored(
    engine: Engine,
    tmp_path: Path,
    classic_version_dir: Path,
    live_server: Callable[[Any], str],
    monkeypatch: pytest.MonkeyPatch,
) -> Scored:
    """Return the scored set-up with numerapi pointed at the server's /graphql."""
    settings, clock, ctx = new_home(engine, tmp_path)
    publish_dataset(ctx, classic_version_dir, "classic")
    for name in ("alice", "bob"):
        create_account(ctx, name)
    model_ids = {model: create_model(ctx, owner, "classic", model).id for model, owner in MODELS.items()}
    mint_genesis(ctx)
    grant(ctx, "alice", 10 * NANO_PER_TOKEN, idempotency_key="test/grant")
    increase_stake(ctx, "alice", model_ids["alice_model"], 5 * NANO_PER_TOKEN, idempotency_key="test/stake")
    body = _predictions(classic_version_dir)
    scored = Scored(ctx, clock, [], {}, model_ids, {})
    for round_index in (1, 2, 3):
        status = open_round(ctx, "classic", close_in=timedelta(hours=1))
        assert status.resolve_time is not None
        scored.numbers.append(status.number)
        scored.resolve_times[status.number] = status.resolve_time
        for model, owner in MODELS.items():
            if (round_index, model) in SCORES:
                receipt = submit_predictions(ctx, owner, model_ids[model], "p.csv", io.BytesIO(body))
                scored.submission_ids[(round_index, model)] = receipt.submission_id
        close_round(ctx, "classic")
        clock.advance(timedelta(days=7))
    now = ctx.now()
    for round_index in (1, 2, 3):
        run_transaction(engine, lambda uow, index=round_index: _store_scores(uow, scored, index, now=now))
    clock.set(scored.resolve_times[scored.numbers[1]] + timedelta(days=1))
    app = create_app(settings, blob_store=ctx.blobs, signing_key=SIGNING_KEY, engine=engine, clock=clock)
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", f"{live_server(app)}/graphql")
    return scored


def market_moment(round_index: int, day: int) -> datetime:
    """Return the score day's market date as the midnight-UTC moment numerapi parses."""
    return datetime.combine(
        FIRST_MARKET_DATE + timedelta(days=7 * round_index + day), datetime.min.time(), UTC
    )


def test_submission_scores_lists_every_stored_score_and_filters_like_numerai(scored: Scored) -> None:
    napi = numerapi.NumerAPI()
    model_id = scored.model_ids["alice_model"]
    rows = napi.submission_scores(model_id)
    expected = [
        (scored.numbers[index - 1], day, name, SCORES[(index, "alice_model")][name][day - 1])
        for index in (1, 2, 3)
        for day in (1, 2)
        for name in ("corr20v2", "mmc")
    ]
    assert [(r["roundNumber"], r["day"], r["displayName"], r["value"]) for r in rows] == expected
    first = rows[0]
    assert first["percentile"] == pytest.approx(0.51)
    assert first["submissionId"] == scored.submission_ids[(1, "alice_model")]
    assert first["date"] == market_moment(1, 1)
    assert first["resolved"] is True
    assert first["resolveDate"] == first["roundResolveTime"] == scored.resolve_times[scored.numbers[0]]
    assert (rows[-1]["resolved"], rows[-1]["resolveDate"]) == (False, None)

    mmc_day_2 = napi.submission_scores(model_id, display_name="mmc", day=2, resolved=True)
    assert [(r["roundNumber"], r["value"]) for r in mmc_day_2] == [
        (scored.numbers[0], 0.003),
        (scored.numbers[1], 0.005),
    ]
    latest = napi.submission_scores(
        model_id, display_name="corr20v2", last_n_rounds=1, distinct_on_round=True
    )
    assert [(r["roundNumber"], r["day"], r["value"]) for r in latest] == [(scored.numbers[2], 2, 0.08)]
    assert napi.submission_scores(model_id, version="v1") == []
    assert numerapi.SignalsAPI().submission_scores(model_id) == []


def test_round_model_performances_and_intra_round_scores(scored: Scored) -> None:
    napi = numerapi.NumerAPI()
    model_id = scored.model_ids["alice_second"]
    with pytest.warns(DeprecationWarning):
        performances = napi.round_model_performances_v2(model_id)
    assert [p["roundNumber"] for p in performances] == [scored.numbers[1], scored.numbers[0]]
    newest = performances[0]
    assert newest["roundResolved"] is True
    assert newest["roundResolveTime"] == scored.resolve_times[scored.numbers[1]]
    # The close step snapshotted alice_second's stake (none) as its at-risk stake.
    assert (newest["atRisk"], newest["roundPayoutFactor"]) == (Decimal("0"), None)
    assert newest["submissionScores"][0]["payoutSettled"] is None
    assert [(m["name"], m["displayName"], m["multiplier"]) for m in newest["payoutMultipliers"]] == [
        ("corr20v2", "CORR20v2", 0.5),
        ("mmc", "MMC", 2.0),
    ]
    assert [(s["displayName"], s["day"], s["value"]) for s in newest["submissionScores"]] == [
        ("corr20v2", 2, -0.02),
        ("mmc", 2, -0.001),
    ]
    assert newest["submissionScores"][0]["date"] == market_moment(2, 2)

    with pytest.warns(DeprecationWarning):
        staked = napi.round_model_performances_v2(scored.model_ids["alice_model"])
    assert [p["atRisk"] for p in staked] == [Decimal("5")] * 3

    intra = napi.intra_round_scores(model_id)
    assert [(s["day"], s["displayName"], s["value"]) for s in intra[1]["intraRoundSubmissionScores"]] == [
        (1, "corr20v2", -0.01),
        (1, "mmc", 0.002),
        (2, "corr20v2", 0.04),
        (2, "mmc", -0.002),
    ]


def test_model_leaderboard_ranks_by_the_mean_of_resolved_final_scores(scored: Scored) -> None:
    board = numerapi.NumerAPI().get_leaderboard()
    reputations = {
        model: (
            np.mean([final(i, model, "corr20v2") for i in RESOLVED_ROUNDS]),
            np.mean([final(i, model, "mmc") for i in RESOLVED_ROUNDS]),
        )
        for model in MODELS
    }
    # corr20v2: bob (0.01, 0.06) 0.035 > alice_model (0.02, 0.04) 0.03 > alice_second (0.04, -0.02) 0.01
    assert [(row["rank"], row["username"]) for row in board] == [
        (1, "bob_model"),
        (2, "alice_model"),
        (3, "alice_second"),
    ]
    for row in board:
        corr, mmc = reputations[row["username"]]
        assert row["corr20V2Rep"] == pytest.approx(corr)
        assert row["mmcRep"] == pytest.approx(mmc)
        assert (row["bmcRep"], row["corr20Rep"], row["tcRep"], row["team"]) == (None, None, None, False)
    assert {row["username"]: row["nmrStaked"] for row in board} == {
        "bob_model": Decimal("0"),
        "alice_model": Decimal("5"),
        "alice_second": Decimal("0"),
    }
    assert [row["username"] for row in numerapi.NumerAPI().get_leaderboard(limit=1, offset=1)] == [
        "alice_model"
    ]


def test_account_leaderboard_weights_an_accounts_models_by_their_stake_at_close(scored: Scored) -> None:
    board = numerapi.NumerAPI().get_account_leaderboard()
    # An account's round score is its staked models' stake-weighted mean: alice staked only
    # alice_model (5 tokens at every close), so alice_second does not count.
    alice = np.mean([final(i, "alice_model", "corr20v2") for i in RESOLVED_ROUNDS])
    alice_mmc = np.mean([final(i, "alice_model", "mmc") for i in RESOLVED_ROUNDS])
    assert [(row["rank"], row["username"], row["displayName"]) for row in board] == [
        (1, "bob", "bob"),
        (2, "alice", "alice"),
    ]
    assert board[0]["v2Corr20"] == pytest.approx(0.035)
    assert board[1]["v2Corr20"] == pytest.approx(alice)
    assert board[1]["mmc"] == pytest.approx(alice_mmc)
    assert (board[1]["nmrStaked"], board[0]["nmrStaked"]) == (Decimal("5"), Decimal("0"))
    assert board[1]["corrV4"] is None and board[1]["return1yNmr"] is None


def test_daily_model_performances_give_the_reputation_as_of_each_resolution(scored: Scored) -> None:
    rows = numerapi.NumerAPI().daily_model_performances("alice_second")
    first, second = (scored.resolve_times[number] for number in scored.numbers[:2])
    assert [row["date"] for row in rows] == [
        datetime.combine(first.date(), datetime.min.time(), UTC),
        datetime.combine(second.date(), datetime.min.time(), UTC),
    ]
    # As of round 1's resolution alice_second leads CORR (0.04); after round 2 it is last (mean 0.01).
    assert (rows[0]["corrRep"], rows[0]["corrRank"]) == (pytest.approx(0.04), 1)
    assert (rows[1]["corrRep"], rows[1]["corrRank"]) == (pytest.approx(0.01), 3)
    assert (rows[1]["mmcRep"], rows[1]["mmcRank"]) == (pytest.approx(-0.0015), 3)
    assert (rows[1]["fncRep"], rows[1]["tcRank"]) == (None, None)


def test_before_any_round_resolves_the_leaderboards_list_models_unranked(
    engine: Engine,
    tmp_path: Path,
    live_server: Callable[[Any], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, clock, ctx = new_home(engine, tmp_path)
    create_account(ctx, "carol")
    create_model(ctx, "carol", "classic", "carol_model")
    create_model(ctx, "carol", "crypto", "carol_crypto")
    create_model(ctx, "carol", "signals", "carol_signals")
    app = create_app(settings, blob_store=ctx.blobs, signing_key=SIGNING_KEY, engine=engine, clock=clock)
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", f"{live_server(app)}/graphql")

    [row] = numerapi.NumerAPI().get_leaderboard()
    assert (row["username"], row["rank"], row["corr20V2Rep"], row["nmrStaked"]) == (
        "carol_model",
        None,
        None,
        Decimal("0"),
    )
    [crypto] = numerapi.CryptoAPI().get_leaderboard()
    assert (crypto["username"], crypto["rank"], crypto["corrRep"], crypto["mmcRep"]) == (
        "carol_crypto",
        None,
        None,
        None,
    )
    [account] = numerapi.NumerAPI().get_account_leaderboard()
    assert (account["username"], account["rank"], account["v2Corr20"]) == ("carol", None, None)
    assert numerapi.NumerAPI().daily_model_performances("carol_model") == []
    assert numerapi.NumerAPI().submission_scores(_model_id(ctx, "carol_model")) == []
    [signals] = numerapi.SignalsAPI().get_leaderboard()
    assert (signals["username"], signals["rank"], signals["mmc"], signals["mmcRank"]) == (
        "carol_signals",
        None,
        None,
        None,
    )
    assert numerapi.SignalsAPI().daily_model_performances("carol_signals") == []
    assert numerapi.SignalsAPI().public_user_profile("carol_signals")["username"] == "carol_signals"


def test_bad_score_and_leaderboard_requests_name_the_rule(
    engine: Engine,
    tmp_path: Path,
    live_server: Callable[[Any], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, clock, ctx = new_home(engine, tmp_path)
    create_account(ctx, "carol")
    model_id = create_model(ctx, "carol", "classic", "carol_model").id
    app = create_app(settings, blob_store=ctx.blobs, signing_key=SIGNING_KEY, engine=engine, clock=clock)
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", f"{live_server(app)}/graphql")
    napi = numerapi.NumerAPI()
    refusals: list[tuple[Callable[[], Any], str]] = [
        (lambda: napi.submission_scores("nope"), "not_found: no model with id 'nope'"),
        (
            lambda: napi.submission_scores(model_id, last_n_rounds=0),
            "invalid_last_n_rounds: lastNRounds must be ≥ 1; got 0",
        ),
        (
            lambda: napi.get_leaderboard(limit=-1),
            "invalid_page: limit and offset must be ≥ 0; got limit -1, offset 0",
        ),
        (lambda: napi.daily_model_performances("nobody"), "not_found: no model named 'nobody' in classic"),
        (lambda: napi.intra_round_scores("nope"), "not_found: no model with id 'nope'"),
    ]
    for call, message in refusals:
        with pytest.raises(ValueError) as caught:
            call()
        assert str(caught.value) == message


def _model_id(ctx: Context, name: str) -> str:
    model = run_transaction(ctx.engine, lambda uow: uow.models.get_by_name(8, name), read_only=True)
    assert model is not None
    return model.id


def test_signals_daily_performances_and_leaderboard_name_signals_scores(
    engine: Engine,
    tmp_path: Path,
    universe_version_dirs: dict[str, Path],
    live_server: Callable[[Any], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, clock, ctx = new_home(engine, tmp_path)
    version_dir = universe_version_dirs["signals"]
    publish_dataset(ctx, version_dir, "signals")
    create_account(ctx, "dave")
    status = open_round(ctx, "signals", close_in=timedelta(hours=1))
    tickers = pd.read_parquet(version_dir / "live.parquet")["numerai_ticker"].astype(str)
    body = pd.DataFrame({"numerai_ticker": tickers, "signal": np.linspace(0.1, 0.9, len(tickers))})
    values = {"dave_one": {"corr_v4": 0.02, "mmc": -0.01}, "dave_two": {"corr_v4": 0.05, "mmc": 0.03}}
    submissions = {}
    for name in values:
        model = create_model(ctx, "dave", "signals", name)
        csv = io.BytesIO(body.to_csv(index=False).encode())
        submissions[name] = submit_predictions(ctx, "dave", model.id, "s.csv", csv).submission_id
    close_round(ctx, "signals")
    now = ctx.now()

    def resolve(uow: UnitOfWork) -> None:
        row = uow.rounds.get_by_number(11, status.number)
        assert row is not None
        scores = [
            NewScore(submissions[name], score, 1, value, None)
            for name, by_score in values.items()
            for score, value in by_score.items()
        ]
        uow.scores.add_day(row.id, 1, scores, market_date=FIRST_MARKET_DATE, submissions=2, now=now)
        uow.rounds.transition(row.id, [RoundState.CLOSED], RoundState.RESOLVED, now=now)

    run_transaction(engine, resolve)
    assert status.resolve_time is not None
    clock.set(status.resolve_time + timedelta(days=1))
    app = create_app(settings, blob_store=ctx.blobs, signing_key=SIGNING_KEY, engine=engine, clock=clock)
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", f"{live_server(app)}/graphql")

    [daily] = numerapi.SignalsAPI().daily_model_performances("dave_one")
    assert daily["date"] == datetime.combine(status.resolve_time.date(), datetime.min.time(), UTC)
    assert (daily["corrRep"], daily["corrRank"], daily["corr20dRep"]) == (0.02, 2, 0.02)
    assert (daily["mmcRep"], daily["mmcRank"], daily["mmc20dRank"]) == (-0.01, 2, 2)
    assert (daily["icRep"], daily["tcRank"], daily["corr60Rep"]) == (None, None, None)
    board = numerapi.SignalsAPI().get_leaderboard()
    # Signals' payout scores (ALPHA, MPC) are not stored here, so its next score, MMC, ranks it.
    assert [(row["username"], row["rank"], row["mmc"], row["mmcRank"]) for row in board] == [
        ("dave_two", 1, 0.03, 1),
        ("dave_one", 2, -0.01, 2),
    ]


def test_a_round_resolved_by_the_resolution_service_reports_its_payout(
    engine: Engine,
    tmp_path: Path,
    classic_version_dir: Path,
    live_server: Callable[[Any], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, clock, ctx = new_home(engine, tmp_path)
    publish_dataset(ctx, classic_version_dir, "classic")
    create_account(ctx, "erin")
    model_id = create_model(ctx, "erin", "classic", "erin_model").id
    mint_genesis(ctx)
    grant(ctx, "erin", 10 * NANO_PER_TOKEN, idempotency_key="test/grant")
    increase_stake(ctx, "erin", model_id, 5 * NANO_PER_TOKEN, idempotency_key="test/stake")
    status = open_round(ctx, "classic", close_in=timedelta(hours=1))
    body = io.BytesIO(_predictions(classic_version_dir))
    submission_id = submit_predictions(ctx, "erin", model_id, "p.csv", body).submission_id
    close_round(ctx, "classic")
    now = ctx.now()

    def score(uow: UnitOfWork) -> None:
        row = uow.rounds.get_by_number(8, status.number)
        assert row is not None
        # Binary-exact values, so the payout below is exact in nano-tokens.
        for day, values in (
            (1, {"corr20v2": 0.5, "mmc": 0.25}),
            (20, {"corr20v2": 0.0625, "mmc": 0.0078125}),
        ):
            scores = [NewScore(submission_id, name, day, value, 1.0) for name, value in values.items()]
            uow.scores.add_day(row.id, day, scores, market_date=FIRST_MARKET_DATE, submissions=1, now=now)
        uow.rounds.transition(row.id, [RoundState.CLOSED], RoundState.SCORING, now=now)

    run_transaction(engine, score)
    assert status.resolve_time is not None
    clock.set(status.resolve_time)
    resolve_round(ctx, "classic", status.number)
    app = create_app(settings, blob_store=ctx.blobs, signing_key=SIGNING_KEY, engine=engine, clock=clock)
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", f"{live_server(app)}/graphql")

    napi = numerapi.NumerAPI()
    with pytest.warns(DeprecationWarning):
        [performance] = napi.round_model_performances_v2(model_id)
    # payout = 5 × clip(1 × (0.5 × 0.0625 + 2 × 0.0078125), ±0.05) = 0.234375 tokens, into the stake
    assert napi.stake_get("erin_model") == Decimal("5.234375")
    assert (performance["roundResolved"], performance["atRisk"]) == (True, Decimal("5"))
    assert Decimal(performance["roundPayoutFactor"]) == 1
    assert [(s["day"], s["displayName"], s["payoutSettled"]) for s in performance["submissionScores"]] == [
        (20, "corr20v2", Decimal("0.234375")),
        (20, "mmc", Decimal("0.234375")),
    ]
    [row] = napi.get_leaderboard()
    assert (row["username"], row["rank"], row["corr20V2Rep"], row["nmrStaked"]) == (
        "erin_model",
        1,
        0.0625,
        Decimal("5.234375"),
    )
