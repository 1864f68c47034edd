"""Token amounts: integers of nano-tokens (1 token = 10**9 nano), parsed from and shown as decimal text."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

NANO_PER_TOKEN = 10**9
TOKEN_DECIMALS = 9
DEFAULT_CAP_TOKENS = 11_000_000
DEFAULT_CAP_NANO = DEFAULT_CAP_TOKENS * NANO_PER_TOKEN


class AmountError(ValueError):
    """A token amount cannot be used; the message names the rule (``invalid_amount: …``)."""

    def __init__(self, detail: str) -> None:
        self.rule = "invalid_amount"
        self.detail = detail
        super().__init__(f"invalid_amount: {detail}")


def parse_tokens(text: str, *, allow_zero: bool = False, where: str = "amount") -> int:
    """Return the nano-tokens of a decimal token amount such as ``"12.5"``; at most 9 decimals, positive."""
    cleaned = str(text).strip().replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise AmountError(f"{where} must be a decimal number of tokens such as 12.5; got {text!r}") from None
    if not value.is_finite():
        raise AmountError(f"{where} must be a finite number of tokens; got {text!r}")
    scaled = value.scaleb(TOKEN_DECIMALS)
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{where} has more than {TOKEN_DECIMALS} decimals (1 nano-token); got {text!r}")
    nano = int(scaled)
    if nano < 0 or (nano == 0 and not allow_zero):
        raise AmountError(f"{where} must be {'zero or more' if allow_zero else 'positive'}; got {text!r}")
    return nano


def format_tokens(nano: int) -> str:
    """Return a nano-token integer as exact decimal token text without trailing zeros (``"12.5"``)."""
    sign = "-" if nano < 0 else ""
    whole, fraction = divmod(abs(int(nano)), NANO_PER_TOKEN)
    if fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{TOKEN_DECIMALS}d}".rstrip("0")
