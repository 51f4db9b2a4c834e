"""Booking use cases: book a place, cancel, look one up. One transaction each.

The path: load the session with its bookings under the session's lock
(:class:`~dropin.store.uow.UnitOfWork`) → decide with the aggregate
(:class:`~dropin.domain.session.Session`) → save the booking rows, the seat counts and one
outbox row per owed message → commit. Capacity therefore holds under any number of concurrent
requests and server processes (see :mod:`dropin.store.db`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from dropin.domain.session import Booking, Known, SessionChange
from dropin.domain.states import BookingStatus
from dropin.errors import NotFound
from dropin.services.common import new_id
from dropin.services.views import BookingView
from dropin.store.db import Database
from dropin.store.tables import bookings
from dropin.store.uow import UnitOfWork, booking_from_row


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
                bookings.c.status == BookingStatus.WAITLISTED.value,
                bookings.c.waitlist_seq < seq,
            )
        )
    ).scalar_one()
    return int(ahead) + 1


def _view(
    session_id: str, booking: Booking, position: int | None, promoted: tuple[str, ...] = ()
) -> BookingView:
    return BookingView(
        id=booking.id,
        session_id=session_id,
        member_id=booking.member_id,
        status=booking.status,
        waitlist_position=position,
        created_at=booking.created_at,
        updated_at=booking.updated_at,
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
    uow = UnitOfWork(conn)
    # The counts decide a booking: no need to load the session's other bookings.
    session = uow.session(session_id, known=Known.NONE)
    member_group, earlier = uow.member_and_booking(session_id, member_id)
    if member_group != session.group_id:
        raise NotFound("no such member in this session's group", code="member_not_found")
    change = session.book(member_id, new_id=new_id(), earlier=earlier, now=now)
    uow.save(change, now)
    booking = _changed_booking(change, member_id)
    # A new waitlisted booking is the last in the queue.
    waiting = booking.status == BookingStatus.WAITLISTED
    return _view(session_id, booking, change.after.waitlist_count if waiting else None)


def _changed_booking(change: SessionChange, member_id: str) -> Booking:
    return next(b for b in (*change.inserted, *change.updated) if b.member_id == member_id)


async def cancel_booking(db: Database, booking_id: str, *, now: datetime) -> BookingView:
    """Cancel a booking; a freed place goes to the first waitlisted member, atomically.

    Cancelling an already cancelled booking is a no-op that returns it (safe to click twice).
    Raises NotFound (``booking_not_found``), Conflict (``session_over``).
    """
    return await db.run_write(_cancel, booking_id, now)


def _cancel(conn: Connection, booking_id: str, now: datetime) -> BookingView:
    uow = UnitOfWork(conn)
    session_id, _ = uow.booking(booking_id)
    # The waitlist: a freed place is offered to the first in line in the same change.
    session = uow.session(session_id, known=Known.WAITLIST)
    # Read again under the session's lock: the booking may have changed while we waited.
    _, booking = uow.booking(booking_id)
    if booking.status == BookingStatus.CANCELLED:
        return _view(session_id, booking, None)
    change = session.cancel_booking(booking, now)
    uow.save(change, now)
    return _view(session_id, _changed_booking(change, booking.member_id), None, change.promoted)


async def get_booking(db: Database, booking_id: str) -> BookingView:
    """One booking, with its place in the queue if it is waitlisted."""
    async with db.read() as conn:
        row = (await conn.execute(select(bookings).where(bookings.c.id == booking_id))).first()
        if row is None:
            raise NotFound("no such booking", code="booking_not_found")
        position = await _position(conn, row.session_id, row.waitlist_seq)
    return _view(row.session_id, booking_from_row(row), position)
