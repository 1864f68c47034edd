"""``crowdalpha account …``: create participant accounts and their API keys."""

from __future__ import annotations

from pathlib import Path

import typer

from crowdalpha.commands._operator import HOME_OPTION, JSON_OPTION, emit, home_context, operator_errors
from crowdalpha.service import create_account
from crowdalpha.service.web_auth import check_password_rules, set_password

account_app = typer.Typer(help="Accounts and their API keys.", no_args_is_help=True)


@account_app.command("create")
def account_create(
    username: str = typer.Argument(..., help="The account's username (letters, digits, underscores)."),
    email: str | None = typer.Option(None, "--email", help="Contact e-mail address."),
    operator: bool = typer.Option(
        False, "--operator", help="Give the key the operator scope too (the operator REST API)."
    ),
    password: bool = typer.Option(
        False, "--password", help="Also set the web log-in password (asked for twice, never echoed)."
    ),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an account and print its API key pair — the secret is shown this once, never again."""
    with operator_errors():
        chosen = _ask_password() if password else None
        with home_context(home) as ctx:
            created = create_account(ctx, username, email, operator=operator)
            if chosen is not None:
                set_password(ctx, created.account, chosen)
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


def _ask_password() -> str:
    """Return a password typed twice at a hidden prompt, checked against the password rules."""
    chosen = typer.prompt("Web password", hide_input=True, confirmation_prompt=True, err=True)
    check_password_rules(chosen)
    return chosen


@account_app.command("password")
def account_password(
    username: str = typer.Argument(..., help="The account whose web log-in password to set."),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Set (or replace) an account's web log-in password; it is asked for twice and never echoed."""
    with operator_errors():
        chosen = _ask_password()
        with home_context(home) as ctx:
            set_password(ctx, username, chosen)
    emit({"username": username, "password_set": True}, as_json, f"web password of {username} set")
