"""token budget: budget_checks and token_budget

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budget_checks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("retry_at", sa.DateTime(), nullable=True),
        sa.Column("granted", sa.String(length=64), nullable=True),
        sa.Column("used", sa.String(length=64), nullable=True),
        sa.Column("remaining", sa.String(length=64), nullable=True),
        sa.Column("unlimited", sa.Boolean(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_checks")),
    )
    with op.batch_alter_table("budget_checks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_budget_checks_source_checked_at", ["source", "checked_at"], unique=False
        )
    op.create_table(
        "token_budget",
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("ok_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("granted", sa.String(length=64), nullable=True),
        sa.Column("used", sa.String(length=64), nullable=True),
        sa.Column("remaining", sa.String(length=64), nullable=True),
        sa.Column("unlimited", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("warned_expires_at", sa.DateTime(), nullable=True),
        sa.Column("expiry_warned", sa.Integer(), nullable=True),
        sa.Column("quota_warned", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_token_budget")),
    )


def downgrade() -> None:
    op.drop_table("token_budget")
    with op.batch_alter_table("budget_checks", schema=None) as batch_op:
        batch_op.drop_index("ix_budget_checks_source_checked_at")
    op.drop_table("budget_checks")
