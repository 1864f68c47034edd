"""The operations' rules: which entries each one writes from the balances it reads, or why it is refused."""

from __future__ import annotations

import pytest

from crowdalpha.ledger import (
    BURN,
    SUPPLY,
    TREASURY,
    Entry,
    EntryError,
    LedgerRejection,
    allocate_release_burn,
    buyback_entries,
    genesis_entries,
    grant_entries,
    payout_entries,
    postings,
    release_request_entries,
    stake_increase_entries,
    transaction_imbalance,
)

WALLET, STAKE, RELEASING = "wallet:a", "stake:m", "releasing:m"


def rejected(rule: str, call, *args) -> None:
    with pytest.raises(LedgerRejection) as raised:
        call(*args)
    assert raised.value.rule == rule
    assert str(raised.value).startswith(f"{rule}: ")


def test_an_entry_moves_a_positive_integer_between_two_accounts() -> None:
    for bad in (0, -1, 1.0, True):
        with pytest.raises(EntryError):
            Entry(TREASURY, WALLET, bad, "grant")  # type: ignore[arg-type]
    with pytest.raises(EntryError, match="between two accounts"):
        Entry(WALLET, WALLET, 1, "grant")
    entries = [Entry(TREASURY, WALLET, 5, "grant"), Entry(WALLET, STAKE, 3, "stake_increase")]
    assert postings(entries) == {TREASURY: -5, WALLET: 2, STAKE: 3}
    assert transaction_imbalance(entries) == 0


def test_genesis_mints_once_and_never_past_the_cap() -> None:
    assert genesis_entries({}, 100, 100) == [Entry(SUPPLY, TREASURY, 100, "genesis")]
    rejected("over_cap", genesis_entries, {}, 101, 100)
    rejected("genesis_done", genesis_entries, {SUPPLY: -100}, 1, 200)


def test_grants_buybacks_and_stake_increases_need_the_funds() -> None:
    assert grant_entries({TREASURY: 10}, WALLET, 10) == [Entry(TREASURY, WALLET, 10, "grant")]
    rejected("treasury_insufficient", grant_entries, {TREASURY: 9}, WALLET, 10)
    assert buyback_entries({BURN: 4}, 4) == [Entry(BURN, TREASURY, 4, "buyback")]
    rejected("buyback_exceeds_burned", buyback_entries, {BURN: 3}, 4)
    assert stake_increase_entries({WALLET: 5}, WALLET, STAKE, 5) == [
        Entry(WALLET, STAKE, 5, "stake_increase")
    ]
    rejected("insufficient_wallet", stake_increase_entries, {WALLET: 4}, WALLET, STAKE, 5)
    rejected("invalid_amount", grant_entries, {TREASURY: 9}, WALLET, 0)


def test_a_release_request_moves_stake_aside_and_a_drain_takes_all() -> None:
    assert release_request_entries({STAKE: 7}, STAKE, RELEASING, 3) == [
        Entry(STAKE, RELEASING, 3, "release_request")
    ]
    assert release_request_entries({STAKE: 7}, STAKE, RELEASING, None)[0].amount == 7
    rejected("insufficient_stake", release_request_entries, {STAKE: 7}, STAKE, RELEASING, 8)
    rejected("nothing_to_release", release_request_entries, {}, STAKE, RELEASING, None)


def test_a_payout_earns_into_the_stake_and_a_burn_takes_the_stake_before_pending_release() -> None:
    held = {TREASURY: 100, STAKE: 10, RELEASING: 6}
    assert payout_entries(held, STAKE, RELEASING, 5) == [Entry(TREASURY, STAKE, 5, "payout")]
    assert payout_entries(held, STAKE, RELEASING, 0) == []
    assert payout_entries(held, STAKE, RELEASING, -4) == [Entry(STAKE, BURN, 4, "burn")]
    assert payout_entries(held, STAKE, RELEASING, -13) == [
        Entry(STAKE, BURN, 10, "burn"),
        Entry(RELEASING, BURN, 3, "burn"),
    ]
    assert payout_entries({RELEASING: 6}, STAKE, RELEASING, -6) == [Entry(RELEASING, BURN, 6, "burn")]
    rejected("insufficient_stake", payout_entries, held, STAKE, RELEASING, -17)
    rejected("treasury_insufficient", payout_entries, held, STAKE, RELEASING, 101)
    rejected("invalid_amount", payout_entries, held, STAKE, RELEASING, 1.5)


def test_a_burn_of_pending_release_takes_the_oldest_request_first() -> None:
    assert allocate_release_burn([(1, 5), (2, 5)], 7) == [(1, 0), (2, 3)]
    assert allocate_release_burn([(1, 5), (2, 5)], 0) == []
    rejected("insufficient_stake", allocate_release_burn, [(1, 5)], 6)
