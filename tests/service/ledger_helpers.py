"""Helpers for the ledger tests: token amounts, rounds and selected submissions stored directly."""

from __future__ import annotations

from datetime import timedelta

from crowdalpha.ledger import NANO_PER_TOKEN
from crowdalpha.service import Context, balances
from crowdalpha.store import RoundState, transaction


def tokens(amount: float | int) -> int:
    """Return ``amount`` tokens in nano-tokens (exact for the small decimals the tests use)."""
    return round(amount * NANO_PER_TOKEN)


def add_round(ctx: Context, number: int, state: RoundState = RoundState.OPEN, tournament_id: int = 8) -> str:
    """Store round ``number`` of a tournament in ``state`` and return its id."""
    start = ctx.now() + timedelta(days=7 * number)
    with transaction(ctx.engine) as uow:
        row = uow.rounds.create(
            tournament_id,
            number,
            open_time=start,
            close_time=start + timedelta(hours=1),
            resolve_time=start + timedelta(days=30),
            now=ctx.now(),
            state=state,
        )
        return row.id


def submit(ctx: Context, model_id: str, round_id: str) -> None:
    """Store a selected on-time submission of the model for the round (the model is active in it)."""
    with transaction(ctx.engine) as uow:
        uow.submissions.add_and_select(
            model_id,
            round_id,
            filename="predictions.csv",
            blob_key=f"submissions/{model_id}/{round_id}.csv",
            sha256="0" * 64,
            size_bytes=1,
            received_at=ctx.now(),
            status="on_time",
        )


def set_round_state(ctx: Context, round_id: str, state: RoundState) -> None:
    """Move a stored round to ``state``."""
    with transaction(ctx.engine) as uow:
        uow.rounds.get(round_id).state = state.value


def held(ctx: Context) -> dict[str, int]:
    """Return every ledger account's balance in nano."""
    return {row.name: row.balance_nano for row in balances(ctx)}
