"""The ledger's invariants, checked over plain data: what ``crowdalpha ledger check`` verifies.

1. every transaction sums to zero: each entry posts −amount and +amount, so that holds when every
   entry moves a positive integer between two distinct accounts, and all balances then sum to zero;
2. cached balances equal the sum of the entries; 3. no account but ``supply`` is below zero;
4. circulating + burned ≤ cap; 5. each ``releasing:`` account holds its model's pending releases.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from crowdalpha.ledger.accounts import BURN, SUPPLY, TREASURY, AccountKind, AccountNameError, parse_account
from crowdalpha.ledger.amounts import format_tokens
from crowdalpha.ledger.entries import postings


@dataclass(frozen=True)
class LedgerBreak:
    """One broken invariant: which rule and where."""

    rule: str
    detail: str


@dataclass(frozen=True)
class SupplyTotals:
    """The supply in nano-tokens: cap, minted, burned, held by the treasury, circulating (minted − burned)."""

    cap: int
    minted: int
    burned: int
    treasury: int
    circulating: int


@dataclass(frozen=True)
class RawEntry:
    """An entry as stored: its transaction, accounts and amount, not yet trusted."""

    transaction_id: int
    debit: str
    credit: str
    amount: int


def derived_balances(entries: Iterable[RawEntry]) -> dict[str, int]:
    """Return every account's balance in nano-tokens as the sum of its entries (credits − debits)."""
    return postings(entries)


def supply_totals(balances: Mapping[str, int], cap: int) -> SupplyTotals:
    """Return the supply totals of a set of balances under ``cap``."""
    minted = -balances.get(SUPPLY, 0)
    burned = balances.get(BURN, 0)
    circulating = sum(value for name, value in balances.items() if name not in (SUPPLY, BURN))
    return SupplyTotals(cap, minted, burned, balances.get(TREASURY, 0), circulating)


def find_breaks(
    entries: Iterable[RawEntry],
    cached: Mapping[str, int],
    *,
    cap: int,
    pending_releases: Mapping[str, int],
) -> list[LedgerBreak]:
    """Return every broken invariant (empty when the ledger is sound); ``pending_releases`` by account.

    ``entries`` is read once, so it may stream from the database.
    """
    breaks: list[LedgerBreak] = []

    def checked() -> Iterator[RawEntry]:
        for entry in entries:
            breaks.extend(_entry_breaks(entry))
            yield entry

    # One pass, so a ledger of any length is checked in memory proportional to its accounts.
    derived = derived_balances(checked())
    for name in sorted(set(derived) | set(cached)):
        try:
            kind, _ = parse_account(name)
        except AccountNameError as error:
            breaks.append(LedgerBreak("unknown_account", str(error)))
            continue
        value = derived.get(name, 0)
        if cached.get(name, 0) != value:
            breaks.append(
                LedgerBreak(
                    "cached_balance_mismatch",
                    f"{name} caches {cached.get(name, 0)} nano but its entries sum to {value}",
                )
            )
        if kind is not AccountKind.SUPPLY and min(value, cached.get(name, 0)) < 0:
            breaks.append(LedgerBreak("negative_balance", f"{name} holds {format_tokens(value)} tokens"))
        if kind is AccountKind.RELEASING and pending_releases.get(name, 0) != value:
            breaks.append(
                LedgerBreak(
                    "release_mismatch",
                    f"{name} holds {value} nano, its pending releases {pending_releases.get(name, 0)}",
                )
            )
    for name, pending in pending_releases.items():
        if name not in derived and pending != 0:
            breaks.append(LedgerBreak("release_mismatch", f"{name} is empty, {pending} nano pending"))
    totals = supply_totals(derived, cap)
    if totals.circulating + totals.burned > cap:
        breaks.append(
            LedgerBreak(
                "over_cap",
                f"circulating {format_tokens(totals.circulating)} + burned {format_tokens(totals.burned)}"
                f" tokens exceed the cap of {format_tokens(cap)}",
            )
        )
    return breaks


def _entry_breaks(entry: RawEntry) -> list[LedgerBreak]:
    """Return what is wrong with one stored entry: a non-positive or non-integer amount, one account."""
    breaks = []
    if isinstance(entry.amount, bool) or not isinstance(entry.amount, int) or entry.amount <= 0:
        breaks.append(
            LedgerBreak("invalid_entry", f"transaction {entry.transaction_id} moves {entry.amount!r}")
        )
    if entry.debit == entry.credit:
        breaks.append(
            LedgerBreak("invalid_entry", f"transaction {entry.transaction_id} moves {entry.debit} to itself")
        )
    return breaks
