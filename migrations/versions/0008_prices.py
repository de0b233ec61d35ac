"""prices: price_lists and source_prices

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "price_lists",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("model_count", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_lists")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_price_lists_content_hash")),
    )
    op.create_table(
        "source_prices",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("ok_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column(
            "confirmed_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "pending_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("pending_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["confirmed_id"],
            ["price_lists.id"],
            name=op.f("fk_source_prices_confirmed_id_price_lists"),
        ),
        sa.ForeignKeyConstraint(
            ["pending_id"], ["price_lists.id"], name=op.f("fk_source_prices_pending_id_price_lists")
        ),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_source_prices")),
    )


def downgrade() -> None:
    op.drop_table("source_prices")
    op.drop_table("price_lists")
