"""Enqueue after commit: the workers are nudged by what a transaction wrote, not by guesswork."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from sqlalchemy.engine import Connection

from dropin.config import Settings
from dropin.domain.states import MessageKind
from dropin.store.db import Database
from dropin.store.uow import owe
from tests.helpers import Api
from tests.workers.test_delivery import circle

NOW = datetime(2028, 1, 1, tzinfo=UTC)


async def test_the_database_reports_the_outbox_rows_each_commit_wrote(db: Database) -> None:
    reports: list[int] = []
    db.on_outbox_rows = reports.append

    def two(conn: Connection) -> None:
        owe(conn, MessageKind.ORGANIZER_ALERT, NOW)
        owe(conn, MessageKind.ORGANIZER_ALERT, NOW)

    def none(conn: Connection) -> None:
        pass

    def fails(conn: Connection) -> None:
        owe(conn, MessageKind.ORGANIZER_ALERT, NOW)
        raise RuntimeError("rolled back")

    await db.run_write(two)
    await db.run_write(none)
    with pytest.raises(RuntimeError):
        await db.run_write(fails)
    async with db.write() as conn:
        await conn.run_sync(two)
    async with db.write() as conn:
        pass
    # Rolled back: nothing was written, so nothing is reported (and the count does not leak
    # into the connection's next transaction).
    assert reports == [2, 2]


async def test_a_booking_nudges_the_workers_and_a_write_without_mail_does_not(
    live: Settings, db: Database
) -> None:
    assert live.redis_url
    async with Api.start(live, db) as api:
        c = await circle(api, capacity=1)
        nudger = api.last_state.nudger
        before = nudger.nudges
        await api.ok("PATCH", f"/api/v1/groups/{c['group']['id']}", json={"name": "Renamed"})
        assert nudger.nudges == before  # a successful POST/PATCH that owes no mail
        await api.book(c["march"]["id"], c["ann"]["id"])
        assert nudger.nudges == before + 1
        # The nudge becomes one sweep job in Redis.
        pool = await create_pool(RedisSettings.from_dsn(live.redis_url))
        try:
            for _ in range(100):
                queued = await pool.queued_jobs()
                if any(j.function == "sweep_outbox" for j in queued):
                    break
                await asyncio.sleep(0.02)
            assert any(j.function == "sweep_outbox" for j in await pool.queued_jobs())
        finally:
            await pool.aclose()
        # A refused booking (already booked) commits nothing and nudges nothing.
        await api.book(c["march"]["id"], c["ann"]["id"], status=409)
        assert nudger.nudges == before + 1
