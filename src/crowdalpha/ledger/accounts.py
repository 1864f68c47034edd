"""Ledger accounts: what kinds exist, how they are named, and which may hold a negative balance.

An account is named by a string: the system accounts ``supply`` (the issuer; its balance is minus
everything ever minted), ``treasury`` (pays payouts and grants) and ``burn`` (the sink of burned
tokens), and the per-owner accounts ``wallet:<account id>``, ``stake:<model id>`` (the stake at
risk) and ``releasing:<model id>`` (stake waiting for its release; it can still burn but earns
nothing).
"""

from __future__ import annotations

from enum import StrEnum


class AccountKind(StrEnum):
    """The kind of a ledger account."""

    SUPPLY = "supply"
    TREASURY = "treasury"
    BURN = "burn"
    WALLET = "wallet"
    STAKE = "stake"
    RELEASING = "releasing"


SUPPLY = AccountKind.SUPPLY.value
TREASURY = AccountKind.TREASURY.value
BURN = AccountKind.BURN.value
SYSTEM_KINDS = (AccountKind.SUPPLY, AccountKind.TREASURY, AccountKind.BURN)
OWNED_KINDS = (AccountKind.WALLET, AccountKind.STAKE, AccountKind.RELEASING)


class AccountNameError(ValueError):
    """A string is not a ledger account name."""


def account_name(kind: AccountKind, owner: str | None = None) -> str:
    """Return the name of the account of ``kind`` (owned kinds need the owner's id)."""
    if kind in SYSTEM_KINDS:
        if owner is not None:
            raise AccountNameError(f"the {kind.value} account has no owner; got {owner!r}")
        return kind.value
    if not owner:
        raise AccountNameError(f"a {kind.value} account needs its owner's id")
    return f"{kind.value}:{owner}"


def wallet_account(account_id: str) -> str:
    """Return the name of a user's wallet account."""
    return account_name(AccountKind.WALLET, account_id)


def stake_account(model_id: str) -> str:
    """Return the name of a model's stake (at risk) account."""
    return account_name(AccountKind.STAKE, model_id)


def releasing_account(model_id: str) -> str:
    """Return the name of a model's account of stake pending release."""
    return account_name(AccountKind.RELEASING, model_id)


def parse_account(name: str) -> tuple[AccountKind, str | None]:
    """Return ``(kind, owner id or None)`` of an account name; AccountNameError if it is not one."""
    kind_text, colon, owner = name.partition(":")
    try:
        kind = AccountKind(kind_text)
    except ValueError:
        known = ", ".join(kind.value for kind in AccountKind)
        raise AccountNameError(f"unknown account kind in {name!r}; the kinds are {known}") from None
    if (kind in SYSTEM_KINDS) == bool(colon) or (colon and not owner):
        raise AccountNameError(f"{name!r} is not an account name such as 'treasury' or 'wallet:<id>'")
    return kind, owner or None


def may_go_negative(kind: AccountKind) -> bool:
    """Return True only for the supply account, whose balance is minus everything minted."""
    return kind is AccountKind.SUPPLY
