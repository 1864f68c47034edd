"""``crowdalpha account …``: create participant accounts and their API keys."""

from __future__ import annotations

from pathlib import Path

import typer

from crowdalpha.commands._operator import HOME_OPTION, JSON_OPTION, emit, home_context, operator_errors
from crowdalpha.service import create_account

account_app = typer.Typer(help="Accounts and their API keys.", no_args_is_help=True)


@account_app.command("create")
def account_create(
    username: str = typer.Argument(..., help="The account's username (letters, digits, underscores)."),
    email: str | None = typer.Option(None, "--email", help="Contact e-mail address."),
    operator: bool = typer.Option(
        False, "--operator", help="Give the key the operator scope too (the operator REST API)."
    ),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an account and print its API key pair — the secret is shown this once, never again."""
    with operator_errors(), home_context(home) as ctx:
        created = create_account(ctx, username, email, operator=operator)
    emit(
        {
            "username": created.account.username,
            "public_id": created.public_id,
            "secret_key": created.secret_key,
        },
        as_json,
        f"account {created.account.username} created\n"
        f"public id:  {created.public_id}\n"
        f"secret key: {created.secret_key}\n"
        "The secret key is shown only now; store it safely"
        " (numerapi reads NUMERAI_PUBLIC_ID / NUMERAI_SECRET_KEY).",
    )
