"""numerapi's staking and wallet methods, unmodified, against a real server on SQLite and PostgreSQL.

Tokens come from the ledger service (genesis mint, a grant to alice); every stake change then goes
through numerapi's own GraphQL mutations, and the ledger's balances confirm what moved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from crowdalpha.ledger import NANO_PER_TOKEN, releasing_account, stake_account, wallet_account
from crowdalpha.service import (
    Context,
    balances,
    create_account,
    create_model,
    grant,
    mint_genesis,
    model_stake,
    open_round,
    publish_dataset,
)

SIGNING_KEY = bytes(range(32))
GRANTED = 100


@dataclass
class Staking:
    """A live server with an open Classic round; alice holds 100 granted tokens, bob none."""

    ctx: Context
    version_dir: Path
    round_resolve_time: datetime
    keys: dict[str, tuple[str, str]]
    account_ids: dict[str, str]
    model_id: str

    def client(self, username: str = "alice") -> Any:
        """Return a numerapi client holding the user's key."""
        public_id, secret_key = self.keys[username]
        return numerapi.NumerAPI(public_id=public_id, secret_key=secret_key, show_progress_bars=False)

    def held(self, name: str) -> int:
        """Return a ledger account's balance in nano (0 when it has none)."""
        return {row.name: row.balance_nano for row in balances(self.ctx)}.get(name, 0)

    def wallet(self, username: str = "alice") -> int:
        """Return the user's wallet balance in nano."""
        return self.held(wallet_account(self.account_ids[username]))


@pytest.fixture
def staking(
    engine: Engine,
    tmp_path: Path,
    classic_version_dir: Path,
    live_server: Callable[[Any], str],
    monkeypatch: pytest.MonkeyPatch,
) -> Staking:
    """Return the staking set-up with numerapi pointed at the server's /graphql."""
    settings, clock, ctx = new_home(engine, tmp_path)
    publish_dataset(ctx, classic_version_dir, "classic")
    alice, bob = create_account(ctx, "alice"), create_account(ctx, "bob")
    model = create_model(ctx, "alice", "classic", "alice_model")
    status = open_round(ctx, "classic", close_in=timedelta(hours=1))
    mint_genesis(ctx)
    grant(ctx, "alice", GRANTED * NANO_PER_TOKEN, idempotency_key="test/grant/alice")
    app = create_app(settings, blob_store=ctx.blobs, signing_key=SIGNING_KEY, engine=engine, clock=clock)
    monkeypatch.setattr(numerapi.base_api, "API_TOURNAMENT_URL", f"{live_server(app)}/graphql")
    assert status.resolve_time is not None
    return Staking(
        ctx,
        classic_version_dir,
        status.resolve_time,
        {"alice": (alice.public_id, alice.secret_key), "bob": (bob.public_id, bob.secret_key)},
        {"alice": alice.account.id, "bob": bob.account.id},
        model.id,
    )


def submit_live_predictions(staking: Staking) -> None:
    """Upload a valid submission for alice's model, so the open round is its last active round."""
    ids = pd.read_parquet(staking.version_dir / "live.parquet").index.astype(str)
    frame = pd.DataFrame({"id": ids, "prediction": np.linspace(0.1, 0.9, len(ids))})
    staking.client().upload_predictions(df=frame, model_id=staking.model_id)


def test_stake_increase_moves_tokens_from_the_wallet_and_stake_get_reads_them(staking: Staking) -> None:
    napi = staking.client()
    assert napi.stake_get("alice_model") is None

    answer = napi.stake_increase("12.5", staking.model_id)
    assert answer == {
        "dueDate": None,
        "requestedAmount": Decimal("12.5"),
        "status": "completed",
        "type": "increase",
    }
    # A float goes through its decimal text (str(0.1) == "0.1"), never through binary floating point.
    assert napi.stake_increase(0.1, staking.model_id)["requestedAmount"] == Decimal("0.1")

    assert napi.stake_get("alice_model") == Decimal("12.6")
    assert staking.held(stake_account(staking.model_id)) == 12_600_000_000
    assert staking.wallet() == 87_400_000_000
    profile = napi.public_user_profile("alice_model")
    assert profile["id"] == staking.model_id
    assert profile["nmrStaked"] == Decimal("12.6")


def test_stake_decrease_with_an_active_round_is_a_release_pending_until_it_resolves(staking: Staking) -> None:
    submit_live_predictions(staking)
    napi = staking.client()
    napi.stake_increase("10", staking.model_id)

    answer = napi.stake_decrease("4", staking.model_id)
    assert answer == {
        "dueDate": staking.round_resolve_time,
        "requestedAmount": Decimal("4"),
        "status": "pending",
        "type": "decrease",
    }
    assert napi.stake_get("alice_model") == Decimal("6")
    stake = model_stake(staking.ctx, staking.model_id)
    assert (stake.stake_nano, stake.releasing_nano) == (6 * NANO_PER_TOKEN, 4 * NANO_PER_TOKEN)
    assert staking.wallet() == 90 * NANO_PER_TOKEN

    drained = napi.stake_drain(staking.model_id)
    assert drained["requestedAmount"] == "6"
    assert (drained["status"], drained["drain"], drained["type"]) == ("pending", True, "decrease")
    assert datetime.fromisoformat(drained["dueDate"]) == staking.round_resolve_time
    assert napi.stake_get("alice_model") is None
    assert staking.held(releasing_account(staking.model_id)) == 10 * NANO_PER_TOKEN


def test_stake_drain_without_an_active_round_returns_the_stake_at_once(staking: Staking) -> None:
    napi = staking.client()
    napi.stake_increase("30", staking.model_id)

    drained = napi.stake_drain(staking.model_id)
    assert int(drained["id"]) > 0
    assert {key: value for key, value in drained.items() if key != "id"} == {
        "dueDate": None,
        "status": "completed",
        "type": "decrease",
        "requestedAmount": "30",
        "drain": True,
    }
    assert napi.stake_get("alice_model") is None
    assert staking.wallet() == GRANTED * NANO_PER_TOKEN
    assert staking.held(releasing_account(staking.model_id)) == 0


def test_wallet_transactions_list_every_movement_newest_first(staking: Staking) -> None:
    napi = staking.client()
    napi.stake_increase("7.25", staking.model_id)
    napi.stake_decrease("2", staking.model_id)

    wallet, stake = wallet_account(staking.account_ids["alice"]), stake_account(staking.model_id)
    releasing = releasing_account(staking.model_id)
    listed = napi.wallet_transactions()
    moved = [(t["type"], t["from"], t["to"], t["amount"], t["tournament"]) for t in listed]
    assert moved == [
        ("release", releasing, wallet, Decimal("2"), 8),
        ("release_request", stake, releasing, Decimal("2"), 8),
        ("stake_increase", wallet, stake, Decimal("7.25"), 8),
        ("grant", "treasury", wallet, Decimal("100"), None),
    ]
    assert {t["status"] for t in listed} == {"confirmed"}
    # The release and its request are one ledger transaction; the increase and the grant are others.
    assert listed[0]["txHash"] == listed[1]["txHash"] != listed[2]["txHash"] != listed[3]["txHash"]
    assert all(abs(t["time"] - staking.ctx.now()) < timedelta(seconds=30) for t in listed)


def test_refused_stake_changes_name_the_rule_and_move_nothing(staking: Staking) -> None:
    napi = staking.client()
    alice_wallet = wallet_account(staking.account_ids["alice"])
    stake = stake_account(staking.model_id)
    refusals: list[tuple[Callable[[], Any], str]] = [
        (
            lambda: napi.stake_increase("100.5", staking.model_id),
            f"insufficient_wallet: {alice_wallet} holds 100 tokens, less than 100.5",
        ),
        (
            lambda: napi.stake_decrease("5", staking.model_id),
            f"insufficient_stake: {stake} holds 0 tokens, less than 5",
        ),
        (
            lambda: napi.stake_drain(staking.model_id),
            f"nothing_to_release: {stake} holds no stake to drain",
        ),
        (
            lambda: staking.client("bob").stake_increase("1", staking.model_id),
            f"permission_denied: model {staking.model_id!r} does not belong to account 'bob'",
        ),
        (
            lambda: napi.stake_increase("abc", staking.model_id),
            "invalid_amount: value must be a decimal number of tokens such as 12.5; got 'abc'",
        ),
        (
            lambda: napi.stake_increase("0.0000000001", staking.model_id),
            "invalid_amount: value has more than 9 decimals (1 nano-token); got '0.0000000001'",
        ),
        (
            lambda: napi.stake_increase(-1, staking.model_id),
            "invalid_amount: value must be positive; got '-1'",
        ),
        (
            lambda: napi.stake_change(1, "double", staking.model_id),
            "invalid_stake_change: type must be 'increase' or 'decrease'; got 'double'",
        ),
        (
            lambda: napi.stake_change(1, "increase"),
            "missing_model_id: pass the modelId of one of your models",
        ),
        (
            lambda: numerapi.SignalsAPI(*staking.keys["alice"]).stake_increase(1, staking.model_id),
            "wrong_tournament: model 'alice_model' is in tournament 8, not 11",
        ),
    ]
    for call, message in refusals:
        with pytest.raises(ValueError) as caught:
            call()
        assert str(caught.value) == message

    assert staking.wallet() == GRANTED * NANO_PER_TOKEN
    assert staking.held(stake) == 0
    assert napi.wallet_transactions()[0]["type"] == "grant"


def test_stake_get_of_an_unknown_model_is_a_not_found_error(staking: Staking) -> None:
    with pytest.raises(ValueError) as caught:
        numerapi.NumerAPI().stake_get("nobody")
    assert str(caught.value) == "not_found: no model named 'nobody' in classic"


def test_stake_set_moves_to_the_asked_stake_through_increase_and_decrease(staking: Staking) -> None:
    napi = staking.client()
    assert napi.stake_set(20, staking.model_id)["type"] == "increase"
    assert napi.stake_get("alice_model") == Decimal("20")

    lowered = napi.stake_set("15.5", staking.model_id)
    assert (lowered["type"], lowered["requestedAmount"], lowered["status"]) == (
        "decrease",
        Decimal("4.5"),
        "completed",
    )
    assert napi.stake_get("alice_model") == Decimal("15.5")
    assert staking.wallet() == Decimal("84.5") * NANO_PER_TOKEN


def test_release_stake_without_drain_releases_the_amount_asked(staking: Staking) -> None:
    napi = staking.client()
    napi.stake_increase("9", staking.model_id)
    mutation = """
        mutation($drain: bool!, $amount: String, $modelId: String) {
            releaseStake(drain: $drain, modelId: $modelId, amount: $amount) {
                requestedAmount status drain
            }
        }"""
    arguments = {"drain": False, "modelId": staking.model_id, "amount": "3.5"}
    answer = napi.raw_query(mutation, arguments, authorization=True)["data"]["releaseStake"]
    assert answer == {"requestedAmount": "3.5", "status": "completed", "drain": False}
    assert napi.stake_get("alice_model") == Decimal("5.5")

    with pytest.raises(ValueError) as caught:
        napi.raw_query(mutation, {"drain": False, "modelId": staking.model_id}, authorization=True)
    assert str(caught.value) == "missing_amount: pass the amount to release, or drain: true to release all"
