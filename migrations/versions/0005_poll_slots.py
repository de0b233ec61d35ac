"""poll slots

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "poll_slots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("slot", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("instance", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poll_slots")),
        sa.UniqueConstraint("token", "slot", name=op.f("uq_poll_slots_token")),
    )
    with op.batch_alter_table("poll_slots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_poll_slots_claimed_at"), ["claimed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("poll_slots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_poll_slots_claimed_at"))

    op.drop_table("poll_slots")
