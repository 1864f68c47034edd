"""Round close and resolution: at-risk stakes snapshotted at close, payouts and the round's summary.

Revision ID: 0004_resolution
Revises: 0003_scores
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_resolution"
down_revision: str | None = "0003_scores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create round_stakes (one row per staked on-time submission) and round_resolutions."""
    op.create_table(
        "round_stakes",
        sa.Column("round_id", sa.String(length=36), nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("model_id", sa.String(length=36), nullable=False),
        sa.Column("at_risk_nano", sa.BigInteger(), nullable=False),
        sa.Column("payout_score", sa.Double(), nullable=True),
        sa.Column("payout_nano", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("at_risk_nano >= 0", name=op.f("ck_round_stakes_at_risk_not_negative")),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_round_stakes_round_id_rounds"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_round_stakes_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_round_stakes_model_id_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("round_id", "submission_id", name=op.f("pk_round_stakes")),
    )
    op.create_index(op.f("ix_round_stakes_model_id"), "round_stakes", ["model_id"])
    op.create_table(
        "round_resolutions",
        sa.Column("round_id", sa.String(length=36), nullable=False),
        sa.Column("total_at_risk_nano", sa.BigInteger(), nullable=False),
        sa.Column("payout_factor", sa.Double(), nullable=False),
        sa.Column("paid_nano", sa.BigInteger(), nullable=False),
        sa.Column("burned_nano", sa.BigInteger(), nullable=False),
        sa.Column("models", sa.Integer(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"], ["rounds.id"], name=op.f("fk_round_resolutions_round_id_rounds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("round_id", name=op.f("pk_round_resolutions")),
    )


def downgrade() -> None:
    """Drop the resolution tables."""
    op.drop_table("round_resolutions")
    op.drop_index(op.f("ix_round_stakes_model_id"), table_name="round_stakes")
    op.drop_table("round_stakes")
