"""Retention: bookings and mail records of long-past sessions are deleted, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dropin.services import bookings, groups, series, sessions
from dropin.services.outbox.retention import purge
from dropin.store.db import Database
from dropin.store.tables import bookings as bookings_table
from dropin.store.tables import outbox as outbox_table
from dropin.store.tables import sessions as sessions_table

pytestmark = pytest.mark.asyncio


async def count(db: Database, table: object) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_purge_after_the_retention_period(db: Database) -> None:
    then = datetime(2027, 1, 1, tzinfo=UTC)
    g = await groups.create_group(db, name="G", timezone="UTC", now=then)
    [ann] = await groups.add_members(
        db, g.id, [groups.NewMember("Ann", "ann@example.org")], now=then
    )
    await series.create_series(
        db,
        g.id,
        series.SeriesInput("S", "FREQ=MONTHLY;COUNT=2", datetime(2027, 1, 10, 19), 60, 5),
        now=then,
        horizon_days=90,
    )
    early, late = await sessions.list_sessions(
        db, g.id, start=then, end=then + timedelta(days=90), now=then
    )
    await bookings.book_seat(db, early.id, ann.id, now=then)
    await bookings.book_seat(db, late.id, ann.id, now=then)
    async with db.write() as conn:  # as if both invites had gone out
        await conn.execute(outbox_table.update().values(status="sent"))
    # 180 days after the first session ended but not the second: only the first is purged.
    now = early.ends_at + timedelta(days=180, hours=1)
    assert now < late.ends_at + timedelta(days=180)
    purged = await purge(db, now=now, retention_days=180)
    assert (purged.bookings, purged.messages) == (1, 1)
    assert await count(db, bookings_table) == 1
    assert await count(db, outbox_table) == 1
    assert await count(db, sessions_table) == 2  # the sessions themselves stay
    assert (await purge(db, now=now, retention_days=180)).bookings == 0


async def test_members_idle_for_the_retention_period_are_erased(db: Database) -> None:
    from dropin.services import erasure
    from dropin.store.tables import members as members_table

    then = datetime(2027, 1, 1, tzinfo=UTC)
    g = await groups.create_group(db, name="G", timezone="UTC", now=then)
    ann, bea, fay = await groups.add_members(
        db,
        g.id,
        [
            groups.NewMember("Ann", "ann@example.org"),
            groups.NewMember("Bea", "bea@example.org"),
            groups.NewMember("Fay", "fay@example.org", "facilitator"),
        ],
        now=then,
    )
    await series.create_series(
        db,
        g.id,
        series.SeriesInput("S", "FREQ=MONTHLY;COUNT=12", datetime(2027, 1, 10, 19), 60, 5),
        now=then,
        horizon_days=400,
    )
    found = await sessions.list_sessions(
        db, g.id, start=then, end=then + timedelta(days=400), now=then
    )
    first, last = found[0], found[-1]
    await bookings.book_seat(db, first.id, ann.id, now=then)  # long ago
    await bookings.book_seat(db, last.id, bea.id, now=then)  # recent
    await sessions.set_facilitators(db, last.id, lead_member_id=fay.id, co_member_id=None, now=then)
    now = first.ends_at + timedelta(days=181)
    await purge(db, now=now, retention_days=180)  # Ann's old booking goes first
    assert await erasure.erase_inactive(db, now=now, retention_days=180) == 1
    async with db.read() as conn:
        left = set((await conn.execute(select(members_table.c.id))).scalars())
    # Ann had nothing left; Bea has a recent booking; Fay leads a recent session.
    assert left == {bea.id, fay.id}
    assert await erasure.erase_inactive(db, now=now, retention_days=180) == 0
