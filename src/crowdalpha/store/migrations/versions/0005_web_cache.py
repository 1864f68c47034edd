"""Web cache: meta_model_scores (the meta model's daily CORR) and leaderboard_snapshots (computed tables).

Revision ID: 0005_web_cache
Revises: 0004_web
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_web_cache"
down_revision: str | None = "0004_web"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the meta_model_scores and leaderboard_snapshots tables."""
    op.create_table(
        "meta_model_scores",
        sa.Column("round_id", sa.String(length=36), nullable=False),
        sa.Column("score", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_meta_model_scores_round_id_rounds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("round_id", "score", "day", name=op.f("pk_meta_model_scores")),
    )
    op.create_table(
        "leaderboard_snapshots",
        sa.Column("tournament_id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("valid_through", sa.Date(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("table_parquet", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tournament_id"],
            ["tournaments.id"],
            name=op.f("fk_leaderboard_snapshots_tournament_id_tournaments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tournament_id", "entity", name=op.f("pk_leaderboard_snapshots")),
    )


def downgrade() -> None:
    """Drop the leaderboard_snapshots and meta_model_scores tables."""
    op.drop_table("leaderboard_snapshots")
    op.drop_table("meta_model_scores")
