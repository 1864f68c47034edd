"""``crowdalpha model …``: create a participant's model in a tournament, list an account's models."""

from __future__ import annotations

from pathlib import Path

import typer

from crowdalpha.commands._operator import HOME_OPTION, JSON_OPTION, emit, home_context, operator_errors
from crowdalpha.service import create_model, list_models

model_app = typer.Typer(help="Participants' models.", no_args_is_help=True)


@model_app.command("create")
def model_create(
    name: str = typer.Argument(..., help="The model's name, unique within the tournament."),
    account: str = typer.Option(..., "--account", help="Username of the owning account."),
    tournament: str = typer.Option("classic", "--tournament", help="classic, signals, crypto (or an id)."),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a model for an account in a tournament and print its id."""
    with operator_errors(), home_context(home) as ctx:
        model = create_model(ctx, account, tournament, name)
    emit(
        {"id": model.id, "name": model.name, "tournament": model.tournament_id, "account": account},
        as_json,
        f"model {model.name} ({model.id}) created for {account} in tournament {model.tournament_id}",
    )


@model_app.command("list")
def model_list(
    account: str = typer.Option(..., "--account", help="Username of the owning account."),
    tournament: str | None = typer.Option(None, "--tournament", help="Only this tournament."),
    home: Path | None = HOME_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List an account's models."""
    with operator_errors(), home_context(home) as ctx:
        models = list_models(ctx, account, tournament)
    rows = [{"id": model.id, "name": model.name, "tournament": model.tournament_id} for model in models]
    emit(
        rows,
        as_json,
        "\n".join(f"{row['tournament']}\t{row['name']}\t{row['id']}" for row in rows) or "no models",
    )
