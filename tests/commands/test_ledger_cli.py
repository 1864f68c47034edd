"""``crowdalpha ledger …`` end to end in a temporary home: mint, grant, buyback, balance, check."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from crowdalpha.cli import app

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def test_an_operator_mints_grants_and_checks_the_ledger(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    run("init", "--home", home)
    run("account", "create", "alice", "--home", home)
    assert json.loads(run("ledger", "check", "--home", home, "--json"))["ok"] is True

    over = run("ledger", "mint", "--amount", "12", "--cap", "10", "--home", home, code=2)
    assert "error: over_cap: minting 12 tokens exceeds the cap of 10" in over
    minted = json.loads(run("ledger", "mint", "--home", home, "--json"))
    assert minted["entries"] == [
        {
            "debit": "supply",
            "credit": "treasury",
            "amount_nano": 11_000_000 * 10**9,
            "amount": "11000000",
            "reason": "genesis",
        }
    ]
    assert "replayed" in run("ledger", "mint", "--home", home)
    assert "error: genesis_done: " in run("ledger", "mint", "--amount", "5", "--home", home, code=2)

    granted = json.loads(run("ledger", "grant", "alice", "12.5", "--key", "g1", "--home", home, "--json"))
    assert not granted["replayed"] and granted["entries"][0]["amount"] == "12.5"
    again = json.loads(run("ledger", "grant", "alice", "12.5", "--key", "g1", "--home", home, "--json"))
    assert again["replayed"] and again["transaction_id"] == granted["transaction_id"]
    text = run("ledger", "grant", "alice", "0.000000001", "--home", home)
    assert text.startswith("granted 0.000000001 tokens to alice: transaction ")

    too_fine = run("ledger", "grant", "alice", "1.0000000001", "--home", home, code=2)
    assert (
        "error: invalid_amount: AMOUNT has more than 9 decimals (1 nano-token); got '1.0000000001'"
        in too_fine
    )
    assert "error: invalid_amount: AMOUNT must be a decimal number" in run(
        "ledger", "grant", "alice", "ten", "--home", home, code=2
    )
    assert "error: invalid_amount: AMOUNT must be positive; got '0'" in run(
        "ledger", "grant", "alice", "0", "--home", home, code=2
    )
    assert "error: not_found: no account named 'bob'" in run(
        "ledger", "grant", "bob", "1", "--home", home, code=2
    )
    assert "error: treasury_insufficient: " in run("ledger", "grant", "alice", "2e7", "--home", home, code=2)
    assert "error: buyback_exceeds_burned: burn holds 0 tokens" in run(
        "ledger", "buyback", "1", "--home", home, code=2
    )

    mine = json.loads(run("ledger", "balance", "alice", "--home", home, "--json"))
    assert [(row["kind"], row["balance"]) for row in mine] == [("wallet", "12.500000001")]
    assert "error: not_found: no account named 'bob'" in run(
        "ledger", "balance", "bob", "--home", home, code=2
    )
    everything = run("ledger", "balance", "--home", home)
    assert "treasury\t10999987.499999999" in everything and "supply\t-11000000" in everything

    report = json.loads(run("ledger", "check", "--home", home, "--json"))
    assert report["ok"] and report["totals"]["minted"] == 11_000_000 * 10**9
    # Each operation that reached the ledger is recorded once, applied or refused: 3 mints (refused over
    # the cap, applied, refused as a second genesis), 4 grants (2 applied, 2 refused), 1 refused buyback.
    assert report["transactions"] == 8


def test_ledger_check_exits_non_zero_on_a_broken_invariant(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run("init", "--home", str(home))
    run("ledger", "mint", "--home", str(home))
    database = next(home.rglob("*.db"))
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE ledger_accounts SET balance = balance - 1 WHERE name = 'treasury'")
    text = run("ledger", "check", "--home", str(home), code=1)
    assert "ledger BROKEN" in text
    assert "BROKEN cached_balance_mismatch: treasury caches" in text
