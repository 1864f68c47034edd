"""Entries and transactions: immutable double-entry movements of integer nano-tokens.

As in TigerBeetle, an entry moves ``amount`` from its ``debit`` account to its ``credit`` account;
an account's balance is its credits minus its debits. A transaction is the entries one operation
writes under one idempotency key; its postings (signed changes per account) sum to zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol


class EntryError(ValueError):
    """An entry or transaction breaks a double-entry rule; the message names it."""


@dataclass(frozen=True)
class Entry:
    """One movement of ``amount`` nano-tokens (a positive int) from ``debit`` to ``credit``, and why."""

    debit: str
    credit: str
    amount: int
    reason: str

    def __post_init__(self) -> None:
        """Refuse non-integer or non-positive amounts and an entry from an account to itself."""
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise EntryError(f"an entry amount is an integer of nano-tokens; got {self.amount!r}")
        if self.amount <= 0:
            raise EntryError(f"an entry amount is positive; got {self.amount} ({self.debit} → {self.credit})")
        if self.debit == self.credit:
            raise EntryError(f"an entry moves between two accounts; got {self.debit} on both sides")


class Movement(Protocol):
    """Anything that moves ``amount`` from ``debit`` to ``credit`` (an Entry, a stored entry)."""

    @property
    def debit(self) -> str: ...
    @property
    def credit(self) -> str: ...
    @property
    def amount(self) -> int: ...


def postings(entries: Iterable[Movement]) -> dict[str, int]:
    """Return the signed change in nano-tokens of every account the entries touch (credits − debits)."""
    changes: dict[str, int] = defaultdict(int)
    for entry in entries:
        changes[entry.debit] -= entry.amount
        changes[entry.credit] += entry.amount
    return dict(changes)


def transaction_imbalance(entries: Iterable[Movement]) -> int:
    """Return the sum of a transaction's postings in nano-tokens: 0 for every valid transaction."""
    return sum(postings(entries).values())


def apply_postings(balances: Mapping[str, int], changes: Mapping[str, int]) -> dict[str, int]:
    """Return new balances (nano-tokens) after adding ``changes``; accounts not named keep theirs."""
    updated = dict(balances)
    for account, change in changes.items():
        updated[account] = updated.get(account, 0) + change
    return updated
