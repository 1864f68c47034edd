"""Market store and daily scores: market ingests, rounds' private live data, score days, submission scores.

Revision ID: 0003_scores
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_scores"
down_revision: str | None = "0002_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column:
    """Return a timezone-aware timestamp column (UTC)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _blob_columns() -> list[sa.Column]:
    """Return the columns that locate a blob: key, size in bytes, SHA-256."""
    return [
        sa.Column("blob_key", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
    ]


def upgrade() -> None:
    """Create the market-store and scoring tables."""
    op.create_table(
        "market_ingests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_date", sa.Date(), nullable=False),
        sa.Column("last_date", sa.Date(), nullable=False),
        sa.Column("dates", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("assets", sa.Integer(), nullable=False),
        sa.Column("columns", sa.JSON(), nullable=False),
        *_blob_columns(),
        _timestamp("ingested_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_ingests")),
        sa.UniqueConstraint("last_date", name=op.f("uq_market_ingests_last_date")),
    )
    op.create_table(
        "round_live_data",
        sa.Column("round_id", sa.String(length=36), nullable=False),
        sa.Column("live_date", sa.Date(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        *_blob_columns(),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_round_live_data_round_id_rounds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("round_id", name=op.f("pk_round_live_data")),
    )
    op.create_table(
        "round_score_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("market_date", sa.Date(), nullable=False),
        sa.Column("submissions", sa.Integer(), nullable=False),
        _timestamp("scored_at"),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_round_score_days_round_id_rounds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_score_days")),
        sa.UniqueConstraint("round_id", "day", name=op.f("uq_round_score_days_round_id_day")),
    )
    op.create_table(
        "submission_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("round_id", sa.String(length=36), nullable=False),
        sa.Column("score", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("percentile", sa.Double(), nullable=True),
        _timestamp("scored_at"),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_submission_scores_round_id_rounds"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_submission_scores_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_scores")),
        sa.UniqueConstraint(
            "submission_id", "score", "day", name=op.f("uq_submission_scores_submission_id_score_day")
        ),
    )
    op.create_index(
        op.f("ix_submission_scores_round_id_score_day"), "submission_scores", ["round_id", "score", "day"]
    )


def downgrade() -> None:
    """Drop the market-store and scoring tables."""
    op.drop_index(op.f("ix_submission_scores_round_id_score_day"), table_name="submission_scores")
    op.drop_table("submission_scores")
    op.drop_table("round_score_days")
    op.drop_table("round_live_data")
    op.drop_table("market_ingests")
