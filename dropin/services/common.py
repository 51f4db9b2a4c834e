"""Helpers shared by the use cases: ids, the outbox, lookups that raise NotFound."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.domain.states import MessageKind
from dropin.errors import NotFound
from dropin.store.tables import bookings, groups, members, outbox, sessions

# Everything someone can be told about: each kind of message the workers know how to write.
OUTBOX_KINDS = frozenset(MessageKind)


def new_id() -> str:
    """A random, unguessable 32-hex-character id."""
    return uuid.uuid4().hex


def outbox_insert(
    kind: str,
    now: datetime,
    *,
    session_id: str | None = None,
    member_id: str | None = None,
    booking_id: str | None = None,
    other_member_id: str | None = None,
) -> Insert:
    """The statement recording that a message is owed; run it in the change's transaction."""
    assert kind in OUTBOX_KINDS, kind
    return outbox.insert().values(
        kind=kind,
        session_id=session_id,
        member_id=member_id,
        booking_id=booking_id,
        other_member_id=other_member_id,
        status="pending",
        attempts=0,
        created_at=now,
    )


async def emit(conn: AsyncConnection, kind: str, now: datetime, **ids: str | None) -> None:
    """Record in the current transaction that a message is owed (the transactional outbox)."""
    await conn.execute(outbox_insert(kind, now, **ids))


async def notify_session(conn: AsyncConnection, row: Row[Any], kind: str, now: datetime) -> None:
    """Owe ``kind`` to everyone in session ``row``: active bookings and its facilitators."""
    booked = (
        await conn.execute(
            select(bookings.c.id, bookings.c.member_id).where(
                bookings.c.session_id == row.id, bookings.c.status != "cancelled"
            )
        )
    ).all()
    for b in booked:
        await emit(conn, kind, now, session_id=row.id, member_id=b.member_id, booking_id=b.id)
    for facilitator in sorted({row.lead_member_id, row.co_member_id} - {None}):
        await emit(conn, kind, now, session_id=row.id, member_id=facilitator)


async def group_row(conn: AsyncConnection, group_id: str) -> Row[Any]:
    row = (await conn.execute(select(groups).where(groups.c.id == group_id))).first()
    if row is None:
        raise NotFound("no such group", code="group_not_found")
    return row


async def member_row(conn: AsyncConnection, member_id: str) -> Row[Any]:
    row = (await conn.execute(select(members).where(members.c.id == member_id))).first()
    if row is None:
        raise NotFound("no such member", code="member_not_found")
    return row


async def session_row(conn: AsyncConnection, session_id: str, *, lock: bool = False) -> Row[Any]:
    query = select(sessions).where(sessions.c.id == session_id)
    if lock:
        # PostgreSQL: serialize every decision about this session's seats on its row.
        # SQLite ignores FOR UPDATE; its write transactions are already serialized.
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound("no such session", code="session_not_found")
    return row
