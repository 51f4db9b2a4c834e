"""Facilitator rotation: weights, limits, experience, unavailable days, who assigned.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("weight", sa.Float(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("max_per_quarter", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("led_before", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("facilitators_by", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("rotation_note", sa.Text(), nullable=True))
    op.create_table(
        "unavailability",
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_unavailability_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", "day", name=op.f("pk_unavailability")),
    )


def downgrade() -> None:
    op.drop_table("unavailability")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("rotation_note")
        batch_op.drop_column("facilitators_by")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("led_before")
        batch_op.drop_column("max_per_quarter")
        batch_op.drop_column("weight")
