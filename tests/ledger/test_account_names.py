"""Ledger account names: system accounts have no owner, owned accounts name theirs."""

from __future__ import annotations

import pytest

from crowdalpha.ledger import (
    AccountKind,
    AccountNameError,
    account_name,
    may_go_negative,
    parse_account,
    releasing_account,
    stake_account,
    wallet_account,
)


def test_names_round_trip_through_parse() -> None:
    assert parse_account(wallet_account("a1")) == (AccountKind.WALLET, "a1")
    assert parse_account(stake_account("m1")) == (AccountKind.STAKE, "m1")
    assert parse_account(releasing_account("m1")) == (AccountKind.RELEASING, "m1")
    assert parse_account("treasury") == (AccountKind.TREASURY, None)
    assert account_name(AccountKind.BURN) == "burn"


@pytest.mark.parametrize("name", ["vault", "wallet", "wallet:", "treasury:x", "stake"])
def test_malformed_names_are_refused(name: str) -> None:
    with pytest.raises(AccountNameError):
        parse_account(name)


def test_owned_accounts_need_an_owner_and_system_accounts_refuse_one() -> None:
    with pytest.raises(AccountNameError, match="a wallet account needs its owner's id"):
        account_name(AccountKind.WALLET)
    with pytest.raises(AccountNameError, match="the burn account has no owner"):
        account_name(AccountKind.BURN, "x")


def test_only_the_supply_may_go_negative() -> None:
    assert [kind for kind in AccountKind if may_go_negative(kind)] == [AccountKind.SUPPLY]
