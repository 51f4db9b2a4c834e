"""Booking use cases: book a place, cancel, promote the waitlist. One transaction each.

The path: lock the session row → decide with :mod:`dropin.domain.booking` → write the booking,
the session's counts and an outbox row → commit. Capacity therefore holds under any number
of concurrent requests and server processes (see :mod:`dropin.store.db`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.domain.booking import BookingRefused, Seats, Waiting, decide, to_promote
from dropin.errors import Conflict, NotFound
from dropin.services.common import emit, member_row, new_id, session_row
from dropin.services.views import BookingView
from dropin.store.db import Database
from dropin.store.tables import bookings, sessions


async def _position(conn: AsyncConnection, session_id: str, seq: int | None) -> int | None:
    if seq is None:
        return None
    ahead = (
        await conn.execute(
            select(func.count())
            .select_from(bookings)
            .where(
                bookings.c.session_id == session_id,
                bookings.c.status == "waitlisted",
                bookings.c.waitlist_seq < seq,
            )
        )
    ).scalar_one()
    return int(ahead) + 1


def _view(row: Row[Any], position: int | None, promoted: tuple[str, ...] = ()) -> BookingView:
    return BookingView(
        id=row.id,
        session_id=row.session_id,
        member_id=row.member_id,
        status=row.status,
        waitlist_position=position,
        created_at=row.created_at,
        updated_at=row.updated_at,
        promoted=promoted,
    )


async def book_seat(db: Database, session_id: str, member_id: str, *, now: datetime) -> BookingView:
    """Book ``member_id`` onto ``session_id``: confirmed while places remain, else waitlisted.

    Raises NotFound (session, or member not in the session's group), Conflict
    (``already_booked``, ``facilitating``, ``session_cancelled``, ``session_over``).
    A member who cancelled may book again; they join the back of any waitlist.
    """
    async with db.write() as conn:
        session = await session_row(conn, session_id, lock=True)
        member = await member_row(conn, member_id)
        if member.group_id != session.group_id:
            raise NotFound("no such member in this session's group", code="member_not_found")
        if member_id in (session.lead_member_id, session.co_member_id):
            raise Conflict("this member facilitates this session", code="facilitating")
        existing = (
            await conn.execute(
                select(bookings).where(
                    bookings.c.session_id == session_id, bookings.c.member_id == member_id
                )
            )
        ).first()
        if existing is not None and existing.status != "cancelled":
            raise Conflict(
                {"message": "this member already has a booking", "booking_id": existing.id},
                code="already_booked",
            )
        seats = Seats(session.status, session.ends_at, session.capacity, session.confirmed_count)
        try:
            status = decide(seats, now)
        except BookingRefused as exc:
            raise Conflict(exc.detail, code=exc.code) from None
        seq: int | None = None
        counts: dict[str, Any]
        if status == "confirmed":
            counts = {"confirmed_count": session.confirmed_count + 1}
        else:
            seq = session.next_waitlist_seq
            counts = {
                "waitlist_count": session.waitlist_count + 1,
                "next_waitlist_seq": seq + 1,
            }
        await conn.execute(sessions.update().where(sessions.c.id == session_id).values(**counts))
        values = {"status": status, "waitlist_seq": seq, "updated_at": now}
        if existing is None:
            booking_id = new_id()
            await conn.execute(
                bookings.insert().values(
                    id=booking_id,
                    session_id=session_id,
                    member_id=member_id,
                    created_at=now,
                    **values,
                )
            )
        else:
            booking_id = existing.id
            await conn.execute(
                bookings.update().where(bookings.c.id == booking_id).values(**values)
            )
        await emit(
            conn,
            "booking_confirmed" if status == "confirmed" else "booking_waitlisted",
            now,
            session_id=session_id,
            member_id=member_id,
            booking_id=booking_id,
        )
        row = (await conn.execute(select(bookings).where(bookings.c.id == booking_id))).one()
        # New waitlisted bookings take the highest sequence: their position is the count.
        position = counts["waitlist_count"] if seq is not None else None
    return _view(row, position)


async def promote_waitlist(conn: AsyncConnection, session_id: str, now: datetime) -> list[str]:
    """Confirm waitlisted bookings while places are free; the caller holds the session lock."""
    session = await session_row(conn, session_id)
    if session.status != "scheduled" or now >= session.ends_at:
        return []
    waiting = (
        await conn.execute(
            select(bookings.c.id, bookings.c.waitlist_seq).where(
                bookings.c.session_id == session_id, bookings.c.status == "waitlisted"
            )
        )
    ).all()
    chosen = to_promote(
        session.capacity,
        session.confirmed_count,
        [Waiting(w.id, w.waitlist_seq) for w in waiting],
    )
    if not chosen:
        return []
    await conn.execute(
        bookings.update()
        .where(bookings.c.id.in_(chosen))
        .values(status="confirmed", waitlist_seq=None, updated_at=now)
    )
    await conn.execute(
        sessions.update()
        .where(sessions.c.id == session_id)
        .values(
            confirmed_count=session.confirmed_count + len(chosen),
            waitlist_count=session.waitlist_count - len(chosen),
        )
    )
    promoted_rows = (
        await conn.execute(
            select(bookings.c.id, bookings.c.member_id).where(bookings.c.id.in_(chosen))
        )
    ).all()
    members_by_id = {r.id: r.member_id for r in promoted_rows}
    for booking_id in chosen:
        await emit(
            conn,
            "booking_promoted",
            now,
            session_id=session_id,
            member_id=members_by_id[booking_id],
            booking_id=booking_id,
        )
    return chosen


async def cancel_booking(db: Database, booking_id: str, *, now: datetime) -> BookingView:
    """Cancel a booking; a freed place goes to the first waitlisted member, atomically.

    Cancelling an already cancelled booking is a no-op that returns it (safe to click twice).
    """
    async with db.write() as conn:
        found = (
            await conn.execute(select(bookings.c.session_id).where(bookings.c.id == booking_id))
        ).first()
        if found is None:
            raise NotFound("no such booking", code="booking_not_found")
        session = await session_row(conn, found.session_id, lock=True)
        booking = (await conn.execute(select(bookings).where(bookings.c.id == booking_id))).one()
        if booking.status == "cancelled":
            return _view(booking, None)
        if now >= session.ends_at:
            raise Conflict("this session is over", code="session_over")
        counts = (
            {"confirmed_count": session.confirmed_count - 1}
            if booking.status == "confirmed"
            else {"waitlist_count": session.waitlist_count - 1}
        )
        await conn.execute(sessions.update().where(sessions.c.id == session.id).values(**counts))
        await conn.execute(
            bookings.update()
            .where(bookings.c.id == booking_id)
            .values(status="cancelled", waitlist_seq=None, updated_at=now)
        )
        await emit(
            conn,
            "booking_cancelled",
            now,
            session_id=session.id,
            member_id=booking.member_id,
            booking_id=booking_id,
        )
        promoted: list[str] = []
        if booking.status == "confirmed":
            promoted = await promote_waitlist(conn, session.id, now)
        row = (await conn.execute(select(bookings).where(bookings.c.id == booking_id))).one()
    return _view(row, None, tuple(promoted))


async def get_booking(db: Database, booking_id: str) -> BookingView:
    async with db.read() as conn:
        row = (await conn.execute(select(bookings).where(bookings.c.id == booking_id))).first()
        if row is None:
            raise NotFound("no such booking", code="booking_not_found")
        position = await _position(conn, row.session_id, row.waitlist_seq)
    return _view(row, position)
