"""A closed, staked Classic round for the resolution tests: three on-time models, one late, stakes set."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd
from scoring_factories import EXTRA_DAYS, HISTORY_DAYS, Market
from service_factories import TUESDAY_OPEN, predictions_csv

from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.service import (
    Context,
    close_round,
    create_account,
    create_model,
    grant,
    increase_stake,
    ingest_market,
    mint_genesis,
    open_round,
    publish_dataset,
    score_day,
    submit_predictions,
)

STAKES = {"alice": 900, "bob": 300, "dave": 0}  # whole tokens staked before close


@dataclass(frozen=True)
class Staked:
    """A closed round: on-time submissions (username → (submission id, model id, predictions)), one late."""

    on_time: dict[str, tuple[str, str, pd.Series]]
    late: tuple[str, str, pd.Series]


def _submit(ctx: Context, name: str, ids: list[str], seed: int, stake: int) -> tuple[str, str, pd.Series]:
    create_account(ctx, name)
    model = create_model(ctx, name, "classic", f"{name}_model")
    grant(ctx, name, 1000 * NANO_PER_TOKEN, idempotency_key=f"grant/{name}")
    if stake:
        increase_stake(ctx, name, model.id, stake * NANO_PER_TOKEN, idempotency_key=f"stake/{name}")
    values = np.random.default_rng(seed).uniform(0.05, 0.95, len(ids)).round(6)
    receipt = submit_predictions(ctx, name, model.id, "p.csv", predictions_csv(ids, list(values)))
    return receipt.submission_id, model.id, pd.Series(values, index=pd.Index(ids, name="id"))


def make_staked(ctx: Context, market: Market) -> Staked:
    """Return a round with three staked-or-not on-time models and a staked late one, closed."""
    mint_genesis(ctx)
    publish_dataset(ctx, market.version_dir, "classic", private_dir=market.private_dir)
    ingest_market(ctx, market.days(0, HISTORY_DAYS))
    ctx.clock.set(TUESDAY_OPEN + timedelta(minutes=30))  # type: ignore[attr-defined]
    open_round(ctx, "classic")
    ids = sorted(pd.read_parquet(market.version_dir / "live.parquet").index.astype(str))
    on_time = {name: _submit(ctx, name, ids, seed, STAKES[name]) for seed, name in enumerate(STAKES)}
    ctx.clock.set(TUESDAY_OPEN + timedelta(hours=2))  # type: ignore[attr-defined]
    close_round(ctx, "classic")
    late = _submit(ctx, "carol", ids, 9, 500)
    return Staked(on_time, late)


def score_everything(ctx: Context, market: Market) -> None:
    ingest_market(ctx, market.days(HISTORY_DAYS, HISTORY_DAYS + EXTRA_DAYS))
    score_day(ctx, "classic")
