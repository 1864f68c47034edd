"""The ledger's use cases on SQLite and PostgreSQL: money moves once, rejections are kept, invariants hold."""

from __future__ import annotations

import pytest
from ledger_helpers import add_round, held, set_round_state, submit, tokens
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from crowdalpha.ledger import DEFAULT_CAP_NANO, releasing_account, stake_account, wallet_account
from crowdalpha.service import (
    Context,
    Payout,
    ServiceError,
    StakeIncrease,
    account_entries,
    apply_payout,
    apply_payout_in,
    apply_payouts_in,
    at_risk_stake_in,
    buyback,
    check_ledger,
    complete_releases_for_round,
    complete_releases_in,
    create_account,
    create_model,
    grant,
    increase_stake,
    increase_stakes,
    mint_genesis,
    model_stake,
    payout_key,
    request_release,
)
from crowdalpha.store import RoundState, transaction


@pytest.fixture
def alice(ctx: Context) -> tuple[str, str]:
    """Return alice's account id and the id of her Classic model, after the genesis mint."""
    account = create_account(ctx, "alice").account
    model = create_model(ctx, "alice", "classic", "alice_model")
    mint_genesis(ctx)
    return account.id, model.id


def funded(ctx: Context, model_id: str, wallet_tokens: int, stake_tokens: int) -> None:
    grant(ctx, "alice", tokens(wallet_tokens), idempotency_key="fund-wallet")
    if stake_tokens:
        increase_stake(ctx, "alice", model_id, tokens(stake_tokens), idempotency_key="fund-stake")


def test_genesis_mints_the_cap_into_the_treasury_once(ctx: Context) -> None:
    first = mint_genesis(ctx)
    assert first.applied and not first.replayed
    assert [(e.debit, e.credit, e.amount_nano) for e in first.entries] == [
        ("supply", "treasury", DEFAULT_CAP_NANO)
    ]
    assert held(ctx) == {"supply": -DEFAULT_CAP_NANO, "treasury": DEFAULT_CAP_NANO}
    again = mint_genesis(ctx)
    assert again.replayed and again.transaction_id == first.transaction_id
    with pytest.raises(ServiceError, match=r"^genesis_done: "):
        mint_genesis(ctx, idempotency_key="second-genesis")
    with pytest.raises(ServiceError, match=r"^genesis_done: "):  # the replay returns the first answer
        mint_genesis(ctx, idempotency_key="second-genesis")
    report = check_ledger(ctx)
    assert report.ok and report.totals.minted == DEFAULT_CAP_NANO and report.transactions == 2


def test_a_mint_past_the_cap_is_refused(ctx: Context) -> None:
    with pytest.raises(ServiceError, match=r"^over_cap: minting 11000001 tokens exceeds the cap of 11000000"):
        mint_genesis(ctx, amount_nano=DEFAULT_CAP_NANO + tokens(1))
    assert held(ctx) == {"supply": 0, "treasury": 0}


def test_a_grant_moves_treasury_to_wallet_once(ctx: Context, alice: tuple[str, str]) -> None:
    account_id, _ = alice
    receipt = grant(ctx, "alice", tokens(12.5), idempotency_key="g1")
    assert [(e.debit, e.credit, e.amount_nano) for e in receipt.entries] == [
        ("treasury", wallet_account(account_id), 12_500_000_000)
    ]
    assert grant(ctx, "alice", tokens(12.5), idempotency_key="g1").replayed
    assert held(ctx)[wallet_account(account_id)] == tokens(12.5)
    assert held(ctx)["treasury"] == DEFAULT_CAP_NANO - tokens(12.5)
    with pytest.raises(
        ServiceError,
        match=r"^idempotency_key_reused: idempotency key 'g1' was used for a different grant request",
    ):
        grant(ctx, "alice", tokens(13), idempotency_key="g1")
    assert check_ledger(ctx).ok


def test_a_rejection_is_recorded_and_replayed_even_after_the_funds_arrive(ctx: Context) -> None:
    create_account(ctx, "alice")
    with pytest.raises(ServiceError, match=r"^treasury_insufficient: treasury holds 0 tokens, less than 5"):
        grant(ctx, "alice", tokens(5), idempotency_key="early")
    mint_genesis(ctx)
    with pytest.raises(ServiceError, match=r"^treasury_insufficient: "):
        grant(ctx, "alice", tokens(5), idempotency_key="early")
    assert grant(ctx, "alice", tokens(5), idempotency_key="later").applied
    with pytest.raises(ServiceError, match=r"^not_found: no account named 'nobody'"):
        grant(ctx, "nobody", tokens(5), idempotency_key="ghost")
    assert check_ledger(ctx).transactions == 4


def test_a_stake_increase_comes_from_the_owners_wallet(ctx: Context, alice: tuple[str, str]) -> None:
    account_id, model_id = alice
    funded(ctx, model_id, 100, 30)
    assert held(ctx)[wallet_account(account_id)] == tokens(70)
    assert held(ctx)[stake_account(model_id)] == tokens(30)
    with pytest.raises(ServiceError, match=r"^insufficient_wallet: "):
        increase_stake(ctx, "alice", model_id, tokens(70.000000001), idempotency_key="too-much")
    create_account(ctx, "bob")
    with pytest.raises(ServiceError, match=r"^permission_denied: model .* does not belong to account 'bob'"):
        increase_stake(ctx, "bob", model_id, tokens(1), idempotency_key="not-mine")
    with transaction(ctx.engine) as uow:
        assert at_risk_stake_in(uow, model_id) == tokens(30)
    assert check_ledger(ctx).ok


def test_a_batch_of_stake_increases_sees_its_own_wallet_moves_and_replays_each_key(
    ctx: Context, alice: tuple[str, str]
) -> None:
    account_id, model_id = alice
    second = create_model(ctx, "alice", "classic", "alice_second").id
    grant(ctx, "alice", tokens(100), idempotency_key="fund-wallet")
    batch = [
        StakeIncrease(model_id, tokens(60), "batch/0"),
        StakeIncrease(second, tokens(50), "batch/1"),  # only 40 left after the first: rejected
        StakeIncrease(second, tokens(40), "batch/2"),
    ]
    receipts = increase_stakes(ctx, "alice", batch)
    assert [receipt.applied for receipt in receipts] == [True, False, True]
    assert receipts[1].rule == "insufficient_wallet"
    assert held(ctx)[wallet_account(account_id)] == 0
    assert (held(ctx)[stake_account(model_id)], held(ctx)[stake_account(second)]) == (tokens(60), tokens(40))
    again = increase_stakes(ctx, "alice", batch)
    assert all(receipt.replayed for receipt in again)
    assert [receipt.transaction_id for receipt in again] == [receipt.transaction_id for receipt in receipts]
    assert check_ledger(ctx).ok


def test_a_release_with_no_active_round_returns_to_the_wallet_at_once(
    ctx: Context, alice: tuple[str, str]
) -> None:
    account_id, model_id = alice
    funded(ctx, model_id, 100, 40)
    receipt = request_release(ctx, "alice", model_id, tokens(15), idempotency_key="r1")
    assert receipt.result["completed"] and receipt.result["due_round"] is None
    assert held(ctx)[wallet_account(account_id)] == tokens(75)
    assert held(ctx)[stake_account(model_id)] == tokens(25)
    assert held(ctx)[releasing_account(model_id)] == 0
    assert model_stake(ctx, model_id).pending_releases == ()
    assert check_ledger(ctx).ok


def test_a_release_completes_when_the_last_active_round_at_request_time_resolves(
    ctx: Context, alice: tuple[str, str]
) -> None:
    account_id, model_id = alice
    funded(ctx, model_id, 100, 40)
    first, second = add_round(ctx, 1, RoundState.SCORING), add_round(ctx, 2, RoundState.OPEN)
    submit(ctx, model_id, first)
    submit(ctx, model_id, second)
    receipt = request_release(ctx, "alice", model_id, tokens(10), idempotency_key="r1")
    assert receipt.result["due_round"] == 2 and not receipt.result["completed"]
    submit(ctx, model_id, add_round(ctx, 3, RoundState.OPEN))  # a later round does not delay it
    with transaction(ctx.engine) as uow:
        assert at_risk_stake_in(uow, model_id) == tokens(30)  # pending release is not at risk
    assert complete_releases_for_round(ctx, "classic", 1) == []
    assert held(ctx)[releasing_account(model_id)] == tokens(10)
    set_round_state(ctx, second, RoundState.RESOLVED)
    completed = complete_releases_for_round(ctx, "classic", 2)
    assert [(e.debit, e.credit, e.amount_nano) for e in completed[0].entries] == [
        (releasing_account(model_id), wallet_account(account_id), tokens(10))
    ]
    assert complete_releases_for_round(ctx, "classic", 2) == []  # re-running the resolution pays nothing
    assert held(ctx)[wallet_account(account_id)] == tokens(70)
    assert held(ctx)[releasing_account(model_id)] == 0
    assert check_ledger(ctx).ok


def test_stake_pending_release_can_burn_but_earns_nothing(ctx: Context, alice: tuple[str, str]) -> None:
    account_id, model_id = alice
    funded(ctx, model_id, 100, 100)
    round_id = add_round(ctx, 1, RoundState.SCORING)
    submit(ctx, model_id, round_id)
    request_release(ctx, "alice", model_id, tokens(60), idempotency_key="r1")
    gain = apply_payout(ctx, model_id, round_id, tokens(5), "payout/1/gain")
    assert [(e.debit, e.credit) for e in gain.entries] == [("treasury", stake_account(model_id))]
    loss = apply_payout(ctx, model_id, round_id, -tokens(50), "payout/1/loss")
    assert [(e.debit, e.credit, e.amount_nano) for e in loss.entries] == [
        (stake_account(model_id), "burn", tokens(45)),
        (releasing_account(model_id), "burn", tokens(5)),
    ]
    assert apply_payout(ctx, model_id, round_id, -tokens(50), "payout/1/loss").replayed
    stake = model_stake(ctx, model_id)
    assert (stake.stake_nano, stake.releasing_nano) == (0, tokens(55))
    assert stake.pending_releases[0]["remaining_nano"] == tokens(55)
    assert check_ledger(ctx).ok
    set_round_state(ctx, round_id, RoundState.RESOLVED)
    complete_releases_for_round(ctx, "classic", 1)
    assert held(ctx)[wallet_account(account_id)] == tokens(55)
    assert held(ctx)["burn"] == tokens(50)
    report = check_ledger(ctx)
    assert report.ok and report.totals.burned == tokens(50)
    assert report.totals.circulating + report.totals.burned == DEFAULT_CAP_NANO


def test_a_drain_releases_all_the_stake(ctx: Context, alice: tuple[str, str]) -> None:
    _, model_id = alice
    funded(ctx, model_id, 10, 10)
    submit(ctx, model_id, add_round(ctx, 1, RoundState.OPEN))
    receipt = request_release(ctx, "alice", model_id, None, idempotency_key="drain")
    assert receipt.result["amount_nano"] == tokens(10) and receipt.result["drain"]
    assert model_stake(ctx, model_id).stake_nano == 0
    with pytest.raises(ServiceError, match=r"^nothing_to_release: "):
        request_release(ctx, "alice", model_id, None, idempotency_key="drain-again")
    with pytest.raises(ServiceError, match=r"^insufficient_stake: "):
        request_release(ctx, "alice", model_id, tokens(1), idempotency_key="decrease")


def test_payouts_are_refused_beyond_what_is_held(ctx: Context, alice: tuple[str, str]) -> None:
    _, model_id = alice
    funded(ctx, model_id, 10, 10)
    round_id = add_round(ctx, 1, RoundState.SCORING)
    with pytest.raises(ServiceError, match=r"^insufficient_stake: burning 10.5 tokens exceeds the 10 held"):
        apply_payout(ctx, model_id, round_id, -tokens(10.5), "p1")
    with pytest.raises(ServiceError, match=r"^treasury_insufficient: "):
        apply_payout(ctx, model_id, round_id, DEFAULT_CAP_NANO, "p2")
    assert apply_payout(ctx, model_id, round_id, 0, "p3").entries == ()
    assert held(ctx)[stake_account(model_id)] == tokens(10)


def test_a_resolution_burn_takes_at_most_what_the_model_holds(ctx: Context, alice: tuple[str, str]) -> None:
    # overlapping rounds each put the stake at close at risk: their burns together can exceed it
    _, model_id = alice
    funded(ctx, model_id, 10, 10)
    round_id = add_round(ctx, 1, RoundState.SCORING)
    submit(ctx, model_id, round_id)  # an active round: the release stays pending (and can burn)
    request_release(ctx, "alice", model_id, tokens(4), idempotency_key="release")
    assert held(ctx)[releasing_account(model_id)] == tokens(4)
    batch = [Payout(model_id, -tokens(10.5), payout_key(round_id, model_id), burn_at_most_held=True)]
    with transaction(ctx.engine) as uow:
        (receipt,) = apply_payouts_in(uow, round_id, batch, now=ctx.now())
    assert receipt.applied
    assert receipt.result["amount_nano"] == -tokens(10) and receipt.result["requested_nano"] == -tokens(10.5)
    assert receipt.result["burned_from_releasing_nano"] == tokens(4)
    assert held(ctx)[stake_account(model_id)] == 0 and held(ctx)[releasing_account(model_id)] == 0
    assert held(ctx)["burn"] == tokens(10)
    with transaction(ctx.engine) as uow:
        (again,) = apply_payouts_in(uow, round_id, batch, now=ctx.now())
    assert again.replayed and again.result["amount_nano"] == -tokens(10) and held(ctx)["burn"] == tokens(10)
    assert check_ledger(ctx).ok


def test_a_buyback_returns_burned_tokens_to_the_treasury(ctx: Context, alice: tuple[str, str]) -> None:
    _, model_id = alice
    funded(ctx, model_id, 10, 10)
    round_id = add_round(ctx, 1, RoundState.SCORING)
    apply_payout(ctx, model_id, round_id, -tokens(4), "burn")
    with pytest.raises(ServiceError, match=r"^buyback_exceeds_burned: burn holds 4 tokens, less than 5"):
        buyback(ctx, tokens(5), idempotency_key="b1")
    buyback(ctx, tokens(3), idempotency_key="b2")
    assert held(ctx)["burn"] == tokens(1)
    assert held(ctx)["treasury"] == DEFAULT_CAP_NANO - tokens(10) + tokens(3)
    assert check_ledger(ctx).ok


def test_the_check_finds_a_tampered_cached_balance(ctx: Context, alice: tuple[str, str]) -> None:
    funded(ctx, alice[1], 10, 0)
    with ctx.engine.begin() as connection:
        connection.execute(text("UPDATE ledger_accounts SET balance = balance + 1 WHERE name = 'treasury'"))
    report = check_ledger(ctx)
    assert not report.ok
    assert [b.rule for b in report.breaks] == ["cached_balance_mismatch"]
    assert "treasury caches" in report.breaks[0].detail


def test_entries_and_outcomes_are_append_only(ctx: Context, alice: tuple[str, str]) -> None:
    funded(ctx, alice[1], 10, 0)
    for statement in (
        "UPDATE ledger_entries SET amount = amount + 1",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_transactions SET outcome = 'rejected'",
    ):
        with pytest.raises(DBAPIError, match="append-only"), ctx.engine.begin() as connection:
            connection.execute(text(statement))
    assert check_ledger(ctx).ok


def test_an_accounts_entries_are_its_wallet_and_stake_movements_newest_first(
    ctx: Context, alice: tuple[str, str]
) -> None:
    account_id, model_id = alice
    funded(ctx, model_id, 10, 4)
    round_id = add_round(ctx, 1, RoundState.SCORING)
    apply_payout(ctx, model_id, round_id, tokens(1), payout_key(round_id, model_id))
    create_account(ctx, "bob")
    grant(ctx, "bob", tokens(3), idempotency_key="bob")
    moves = account_entries(ctx, "alice")
    assert [(m.reason, m.debit, m.credit, m.amount_nano) for m in moves] == [
        ("payout", "treasury", stake_account(model_id), tokens(1)),
        ("stake_increase", wallet_account(account_id), stake_account(model_id), tokens(4)),
        ("grant", "treasury", wallet_account(account_id), tokens(10)),
    ]
    assert moves[0].round_id == round_id and moves[0].model_id == model_id
    assert [m.reason for m in account_entries(ctx, "alice", limit=1)] == ["payout"]
    with pytest.raises(ServiceError, match=r"^idempotency_key_reused: "):
        apply_payout(ctx, model_id, round_id, tokens(2), payout_key(round_id, model_id))


def test_a_resolution_pays_and_releases_in_its_own_transaction_exactly_once(
    ctx: Context, alice: tuple[str, str]
) -> None:
    account_id, model_id = alice
    funded(ctx, model_id, 50, 50)
    round_id = add_round(ctx, 1, RoundState.SCORING)
    submit(ctx, model_id, round_id)
    request_release(ctx, "alice", model_id, tokens(20), idempotency_key="r1")
    before = held(ctx)

    def resolve(fail: bool) -> None:
        with transaction(ctx.engine) as uow:
            row = uow.rounds.get(round_id)
            uow.rounds.transition(round_id, [RoundState.SCORING], RoundState.RESOLVED, now=ctx.now())
            apply_payout_in(
                uow, model_id, round_id, -tokens(3), payout_key(round_id, model_id), now=ctx.now()
            )
            complete_releases_in(uow, row, now=ctx.now())
            if fail:
                raise RuntimeError("crash after the payout, before commit")

    with pytest.raises(RuntimeError):
        resolve(fail=True)
    assert held(ctx) == before  # the crash took the money movements back with the state change
    resolve(fail=False)
    resolve(fail=False)  # a re-run finds the recorded outcomes: nothing moves twice
    after = held(ctx)
    assert after[stake_account(model_id)] == tokens(27)
    assert after[wallet_account(account_id)] == tokens(20)
    assert after["burn"] == tokens(3)
    assert check_ledger(ctx).ok


def test_a_batch_of_payouts_moves_what_the_payouts_one_by_one_would_and_replays_once(
    ctx: Context, alice: tuple[str, str]
) -> None:
    _, model_id = alice
    funded(ctx, model_id, 110, 100)
    others = [create_model(ctx, "alice", "classic", f"alice_{k}").id for k in range(3)]
    for k, other in enumerate(others):
        increase_stake(ctx, "alice", other, tokens(k + 1), idempotency_key=f"stake/{k}")
    round_id = add_round(ctx, 1, RoundState.SCORING)
    submit(ctx, model_id, round_id)
    request_release(ctx, "alice", model_id, tokens(60), idempotency_key="r1")  # 40 at stake, 60 releasing
    batch = [
        Payout(model_id, -tokens(30), "batch/alice/1"),  # from the stake
        Payout(model_id, -tokens(25), "batch/alice/2"),  # 10 from the stake, 15 from the release
        Payout(others[0], tokens(2), payout_key(round_id, others[0])),
        Payout(others[1], -tokens(50), payout_key(round_id, others[1])),  # holds 2: refused, recorded
        Payout(others[2], -tokens(3), payout_key(round_id, others[2])),
        Payout("no-such-model", tokens(1), "batch/ghost"),
    ]
    before = held(ctx)
    with transaction(ctx.engine) as uow:
        receipts = apply_payouts_in(uow, round_id, batch, now=ctx.now())
    assert [r.outcome for r in receipts] == [
        "applied",
        "applied",
        "applied",
        "rejected",
        "applied",
        "rejected",
    ]
    assert [r.rule for r in receipts if not r.applied] == ["insufficient_stake", "not_found"]
    assert [(e.debit, e.amount_nano) for e in receipts[1].entries] == [
        (stake_account(model_id), tokens(10)),
        (releasing_account(model_id), tokens(15)),
    ]
    after = held(ctx)
    assert after[stake_account(model_id)] == 0 and after[releasing_account(model_id)] == tokens(45)
    assert model_stake(ctx, model_id).pending_releases[0]["remaining_nano"] == tokens(45)
    assert after[stake_account(others[0])] == tokens(3) and after[stake_account(others[1])] == tokens(2)
    assert after[stake_account(others[2])] == 0
    assert after["burn"] - before.get("burn", 0) == tokens(58)
    assert after["treasury"] - before["treasury"] == -tokens(2)
    assert stake_account("no-such-model") not in after  # no account is opened for an unknown model
    assert check_ledger(ctx).ok

    with transaction(ctx.engine) as uow:
        again = apply_payouts_in(uow, round_id, batch, now=ctx.now())
    assert all(r.replayed for r in again)
    assert [r.transaction_id for r in again] == [r.transaction_id for r in receipts]
    assert [r.entries for r in again] == [r.entries for r in receipts]
    assert held(ctx) == after  # nothing moved twice
    single = apply_payout(ctx, others[0], round_id, tokens(2), payout_key(round_id, others[0]))
    assert single.replayed and single.transaction_id == receipts[2].transaction_id
    with transaction(ctx.engine) as uow, pytest.raises(ServiceError, match=r"^idempotency_key_reused: "):
        apply_payouts_in(
            uow, round_id, [Payout(others[0], tokens(9), payout_key(round_id, others[0]))], now=ctx.now()
        )
