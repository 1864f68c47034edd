"""The invariant check over plain data: each broken invariant is named; the rules never break one."""

from __future__ import annotations

import itertools

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from crowdalpha.ledger import (
    BURN,
    SUPPLY,
    TREASURY,
    Entry,
    LedgerRejection,
    RawEntry,
    allocate_release_burn,
    apply_postings,
    buyback_entries,
    derived_balances,
    find_breaks,
    genesis_entries,
    grant_entries,
    payout_entries,
    postings,
    release_entries,
    release_request_entries,
    stake_increase_entries,
    supply_totals,
)

CAP = 1_000
WALLET, STAKE, RELEASING = "wallet:a", "stake:m", "releasing:m"
SOUND = [
    RawEntry(1, SUPPLY, TREASURY, 1_000),
    RawEntry(2, TREASURY, WALLET, 100),
    RawEntry(3, WALLET, STAKE, 60),
    RawEntry(4, STAKE, RELEASING, 20),
    RawEntry(5, STAKE, BURN, 10),
]


def rules_of(breaks) -> list[str]:
    return sorted(item.rule for item in breaks)


def test_a_sound_ledger_has_no_breaks_and_its_totals_add_up() -> None:
    balances = derived_balances(SOUND)
    assert find_breaks(SOUND, balances, cap=CAP, pending_releases={RELEASING: 20}) == []
    totals = supply_totals(balances, CAP)
    assert (totals.minted, totals.burned, totals.treasury, totals.circulating) == (1_000, 10, 900, 990)


def test_each_broken_invariant_is_named() -> None:
    balances = derived_balances(SOUND)
    pending = {RELEASING: 20}
    assert rules_of(find_breaks(SOUND, {**balances, WALLET: 41}, cap=CAP, pending_releases=pending)) == [
        "cached_balance_mismatch"
    ]
    assert rules_of(find_breaks(SOUND, balances, cap=999, pending_releases=pending)) == ["over_cap"]
    assert rules_of(find_breaks(SOUND, balances, cap=CAP, pending_releases={RELEASING: 19})) == [
        "release_mismatch"
    ]
    overdrawn = [*SOUND, RawEntry(6, WALLET, TREASURY, 50)]
    assert rules_of(
        find_breaks(overdrawn, derived_balances(overdrawn), cap=CAP, pending_releases=pending)
    ) == ["negative_balance"]
    negative = [*SOUND, RawEntry(6, TREASURY, WALLET, -5)]
    assert "invalid_entry" in rules_of(
        find_breaks(negative, derived_balances(negative), cap=CAP, pending_releases=pending)
    )
    self_move = [*SOUND, RawEntry(6, WALLET, WALLET, 5)]
    assert rules_of(find_breaks(self_move, balances, cap=CAP, pending_releases=pending)) == ["invalid_entry"]
    unknown = [*SOUND, RawEntry(6, TREASURY, "vault", 5)]
    assert "unknown_account" in rules_of(
        find_breaks(unknown, derived_balances(unknown), cap=CAP, pending_releases=pending)
    )
    lopsided = {**balances, "wallet:ghost": 7}
    assert rules_of(find_breaks(SOUND, lopsided, cap=CAP, pending_releases=pending)) == [
        "cached_balance_mismatch"
    ]


amounts = st.integers(min_value=1, max_value=120)


class RulesMachine(RuleBasedStateMachine):
    """Random operations through the pure rules; the resulting plain ledger never breaks an invariant."""

    def __init__(self) -> None:
        super().__init__()
        self.balances: dict[str, int] = {}
        self.entries: list[RawEntry] = []
        self.pending: list[tuple[int, int]] = []  # (release id, remaining)
        self.ids = itertools.count(1)
        self.write(genesis_entries({}, CAP, CAP))

    def write(self, entries: list[Entry]) -> None:
        transaction_id = next(self.ids)
        self.entries += [RawEntry(transaction_id, e.debit, e.credit, e.amount) for e in entries]
        self.balances = apply_postings(self.balances, postings(entries))

    def attempt(self, plan) -> list[Entry] | None:
        try:
            entries = plan()
        except LedgerRejection:
            return None
        self.write(entries)
        return entries

    @rule(amount=amounts)
    def grant(self, amount: int) -> None:
        self.attempt(lambda: grant_entries(self.balances, WALLET, amount))

    @rule(amount=amounts)
    def stake(self, amount: int) -> None:
        self.attempt(lambda: stake_increase_entries(self.balances, WALLET, STAKE, amount))

    @rule(amount=st.none() | amounts)
    def release(self, amount: int | None) -> None:
        entries = self.attempt(lambda: release_request_entries(self.balances, STAKE, RELEASING, amount))
        if entries:
            self.pending.append((next(self.ids), entries[0].amount))

    @rule()
    def complete_oldest_release(self) -> None:
        if self.pending:
            _, remaining = self.pending.pop(0)
            self.write(release_entries(RELEASING, WALLET, remaining))

    @rule(amount=st.integers(min_value=-150, max_value=150))
    def payout(self, amount: int) -> None:
        try:
            entries = payout_entries(self.balances, STAKE, RELEASING, amount)
            burned = sum(e.amount for e in entries if e.debit == RELEASING)
            changed = dict(allocate_release_burn(self.pending, burned))
        except LedgerRejection:
            return
        self.write(entries)
        self.pending = [(rid, changed.get(rid, remaining)) for rid, remaining in self.pending]

    @rule(amount=amounts)
    def buyback(self, amount: int) -> None:
        self.attempt(lambda: buyback_entries(self.balances, amount))

    @invariant()
    def no_invariant_breaks(self) -> None:
        pending = {RELEASING: sum(remaining for _, remaining in self.pending)}
        assert find_breaks(self.entries, self.balances, cap=CAP, pending_releases=pending) == []
        assert self.balances == derived_balances(self.entries)


RulesMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_the_rules_never_break_an_invariant = RulesMachine.TestCase
