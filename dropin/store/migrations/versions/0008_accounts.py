"""Accounts, group organizers, and API keys that act as an account.

Keys made before accounts existed keep working: they are given one admin account, made here
only if there are such keys, so nothing in use stops working.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The account that keys made before accounts act as.
LEGACY_ADMIN_EMAIL = "admin@dropin.invalid"


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("email", name="uq_accounts_email"),
    )
    op.create_table(
        "group_organizers",
        sa.Column("group_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_group_organizers_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name="fk_group_organizers_group_id_groups",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "account_id", name="pk_group_organizers"),
    )
    op.create_index("ix_group_organizers_account", "group_organizers", ["account_id"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("account_id", sa.String(length=32), nullable=True))
        batch.create_foreign_key(
            "fk_api_keys_account_id_accounts",
            "accounts",
            ["account_id"],
            ["id"],
            ondelete="CASCADE",
        )
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT count(*) FROM api_keys")).scalar_one():
        now = datetime.now(UTC).replace(tzinfo=None)
        admin = uuid.uuid4().hex
        conn.execute(
            sa.text(
                "INSERT INTO accounts (id, email, display_name, role, created_at, updated_at) "
                "VALUES (:id, :email, 'Administrator', 'admin', :now, :now)"
            ),
            {"id": admin, "email": LEGACY_ADMIN_EMAIL, "now": now},
        )
        conn.execute(sa.text("UPDATE api_keys SET account_id = :id"), {"id": admin})


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint("fk_api_keys_account_id_accounts", type_="foreignkey")
        batch.drop_column("account_id")
    op.drop_index("ix_group_organizers_account", table_name="group_organizers")
    op.drop_table("group_organizers")
    op.drop_table("accounts")
