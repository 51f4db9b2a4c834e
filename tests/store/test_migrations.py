"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import asyncio

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
