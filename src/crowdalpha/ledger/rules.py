"""The ledger's rules as pure functions: each operation's entries from the balances it reads, or a rejection.

Balances are plain ``{account name: nano-tokens}`` mappings (a missing account holds 0). Every
function returns the entries to write, never writes them, and raises :class:`LedgerRejection`
naming the broken rule when the operation may not happen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from crowdalpha.ledger.accounts import BURN, SUPPLY, TREASURY
from crowdalpha.ledger.amounts import format_tokens
from crowdalpha.ledger.entries import Entry


class LedgerRejection(Exception):
    """An operation breaks a ledger rule; ``rule`` is a stable code, the message ``<rule>: <detail>``."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        self.detail = detail
        super().__init__(f"{rule}: {detail}")


def require_positive(amount: int, what: str = "amount") -> None:
    """Refuse an amount that is not a positive integer of nano-tokens."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise LedgerRejection("invalid_amount", f"{what} must be a positive integer of nano; got {amount!r}")


def require_funds(balances: Mapping[str, int], account: str, amount: int, rule: str) -> None:
    """Refuse moving ``amount`` out of ``account`` if that would leave it below zero."""
    held = balances.get(account, 0)
    if held < amount:
        raise LedgerRejection(
            rule, f"{account} holds {format_tokens(held)} tokens, less than {format_tokens(amount)}"
        )


def minted(balances: Mapping[str, int]) -> int:
    """Return the nano-tokens ever minted (minus the supply account's balance)."""
    return -balances.get(SUPPLY, 0)


def genesis_entries(balances: Mapping[str, int], amount: int, cap: int) -> list[Entry]:
    """Return the genesis mint (supply → treasury); only once, and never past the cap."""
    require_positive(amount)
    require_positive(cap, "the supply cap")
    if minted(balances) > 0:
        raise LedgerRejection("genesis_done", "the genesis mint happened already; tokens are minted once")
    if amount > cap:
        raise LedgerRejection(
            "over_cap", f"minting {format_tokens(amount)} tokens exceeds the cap of {format_tokens(cap)}"
        )
    return [Entry(SUPPLY, TREASURY, amount, "genesis")]


def grant_entries(balances: Mapping[str, int], wallet: str, amount: int) -> list[Entry]:
    """Return a grant from the treasury to a wallet."""
    require_positive(amount)
    require_funds(balances, TREASURY, amount, "treasury_insufficient")
    return [Entry(TREASURY, wallet, amount, "grant")]


def buyback_entries(balances: Mapping[str, int], amount: int) -> list[Entry]:
    """Return a buyback: burned tokens returned to the treasury (never more than were burned)."""
    require_positive(amount)
    require_funds(balances, BURN, amount, "buyback_exceeds_burned")
    return [Entry(BURN, TREASURY, amount, "buyback")]


def stake_increase_entries(balances: Mapping[str, int], wallet: str, stake: str, amount: int) -> list[Entry]:
    """Return a stake increase: from the owner's wallet to the model's stake, at once."""
    require_positive(amount)
    require_funds(balances, wallet, amount, "insufficient_wallet")
    return [Entry(wallet, stake, amount, "stake_increase")]


def release_request_entries(
    balances: Mapping[str, int], stake: str, releasing: str, amount: int | None
) -> list[Entry]:
    """Return a release request (``amount`` None drains): the stake moves aside, pending its release."""
    if amount is None:
        amount = balances.get(stake, 0)
        if amount <= 0:
            raise LedgerRejection("nothing_to_release", f"{stake} holds no stake to drain")
    require_positive(amount)
    require_funds(balances, stake, amount, "insufficient_stake")
    return [Entry(stake, releasing, amount, "release_request")]


def release_entries(releasing: str, wallet: str, amount: int) -> list[Entry]:
    """Return the completion of a release: what remains of it goes back to the owner's wallet."""
    return [Entry(releasing, wallet, amount, "release")] if amount > 0 else []


def payout_entries(balances: Mapping[str, int], stake: str, releasing: str, amount: int) -> list[Entry]:
    """Return a round's payout: positive from the treasury to the stake, negative burned.

    A burn takes the stake first, then stake pending release (which can still burn); a zero
    payout moves nothing.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise LedgerRejection("invalid_amount", f"a payout is an integer of nano-tokens; got {amount!r}")
    if amount > 0:
        require_funds(balances, TREASURY, amount, "treasury_insufficient")
        return [Entry(TREASURY, stake, amount, "payout")]
    burn = -amount
    at_stake, pending = balances.get(stake, 0), balances.get(releasing, 0)
    if burn > at_stake + pending:
        raise LedgerRejection(
            "insufficient_stake",
            f"burning {format_tokens(burn)} tokens exceeds the {format_tokens(at_stake + pending)}"
            f" held in {stake} and {releasing}",
        )
    from_stake = min(burn, at_stake)
    entries = [Entry(stake, BURN, from_stake, "burn")] if from_stake else []
    if burn > from_stake:
        entries.append(Entry(releasing, BURN, burn - from_stake, "burn"))
    return entries


def allocate_release_burn(pending: Sequence[tuple[int, int]], amount: int) -> list[tuple[int, int]]:
    """Return ``(release id, new remaining)`` after burning ``amount`` from pending releases, oldest first."""
    changed: list[tuple[int, int]] = []
    for release_id, remaining in pending:
        if amount <= 0:
            break
        taken = min(amount, remaining)
        if taken:
            changed.append((release_id, remaining - taken))
            amount -= taken
    if amount > 0:
        raise LedgerRejection("insufficient_stake", "the burn exceeds the stake pending release")
    return changed
