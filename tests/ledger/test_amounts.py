"""Token amounts: decimal text in, integer nano-tokens out, exactly; never floats."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdalpha.ledger import NANO_PER_TOKEN, AmountError, format_tokens, parse_tokens


@pytest.mark.parametrize(
    ("text", "nano"),
    [
        ("1", NANO_PER_TOKEN),
        ("12.5", 12_500_000_000),
        ("0.000000001", 1),
        ("1.500000000000", 1_500_000_000),  # trailing zeros past 9 decimals are still exact
        ("11,000,000", 11_000_000 * NANO_PER_TOKEN),
        (" 3 ", 3 * NANO_PER_TOKEN),
        ("2e3", 2000 * NANO_PER_TOKEN),
    ],
)
def test_decimal_token_text_parses_to_exact_nano(text: str, nano: int) -> None:
    assert parse_tokens(text) == nano


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.0000000001", "amount has more than 9 decimals (1 nano-token); got '1.0000000001'"),
        ("ten", "amount must be a decimal number of tokens such as 12.5; got 'ten'"),
        ("NaN", "amount must be a finite number of tokens; got 'NaN'"),
        ("inf", "amount must be a finite number of tokens; got 'inf'"),
        ("0", "amount must be positive; got '0'"),
        ("-2", "amount must be positive; got '-2'"),
    ],
)
def test_bad_amounts_are_refused_naming_the_rule(text: str, message: str) -> None:
    with pytest.raises(AmountError) as raised:
        parse_tokens(text)
    assert str(raised.value) == f"invalid_amount: {message}"


def test_zero_is_allowed_only_when_asked_and_the_message_names_where() -> None:
    assert parse_tokens("0", allow_zero=True) == 0
    with pytest.raises(AmountError, match=r"^invalid_amount: --cap must be positive"):
        parse_tokens("0", where="--cap")


@pytest.mark.parametrize(
    ("nano", "text"), [(0, "0"), (1, "0.000000001"), (12_500_000_000, "12.5"), (-1_000_000_000, "-1")]
)
def test_nano_formats_as_exact_token_text(nano: int, text: str) -> None:
    assert format_tokens(nano) == text


@given(st.integers(min_value=1, max_value=11_000_000 * NANO_PER_TOKEN))
def test_formatting_then_parsing_returns_the_same_nano(nano: int) -> None:
    assert parse_tokens(format_tokens(nano)) == nano
