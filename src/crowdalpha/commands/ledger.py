"""``crowdalpha ledger …``: the operator's token commands — genesis mint, grants, buybacks, balances, check.

Amounts are decimal tokens (at most 9 decimals, e.g. ``12.5``); every movement carries an
idempotency key (``--key``; a fresh one is made and printed when omitted), so re-running a
command with the same key moves nothing twice and prints the first answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from crowdalpha.commands._operator import (
    HOME_OPTION,
    JSON_OPTION,
    UsageProblem,
    emit,
    home_context,
    operator_errors,
)
from crowdalpha.ledger import DEFAULT_CAP_TOKENS, AmountError, format_tokens, parse_tokens
from crowdalpha.service import LedgerReceipt, balances, buyback, check_ledger, grant, mint_genesis

ledger_app = typer.Typer(
    help="The token ledger: genesis mint, grants, buybacks, balances, check.", no_args_is_help=True
)

KEY_HELP = "Idempotency key: re-running with the same key moves nothing twice (default: a new key)."
KEY_OPTION: Any = typer.Option(None, "--key", help=KEY_HELP)


@contextmanager
def _amount_errors() -> Iterator[None]:
    try:
        yield
    except AmountError as error:
        raise UsageProblem(str(error)) from None


def _tokens(text: str, where: str) -> int:
    with _amount_errors():
        return parse_tokens(text, where=where)


def _key(key: str | None, operation: str) -> str:
    return key if key is not None else f"cli/{operation}/{uuid.uuid4()}"


def _receipt_data(receipt: LedgerReceipt) -> dict[str, Any]:
    return {
        "idempotency_key": receipt.idempotency_key,
        "operation": receipt.operation,
        "transaction_id": receipt.transaction_id,
        "replayed": receipt.replayed,
        "entries": [
            {
                "debit": entry.debit,
                "credit": entry.credit,
                "amount_nano": entry.amount_nano,
                "amount": format_tokens(entry.amount_nano),
                "reason": entry.reason,
            }
            for entry in receipt.entries
        ],
        "result": receipt.result,
    }


def _receipt_text(receipt: LedgerReceipt, what: str) -> str:
    replay = " (replayed: the key was used before; nothing moved again)" if receipt.replayed else ""
    return f"{what}: transaction {receipt.transaction_id}, key {receipt.idempotency_key}{replay}"


@ledger_app.command("mint")
def ledger_mint(
    amount: str | None = typer.Option(None, "--amount", help="Tokens to mint (default: the whole cap)."),
    cap: str = typer.Option(str(DEFAULT_CAP_TOKENS), "--cap", help="The supply cap in tokens."),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Mint the genesis supply into the treasury (once; running it again changes nothing)."""
    with operator_errors():
        cap_nano = _tokens(cap, "--cap")
        amount_nano = None if amount is None else _tokens(amount, "--amount")
        with home_context(home) as ctx:
            receipt = mint_genesis(ctx, amount_nano=amount_nano, cap_nano=cap_nano)
    minted = format_tokens(receipt.result["minted_nano"])
    emit(_receipt_data(receipt), as_json, _receipt_text(receipt, f"minted {minted} tokens into the treasury"))


@ledger_app.command("grant")
def ledger_grant(
    account: str = typer.Argument(..., help="Username whose wallet receives the tokens."),
    amount: str = typer.Argument(..., help="Tokens to grant, e.g. 12.5 (at most 9 decimals)."),
    key: str | None = KEY_OPTION,
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Move tokens from the treasury to an account's wallet."""
    with operator_errors():
        amount_nano = _tokens(amount, "AMOUNT")
        with home_context(home) as ctx:
            receipt = grant(ctx, account, amount_nano, idempotency_key=_key(key, "grant"))
    text = _receipt_text(receipt, f"granted {format_tokens(amount_nano)} tokens to {account}")
    emit(_receipt_data(receipt), as_json, text)


@ledger_app.command("buyback")
def ledger_buyback(
    amount: str = typer.Argument(..., help="Burned tokens to return to the treasury."),
    key: str | None = KEY_OPTION,
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Return burned tokens to the treasury, as Numerai's buybacks refill its treasury."""
    with operator_errors():
        amount_nano = _tokens(amount, "AMOUNT")
        with home_context(home) as ctx:
            receipt = buyback(ctx, amount_nano, idempotency_key=_key(key, "buyback"))
    text = _receipt_text(receipt, f"returned {format_tokens(amount_nano)} tokens to the treasury")
    emit(_receipt_data(receipt), as_json, text)


@ledger_app.command("balance")
def ledger_balance(
    account: str | None = typer.Argument(
        None, help="A username: its wallet and stakes (default: every account)."
    ),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show ledger balances: every account, or one user's wallet and model stakes."""
    with operator_errors(), home_context(home) as ctx:
        rows = balances(ctx, account)
    emit(rows, as_json, "\n".join(f"{row.name}\t{row.balance}" for row in rows) or "no ledger accounts yet")


@ledger_app.command("check")
def ledger_check(home: Path | None = HOME_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Verify every ledger invariant; exit 1 if any is broken."""
    with operator_errors(), home_context(home) as ctx:
        report = check_ledger(ctx)
    totals = report.totals
    lines = [
        f"ledger {'ok' if report.ok else 'BROKEN'}:"
        f" {report.transactions} transactions, {report.entries} entries",
        f"  cap {format_tokens(totals.cap)}, minted {format_tokens(totals.minted)},"
        f" circulating {format_tokens(totals.circulating)}, burned {format_tokens(totals.burned)},"
        f" treasury {format_tokens(totals.treasury)}",
        *(f"  BROKEN {item.rule}: {item.detail}" for item in report.breaks),
    ]
    emit(report, as_json, "\n".join(lines))
    if not report.ok:
        raise typer.Exit(code=1)
