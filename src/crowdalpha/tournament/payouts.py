"""Payout rules (reference §3.6): token units, the payout factor, gates and per-model payouts.

Money is integer nano-tokens (1 token = 10⁹ nano-tokens, DESIGN "ledger amounts"); configs state
token amounts as :class:`~decimal.Decimal` whole tokens and :func:`tokens_to_nano` converts them
exactly. Nothing here touches the store or the clock.
"""

from __future__ import annotations

from decimal import Decimal

NANO_PER_TOKEN = 10**9
"""Nano-tokens in one token: the ledger's integer base unit."""


class PayoutError(ValueError):
    """Payout inputs broke a rule; the message names the rule and the offending input."""


def tokens_to_nano(amount: Decimal) -> int:
    """Return a token amount as an exact integer number of nano-tokens; raise PayoutError if inexact."""
    nano = Decimal(amount) * NANO_PER_TOKEN
    if not nano.is_finite() or nano != nano.to_integral_value():
        raise PayoutError(
            f"token amount {amount} is not a whole number of nano-tokens (rule: at most 9 decimal places)"
        )
    return int(nano)
