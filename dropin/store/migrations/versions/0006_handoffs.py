"""Facilitator handoffs: step times, the organizer's alert address, swap requests.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STEPS = ("lead_notified_at", "lead_confirmed_at", "handed_over_at", "alerted_at")


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        for name in STEPS:
            batch_op.add_column(sa.Column(name, sa.DateTime(), nullable=True))
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("organizer_email", sa.String(length=254), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("other_member_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("other_member_id")
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_column("organizer_email")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        for name in reversed(STEPS):
            batch_op.drop_column(name)
