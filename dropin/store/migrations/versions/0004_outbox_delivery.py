"""Outbox delivery: backoff, claims by workers, idempotent scheduled messages.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("dedup_key", sa.String(length=120), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_outbox_dedup_key"), ["dedup_key"])
        batch_op.create_index("ix_outbox_pair", ["session_id", "member_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pair")
        batch_op.drop_constraint(batch_op.f("uq_outbox_dedup_key"), type_="unique")
        batch_op.drop_column("dedup_key")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("next_attempt_at")
