"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from dropin.store.db import Database
from dropin.store.tables import metadata


def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn)
        return list(compare_metadata(context, metadata))

    async def run() -> list[object]:
        db = Database(database_url)
        try:
            async with db.read() as conn:
                return await conn.run_sync(diff)
        finally:
            await db.dispose()

    assert asyncio.run(run()) == []


def test_keys_made_before_accounts_keep_working_as_an_admin(tmp_path: Path) -> None:
    """Migration 0008 gives every existing key one admin account: nothing in use stops."""
    from datetime import UTC, datetime

    from sqlalchemy import create_engine, text

    from dropin.store.migrate import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0007")
    sync = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with sync.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_keys (id, name, key_hash, created_at) "
                "VALUES ('k1', 'ops', 'h1', :now), ('k2', 'script', 'h2', :now)"
            ),
            {"now": datetime.now(UTC).replace(tzinfo=None)},
        )
    upgrade(url)
    with sync.connect() as conn:
        [admin] = conn.execute(text("SELECT id, email, role FROM accounts")).all()
        owners = conn.execute(text("SELECT DISTINCT account_id FROM api_keys")).scalars().all()
    sync.dispose()
    assert (admin.email, admin.role) == ("admin@dropin.invalid", "admin")
    assert owners == [admin.id]


def test_no_account_is_made_where_there_were_no_keys(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from dropin.store.migrate import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    upgrade(url)
    sync = create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with sync.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM accounts")).scalar_one() == 0
    sync.dispose()
