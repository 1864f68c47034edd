"""The token ledger's rules: accounts, double-entry entries of integer nano-tokens, the cap, invariants.

Pure: no I/O, no database, no clock. The store persists entries and cached balances; the service
runs each operation (grant, stake change, payout, …) in one transaction with its idempotency key.
"""

from crowdalpha.ledger.accounts import (
    BURN,
    SUPPLY,
    TREASURY,
    AccountKind,
    AccountNameError,
    account_name,
    may_go_negative,
    parse_account,
    releasing_account,
    stake_account,
    wallet_account,
)
from crowdalpha.ledger.amounts import (
    DEFAULT_CAP_NANO,
    DEFAULT_CAP_TOKENS,
    NANO_PER_TOKEN,
    AmountError,
    format_tokens,
    parse_tokens,
)
from crowdalpha.ledger.entries import Entry, EntryError, apply_postings, postings, transaction_imbalance
from crowdalpha.ledger.invariants import (
    LedgerBreak,
    RawEntry,
    SupplyTotals,
    derived_balances,
    find_breaks,
    supply_totals,
)
from crowdalpha.ledger.rules import (
    LedgerRejection,
    allocate_release_burn,
    buyback_entries,
    genesis_entries,
    grant_entries,
    minted,
    payout_entries,
    release_entries,
    release_request_entries,
    require_funds,
    require_positive,
    stake_increase_entries,
)

__all__ = [
    "BURN",
    "DEFAULT_CAP_NANO",
    "DEFAULT_CAP_TOKENS",
    "NANO_PER_TOKEN",
    "SUPPLY",
    "TREASURY",
    "AccountKind",
    "AccountNameError",
    "AmountError",
    "Entry",
    "EntryError",
    "LedgerBreak",
    "LedgerRejection",
    "RawEntry",
    "SupplyTotals",
    "account_name",
    "allocate_release_burn",
    "apply_postings",
    "buyback_entries",
    "derived_balances",
    "find_breaks",
    "format_tokens",
    "genesis_entries",
    "grant_entries",
    "may_go_negative",
    "minted",
    "parse_account",
    "parse_tokens",
    "payout_entries",
    "postings",
    "release_entries",
    "release_request_entries",
    "releasing_account",
    "require_funds",
    "require_positive",
    "stake_account",
    "stake_increase_entries",
    "supply_totals",
    "transaction_imbalance",
    "wallet_account",
]
