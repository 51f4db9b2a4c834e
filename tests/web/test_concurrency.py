"""Capacity holds under concurrent requests across several real server processes."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from dropin.services import groups, keys, series, sessions
from dropin.store.db import Database
from dropin.store.tables import bookings, outbox
from dropin.store.tables import sessions as sessions_table
from tests.conftest import SECRET
from tests.servers import serve

pytestmark = pytest.mark.asyncio

REQUESTS = 200
CAPACITY = 10
PROCESSES = 3


async def _setup(db: Database, people: int) -> tuple[str, str, list[str]]:
    now = datetime.now(UTC)
    key = await keys.create_key(db, "load", now=now)
    group = await groups.create_group(db, name="Load", timezone="Europe/London", now=now)
    added = await groups.add_members(
        db,
        group.id,
        [groups.NewMember(f"P{i}", f"p{i}@example.org") for i in range(people)],
        now=now,
    )
    local = (now + timedelta(days=3)).replace(tzinfo=None, microsecond=0)
    await series.create_series(
        db,
        group.id,
        series.SeriesInput("Load", "FREQ=DAILY;COUNT=1", local, 60, CAPACITY),
        now=now,
        horizon_days=30,
    )
    [session] = await sessions.list_sessions(
        db, group.id, start=now, end=now + timedelta(days=10), now=now
    )
    return key.key, session.id, [m.id for m in added]


async def _invariants(db: Database, session_id: str) -> tuple[int, int]:
    async with db.read() as conn:
        row = (
            await conn.execute(select(sessions_table).where(sessions_table.c.id == session_id))
        ).one()
        counts = dict(
            (
                await conn.execute(
                    select(bookings.c.status, func.count())
                    .where(bookings.c.session_id == session_id)
                    .group_by(bookings.c.status)
                )
            ).all()
        )
        seqs = (
            (
                await conn.execute(
                    select(bookings.c.waitlist_seq).where(
                        bookings.c.session_id == session_id, bookings.c.status == "waitlisted"
                    )
                )
            )
            .scalars()
            .all()
        )
    # The denormalized counts agree with the rows, and nobody shares a waitlist place.
    assert row.confirmed_count == counts.get("confirmed", 0)
    assert row.waitlist_count == counts.get("waitlisted", 0)
    assert len(set(seqs)) == len(seqs)
    return row.confirmed_count, row.waitlist_count


async def test_no_overbooking_across_processes(database_url: str) -> None:
    db = Database(database_url)
    try:
        key, session_id, member_ids = await _setup(db, REQUESTS + 40)
        env = {"DROPIN_DATABASE_URL": database_url, "DROPIN_SECRET_KEY": SECRET}
        with serve(env, processes=PROCESSES) as urls:
            limits = httpx.Limits(max_connections=REQUESTS)
            async with httpx.AsyncClient(
                headers={"Authorization": f"Bearer {key}"}, timeout=60, limits=limits
            ) as client:

                async def book(i: int, member_id: str) -> httpx.Response:
                    url = f"{urls[i % len(urls)]}/api/v1/sessions/{session_id}/bookings"
                    return await client.post(url, json={"member_id": member_id})

                responses = await asyncio.gather(
                    *(book(i, m) for i, m in enumerate(member_ids[:REQUESTS]))
                )
                assert Counter(r.status_code for r in responses) == {201: REQUESTS}
                statuses = Counter(r.json()["status"] for r in responses)
                assert statuses == {"confirmed": CAPACITY, "waitlisted": REQUESTS - CAPACITY}
                positions = sorted(
                    r.json()["waitlist_position"]
                    for r in responses
                    if r.json()["status"] == "waitlisted"
                )
                assert positions == list(range(1, REQUESTS - CAPACITY + 1))
                assert await _invariants(db, session_id) == (CAPACITY, REQUESTS - CAPACITY)

                # Now cancellations (each promoting someone) race new bookings.
                confirmed = [r.json()["id"] for r in responses if r.json()["status"] == "confirmed"]

                async def cancel(i: int, booking_id: str) -> httpx.Response:
                    return await client.delete(
                        f"{urls[i % len(urls)]}/api/v1/bookings/{booking_id}"
                    )

                mixed = await asyncio.gather(
                    *(cancel(i, b) for i, b in enumerate(confirmed[:5])),
                    *(book(i, m) for i, m in enumerate(member_ids[REQUESTS:])),
                )
                assert all(r.status_code in (200, 201) for r in mixed), [
                    r.text for r in mixed if r.status_code >= 300
                ]
                promoted = [p for r in mixed[:5] for p in r.json()["promoted_booking_ids"]]
                assert len(promoted) == len(set(promoted)) == 5
        assert await _invariants(db, session_id) == (CAPACITY, REQUESTS - CAPACITY + 40 - 5)
        async with db.read() as conn:
            owed = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
        # Every accepted change owes exactly one message: 240 bookings, 5 cancels, 5 promotions.
        assert owed == REQUESTS + 40 + 5 + 5
    finally:
        await db.dispose()


async def test_same_member_racing_itself(database_url: str) -> None:
    """A double (or twentyfold) click books once, also when re-booking after a cancel."""
    db = Database(database_url)
    try:
        key, session_id, member_ids = await _setup(db, 2)
        env = {"DROPIN_DATABASE_URL": database_url, "DROPIN_SECRET_KEY": SECRET}
        with serve(env, processes=2) as urls:
            async with httpx.AsyncClient(
                headers={"Authorization": f"Bearer {key}"}, timeout=60
            ) as client:

                async def book(i: int) -> httpx.Response:
                    return await client.post(
                        f"{urls[i % 2]}/api/v1/sessions/{session_id}/bookings",
                        json={"member_id": member_ids[0]},
                    )

                first = await asyncio.gather(*(book(i) for i in range(20)))
                assert Counter(r.status_code for r in first) == {201: 1, 409: 19}
                assert {r.json()["error"] for r in first if r.status_code == 409} == {
                    "already_booked"
                }
                booking = next(r.json() for r in first if r.status_code == 201)
                assert await _invariants(db, session_id) == (1, 0)
                gone = await client.delete(f"{urls[0]}/api/v1/bookings/{booking['id']}")
                assert gone.status_code == 200
                again = await asyncio.gather(*(book(i) for i in range(20)))
                assert Counter(r.status_code for r in again) == {201: 1, 409: 19}
                assert await _invariants(db, session_id) == (1, 0)
    finally:
        await db.dispose()
