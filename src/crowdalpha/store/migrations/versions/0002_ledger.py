"""The token ledger: accounts with cached balances, immutable transactions (idempotency keys and
outcomes) and entries, stake releases.

Entries and transactions are append-only: a trigger refuses UPDATE and DELETE on both.

Revision ID: 0002_ledger
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_ledger"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_TABLES = ("ledger_transactions", "ledger_entries")
_PG_FUNCTION = "crowdalpha_ledger_append_only"


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column:
    """Return a timezone-aware timestamp column (UTC)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the ledger tables and their append-only triggers."""
    op.create_table(
        "ledger_accounts",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=True),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "kind IN ('supply', 'treasury', 'burn', 'wallet', 'stake', 'releasing')",
            name=op.f("ck_ledger_accounts_kind"),
        ),
        sa.CheckConstraint(
            "kind = 'supply' OR balance >= 0", name=op.f("ck_ledger_accounts_balance_not_negative")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ledger_accounts")),
    )
    op.create_index(op.f("ix_ledger_accounts_owner_id"), "ledger_accounts", ["owner_id"])
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("round_id", sa.String(length=36), nullable=True),
        sa.Column("model_id", sa.String(length=36), nullable=True),
        _timestamp("created_at"),
        sa.CheckConstraint("outcome IN ('applied', 'rejected')", name=op.f("ck_ledger_transactions_outcome")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_transactions_idempotency_key")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("debit_account", sa.String(length=64), nullable=False),
        sa.Column("credit_account", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("round_id", sa.String(length=36), nullable=True),
        sa.Column("model_id", sa.String(length=36), nullable=True),
        _timestamp("created_at"),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_entries_amount_positive")),
        sa.CheckConstraint("debit_account <> credit_account", name=op.f("ck_ledger_entries_two_accounts")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account"],
            ["ledger_accounts.name"],
            name=op.f("fk_ledger_entries_debit_account_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["credit_account"],
            ["ledger_accounts.name"],
            name=op.f("fk_ledger_entries_credit_account_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index(op.f("ix_ledger_entries_transaction_id"), "ledger_entries", ["transaction_id"])
    op.create_index(op.f("ix_ledger_entries_debit_account"), "ledger_entries", ["debit_account"])
    op.create_index(op.f("ix_ledger_entries_credit_account"), "ledger_entries", ["credit_account"])
    op.create_table(
        "ledger_releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=36), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("requested", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("drain", sa.Boolean(), nullable=False),
        sa.Column("due_round_id", sa.String(length=36), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        _timestamp("requested_at"),
        _timestamp("completed_at", nullable=True),
        sa.CheckConstraint("state IN ('pending', 'completed')", name=op.f("ck_ledger_releases_state")),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= requested", name=op.f("ck_ledger_releases_remaining_in_range")
        ),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_ledger_releases_model_id_models")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_releases_transaction_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["due_round_id"], ["rounds.id"], name=op.f("fk_ledger_releases_due_round_id_rounds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_releases")),
    )
    op.create_index(op.f("ix_ledger_releases_due_round_id"), "ledger_releases", ["due_round_id"])
    op.create_index(op.f("ix_ledger_releases_model_id_state"), "ledger_releases", ["model_id", "state"])
    _create_append_only_triggers()


def _create_append_only_triggers() -> None:
    """Refuse UPDATE and DELETE of ledger entries and transactions on either backend."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " RAISE EXCEPTION 'ledger rows of % are append-only', TG_TABLE_NAME; END $$"
        )
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION {_PG_FUNCTION}()"
            )
        return
    for table in APPEND_ONLY_TABLES:
        for action in ("update", "delete"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table}"
                f" BEGIN SELECT RAISE(ABORT, 'ledger rows of {table} are append-only'); END"
            )


def downgrade() -> None:
    """Drop the ledger tables (and with them their triggers)."""
    for table in ("ledger_releases", "ledger_entries", "ledger_transactions", "ledger_accounts"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {_PG_FUNCTION}()")
