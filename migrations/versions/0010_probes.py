"""probes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "probe_state",
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=True),
        sa.Column("probed_at", sa.DateTime(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("pending", sa.String(length=16), nullable=True),
        sa.Column("pending_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("awaiting", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("token", "model", name=op.f("pk_probe_state")),
    )
    with op.batch_alter_table("probe_state", schema=None) as batch_op:
        batch_op.create_index(
            "ix_probe_state_source_awaiting", ["source", "awaiting"], unique=False
        )
        batch_op.create_index(
            "ix_probe_state_source_probed_at", ["source", "probed_at"], unique=False
        )
    op.create_table(
        "probe_sweeps",
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column(
            "snapshot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_probe_sweeps")),
    )
    op.create_table(
        "probes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(length=100), nullable=True),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probes")),
    )
    with op.batch_alter_table("probes", schema=None) as batch_op:
        batch_op.create_index("ix_probes_token_sent_at", ["token", "sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("probes", schema=None) as batch_op:
        batch_op.drop_index("ix_probes_token_sent_at")
    op.drop_table("probes")
    op.drop_table("probe_sweeps")
    with op.batch_alter_table("probe_state", schema=None) as batch_op:
        batch_op.drop_index("ix_probe_state_source_probed_at")
        batch_op.drop_index("ix_probe_state_source_awaiting")
    op.drop_table("probe_state")
