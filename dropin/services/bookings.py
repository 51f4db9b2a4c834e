"""Booking use cases: book a place, cancel, promote the waitlist. One transaction each.

The path: lock the session row → decide with :mod:`dropin.domain.booking` → write the booking,
the session's counts and an outbox row → commit. Capacity therefore holds under any number
of concurrent requests and server processes (see :mod:`dropin.store.db`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.domain.booking import BookingRefused, Seats, Waiting, decide, to_promote
from dropin.errors import Conflict, NotFound
from dropin.services.common import new_id, outbox_insert
from dropin.services.views import BookingView
from dropin.store.db import Database
from dropin.store.tables import bookings, members, sessions


async def position_in_waitlist(db: Database, session_id: str, seq: int) -> int:
    """1-based waitlist position of the booking with sequence ``seq``."""
    async with db.read() as conn:
        position = await _position(conn, session_id, seq)
    assert position is not None
    return position


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
    return await db.run_write(_book, session_id, member_id, now)


def _book(conn: Connection, session_id: str, member_id: str, now: datetime) -> BookingView:
    # Lock the session first, in a statement of its own: on PostgreSQL a transaction that
    # waited for the lock must read the member's earlier booking *after* getting it (a join
    # in the locking statement would show the row as it was before the wait).
    found = conn.execute(
        select(
            sessions.c.group_id,
            sessions.c.status,
            sessions.c.ends_at,
            sessions.c.capacity,
            sessions.c.confirmed_count,
            sessions.c.waitlist_count,
            sessions.c.next_waitlist_seq,
            sessions.c.lead_member_id,
            sessions.c.co_member_id,
            select(members.c.group_id)
            .where(members.c.id == member_id)
            .scalar_subquery()
            .label("member_group"),
        )
        .where(sessions.c.id == session_id)
        .with_for_update(of=sessions)
    ).first()
    if found is None:
        raise NotFound("no such session", code="session_not_found")
    if found.member_group != found.group_id:
        raise NotFound("no such member in this session's group", code="member_not_found")
    if member_id in (found.lead_member_id, found.co_member_id):
        raise Conflict("this member facilitates this session", code="facilitating")
    earlier = conn.execute(
        select(bookings.c.id, bookings.c.status, bookings.c.created_at, bookings.c.revision).where(
            bookings.c.session_id == session_id, bookings.c.member_id == member_id
        )
    ).first()
    if earlier is not None and earlier.status != "cancelled":
        raise _already_booked(earlier.id)
    seats = Seats(found.status, found.ends_at, found.capacity, found.confirmed_count)
    try:
        status = decide(seats, now)
    except BookingRefused as exc:
        raise Conflict(exc.detail, code=exc.code) from None
    seq: int | None = None
    position: int | None = None
    counts: dict[str, Any]
    if status == "confirmed":
        counts = {"confirmed_count": found.confirmed_count + 1}
    else:
        seq = found.next_waitlist_seq
        # A new waitlisted booking takes the highest sequence: its position is the count.
        position = found.waitlist_count + 1
        counts = {"waitlist_count": position, "next_waitlist_seq": seq + 1}
    conn.execute(sessions.update().where(sessions.c.id == session_id).values(**counts))
    values = {"status": status, "waitlist_seq": seq, "updated_at": now}
    if earlier is None:
        booking_id, created_at = new_id(), now
        try:
            # A savepoint keeps the transaction usable if the unique key fires (PostgreSQL).
            with conn.begin_nested():
                conn.execute(
                    bookings.insert().values(
                        id=booking_id,
                        session_id=session_id,
                        member_id=member_id,
                        created_at=now,
                        revision=0,
                        **values,
                    )
                )
        except IntegrityError:
            # Only reachable if the session lock was bypassed; never a 500, never two rows.
            raise _already_booked(None) from None
    else:
        booking_id, created_at = earlier.id, earlier.created_at
        updated = conn.execute(
            bookings.update()
            .where(bookings.c.id == booking_id, bookings.c.status == "cancelled")
            .values(revision=earlier.revision + 1, **values)
        )
        if updated.rowcount != 1:
            raise _already_booked(booking_id)
    kind = "booking_confirmed" if status == "confirmed" else "booking_waitlisted"
    conn.execute(
        outbox_insert(kind, now, session_id=session_id, member_id=member_id, booking_id=booking_id)
    )
    return BookingView(
        id=booking_id,
        session_id=session_id,
        member_id=member_id,
        status=status,
        waitlist_position=position,
        created_at=created_at,
        updated_at=now,
    )


def _already_booked(booking_id: str | None) -> Conflict:
    return Conflict(
        {"message": "this member already has a booking", "booking_id": booking_id},
        code="already_booked",
    )


def promote_waitlist(conn: Connection, session_id: str, now: datetime) -> list[str]:
    """Confirm waitlisted bookings while places are free; the caller holds the session lock.

    Synchronous (a transaction body): async callers use ``conn.run_sync(promote_waitlist, ...)``.
    """
    session = conn.execute(select(sessions).where(sessions.c.id == session_id)).one()
    if session.status != "scheduled" or now >= session.ends_at:
        return []
    waiting = conn.execute(
        select(bookings.c.id, bookings.c.member_id, bookings.c.waitlist_seq).where(
            bookings.c.session_id == session_id, bookings.c.status == "waitlisted"
        )
    ).all()
    chosen = to_promote(
        session.capacity,
        session.confirmed_count,
        [Waiting(w.id, w.waitlist_seq) for w in waiting],
    )
    if not chosen:
        return []
    conn.execute(
        bookings.update()
        .where(bookings.c.id.in_(chosen))
        .values(
            status="confirmed",
            waitlist_seq=None,
            updated_at=now,
            revision=bookings.c.revision + 1,
        )
    )
    conn.execute(
        sessions.update()
        .where(sessions.c.id == session_id)
        .values(
            confirmed_count=session.confirmed_count + len(chosen),
            waitlist_count=session.waitlist_count - len(chosen),
        )
    )
    member_of = {w.id: w.member_id for w in waiting}
    for booking_id in chosen:
        conn.execute(
            outbox_insert(
                "booking_promoted",
                now,
                session_id=session_id,
                member_id=member_of[booking_id],
                booking_id=booking_id,
            )
        )
    return chosen


async def cancel_booking(db: Database, booking_id: str, *, now: datetime) -> BookingView:
    """Cancel a booking; a freed place goes to the first waitlisted member, atomically.

    Cancelling an already cancelled booking is a no-op that returns it (safe to click twice).
    """
    return await db.run_write(_cancel, booking_id, now)


def _cancel(conn: Connection, booking_id: str, now: datetime) -> BookingView:
    found = conn.execute(select(bookings.c.session_id).where(bookings.c.id == booking_id)).first()
    if found is None:
        raise NotFound("no such booking", code="booking_not_found")
    session = conn.execute(
        select(sessions).where(sessions.c.id == found.session_id).with_for_update()
    ).one()
    booking = conn.execute(select(bookings).where(bookings.c.id == booking_id)).one()
    if booking.status == "cancelled":
        return _view(booking, None)
    if now >= session.ends_at:
        raise Conflict("this session is over", code="session_over")
    counts = (
        {"confirmed_count": session.confirmed_count - 1}
        if booking.status == "confirmed"
        else {"waitlist_count": session.waitlist_count - 1}
    )
    conn.execute(sessions.update().where(sessions.c.id == session.id).values(**counts))
    conn.execute(
        bookings.update()
        .where(bookings.c.id == booking_id)
        .values(
            status="cancelled",
            waitlist_seq=None,
            updated_at=now,
            revision=booking.revision + 1,
        )
    )
    conn.execute(
        outbox_insert(
            "booking_cancelled",
            now,
            session_id=session.id,
            member_id=booking.member_id,
            booking_id=booking_id,
        )
    )
    promoted: list[str] = []
    if booking.status == "confirmed":
        promoted = promote_waitlist(conn, session.id, now)
    row = conn.execute(select(bookings).where(bookings.c.id == booking_id)).one()
    return _view(row, None, tuple(promoted))


async def get_booking(db: Database, booking_id: str) -> BookingView:
    async with db.read() as conn:
        row = (await conn.execute(select(bookings).where(bookings.c.id == booking_id))).first()
        if row is None:
            raise NotFound("no such booking", code="booking_not_found")
        position = await _position(conn, row.session_id, row.waitlist_seq)
    return _view(row, position)
