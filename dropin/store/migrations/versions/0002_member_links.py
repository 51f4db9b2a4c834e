"""Member links (a per-member nonce for feed/page tokens), member time zone, booking revision.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("link_nonce", sa.String(length=32), nullable=True))
    conn = op.get_bind()
    members = sa.table("members", sa.column("id", sa.String), sa.column("link_nonce", sa.String))
    for (member_id,) in conn.execute(sa.select(members.c.id)).all():
        conn.execute(
            members.update()
            .where(members.c.id == member_id)
            .values(link_nonce=secrets.token_hex(16))
        )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.alter_column("link_nonce", existing_type=sa.String(length=32), nullable=False)
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("revision")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("link_nonce")
        batch_op.drop_column("timezone")
