"""Market stores per market: market_ingests.market (equity or crypto), unique per (market, last_date).

The Crypto tournament scores on a token market, not on the equity market Classic and Signals
use; each market has its own append-only series of ingests. Existing rows are the equity market.

Revision ID: 0005_season
Revises: 0004_web
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_season"
down_revision: str | None = "0005_web_cache"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the market column; the unique last date becomes unique per market."""
    with op.batch_alter_table("market_ingests") as batch:
        batch.add_column(sa.Column("market", sa.String(length=32), server_default="equity", nullable=False))
        batch.drop_constraint(op.f("uq_market_ingests_last_date"), type_="unique")
        batch.create_unique_constraint(op.f("uq_market_ingests_market_last_date"), ["market", "last_date"])


def downgrade() -> None:
    """Drop the market column (crypto rows first) and restore the unique last date."""
    op.execute("DELETE FROM market_ingests WHERE market <> 'equity'")
    with op.batch_alter_table("market_ingests") as batch:
        batch.drop_constraint(op.f("uq_market_ingests_market_last_date"), type_="unique")
        batch.create_unique_constraint(op.f("uq_market_ingests_last_date"), ["last_date"])
        batch.drop_column("market")
