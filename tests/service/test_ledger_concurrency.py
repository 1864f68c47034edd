"""Concurrent ledger writers (8+ threads) on SQLite and PostgreSQL: no lost update, no double spend."""

from __future__ import annotations

import random
import threading
from collections import Counter

from ledger_helpers import add_round, held, tokens

from crowdalpha.ledger import DEFAULT_CAP_NANO, stake_account, wallet_account
from crowdalpha.service import (
    Context,
    LedgerReceipt,
    ServiceError,
    apply_payout,
    check_ledger,
    create_account,
    create_model,
    grant,
    increase_stake,
    mint_genesis,
    request_release,
)
from crowdalpha.store import RoundState

THREADS = 8
OPERATIONS_PER_THREAD = 24


def run_threads(work, count: int = THREADS) -> list[BaseException]:
    """Run ``work(thread_index)`` on ``count`` threads released together; return the unexpected errors."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def target(index: int) -> None:
        barrier.wait()
        try:
            work(index)
        except BaseException as error:  # reported by the test
            errors.append(error)

    threads = [threading.Thread(target=target, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return errors


def test_concurrent_grants_stakes_and_payouts_lose_no_update(ctx: Context) -> None:
    mint_genesis(ctx)
    users = [create_account(ctx, f"user{i}").account for i in range(4)]
    models = [create_model(ctx, f"user{i}", "classic", f"model{i}") for i in range(4)]
    round_id = add_round(ctx, 1, RoundState.SCORING)
    receipts: list[LedgerReceipt] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        rng = random.Random(index)
        for step in range(OPERATIONS_PER_THREAD):
            who = rng.randrange(4)
            key = f"t{index}/s{step}"
            kind = step % 3
            try:
                if kind == 0:
                    receipt = grant(ctx, f"user{who}", tokens(2), idempotency_key=key)
                elif kind == 1:
                    receipt = increase_stake(
                        ctx, f"user{who}", models[who].id, tokens(1), idempotency_key=key
                    )
                else:
                    amount = tokens(rng.choice([-1, 1, 0.5]))
                    receipt = apply_payout(ctx, models[who].id, round_id, amount, key)
            except ServiceError as error:
                assert error.rule in {"insufficient_wallet", "insufficient_stake"}, error
                continue
            with lock:
                receipts.append(receipt)

    assert run_threads(work) == []
    report = check_ledger(ctx)
    assert report.ok, report.breaks
    moved = Counter()
    for receipt in receipts:
        for entry in receipt.entries:
            moved[entry.debit] -= entry.amount_nano
            moved[entry.credit] += entry.amount_nano
    balances = held(ctx)
    assert balances["treasury"] == DEFAULT_CAP_NANO + moved["treasury"]
    assert balances.get("burn", 0) == moved["burn"]
    for user, model in zip(users, models, strict=True):
        assert balances.get(wallet_account(user.id), 0) == moved[wallet_account(user.id)]
        assert balances.get(stake_account(model.id), 0) == moved[stake_account(model.id)]
    grants = sum(1 for receipt in receipts if receipt.operation == "grant")
    assert grants == THREADS * OPERATIONS_PER_THREAD // 3  # grants never fail: the treasury is large


def test_one_idempotency_key_used_by_many_threads_at_once_moves_money_once(ctx: Context) -> None:
    mint_genesis(ctx)
    account = create_account(ctx, "alice").account
    model = create_model(ctx, "alice", "classic", "alice_model")
    results: list[LedgerReceipt] = []

    def work(_index: int) -> None:
        results.append(grant(ctx, "alice", tokens(100), idempotency_key="the-one-grant"))
        results.append(increase_stake(ctx, "alice", model.id, tokens(60), idempotency_key="the-one-stake"))

    assert run_threads(work, count=10) == []
    assert len(results) == 20
    for operation in ("grant", "stake_increase"):
        answers = [receipt for receipt in results if receipt.operation == operation]
        assert sum(not receipt.replayed for receipt in answers) == 1
        assert len({receipt.transaction_id for receipt in answers}) == 1
    assert held(ctx)[wallet_account(account.id)] == tokens(40)
    assert held(ctx)[stake_account(model.id)] == tokens(60)
    assert check_ledger(ctx).ok


def test_concurrent_releases_never_take_more_than_the_stake(ctx: Context) -> None:
    mint_genesis(ctx)
    create_account(ctx, "alice")
    model = create_model(ctx, "alice", "classic", "alice_model")
    grant(ctx, "alice", tokens(10), idempotency_key="fund")
    increase_stake(ctx, "alice", model.id, tokens(10), idempotency_key="stake")
    outcomes: list[str] = []

    def work(index: int) -> None:
        try:
            request_release(ctx, "alice", model.id, tokens(3), idempotency_key=f"release-{index}")
            outcomes.append("applied")
        except ServiceError as error:
            outcomes.append(error.rule)

    assert run_threads(work) == []
    assert sorted(outcomes) == ["applied"] * 3 + ["insufficient_stake"] * (THREADS - 3)
    assert held(ctx)[stake_account(model.id)] == tokens(1)
    assert check_ledger(ctx).ok
