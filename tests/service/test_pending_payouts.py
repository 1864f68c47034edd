"""numerapi's ``pending_model_payouts``, unmodified, against a real server: projected then settled payouts."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numerapi
import pytest
from resolution_factories import STAKES, Staked, make_staked, score_everything
from scoring_factories import Market
from service_factories import TUESDAY_OPEN

from crowdalpha.api import create_app
from crowdalpha.ledger import NANO_PER_TOKEN
from crowdalpha.service import Context, create_api_key
from crowdalpha.service.performance import model_payouts
from crowdalpha.service.resolution import resolve_round
from crowdalpha.tournament import CLASSIC, latest_round

ROUND = latest_round(CLASSIC, TUESDAY_OPEN).number


def _client(
    ctx: Context, username: str, live_server: Callable[[Any], str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    key = create_api_key(ctx, username, "payouts", ["read_user_info"])
    app = create_app(
        ctx.settings, blob_store=ctx.blobs, engine=ctx.engine, clock=ctx.clock, signing_key=bytes(32)
    )
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", f"{live_server(app)}/graphql")
    return numerapi.NumerAPI(
        public_id=key.info.public_id, secret_key=key.secret_key, show_progress_bars=False
    )


def _by_model(payouts: list[dict]) -> dict[str, Decimal]:
    return {item["modelName"]: Decimal(str(item["payoutNmr"])) for item in payouts}


def test_pending_payouts_project_what_the_resolution_then_pays(
    ctx: Context,
    market: Market,
    live_server: Callable[[Any], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    staked: Staked = make_staked(ctx, market)
    score_everything(ctx, market)
    alice = _client(ctx, "alice", live_server, monkeypatch)

    before = alice.pending_model_payouts()
    assert before["actual"] == []
    (pending,) = before["pending"]
    assert pending["roundNumber"] == ROUND and pending["modelName"] == "alice_model"
    assert pending["modelId"] == staked.on_time["alice"][1] and pending["currencySymbol"] == "NMR"
    assert pending["roundResolveTime"] is not None
    projected = _by_model(before["pending"])["alice_model"]
    assert projected != 0 and abs(projected) <= Decimal(STAKES["alice"]) * Decimal("0.05")

    (performance,) = alice.round_model_performances_v2(staked.on_time["alice"][1])
    assert {score["payoutPending"] for score in performance["submissionScores"]} == {projected}
    assert {score["payoutSettled"] for score in performance["submissionScores"]} == {None}

    resolved = resolve_round(ctx, "classic", ROUND)
    (performance,) = alice.round_model_performances_v2(staked.on_time["alice"][1])
    assert {score["payoutPending"] for score in performance["submissionScores"]} == {None}
    assert {score["payoutSettled"] for score in performance["submissionScores"]} == {projected}
    after = alice.pending_model_payouts()
    assert after["pending"] == []
    assert _by_model(after["actual"]) == {"alice_model": projected}
    assert int(projected * NANO_PER_TOKEN) == resolved.payouts["alice_model"]

    # every staked model of the account, and only staked ones (dave staked nothing; carol was late)
    everyone = {name: model_payouts(ctx, name, "classic") for name in ("bob", "carol", "dave")}
    assert [p.model_name for p in everyone["bob"].actual] == ["bob_model"]
    assert everyone["bob"].actual[0].payout_nano == resolved.payouts["bob_model"]
    assert everyone["carol"].actual == () and everyone["dave"].actual == ()


def test_pending_payouts_need_a_key(
    ctx: Context, market: Market, live_server: Callable[[Any], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_staked(ctx, market)
    _client(ctx, "alice", live_server, monkeypatch)
    anonymous = numerapi.NumerAPI(show_progress_bars=False)
    with pytest.raises(ValueError, match="API keys required"):
        anonymous.pending_model_payouts()
    stranger = numerapi.NumerAPI(public_id="X" * 32, secret_key="Y" * 64, show_progress_bars=False)
    with pytest.raises(ValueError):
        stranger.pending_model_payouts()
